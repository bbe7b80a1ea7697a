"""The node's cache of embedding files: downloaded once, reused, safe under concurrent loaders,
pruned, bad files refused with a readable error, S3 (moto) like a local folder."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from recsys.serving import model_cache as embedding_cache
from recsys.families.vectors.served import EmbeddingsError
from recsys.serving.model_cache import load_served
from recsys.integrity import ArtifactIntegrityError
from recsys.artifacts import LocalArtifactStore, model_key
from recsys.families.vectors.files import EMBEDDING_FILES, publish_arrays


def arrays(seed=0, users=40, items=30, dim=5):
    rng = np.random.default_rng(seed)
    return (rng.permutation(np.arange(1, users + 1) * 3), rng.normal(size=(users, dim)).astype(np.float32),
            rng.permutation(np.arange(100, 100 + items)), rng.normal(size=(items, dim)).astype(np.float32))


class CountingStore(LocalArtifactStore):
    """A local store that records every download (in a file, so that forked processes count too)
    and can be slowed down, to make loaders overlap."""

    def __init__(self, root, log: Path, delay: float = 0.0):
        super().__init__(root)
        self.log, self.delay = log, delay

    def download(self, key, path):
        with open(self.log, "a") as fh:
            fh.write(key + "\n")
        time.sleep(self.delay)
        return super().download(key, path)

    def downloads(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def store(tmp_path):
    return CountingStore(tmp_path / "artifacts", tmp_path / "downloads.log")


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(embedding_cache.TMP))


def test_downloaded_once_then_reused_from_the_cache(store, tmp_path):
    user_ids, user_vectors, item_ids, item_vectors = arrays()
    sums = publish_arrays(store, "m1", user_ids, user_vectors, item_ids, item_vectors)
    root = tmp_path / "cache"
    first = load_served(store, "m1", root, sums)
    assert store.downloads() == [model_key("m1", f) for f in EMBEDDING_FILES]
    assert sorted(p.name for p in (root / "m1").iterdir()) == sorted((*EMBEDDING_FILES, embedding_cache.MANIFEST))
    assert leftovers(root) == []
    second = load_served(store, "m1", root, sums)
    assert len(store.downloads()) == len(EMBEDDING_FILES)  # the second load downloaded nothing
    assert Path(second.user_vectors.base.filename) == root / "m1" / "user_vectors.npy"
    order = np.argsort(user_ids)
    np.testing.assert_array_equal(second.user_ids, user_ids[order])
    np.testing.assert_array_equal(second.user_vectors, user_vectors[order])
    np.testing.assert_array_equal(first.item_vectors, second.item_vectors)


def test_concurrent_loaders_in_threads_download_once(tmp_path):
    store = CountingStore(tmp_path / "artifacts", tmp_path / "downloads.log", delay=0.05)
    sums = publish_arrays(store, "m1", *arrays(1))
    root, results, errors = tmp_path / "cache", [], []
    start = threading.Barrier(4)

    def load():
        start.wait()
        try:
            results.append(load_served(store, "m1", root, sums))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 4
    assert len(store.downloads()) == len(EMBEDDING_FILES) and leftovers(root) == []
    for emb in results[1:]:
        np.testing.assert_array_equal(emb.user_vectors, results[0].user_vectors)


def _load_in_process(store, root, sums, go, out):
    go.wait()
    try:
        emb = load_served(store, "m1", root, sums)
        out.put((emb.user_vector(int(emb.user_ids[3])).tolist(), len(emb.item_ids)))
    except Exception as exc:  # noqa: BLE001 - the parent compares the answers
        out.put(repr(exc))


def test_concurrent_worker_processes_share_one_download(tmp_path):
    """Three forked workers start together: one downloads, the others wait on the lock and reuse its folder."""
    store = CountingStore(tmp_path / "artifacts", tmp_path / "downloads.log", delay=0.1)
    user_ids, user_vectors, item_ids, item_vectors = arrays(2)
    sums = publish_arrays(store, "m1", user_ids, user_vectors, item_ids, item_vectors)
    ctx = multiprocessing.get_context("fork")
    go, out, root = ctx.Event(), ctx.Queue(), tmp_path / "cache"
    procs = [ctx.Process(target=_load_in_process, args=(store, root, sums, go, out)) for _ in range(3)]
    for p in procs:
        p.start()
    go.set()
    answers = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    expected = user_vectors[np.argsort(user_ids)][3].tolist()
    assert answers == [(expected, len(item_ids))] * 3
    assert len(store.downloads()) == len(EMBEDDING_FILES) and leftovers(root) == []


def test_s3_store_downloads_into_the_cache(s3_store, tmp_path):
    user_ids, user_vectors, item_ids, item_vectors = arrays(3)
    sums = publish_arrays(s3_store, "m1", user_ids, user_vectors, item_ids, item_vectors)
    emb = load_served(s3_store, "m1", tmp_path / "cache", sums)
    assert (tmp_path / "cache" / "m1" / "item_norms.npy").is_file()
    order = np.argsort(item_ids)
    np.testing.assert_array_equal(emb.item_ids, item_ids[order])
    np.testing.assert_array_equal(emb.item_vectors, item_vectors[order])


def _corrupt(store, model_id, name, data: bytes | None = None, array=None):
    if array is not None:
        path = Path(store.uri(model_key(model_id, name)))
        np.save(path, array)
    elif data is None:
        Path(store.uri(model_key(model_id, name))).unlink()
    else:
        store.put_bytes(model_key(model_id, name), data)


@pytest.mark.parametrize("name, change, message", [
    ("user_vectors.npy", None, "user_vectors.npy is missing"),
    ("item_vectors.npy", b"\x93NUMPY garbage", "not a readable .npy"),
    ("user_vectors.npy", np.zeros((3, 5), dtype=np.float32), "do not match 40 user_ids"),
    ("item_ids.npy", np.arange(30, dtype=np.int64)[::-1].copy(), "strictly increasing"),
    ("item_norms.npy", np.zeros(30, dtype=np.float64), "item_norms float64"),
    ("item_vectors.npy", np.zeros((30, 4), dtype=np.float32), "user dim 5 != item dim 4"),
])
def test_bad_or_missing_files_give_a_readable_error_and_leave_nothing(store, tmp_path, name, change, message):
    """Files the publisher itself wrote wrong (their checksums recorded as they are) fail the shape checks."""
    sums = publish_arrays(store, "m1", *arrays())
    _corrupt(store, "m1", name, **({"array": change} if isinstance(change, np.ndarray) else {"data": change}))
    if store.exists(model_key("m1", name)):
        sums = {**sums, name: store.sha256(model_key("m1", name))}
    root = tmp_path / "cache"
    with pytest.raises(EmbeddingsError, match=message):
        load_served(store, "m1", root, sums)
    assert not (root / "m1").exists() and leftovers(root) == []


@pytest.mark.parametrize("name", EMBEDDING_FILES)
def test_a_file_altered_after_publish_is_refused_by_name(store, tmp_path, name):
    sums = publish_arrays(store, "m1", *arrays())
    data = bytearray(store.get_bytes(model_key("m1", name)))
    data[-1] ^= 1  # one bit of the last value: still a valid .npy of the right shape
    store.put_bytes(model_key("m1", name), bytes(data))
    root = tmp_path / "cache"
    with pytest.raises(ArtifactIntegrityError, match=f"m1/{name}: checksum mismatch"):
        load_served(store, "m1", root, sums)
    with pytest.raises(ArtifactIntegrityError, match=f"m1/{EMBEDDING_FILES[0]}: no recorded checksum"):
        load_served(store, "m1", root, {})
    assert not (root / "m1").exists() and leftovers(root) == []


def test_a_cached_folder_is_verified_again_when_the_record_differs(store, tmp_path):
    """A folder cached by an earlier version (no manifest) or for another record is downloaded and checked again."""
    sums = publish_arrays(store, "m1", *arrays())
    root = tmp_path / "cache"
    load_served(store, "m1", root, sums)
    (root / "m1" / embedding_cache.MANIFEST).unlink()
    load_served(store, "m1", root, sums)
    assert len(store.downloads()) == 2 * len(EMBEDDING_FILES)
    altered = {**sums, "item_ids.npy": "0" * 64}
    with pytest.raises(ArtifactIntegrityError, match="item_ids.npy"):
        load_served(store, "m1", root, altered)
    assert (root / "m1").is_dir()  # the verified copy stays for the record it matches
    downloaded = len(store.downloads())
    load_served(store, "m1", root, sums)
    assert len(store.downloads()) == downloaded  # mapped from that copy


@pytest.mark.parametrize("change", ["byte", "deleted", "added"])
def test_a_cached_file_changed_on_the_node_is_refused_and_downloaded_again(store, tmp_path, change, caplog):
    """A byte of a cached .npy changed on this node's disk after the download (its manifest untouched), a
    file deleted, or one added: the next load hashes the folder again, refuses it and downloads the
    registry's files; the served vectors are the published ones."""
    import logging

    user_ids, user_vectors, item_ids, item_vectors = arrays()
    sums = publish_arrays(store, "m1", user_ids, user_vectors, item_ids, item_vectors)
    root = tmp_path / "cache"
    load_served(store, "m1", root, sums)
    cached = root / "m1" / "user_vectors.npy"
    if change == "byte":
        data = bytearray(cached.read_bytes())
        data[-4:] = np.float32(1e6).tobytes()  # the last user's last component: still a valid .npy
        cached.write_bytes(bytes(data))
    elif change == "deleted":
        (root / "m1" / "item_norms.npy").unlink()
    else:
        (root / "m1" / "extra.npy").write_bytes(cached.read_bytes())
    with caplog.at_level(logging.ERROR, logger="recsys.serving.model_cache"):
        again = load_served(store, "m1", root, sums)  # the next start of a worker
    assert store.downloads() == 2 * [model_key("m1", f) for f in EMBEDDING_FILES]
    assert any("changed on this node's disk" in r.getMessage() for r in caplog.records)
    assert {n: embedding_cache.sha256_file(root / "m1" / n) for n in EMBEDDING_FILES} == {
        n: sums[n] for n in EMBEDDING_FILES}
    published = np.load(store.uri(model_key("m1", "user_vectors.npy")))
    np.testing.assert_array_equal(again.user_vectors, published)
    assert published[-1, -1] != np.float32(1e6)
    load_served(store, "m1", root, sums)
    assert len(store.downloads()) == 2 * len(EMBEDDING_FILES)  # the intact folder is reused


def test_prune_keeps_served_models_and_removes_the_rest(store, tmp_path):
    root = tmp_path / "cache"
    for model_id in ("m1", "m2", "m3"):
        load_served(store, model_id, root, publish_arrays(store, model_id, *arrays()))
    dead = root / f"{embedding_cache.TMP}m1+crashed"  # a download that died half-way
    dead.mkdir()
    assert embedding_cache.prune(root, {"m1", "m3"}) == ["m2"]
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["m1", "m3"]
    assert not dead.exists() and not (root / f"{embedding_cache.LOCK}m2").exists()


def test_prune_leaves_a_running_download_alone(tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    running = root / f"{embedding_cache.TMP}m9+abc"
    running.mkdir()
    with embedding_cache._locked(root / f"{embedding_cache.LOCK}m9") as taken:
        assert taken
        assert embedding_cache.prune(root, set()) == []
        assert running.is_dir()
    embedding_cache.prune(root, set())
    assert not running.exists()


def test_model_ids_must_be_plain_folder_names(store, tmp_path):
    for bad in ("../escape", ".hidden", "a/b", ""):
        with pytest.raises(EmbeddingsError, match="plain folder name"):
            load_served(store, bad, tmp_path / "cache", {})
