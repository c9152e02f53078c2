"""Scoring requests with a registered model: the request's fields, plus the features its
entities have in the online store as of now, encoded as at training time; then the score,
the decision of the model's policy, and the contributions that moved the score most.
Every answer says which features were missing and which came from events older than
their view's ttl; when the online store does not answer, a policy that declares an
`unavailable` action gives a degraded decision instead of an error."""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConnectionFailedError, GristmillError, OnlineStoreUnavailableError
from gristmill.train.encode import Encoding
from gristmill.train.policy import is_missing

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

    from gristmill.features.api import OnlineFeatures
    from gristmill.features.discover import Definitions
    from gristmill.project import Project
    from gristmill.registry.base import ModelVersion
    from gristmill.train.policy import Policy
    from gristmill.train.spec import Model

logger = logging.getLogger(__name__)

RELOAD_SECONDS = 1.0
"""How often a model's alias is looked up again, so that a promotion reaches a running
server without a restart."""


class BadRequestError(GristmillError):
    """A request the server cannot score; its message names the field."""


@dataclass
class Scored:
    score: Any
    decision: str
    why: str
    reasons: list[dict[str, Any]] = field(default_factory=list)
    freshness: dict[str, float | None] = field(default_factory=dict)
    """Per feature view: seconds since the entity's latest event (None: none known)."""
    features: dict[str, Any] = field(default_factory=dict)
    headline: float | None = 0.0
    """The one number a policy decides on: the probability of the positive class, the
    predicted value, or the top class's probability (None: a degraded decision)."""
    missing: list[str] = field(default_factory=list)
    """The model's features that had no value (the model imputed them)."""
    stale: dict[str, float] = field(default_factory=dict)
    """Features whose view's latest event for the entity is older than the view's ttl:
    feature -> that event's age in seconds, as of the server's clock."""
    degraded: bool = False
    """Decided without a score: the online store did not answer."""

    def response(self) -> dict[str, Any]:
        """What a client receives for this prediction."""
        return {
            "score": self.score,
            "decision": self.decision,
            "why": self.why,
            "reasons": self.reasons,
            "freshness_seconds": self.freshness,
            "missing_features": self.missing,
            "stale_features": self.stale,
            "degraded": self.degraded,
        }


