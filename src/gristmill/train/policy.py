"""Decision policies: from a model's score to an action. Rules come first (the first that
matches decides); then the score's thresholds, highest first.

    policy=Policy(
        thresholds={"decline": 0.8, "review": 0.3},   # score >= 0.8 declines, >= 0.3 reviews
        default="approve",
        rules=[
            Rule("amount", ">", 1_000_000, "review"),  # on a request field or a feature
            Rule.missing("income", "review"),          # the feature has no value
            Rule.stale(None, "review"),                # any feature older than its view's ttl
            Rule("missing_features", ">=", 3, "decline"),
        ],
        unavailable="review",   # the online store does not answer: decide without a score
    )

A rule on a value never matches a missing one (None or NaN): `Rule.missing` says what to
do then. `missing_features` and `stale_features` are reserved names: a rule on them
compares how many of the model's features are missing, or stale, in that row.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError
from gristmill.values import content_hash

if TYPE_CHECKING:
    import numpy as np

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
MISSING = "missing"
STALE = "stale"
STATES = (MISSING, STALE)
"""Operators on what is known of a feature rather than on its value."""
MISSING_FEATURES = "missing_features"
STALE_FEATURES = "stale_features"
RESERVED = (MISSING_FEATURES, STALE_FEATURES)
"""Names a rule compares as counts: how many of the row's features are missing, or stale."""

_EXACT_IN_FLOAT = 2**53
_INT64 = (-(2**63), 2**63 - 1)


def is_missing(value: Any) -> bool:
    """No value: None, or a float NaN (how Arrow and numpy hand over a NULL)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class Rule:
    field: str | None
    """The request field or feature compared; None with `missing`/`stale`: any feature."""
    op: str
    value: Any
    action: str

    def __post_init__(self) -> None:
        if self.op not in OPERATORS and self.op not in STATES:
            raise ConfigError(
                f"Rule on {self.field}: unknown operator '{self.op}'."
                f" Known: {', '.join([*OPERATORS, *STATES])}."
            )
        if self.field is None and self.op not in STATES:
            raise ConfigError(
                f"A rule with operator '{self.op}' needs the field it compares, such as"
                f" Rule('amount', '{self.op}', 1000, '{self.action}')."
            )

    @classmethod
    def missing(cls, name: str | None, action: str) -> Rule:
        """`action` when the feature `name` (any feature, when None) has no value."""
        return cls(name, MISSING, None, action)

    @classmethod
    def stale(cls, name: str | None, action: str) -> Rule:
        """`action` when the feature `name` (any feature, when None) comes from an event
        older than its view's ttl."""
        return cls(name, STALE, None, action)

    def matches(
        self,
        row: Mapping[str, Any],
        missing: Collection[str] = (),
        stale: Collection[str] = (),
    ) -> bool:
        if self.op in STATES:
            known = missing if self.op == MISSING else stale
            return bool(known) if self.field is None else self.field in known
        value = row.get(self.field or "")
        if is_missing(value):
            return False
        try:
            return bool(OPERATORS[self.op](value, self.value))
        except TypeError:
            return False

    def describe(self) -> str:
        if self.op in STATES:
            return f"{self.field or 'a feature'} is {self.op}"
        return f"{self.field} {self.op} {self.value!r}"

    def matches_many(
        self,
        columns: Mapping[str, np.ndarray],
        missing: Sequence[Collection[str]],
        stale: Sequence[Collection[str]],
        n: int,
    ) -> np.ndarray:
        """Per row, whether the rule matches: what `matches` says of each row."""
        import numpy as np

        if self.op in STATES:
            pairs = zip(missing, stale, strict=True)
            return np.array([self.matches({}, m, s) for m, s in pairs], dtype=bool)
        values = columns.get(self.field or "")
        if values is None:
            return np.zeros(n, dtype=bool)
        if self._compares_natively(values):
            with np.errstate(invalid="ignore"):
                hit = np.asarray(OPERATORS[self.op](values, self.value), dtype=bool)
            return hit & ~np.isnan(values) if values.dtype.kind == "f" else hit
        return np.array([self.matches({self.field or "": v}) for v in values], dtype=bool)

    def _compares_natively(self, values: np.ndarray) -> bool:
        """Whether numpy compares this column with the rule's value exactly as Python
        compares each element: a float column with a float or a small integer, or an
        integer column with an integer (a large integer against a float, or a bool, is
        compared element by element)."""
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if values.dtype.kind == "f":
            return isinstance(value, float) or abs(value) <= _EXACT_IN_FLOAT
        if values.dtype.kind == "i" and values.dtype.itemsize == 8:
            return isinstance(value, int) and _INT64[0] <= value <= _INT64[1]
        return False


