"""Building the asset graph of a project from its gristmill.toml, its transforms/ folder
and what its warehouse holds."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gristmill.errors import ConfigError, did_you_mean
from gristmill.graph.assets import Asset, AssetGraph
from gristmill.transforms.definition import Transform, parse_sql_file
from gristmill.transforms.sql import TableRef
from gristmill.values import content_hash
from gristmill.warehouse.base import STATE_TABLE

if TYPE_CHECKING:
    from gristmill.project import Project

TRANSFORMS_DIR = "transforms"


@dataclass
class ProjectGraph:
    """The graph, with what was read from the warehouse to build it."""

    graph: AssetGraph
    resolved: dict[TableRef, TableRef]
    """Every table reference as written in a transform -> (schema, table)."""
    relations: dict[tuple[str, str], str]
    """What the warehouse held when the graph was built: (schema, name) -> table/view."""
    states: dict[tuple[str, str], dict[str, Any]]
    """Sync state of every raw table: (source, source table) -> state."""
    derived_schema: str
    raw_schema: str

    @property
    def search_path(self) -> list[str]:
        return [self.derived_schema, self.raw_schema]


def discover_transforms(project: Project) -> list[Transform]:
    """Every transform under transforms/, SQL files parsed (through the catalog's cache of
    what each SQL text reads)."""
    from gristmill.transforms.python import load_python_file

    folder = project.root / TRANSFORMS_DIR
    if not folder.is_dir():
        return []
    transforms: list[Transform] = []
    for path in sorted(folder.rglob("*")):
        display = path.relative_to(project.root)
        if path.suffix == ".sql":
            transforms.append(parse_sql_file(path, display))
        elif path.suffix == ".py" and not path.name.startswith("_"):
            transforms.extend(load_python_file(path, display))
    seen: dict[str, Transform] = {}
    for t in transforms:
        if t.name in seen:
            raise ConfigError(
                f"Two transforms make the table '{t.name}': {seen[t.name].where} and {t.where}."
            )
        seen[t.name] = t
    _find_references(project, [t for t in transforms if t.kind == "sql"])
    return transforms


def _find_references(project: Project, transforms: list[Transform]) -> None:
    from gristmill.transforms.sql import table_references

    dialect = project.warehouse.DIALECT
    hashes = {
        t.name: hashlib.sha256(f"{dialect}\n{t.sql}".encode()).hexdigest() for t in transforms
    }
    cached = project.catalog.cached_references(list(hashes.values()))
    parsed: dict[str, Any] = {}
    for t in transforms:
        found = cached.get(hashes[t.name])
        if found is None:
            references = table_references(t.sql, dialect, t.where)
            found = [[schema, name, line] for (schema, name), line in references.items()]
            parsed[hashes[t.name]] = found
        t.inputs = [".".join(p for p in (schema, name) if p) for schema, name, _ in found]
        t.input_lines = {".".join(p for p in (s, n) if p): line for s, n, line in found}
    if parsed:
        project.catalog.cache_references(parsed)


def _split(written: str) -> TableRef:
    schema, _, name = written.rpartition(".")
    return schema, name


def load_graph(project: Project) -> ProjectGraph:
    """The project's asset graph; raises ConfigError for unknown tables and cycles."""
    from gristmill.checks import parse_checks

    config = project.config
    warehouse = project.warehouse
    raw_schema, derived = config.warehouse.raw_schema, config.transforms.schema_name
    relations = warehouse.relations()
    states = warehouse.read_states() if (warehouse.meta_schema, STATE_TABLE) in relations else {}

    assets: list[Asset] = []
    raw_tables: dict[str, str] = {}
    for source_name, source in config.sources.items():
        declared = source.tables
        if declared is None:
            synced = {t: s["target"] for (src, t), s in states.items() if src == source_name}
            entries: dict[str, Any] = {t: (None, target) for t, target in synced.items()}
        else:
            entries = {t: (c, c.target or t.split(".")[-1]) for t, c in declared.items()}
        for table, (table_config, target) in entries.items():
            source_node = f"{source_name}.{table}"
            raw_node = f"{raw_schema}.{target}"
            where = f"gristmill.toml sources.{source_name}.tables.{table}"
            assets.append(Asset(source_node, "source", source=(source_name, table)))
            definition = table_config.model_dump(mode="json") if table_config else {}
            assets.append(
                Asset(
                    raw_node,
                    "raw",
                    upstream=[source_node],
                    relation=(raw_schema, target),
                    source=(source_name, table),
                    definition_hash=_hash(definition),
                    checks=parse_checks(table_config.checks if table_config else [], where),
                )
            )
            raw_tables[target] = raw_node

    transforms = discover_transforms(project)
    by_name = {t.name: t for t in transforms}
    resolved: dict[TableRef, TableRef] = {}
    externals: dict[str, Asset] = {}

    def resolve(written: str, where: str) -> str:
        schema, name = _split(written)
        node: str | None = None
        relation: TableRef | None = None
        if schema in ("", derived) and name in by_name:
            node, relation = name, (derived, name)
        elif schema in ("", raw_schema) and name in raw_tables:
            node, relation = raw_tables[name], (raw_schema, name)
        else:
            for candidate in [schema] if schema else [derived, raw_schema]:
                if (candidate, name) in relations:
                    relation = (candidate, name)
                    node = f"{candidate}.{name}"
                    externals.setdefault(node, Asset(node, "external", relation=relation))
                    break
        if node is None or relation is None:
            known = [*by_name, *(f"{raw_schema}.{t}" for t in raw_tables)]
            raise ConfigError(
                f"{where}: unknown table '{written}'.{did_you_mean(written, known)}"
                f" Tables gristmill knows: {', '.join(sorted(known)) or 'none yet'}."
            )
        resolved[(schema, name)] = relation
        return node

    for t in transforms:
        upstream = [
            resolve(written, f"{t.path.as_posix()}:{t.input_lines.get(written, t.line)}")
            for written in t.inputs
        ]
        checks = parse_checks(t.options.checks, t.where)
        for check in checks:
            upstream.extend(resolve(table, t.where) for table in check.referenced_tables())
        assets.append(
            Asset(
                t.name,
                "transform",
                upstream=list(dict.fromkeys(upstream)),
                relation=(derived, t.name),
                definition_hash=t.definition_hash,
                transform=t,
                checks=checks,
            )
        )
    assets.extend(_feature_assets(project, derived, resolve, resolved))
    assets.extend(_model_assets(project, {a.name for a in assets if a.kind == "dataset"}, resolve))
    for asset in assets:
        if asset.kind == "raw":
            for check in asset.checks:
                asset.upstream.extend(
                    resolve(table, f"checks of {asset.name}") for table in check.referenced_tables()
                )
    graph = AssetGraph([*externals.values(), *assets])
    return ProjectGraph(graph, resolved, relations, states, derived, raw_schema)


