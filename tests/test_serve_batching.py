"""The dynamic batcher on its own: batches bounded by max_batch, one call per batch, a failing
item fails only its own request, no wait without concurrent load."""

from __future__ import annotations

import asyncio
import time

import pytest

from spectran.serve.batching import Batcher


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_concurrent_items_share_calls_up_to_max_batch():
    calls: list[list[int]] = []

    def double(items):
        calls.append(list(items))
        time.sleep(0.01)
        return [2 * i for i in items]

    async def main():
        b = Batcher(double, max_batch=4, max_wait=0.05)
        await b.start()
        out = await asyncio.gather(*(b.submit(i) for i in range(10)))
        await b.stop()
        return out, b.stats

    out, stats = _run(main())
    assert out == [2 * i for i in range(10)]
    assert sorted(i for c in calls for i in c) == list(range(10))
    assert max(len(c) for c in calls) == 4 and len(calls) == 3 == stats.batches and stats.largest == 4


def test_a_failing_item_fails_only_its_own_request():
    def picky(items):
        if "bad" in items:
            raise ValueError("bad item")
        return [s.upper() for s in items]

    async def main():
        b = Batcher(picky, max_batch=8, max_wait=0.05)
        await b.start()
        out = await asyncio.gather(*(b.submit(s) for s in ["a", "bad", "c"]), return_exceptions=True)
        after = await b.submit("d")  # the worker is still alive
        await b.stop()
        return out, after

    out, after = _run(main())
    assert out[0] == "A" and out[2] == "C" and isinstance(out[1], ValueError) and after == "D"


def test_a_lone_request_does_not_wait_after_a_batch_of_one():
    async def main():
        b = Batcher(list, max_batch=8, max_wait=0.5)
        await b.start()
        first = time.perf_counter()
        await b.submit(1)  # the first batch may wait (load unknown)
        first = time.perf_counter() - first
        t0 = time.perf_counter()
        await b.submit(2)  # after a batch of one: at once
        second = time.perf_counter() - t0
        await b.stop()
        return first, second

    first, second = _run(main())
    assert first >= 0.45 and second < 0.25


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        Batcher(lambda items: items, max_batch=0)
