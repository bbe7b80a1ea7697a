"""The artifact store: a local folder or ``s3://bucket/prefix`` (boto3), one interface.

Keys are relative, slash-separated paths such as ``events/date=2026-11-26/events.parquet``.
Writes are whole-object puts, so a reader sees the old object or the new one, never half.
``upload``/``download`` move a file between local disk and the store without holding it in
memory (multi-GB embeddings); ``download`` raises ``FileNotFoundError`` for a missing key.
``sha256`` hashes a stored object in chunks (``recsys.integrity`` checks it against the registry).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path
from typing import Protocol

import pandas as pd


class ArtifactStore(Protocol):
    base_uri: str

    def put_bytes(self, key: str, data: bytes) -> str: ...
    def get_bytes(self, key: str) -> bytes: ...
    def upload(self, path: str | Path, key: str) -> str: ...
    def download(self, key: str, path: str | Path) -> Path: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def uri(self, key: str) -> str: ...
    def sha256(self, key: str) -> str: ...


HASH_CHUNK = 1 << 20  # bytes hashed at a time: multi-GB files are never held in memory


def sha256_chunks(chunks) -> str:
    """Hex SHA-256 of an iterable of byte chunks."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a local file, read ``HASH_CHUNK`` bytes at a time."""
    with open(path, "rb") as fh:
        return sha256_chunks(iter(lambda: fh.read(HASH_CHUNK), b""))


class LocalArtifactStore:
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.base_uri = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents and path != self.root:
            raise ValueError(f"artifact key escapes the store: {key!r}")
        return path

    def put_bytes(self, key: str, data: bytes) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # atomic: readers never see a partial file
        return str(path)

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def upload(self, path: str | Path, key: str) -> str:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
        return str(target)

    def download(self, key: str, path: str | Path) -> Path:
        source, path = self._path(key), Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"no artifact {key!r} in {self.base_uri}")
        tmp = path.with_name(path.name + ".tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, path)
        return path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for key in keys:
            self._path(key).unlink()
        return len(keys)

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def sha256(self, key: str) -> str:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"no artifact {key!r} in {self.base_uri}")
        return sha256_file(path)


class S3ArtifactStore:
    """boto3 store. Transient errors are retried by botocore's standard mode (exponential backoff)."""

    def __init__(self, uri: str, client=None):
        if not uri.startswith("s3://"):
            raise ValueError(f"not an s3:// URI: {uri!r}")
        bucket, _, prefix = uri[len("s3://"):].partition("/")
        if not bucket:
            raise ValueError(f"s3 URI has no bucket: {uri!r}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.base_uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._client = client

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 8}))
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_bytes(self, key: str, data: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def upload(self, path: str | Path, key: str) -> str:
        """Streamed from disk (multipart above 8 MB, s3transfer's default)."""
        self.client.upload_file(str(path), self.bucket, self._key(key))
        return self.uri(key)

    def download(self, key: str, path: str | Path) -> Path:
        """Streamed to disk (s3transfer writes a temporary name, then renames it to ``path``)."""
        from botocore.exceptions import ClientError

        try:
            self.client.download_file(self.bucket, self._key(key), str(path))
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(f"no artifact {key!r} in {self.base_uri}") from exc
            raise
        return Path(path)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if _missing(exc):
                return False
            raise

    def list(self, prefix: str) -> list[str]:
        full = self._key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": self._key(k)} for k in chunk]}
            )
        return len(keys)

    def uri(self, key: str) -> str:
        return f"{self.base_uri}/{key}"

    def sha256(self, key: str) -> str:
        """Streamed: the object's body is hashed ``HASH_CHUNK`` bytes at a time."""
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(f"no artifact {key!r} in {self.base_uri}") from exc
            raise
        return sha256_chunks(body.iter_chunks(HASH_CHUNK))


def _missing(exc) -> bool:
    """A botocore ``ClientError`` that means "no such key"."""
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def open_store(uri: str, s3_client=None) -> ArtifactStore:
    if uri.startswith("s3://"):
        return S3ArtifactStore(uri, client=s3_client)
    return LocalArtifactStore(uri)


def write_parquet(store: ArtifactStore, key: str, df: pd.DataFrame) -> str:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return store.put_bytes(key, buf.getvalue())


def read_parquet(store: ArtifactStore, key: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(store.get_bytes(key)))


def partition_key(kind: str, day, filename: str) -> str:
    """``events/date=2026-11-26/events.parquet``: outputs keyed by the run's day."""
    return f"{kind}/date={day.isoformat()}/{filename}"


def model_key(model_id: str, filename: str) -> str:
    """``models/<model_id>/<filename>``: where one model's files live in the store."""
    return f"models/{model_id}/{filename}"
