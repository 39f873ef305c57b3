"""The examples run to the end against the service, in subprocesses, as a user runs them."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.client.server import REPO

pytest.importorskip("torch")
pytestmark = pytest.mark.torch


def run_example(name: str, url: str, *args: str, timeout: float) -> str:
    """Run ``examples/<name>`` with the client on PYTHONPATH; its stdout (it must succeed)."""
    paths = [str(REPO / "client" / "src"), os.environ.get("PYTHONPATH", "")]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    env.pop("LRSCHED_URL", None)  # --url alone says where the service is
    result = subprocess.run(
        [sys.executable, "-W", "error", str(REPO / "examples" / name), "--url", url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_train_mnist_like_runs_one_cycle_and_plateau_to_the_end(url: str) -> None:
    output = run_example(
        "train_mnist_like.py", url, "--epochs", "3", "--samples", "1024", timeout=120
    )
    assert "[RemoteLR OneCycleLR] epoch 2: step 48/48" in output  # 3 epochs x 16 batches
    assert re.search(r"\[RemotePlateau\] the session decided 3 epochs", output)
    assert "final validation accuracy" in output


def test_ddp_plateau_two_ranks_get_the_same_lr_every_epoch(url: str) -> None:
    output = run_example("ddp_plateau.py", url, "--world-size", "2", "--epochs", "3", timeout=150)
    lines = re.findall(r"rank (\d) epoch (\d): val loss [\d.]+ -> lr ([\d.]+)", output)
    by_epoch: dict[str, set[str]] = {}
    for _, epoch, lr in lines:
        by_epoch.setdefault(epoch, set()).add(lr)
    assert len(lines) == 6 and all(len(lrs) == 1 for lrs in by_epoch.values()), output
    assert "final lr" in output and "on all 2 ranks" in output


def test_ddp_training_control_ranks_agree_on_the_range_test_and_the_stop(url: str) -> None:
    output = run_example("ddp_training_control.py", url, "--world-size", "2", timeout=150)
    tests = set(re.findall(r"range test stopped at step (\d+) \((\w+)\); suggested=(\S+)", output))
    assert len(tests) == 1, output  # both ranks: the same step, reason and suggestion
    epochs = re.findall(r"rank (\d) epoch (\d+): val loss [\d.]+ stop (True|False)", output)
    last = {rank: max(int(epoch) for r, epoch, _ in epochs if r == rank) for rank in "01"}
    assert last["0"] == last["1"], output  # no rank trained on alone
    assert {stop for _, epoch, stop in epochs if int(epoch) == last["0"]} == {"True"}, output
    assert "best epoch" in output
