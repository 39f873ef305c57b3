"""Small files and small functions (docs/development.md, issue #13): no file over 400 lines
outside tests/ and tools/, no function over 40 lines in service/.

What is over today is listed explicitly below; the lists may only shrink: an entry that is
back within the limit must be removed, and nothing new may pass the limit.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 40

FILES_OVER: set[str] = set()
"""Files still over ``MAX_FILE_LINES``: each should become two modules."""

FUNCTIONS_OVER: set[tuple[str, str]] = set()
"""Functions of service/ still over ``MAX_FUNCTION_LINES`` (docstring included)."""


def _python_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    untracked = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in sorted({*listed, *untracked}) if (ROOT / name).exists()]


def _files_over() -> set[str]:
    over = set()
    for path in _python_files():
        name = path.relative_to(ROOT).as_posix()
        if name.startswith(("tests/", "tools/")):
            continue
        if len(path.read_text().splitlines()) > MAX_FILE_LINES:
            over.add(name)
    return over


def _functions_over() -> set[tuple[str, str]]:
    over = set()
    for path in _python_files():
        name = path.relative_to(ROOT).as_posix()
        if not name.startswith("service/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                    over.add((name, node.name))
    return over


def test_no_file_outside_tests_and_tools_passes_400_lines() -> None:
    over = _files_over()
    assert over - FILES_OVER == set(), "new files over the limit: split them"
    assert FILES_OVER - over == set(), "back within the limit: remove from FILES_OVER"


def test_no_function_in_service_passes_40_lines() -> None:
    over = _functions_over()
    assert over - FUNCTIONS_OVER == set(), "new functions over the limit: split them"
    assert FUNCTIONS_OVER - over == set(), "back within the limit: remove from FUNCTIONS_OVER"
