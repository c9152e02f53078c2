"""Training one model end to end: read its training set, fit, evaluate on held-out rows,
explain, register the version (first one champion, later ones challenger), and write the
report. What `gristmill train` and `gristmill run` call.

A version records the fingerprint of what decided its fit: the training rows (a
multiset: their order does not count), their columns and types, the spec's training
fields and gristmill's version. Training again on the same fingerprint registers nothing
and names the version it equals (`force` trains anyway)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError

if TYPE_CHECKING:
    from gristmill.project import Project
    from gristmill.registry.base import ModelVersion
    from gristmill.train.data import TrainingData
    from gristmill.train.evaluation import Evaluation
    from gristmill.train.evaluation.rules import RuleComparison
    from gristmill.train.explain import PermutationImportance
    from gristmill.train.fit import Fitted
    from gristmill.train.spec import Model

REPORTS = Path("reports") / "models"


@dataclass
class TrainResult:
    model: str
    version: int
    alias: str | None
    """The alias this version got: champion for a model's first version, else challenger."""
    estimator: str
    task: str
    split: str
    rows: int
    train_rows: int
    test_rows: int
    features: list[str]
    left_out: dict[str, str]
    metrics: dict[str, Any]
    summary: list[tuple[str, str]]
    report: Path
    seconds: float
    fit_seconds: float
    notes: list[str] = field(default_factory=list)
    unchanged: bool = False
    """Nothing was trained: `version` was fitted on the same rows with the same spec."""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "report": str(self.report)}

    @classmethod
    def equal_to(cls, root: Path, found: ModelVersion, seconds: float) -> TrainResult:
        """The result of a training that found `found` fitted on the same inputs."""
        meta = found.metadata
        return cls(
            model=found.model,
            version=found.version,
            alias=None,
            estimator=meta["estimator"],
            task=meta["task"],
            split=meta["split"]["kind"],
            rows=meta["rows"],
            train_rows=meta["train_rows"],
            test_rows=meta["test_rows"],
            features=meta["features"],
            left_out=meta["left_out"],
            metrics=meta["metrics"],
            summary=[tuple(row) for row in meta["summary"]],  # type: ignore[misc]
            report=report_path(root, found.model, found.version),
            seconds=seconds,
            fit_seconds=0.0,
            notes=[
                f"Unchanged: the training rows and the spec equal those of version"
                f" {found.version}; nothing registered (--force trains anyway)."
            ],
            unchanged=True,
        )


def train_model(project: Project, name: str, force: bool = False) -> TrainResult:
    """Train `name` and register the version, unless a version was fitted on the same
    rows with the same spec (then nothing is registered, unless `force`)."""
    from gristmill.train.data import load_training_data
    from gristmill.train.discover import find_model, load_models
    from gristmill.train.fit import fit

    started = time.perf_counter()
    model = find_model(load_models(project.root), name)
    data = load_training_data(project, model)
    fingerprint = training_fingerprint(model, data)
    if not force:
        same = _version_with(project, model.name, fingerprint)
        if same is not None:
            return TrainResult.equal_to(project.root, same, time.perf_counter() - started)
    fitted = fit(model, data, project.executor)
    evaluation = evaluate(model, fitted)
    comparison = compare_baseline(model, data, fitted) if model.baseline else None
    importance = _importance(model, fitted)
    permutation = _permutation(model, fitted)
    notes = [comparison.sentence()] if comparison else []
    if fitted.search:
        notes.append(
            f"Searched {fitted.search.trials} parameter sets in {fitted.search.seconds:.0f}s;"
            f" best {fitted.search.metric} {fitted.search.best_score:.4g} on held-back training rows."
        )
        if fitted.split.kind != "time":
            notes.append(
                "The search scored rows that k-fold evaluation also uses: its metrics are"
                " slightly optimistic (a time split avoids this)."
            )
    if data.unlabelled:
        notes.append(f"{data.unlabelled:,} rows without a {model.target} were left out.")
    metadata = _metadata(project, model, data, fitted, evaluation, comparison, importance)
    metadata["notes"] = notes
    metadata["fingerprint"] = fingerprint
    metadata["permutation_importance"] = permutation.to_dict() if permutation else None
    registry = project.registry
    version = registry.register_estimator(model.name, fitted.fitted, metadata)
    alias = "challenger" if "champion" in registry.aliases(model.name) else "champion"
    registry.promote(model.name, version.version, alias=alias)
    report = _write_report(
        project, model, version.version, fitted, evaluation, importance, comparison, permutation
    )
    return TrainResult(
        model=model.name,
        version=version.version,
        alias=alias,
        estimator=model.estimator,
        task=model.task,
        split=_describe_split(fitted),
        rows=data.table.num_rows,
        train_rows=fitted.train_rows,
        test_rows=fitted.test_rows,
        features=data.features,
        left_out=data.left_out,
        metrics=evaluation.to_dict(),
        summary=evaluation.summary(detail=False),
        report=report,
        seconds=time.perf_counter() - started,
        fit_seconds=fitted.fit_seconds,
        notes=notes,
    )


