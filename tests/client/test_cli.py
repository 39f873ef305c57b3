"""The ``lrsched`` command line, run in a subprocess against a real service."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from lrsched_client import Client, cli

from tests.client.proxy import FlakyProxy
from tests.client.server import REPO, free_port

ONE_CYCLE = {"type": "OneCycleLR", "max_lr": 0.1, "total_steps": 100}


def lrsched(
    *args: str, url: str | None, stdin: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``lrsched ARGS`` (as ``python -m lrsched_client.cli``), ``LRSCHED_URL=url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LRSCHED_")}
    env["PYTHONPATH"] = str(REPO / "client" / "src")
    if url is not None:
        env["LRSCHED_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "lrsched_client.cli", *args],
        env=env,
        input=None if stdin is None else stdin.encode(),
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(ONE_CYCLE))
    return path


def test_entry_point_is_declared() -> None:
    project = tomllib.loads((REPO / "client" / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["lrsched"] == "lrsched_client.cli:main"
    assert cli.main.__module__ == "lrsched_client.cli"


def test_curve_json_csv_and_npy_carry_the_service_values(
    url: str, client: Client, spec_file: Path, tmp_path: Path
) -> None:
    expected = client.curve_json(ONE_CYCLE, [0.01, 0.02], 101, start=3, stride=7)
    common = [str(spec_file), "--steps", "101", "--lr", "0.01", "0.02", "--start", "3"]
    common += ["--stride", "7"]
    as_json = lrsched("curve", *common, url=url)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == expected

    as_csv = lrsched("curve", *common, "--format", "csv", url=url)
    rows = list(csv.reader(io.StringIO(as_csv.stdout.decode())))
    assert rows[0] == ["step", "lr_0", "lr_1", "momentum_0", "momentum_1"]
    assert [int(row[0]) for row in rows[1:]] == list(range(3, 101, 7))
    assert [float(row[1]) for row in rows[1:]] == expected["lr"][0]
    assert [float(row[4]) for row in rows[1:]] == expected["momentum"][1]

    target = tmp_path / "curve.npy"
    as_npy = lrsched("curve", *common, "--format", "npy", "-o", str(target), url=url)
    assert as_npy.returncode == 0, as_npy.stderr
    assert np.load(target).tolist() == expected["lr"]


def test_a_request_body_from_stdin_and_url_from_the_option(url: str, client: Client) -> None:
    body = {"schedule": {"type": "StepLR", "step_size": 2}, "lr": 0.1, "steps": 5}
    done = lrsched("--url", url, "curve", "-", stdin=json.dumps(body), url=None)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == client.curve_json(body["schedule"], 0.1, 5)


def test_plot_writes_png_and_svg(url: str, spec_file: Path, tmp_path: Path) -> None:
    png, svg = tmp_path / "curve.png", tmp_path / "curve.svg"
    assert (
        lrsched("plot", str(spec_file), "--steps", "100", "-o", str(png), url=url).returncode == 0
    )
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert (
        lrsched("plot", str(spec_file), "--steps", "100", "-o", str(svg), url=url).returncode == 0
    )
    assert b"<svg" in svg.read_bytes()[:500]


def test_progress_bar_reaches_the_whole_download(url: str, tmp_path: Path) -> None:
    target, cosine = tmp_path / "big.npy", tmp_path / "cosine.json"
    cosine.write_text(json.dumps({"type": "CosineAnnealingLR", "T_max": 1000}))
    args = ["--progress", "curve", str(cosine), "--steps", "200000", "--format", "npy"]
    done = lrsched(*args, "-o", str(target), url=url)
    assert done.returncode == 0, done.stderr
    size = target.stat().st_size
    assert size > 200000 * 8
    last = done.stderr.decode().rstrip("\n").split("\r")[-1]
    assert "100%" in last and f"of {size / 1e6:.1f} MB" in last


def test_exit_codes(url: str, spec_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "StepLR", "step_size": 3, "gamma": "x"}))
    refused = lrsched("--no-progress", "curve", str(bad), "--steps", "5", url=url)
    assert refused.returncode == cli.EXIT_REFUSED == 3
    assert b"gamma" in refused.stderr

    offline = f"http://127.0.0.1:{free_port()}"
    unreachable = lrsched("--retries", "0", "curve", str(spec_file), "--steps", "5", url=offline)
    assert unreachable.returncode == cli.EXIT_UNAVAILABLE == 4

    assert lrsched("curve", str(tmp_path / "missing.json"), url=url).returncode == 2
    assert lrsched("curve", str(spec_file), url=url).returncode == 2  # no --steps
    assert lrsched("frobnicate", url=url).returncode == 2

    unwritable = str(tmp_path / "no-such-dir" / "x.json")
    written = lrsched("curve", str(spec_file), "--steps", "5", "-o", unwritable, url=url)
    assert written.returncode == cli.EXIT_OUTPUT == 5
    failed = tmp_path / "failed.json"
    assert lrsched("curve", str(bad), "--steps", "5", "-o", str(failed), url=url).returncode == 3
    assert not failed.exists()  # no partial output


def test_session_report_show_and_out_of_order_epoch(url: str, client: Client) -> None:
    session = client.create_session({"patience": 0, "factor": 0.5}, [0.1])
    ident, token = session.id, session.token
    first = lrsched("session", "report", ident, "--token", token, "--epoch", "0",
                    "--metric", "1.0", url=url)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["lr"] == [0.1]
    second = lrsched("session", "report", ident, "--token", token, "--epoch", "1",
                     "--metric", "nan", url=url)  # fmt: skip
    assert json.loads(second.stdout)["reduced"] is True  # nan is never an improvement
    shown = json.loads(lrsched("session", "show", ident, "--token", token, url=url).stdout)
    assert shown["epoch"] == 2 and shown["lr"] == [0.05]
    assert session.state().lr == (0.05,)
    skipped = lrsched("session", "report", ident, "--token", token, "--epoch", "5",
                      "--metric", "1.0", url=url)  # fmt: skip
    assert skipped.returncode == 3 and b"409" in skipped.stderr
    wrong = lrsched("session", "show", ident, "--token", "nope", url=url)
    assert wrong.returncode == 3


def test_downloads_are_retried_before_any_byte_is_written(
    proxy: FlakyProxy, spec_file: Path, tmp_path: Path, client: Client
) -> None:
    proxy.fail_next("reset", "503")
    target = tmp_path / "curve.json"
    done = lrsched("curve", str(spec_file), "--steps", "50", "-o", str(target), url=proxy.url)
    assert done.returncode == 0, done.stderr
    assert json.loads(target.read_text()) == client.curve_json(ONE_CYCLE, 0.001, 50)
    actions = [action for _, _, action in proxy.requests("/v1/schedules")]
    assert actions == ["reset", "503", "pass"]
