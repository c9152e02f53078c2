"""Fitted estimators to bytes and back, in formats whose loading runs no stored code.

- LightGBM: the booster's native model text. A `Booster` loads back as a `Booster`; an
  `LGBMClassifier`/`LGBMRegressor` (or any `LGBMModel`) loads back as a
  `LightGBMPredictor`, the booster plus the class labels, whose `predict`/`predict_proba`
  give what the sklearn wrapper gave.
- scikit-learn estimators and pipelines: skops. skops refuses to build any type outside
  its default-trusted set unless told to trust it; the types it reports for a file are
  recorded at save time (`trusted_types`) and are the only ones trusted at load, so a
  file that gained a type after it was saved is refused. Recorded types must also come
  from sklearn, numpy or scipy, so an edited metadata document cannot trust `os.system`.
- XGBoost: a `Booster` as its native JSON model (no pickle), loaded back as a `Booster`.

ML packages are imported only here, inside the functions, so `import gristmill` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any

import numpy as np

from gristmill.errors import (
    ArtifactTamperedError,
    MissingDependencyError,
    UnsupportedEstimatorError,
)

SUPPORTED = (
    "LightGBM (Booster, LGBMClassifier, LGBMRegressor), XGBoost Boosters, and scikit-learn"
    " estimators and "
    "pipelines built from scikit-learn's own classes (e.g. DecisionTree*, RandomForest*, "
    "LogisticRegression, LinearRegression, StandardScaler, OneHotEncoder, ColumnTransformer)"
)
LIGHTGBM_FILE = "model.txt"
SKOPS_FILE = "model.skops"
XGBOOST_FILE = "model.json"
_TRUSTABLE_MODULES = ("sklearn.", "numpy.", "scipy.")


class LightGBMPredictor:
    """A LightGBM model loaded from its text: `predict` returns labels for a classifier
    and values for a regressor, `predict_proba` class probabilities (columns in the
    order of `classes_`), like the sklearn wrapper it was saved from."""

    def __init__(self, booster: Any, classes: np.ndarray[Any, Any] | None) -> None:
        self.booster = booster
        self.classes_ = classes

    def predict(self, features: Any) -> np.ndarray[Any, Any]:
        if self.classes_ is None:
            return np.asarray(self.booster.predict(features))
        probabilities = self.predict_proba(features)
        labels: np.ndarray[Any, Any] = self.classes_[np.argmax(probabilities, axis=1)]
        return labels

    def predict_proba(self, features: Any) -> np.ndarray[Any, Any]:
        if self.classes_ is None:
            raise TypeError("predict_proba needs a classifier; this LightGBM model is not one.")
        scores = np.asarray(self.booster.predict(features))
        if scores.ndim == 1:  # binary: the booster gives the probability of classes_[1]
            return np.column_stack([1.0 - scores, scores])
        return scores


def save(estimator: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The estimator's artifact files and the `artifact_format` that `load` needs."""
    if _defined_in(estimator, "lightgbm"):
        return _save_lightgbm(estimator)
    if _defined_in(estimator, "sklearn"):
        return _save_skops(estimator)
    if _defined_in(estimator, "xgboost") and type(estimator).__name__ == "Booster":
        return {XGBOOST_FILE: bytes(estimator.save_raw("json"))}, {
            "format": "xgboost",
            "xgboost_version": importlib.metadata.version(_distribution("xgboost", "xgboost-cpu")),
        }
    name = _type_name(estimator)
    raise UnsupportedEstimatorError(
        f"The registry cannot store a {name} safely (it never pickles). Supported: {SUPPORTED}."
    )


def load(artifacts: dict[str, bytes], artifact_format: dict[str, Any]) -> Any:
    """The estimator `save` gave these artifacts for. The artifacts' checksums must have
    been verified already (`Registry.read_artifact` does)."""
    kind = artifact_format.get("format")
    if kind == "lightgbm":
        return _load_lightgbm(artifacts, artifact_format)
    if kind == "skops":
        return _load_skops(artifacts, artifact_format)
    if kind == "xgboost":
        xgboost = _require("xgboost", "xgboost", "Loading an XGBoost model", extra="xgboost")
        booster = xgboost.Booster()
        booster.load_model(bytearray(_artifact(artifacts, XGBOOST_FILE)))
        return booster
    raise UnsupportedEstimatorError(
        f"Unknown artifact format {kind!r}: this version of gristmill reads 'lightgbm',"
        " 'xgboost' and 'skops'. Upgrade gristmill if a newer one registered the model, or"
        " retrain it."
    )


