"""docs/architecture.md stays true: every file and definition its "rule → file" table names
exists, and both paths are drawn."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def table_rows() -> list[tuple[str, str]]:
    """(file, definition or "") of every row of the table under "Rule → file"."""
    text = ARCHITECTURE.read_text()
    table = text[text.index("Rule → file") :]
    rows = []
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[2].startswith("`"):
            definition = re.match(r"`?([A-Za-z_][A-Za-z_0-9]*)?", cells[3])
            rows.append((cells[2].strip("`"), (definition.group(1) or "") if definition else ""))
    return rows


ROWS = table_rows()


def test_the_table_lists_the_refusals() -> None:
    assert len(ROWS) >= 20


@pytest.mark.parametrize(("path", "definition"), ROWS, ids=[f"{p}:{d}" for p, d in ROWS])
def test_every_listed_file_and_definition_exists(path: str, definition: str) -> None:
    source = ROOT / path
    assert source.is_file(), f"docs/architecture.md names {path}, which does not exist"
    if definition:
        pattern = rf"^\s*(?:async def|def|class)\s+{definition}\b|^\s*{definition}\s*[:=]"
        assert re.search(pattern, source.read_text(), re.MULTILINE), (
            f"docs/architecture.md names {definition} in {path}, which does not define it"
        )


def test_both_paths_are_drawn_and_name_existing_files() -> None:
    diagrams = re.findall(r"```mermaid\n(.*?)```", ARCHITECTURE.read_text(), re.DOTALL)
    assert len(diagrams) == 2
    for named in re.findall(r"(?:service|schemas)/[\w/]+(?:\.py)?", "".join(diagrams)):
        assert (ROOT / named).exists(), named
