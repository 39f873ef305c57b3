"""``lrsched``: schedule curves, plots and plateau session reports from the command line.

Exit codes (for scripts): 0 done; 2 usage (bad arguments, an unreadable or invalid spec
file); 3 the service refused the request (4xx: invalid spec, authentication, unknown
session, an out-of-order epoch); 4 the service failed or could not be reached (5xx,
connection, timeout, after retries); 5 the output could not be written. The service's
address is ``--url``, else ``$LRSCHED_URL``, else ``http://127.0.0.1:8000``; the API key
``--api-key``, else ``$LRSCHED_API_KEY``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NoReturn

import httpx

from lrsched_client import _calls
from lrsched_client._http import Call, Retry, SyncHttp
from lrsched_client.client import _settings
from lrsched_client.errors import ClientError, LrschedError

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_UNAVAILABLE = 4
EXIT_OUTPUT = 5

_ACCEPT = {"json": "application/json", "csv": "application/json", "npy": "application/x-npy"}
_PLOT_ACCEPT = {".png": "image/png", ".svg": "image/svg+xml"}


class UsageError(Exception):
    """Bad input found after parsing (a spec file that is missing or not a spec)."""


class OutputError(Exception):
    """The output file could not be written."""


class Progress:
    """A download progress bar on stderr: a bar when the size is known, else a byte count."""

    def __init__(self, stream: IO[str], interval: float = 0.1) -> None:
        self.stream = stream
        self.interval = interval
        self.total: int | None = None
        self.done = 0
        self._shown = 0.0

    def start(self, total: int | None) -> None:
        """Begin a download of ``total`` bytes (``None``: unknown)."""
        self.total, self.done = total, 0

    def advance(self, count: int) -> None:
        """``count`` more bytes arrived; redraw at most every ``interval`` seconds."""
        self.done += count
        now = time.monotonic()
        if now - self._shown >= self.interval:
            self._shown = now
            self._draw()

    def finish(self) -> None:
        """Draw the final state and end the line."""
        self._draw()
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self) -> None:
        size = f"{self.done / 1e6:.1f} MB"
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            bar = "#" * int(30 * fraction)
            size = f"[{bar:<30}] {100 * fraction:3.0f}% {size} of {self.total / 1e6:.1f} MB"
        self.stream.write(f"\r{size}")
        self.stream.flush()


def read_body(path: str, args: argparse.Namespace) -> dict[str, Any]:
    """The request body from a spec file (a spec, or a whole request), with the options."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        loaded = json.loads(text)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read a JSON spec from {path}: {error}") from None
    if not isinstance(loaded, dict):
        raise UsageError(f"{path}: expected a JSON object (a spec or a request body)")
    body = dict(loaded) if "schedule" in loaded else {"schedule": loaded}
    for name in ("steps", "lr", "start", "stride"):
        value = getattr(args, name, None)
        if value is not None:
            body[name] = value[0] if name == "lr" and len(value) == 1 else value
    if "steps" not in body:
        raise UsageError("--steps is required (the spec file gives no steps)")
    return body


@contextmanager
def output(path: str | None) -> Iterator[IO[bytes]]:
    """The file to write (``None`` or ``-``: stdout); write failures are :class:`OutputError`."""
    if path in (None, "-"):
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    assert path is not None
    try:
        with open(path, "wb") as sink:
            yield sink
    except OSError as error:
        Path(path).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {error}") from None
    except BaseException:
        Path(path).unlink(missing_ok=True)  # no partial output when the request failed
        raise


def download(http: SyncHttp, call: Call, sink: IO[bytes], progress: Progress | None) -> None:
    """Send ``call`` and copy the answer's body to ``sink`` in chunks, showing progress."""
    with http.stream(call) as response:
        length = response.headers.get("Content-Length")
        if progress is not None:
            progress.start(int(length) if length and length.isdigit() else None)
        for chunk in response.iter_bytes():
            try:
                sink.write(chunk)
            except OSError as error:
                raise OutputError(f"cannot write the output: {error}") from None
            if progress is not None:
                progress.advance(len(chunk))
        if progress is not None:
            progress.finish()


def curve_csv(document: dict[str, Any]) -> bytes:
    """The JSON curve as CSV: ``step, lr_0, ...`` (and ``momentum_0, ...`` when cycled)."""
    lr, momentum = document["lr"], document.get("momentum") or []
    steps = range(document["start"], document["stop"], document["stride"])
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    header = ["step", *(f"lr_{g}" for g in range(len(lr)))]
    writer.writerow(header + [f"momentum_{g}" for g in range(len(momentum))])
    for index, step in enumerate(steps):
        values = [group[index] for group in lr] + [group[index] for group in momentum]
        writer.writerow([step, *(repr(float(value)) for value in values)])
    return text.getvalue().encode()


def run_curve(http: SyncHttp, args: argparse.Namespace, progress: Progress | None) -> None:
    """``lrsched curve``: the curve as JSON, CSV or ``.npy``."""
    body = read_body(args.spec, args)
    headers = {"Accept": _ACCEPT[args.format]}
    call = Call("POST", "/v1/schedules", json=_calls.jsonable(body), headers=headers)
    with output(args.output) as sink:
        if args.format != "csv":
            download(http, call, sink, progress)
            if args.format == "json" and args.output in (None, "-"):
                sink.write(b"\n")  # a line of its own on a terminal, as curl's -w would
            return
        buffer = io.BytesIO()
        download(http, call, buffer, progress)
        sink.write(curve_csv(json.loads(buffer.getvalue())))


