"""The lake's AWS twin: `s3://<bucket>/<prefix>/` is the truth and a local cache folder mirrors it, because the
in-process engine reads local files only (see `lake`). Its own module, so dagster-aws and boto3 load only when the
AWS twins are in use."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from botocore.exceptions import ClientError, NoCredentialsError
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from enrollment_platform.resources.lake import Lake, remove_local, temporary_beside
from enrollment_platform.settings import SettingsError

LIST_PAGE_SIZE = 1000  # keys per ListObjectsV2 page (the S3 maximum)
DELETE_BATCH = 1000  # keys per DeleteObjects request (the S3 maximum)
_SIDECAR = ".{name}.s3etag"  # beside a cached copy: the ETag and size of the object it mirrors
_DENIED = {"AccessDenied", "403", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
_MISSING = {"404", "NoSuchKey", "NotFound"}


class LakeAccessError(SettingsError):
    """The S3 lake cannot be used as configured (bucket missing, access denied, no credentials)."""


class S3Lake(Lake):
    """A lake under `s3://bucket/prefix/`, mirrored into `cache_dir` for the in-process engine."""

    s3: S3Resource
    bucket: str
    prefix: str = ""
    cache_dir: str

    _client: Any = PrivateAttr(default=None)
    _bucket_checked: bool = PrivateAttr(default=False)

    def path(self, *parts: str) -> str:
        """The cached copy of the object, fetched when S3 has a version the cache does not hold; when S3 has no
        such object, a copy mirrored earlier is removed (another writer deleted it)."""
        local = self._local(parts)
        local.parent.mkdir(parents=True, exist_ok=True)
        head = self._head(self._key(parts))
        if head is None:
            if _sidecar(local).exists():
                _forget(local)
        else:
            self._sync(local, self._key(parts), head["ETag"], head["ContentLength"], head["LastModified"])
        return str(local)

    def exists(self, *parts: str) -> bool:
        key = self._key(parts)
        if key and self._head(key) is not None:
            return True
        return any(True for _ in self._objects(self._folder_key(parts), max_items=1))

    def list(self, *parts: str, suffix: str = ".parquet") -> list[str]:
        """Every object below the folder (S3 listing, paginated), each synced into the cache with S3's
        LastModified as its modification time (callers sort by it)."""
        found = []
        for obj in self._objects(self._folder_key(parts)):
            relative = self._relative(obj["Key"])
            name = PurePosixPath(relative).name
            if not name.endswith(suffix) or name.startswith(".") or obj["Key"].endswith("/"):
                continue
            local = Path(self.cache_dir, *PurePosixPath(relative).parts)
            self._sync(local, obj["Key"], obj["ETag"], obj["Size"], obj["LastModified"])
            found.append(str(local))
        return sorted(found)

    @contextmanager
    def atomic_write(self, *parts: str) -> Iterator[str]:
        """Yield a local temporary path; on success upload it (multipart when large), then cache it."""
        final = self._local(parts)
        final.parent.mkdir(parents=True, exist_ok=True)
        with temporary_beside(final) as temporary:
            yield str(temporary)
            key = self._key(parts)
            self._check_bucket()
            with self._errors(key):
                self._s3().upload_file(str(temporary), self.bucket, key)
            head = self._head(key)
            os.replace(temporary, final)
            _remember(final, head["ETag"], head["ContentLength"], head["LastModified"])

    def remove(self, *parts: str) -> None:
        """Delete the object and every object below it in S3, then their cached copies."""
        key = self._key(parts)
        keys = [key] if key and self._head(key) is not None else []
        keys += [obj["Key"] for obj in self._objects(self._folder_key(parts))]
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": k} for k in keys[start : start + DELETE_BATCH]]
            with self._errors(key):
                response = self._s3().delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if response.get("Errors"):
                raise LakeAccessError(f"{self._where(key)}: could not delete {response['Errors'][:3]}")
        local = self._local(parts)
        remove_local(local)
        _sidecar(local).unlink(missing_ok=True)

    def uri(self, *parts: str) -> str:
        return f"s3://{self.bucket}/{self._key(parts)}"

    # -- S3 access --------------------------------------------------------------------------------------------

    def _s3(self) -> Any:
        """One boto3 client per resource instance (S3Resource builds a new one per call)."""
        if self._client is None:
            self._client = self.s3.get_client()
        return self._client

    def _check_bucket(self) -> None:
        """Fail once, clearly, when the bucket is missing or not ours to use (HEAD of an object cannot tell)."""
        if self._bucket_checked:
            return
        try:
            with self._errors(self._key(())):
                self._s3().head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if _code(error) in {"NoSuchBucket", *_MISSING}:
                raise LakeAccessError(
                    f"{self._where(self._key(()))}: bucket {self.bucket!r} does not exist (check the lake's "
                    "bucket setting, ENROLLMENT_LAKE_URI and AWS_REGION)"
                ) from error
            raise
        self._bucket_checked = True

    def _head(self, key: str) -> dict | None:
        """The object's HEAD response, or None when there is no such object."""
        self._check_bucket()
        try:
            return self._s3().head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            self._raise_clear(error, key)
            raise

    def _objects(self, key_prefix: str, max_items: int | None = None) -> Iterator[dict]:
        """Every object whose key starts with `key_prefix`, page by page."""
        self._check_bucket()
        config = {"PageSize": LIST_PAGE_SIZE, **({"MaxItems": max_items} if max_items else {})}
        pages = (
            self._s3()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=key_prefix, PaginationConfig=config)
        )
        with self._errors(key_prefix):
            for page in pages:
                yield from page.get("Contents", [])

    def _sync(self, local: Path, key: str, etag: str, size: int, modified) -> None:
        """Download the object unless the cached copy already mirrors this ETag and size."""
        if _is_current(local, etag, size):
            return
        temporary = local.with_name(f".{local.name}.{uuid.uuid4().hex}.download")
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._errors(key):
                self._s3().download_file(self.bucket, key, str(temporary))
            os.replace(temporary, local)
        finally:
            temporary.unlink(missing_ok=True)
        _remember(local, etag, size, modified)

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Turn access and configuration errors into a LakeAccessError naming the bucket and prefix."""
        try:
            yield
        except NoCredentialsError as error:
            raise LakeAccessError(
                f"{self._where(key)}: no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY, or run with an IAM role)"
            ) from error
        except ClientError as error:
            self._raise_clear(error, key)
            raise

    def _raise_clear(self, error: ClientError, key: str) -> None:
        code = _code(error)
        if code == "NoSuchBucket":
            raise LakeAccessError(f"{self._where(key)}: bucket {self.bucket!r} does not exist") from error
        if code in _DENIED:
            raise LakeAccessError(
                f"{self._where(key)}: access denied ({code}) to bucket {self.bucket!r} under prefix "
                f"{self.prefix.strip('/')!r}: the role needs s3:ListBucket, s3:GetObject, s3:PutObject and "
                "s3:DeleteObject there (and kms:Decrypt/GenerateDataKey when the bucket is KMS-encrypted)"
            ) from error

    # -- names ------------------------------------------------------------------------------------------------

    def _key(self, parts: tuple[str, ...]) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))

    def _folder_key(self, parts: tuple[str, ...]) -> str:
        key = self._key(parts)
        return f"{key}/" if key else ""

    def _relative(self, key: str) -> str:
        prefix = self.prefix.strip("/")
        return key[len(prefix) :].lstrip("/") if prefix else key

    def _local(self, parts: tuple[str, ...]) -> Path:
        return Path(self.cache_dir, *parts)

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _sidecar(local: Path) -> Path:
    return local.with_name(_SIDECAR.format(name=local.name))


def _is_current(local: Path, etag: str, size: int) -> bool:
    """Whether the cached copy holds the object with this ETag and size."""
    sidecar = _sidecar(local)
    if not (local.is_file() and sidecar.is_file()) or local.stat().st_size != size:
        return False
    try:
        return json.loads(sidecar.read_text()) == {"etag": etag, "size": size}
    except ValueError:
        return False


def _remember(local: Path, etag: str, size: int, modified) -> None:
    """Record which object version the cached copy holds; its mtime becomes the object's LastModified."""
    stamp = int(modified.timestamp() * 1_000_000_000)
    os.utime(local, ns=(stamp, stamp))
    _sidecar(local).write_text(json.dumps({"etag": etag, "size": size}))


def _forget(local: Path) -> None:
    local.unlink(missing_ok=True)
    _sidecar(local).unlink(missing_ok=True)
