"""Artifact integrity: the SHA-256 of every file of a model, recorded in the registry, checked before use.

Whoever writes the model files (train, publish) records their checksums on the model's
registry row (``recommendation_models.artifacts``: ``{file name: hex sha256}``, names
relative to ``models/<model_id>/``). Whoever reads them checks the bytes it is about to
parse against that record first: a file without a recorded checksum is refused like a
file whose checksum differs, so a file dropped into the bucket by someone else is never
read. Large files are hashed in chunks (``recsys.artifacts.HASH_CHUNK``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from recsys.artifacts import ArtifactStore, model_key, sha256_file

MISSING, MISMATCH, UNRECORDED, OK = "missing", "mismatch", "no recorded checksum", "ok"


class ArtifactIntegrityError(ValueError):
    """A model file that is missing, has no recorded checksum, or does not match it (``uri`` names it)."""

    def __init__(self, uri: str, problem: str):
        self.uri, self.problem = uri, problem
        super().__init__(f"{uri}: {problem}")


def _expected(checksums: Mapping[str, str] | None, name: str, uri: str) -> str:
    digest = (checksums or {}).get(name)
    if not digest:
        raise ArtifactIntegrityError(uri, f"{UNRECORDED} in the registry: refused (an unverified file is never read)")
    return digest


def _compare(actual: str, expected: str, uri: str) -> None:
    if actual != expected:
        raise ArtifactIntegrityError(uri, f"checksum {MISMATCH}: sha256 {actual[:16]}..., "
                                          f"the registry recorded {expected[:16]}... (altered or replaced)")


def verify_bytes(data: bytes, checksums: Mapping[str, str] | None, name: str, uri: str) -> bytes:
    """``data`` (the file ``name`` read whole) when it matches its recorded checksum."""
    _compare(hashlib.sha256(data).hexdigest(), _expected(checksums, name, uri), uri)
    return data


def verify_file(path: Path, checksums: Mapping[str, str] | None, name: str, uri: str) -> None:
    """Check a local copy (downloaded from ``uri``) against the recorded checksum of ``name``."""
    expected = _expected(checksums, name, uri)
    _compare(sha256_file(path), expected, uri)


def folder_checksums(folder: Path, names: Iterable[str]) -> dict[str, str]:
    """``{name: sha256}`` of files in a local folder (what a writer records after uploading them)."""
    return {name: sha256_file(folder / name) for name in names}


def check_stored(store: ArtifactStore, model_id: str, checksums: Mapping[str, str] | None,
                 required: Iterable[str] = ()) -> dict[str, str]:
    """Each recorded file (and each ``required`` one) of a model in the store: ``ok``, ``missing``,
    ``mismatch`` or ``no recorded checksum``. Streams every file once."""
    checksums = dict(checksums or {})
    out = {}
    for name in sorted(set(checksums) | set(required)):
        key = model_key(model_id, name)
        if name not in checksums:
            out[name] = UNRECORDED if store.exists(key) else MISSING
            continue
        try:
            out[name] = OK if store.sha256(key) == checksums[name] else MISMATCH
        except FileNotFoundError:
            out[name] = MISSING
    return out


def require_intact(store: ArtifactStore, model_id: str, checksums: Mapping[str, str] | None,
                   required: Iterable[str] = ()) -> None:
    """``ArtifactIntegrityError`` naming every file of the model that is not ``ok``."""
    report = check_stored(store, model_id, checksums, required)
    bad = {name: state for name, state in report.items() if state != OK}
    if bad:
        listing = ", ".join(f"{store.uri(model_key(model_id, n))} ({s})" for n, s in bad.items())
        raise ArtifactIntegrityError(store.uri(model_key(model_id, "")), f"model {model_id} fails verification: "
                                                                          f"{listing}")
