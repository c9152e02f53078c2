"""Decision policies: from a model's score to an action. Rules on the request's fields
come first (the first that matches decides); then the score's thresholds, highest first.

    policy=Policy(
        thresholds={"decline": 0.8, "review": 0.3},   # score >= 0.8 declines, >= 0.3 reviews
        default="approve",
        rules=[Rule("amount", ">", 1_000_000, "review")],
    )
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
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


@dataclass(frozen=True)
class Rule:
    field: str
    op: str
    value: Any
    action: str

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ConfigError(
                f"Rule on {self.field}: unknown operator '{self.op}'. Known: {', '.join(OPERATORS)}."
            )

    def matches(self, row: Mapping[str, Any]) -> bool:
        value = row.get(self.field)
        if value is None:
            return False
        try:
            return OPERATORS[self.op](value, self.value)
        except TypeError:
            return False

    def describe(self) -> str:
        return f"{self.field} {self.op} {self.value!r}"


@dataclass(frozen=True)
class Policy:
    thresholds: dict[str, float] = field(default_factory=dict)
    """Action -> the lowest score that takes it; the highest threshold met wins."""
    default: str = "approve"
    rules: list[Rule] = field(default_factory=list)

    def decide(self, score: float, row: Mapping[str, Any]) -> tuple[str, str]:
        """(action, why) for a score and the request's fields."""
        for rule in self.rules:
            if rule.matches(row):
                return rule.action, f"rule: {rule.describe()}"
        for action, threshold in sorted(self.thresholds.items(), key=lambda kv: -kv[1]):
            if score >= threshold:
                return action, f"score {score:.3f} >= {threshold}"
        return self.default, "below every threshold"

    def decide_many(self, scores: np.ndarray, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The actions for many rows at once, as `decide` would give them one by one."""
        import numpy as np

        actions = np.full(len(scores), self.default, dtype=object)
        for action, threshold in sorted(self.thresholds.items(), key=lambda kv: kv[1]):
            actions[scores >= threshold] = action
        for rule in reversed(self.rules):  # the first rule that matches wins
            if rule.field not in columns:
                continue
            values = columns[rule.field]
            present = np.array([v is not None for v in values], dtype=bool)
            hit = np.zeros(len(values), dtype=bool)
            with np.errstate(invalid="ignore"):
                try:
                    hit[present] = OPERATORS[rule.op](values[present].astype(float), rule.value)
                except (TypeError, ValueError):
                    hit[present] = [rule.matches({rule.field: v}) for v in values[present]]
            actions[hit] = rule.action
        return actions

    def to_dict(self) -> dict[str, Any]:
        return {
            "thresholds": self.thresholds,
            "default": self.default,
            "rules": [[r.field, r.op, r.value, r.action] for r in self.rules],
        }

    @property
    def version(self) -> str:
        return content_hash(self.to_dict())