def _feature_assets(
    project: Project,
    derived: str,
    resolve: Callable[[str, str], str],
    resolved: dict[TableRef, TableRef],
) -> list[Asset]:
    """Feature views, and the datasets built from them as derived tables."""
    from gristmill.features.discover import load_definitions
    from gristmill.features.distributed import TrainingSetSpec
    from gristmill.features.pit import training_set_sql
    from gristmill.transforms.definition import TransformOptions
    from gristmill.transforms.sql import table_references

    definitions = load_definitions(project.root)
    warehouse = project.warehouse
    assets: list[Asset] = []
    sources: dict[str, str] = {}
    for view in definitions.views.values():
        source = resolve(view.source, view.where)
        sources[view.name] = warehouse.qualified(*resolved[_split(view.source)])
        assets.append(
            Asset(
                view.name,
                "feature_view",
                upstream=[source],
                definition_hash=view.version,
            )
        )
    for dataset in definitions.datasets.values():
        selections = definitions.selections(dataset, sources)
        spine = dataset.spine.strip()
        if spine.split(None, 1)[0].lower() in ("select", "with"):
            references = table_references(spine, warehouse.DIALECT, dataset.where)
            upstream = [resolve(".".join(p for p in ref if p), dataset.where) for ref in references]
            spine_sql = spine  # its names resolve through the build's search path
        else:
            upstream = [resolve(spine, dataset.where)]
            spine_sql = f"SELECT * FROM {warehouse.qualified(*resolved[_split(spine)])}"
        sql = training_set_sql(
            spine_sql, dataset.timestamp, selections, warehouse.dialect, dataset.inclusive
        )
        transform = Transform(
            name=dataset.name,
            kind="sql",
            path=Path(dataset.where),
            options=TransformOptions(materialized="table"),
            sql=sql,
            source_text=sql,
        )
        assets.append(
            Asset(
                dataset.name,
                "dataset",
                upstream=list(dict.fromkeys([*upstream, *(s.view.name for s in selections)])),
                relation=(derived, dataset.name),
                definition_hash=transform.definition_hash,
                transform=transform,
                training=TrainingSetSpec(
                    spine_sql, dataset.timestamp, tuple(selections), dataset.inclusive
                ),
            )
        )
    return assets


def _model_assets(
    project: Project, datasets: set[str], resolve: Callable[[str, str], str]
) -> list[Asset]:
    """ML models: each reads its training set (a dataset, or any table)."""
    from gristmill.train.discover import load_models

    return [
        Asset(
            model.name,
            "model",
            upstream=[
                model.training_set
                if model.training_set in datasets
                else resolve(model.training_set, model.where)
            ],
            definition_hash=model.version,
        )
        for model in load_models(project.root).values()
    ]


def _hash(value: Any) -> str:
    return content_hash(value, length=16)
