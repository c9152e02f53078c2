"""Online values kept in step with a table as changes are applied to it (change data
capture): the feature views built on the table, directly or through a row-level SQL
transform of it, are refreshed inside the warehouse transaction that applies the changes,
for exactly the entities the changes touch. A transform the warehouse stores as a table
gets the same changes in that transaction: its rows of the changed keys are replaced by
what its SELECT makes of the keys' new rows (`transforms/row_level.py`).

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

from gristmill.errors import ConfigError
from gristmill.features.api import WATERMARK, clock_skew, online_events_sql
from gristmill.features.discover import load_definitions
from gristmill.features.events import future_cut
from gristmill.features.online import apply_events, entity_key, to_micros

if TYPE_CHECKING:
    from gristmill.features.api import VerifyResult
    from gristmill.features.definition import FeatureView
    from gristmill.project import Project
    from gristmill.transforms.row_level import RowTransform
    from gristmill.warehouse.base import Transaction

logger = logging.getLogger(__name__)

TOUCHED = "_gm_touched_entities_"


@dataclass
class LiveRelation:
    """Feature views reading one relation the synced table feeds: the table itself, or a
    row-level transform of it (`transforms/row_level.py`)."""

    relation: str
    """The relation the views read, qualified."""
    views: list[FeatureView]
    transform: RowTransform | None = None
    touched_table: str = ""
    """A temporary table of the entities the batch touches, in the relation's names."""

    def rows(self, table_rows: str) -> str:
        """The relation's rows that the synced table's rows in the query `table_rows` make."""
        return table_rows if self.transform is None else self.transform.over(table_rows)

    @property
    def entity_columns(self) -> list[str]:
        return list(dict.fromkeys(k for v in self.views for k in v.entity))


@dataclass
class LiveViews:
    """The feature views fed by one synced table, directly or through row-level transforms,
    and the project's store."""

    project: Project
    relations: list[LiveRelation]
    table: str
    """The synced table, qualified."""
    key: list[str]
    """The synced table's key columns."""

    @classmethod
    def of_table(
        cls, project: Project, schema: str, table: str, key: list[str]
    ) -> LiveViews | None:
        """The views fed by `schema.table` (None: none is). A view reading a transform of the
        table that cannot run per batch is a ConfigError."""
        from gristmill.profile import resolve_table
        from gristmill.transforms.row_level import find_row_transform, project_transforms

        warehouse = project.warehouse
        views = load_definitions(project.root).views.values()
        transforms = project_transforms(project) if views else {}
        by_relation: dict[str, LiveRelation] = {}
        for view in views:
            transform = find_row_transform(
                project, transforms, view.source, (schema, table), f"Feature view '{view.name}'"
            )
            if transform is not None:
                if not warehouse.table_exists(*transform.relation):
                    continue  # not built yet: `gristmill run` builds it, then materialize
                missing = transform.keeps_columns(key) if transform.stored else []
                if missing:
                    raise ConfigError(
                        f"{transform.transform.where}: transform '{transform.name}' feeds"
                        f" feature view '{view.name}' from {schema}.{table}, synced by change"
                        f" data capture, so each of its rows must keep the table's key"
                        f" unchanged to follow updates and deletes: add {', '.join(missing)}"
                        " to its SELECT."
                    )
                relation = warehouse.qualified(*transform.relation)
            else:
                try:
                    if resolve_table(project, view.source) != (schema, table):
                        continue
                except Exception:  # a view over a table not built yet: not this one
                    continue
                relation = warehouse.qualified(schema, table)
            live = by_relation.setdefault(relation, LiveRelation(relation, [], transform))
            live.views.append(view)
        if not by_relation:
            return None
        relations = list(by_relation.values())
        for number, live in enumerate(relations):
            live.touched_table = f"{TOUCHED}{number}"
        return cls(project, relations, warehouse.qualified(schema, table), key)

    def _quoted(self, columns: list[str]) -> str:
        return ", ".join(self.project.warehouse.quote(c) for c in columns)

    def track(self, tx: Transaction) -> None:
        """Temporary tables for the entities a batch touches, before and after."""
        for live in self.relations:
            tx.execute(
                f"CREATE TEMPORARY TABLE {live.touched_table} AS SELECT"
                f" {self._quoted(live.entity_columns)}"
                f" FROM ({live.rows(f'SELECT * FROM {self.table}')}) AS r WHERE 1 = 0"
            )

    def touched(self, tx: Transaction, table_rows: str) -> None:
        """Remember the entities that the synced table's rows in the query `table_rows`
        (before a change, or after it) make in each relation."""
        for live in self.relations:
            tx.execute(
                f"INSERT INTO {live.touched_table} SELECT {self._quoted(live.entity_columns)}"
                f" FROM ({live.rows(table_rows)}) AS r"
            )

    def replace_rows(self, tx: Transaction, keys: str | None, table_rows: str) -> None:
        """Keep the transforms the warehouse stores as tables in step with the synced table:
        the rows of the keys in the query `keys` (None: every row) are replaced by those
        that the table's rows in the query `table_rows` make."""
        for live in self.relations:
            if live.transform is None or not live.transform.stored:
                continue  # the table itself, or a view over it: current already
            if keys is None:
                tx.execute(f"DELETE FROM {live.relation}")
            else:
                columns = self._quoted(self.key)
                tx.execute(
                    f"DELETE FROM {live.relation} WHERE ({columns}) IN"
                    f" (SELECT {columns} FROM ({keys}) AS k)"
                )
            tx.execute(f"INSERT INTO {live.relation} {live.rows(table_rows)}")

    def refresh(self, tx: Transaction) -> int:
        """Rewrite the online events of the touched entities, as the transaction `tx` sees
        the relations, and drop the temporary tables. Returns the entities written."""
        written = 0
        for live in self.relations:
            written += self._refresh(tx, live, f"SELECT * FROM {live.touched_table}")
            tx.execute(f"DROP TABLE {live.touched_table}")
        return written

    def _refresh(self, tx: Transaction, live: LiveRelation, touched: str) -> int:
        store = self.project.online
        dialect = self.project.warehouse.dialect
        clock = datetime.now(UTC)
        now, cut = to_micros(clock), future_cut(clock, clock_skew(self.project))
        written = 0
        for view in live.views:
            if store.get_meta(view.name, "version") != view.version:
                continue  # not materialized (or materialized from another definition) yet
            keys = ", ".join(dialect.quote(k) for k in view.entity)
            entities = tx.fetch_arrow(f"SELECT DISTINCT {keys} FROM ({touched}) AS t")
            if entities.num_rows == 0:
                continue
            events = online_events_sql(view, live.relation, dialect, now, cut)
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
