"""Streaming upload and download of the artifact stores, on local disk and moto S3."""

from __future__ import annotations

import os
import tracemalloc

import pytest

MB = 2**20


@pytest.mark.parametrize("store_name", ["local_store", "s3_store"])
def test_upload_then_download_round_trip(request, store_name, tmp_path):
    """A 9 MB file (above s3transfer's 8 MB multipart threshold) comes back byte for byte."""
    store = request.getfixturevalue(store_name)
    payload = os.urandom(9 * MB)
    source = tmp_path / "source.bin"
    source.write_bytes(payload)
    assert store.upload(source, "models/m1/big.bin") == store.uri("models/m1/big.bin")
    assert store.list("models/m1/") == ["models/m1/big.bin"]
    target = tmp_path / "copy" / "big.bin"
    target.parent.mkdir()
    assert store.download("models/m1/big.bin", target) == target
    assert target.read_bytes() == payload
    assert sorted(p.name for p in target.parent.iterdir()) == ["big.bin"]  # no temporary name left


@pytest.mark.parametrize("store_name", ["local_store", "s3_store"])
def test_download_of_a_missing_key_is_file_not_found(request, store_name, tmp_path):
    store = request.getfixturevalue(store_name)
    with pytest.raises(FileNotFoundError, match="models/none/x.npy"):
        store.download("models/none/x.npy", tmp_path / "x.npy")
    assert not (tmp_path / "x.npy").exists()


def test_local_download_does_not_hold_the_file_in_memory(local_store, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(32 * MB))
    local_store.upload(source, "big.bin")
    tracemalloc.start()
    try:
        local_store.download("big.bin", tmp_path / "copy.bin")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (tmp_path / "copy.bin").stat().st_size == 32 * MB
    assert peak < 2 * MB, f"download allocated {peak / MB:.1f} MB for a 32 MB file"


def test_upload_refuses_a_key_outside_the_store(local_store, tmp_path):
    source = tmp_path / "x.bin"
    source.write_bytes(b"x")
    with pytest.raises(ValueError, match="escapes"):
        local_store.upload(source, "../outside.bin")