def training_fingerprint(model: Model, data: TrainingData) -> str:
    """What decides a fit, as one hash: the rows as a multiset (each row's hash summed in
    DuckDB, so the order the warehouse returned them in does not count), the columns and
    their types, the spec's training fields (not its policy, alerts or labels), and
    gristmill's version."""
    import duckdb

    from gristmill import __version__
    from gristmill.values import content_hash

    with duckdb.connect() as db:
        db.register("training_rows", data.table)
        [(rows, total)] = db.execute(
            "SELECT count(*), CAST(coalesce(sum(hash(r)::HUGEINT), 0) AS VARCHAR)"
            " FROM (SELECT training_rows AS r FROM training_rows)"
        ).fetchall()
    columns = [(f.name, str(f.type)) for f in data.table.schema]
    return content_hash(
        {
            "rows": rows,
            "row_hashes": total,
            "columns": columns,
            "spec": model.version,
            "features": data.features,
            "gristmill": __version__,
        },
        length=32,
    )


def _version_with(project: Project, model: str, fingerprint: str) -> ModelVersion | None:
    """The newest version of `model` fitted on `fingerprint`'s inputs, if any."""
    if model not in project.registry.list_models():
        return None
    for version in reversed(project.registry.list_versions(model)):
        if version.metadata.get("fingerprint") == fingerprint:
            return version
    return None


def evaluate(model: Model, fitted: Fitted) -> Evaluation:
    from gristmill.train.evaluation import (
        evaluate_binary,
        evaluate_multiclass,
        evaluate_regression,
    )

    if model.task == "binary":
        return evaluate_binary(
            fitted.y_test, fitted.predicted, thresholds=model.thresholds, costs=model.costs
        )
    if model.task == "multiclass":
        return evaluate_multiclass(
            fitted.y_test, fitted.predicted, list(range(len(fitted.classes)))
        )
    return evaluate_regression(fitted.y_test, fitted.predicted)


def compare_baseline(model: Model, data: TrainingData, fitted: Fitted) -> RuleComparison:
    """The model beside the spec's rule on the evaluation rows, both flagging as many."""
    import duckdb
    import numpy as np
    import pyarrow as pa

    from gristmill.train.evaluation.rules import compare_with_rule

    if model.task != "binary":
        raise ConfigError(
            f"{model.where}: model {model.name}: a baseline rule needs a binary task."
        )
    rows = data.table.take(fitted.test_index).append_column(
        "_gm_i", pa.array(np.arange(len(fitted.test_index)))
    )
    db = duckdb.connect()
    db.register("evaluated", rows)
    try:
        flags = db.sql(
            f"SELECT coalesce(({model.baseline}), FALSE) AS f FROM evaluated ORDER BY _gm_i"
        ).fetchnumpy()["f"]
    except duckdb.Error as exc:
        raise ConfigError(
            f"{model.where}: model {model.name}: its baseline {model.baseline!r} is not a SQL"
            f" condition on the training set's columns: {exc}"
        ) from None
    return compare_with_rule(
        fitted.y_test,
        fitted.predicted,
        np.asarray(flags, dtype=bool),
        name=model.baseline or "rule",
    )


def _importance(model: Model, fitted: Fitted) -> list[tuple[str, float]]:
    from gristmill.train.explain import importance

    return importance(model.estimator, fitted.fitted, fitted.encoding.names, fitted.X_test[:20_000])


