"""Staging: where the driver and the workers hand partitions over, on any fsspec URL
(a shared folder, s3://, gs://, abfs://).

Each job has a folder of its own, named after the host and process of its driver, and
removes it when it ends. A driver killed mid-job leaves its folder behind: the next job
on the same staging removes the folders of drivers that no longer run on this host, and
those of other hosts once they are a day old.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

log = logging.getLogger(__name__)

STALE_SECONDS = 24 * 3600
"""A folder left by a driver on another host is removed once this old (its process
cannot be asked whether it still runs)."""


def _filesystem(url: str) -> tuple[Any, str]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    return fs, path.rstrip("/")


@dataclass(frozen=True)
class StagingArea:
    """One job's folder. Picklable: workers get it with their partition."""

    url: str
    """The job folder's URL."""

    @classmethod
    def create(cls, root_url: str, kind: str) -> StagingArea:
        fs, root = _filesystem(root_url)
        fs.makedirs(root, exist_ok=True)
        _remove_leftovers(fs, root)
        # kind.pid.token.host: a host name may hold dots and dashes, the rest can't
        name = f"{kind}.{os.getpid()}.{uuid.uuid4().hex[:8]}.{socket.gethostname()}"
        area = cls(f"{root_url.rstrip('/')}/{name}")
        fs.makedirs(f"{root}/{name}", exist_ok=True)
        return area

    @property
    def is_local(self) -> bool:
        return self.url.startswith("file://") or "://" not in self.url

    def child(self, name: str) -> str:
        """The URL of `name` inside the job folder."""
        return f"{self.url}/{name}"

    def path(self, name: str) -> str:
        """What DuckDB reads and writes for `name`: a local path, or the URL (with the
        filesystem registered by `attach`)."""
        if not self.is_local:
            return self.child(name)
        return f"{_filesystem(self.url)[1]}/{name}"

    def makedirs(self, name: str) -> None:
        fs, root = _filesystem(self.url)
        fs.makedirs(f"{root}/{name}", exist_ok=True)

    def files(self, name: str, suffix: str = ".parquet") -> list[str]:
        """The files under `name` (DuckDB's paths), sorted."""
        fs, root = _filesystem(self.url)
        found = fs.find(f"{root}/{name}") if fs.exists(f"{root}/{name}") else []
        base = self.path(name)
        return sorted(
            f"{base}/{f[len(root) + len(name) + 2 :]}" for f in found if f.endswith(suffix)
        )

    def open(self, name: str, mode: str = "rb") -> Any:
        """The file `name` of the job folder, opened through its filesystem (what pyarrow
        reads and writes when DuckDB is not the one doing it)."""
        fs, root = _filesystem(self.url)
        return fs.open(f"{root}/{name}", mode)

    def rename(self, name: str, to: str) -> None:
        """Move `name` to `to` within the job folder: a file written under a temporary
        name is seen whole or not at all (a rename on a folder; an object store's objects
        are whole anyway)."""
        fs, root = _filesystem(self.url)
        fs.mv(f"{root}/{name}", f"{root}/{to}")

    def write_table(self, name: str, table: pa.Table) -> None:
        """Write `table` as the Parquet file `name` of the job folder."""
        import pyarrow.parquet as pq

        fs, root = _filesystem(self.url)
        with fs.open(f"{root}/{name}", "wb") as handle:
            pq.write_table(table, handle)

    def read_table(self, name: str) -> pa.Table:
        """The Parquet file `name` of the job folder."""
        import pyarrow.parquet as pq

        fs, root = _filesystem(self.url)
        with fs.open(f"{root}/{name}", "rb") as handle:
            return pq.read_table(handle)

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        """Let `con` read and write this staging's URLs."""
        if not self.is_local:
            con.register_filesystem(_filesystem(self.url)[0])

    def remove(self) -> None:
        fs, root = _filesystem(self.url)
        try:
            if fs.exists(root):
                fs.rm(root, recursive=True)
        except OSError as exc:  # staging that can't be cleaned must not hide the job's outcome
            log.warning("could not remove the staging folder %s: %s", self.url, exc)


def _remove_leftovers(fs: Any, root: str) -> None:
    host = socket.gethostname()
    try:
        entries = fs.ls(root, detail=True)
    except FileNotFoundError:  # an object store has no empty folders: nothing staged yet
        return
    for entry in entries:
        if entry["type"] != "directory":
            continue
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        parts = name.split(".", 3)
        if len(parts) != 4 or not parts[1].isdigit():
            continue
        _, pid, _, folder_host = parts
        if folder_host == host:
            gone = not _running(int(pid))
        else:
            modified = entry.get("mtime") or entry.get("LastModified") or entry.get("updated")
            stamp = modified.timestamp() if hasattr(modified, "timestamp") else modified
            gone = stamp is not None and time.time() - float(stamp) > STALE_SECONDS
        if gone:
            log.info("removing staging left by a stopped job: %s", entry["name"])
            fs.rm(entry["name"], recursive=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
