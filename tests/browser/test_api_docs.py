"""/docs in headless Chromium with the network closed: Swagger UI is served locally.

(ReDoc at /redoc is served the same way, see tests/api/test_api_docs.py; Chromium's tab
crashes rendering this OpenAPI document in ReDoc, assets local or not, so it is not driven here.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.conftest import screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

TIMEOUT_MS = 20_000


@pytest.fixture
def offline_page(page: Page, server_url: str) -> Iterator[tuple[Page, list[str]]]:
    """The tab with every request that leaves the test server aborted (and recorded), as on
    a machine without internet access or behind a firewall."""
    blocked: list[str] = []

    def route(request_route: Any) -> None:
        url: str = request_route.request.url
        if url.startswith(server_url):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    page.route("**/*", route)
    page.set_default_timeout(TIMEOUT_MS)
    yield page, blocked
    page.unroute("**/*")


def test_swagger_ui_renders_every_operation_offline(
    offline_page: tuple[Page, list[str]], server_url: str
) -> None:
    page, blocked = offline_page
    page.goto(f"{server_url}/docs")
    page.locator(".opblock").first.wait_for()
    paths = page.locator(".opblock .opblock-summary-path").all_text_contents()
    assert {"/v1/schedules", "/v1/plateau/replay", "/v1/sessions", "/healthz"} <= {
        path.replace("\u200b", "").strip() for path in paths
    }
    assert page.locator(".info .title").first.text_content().startswith("lrsched")
    screenshot(page, "docs-swagger-ui")
    assert blocked == []