def run_plot(http: SyncHttp, args: argparse.Namespace, progress: Progress | None) -> None:
    """``lrsched plot``: PNG or SVG (by the output's suffix), drawn by the service."""
    accept = _PLOT_ACCEPT.get(Path(args.output).suffix.lower())
    if accept is None:
        raise UsageError(f"-o {args.output}: expected a .png or .svg file")
    body = read_body(args.spec, args)
    params: dict[str, str | int] = {"scale": args.scale}
    headers = {"Accept": accept}
    call = Call("POST", "/v1/schedules/plot", _calls.jsonable(body), params, headers)
    with output(args.output) as sink:
        download(http, call, sink, progress)


def run_session(http: SyncHttp, args: argparse.Namespace, progress: Progress | None) -> None:
    """``lrsched session report|show|history|state-dict``: the service's JSON answer."""
    if args.action == "report":
        call = _calls.report_call(args.id, args.token, args.epoch, args.metric, args.rank)
    else:
        suffix = {"show": "", "history": "/history", "state-dict": "/state_dict"}[args.action]
        call = _calls.get_call(args.id, args.token, suffix)
    with output(None) as sink:
        sink.write(http.send(call).content + b"\n")


def parser() -> argparse.ArgumentParser:
    """The ``lrsched`` argument parser."""
    main = argparse.ArgumentParser(
        prog="lrsched",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="exit codes: 0 ok, 2 usage, 3 refused by the service (4xx), "
        "4 service or network error, 5 output not written",
    )
    main.add_argument("--url", help="the service (default $LRSCHED_URL or 127.0.0.1:8000)")
    main.add_argument("--api-key", help="sent as X-API-Key (default $LRSCHED_API_KEY)")
    main.add_argument("--timeout", type=float, default=60.0, help="seconds per read (60)")
    main.add_argument("--retries", type=int, default=3, help="retries of failed calls (3)")
    shown = main.add_mutually_exclusive_group()
    shown.add_argument("--progress", action="store_true", default=None, help="always")
    shown.add_argument(
        "--no-progress", dest="progress", action="store_false", default=None, help="never"
    )
    commands = main.add_subparsers(dest="command", required=True)
    _curve_parser(commands)
    _plot_parser(commands)
    _session_parser(commands)
    return main


def _schedule_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("spec", help="a JSON file with a spec or a request body ('-': stdin)")
    command.add_argument("--steps", type=int, help="the schedule's length (steps)")
    command.add_argument("--lr", type=float, nargs="+", help="the optimizer's lr, per group")
    command.add_argument("--start", type=int, help="first step (0)")
    command.add_argument("--stride", type=int, help="step stride (1)")


def _curve_parser(commands: Any) -> None:
    curve = commands.add_parser("curve", help="the lr (and momentum) at every step")
    _schedule_options(curve)
    curve.add_argument("--format", choices=sorted(_ACCEPT), default="json")
    curve.add_argument("-o", "--output", help="the file to write (default: stdout)")
    curve.set_defaults(run=run_curve)


def _plot_parser(commands: Any) -> None:
    plot = commands.add_parser("plot", help="a picture of the curve (.png or .svg)")
    _schedule_options(plot)
    plot.add_argument("-o", "--output", required=True, help="out.png or out.svg")
    plot.add_argument("--scale", choices=["linear", "log"], default="linear")
    plot.set_defaults(run=run_plot)


def _session_parser(commands: Any) -> None:
    session = commands.add_parser("session", help="plateau sessions")
    actions = session.add_subparsers(dest="action", required=True)
    for name, text in [
        ("report", "report a metric for an epoch; print the decision"),
        ("show", "print the session's state"),
        ("history", "print the decided epochs"),
        ("state-dict", "print the ReduceLROnPlateau state_dict"),
    ]:
        action = actions.add_parser(name, help=text)
        action.add_argument("id", help="the session id")
        action.add_argument("--token", required=True, help="the session's token")
        if name == "report":
            action.add_argument("--epoch", type=int, required=True)
            action.add_argument("--metric", type=float, required=True, help="also inf, nan")
            action.add_argument("--rank", type=int, default=0)
    session.set_defaults(run=run_session)


def _fail(code: int, message: str) -> NoReturn:
    sys.stderr.write(f"lrsched: {message}\n")
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); the exit code."""
    args = parser().parse_args(argv)
    url, headers = _settings(args.url, args.api_key)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    progress = Progress(sys.stderr) if show else None
    client = httpx.Client(base_url=url, headers=headers, timeout=args.timeout)
    http = SyncHttp(client, Retry(attempts=max(args.retries, 0) + 1))
    command: Callable[[SyncHttp, argparse.Namespace, Progress | None], None] = args.run
    try:
        command(http, args, progress)
    except UsageError as error:
        _fail(EXIT_USAGE, str(error))
    except ClientError as error:
        _fail(EXIT_REFUSED, str(error))
    except (LrschedError, httpx.HTTPError) as error:
        _fail(EXIT_UNAVAILABLE, str(error))
    except OutputError as error:
        _fail(EXIT_OUTPUT, str(error))
    finally:
        http.close()
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
