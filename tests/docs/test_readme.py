"""The README is the newcomer's page: short, with the two quick-start commands CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SERVE = 'pip install -e ".[plot]" && python -m service'


def test_readme_stays_under_10_kb() -> None:
    assert len(README.encode()) <= 10 * 1024


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    """.ci/run greps the README for the exact line it runs; both must name the same one."""
    [expected] = re.findall(
        r"grep -m 1 -x -F '([^']+)' README\.md", (ROOT / ".ci" / "run").read_text()
    )
    assert expected in README.splitlines()
    assert expected.startswith('pip install -e ".[dev]" && ')


def test_readme_gives_the_serve_command_and_maps_every_docs_file() -> None:
    assert SERVE in README.splitlines()
    documents = sorted(path.name for path in (ROOT / "docs").glob("*.md"))
    assert documents and all(f"](docs/{name})" in README for name in documents)
