"""Online values kept in step with a table as changes are applied to it (change data
capture): the feature views built directly on the table are refreshed, inside the
warehouse transaction that applies the changes, for exactly the entities the changes
touch.

`verify_live` compares what the store holds with the batch values of the same instant.

A refresh replaces each touched entity's events in the online store with those the
warehouse now holds (what `materialize` writes), so an update or a delete of an event is
as exact as an insert. It reads the transaction's own uncommitted rows and writes the
online store before the warehouse commits: a sync killed in between leaves the online
store ahead, and the rerun applies the same changes and writes the same values again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gristmill.features.api import WATERMARK, clock_skew, online_events_sql
from gristmill.features.discover import load_definitions
from gristmill.features.events import future_cut
from gristmill.features.online import apply_events, entity_key, to_micros

if TYPE_CHECKING:
    from gristmill.features.api import VerifyResult
    from gristmill.features.definition import FeatureView
    from gristmill.project import Project
    from gristmill.warehouse.base import Transaction

logger = logging.getLogger(__name__)


@dataclass
class LiveViews:
    """The feature views whose source is one warehouse table, and the project's store."""

    project: Project
    views: list[FeatureView]
    table: str
    """The table's qualified name (the views' source)."""

    @classmethod
    def of_table(cls, project: Project, schema: str, table: str) -> LiveViews | None:
        """The views built directly on `schema.table` (None: none is)."""
        from gristmill.profile import resolve_table

        views = []
        for view in load_definitions(project.root).views.values():
            try:
                if resolve_table(project, view.source) == (schema, table):
                    views.append(view)
            except Exception:  # a view over a table not built yet: not this one
                continue
        if not views:
            return None
        return cls(project, views, project.warehouse.qualified(schema, table))

    @property
    def entity_columns(self) -> list[str]:
        """Every column that keys one of the views."""
        return list(dict.fromkeys(k for v in self.views for k in v.entity))

    def refresh(self, tx: Transaction, touched: str) -> int:
        """Rewrite the online events of the entities in the query `touched` (rows of
        `entity_columns`, in the table's names), as the transaction `tx` sees the table.
        Returns the entities written."""
        store = self.project.online
        dialect = self.project.warehouse.dialect
        clock = datetime.now(UTC)
        now, cut = to_micros(clock), future_cut(clock, clock_skew(self.project))
        written = 0
        for view in self.views:
            if store.get_meta(view.name, "version") != view.version:
                continue  # not materialized (or materialized from another definition) yet
            keys = ", ".join(dialect.quote(k) for k in view.entity)
            entities = tx.fetch_arrow(f"SELECT DISTINCT {keys} FROM ({touched}) AS t")
            if entities.num_rows == 0:
                continue
            events = online_events_sql(view, self.table, dialect, now, cut)
            rows = tx.fetch_arrow(
                f"SELECT * FROM ({events}) AS e WHERE ({keys}) IN"
                f" (SELECT {keys} FROM ({touched}) AS t)"
            )
            apply_events(store, view, rows, now=now, replace=True)
            present = {
                entity_key(k)
                for k in zip(*(rows.column(c).to_pylist() for c in view.entity), strict=True)
            }
            # Entities with no event left (deleted rows): nothing of theirs stays online.
            gone = [
                key
                for key in (
                    entity_key(k)
                    for k in zip(
                        *(entities.column(c).to_pylist() for c in view.entity), strict=True
                    )
                )
                if key not in present
            ]
            if gone:
                store.write(view.name, {key: [] for key in gone}, {}, replace=True)
            newest = max(rows.column("_gm_time").to_pylist(), default=0)
            mark = int(store.get_meta(view.name, WATERMARK) or 0)
            store.set_meta(view.name, WATERMARK, str(max(newest, mark)))
            written += entities.num_rows
        return written


def verify_live(
    project: Project, view_name: str, *, samples: int = 200, seed: int = 0
) -> VerifyResult:
    """Compare the values the online store holds now (fed by materialize, pushes, change
    capture or streams) with the batch values of the same instant, computed by the
    warehouse from the view's source, for `samples` entities of the source (a tenth of them
    keys with no events). Both must agree once the pipelines have applied what the
    warehouse holds: run it when the source is quiet, or expect the changes in flight."""
    import random

    from gristmill.features.api import (
        OnlineReader,
        VerifyResult,
        _absent_keys,
        _source,
        compare_with_batch,
    )

    view = load_definitions(project.root).view(view_name)
    source = _source(project, view)
    engine = project.warehouse.dialect
    keys_sql = ", ".join(engine.quote(k) for k in view.entity)
    present = " AND ".join(f"{engine.quote(k)} IS NOT NULL" for k in view.entity)
    found = project.warehouse.fetchall(f"SELECT DISTINCT {keys_sql} FROM {source} WHERE {present}")
    kind = project.config.online.type
    if not found:
        return VerifyResult(view.name, 0, 0, [], 0, 0, kind)
    rng = random.Random(seed)
    chosen = rng.sample(found, min(len(found), samples))
    absent = _absent_keys(chosen, max(1, samples // 10))
    keys = [tuple(k) for k in chosen] + absent
    at = datetime.now(UTC).replace(microsecond=0)
    entities = [dict(zip(view.entity, k, strict=True)) for k in keys]
    online = [f.values for f in OnlineReader(project).read([view.name], entities, at)]
    points = [(key, to_micros(at)) for key in keys]
    mismatches = compare_with_batch(project, view, source, points, online)
    return VerifyResult(
        view.name, len(keys), len(found), mismatches, 0, len(absent), f"{kind} (live)"
    )
