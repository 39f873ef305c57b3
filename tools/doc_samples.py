"""The code samples of README.md and docs/*.md: find them, run them against a server, compare.

A *sample* is a fenced code block and, on the very next line after its closing fence, an
optional *output* block (a ```` ```json ```` or ```` ```text ```` fence). The rules, which
``tests/docs/test_samples.py`` enforces and ``python -m tools.update_doc_samples`` applies:

- An ``sh`` block whose commands are all ``curl`` or ``python -c`` is **run**: each ``curl``
  is parsed with :mod:`shlex` (``-s``, ``-H``, ``-d``, ``-X``, ``-o FILE``, the URL) and sent to
  a real ``python -m service`` (``localhost:8000`` in the sample stands for it); ``python -c``
  runs in the same scratch directory, so it reads the files ``curl -o`` wrote. The output block,
  when there is one, is exactly what the commands print, byte for byte: the response bodies
  as the service writes them (one line each, no added newline) and ``python -c``'s stdout.
  The block's text is that output plus the one newline before the closing fence.
- Any other ``sh`` block is a setup command (``pip``, ``python -m ...``, ``export``,
  ``redis-server``, ``docker``, ``apt-get``): not run here, and it may have no output block.
- A ``python`` block with an output block is run with ``LRSCHED_URL`` set to the server and
  its stdout compared the same way; one without is only compiled (sketches that need PyTorch,
  ``torch.distributed`` or a training loop).
- A ``json`` block that is not an output is a request body or answer shown for reading: it
  must parse as JSON.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
OUTPUT_LANGUAGES = ("json", "text")
SETUP_COMMANDS = ("pip", "python", "python3", "export", "redis-server", "docker", "apt-get")
SAMPLE_HOSTS = ("localhost:8000", "127.0.0.1:8000", "http://localhost:8000")
_FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, text, and where it sits (0-based fence lines)."""

    path: Path
    language: str
    text: str
    start: int
    end: int

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.start + 1}"


@dataclass(frozen=True)
class Sample:
    """A code block and the output block right after it, if any."""

    code: Block
    output: Block | None


def blocks(path: Path) -> list[Block]:
    """Every fenced code block of a Markdown file, in order."""
    lines = path.read_text().splitlines()
    found: list[Block] = []
    start: int | None = None
    language = ""
    for number, line in enumerate(lines):
        match = _FENCE.match(line)
        if match is None:
            continue
        if start is None:
            start, language = number, match.group(1)
        else:
            text = "".join(f"{body}\n" for body in lines[start + 1 : number])
            found.append(Block(path, language, text, start, number))
            start = None
    if start is not None:
        raise ValueError(f"{path}:{start + 1}: a code fence is never closed")
    return found


def samples(path: Path) -> list[Sample]:
    """The file's blocks, each output block attached to the block it follows directly."""
    found: list[Sample] = []
    for block in blocks(path):
        previous = found[-1] if found else None
        if (
            previous is not None
            and previous.output is None
            and previous.code.language in ("sh", "python")
            and block.language in OUTPUT_LANGUAGES
            and block.start == previous.code.end + 1
        ):
            found[-1] = Sample(previous.code, block)
        else:
            found.append(Sample(block, None))
    return found


def commands(script: str) -> list[list[str]]:
    """The commands of an ``sh`` block, shlex-split: one per line outside quotes (a quoted
    JSON body may span lines), continuations joined, comments dropped."""
    found: list[list[str]] = []
    line = ""
    quote = ""
    for text in script.replace("\\\n", " ").splitlines(keepends=True):
        for char in text:
            if char == "#" and not quote and (not line or line[-1] in " \t"):
                break  # a comment runs to the end of the line, quotes in it included
            if char in "'\"" and quote in ("", char):
                quote = "" if quote else char
            line += char
        if not quote:
            found.append(shlex.split(line))
            line = ""
    if quote:
        raise ValueError(f"unclosed {quote} in:\n{script}")
    return [words for words in found if words]


def is_runnable(code: Block) -> bool:
    """Whether this block is run against the service (see the module docstring)."""
    if code.language == "sh":
        return all(_runnable_command(words) for words in commands(code.text))
    return False


