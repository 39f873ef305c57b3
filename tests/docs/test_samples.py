"""Every code sample of README.md and docs/*.md, run against a real ``python -m service``.

What counts as a sample and how its output is compared: ``tools/doc_samples.py``. A stale
output block is rewritten by ``python -m tools.update_doc_samples``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.server import Service
from tools import doc_samples

SAMPLES = [
    pytest.param(path, id=str(path.relative_to(doc_samples.ROOT))) for path in doc_samples.DOCUMENTS
]
UPDATE = "python -m tools.update_doc_samples"


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with Service(api_keys="") as service:
        yield service.url


@pytest.mark.parametrize("path", SAMPLES)
def test_every_sample_prints_exactly_its_output_block(
    path: Path, server_url: str, tmp_path: Path
) -> None:
    stale = [
        f"{sample.code.where}: the service prints\n{text}"
        for sample, text in doc_samples.outputs(path, server_url, tmp_path)
        if text != doc_samples.shown(sample)
    ]
    assert stale == [], f"run {UPDATE} (or add the output block):\n" + "\n".join(stale)


@pytest.mark.parametrize("path", SAMPLES)
def test_every_block_is_a_sample_a_setup_command_or_readable_json(path: Path) -> None:
    """No block escapes the checks: runnable, setup (not run: it installs or starts
    something), Python that at least compiles, or JSON that parses."""
    for sample in doc_samples.samples(path):
        code = sample.code
        if doc_samples.checked(sample):
            continue
        if code.language == "sh":
            assert doc_samples.is_setup(code), f"{code.where}: neither curl nor a setup command"
            assert sample.output is None, f"{code.where}: a setup command has no output"
        elif code.language == "python":
            compile(code.text, code.where, "exec")
        elif code.language == "json":
            doc_samples.check_json_block(code)
        else:
            assert code.language in ("", "mermaid"), f"{code.where}: unknown {code.language!r}"


def test_a_changed_output_is_detected_and_rewritten(tmp_path: Path, server_url: str) -> None:
    document = tmp_path / "sample.md"
    document.write_text(
        'Text.\n\n```sh\ncurl -s localhost:8000/healthz\n```\n```json\n{"status":"down"}\n```\n'
    )
    [(sample, text)] = list(doc_samples.outputs(document, server_url, tmp_path))
    assert text == '{"status":"ok"}\n' and sample.output is not None
    assert sample.output.text == '{"status":"down"}\n'


def test_curl_command_lines_are_read_like_curl() -> None:
    [words] = doc_samples.commands(
        "curl -s 'localhost:8000/v1/schedules/plot?scale=log' -H 'Accept: image/png' \\\n"
        "  -o out.png -d '{\"a\": [1,\n  2]}'  # it's a comment\n"
    )
    curl = doc_samples.parse_curl(words)
    assert curl == doc_samples.Curl(
        "POST",
        "/v1/schedules/plot?scale=log",
        {"Accept": "image/png"},
        b'{"a": [1,\n  2]}',
        "out.png",
    )
