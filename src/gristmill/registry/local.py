"""The local-folder registry storage, the default (`<project>/.gristmill/registry`).

Layout::

    <root>/<model>/
      versions/<n>/metadata.json          the version's record (ModelVersion as JSON)
      versions/<n>/artifacts/<name>       artifact files, as given
      versions/.draft-<id>/               a version being written (never listed), and
      versions/.draft-<id>.lock           its lock, held by the writer while it lives
      aliases/<alias>.json                current target and append-only history
      .lock                               flock'ed around alias updates

A version is written into a draft folder, synced, then renamed onto its number. Renaming
a folder onto an existing non-empty one fails, so the rename is both the publication (a
reader sees all of the version or none of it) and the claim of the number (two writers
racing for the same number: one wins, the other retries with the next).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from gristmill.registry.base import RegistryStorage

METADATA_FILE = "metadata.json"
_DRAFT_PREFIX = ".draft-"


class LocalRegistryStorage(RegistryStorage):
    NAME = "local"

    def __init__(self, location: str) -> None:
        self.root = Path(location.removeprefix("file://"))
        self.location = str(self.root)

    def _versions_dir(self, model: str) -> Path:
        return self.root / model / "versions"

    def _alias_file(self, model: str, alias: str) -> Path:
        return self.root / model / "aliases" / f"{alias}.json"

    def list_models(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if not entry.name.startswith(".") and self.list_versions(entry.name)
        )

    def list_versions(self, model: str) -> list[int]:
        try:
            entries = list(self._versions_dir(model).iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(int(entry.name) for entry in entries if entry.name.isdigit())

    def publish_version(
        self,
        model: str,
        artifacts: Mapping[str, bytes],
        metadata_for: Callable[[int], bytes],
    ) -> int:
        versions_dir = self._versions_dir(model)
        versions_dir.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_drafts(versions_dir)
        draft = versions_dir / f"{_DRAFT_PREFIX}{uuid.uuid4().hex}"
        with _draft_lock(draft):
            (draft / "artifacts").mkdir(parents=True)
            try:
                for name, data in artifacts.items():
                    _write_synced(draft / "artifacts" / name, data)
                _sync_dir(draft / "artifacts")
                while True:
                    number = max(self.list_versions(model), default=0) + 1
                    _write_synced(draft / METADATA_FILE, metadata_for(number))
                    _sync_dir(draft)
                    try:
                        os.rename(draft, versions_dir / str(number))
                    except OSError as exc:
                        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                            continue  # another writer published this number first
                        raise
                    _sync_dir(versions_dir)
                    return number
            except BaseException:
                shutil.rmtree(draft, ignore_errors=True)
                raise

    def read_metadata(self, model: str, version: int) -> bytes:
        return (self._versions_dir(model) / str(version) / METADATA_FILE).read_bytes()

    def read_artifact(self, model: str, version: int, name: str) -> bytes:
        return Path(self.artifact_location(model, version, name)).read_bytes()

    def artifact_location(self, model: str, version: int, name: str) -> str:
        return str(self._versions_dir(model) / str(version) / "artifacts" / name)

    def list_aliases(self, model: str) -> list[str]:
        folder = self.root / model / "aliases"
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.json") if not p.name.startswith("."))

    def read_alias(self, model: str, alias: str) -> bytes | None:
        try:
            return self._alias_file(model, alias).read_bytes()
        except FileNotFoundError:
            return None

    def update_alias(
        self, model: str, alias: str, change: Callable[[bytes | None], bytes]
    ) -> bytes:
        path = self._alias_file(model, alias)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._model_lock(model):
            updated = change(self.read_alias(model, alias))
            _replace_atomically(path, updated)
        return updated

    @contextlib.contextmanager
    def _model_lock(self, model: str) -> Iterator[None]:
        # flock belongs to the open file description: separate threads and processes
        # each open the file, so they exclude one another; the kernel releases the lock
        # when a holder dies, so a killed promotion never leaves the model locked.
        fd = os.open(self.root / model / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _sync_dir(path: Path) -> None:
    # A rename or a new file is durable only once its folder's entry is on disk.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        _write_synced(temporary, data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_dir(path.parent)


@contextlib.contextmanager
def _draft_lock(draft: Path) -> Iterator[None]:
    """Hold `<draft>.lock` while the draft is written: a draft whose lock can be taken
    belongs to a writer that died (the kernel released its lock)."""
    lock_path = draft.with_name(draft.name + ".lock")
    # Locked under another name, then renamed: a cleaner never sees it unlocked.
    locking_path = draft.with_name(draft.name + ".locking")
    fd = os.open(locking_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(locking_path, lock_path)
        yield
    finally:
        lock_path.unlink(missing_ok=True)
        os.close(fd)


def _remove_abandoned_drafts(versions_dir: Path) -> None:
    """Delete the drafts of writers killed mid-write, so their bytes do not pile up."""
    for lock_path in versions_dir.glob(f"{_DRAFT_PREFIX}*.lock"):
        try:
            fd = os.open(lock_path, os.O_RDWR)
        except FileNotFoundError:
            continue  # its writer just finished
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue  # its writer is alive
        try:
            shutil.rmtree(lock_path.with_suffix(""), ignore_errors=True)
            lock_path.unlink(missing_ok=True)
        finally:
            os.close(fd)
