"""How each column relates to a binary target: the target rate by bin, weight of
evidence, information value (as credit-risk teams measure it), and leakage warnings."""

from __future__ import annotations

import math
from fractions import Fraction

from gristmill.errors import ConfigError
from gristmill.profile.bins import bins_for
from gristmill.profile.model import ColumnProfile, TableProfile, TargetBin, TargetRelation
from gristmill.profile.stats import Column, TableStats

LEAKAGE_AUC = 0.95
"""A column whose bins alone rank positives above negatives this often is suspect."""
LATER_SHARE = 0.5


def strength(iv: float) -> str:
    for limit, name in ((0.02, "useless"), (0.1, "weak"), (0.3, "medium"), (0.5, "strong")):
        if iv < limit:
            return name
    return "suspicious"


def target_expression(stats: TableStats, target: Column, profile: ColumnProfile) -> str:
    """The target as 0/1; refuses a column that is not binary."""
    if target.kind == "boolean":
        return f"CAST({target.sql} AS INTEGER)"
    if target.kind == "numeric" and profile.distinct <= 2:
        values = {float(v) for v in (profile.min, profile.max) if v is not None}
        if values <= {0.0, 1.0}:
            return f"CAST({target.sql} AS INTEGER)"
    raise ConfigError(
        f"--target {target.name}: a binary target is a boolean or 0/1 column; "
        f"{target.name} is {target.type} with {profile.distinct} distinct values."
    )


def relate(
    stats: TableStats,
    columns: list[Column],
    profiles: list[ColumnProfile],
    result: TableProfile,
    target: Column,
    time: Column | None,
) -> None:
    """Fill each column's `target` relation and the table's target rate and warnings."""
    target_profile = profiles[columns.index(target)]
    y = target_expression(stats, target, target_profile)
    [row] = stats.q(
        f"SELECT count({y}) AS n, sum({y}) AS pos FROM {stats.relation}"
        f" WHERE {target.sql} IS NOT NULL"
    )
    total, positives = int(row["n"]), int(row["pos"] or 0)
    negatives = total - positives
    result.target_rate = positives / total if total else None
    if not positives or not negatives:
        result.warnings.append(f"The target {target.name} has a single value: nothing to relate.")
        return
    for column, profile in zip(columns, profiles, strict=True):
        if column is target:
            continue
        bins = bins_for(stats, column, profile)
        if bins is None:
            continue
        rows = stats.q(
            f"SELECT {bins.sql} AS bin, count(*) AS n, sum({y}) AS pos FROM {stats.relation}"
            f" WHERE {target.sql} IS NOT NULL GROUP BY 1"
        )
        found = {str(r["bin"]): (int(r["n"]), int(r["pos"] or 0)) for r in rows}
        target_bins, iv = [], 0.0
        for label in bins.labels:
            if label not in found:
                continue
            n, pos = found[label]
            # Half a count added to each side keeps WoE finite for bins without one class.
            share_pos = (pos + 0.5) / (positives + 0.5)
            share_neg = (n - pos + 0.5) / (negatives + 0.5)
            woe = math.log(share_neg / share_pos)
            iv += (share_neg - share_pos) * woe
            target_bins.append(TargetBin(label, n, pos, pos / n if n else 0.0, woe))
        auc = _binned_auc(target_bins, positives, negatives)
        profile.target = TargetRelation(target_bins, iv, strength(iv), auc)
        if auc >= LEAKAGE_AUC:
            profile.flags.append("leakage")
            profile.warnings.append(
                f"{column.name} alone separates {target.name} almost perfectly (AUC {auc:.2f},"
                f" IV {iv:.2f}): is it known only after the outcome?"
            )
    if time is not None:
        _later_than_decision(stats, columns, profiles, time)
    result.warnings.extend(w for p in profiles for w in p.warnings)


def _binned_auc(bins: list[TargetBin], positives: int, negatives: int) -> float:
    """The ROC AUC of scoring each row with its bin's target rate (either direction).
    Bins of equal rates score their rows equally: they count as one."""
    by_rate: dict[Fraction, tuple[int, int]] = {}
    for b in bins:
        rate = Fraction(b.positives, b.count)
        count, pos = by_rate.get(rate, (0, 0))
        by_rate[rate] = (count + b.count, pos + b.positives)
    auc, negatives_below = 0.0, 0
    for rate in sorted(by_rate):
        count, pos = by_rate[rate]
        auc += pos * (negatives_below + 0.5 * (count - pos))
        negatives_below += count - pos
    auc /= positives * negatives
    return max(auc, 1 - auc)


def _later_than_decision(
    stats: TableStats, columns: list[Column], profiles: list[ColumnProfile], time: Column
) -> None:
    """Flag dates and timestamps that are mostly later than the decision time."""
    others = [c for c in columns if c.kind == "temporal" and c is not time]
    if not others:
        return
    t = stats.number(time)
    parts = [
        f"avg(CASE WHEN {stats.number(c)} > {t} THEN 1.0 ELSE 0.0 END) AS l{i}"
        for i, c in enumerate(others)
    ]
    [row] = stats.q(f"SELECT {', '.join(parts)} FROM {stats.relation} WHERE {time.sql} IS NOT NULL")
    for i, column in enumerate(others):
        share = float(row[f"l{i}"] or 0.0)
        if share > LATER_SHARE:
            profile = profiles[columns.index(column)]
            profile.flags.append("leakage")
            profile.warnings.append(
                f"{column.name} is later than {time.name} in {share:.0%} of rows:"
                " it is known only after the decision it would feed."
            )