def _save_lightgbm(estimator: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
    lightgbm = _require("lightgbm", "lightgbm", "Saving a LightGBM model")
    artifact_format: dict[str, Any] = {
        "format": "lightgbm",
        "estimator": _type_name(estimator),
        "lightgbm_version": importlib.metadata.version("lightgbm"),
        "classes": None,
    }
    if isinstance(estimator, lightgbm.Booster):
        booster = estimator
        artifact_format["kind"] = "booster"
    elif isinstance(estimator, lightgbm.LGBMModel):
        if callable(estimator.objective):
            raise UnsupportedEstimatorError(
                f"A {_type_name(estimator)} with a custom objective function cannot be "
                "stored as model text (the function is code). Use a built-in objective."
            )
        booster = estimator.booster_
        artifact_format["kind"] = "predictor"
        artifact_format["objective"] = estimator.objective_
        if isinstance(estimator, lightgbm.LGBMClassifier):
            artifact_format["classes"] = np.asarray(estimator.classes_).tolist()
    else:
        raise UnsupportedEstimatorError(
            f"The registry cannot store a {_type_name(estimator)}. Supported: {SUPPORTED}."
        )
    # Without num_iteration, the text keeps the trees up to the best iteration when early
    # stopping found one: the same trees the sklearn wrapper predicts with.
    text: str = booster.model_to_string()
    return {LIGHTGBM_FILE: text.encode()}, artifact_format


def _load_lightgbm(artifacts: dict[str, bytes], artifact_format: dict[str, Any]) -> Any:
    lightgbm = _require("lightgbm", "lightgbm", "Loading a LightGBM model")
    booster = lightgbm.Booster(model_str=_artifact(artifacts, LIGHTGBM_FILE).decode())
    if artifact_format.get("kind") == "booster":
        return booster
    classes = artifact_format.get("classes")
    return LightGBMPredictor(booster, None if classes is None else np.asarray(classes))


def _save_skops(estimator: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
    sio = _require("skops.io", "skops", "Saving a scikit-learn model")
    data: bytes = sio.dumps(estimator)
    types = sorted(sio.get_untrusted_types(data=data))
    foreign = [name for name in types if not name.startswith(_TRUSTABLE_MODULES)]
    if foreign:
        raise UnsupportedEstimatorError(
            f"The registry cannot store this {_type_name(estimator)} safely: it holds "
            f"{', '.join(foreign)}, not scikit-learn, numpy or scipy classes, and loading "
            f"them would run their code. Supported: {SUPPORTED}."
        )
    artifact_format = {
        "format": "skops",
        "estimator": _type_name(estimator),
        "trusted_types": types,
        "skops_version": importlib.metadata.version("skops"),
        "sklearn_version": importlib.metadata.version("scikit-learn"),
    }
    return {SKOPS_FILE: data}, artifact_format


def _load_skops(artifacts: dict[str, bytes], artifact_format: dict[str, Any]) -> Any:
    sio = _require("skops.io", "skops", "Loading a scikit-learn model")
    data = _artifact(artifacts, SKOPS_FILE)
    recorded = artifact_format.get("trusted_types")
    if not isinstance(recorded, list) or not all(isinstance(name, str) for name in recorded):
        raise ArtifactTamperedError(
            "The model's metadata has no valid list of trusted types for its skops file, "
            "so it is not loaded. Retrain the model and register a new version."
        )
    untrustable = [name for name in recorded if not name.startswith(_TRUSTABLE_MODULES)]
    unrecorded = sorted(set(sio.get_untrusted_types(data=data)) - set(recorded))
    if untrustable or unrecorded:
        raise ArtifactTamperedError(
            f"The skops file of this {artifact_format.get('estimator', 'model')} holds types "
            f"the registry did not record as trusted when it saved it "
            f"({', '.join(unrecorded or untrustable)}), so it is not loaded: the file or its "
            "metadata was edited. Restore both from a backup, or retrain the model and "
            "register a new version."
        )
    return sio.loads(data, trusted=recorded)


def _artifact(artifacts: dict[str, bytes], name: str) -> bytes:
    if name not in artifacts:
        raise ArtifactTamperedError(
            f"The model's artifact '{name}' is missing (found: "
            f"{', '.join(sorted(artifacts)) or 'none'}). Retrain and register a new version."
        )
    return artifacts[name]


def _defined_in(estimator: Any, package: str) -> bool:
    # By the defining module, not isinstance: no need to import a package to recognise
    # that an object does not come from it.
    return any(cls.__module__.partition(".")[0] == package for cls in type(estimator).__mro__)


def _type_name(estimator: Any) -> str:
    cls = type(estimator)
    return f"{cls.__module__}.{cls.__qualname__}"


def _require(module: str, package: str, purpose: str, extra: str = "train") -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(package, extra, purpose) from None


def _distribution(*names: str) -> str:
    """The first of these distributions that is installed (xgboost ships as two)."""
    for name in names:
        try:
            importlib.metadata.version(name)
            return name
        except importlib.metadata.PackageNotFoundError:
            continue
    return names[0]
