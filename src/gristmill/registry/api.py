"""The model registry: what training, the CLI and the server call.

Versions are immutable once published; aliases (`champion`, `challenger`, ...) point at
versions and move atomically, each keeping an append-only history so that a rollback
knows where to go back to. Every artifact read is checked against the sha256 recorded
when the registry wrote it.
"""

from __future__ import annotations

import getpass
import hashlib
import importlib.metadata
import json
import platform
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from gristmill.errors import ArtifactTamperedError, ConfigError, NotFoundError, did_you_mean
from gristmill.registry.base import AliasEvent, AliasMove, ModelVersion, RegistryStorage

Ref = int | str
"""A version number, 'latest', or an alias name."""

RECORDED_PACKAGES = ("lightgbm", "scikit-learn", "skops", "numpy")
CANARY = "canary"
"""The alias that decides for a share of entities (sticky by entity) beside the champion."""
SHADOW = "shadow"
"""The alias that scores every request after its answer, logged beside the champion."""


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class Registry:
    def __init__(self, storage: RegistryStorage) -> None:
        self.storage = storage

    @property
    def location(self) -> str:
        return self.storage.location

    # Versions

    def register(
        self,
        model: str,
        artifacts: Mapping[str, bytes],
        metadata: Mapping[str, Any],
        artifact_format: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Publish `artifacts` as the next version of `model`, with the caller's
        `metadata` (params, metrics, data versions, code hash...) and, when the artifacts
        come from `artifacts.save`, the `artifact_format` that loads them back."""
        _check_name("model", model)
        for name in artifacts:
            _check_name("artifact", name)
        checksums = {name: _sha256(data) for name, data in artifacts.items()}
        record = {
            "metadata": _as_json_object(metadata, "metadata"),
            "artifact_format": _as_json_object(artifact_format or {}, "artifact_format"),
        }
        environment = recorded_environment()
        created_by = _current_user()
        published: list[ModelVersion] = []

        def metadata_for(number: int) -> bytes:
            version = ModelVersion(
                model=model,
                version=number,
                created_at=_now(),
                created_by=created_by,
                checksums=checksums,
                artifact_format=record["artifact_format"],
                environment=environment,
                metadata=record["metadata"],
            )
            published[:] = [version]
            return _dump(version.to_dict())

        self.storage.publish_version(model, artifacts, metadata_for)
        return published[0]

    def register_estimator(
        self, model: str, estimator: Any, metadata: Mapping[str, Any]
    ) -> ModelVersion:
        """Save a fitted estimator in its safe format (see `artifacts.save`) and register it."""
        from gristmill.registry.artifacts import save

        files, artifact_format = save(estimator)
        return self.register(model, files, metadata, artifact_format)

    def load_estimator(self, model: str, ref: Ref = "latest") -> Any:
        """The estimator of a version registered with `register_estimator`, checksums and
        recorded types verified."""
        from gristmill.registry.artifacts import load

        version = self.get(model, ref)
        files = {
            name: self.read_artifact(model, version.version, name) for name in version.checksums
        }
        return load(files, version.artifact_format)

    def list_models(self) -> list[str]:
        return self.storage.list_models()

    def list_versions(self, model: str) -> list[ModelVersion]:
        """Every version of `model`, oldest first."""
        numbers = self._numbers(model)
        return [self._read_version(model, number) for number in numbers]

    def get(self, model: str, ref: Ref = "latest") -> ModelVersion:
        """The version `ref` names: a number ('3' too), 'latest', or an alias."""
        return self._read_version(model, self.resolve(model, ref))

    def resolve(self, model: str, ref: Ref) -> int:
        """The version number `ref` names."""
        numbers = self._numbers(model)
        if isinstance(ref, int) or ref.isdigit():
            number = int(ref)
            if number not in numbers:
                raise NotFoundError(
                    f"Model '{model}' has no version {number}; it has {_describe(numbers)}."
                )
            return number
        if ref == "latest":
            return numbers[-1]
        current = self.aliases(model)
        if ref not in current:
            known = f"its aliases: {', '.join(sorted(current))}" if current else "no aliases yet"
            raise NotFoundError(
                f"Model '{model}' has no version or alias '{ref}'.{did_you_mean(ref, current)} "
                f"It has {_describe(numbers)}, 'latest', and {known}."
            )
        return current[ref]

    def read_artifact(self, model: str, ref: Ref, name: str) -> bytes:
        """An artifact's bytes, refused unless they match the checksum recorded when the
        registry wrote them."""
        version = self.get(model, ref)
        if name not in version.checksums:
            raise NotFoundError(
                f"Version {version.version} of model '{model}' has no artifact '{name}'."
                f"{did_you_mean(name, version.checksums)} "
                f"Its artifacts: {', '.join(version.artifact_names) or 'none'}."
            )
        location = self.storage.artifact_location(model, version.version, name)
        try:
            data = self.storage.read_artifact(model, version.version, name)
        except FileNotFoundError:
            raise ArtifactTamperedError(
                f"The artifact file {location} of version {version.version} of model "
                f"'{model}' is missing. Restore it from a backup, or retrain and register "
                "a new version."
            ) from None
        check_artifact(version, name, data, location)
        return data

    def verify(self, model: str, ref: Ref) -> None:
        """Raise ArtifactTamperedError unless every artifact of the version matches the
        checksum recorded when the registry wrote it."""
        version = self.get(model, ref)
        for name in version.artifact_names:
            self.read_artifact(model, version.version, name)

    # Aliases

    def aliases(self, model: str) -> dict[str, int]:
        """Each alias of `model` and the version it points at."""
        found: dict[str, int] = {}
        for alias in self.storage.list_aliases(model):
            document = self.storage.read_alias(model, alias)
            if document is not None:
                found[alias] = int(json.loads(document)["version"])
        return found

    def alias_history(self, model: str, alias: str) -> list[AliasEvent]:
        """Every move of `alias`, oldest first."""
        document = self.storage.read_alias(model, alias)
        if document is None:
            return []
        return [AliasEvent(**event) for event in json.loads(document)["history"]]

    def set_alias(
        self, model: str, alias: str, version: Ref, share: float | None = None
    ) -> AliasMove:
        """Point `alias` at `version` (a number or any ref), recording the move. The
        `canary` alias takes the `share` (a percentage) of entities it decides for."""
        _check_name("alias", alias)
        if alias == "latest" or alias.isdigit():
            raise ConfigError(
                f"'{alias}' cannot be an alias name: it reads as a version reference. "
                "Choose a name such as 'champion' or 'challenger'."
            )
        if (alias == CANARY) != (share is not None):
            raise ConfigError(
                f"The {CANARY} alias needs --share, the percentage of entities it decides for"
                f" (--alias {CANARY} --share 10)."
                if alias == CANARY
                else f"--share is for the {CANARY} alias; '{alias}' takes none."
            )
        if share is not None and not 0 < share <= 100:
            raise ConfigError(f"--share {share:g}: give a percentage above 0, at most 100.")
        number = self.resolve(model, version)
        # Refused here, not by the server that would load it after the alias moved.
        self._verify_target(model, alias, number)
        moves: list[AliasMove] = []

        def promote(document: bytes | None) -> bytes:
            state = _alias_state(model, alias, document)
            previous = state["version"]
            moves[:] = [AliasMove(model, alias, previous, number)]
            if previous != number or state.get("share") != share:
                state["version"] = number
                state["history"].append(_event("promote", number, previous))
                if share is not None:
                    state["share"] = share
            return _dump(state)

        self.storage.update_alias(model, alias, promote)
        return moves[0]

    def promote(
        self, model: str, version: Ref, alias: str = "champion", share: float | None = None
    ) -> AliasMove:
        """Point `alias` (by default 'champion') at `version`; `rollback` undoes it."""
        return self.set_alias(model, alias, version, share)

    def alias_share(self, model: str, alias: str) -> float | None:
        """The share (a percentage) of entities `alias` decides for; None: not a canary."""
        document = self.storage.read_alias(model, alias)
        share = json.loads(document).get("share") if document is not None else None
        return None if share is None else float(share)

    def rollback(self, model: str, alias: str = "champion") -> AliasMove:
        """Move `alias` back to the version it pointed at before its latest promotion that
        was not already rolled back."""
        self._numbers(model)  # an unknown model is reported as such
        moves: list[AliasMove] = []

        def roll_back(document: bytes | None) -> bytes:
            state = _alias_state(model, alias, document)
            # Replaying the log as a stack: a promotion pushes, a rollback pops.
            targets: list[int] = []
            for event in state["history"]:
                if event["action"] == "rollback":
                    targets.pop()
                else:
                    targets.append(event["version"])
            if document is None:
                raise NotFoundError(
                    f"Model '{model}' has no alias '{alias}'."
                    f"{did_you_mean(alias, self.aliases(model))} Nothing to roll back."
                )
            if len(targets) < 2:
                raise NotFoundError(
                    f"Alias '{alias}' of model '{model}' points at version {state['version']} "
                    "and has no earlier version to roll back to (it was never promoted "
                    "since, or every promotion was rolled back). Promote a version instead."
                )
            self._verify_target(model, alias, targets[-2])
            moves[:] = [AliasMove(model, alias, targets[-1], targets[-2])]
            state["version"] = targets[-2]
            state["history"].append(_event("rollback", targets[-2], targets[-1]))
            return _dump(state)

        self.storage.update_alias(model, alias, roll_back)
        return moves[0]

    # Helpers

    def _verify_target(self, model: str, alias: str, number: int) -> None:
        try:
            self.verify(model, number)
        except ArtifactTamperedError as exc:
            raise ArtifactTamperedError(
                f"Alias '{alias}' of model '{model}' was not moved to version {number}: {exc}"
            ) from None

    def _numbers(self, model: str) -> list[int]:
        _check_name("model", model)
        numbers = self.storage.list_versions(model)
        if not numbers:
            models = self.storage.list_models()
            known = (
                f"Registered models: {', '.join(models)}."
                if models
                else "The registry is empty: train and register a model first."
            )
            raise NotFoundError(
                f"No model '{model}' in the registry at {self.location}."
                f"{did_you_mean(model, models)} {known}"
            )
        return numbers

    def _read_version(self, model: str, number: int) -> ModelVersion:
        return ModelVersion.from_dict(json.loads(self.storage.read_metadata(model, number)))


def check_artifact(version: ModelVersion, name: str, data: bytes, location: str) -> None:
    """Raise ArtifactTamperedError unless `data` (read from `location`) is the artifact
    `name` the registry wrote for `version`: what every reader of an artifact checks, the
    registry's own and a worker's given a copy of it."""
    actual, expected = _sha256(data), version.checksums.get(name)
    if actual != expected:
        raise ArtifactTamperedError(
            f"The artifact file {location} of version {version.version} of model "
            f"'{version.model}' was changed after the registry wrote it: its sha256 is"
            f" {actual}, the registry recorded {expected}. It is not loaded. Restore the file"
            " from a backup, or retrain and register a new version."
        )


def recorded_environment() -> dict[str, Any]:
    """What a version records about the code that trained it, without importing any ML
    package (their versions come from installed-package metadata)."""
    from gristmill import __version__

    packages: dict[str, str] = {}
    for package in RECORDED_PACKAGES:
        try:
            packages[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "gristmill": __version__,
        "python": platform.python_version(),
        "packages": packages,
    }


def _alias_state(model: str, alias: str, document: bytes | None) -> dict[str, Any]:
    if document is None:
        return {"model": model, "alias": alias, "version": None, "history": []}
    state: dict[str, Any] = json.loads(document)
    return state


def _event(action: str, version: int, previous: int | None) -> dict[str, Any]:
    return {
        "action": action,
        "version": version,
        "previous": previous,
        "at": _now(),
        "by": _current_user(),
    }


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"Invalid {kind} name {name!r}: use letters, digits, '_', '-' and '.', starting "
            "with a letter or digit (at most 128 characters)."
        )


def _as_json_object(value: Mapping[str, Any], what: str) -> dict[str, Any]:
    try:
        result: dict[str, Any] = json.loads(json.dumps(dict(value)))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"A model version's {what} must hold JSON values only (str, numbers, bools, "
            f"None, lists, dicts with str keys): {exc}"
        ) from None
    return result


def _describe(numbers: Iterable[int]) -> str:
    listed = list(numbers)
    if listed == list(range(1, len(listed) + 1)):
        return f"version{'s 1 to' if len(listed) > 1 else ''} {listed[-1]}"
    return "versions " + ", ".join(map(str, listed))


def _dump(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return "unknown"