@dataclass
class LoadedModel:
    """One version of a model, ready to score."""

    spec: Model
    version: ModelVersion
    alias: str
    fitted: Any
    views: list[str]
    """Feature views whose online values the model reads."""
    request_fields: list[str]
    """Model features that come with the request (the training set's spine columns)."""
    entity_keys: list[str]
    encoding: Encoding
    view_of: dict[str, str] = field(default_factory=dict)
    """The view each online feature of the model comes from."""
    ttl_seconds: dict[str, float] = field(default_factory=dict)
    """The ttl of each view that has one."""
    explain: Callable[[np.ndarray], np.ndarray] | None = None
    """Per-row contributions (the reasons); None: none can be computed (a scikit-learn
    tree without shap)."""

    @functools.cached_property
    def policy(self) -> Policy:
        return self.spec.served_policy

    @functools.cached_property
    def policy_version(self) -> str:
        """The policy's content hash, once per loaded model rather than per request."""
        return self.policy.version

    def check(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The requests' rows of request fields, once every field is of a kind the model
        can score: a bad one is a BadRequestError naming it."""
        for i, request in enumerate(requests):
            if not isinstance(request, dict):
                raise BadRequestError(f"rows[{i}]: expected an object of fields.")
            missing = [k for k in [*self.entity_keys, *self.request_fields] if k not in request]
            if missing:
                raise BadRequestError(
                    f"rows[{i}]: missing field {missing[0]!r}; {self.spec.name} needs"
                    f" {', '.join(self.entity_keys + self.request_fields)}."
                )
            _check_value(f"rows[{i}]", request)
        self._check_keys(requests)
        rows = [{k: r[k] for k in self.request_fields} for r in requests]
        _check_types(rows, self.encoding)
        return rows

    def features_of(
        self, rows: list[dict[str, Any]], found: list[OnlineFeatures]
    ) -> list[dict[str, Any]]:
        """Each request's feature row: its own (checked) fields `rows`, then its entities'
        online values `found` (with `_gm_freshness`, the age of each view's latest
        event)."""
        freshness: list[dict[str, float | None]] = [{} for _ in rows]
        if self.views:
            for row, ages, online in zip(rows, freshness, found, strict=True):
                # An exact decimal sum enters the model, the policy and the log as the
                # nearest double, as the training set's column entered the fit.
                row.update(
                    {k: float(v) if isinstance(v, Decimal) else v for k, v in online.values.items()}
                )
                ages.update(online.age_seconds)
        for row, ages in zip(rows, freshness, strict=True):
            row["_gm_freshness"] = ages
        return rows

    def missing(self, row: dict[str, Any]) -> list[str]:
        """The model's features without a value in `row`."""
        return [name for name in self.encoding.names if is_missing(row.get(name))]

    def stale(self, ages: dict[str, float | None]) -> dict[str, float]:
        """The model's online features whose view's latest event is older than the
        view's ttl, with that age (`ages`: per view, as the online reader gives them)."""
        stale = {}
        for feature, view in self.view_of.items():
            age, ttl = ages.get(view), self.ttl_seconds.get(view)
            if age is not None and ttl is not None and age > ttl:
                stale[feature] = age
        return stale

    def degraded(self, request: dict[str, Any]) -> Scored:
        """The decision without a score, when the online store does not answer: every
        online feature is missing."""
        row = {k: request[k] for k in self.request_fields}
        missing = [n for n in self.encoding.names if n in self.view_of or is_missing(row.get(n))]
        decided = self.policy.decide_unscored({**request, **row}, missing)
        if decided is None:
            raise OnlineStoreUnavailableError(
                f"The online store is unavailable, and {self.spec.name}'s policy declares no"
                " decision for it (Policy(unavailable='review'))."
            )
        decision, why = decided
        return Scored(None, decision, why, [], {}, row, None, missing, {}, degraded=True)

    def _check_keys(self, requests: list[dict[str, Any]]) -> None:
        """Entity keys of the type the training set had: 7 and "7" are not one user. A
        null key (a transfer without a merchant) is an entity without events, as a
        training row's null key joins no event."""
        types = self.version.metadata.get("column_types", {})
        for key in self.entity_keys:
            kind = types.get(key, "")
            bounds = _integer_bounds(kind)
            for i, request in enumerate(requests):
                value = request[key]
                if value is None:
                    continue
                if bounds is not None:
                    if isinstance(value, bool) or not isinstance(value, int):
                        raise BadRequestError(
                            f"rows[{i}].{key}: expected an integer, got {value!r}."
                        )
                    if not bounds[0] <= value <= bounds[1]:
                        raise BadRequestError(
                            f"rows[{i}].{key}: {value} is out of range for {kind}"
                            f" ({bounds[0]} to {bounds[1]})."
                        )
                if kind in ("string", "large_string") and not isinstance(value, str):
                    raise BadRequestError(f"rows[{i}].{key}: expected a string, got {value!r}.")


class Scorer:
    """Scores requests for every model of a project, each at its alias (champion by
    default), loading a newly promoted version when the alias moves."""

    def __init__(self, project: Project, alias: str = "champion") -> None:
        from gristmill.features.api import OnlineReader
        from gristmill.features.discover import load_definitions
        from gristmill.train.discover import load_models

        self.project = project
        self.alias = alias
        self.definitions = load_definitions(project.root)
        self.models = load_models(project.root)
        self.reader = OnlineReader(project, self.definitions)
        self._loaded: dict[tuple[str, str], LoadedModel] = {}
        self._checked: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def current(self, name: str, alias: str | None = None) -> LoadedModel | None:
        """The model from memory while it is the version at its alias (the registry asked
        at most every RELOAD_SECONDS, a small file read); None when a version must be
        loaded, which `model` does."""
        slot = (name, alias or self.alias)
        current = self._loaded.get(slot)
        if current is None:
            return None
        now = time.monotonic()
        if now - self._checked.get(slot, 0.0) < RELOAD_SECONDS:
            return current
        if self.project.registry.resolve(name, slot[1]) != current.version.version:
            return None
        self._checked[slot] = now
        return current

    def model(self, name: str, alias: str | None = None) -> LoadedModel:
        """The model at `alias` (the server's, champion by default), loaded when it is not
        in memory or another version was promoted."""
        from gristmill.train.discover import find_model

        spec = find_model(self.models, name)
        current = self.current(name, alias)
        if current is not None:
            return current
        slot = (name, alias or self.alias)
        with self._lock:
            number = self.project.registry.resolve(name, slot[1])
            current = self._loaded.get(slot)
            if current is None or current.version.version != number:
                current = load_model(self.project, self.definitions, spec, number, slot[1])
                current.explain = explainer(current, self.project.config.serve.reasons)
                self._loaded[slot] = current  # requests holding the old one finish with it
            self._checked[slot] = time.monotonic()
            return current

    def score(
        self, name: str, requests: list[dict[str, Any]], top: int = 3, alias: str | None = None
    ) -> tuple[LoadedModel, list[Scored]]:
        loaded = self.model(name, alias)
        rows = loaded.check(requests)
        try:
            found = self.reader.read(loaded.views, requests) if loaded.views else []
        except ConnectionFailedError as exc:  # a store past its deadline, or never reached
            return loaded, self._degraded(loaded, requests, exc)
        return loaded, self._scored(loaded, requests, loaded.features_of(rows, found), top)

    async def score_async(
        self, name: str, requests: list[dict[str, Any]], top: int = 3, alias: str | None = None
    ) -> tuple[LoadedModel, list[Scored]]:
        """`score` for an event loop: the online store's answer is awaited (the loop stays
        free while a store stalls); the scoring itself is a few hundred microseconds a row."""
        loaded = self.model(name, alias)
        rows = loaded.check(requests)
        try:
            found = await self.reader.read_async(loaded.views, requests) if loaded.views else []
        except ConnectionFailedError as exc:
            return loaded, self._degraded(loaded, requests, exc)
        return loaded, self._scored(loaded, requests, loaded.features_of(rows, found), top)

    @staticmethod
    def _degraded(
        loaded: LoadedModel, requests: list[dict[str, Any]], error: ConnectionFailedError
    ) -> list[Scored]:
        """Decisions without the online store, when the model's policy declares them."""
        if loaded.policy.unavailable is None:
            raise error
        logger.warning("%s: the online store is unavailable; degraded decisions", loaded.spec.name)
        return [loaded.degraded(request) for request in requests]

    @staticmethod
    def _scored(
        loaded: LoadedModel, requests: list[dict[str, Any]], rows: list[dict[str, Any]], top: int
    ) -> list[Scored]:
        import numpy as np

        from gristmill.train.estimators import estimator
        from gristmill.train.reasons import drivers

        meta = loaded.version.metadata
        ages = [row.pop("_gm_freshness") for row in rows]
        encoding = loaded.encoding
        X = encoding.transform_rows(rows)
        family = estimator(meta["estimator"])
        predicted = family.predict(loaded.fitted, X, meta["task"])
        parts = loaded.explain(X) if top and loaded.explain is not None else None
        scored = []
        for i, row in enumerate(rows):
            value = predicted[i]
            score: Any = value.tolist() if np.ndim(value) else float(value)
            headline = float(value) if np.ndim(value) == 0 else float(np.max(value))
            missing = loaded.missing(row)
            stale = loaded.stale(ages[i])
            decision, why = loaded.policy.decide(headline, {**requests[i], **row}, missing, stale)
            reasons = []
            if parts is not None:
                effects = parts[i] if parts.ndim == 2 else parts[i, int(np.argmax(value))]
                reasons = [
                    {"feature": f, "value": v, "effect": round(e, 6)}
                    for f, v, e in drivers(encoding.names, row, effects, top)
                ]
            scored.append(
                Scored(score, decision, why, reasons, ages[i], row, headline, missing, stale)
            )
        return scored


def explainer(loaded: LoadedModel, method: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """How `loaded` computes its reasons: path attributions when asked for and the model
    has them, else Shapley values. None when neither can be computed (a scikit-learn tree
    without shap, a LightGBM model with linear leaves): the model is served with scores
    and decisions, without reasons, rather than not at all."""
    from gristmill.train.estimators import estimator
    from gristmill.train.explain import contributions

    if method == "paths":
        paths = estimator(loaded.version.metadata["estimator"]).path_attributions(loaded.fitted)
        if paths is not None:
            return paths
    names = loaded.encoding.names
    try:
        contributions(loaded.fitted, loaded.encoding.transform_rows([{}]), names)
    except Exception as exc:  # whatever the library's reason: serve without reasons
        logger.warning(
            "%s v%s is served without reasons: %s", loaded.spec.name, loaded.version.version, exc
        )
        return None
    return lambda X: contributions(loaded.fitted, X, names)


def load_model(
    project: Project, definitions: Definitions, spec: Model, number: int, alias: str
) -> LoadedModel:
    """Version `number` of a model, with what it reads: its feature views and the request
    fields (the training set's columns that no view makes)."""
    registry = project.registry
    version = registry.get(spec.name, number)
    fitted = registry.load_estimator(spec.name, number)
    features = list(version.metadata["features"])
    views: list[str] = []
    keys: list[str] = []
    view_of: dict[str, str] = {}
    ttl_seconds: dict[str, float] = {}
    dataset = definitions.datasets.get(version.metadata["training_set"])
    if dataset is not None:
        for entry in dataset.features:
            view = definitions.view(entry.partition(".")[0])
            if view.name not in views:
                views.append(view.name)
                keys += [k for k in view.entity if k not in keys]
            for column in view.columns():
                view_of.setdefault(column, view.name)
            if view.ttl_delta is not None:
                ttl_seconds[view.name] = view.ttl_delta.total_seconds()
    request_fields = [f for f in features if f not in view_of]
    view_of = {f: v for f, v in view_of.items() if f in features}
    encoding = Encoding.from_dict(version.metadata["encoding"])
    return LoadedModel(
        spec,
        version,
        alias,
        fitted,
        views,
        request_fields,
        keys,
        encoding,
        view_of=view_of,
        ttl_seconds=ttl_seconds,
    )


MAX_DEPTH = 32
"""How deeply a request's values may nest (they are logged, not scored)."""


def _check_value(where: str, value: Any) -> None:
    """Every number finite and every string valid Unicode, however deep in the request
    (all of it is logged): NaN, Infinity, 1e309, 10**400 and lone surrogates are refused
    here, naming the field, rather than failing later as a server error."""
    pending = [(where, value, 0)]
    while pending:
        path, item, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise BadRequestError(f"{path}: nested more than {MAX_DEPTH} levels deep.")
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, float) and not math.isfinite(item):
            raise BadRequestError(f"{path}: {item} is not a finite number.")
        if isinstance(item, int) and abs(item) > MAX_INTEGER:
            raise BadRequestError(f"{path}: {_short(item)} is beyond ±{MAX_INTEGER:.3g}.")
        if isinstance(item, str) and not _encodable(item):
            raise BadRequestError(f"{path}: not valid Unicode (a lone surrogate such as \\ud800).")
        if isinstance(item, dict):
            for key, inner in item.items():
                if not _encodable(key):  # named escaped: the message itself must encode
                    raise BadRequestError(f"{path}: the field name {key!a} is not valid Unicode.")
                pending.append((f"{path}.{key}", inner, depth + 1))
        elif isinstance(item, list):
            pending += [(f"{path}[{j}]", inner, depth + 1) for j, inner in enumerate(item)]


MAX_INTEGER = 2**63
"""The largest integer a request may hold: what a 64-bit column (a key, an amount in
cents) holds; beyond it, no model feature or warehouse column can take the value."""


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(number: int) -> str:
    digits = str(number) if number.bit_length() < 200 else None
    return digits if digits is not None else f"an integer of {number.bit_length()} bits"


def _integer_bounds(kind: str) -> tuple[int, int] | None:
    """The range of an Arrow integer type's values ("int32", "uint64"); None: not one."""
    for prefix, signed in (("uint", False), ("int", True)):
        if kind.startswith(prefix) and kind[len(prefix) :].isdigit():
            bits = int(kind[len(prefix) :])
            return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return None


def _check_types(rows: list[dict[str, Any]], encoding: Encoding) -> None:
    """A value of the wrong type is a bad request naming its field."""
    for column in encoding.columns:
        numeric = column.kind == "numeric"
        for i, row in enumerate(rows):
            value = row.get(column.name)
            if value is None:
                continue
            wrong = (
                (isinstance(value, str) or not isinstance(value, int | float))
                if numeric
                else not isinstance(value, str)
            )
            if wrong:
                expected = "a number" if numeric else "a string"
                raise BadRequestError(
                    f"rows[{i}].{column.name}: expected {expected}, got {type(value).__name__}."
                )


def check_request_rows(body: Any) -> list[dict[str, Any]]:
    """The rows of a predict request: {"rows": [...]} or one object."""
    if isinstance(body, dict) and "rows" in body:
        rows = body["rows"]
        if not isinstance(rows, list) or not rows:
            raise BadRequestError("rows: expected a non-empty list of objects.")
        return rows
    if isinstance(body, dict):
        return [body]
    raise BadRequestError('The body must be a JSON object (one row) or {"rows": [...]}.')
