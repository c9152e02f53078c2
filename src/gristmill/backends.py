"""One registry that resolves every backend by kind and name.

Backends are imported lazily, so `gristmill --help` never pays for duckdb or a
database driver, and a missing optional driver is reported with the pip command.
"""

from __future__ import annotations

import importlib
from typing import Any

from gristmill.errors import ConfigError, did_you_mean

_REGISTRY: dict[str, dict[str, str]] = {
    "dialect": {
        "duckdb": "gristmill.dialects.duckdb:DuckDBDialect",
        "postgres": "gristmill.dialects.postgres:PostgresDialect",
        "mysql": "gristmill.dialects.mysql:MySQLDialect",
        "sqlite": "gristmill.dialects.sqlite:SQLiteDialect",
    },
    "warehouse": {
        "duckdb": "gristmill.warehouse.duckdb:DuckDBWarehouse",
        "postgres": "gristmill.warehouse.postgres:PostgresWarehouse",
    },
    "catalog": {
        "sqlite": "gristmill.catalog.sqlite:SQLiteCatalog",
    },
    "source": {
        "postgres": "gristmill.ingest.sources.postgres:PostgresSource",
        "mysql": "gristmill.ingest.sources.mysql:MySQLSource",
        "sqlite": "gristmill.ingest.sources.sqlite:SQLiteSource",
        "files": "gristmill.ingest.sources.files:FilesSource",
    },
    "online": {
        "sqlite": "gristmill.online.sqlite:SQLiteOnlineStore",
        "redis": "gristmill.online.redis:RedisOnlineStore",
    },
    "estimator": {
        "lightgbm": "gristmill.train.estimators.lightgbm:LightGBMEstimator",
        "xgboost": "gristmill.train.estimators.xgboost:XGBoostEstimator",
        "decision_tree": "gristmill.train.estimators.sklearn:DecisionTreeEstimator",
        "random_forest": "gristmill.train.estimators.sklearn:RandomForestEstimator",
        "logistic_regression": "gristmill.train.estimators.sklearn:LogisticRegressionEstimator",
        "linear_regression": "gristmill.train.estimators.sklearn:LinearRegressionEstimator",
    },
    "diff": {
        "duckdb": "gristmill.checks.diff.duckdb:DuckDBEndpoint",
        "postgres": "gristmill.checks.diff.postgres:PostgresEndpoint",
        "mysql": "gristmill.checks.diff.mysql:MySQLEndpoint",
    },
    "executor": {
        "local": "gristmill.execution.local:LocalExecutor",
        "dask": "gristmill.execution.dask:DaskExecutor",
    },
    "registry": {
        "local": "gristmill.registry.local:LocalRegistryStorage",
    },
    "broker": {
        "redis": "gristmill.streams.redis:RedisStreamBroker",
        "nats": "gristmill.streams.nats:NatsStreamBroker",
    },
}
_ALIASES = {"postgresql": "postgres", "mariadb": "mysql"}


def names(kind: str) -> list[str]:
    return sorted(_REGISTRY[kind])


def resolve(kind: str, name: str) -> Any:
    """The backend class registered as `name` for `kind` ('dialect', 'warehouse', 'catalog',
    'source', 'diff', ...)."""
    backends = _REGISTRY[kind]
    name = _ALIASES.get(name, name)
    if name not in backends:
        raise ConfigError(
            f"Unknown {kind} type '{name}'.{did_you_mean(name, backends)} "
            f"Known: {', '.join(sorted(backends))}."
        )
    module_name, _, attr = backends[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)
