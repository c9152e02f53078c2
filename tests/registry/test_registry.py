"""Versions, refs, aliases and checksums of the model registry, over the local folder."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gristmill.errors import ArtifactTamperedError, ConfigError, GristmillError, NotFoundError
from gristmill.registry import open_registry
from gristmill.registry.api import Registry
from tests.helpers import write_project


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return open_registry(tmp_path)


def test_versions_are_numbered_per_model_and_read_back(registry: Registry, tmp_path: Path) -> None:
    metadata = {"params": {"max_depth": 3}, "metrics": {"auc": 0.91}, "code_hash": "abc"}
    first = registry.register("churn", {"model.txt": b"one", "card.json": b"{}"}, metadata)
    second = registry.register("churn", {"model.txt": b"two"}, {})
    other = registry.register("fraud", {"model.txt": b"x"}, {})
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert registry.location == str(tmp_path / ".gristmill" / "registry")
    assert registry.list_models() == ["churn", "fraud"]
    assert [v.version for v in registry.list_versions("churn")] == [1, 2]

    loaded = registry.get("churn", 1)
    assert loaded == first and loaded.metadata == metadata
    assert loaded.artifact_names == ["card.json", "model.txt"]
    assert loaded.checksums["model.txt"] == hashlib.sha256(b"one").hexdigest()
    assert loaded.created_at.endswith("+00:00") and loaded.created_by
    assert set(loaded.environment) == {"gristmill", "python", "packages"}
    assert {"numpy", "lightgbm", "scikit-learn", "skops"} <= set(loaded.environment["packages"])
    assert registry.read_artifact("churn", 1, "model.txt") == b"one"
    assert registry.read_artifact("churn", "latest", "model.txt") == b"two"
    assert registry.get("churn", "2") == second


def test_a_version_folder_holds_metadata_and_artifacts(registry: Registry, tmp_path: Path) -> None:
    registry.register("churn", {"model.txt": b"one"}, {"metrics": {"auc": 0.5}})
    folder = tmp_path / ".gristmill" / "registry" / "churn" / "versions" / "1"
    assert (folder / "artifacts" / "model.txt").read_bytes() == b"one"
    document = json.loads((folder / "metadata.json").read_text())
    assert document["version"] == 1 and document["metadata"] == {"metrics": {"auc": 0.5}}


def test_aliases_promote_and_roll_back_with_history(registry: Registry) -> None:
    for content in (b"1", b"2", b"3"):
        registry.register("churn", {"m": content}, {})
    assert registry.aliases("churn") == {}
    assert registry.promote("churn", 1).previous is None
    registry.promote("churn", 2)
    move = registry.promote("churn", 3)
    assert (move.previous, move.version) == (2, 3)
    registry.promote("churn", "champion", alias="challenger")
    assert registry.aliases("churn") == {"champion": 3, "challenger": 3}
    assert registry.get("churn", "champion").version == 3

    assert registry.rollback("churn").version == 2
    assert registry.rollback("churn").version == 1
    assert registry.aliases("churn") == {"champion": 1, "challenger": 3}
    with pytest.raises(NotFoundError, match="no earlier version to roll back to"):
        registry.rollback("churn")
    registry.promote("churn", 3)
    assert registry.rollback("churn").version == 1

    history = registry.alias_history("churn", "champion")
    assert [(e.action, e.previous, e.version) for e in history] == [
        ("promote", None, 1),
        ("promote", 1, 2),
        ("promote", 2, 3),
        ("rollback", 3, 2),
        ("rollback", 2, 1),
        ("promote", 1, 3),
        ("rollback", 3, 1),
    ]
    # Promoting the version an alias already points at changes nothing.
    assert registry.promote("churn", 1).previous == 1
    assert len(registry.alias_history("churn", "champion")) == len(history)


def test_unknown_names_are_clear_errors(registry: Registry) -> None:
    registry.register("churn", {"model.txt": b"1"}, {})
    registry.promote("churn", 1)
    with pytest.raises(NotFoundError, match=r"No model 'chrun'.*Did you mean 'churn'"):
        registry.get("chrun")
    with pytest.raises(NotFoundError, match="has no version 7; it has version 1"):
        registry.get("churn", 7)
    with pytest.raises(NotFoundError, match=r"Did you mean 'champion'.*aliases: champion"):
        registry.get("churn", "champoin")
    with pytest.raises(NotFoundError, match=r"Did you mean 'model\.txt'"):
        registry.read_artifact("churn", 1, "model.tx")
    with pytest.raises(NotFoundError, match="no alias 'challenger'"):
        registry.rollback("churn", "challenger")
    with pytest.raises(NotFoundError, match="The registry is empty"):
        open_registry(Path(registry.location) / "elsewhere").get("churn")
    with pytest.raises(NotFoundError, match="has no version 2"):
        registry.promote("churn", 2)
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(ConfigError, match="Invalid model name"):
            registry.register(bad, {"m": b""}, {})
    with pytest.raises(ConfigError, match="Invalid artifact name"):
        registry.register("churn", {"../m": b""}, {})
    for bad in ("latest", "12"):
        with pytest.raises(ConfigError, match="cannot be an alias name"):
            registry.set_alias("churn", bad, 1)
    with pytest.raises(TypeError, match="JSON values only"):
        registry.register("churn", {"m": b""}, {"when": object()})


def test_a_tampered_artifact_is_refused(registry: Registry) -> None:
    registry.register("churn", {"model.txt": b"trees and leaves"}, {})
    path = Path(registry.storage.artifact_location("churn", 1, "model.txt"))
    data = bytearray(path.read_bytes())
    data[3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactTamperedError) as caught:
        registry.read_artifact("churn", 1, "model.txt")
    message = str(caught.value)
    assert str(path) in message and hashlib.sha256(bytes(data)).hexdigest() in message
    assert hashlib.sha256(b"trees and leaves").hexdigest() in message
    assert "Restore the file" in message and "retrain" in message
    path.unlink()
    with pytest.raises(ArtifactTamperedError, match="is missing"):
        registry.read_artifact("churn", 1, "model.txt")


def test_only_local_folders_are_supported_for_now(tmp_path: Path) -> None:
    assert open_registry(tmp_path, "models").location == str(tmp_path / "models")
    assert open_registry(tmp_path, f"file://{tmp_path}/m").location == str(tmp_path / "m")
    with pytest.raises(ConfigError, match=r"'s3://'.*use a local folder"):
        open_registry(tmp_path, "s3://bucket/registry")


def test_errors_belong_to_the_gristmill_tree() -> None:
    assert issubclass(ArtifactTamperedError, GristmillError)


def test_registering_imports_no_ml_package(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from gristmill.registry import open_registry\n"
        f"r = open_registry(Path({str(tmp_path)!r}))\n"
        "r.register('m', {'a': b'1'}, {}); r.promote('m', 1); r.read_artifact('m', 1, 'a')\n"
        "print(sorted({'lightgbm', 'sklearn', 'skops', 'scipy'} & set(sys.modules)))"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_an_alias_never_moves_to_a_version_whose_artifact_was_damaged(
    registry: Registry, damage: str
) -> None:
    for content in (b"first trees", b"second trees", b"third trees"):
        registry.register("churn", {"model.txt": content, "card.json": b"{}"}, {})
    registry.promote("churn", 1)
    registry.promote("churn", 2)
    for number in (1, 3):
        path = Path(registry.storage.artifact_location("churn", number, "model.txt"))
        if damage == "flip":
            path.write_bytes(bytes([path.read_bytes()[0] ^ 0x01]) + path.read_bytes()[1:])
        elif damage == "truncate":
            path.write_bytes(path.read_bytes()[:-1])
        else:
            path.unlink()
    history = registry.alias_history("churn", "champion")

    with pytest.raises(ArtifactTamperedError, match=r"'champion'.*not moved to version 3"):
        registry.promote("churn", 3)
    with pytest.raises(ArtifactTamperedError, match=r"model\.txt"):
        registry.set_alias("churn", "challenger", "latest")
    with pytest.raises(ArtifactTamperedError, match="not moved to version 1"):
        registry.rollback("churn")
    assert registry.aliases("churn") == {"champion": 2}
    assert registry.alias_history("churn", "champion") == history
    assert registry.promote("churn", 2).version == 2  # an intact version still moves


def test_models_promote_refuses_a_damaged_version(tmp_path: Path) -> None:
    write_project(tmp_path, {})
    registry = open_registry(tmp_path)
    for content in (b"first trees", b"second trees"):
        registry.register("churn", {"model.txt": content}, {})
    registry.promote("churn", 1)
    path = Path(registry.storage.artifact_location("churn", 2, "model.txt"))
    path.write_bytes(b"second trees, edited")

    result = subprocess.run(
        [sys.executable, "-m", "gristmill", "models", "promote", "churn", "2", "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert (
        "not moved to version 2" in message and "was changed after the registry wrote it" in message
    )
    assert registry.aliases("churn") == {"champion": 1}
