"""Model specs: what a project's `models/*.py` declares.

    # models/fraud.py
    from gristmill.train import Model, time_split

    fraud = Model(
        name="fraud",
        training_set="fraud_training",      # a dataset of features/*.py, or any table
        target="is_bad",
        task="binary",                      # binary | multiclass | regression
        estimator="lightgbm",               # decision_tree | random_forest | logistic_regression
                                            # | linear_regression | lightgbm
        params={"num_leaves": 31, "learning_rate": 0.05, "n_estimators": 300},
        split=time_split(test=0.2),         # the default when the training set has a time
        exclude=["amount_usd"],             # columns that must not be features
        baseline="amount > 500",            # a rule to beat (binary): SQL on the columns
    )

Features are every column of the training set but the target, its time column and its
identifiers (the feature views' entity keys, `id` and columns ending in `_id`), unless
`features=[...]` names them. Text and boolean columns are categorical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gristmill import backends
from gristmill.errors import ConfigError, did_you_mean
from gristmill.monitor.alerts import Alerts
from gristmill.train.policy import Policy
from gristmill.values import content_hash

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Split:
    """How rows are divided into training and evaluation data."""

    kind: Literal["time", "kfold", "group_kfold"]
    test: float = 0.2
    """time: the newest share of rows (by time) held out for evaluation."""
    folds: int = 5
    group: str | None = None
    """group_kfold: the column whose values never straddle folds (an entity)."""
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "test": self.test, "folds": self.folds, "group": self.group}


def time_split(test: float = 0.2) -> Split:
    """Train on the past, evaluate on the newest `test` share of rows (the default when
    the training set has a time column)."""
    if not 0 < test < 1:
        raise ConfigError(f"time_split(test={test}): give the held-out share, such as 0.2.")
    return Split("time", test=test)


def kfold(folds: int = 5, seed: int = 0) -> Split:
    """k-fold cross-validation over shuffled rows (out-of-fold predictions are evaluated;
    the model is then fitted on every row)."""
    if folds < 2:
        raise ConfigError(f"kfold(folds={folds}): give at least 2 folds.")
    return Split("kfold", folds=folds, seed=seed)


def group_kfold(group: str, folds: int = 5) -> Split:
    """k-fold in which all rows of one `group` value (a user, a merchant) fall in the same
    fold, so the evaluation never sees an entity the model trained on."""
    if folds < 2:
        raise ConfigError(f"group_kfold(folds={folds}): give at least 2 folds.")
    return Split("group_kfold", folds=folds, group=group)


@dataclass(frozen=True)
class Search:
    """Hyperparameter search with Optuna within a time budget (pip install optuna)."""

    trials: int = 50
    seconds: float = 300.0
    """Stop starting trials after this long."""

    def to_dict(self) -> dict[str, Any]:
        return {"trials": self.trials, "seconds": self.seconds}


@dataclass
class Model:
    name: str
    training_set: str
    target: str
    task: Task = "binary"
    estimator: str = "lightgbm"
    params: dict[str, Any] = field(default_factory=dict)
    split: Split | None = None
    """None: a time split when the training set has a time column, else 5-fold."""
    features: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    time_column: str | None = None
    """The training set's time (a dataset's spine timestamp by default)."""
    search: Search | None = None
    baseline: str | None = None
    """A rule the model must beat (binary tasks): a SQL condition on the training set's
    columns, compared with the model flagging as many evaluation rows."""
    thresholds: list[float] | None = None
    """Binary: the scores at which confusion matrices are reported (by default 0.5, and
    the cheapest one when `costs` are given, else the KS one)."""
    costs: dict[str, float] | None = None
    """Binary: the cost of a false positive and of a false negative, {"fp": 1, "fn": 20}."""
    policy: Policy | None = None
    """How a served score becomes a decision (thresholds, and rules on request fields)."""
    alerts: Alerts | None = None
    """When `gristmill monitor` says the served model needs a look (None: never)."""
    labels: str | None = None
    """Binary: a table of realized outcomes of served predictions, holding `label_key` and
    the `target` column (a true or 1 is bad), for `gristmill monitor`'s realized
    performance."""
    label_key: list[str] = field(default_factory=list)
    """The request fields (and columns of `labels`) that find a prediction's outcome."""
    label_maturity: str | None = None
    """How long an outcome takes to be final (chargebacks: "30d"): a prediction younger
    than this without a bad label is pending, not good."""
    promote_if: list[str] = field(default_factory=list)
    """Checks a version must pass on the shadow log before `models promote` makes it
    champion, as ["auc >= champion.auc - 0.005", "flip_rate < 0.02"] (see
    gristmill.monitor.compare)."""
    description: str = ""
    where: str = field(default="", compare=False)
    """The file that defines the model, for messages."""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(
                f"Model {self.name}: unknown task '{self.task}'.{did_you_mean(self.task, TASKS)}"
                f" Known: {', '.join(TASKS)}."
            )
        try:
            family = backends.resolve("estimator", self.estimator)
        except ConfigError as exc:
            raise ConfigError(f"Model {self.name}: {exc}") from None
        if self.task not in family.TASKS:
            able = [
                n
                for n in backends.names("estimator")
                if self.task in backends.resolve("estimator", n).TASKS
            ]
            raise ConfigError(
                f"Model {self.name}: {self.estimator} does not do {self.task} tasks;"
                f" for them use {' or '.join(able)}."
            )
        if self.target in self.exclude or (self.features and self.target in self.features):
            raise ConfigError(f"Model {self.name}: the target {self.target} cannot be a feature.")
        if isinstance(self.label_key, str):
            self.label_key = [self.label_key]
        if self.labels is not None:
            if self.task != "binary":
                raise ConfigError(
                    f"Model {self.name}: realized performance (labels=...) is for binary"
                    f" models; this one is {self.task}."
                )
            if not self.label_key:
                raise ConfigError(
                    f"Model {self.name}: labels={self.labels!r} needs label_key, the request"
                    ' fields that find a prediction\'s outcome (label_key=["transaction_id"]).'
                )
        if self.promote_if:
            from gristmill.monitor.compare import check_promote_if

            check_promote_if(self.name, self.promote_if)
        if self.label_maturity is not None:
            from gristmill.durations import parse_duration

            parse_duration(self.label_maturity)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "training_set": self.training_set,
            "target": self.target,
            "task": self.task,
            "estimator": self.estimator,
            "params": self.params,
            "split": self.split.to_dict() if self.split else None,
            "features": self.features,
            "exclude": self.exclude,
            "time_column": self.time_column,
            "search": self.search.to_dict() if self.search else None,
            "baseline": self.baseline,
            "thresholds": self.thresholds,
            "costs": self.costs,
        }

    @property
    def served_policy(self) -> Policy:
        """The decision policy; without one, a binary score of 0.5 or more is 'positive'."""
        if self.policy is not None:
            return self.policy
        return Policy(thresholds={"positive": 0.5}, default="negative")

    @property
    def version(self) -> str:
        """The content hash of the spec."""
        return content_hash(self.to_dict())
