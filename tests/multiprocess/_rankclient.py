"""A client process that plays ranks of plateau sessions against real service processes.

Run as ``python -m tests.multiprocess._rankclient PLAN.json RESULT.json``. The plan names the
service URLs and the jobs: one job is one rank of one session with its metric for every epoch.
Each job runs in its own thread and, for each epoch ``e`` in turn:

1. reports ``e`` and sends the same report again 0-2 more times, either one after another
   (after reading the previous answer) or all at once from several threads;
2. until the epoch is decided, polls: either ``GET /v1/sessions/{id}`` (decided once its
   ``epoch`` is past ``e``; while ``e`` is pending, an acknowledged rank must be among its
   pending ranks, else its report was lost) or the same report again (answered with the
   decision once made);
3. once decided, reports ``e`` again if no answer carried the decision yet, so every job
   holds the decision it would apply; only then goes on to ``e + 1`` (reporting ahead of the
   undecided epoch is a 409).

Every request goes to a URL chosen at random from the plan. A 503 is retried (and counted);
a transport error (a replica that was killed) is retried on a random URL when the plan allows
it, else it fails the job. Everything is bounded: a deadline for the whole run and a cap on
attempts per request and polls per epoch.

The result file holds every report answer with status 200, every unexpected status, the
counts of retried 503s and transport errors, and the failures (tracebacks) of jobs.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

MAX_ATTEMPTS = 200
"""Most attempts of one request (503s and transport errors are retried)."""

MAX_POLLS = 5000
"""Most polls while waiting for one epoch to be decided."""


class GiveUpError(RuntimeError):
    """The deadline passed or a cap was reached."""


@dataclass
class Tally:
    """What all jobs of this process observed (guarded by ``lock``)."""

    answers: list[dict[str, Any]] = field(default_factory=list)
    unexpected: list[dict[str, Any]] = field(default_factory=list)
    busy: int = 0
    transport_errors: int = 0
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Rank:
    """One job: a rank of a session, driven through every epoch of its metrics."""

    def __init__(self, plan: dict[str, Any], job: dict[str, Any], seed: int, tally: Tally) -> None:
        self.urls: list[str] = plan["urls"]
        self.tolerate_transport_errors: bool = plan["tolerate_transport_errors"]
        self.deadline: float = time.monotonic() + float(plan["deadline_seconds"])
        self.session: str = job["session"]
        self.rank: int = job["rank"]
        self.metrics: list[float | str] = job["metrics"]
        self.headers = {"Authorization": f"Bearer {job['token']}"}
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()
        self.tally = tally

    def _random(self) -> float:
        with self.rng_lock:
            return self.rng.random()

    def _check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise GiveUpError(f"session {self.session} rank {self.rank}: deadline passed")

    def request(
        self, client: httpx.Client, method: str, path: str, body: Any = None
    ) -> httpx.Response:
        """One request to a random URL; 503s and (if allowed) transport errors are retried."""
        for attempt in range(MAX_ATTEMPTS):
            self._check_deadline()
            with self.rng_lock:
                url = self.rng.choice(self.urls)
            try:
                response = client.request(
                    method, f"{url}{path}", json=body, headers=self.headers, timeout=15.0
                )
            except httpx.TransportError:
                with self.tally.lock:
                    self.tally.transport_errors += 1
                if not self.tolerate_transport_errors:
                    raise
                time.sleep(min(0.2, 0.005 * 2 ** min(attempt, 6)) * (0.5 + self._random()))
                continue
            with self.tally.lock:
                self.tally.requests += 1
            if response.status_code == 503:
                with self.tally.lock:
                    self.tally.busy += 1
                    self.tally.unexpected.append(self._unexpected(path, body, response))
                time.sleep(0.01 + 0.02 * self._random())
                continue
            return response
        raise GiveUpError(f"{method} {path}: no answer after {MAX_ATTEMPTS} attempts")

    def _unexpected(self, path: str, body: Any, response: httpx.Response) -> dict[str, Any]:
        return {
            "session": self.session,
            "rank": self.rank,
            "path": path,
            "request": body,
            "status": response.status_code,
            "body": response.text,
        }

    def report(self, client: httpx.Client, epoch: int) -> dict[str, Any] | None:
        """Report ``epoch``; the answer (recorded) if 200, else None (recorded as unexpected)."""
        body = {"epoch": epoch, "metric": self.metrics[epoch], "rank": self.rank}
        response = self.request(client, "POST", f"/v1/sessions/{self.session}/reports", body)
        if response.status_code != 200:
            with self.tally.lock:
                self.tally.unexpected.append(self._unexpected("reports", body, response))
            return None
        answer: dict[str, Any] = response.json()
        with self.tally.lock:
            self.tally.answers.append(
                {"session": self.session, "rank": self.rank, "epoch": epoch, "answer": answer}
            )
        return answer

    def decided_by_get(self, client: httpx.Client, epoch: int, acknowledged: bool) -> bool:
        """Whether ``GET /v1/sessions/{id}`` shows ``epoch`` decided.

        Once this rank's report of ``epoch`` was ``acknowledged`` (answered 200), the rank must
        be among the pending ranks while ``epoch`` is pending: else the report was lost.
        """
        response = self.request(client, "GET", f"/v1/sessions/{self.session}")
        if response.status_code != 200:
            with self.tally.lock:
                self.tally.unexpected.append(self._unexpected("get", None, response))
            return False
        view = response.json()
        if acknowledged and view["epoch"] == epoch and self.rank not in view["pending_ranks"]:
            with self.tally.lock:  # this rank's report of the pending epoch was acknowledged
                self.tally.unexpected.append(
                    {
                        "session": self.session,
                        "rank": self.rank,
                        "lost": f"acknowledged report of epoch {epoch} missing",
                        "view": view,
                    }
                )
        return int(view["epoch"]) > epoch

    def run(self) -> None:
        """Drive the rank through every epoch (see the module docstring)."""
        with httpx.Client() as client, ThreadPoolExecutor(max_workers=3) as pool:
            for epoch in range(len(self.metrics)):
                copies = 1 + int(self._random() * 3)  # the report and 0-2 retries
                if copies > 1 and self._random() < 0.5:  # retries racing the first report
                    futures = [pool.submit(self.report, client, epoch) for _ in range(copies)]
                    answers = [future.result() for future in futures]
                else:  # retries after reading the previous answer
                    answers = [self.report(client, epoch) for _ in range(copies)]
                decided = any(a is not None and a["decided"] for a in answers)
                acknowledged = any(a is not None for a in answers)
                holds_decision = decided
                polls = 0
                while not decided:
                    polls += 1
                    if polls > MAX_POLLS:
                        raise GiveUpError(f"epoch {epoch} undecided after {MAX_POLLS} polls")
                    time.sleep(0.002 + 0.02 * self._random())
                    if self._random() < 0.5:
                        decided = self.decided_by_get(client, epoch, acknowledged)
                    else:
                        answer = self.report(client, epoch)
                        acknowledged = acknowledged or answer is not None
                        decided = holds_decision = answer is not None and answer["decided"]
                if not holds_decision:  # a retry after the decision: the recorded answer
                    self.report(client, epoch)


def main(argv: list[str]) -> int:
    """Run every job of the plan in ``argv[0]`` in parallel; write the tally to ``argv[1]``."""
    plan = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    tally = Tally()
    seeds = random.Random(plan["seed"])
    ranks = [Rank(plan, job, seeds.randrange(2**32), tally) for job in plan["jobs"]]

    def guarded(rank: Rank) -> None:
        try:
            rank.run()
        except BaseException:
            with tally.lock:
                tally.failures.append(
                    f"session {rank.session} rank {rank.rank}:\n{traceback.format_exc()}"
                )

    threads = [threading.Thread(target=guarded, args=(rank,)) for rank in ranks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = {
        "answers": tally.answers,
        "unexpected": tally.unexpected,
        "busy": tally.busy,
        "transport_errors": tally.transport_errors,
        "requests": tally.requests,
        "failures": tally.failures,
    }
    Path(argv[1]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
