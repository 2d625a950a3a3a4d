"""Dynamic batching: concurrent requests answered by one call of a batch function.

A :class:`Batcher` lives on the server's event loop. :meth:`Batcher.submit` queues one item and
awaits its result; a single worker task takes the queued items as one batch once ``max_batch``
are waiting or the oldest has waited ``max_wait`` seconds (whichever is first; when the last
batch held a single item, i.e. there is no concurrent load, it does not wait), and runs the batch
function on the model thread (one thread: the model is never called concurrently, and
:meth:`Batcher.exclusive` runs other model work, such as adding items, between batches).
``max_batch = 1`` answers every request alone (no batching, no wait).

While a batch runs, new requests queue up; the next batch starts as soon as the current one ends
if its oldest request has already waited ``max_wait``, so under load batches grow by themselves.
If a batch raises, its items are retried one by one, so one failing item fails only its own request.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class BatchStats:
    batches: int = 0
    items: int = 0
    largest: int = 0

    def as_dict(self) -> dict[str, Any]:
        mean = self.items / self.batches if self.batches else 0.0
        return {"batches": self.batches, "items": self.items, "largest": self.largest, "mean": round(mean, 2)}


class Batcher(Generic[T, R]):
    def __init__(self, run_batch: Callable[[Sequence[T]], Sequence[R]], max_batch: int = 64,
                 max_wait: float = 0.002):
        if max_batch < 1 or max_wait < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait >= 0, got {max_batch}, {max_wait}")
        self.run_batch, self.max_batch, self.max_wait = run_batch, max_batch, max_wait
        self.stats = BatchStats()
        self._last = 2  # size of the last batch: after a batch of one (no load) nobody is waited for
        self._pending: deque[tuple[T, asyncio.Future[R], float]] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="spectran-model")

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._work(), name="spectran-batcher")

    async def stop(self) -> None:
        """Answer what is queued, then stop the worker and the model thread."""
        while self._pending:
            await asyncio.sleep(0.001)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=True)

    @property
    def queued(self) -> int:
        return len(self._pending)

    async def submit(self, item: T) -> R:
        if self._task is None or self._task.done() or self._wake is None:
            raise RuntimeError("the batcher is not running")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future, time.monotonic()))
        self._wake.set()
        return await future

    async def exclusive(self, fn: Callable[[], R]) -> R:
        """Run ``fn`` on the model thread, between batches."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _work(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            while len(self._pending) < self.max_batch and self._last > 1:
                left = self._pending[0][2] + self.max_wait - time.monotonic()
                if left <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), left)
                except TimeoutError:
                    break
            batch = [self._pending.popleft() for _ in range(min(self.max_batch, len(self._pending)))]
            batch = [entry for entry in batch if not entry[1].done()]  # a client that went away
            if not batch:
                continue
            self._last = len(batch)
            self.stats.batches += 1
            self.stats.items += len(batch)
            self.stats.largest = max(self.stats.largest, len(batch))
            await self._answer(loop, batch)

    async def _answer(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[T, asyncio.Future[R], float]]) -> None:
        try:
            results = await loop.run_in_executor(self._executor, self.run_batch, [item for item, _, _ in batch])
        except Exception as exc:  # noqa: BLE001 - handed to the request that caused it, found one by one
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            for entry in batch:
                await self._answer(loop, [entry])
            return
        for (_, future, _), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
