"""``python -m bench``: measure lrsched against its references and print a markdown table.

Parts (all by default, in this order): ``engine`` (in-process, 1M steps), ``http`` (1M-step
curves over loopback), ``small`` (1,000-step curves vs ``/healthz`` requests/s), ``ceiling``
(the same with the engine's, then also the encoding's, work made free), ``cache``
(concurrent identical requests), ``stream`` (10M values: time and peak RSS), ``sessions``
(SQLite 1 worker, Redis 2 workers), ``load`` (mixed traffic, 2 workers) and ``bulkhead``
(session-report latency while 48 heavy curves are in flight; peak and settled RSS). Each part that
needs a server starts ``python -m service`` on 127.0.0.1 (and ``redis-server``) and stops it.
Everything is bounded in count and time; ``--quick`` shortens every part.

    python -m bench                       # everything, about 4-5 minutes
    python -m bench engine http --quick   # some parts, shorter
    python -m bench --json bench.json     # also write the rows as JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from bench import bulkhead, ceiling, engine, http, load, sessions, small
from bench.report import Row, markdown
from service.allocator import tune_allocator

PARTS = ("engine", "http", "small", "ceiling", "cache", "stream", "sessions", "load", "bulkhead")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model or platform.processor(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the selected parts and print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("parts", nargs="*", help=f"parts to run, of {', '.join(PARTS)} (all)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, shorter runs")
    parser.add_argument("--json", type=Path, help="also write the rows (and machine) here")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {', '.join(PARTS)}")
    chosen = args.parts or list(PARTS)
    tune_allocator()  # the in-process figures see the allocator the server runs with
    rows: list[Row] = []
    reference: dict[str, float] = {}
    started = time.perf_counter()
    about = machine()
    print(
        f"# lrsched bench: {about['cpu']}, {about['cpus']} CPUs, Python {about['python']}, "
        f"numpy {about['numpy']}, load average {about['load_average'][0]:.1f}",
        file=sys.stderr,
    )
    steps = {
        "engine": lambda: reference.update(engine.run(rows, args.quick)),
        "http": lambda: http.big_curves(rows, args.quick, reference),
        "small": lambda: small.run(rows, args.quick),
        "ceiling": lambda: ceiling.run(rows, args.quick),
        "cache": lambda: http.cache(rows, args.quick),
        "stream": lambda: http.streaming(rows, args.quick),
        "sessions": lambda: sessions.run(rows, args.quick),
        "load": lambda: load.run(rows, args.quick),
        "bulkhead": lambda: bulkhead.run(rows, args.quick),
    }
    failed = []
    for part in PARTS:
        if part in chosen:
            print(f"# {part} ...", file=sys.stderr, flush=True)
            try:
                steps[part]()
            except Exception:  # report it and go on with the other parts
                traceback.print_exc()
                failed.append(part)
                rows.append(Row(part, "FAILED (traceback on stderr)", float("nan"), ""))
    about["seconds"] = round(time.perf_counter() - started, 1)
    print(markdown(rows))
    if args.json:
        document = {"machine": about, "rows": [row.as_dict() for row in rows]}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
