"""docs/architecture.md stays true: every file and definition its "rule → file" table names
exists, both paths are drawn, and every fixed limit lives in ``service/limits.py`` (what an
operator tunes in ``service/config.py``)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
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


LIMIT_HOMES = ("service/limits.py", "service/config.py")
LIMIT_NAME = re.compile(r"(?:^|_)MAX(?:_|$)|_LIMIT$|_BUDGET$")
"""``MAX_*`` (and ``*_MAX_*``), ``*_LIMIT``, ``*_BUDGET``: the names of limits."""
LIMITS_ELSEWHERE: dict[str, str] = {}
"""``"path:NAME"`` of a limit that must stay out of ``service/limits.py``, and why (none
does); this list may only shrink."""


def module_constants(path: Path) -> Iterator[str]:
    """The names ``path`` assigns at module level."""
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        yield from (target.id for target in targets if isinstance(target, ast.Name))


def test_every_fixed_limit_is_defined_in_the_limits_module() -> None:
    assert {"MAX_GROUPS", "NESTED_STEP_LIMIT", "EXPRESSION_BUDGET"} <= {
        name for name in module_constants(ROOT / LIMIT_HOMES[0]) if LIMIT_NAME.search(name)
    }
    elsewhere = {
        f"{path.relative_to(ROOT)}:{name}"
        for package in ("schemas", "service", "rules")
        for path in sorted((ROOT / package).glob("**/*.py"))
        if str(path.relative_to(ROOT)) not in LIMIT_HOMES
        for name in module_constants(path)
        if LIMIT_NAME.search(name)
    }
    assert elsewhere == set(LIMITS_ELSEWHERE)
