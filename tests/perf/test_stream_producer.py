"""The JSON stream's producer thread: order, errors, and stopping when the client leaves."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from service.api.streaming import _offloaded
from tests.loop import run_in_fresh_loop


def collect(chunks: Iterator[bytes | memoryview], limit: int | None = None) -> list[bytes]:
    async def run() -> list[bytes]:
        got: list[bytes] = []
        stream = _offloaded(chunks)
        try:
            async for chunk in stream:
                got.append(bytes(chunk))
                if limit is not None and len(got) == limit:
                    break
        finally:
            await stream.aclose()
        return got

    return run_in_fresh_loop(run())


def test_chunks_arrive_in_order() -> None:
    chunks = [str(i).encode() for i in range(100)]
    assert collect(iter(chunks)) == chunks


def test_an_error_while_encoding_is_raised_to_the_response() -> None:
    def failing() -> Iterator[bytes]:
        yield b"first"
        raise ValueError("encoding failed")

    with pytest.raises(ValueError, match="encoding failed"):
        collect(failing())


def test_the_producer_stops_when_the_consumer_goes_away() -> None:
    produced = 0
    finished = threading.Event()

    def endless() -> Iterator[bytes]:
        nonlocal produced
        try:
            while True:
                produced += 1
                yield b"x"
        finally:
            finished.set()

    assert collect(endless(), limit=3) == [b"x"] * 3
    deadline = time.monotonic() + 5
    while not finished.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    # The thread stayed at most one chunk ahead, then stopped (its generator was closed
    # when it returned, or is left suspended and collected).
    assert produced <= 5
