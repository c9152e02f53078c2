"""Two versions on the same live requests: the champion's logged decisions beside the
shadow's scores of the very same requests (`shadow_of`), in the warehouse. Agreement,
score correlation (Pearson, and Spearman on ranks), decision flips by pair and, once
labels matured, the realized AUC and KS of both. A model's `promote_if` checks read
these figures:

    promote_if = ["auc >= champion.auc - 0.005", "flip_rate < 0.02"]

Names: agreement, flip_rate, score_correlation, spearman, pairs, auc, ks, bad_rate (the
challenger's) and champion.auc, champion.ks, champion.bad_rate; numbers; + and -; one
comparison (<, <=, >, >=, ==, !=) per check. Nothing is evaluated as Python."""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError, PromotionRefusedError, did_you_mean
from gristmill.registry.api import SHADOW

if TYPE_CHECKING:
    from gristmill.monitor.realized import Outcomes
    from gristmill.project import Project
    from gristmill.registry.base import AliasMove
    from gristmill.train.spec import Model


@dataclass
class Comparison:
    model: str
    champion: int
    challenger: int
    since: str
    pairs: int = 0
    """Requests scored by both (the champion deciding, the challenger in shadow)."""
    agreement: float | None = None
    score_correlation: float | None = None
    spearman: float | None = None
    flips: dict[str, int] = field(default_factory=dict)
    """'approve -> review': requests the challenger would have decided otherwise."""
    champion_outcomes: Outcomes | None = None
    challenger_outcomes: Outcomes | None = None

    @property
    def flip_rate(self) -> float | None:
        return None if self.agreement is None else 1 - self.agreement

    def metrics(self) -> dict[str, float | None]:
        """The names promote_if checks read."""
        found: dict[str, float | None] = {
            "pairs": float(self.pairs),
            "agreement": self.agreement,
            "flip_rate": self.flip_rate,
            "score_correlation": self.score_correlation,
            "spearman": self.spearman,
        }
        for prefix, outcomes in (
            ("", self.challenger_outcomes),
            ("champion.", self.champion_outcomes),
        ):
            found[f"{prefix}auc"] = outcomes.auc if outcomes else None
            found[f"{prefix}ks"] = outcomes.ks if outcomes else None
            found[f"{prefix}bad_rate"] = outcomes.bad_rate if outcomes else None
        return found

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "flip_rate": self.flip_rate, "metrics": self.metrics()}


def compare(
    project: Project,
    model: str,
    champion: str = "champion",
    challenger: str = SHADOW,
    since: str = "90d",
) -> Comparison:
    """`champion`'s and `challenger`'s (versions or aliases) figures on the requests both
    scored within `since`: the first decided them, the second scored them in shadow."""
    import pyarrow as pa

    from gristmill.durations import parse_duration
    from gristmill.monitor.log import synced_log
    from gristmill.train.discover import find_model, load_models

    spec = find_model(load_models(project.root), model)
    registry = project.registry
    found = Comparison(
        model, registry.resolve(model, champion), registry.resolve(model, challenger), since
    )
    log = synced_log(project, model)
    warehouse = project.warehouse
    dialect = warehouse.dialect
    if "shadow_of" not in warehouse.query_arrow(f"SELECT * FROM {log} LIMIT 0").column_names:
        return found
    moment = dialect.column_type(pa.timestamp("us", tz="UTC"))
    now = datetime.now(UTC)
    cutoff = dialect.timestamp_literal(now - parse_duration(since))
    name = dialect.literal(model)
    parsed, keys = dialect.json_fields("request", spec.label_key, "_gm_request")
    key_columns = "".join(f", {k} AS _gm_key_{i}" for i, k in enumerate(keys))
    pairs = warehouse.quote(f"_gm_compare_{uuid.uuid4().hex[:10]}")
    warehouse.execute(
        f"CREATE TEMPORARY TABLE {pairs} AS SELECT substr(c.logged_at, 1, 10) AS _gm_day,"
        f" CAST(c.logged_at AS {moment}) AS _gm_at, c.score AS a_score, s.score AS b_score,"
        f" c.decision AS a_decision, s.decision AS b_decision{key_columns}"
        f" FROM (SELECT *, {parsed} AS _gm_request FROM {log}) AS c JOIN {log} AS s"
        f" ON s.shadow_of = c.prediction_id"
        f" WHERE c.model = {name} AND s.model = {name} AND c.version = {found.champion}"
        f" AND s.version = {found.challenger} AND s.alias = {dialect.literal(SHADOW)}"
        f" AND CAST(c.logged_at AS {moment}) >= {cutoff}"
    )
    try:
        [(count, agreed, pearson, spearman)] = warehouse.fetchall(
            "SELECT count(*), avg(CASE WHEN a_decision = b_decision THEN 1.0 ELSE 0.0 END),"
            " corr(a_score, b_score), corr(ra, rb) FROM (SELECT *, rank() OVER (ORDER BY a_score)"
            f" AS ra, rank() OVER (ORDER BY b_score) AS rb FROM {pairs}) AS r"
        )
        found.pairs = int(count)
        if found.pairs:
            found.agreement = float(agreed)
            found.score_correlation = None if pearson is None else float(pearson)
            found.spearman = None if spearman is None else float(spearman)
            for a, b, n in warehouse.fetchall(
                f"SELECT a_decision, b_decision, count(*) FROM {pairs}"
                " WHERE a_decision <> b_decision GROUP BY 1, 2 ORDER BY 3 DESC"
            ):
                found.flips[f"{a} -> {b}"] = int(n)
            if spec.labels is not None:
                found.champion_outcomes, found.challenger_outcomes = (
                    _realized(project, spec, pairs, side, now) for side in ("a", "b")
                )
    finally:
        warehouse.execute(f"DROP TABLE IF EXISTS {pairs}")
    return found


