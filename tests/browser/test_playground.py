"""The playground in headless Chromium against a real server: pick, edit, redraw, errors, copy."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

from tests.browser.conftest import screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

TIMEOUT_MS = 15_000
LR_PATH = "#plot svg g#lr-0 path"


def open_playground(page: Page, server_url: str, example: str, title: str = "") -> None:
    """Load ``/#<example>`` (the page starts on that example) and wait for its curve."""
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{server_url}/#{example}")
    wait_drawn(page, title or example)


def wait_drawn(page: Page, what: str) -> None:
    """Wait until the status line says the curve of ``what`` (its start) was drawn."""
    page.wait_for_function(
        "what => document.getElementById('status').textContent.startsWith('Drawn ' + what)",
        arg=what,
    )


def wait_redrawn(page: Page, before: str) -> None:
    """Wait until the first lr line's path data differs from ``before``."""
    page.wait_for_function(
        "([selector, before]) => {"
        "  const path = document.querySelector(selector);"
        "  return path !== null && path.getAttribute('d') !== before; }",
        arg=[LR_PATH, before],
    )


def field(page: Page, path: str) -> Locator:
    return page.locator(f'.field[data-path="{path}"]')


def lr_path(page: Page) -> str:
    d = page.locator(LR_PATH).get_attribute("d")
    assert d
    return d


def test_choosing_a_schedule_and_editing_a_field_redraws_the_curve(
    page: Page, server_url: str
) -> None:
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{server_url}/")
    wait_drawn(page, "OneCycleLR")  # the page starts on OneCycleLR
    options = page.locator("#example option").all_text_contents()
    assert {"OneCycleLR", "CosineAnnealingLR", "SequentialLR"} <= set(options)
    one_cycle = lr_path(page)
    page.get_by_label("Schedule type").select_option("CosineAnnealingLR")
    wait_redrawn(page, one_cycle)
    wait_drawn(page, "CosineAnnealingLR")
    example = json.loads(page.locator("#body").input_value())
    assert example["schedule"]["type"] == "CosineAnnealingLR"
    t_max = page.get_by_label("schedule.T_max", exact=True)
    assert t_max.input_value() == str(example["schedule"]["T_max"])
    before = lr_path(page)
    screenshot(page, "1-cosine-chosen")

    t_max.fill("25")
    wait_redrawn(page, before)
    wait_drawn(page, "CosineAnnealingLR")
    assert lr_path(page) != before
    assert json.loads(page.locator("#body").input_value())["schedule"]["T_max"] == 25
    screenshot(page, "2-t-max-edited")


def test_server_validation_message_appears_next_to_the_field(page: Page, server_url: str) -> None:
    open_playground(page, server_url, "CosineAnnealingLR")
    t_max = field(page, "schedule.T_max")

    t_max.locator("input").fill("0")  # PyTorch divides by T_max: the engine's 422
    message = t_max.locator(".field-error")
    message.wait_for(state="visible")
    assert "T_max=0" in message.inner_text()
    assert t_max.locator("input").get_attribute("aria-invalid") == "true"
    assert page.locator("#errors").is_visible()
    assert "T_max" in page.locator("#error-list mark").all_text_contents()
    screenshot(page, "3-validation-error")

    t_max.locator("input").fill("abc")  # a schema error, its loc carrying pydantic's union tags
    page.wait_for_function(
        "() => document.querySelector('.field[data-path=\"schedule.T_max\"] .field-error')"
        ".textContent.includes('valid integer')"
    )

    t_max.locator("input").fill("40")  # fixed: the message goes, the curve comes back
    wait_drawn(page, "CosineAnnealingLR")
    assert message.inner_text() == ""
    assert page.locator("#errors").is_hidden()
    assert t_max.locator("input").get_attribute("aria-invalid") is None


def test_editing_the_json_and_log_scale(page: Page, server_url: str) -> None:
    open_playground(page, server_url, "StepLR")
    body = json.loads(page.locator("#body").input_value())
    body["steps"] = 77_777
    page.locator("#body").fill(json.dumps(body))
    wait_drawn(page, "StepLR, 77777 steps")
    assert field(page, "steps").locator("input").input_value() == "77777"

    page.locator("#body").fill("{not json")
    assert "Not valid JSON" in page.locator("#body-error").inner_text()

    page.locator("#body").fill(json.dumps(body))
    wait_drawn(page, "StepLR, 77777 steps")
    linear = lr_path(page)
    page.get_by_label("LR axis").select_option("log")
    wait_redrawn(page, linear)  # same values, other y coordinates
    wait_drawn(page, "StepLR, 77777 steps")
    screenshot(page, "4-log-scale")


def test_comparison_overlays_several_curves(page: Page, server_url: str) -> None:
    open_playground(page, server_url, "comparison", "SequentialLR vs OneCycleLR")
    assert page.locator("#plot svg g#lr-0").count() == 1
    assert page.locator("#plot svg g#lr-1").count() == 1
    assert "/v1/schedules/plot" in page.locator("#curl-snippet").inner_text()
    screenshot(page, "5-comparison")


def test_copied_curl_and_python_snippets_run_against_the_server(
    page: Page, server_url: str
) -> None:
    open_playground(page, server_url, "OneCycleLR")
    page.get_by_label("schedule.max_lr", exact=True).fill("0.5")
    wait_drawn(page, "OneCycleLR")

    page.get_by_role("button", name="Copy curl command").click()
    page.wait_for_function("() => document.getElementById('copy-status').textContent !== ''")
    curl = page.evaluate("navigator.clipboard.readText()")
    assert curl == page.locator("#curl-snippet").inner_text()
    assert curl.startswith(f"curl -s {server_url}/v1/schedules ")
    answer = subprocess.run(
        ["bash", "-c", curl], capture_output=True, text=True, check=True, timeout=30
    )
    curve = json.loads(answer.stdout)
    assert max(curve["lr"][0]) == 0.5 and curve["momentum"] is not None

    page.get_by_role("button", name="Copy Python snippet").click()
    snippet = page.evaluate("navigator.clipboard.readText()")
    assert "import httpx" in snippet and "True" not in snippet.replace("True", "")
    ran = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, check=True, timeout=30
    )
    assert ran.stdout.startswith("1000 [")