@dataclass(frozen=True)
class Policy:
    thresholds: dict[str, float] = field(default_factory=dict)
    """Action -> the lowest score that takes it; the highest threshold met wins."""
    default: str = "approve"
    rules: list[Rule] = field(default_factory=list)
    unavailable: str | None = None
    """The decision when the online store does not answer (a degraded decision, made by
    the rules on what the request holds, else this action); None: the server answers 503."""

    def _ordered(self) -> list[tuple[str, float]]:
        """Thresholds in the order `decide` tries them: highest first, ties as declared."""
        return sorted(self.thresholds.items(), key=lambda kv: -kv[1])

    def decide(
        self,
        score: float,
        row: Mapping[str, Any],
        missing: Collection[str] = (),
        stale: Collection[str] = (),
    ) -> tuple[str, str]:
        """(action, why) for a score, the row's fields and features, and which of its
        features are missing or stale."""
        ruled = self._by_rules(row, missing, stale)
        if ruled is not None:
            return ruled
        for action, threshold in self._ordered():
            if score >= threshold:
                return action, f"score {score:.3f} >= {threshold}"
        return self.default, "below every threshold"

    def decide_unscored(
        self, row: Mapping[str, Any], missing: Collection[str] = ()
    ) -> tuple[str, str] | None:
        """The degraded decision when no score can be computed (the online store is
        unavailable): a matching rule, else the declared `unavailable` action. None when
        the policy declares none (the caller fails instead)."""
        if self.unavailable is None:
            return None
        ruled = self._by_rules(row, missing, ())
        if ruled is not None:
            return ruled
        return self.unavailable, "the online store is unavailable"

    def _by_rules(
        self, row: Mapping[str, Any], missing: Collection[str], stale: Collection[str]
    ) -> tuple[str, str] | None:
        facts = {**row, MISSING_FEATURES: len(missing), STALE_FEATURES: len(stale)}
        for rule in self.rules:
            if rule.matches(facts, missing, stale):
                return rule.action, f"rule: {rule.describe()}"
        return None

    def decide_many(
        self,
        scores: np.ndarray,
        columns: Mapping[str, np.ndarray],
        missing: Sequence[Collection[str]] | None = None,
        stale: Sequence[Collection[str]] | None = None,
    ) -> np.ndarray:
        """The actions for many rows at once, as `decide` would give them one by one
        (`missing` and `stale`: per row, its missing and stale features)."""
        import numpy as np

        n = len(scores)
        missing = missing if missing is not None else [()] * n
        stale = stale if stale is not None else [()] * n
        facts = {
            **columns,
            MISSING_FEATURES: np.array([len(m) for m in missing], dtype=np.int64),
            STALE_FEATURES: np.array([len(s) for s in stale], dtype=np.int64),
        }
        actions = np.full(n, self.default, dtype=object)
        with np.errstate(invalid="ignore"):
            for action, threshold in reversed(self._ordered()):  # the first met wins
                actions[scores >= threshold] = action
        for rule in reversed(self.rules):  # the first rule that matches wins
            actions[rule.matches_many(facts, missing, stale, n)] = rule.action
        return actions

    def needs_states(self) -> bool:
        """Whether a rule asks which features are missing or stale (batch scoring then
        works them out for every row)."""
        return any(r.op in STATES or r.field in RESERVED for r in self.rules)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "thresholds": self.thresholds,
            "default": self.default,
            "rules": [[r.field, r.op, r.value, r.action] for r in self.rules],
        }
        # Only when declared, so that the versions of policies without it do not change.
        if self.unavailable is not None:
            data["unavailable"] = self.unavailable
        return data

    @property
    def version(self) -> str:
        return content_hash(self.to_dict())
