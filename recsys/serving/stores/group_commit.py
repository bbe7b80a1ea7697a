"""Group commit: concurrent requests' writes go to the database together, one transaction per batch.

Each caller ``await``s :meth:`GroupCommit.submit`, which resolves only after the
write function returned for the batch holding its item, that is after that
batch's transaction committed. At most ``max_in_flight`` batches are written at
once: while they commit, new items queue, and the next batch leaves the moment a
writer is free (up to ``max_batch`` items, oldest first). When the writer was
idle it waits at most ``max_wait_s`` for companions (or until ``max_batch`` are
queued), so a lone event sees about one commit of latency.

The write function returns one result per item, in order: a value, or an
exception for that item alone (a row the database refused). If it raises, every
item of the batch gets that exception (the transaction failed: nothing of it is
known to be stored). Items with the same ``key`` (a client event id) are never written at
the same time: a later one waits until the batch holding the first one is done, so it meets
that committed row exactly as a retry would.

The worker task exists only while items are queued or written; it ends when both are
done and the next ``submit`` starts a new one, so nothing is left running when
the event loop ends.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
WriteBatch = Callable[[list[T]], Awaitable[Sequence["R | BaseException"]]]


class GroupCommit(Generic[T, R]):
    def __init__(self, write: WriteBatch, *, max_batch: int = 256, max_wait_s: float = 0.001,
                 max_in_flight: int = 2, key: Callable[[T], Hashable | None] = lambda item: None):
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError(f"max_batch and max_in_flight must be at least 1, got {max_batch}, {max_in_flight}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}")
        self.write, self.max_batch, self.max_wait_s, self.key = write, max_batch, max_wait_s, key
        self.max_in_flight = max_in_flight
        self._writing: set[asyncio.Task] = set()
        self._writing_keys: set[Hashable] = set()
        self._wake: asyncio.Event | None = None  # a new item, or a writer done
        self._queue: deque[tuple[T, asyncio.Future]] = deque()
        self._full: asyncio.Event | None = None  # made with the worker task, in the running loop
        self._task: asyncio.Task | None = None
        self.batches = 0  # batches written (for tests and logs)

    def __len__(self) -> int:
        return len(self._queue)

    async def submit(self, item: T) -> R:
        """Queue ``item``; its result once the batch holding it is written (or that batch's exception)."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._task is None or self._task.done():
            self._full, self._wake = asyncio.Event(), asyncio.Event()
            # a fresh context: the worker must not carry the first request's ids into its log lines
            self._task = asyncio.create_task(self._run(), context=contextvars.Context())
        if len(self._queue) >= self.max_batch:
            self._full.set()
        self._wake.set()
        return await future

    async def drain(self) -> None:
        """Wait until every queued item is written (app shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        await self._gather()
        while True:
            while self._queue and len(self._writing) < self.max_in_flight:
                batch = self._take()
                if not batch:  # every queued item waits for a batch being written
                    break
                task = asyncio.create_task(self._write(batch))
                self._writing.add(task)
            if not self._queue and not self._writing:
                return
            self._wake.clear()
            await self._wake.wait()

    async def _gather(self) -> None:
        """Idle writer: give concurrent requests ``max_wait_s`` (or until a batch is full) to join."""
        if len(self._queue) >= self.max_batch:
            return
        if self.max_wait_s == 0:
            await asyncio.sleep(0)  # the requests ready in this loop iteration still join
            return
        try:
            await asyncio.wait_for(self._full.wait(), self.max_wait_s)
        except asyncio.TimeoutError:
            pass

    def _take(self) -> list[tuple[T, asyncio.Future]]:
        """Up to ``max_batch`` queued items, oldest first; an item whose key is in this batch or in one being
        written stays queued (in order) for a later one."""
        batch, keys, held = [], set(self._writing_keys), []
        while self._queue and len(batch) < self.max_batch:
            item, future = self._queue.popleft()
            k = self.key(item)
            if k is not None and k in keys:
                held.append((item, future))
                continue
            if k is not None:
                keys.add(k)
            batch.append((item, future))
        self._queue.extendleft(reversed(held))
        self._writing_keys.update(k for k in map(self.key, (item for item, _ in batch)) if k is not None)
        return batch

    async def _write(self, batch: list[tuple[T, asyncio.Future]]) -> None:
        self.batches += 1
        try:
            await self._write_batch(batch)
        finally:
            self._writing.discard(asyncio.current_task())
            self._writing_keys.difference_update(self.key(item) for item, _ in batch)
            self._wake.set()

    async def _write_batch(self, batch: list[tuple[T, asyncio.Future]]) -> None:
        try:
            results = await self.write([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"the batch writer returned {len(results)} results for {len(batch)} items")
        except asyncio.CancelledError:
            for _, future in batch:
                if not future.done():
                    future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - the transaction failed: every waiter of the batch gets it
            log.debug("batch of %d failed: %s", len(batch), exc)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)


__all__ = ["GroupCommit"]