def _runnable_command(words: list[str]) -> bool:
    return words[0] == "curl" or words[:2] in (["python", "-c"], ["python3", "-c"])


def is_setup(code: Block) -> bool:
    """An ``sh`` block of commands that set something up (not run here)."""
    return code.language == "sh" and all(
        _setup_command(words) for words in commands(code.text) if not _runnable_command(words)
    )


def _setup_command(words: list[str]) -> bool:
    first = next((word for word in words if not re.match(r"^[A-Z_]+=", word)), "")
    return first in SETUP_COMMANDS


@dataclass(frozen=True)
class Curl:
    """What a ``curl`` command line asks for."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    output_file: str | None


def parse_curl(words: list[str]) -> Curl:
    """Read a ``curl`` command line (the options the docs use; anything else is an error)."""
    method, url, headers, body, output_file = "", "", {}, None, None
    rest = iter(words[1:])
    for word in rest:
        if word in ("-s", "--silent"):
            continue
        elif word in ("-H", "--header"):
            name, _, value = next(rest).partition(":")
            headers[name.strip()] = value.strip()
        elif word in ("-d", "--data", "--data-raw"):
            body = next(rest).encode()
        elif word in ("-X", "--request"):
            method = next(rest)
        elif word in ("-o", "--output"):
            output_file = next(rest)
        elif not word.startswith("-") and not url:
            url = word
        else:
            raise ValueError(f"curl option not understood by tools.doc_samples: {word!r}")
    path = _sample_path(url)
    return Curl(method or ("POST" if body is not None else "GET"), path, headers, body, output_file)


def _sample_path(url: str) -> str:
    for host in SAMPLE_HOSTS:
        if url.startswith(host):
            return url[len(host) :] or "/"
    raise ValueError(f"a sample's curl must address localhost:8000, not {url!r}")


def run_sh(code: Block, base_url: str, workdir: Path) -> str:
    """Run a runnable ``sh`` block against the server at ``base_url``; what it prints."""
    printed: list[str] = []
    for words in commands(code.text):
        if words[0] == "curl":
            printed.append(_run_curl(parse_curl(words), base_url, workdir))
        else:
            printed.append(_run_python(words[2], base_url, workdir))
    return "".join(printed)


def _run_curl(curl: Curl, base_url: str, workdir: Path) -> str:
    response = httpx.request(
        curl.method, base_url + curl.path, headers=curl.headers, content=curl.body, timeout=60
    )
    if curl.output_file is not None:
        (workdir / curl.output_file).write_bytes(response.content)
        return ""
    return response.text


def _run_python(source: str, base_url: str, workdir: Path) -> str:
    env = os.environ | {"LRSCHED_URL": base_url, "LRSCHED_API_KEY": ""}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "client" / "src")])
    result = subprocess.run(
        [sys.executable, "-c", source],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"python sample failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def run(sample: Sample, base_url: str, workdir: Path) -> str:
    """What the sample's code prints when run against ``base_url``."""
    if sample.code.language == "python":
        return _run_python(sample.code.text, base_url, workdir)
    return run_sh(sample.code, base_url, workdir)


def block_text(printed: str) -> str:
    """The text of the output block that shows ``printed``: the same bytes, ending in the one
    newline that precedes the closing fence (added when the output has none, as curl's).
    Code that prints nothing has no output block: the empty text."""
    return printed if printed.endswith("\n") or not printed else printed + "\n"


def shown(sample: Sample) -> str:
    """The text the sample's output block shows ("" without one)."""
    return sample.output.text if sample.output is not None else ""


def checked(sample: Sample) -> bool:
    """Whether the sample is run and its output compared."""
    return is_runnable(sample.code) or (
        sample.code.language == "python" and sample.output is not None
    )


def check_json_block(block: Block) -> None:
    """A JSON block shown for reading parses as JSON."""
    json.loads(block.text)


def outputs(path: Path, base_url: str, workdir: Path) -> Iterator[tuple[Sample, str]]:
    """Each checked sample of ``path`` in document order (state such as a created session
    carries over), with the output block text the service's answers give."""
    for sample in samples(path):
        if checked(sample):
            yield sample, block_text(run(sample, base_url, workdir))