def _realized(project: Project, spec: Model, pairs: str, side: str, now: datetime) -> Outcomes:
    """The realized figures of one side's scores over the pairs, as the monitor's."""
    from gristmill.monitor.log import AT, DAY, KEY
    from gristmill.monitor.realized import ALL, Outcomes, outcomes_table

    warehouse = project.warehouse
    columns = ", ".join(
        [
            f"_gm_day AS {DAY}",
            f"_gm_at AS {AT}",
            f"{side}_score AS score",
            f"{side}_decision AS decision",
        ]
        + [f"_gm_key_{i} AS {KEY}{i}" for i in range(len(spec.label_key))]
    )
    side_table = warehouse.quote(f"_gm_side_{uuid.uuid4().hex[:10]}")
    warehouse.execute(f"CREATE TEMPORARY TABLE {side_table} AS SELECT {columns} FROM {pairs}")
    try:
        with outcomes_table(project, spec, side_table, now) as (_, by_group):
            return by_group.get(ALL, Outcomes(ALL, 0, 0, 0))
    finally:
        warehouse.execute(f"DROP TABLE IF EXISTS {side_table}")


_CHECK = re.compile(r"^\s*(.+?)\s*(<=|>=|==|!=|<|>)\s*(.+?)\s*$")
_TERM = re.compile(r"\s*([+-])?\s*([A-Za-z_][A-Za-z_.]*|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)")


def _value(text: str, metrics: dict[str, float | None], check: str) -> float | None:
    total = 0.0
    position = 0
    first = True
    while position < len(text):
        match = _TERM.match(text, position)
        if match is None or (not first and match.group(1) is None):
            raise ConfigError(f"promote_if {check!r}: cannot read {text[position:]!r}.")
        sign, term = match.group(1), match.group(2)
        if term[0].isdigit():
            number: float | None = float(term)
        elif term in metrics:
            number = metrics[term]
        else:
            raise ConfigError(
                f"promote_if {check!r}: unknown figure {term!r}.{did_you_mean(term, metrics)}"
                f" Known: {', '.join(metrics)}."
            )
        if number is None:
            return None
        total += -number if sign == "-" else number
        position = match.end()
        first = False
    return total


def check_promote_if(model: str, checks: list[str]) -> None:
    """A ConfigError naming the model and the check that cannot be read."""
    known: dict[str, float | None] = dict.fromkeys(Comparison(model, 0, 0, "").metrics(), 1.0)
    for check in checks:
        parsed = _CHECK.match(check) if isinstance(check, str) else None
        if parsed is None:
            raise ConfigError(
                f"Model {model}: promote_if {check!r}: write one comparison, as 'flip_rate < 0.02'."
            )
        try:
            _value(parsed.group(1), known, check)
            _value(parsed.group(3), known, check)
        except ConfigError as exc:
            raise ConfigError(f"Model {model}: {exc}") from None


def evaluate_promote_if(checks: list[str], found: Comparison) -> list[str]:
    """Why each failing check failed (empty: every check passed)."""
    import operator

    compare_with = {
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
        "==": operator.eq,
        "!=": operator.ne,
    }
    metrics = found.metrics()
    failed = []
    if not found.pairs:
        return [
            f"no request was scored by both v{found.champion} and v{found.challenger} (put"
            f" v{found.challenger} in shadow first: --alias shadow)"
        ]
    for check in checks:
        parsed = _CHECK.match(check)
        if parsed is None:
            raise ConfigError(f"promote_if {check!r}: write one comparison, as 'flip_rate < 0.02'.")
        left, op, right = parsed.groups()
        a, b = _value(left, metrics, check), _value(right, metrics, check)
        if a is None or b is None:
            failed.append(f"{check}: not known yet (no matured labels on the shadow's requests)")
        elif not compare_with[op](a, b):
            failed.append(f"{check}: {left} is {a:.4g}, {right} is {b:.4g}")
    return failed


def promote(
    project: Project,
    model: str,
    version: str,
    alias: str = "champion",
    share: float | None = None,
    force: bool = False,
) -> AliasMove:
    """Point `alias` at `version`; to champion, only when the model's promote_if checks
    pass on the shadow log of that version (unless `force`)."""
    from gristmill.train.discover import find_model, load_models

    # A registered model need not be defined here (the registry of another project).
    specs = load_models(project.root) if alias == "champion" else {}
    checks = find_model(specs, model).promote_if if model in specs else []
    if checks and not force:
        found = compare(project, model, "champion", version)
        failed = evaluate_promote_if(checks, found)
        if failed:
            raise PromotionRefusedError(
                f"{model} v{found.challenger} was not promoted: its promote_if checks failed on"
                f" {found.pairs:,} shadowed requests: {'; '.join(failed)}. --force promotes anyway."
            )
    return project.registry.promote(model, version, alias=alias, share=share)