def _permutation(model: Model, fitted: Fitted) -> PermutationImportance | None:
    """How much the evaluation metric drops when each feature is shuffled, on a sample of
    the evaluation rows (small: it costs features x repeats predictions)."""
    import numpy as np

    from gristmill.train.estimators import estimator
    from gristmill.train.explain import permutation_importance

    y = fitted.y_test
    if model.task != "regression" and len(np.unique(y)) < 2:
        return None  # a metric over one class says nothing
    family = estimator(model.estimator)

    def predict(X: np.ndarray) -> np.ndarray:
        return family.predict(fitted.fitted, X, model.task)

    if model.task == "binary":
        from sklearn.metrics import roc_auc_score

        metric, better = (lambda t, p: float(roc_auc_score(t, p))), True
    elif model.task == "multiclass":

        def metric(t: np.ndarray, p: np.ndarray) -> float:
            return float(np.mean(np.argmax(p, axis=1) == t))

        better = True
    else:

        def metric(t: np.ndarray, p: np.ndarray) -> float:
            return float(np.sqrt(np.mean((t - p) ** 2)))

        better = False
    return permutation_importance(
        predict,
        fitted.X_test,
        y,
        metric,
        n_repeats=2,
        max_rows=2_000,
        feature_names=fitted.encoding.names,
        greater_is_better=better,
    )


def _describe_split(fitted: Fitted) -> str:
    split = fitted.split
    if split.kind == "time":
        return f"time split: the newest {split.test:.0%} held out"
    if split.kind == "group_kfold":
        return f"{split.folds}-fold by {split.group}, out of fold"
    return f"{split.folds}-fold, out of fold"


def _metadata(
    project: Project,
    model: Model,
    data: TrainingData,
    fitted: Fitted,
    evaluation: Evaluation,
    comparison: RuleComparison | None,
    importance: list[tuple[str, float]],
) -> dict[str, Any]:
    """What a version records: enough to trace it to its data and definitions, and to
    rebuild its inputs at serving time."""
    from gristmill.features.discover import load_definitions
    from gristmill.train.estimators import estimator

    definitions = load_definitions(project.root)
    dataset = definitions.datasets.get(model.training_set)
    views = {}
    if dataset is not None:
        for entry in dataset.features:
            view = definitions.view(entry.split(".")[0])
            views[view.name] = view.version
    recorded = project.catalog.asset_versions().get(model.training_set)
    code = (project.root / model.where).read_bytes() if model.where else b""
    return {
        "spec": model.to_dict(),
        "task": model.task,
        "estimator": model.estimator,
        "params": {**estimator(model.estimator).DEFAULTS, **fitted.params},
        "search": fitted.search.to_dict() if fitted.search else None,
        "split": fitted.split.to_dict(),
        "training_set": model.training_set,
        "training_set_relation": data.relation,
        "training_set_version": recorded.data_version if recorded else None,
        "feature_views": views,
        "code_hash": hashlib.sha256(code).hexdigest(),
        "rows": data.table.num_rows,
        "train_rows": fitted.train_rows,
        "test_rows": fitted.test_rows,
        "features": data.features,
        "left_out": data.left_out,
        "column_types": {f.name: str(f.type) for f in data.table.schema},
        "encoding": fitted.encoding.to_dict(),
        "classes": [str(c) for c in fitted.classes],
        "metrics": evaluation.to_dict(),
        "summary": evaluation.summary(detail=False),
        "baseline": comparison.to_dict() if comparison else None,
        "importance": importance,
    }


def report_path(root: Path, model: str, version: int) -> Path:
    return root / REPORTS / f"{model}-v{version}.html"


def _write_report(
    project: Project,
    model: Model,
    version: int,
    fitted: Fitted,
    evaluation: Evaluation,
    importance: list[tuple[str, float]],
    comparison: RuleComparison | None,
    permutation: PermutationImportance | None,
) -> Path:
    from gristmill.train.report import render_report

    meta = {
        "model": model.name,
        "version": version,
        "task": model.task,
        "training_set": model.training_set,
        "rows": f"{fitted.train_rows:,} trained, {fitted.test_rows:,} evaluated",
        "estimator": model.estimator,
        "split": _describe_split(fitted),
    }
    html = render_report(
        f"{model.name} v{version}",
        evaluation,
        importance,
        meta,
        rules=[comparison] if comparison else (),
        permutation=permutation,
    )
    path = report_path(project.root, model.name, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
