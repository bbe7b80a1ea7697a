"""The group-commit batcher alone (no database): what each waiter is told and when."""

from __future__ import annotations

import asyncio

import pytest

from recsys.serving.stores.group_commit import GroupCommit

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


class Recorder:
    """A batch writer that records its batches; ``gate`` holds a write until the test releases it."""

    def __init__(self, fail_items=(), raise_on_batch: int | None = None):
        self.batches: list[list] = []
        self.fail_items, self.raise_on_batch = set(fail_items), raise_on_batch
        self.gate: asyncio.Event | None = None

    async def __call__(self, items: list):
        self.batches.append(list(items))
        if self.gate is not None:
            await self.gate.wait()
        if self.raise_on_batch == len(self.batches):
            raise ConnectionError("the transaction failed")
        return [ValueError(f"bad {x}") if x in self.fail_items else f"ok {x}" for x in items]


async def test_each_waiter_gets_its_own_result_in_order():
    write = Recorder()
    batcher = GroupCommit(write, max_batch=100, max_wait_s=0.01)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(20)))
    assert results == [f"ok {i}" for i in range(20)]
    assert write.batches == [list(range(20))]  # one transaction for the 20 concurrent requests


async def test_a_failed_transaction_fails_every_waiter_of_its_batch_and_only_those():
    write = Recorder(raise_on_batch=1)
    batcher = GroupCommit(write, max_batch=5, max_wait_s=0.01)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(8)), return_exceptions=True)
    assert [type(r) for r in results[:5]] == [ConnectionError] * 5
    assert results[5:] == ["ok 5", "ok 6", "ok 7"]
    assert write.batches == [[0, 1, 2, 3, 4], [5, 6, 7]]
    assert await batcher.submit(99) == "ok 99"  # the worker survived the failure


async def test_a_refused_item_fails_alone():
    batcher = GroupCommit(Recorder(fail_items={3}), max_batch=10, max_wait_s=0.01)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(6)), return_exceptions=True)
    assert isinstance(results[3], ValueError) and str(results[3]) == "bad 3"
    assert [r for i, r in enumerate(results) if i != 3] == [f"ok {i}" for i in (0, 1, 2, 4, 5)]


async def test_the_batch_size_is_bounded():
    write = Recorder()
    batcher = GroupCommit(write, max_batch=7, max_wait_s=0.05)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(30)))
    assert results == [f"ok {i}" for i in range(30)]
    assert [len(b) for b in write.batches] == [7, 7, 7, 7, 2]
    assert [x for b in write.batches for x in b] == list(range(30))  # oldest first


async def test_a_full_batch_leaves_without_waiting_the_whole_wait():
    write = Recorder()
    batcher = GroupCommit(write, max_batch=4, max_wait_s=30)
    results = await asyncio.wait_for(asyncio.gather(*(batcher.submit(i) for i in range(4))), 5)
    assert results == [f"ok {i}" for i in range(4)]


async def test_requests_arriving_during_a_commit_go_in_the_next_batch_as_soon_as_it_returns():
    write = Recorder()
    write.gate = asyncio.Event()
    batcher = GroupCommit(write, max_batch=100, max_wait_s=0, max_in_flight=1)
    first = asyncio.ensure_future(batcher.submit("a"))
    while not write.batches:
        await asyncio.sleep(0)
    later = [asyncio.ensure_future(batcher.submit(x)) for x in ("b", "c", "d")]
    await asyncio.sleep(0.05)
    assert write.batches == [["a"]] and not first.done() and len(batcher) == 3  # nothing answered before commit
    write.gate.set()
    assert await first == "ok a" and await asyncio.gather(*later) == ["ok b", "ok c", "ok d"]
    assert write.batches == [["a"], ["b", "c", "d"]]


async def test_at_most_max_in_flight_batches_are_written_at_once_and_a_key_in_one_waits():
    write = Recorder()
    write.gate = asyncio.Event()
    batcher = GroupCommit(write, max_batch=100, max_wait_s=0, max_in_flight=2, key=lambda x: x.split("#")[0])
    futures = [asyncio.ensure_future(batcher.submit("k#1"))]
    await asyncio.sleep(0.02)
    futures += [asyncio.ensure_future(batcher.submit(x)) for x in ("k#2", "m#1")]
    await asyncio.sleep(0.02)
    assert write.batches == [["k#1"], ["m#1"]]  # a second writer, but "k#2" waits for the batch holding "k#1"
    futures.append(asyncio.ensure_future(batcher.submit("n#1")))
    await asyncio.sleep(0.02)
    assert len(write.batches) == 2 and len(batcher) == 2  # both writers busy
    write.gate.set()
    assert await asyncio.gather(*futures) == ["ok k#1", "ok k#2", "ok m#1", "ok n#1"]
    assert sorted(map(sorted, write.batches[2:])) == [["k#2", "n#1"]]


async def test_the_same_key_never_shares_a_batch():
    write = Recorder()
    batcher = GroupCommit(write, max_batch=10, max_wait_s=0.01, key=lambda x: x.split("#")[0])
    items = ["e1#a", "e2#a", "e1#b", "e3#a", "e1#c", "e2#b"]
    results = await asyncio.gather(*(batcher.submit(x) for x in items))
    assert results == [f"ok {x}" for x in items]
    assert write.batches == [["e1#a", "e2#a", "e3#a"], ["e1#b", "e2#b"], ["e1#c"]]


async def test_drain_waits_for_queued_items_and_no_task_outlives_the_queue():
    write = Recorder()
    batcher = GroupCommit(write, max_batch=3, max_wait_s=0.01)
    futures = [asyncio.ensure_future(batcher.submit(i)) for i in range(7)]
    await asyncio.sleep(0)
    await batcher.drain()
    assert all(f.done() for f in futures) and len(batcher) == 0
    assert batcher._task is None or batcher._task.done()


def test_bounds_are_checked():
    with pytest.raises(ValueError, match="max_batch"):
        GroupCommit(Recorder(), max_batch=0)
    with pytest.raises(ValueError, match="max_in_flight"):
        GroupCommit(Recorder(), max_in_flight=0)
    with pytest.raises(ValueError, match="max_wait_s"):
        GroupCommit(Recorder(), max_wait_s=-1)
