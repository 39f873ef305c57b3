"""Rewrite the output blocks of README.md and docs/*.md from a running service.

    python -m tools.update_doc_samples            # rewrite every output block in place
    python -m tools.update_doc_samples --check    # exit 1 if any block differs

Starts ``python -m service`` (in-memory store) on a free loopback port, runs every sample in
document order (``tools/doc_samples.py`` says what a sample is) and writes what each prints
into the output block after it. ``tests/docs/test_samples.py`` makes the same comparison.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.server import Service
from tools import doc_samples


def update(path: Path, base_url: str, workdir: Path, write: bool) -> bool:
    """Compare ``path``'s output blocks with the service's; rewrite them when ``write``.
    Whether any differed."""
    lines = path.read_text().splitlines(keepends=True)
    stale = [
        (sample, text)
        for sample, text in doc_samples.outputs(path, base_url, workdir)
        if text != doc_samples.shown(sample)
    ]
    for sample, text in reversed(stale):  # from the end, so earlier line numbers hold
        if sample.output is None:
            print(f"{sample.code.where}: prints output but has no output block; add one")
            continue
        print(f"{sample.output.where}: {'updated' if write else 'differs from the service'}")
        lines[sample.output.start + 1 : sample.output.end] = [text]
    if write and stale:
        path.write_text("".join(lines))
    return bool(stale)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report differences, write nothing")
    arguments = parser.parse_args()
    differs = False
    with Service(api_keys="") as service, tempfile.TemporaryDirectory() as scratch:
        for path in doc_samples.DOCUMENTS:
            differs |= update(path, service.url, Path(scratch), write=not arguments.check)
    return 1 if differs and arguments.check else 0


if __name__ == "__main__":
    sys.exit(main())
