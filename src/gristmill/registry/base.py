"""The RegistryStorage interface, and the records the registry hands out.

A storage backend keeps, per model, numbered versions (a metadata document plus artifact
files) and one small document per alias. It owns the two atomicity guarantees that depend
on the medium, so that a later fsspec backend can meet them its own way:

- `publish_version` makes a version appear all at once, under a number no other writer
  got (the local folder: a draft folder renamed onto the free number, which fails if a
  concurrent writer took it first);
- `update_alias` is a read-modify-write no concurrent update can interleave with, and
  its result replaces the old document whole (the local folder: flock + os.replace).

Everything else (checksums, refs, alias history, error messages) lives in `api.Registry`,
written once over this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


class RegistryStorage(ABC):
    NAME: ClassVar[str]
    location: str
    """Where the registry lives, as the user would write it (a folder, a URL)."""

    @abstractmethod
    def list_models(self) -> list[str]:
        """Names of the models that have at least one published version, sorted."""

    @abstractmethod
    def list_versions(self, model: str) -> list[int]:
        """The published version numbers of `model`, ascending; [] for an unknown model."""

    @abstractmethod
    def publish_version(
        self,
        model: str,
        artifacts: Mapping[str, bytes],
        metadata_for: Callable[[int], bytes],
    ) -> int:
        """Store `artifacts` and the document `metadata_for(number)` as a new version of
        `model` whose number no other writer gets, visible all at once; return it."""

    @abstractmethod
    def read_metadata(self, model: str, version: int) -> bytes: ...

    @abstractmethod
    def read_artifact(self, model: str, version: int, name: str) -> bytes: ...

    @abstractmethod
    def artifact_location(self, model: str, version: int, name: str) -> str:
        """Where an artifact is stored, for messages that tell the user which file."""

    @abstractmethod
    def list_aliases(self, model: str) -> list[str]: ...

    @abstractmethod
    def read_alias(self, model: str, alias: str) -> bytes | None:
        """The alias's document, or None when the alias was never set."""

    @abstractmethod
    def update_alias(
        self, model: str, alias: str, change: Callable[[bytes | None], bytes]
    ) -> bytes:
        """Replace the alias's document with `change(current)`, excluding concurrent
        updates of the same model; if `change` raises, nothing is written."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model, as recorded in its metadata document."""

    model: str
    version: int
    created_at: str
    """UTC, ISO 8601."""
    created_by: str
    checksums: dict[str, str]
    """Artifact name -> sha256 (hex) of its bytes, checked on every read."""
    artifact_format: dict[str, Any]
    """How `artifacts.load` rebuilds the estimator ({} for artifacts stored as raw bytes)."""
    environment: dict[str, Any]
    """What the registry recorded: gristmill and Python versions, ML package versions."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """The caller's: params, metrics, training set and data versions, code hash..."""

    @property
    def artifact_names(self) -> list[str]:
        return sorted(self.checksums)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> ModelVersion:
        return cls(
            model=document["model"],
            version=int(document["version"]),
            created_at=document["created_at"],
            created_by=document["created_by"],
            checksums=dict(document["checksums"]),
            artifact_format=dict(document.get("artifact_format") or {}),
            environment=dict(document.get("environment") or {}),
            metadata=dict(document.get("metadata") or {}),
        )


@dataclass(frozen=True)
class AliasMove:
    """What a promotion or rollback did: `alias` of `model` went from one version to another
    (`previous` is None when the alias was new)."""

    model: str
    alias: str
    previous: int | None
    version: int


@dataclass(frozen=True)
class AliasEvent:
    """One line of an alias's append-only history."""

    action: str
    """'promote' or 'rollback'."""
    version: int
    """The alias's target after the event."""
    previous: int | None
    at: str
    by: str
