"""A gristmill project: a folder with a gristmill.toml, and the backends it configures."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from gristmill.config import CONFIG_FILE, ProjectConfig, load_config
from gristmill.errors import ConfigError

if TYPE_CHECKING:
    from gristmill.catalog.base import Catalog
    from gristmill.execution import Executor
    from gristmill.online.base import OnlineStore
    from gristmill.registry.api import Registry
    from gristmill.warehouse.base import Warehouse

STATE_DIR = ".gristmill"

_CONFIG_TEMPLATE = """\
# gristmill project configuration. Secrets come from the environment: url = "${{APP_DB_URL}}"
name = "{name}"

[warehouse]
type = "duckdb"                       # or "postgres" with url = "${{WAREHOUSE_URL}}"
path = ".gristmill/warehouse.duckdb"

[catalog]
type = "sqlite"
path = ".gristmill/catalog.sqlite"

# A source and the tables it syncs. Modes: full, append (by cursor), merge (upsert by key).
# [sources.app]
# type = "postgres"                   # postgres, mysql, sqlite, files
# url = "${{APP_DB_URL}}"
#
# [sources.app.tables.transactions]
# mode = "merge"
# cursor = "updated_at"
# exclude = ["card_number"]
"""


class Project:
    """A loaded project. Backends open on first use and close with `close()`."""

    def __init__(self, root: Path, config: ProjectConfig) -> None:
        self.root = root
        self.config = config

    @classmethod
    def load(cls, path: Path | str = ".") -> Project:
        """Load the project whose gristmill.toml is at `path` or in a folder above it."""
        start = Path(path).resolve()
        for folder in [start, *start.parents]:
            if (folder / CONFIG_FILE).is_file():
                return cls(folder, with_prediction_log(folder, load_config(folder / CONFIG_FILE)))
        raise ConfigError(
            f"No {CONFIG_FILE} in {start} or any folder above it. "
            "Create a project with: gristmill init DIR"
        )

    @cached_property
    def warehouse(self) -> Warehouse:
        from gristmill.warehouse import connect_warehouse

        return connect_warehouse(self.config.warehouse, self.root)

    @cached_property
    def catalog(self) -> Catalog:
        from gristmill.catalog import open_catalog

        return open_catalog(self.config.catalog, self.root)

    @cached_property
    def online(self) -> OnlineStore:
        from gristmill.online import open_online_store

        return open_online_store(self.config.online, self.root)

    @cached_property
    def registry(self) -> Registry:
        from gristmill.registry import open_registry

        return open_registry(self.root, self.config.registry.url)

    @cached_property
    def executor(self) -> Executor:
        """Where heavy work runs ([execution]); a cluster starts on its first job."""
        from gristmill.execution import open_executor

        return open_executor(self.config.execution, self.root)

    def use_engine(self, engine: str | None) -> Project:
        """Run on `engine` (a command's --engine: local or dask) instead of [execution]
        engine."""
        from gristmill.config import ExecutionConfig

        if engine is not None and engine != self.config.execution.engine:
            if "executor" in self.__dict__:
                self.__dict__.pop("executor").close()
            execution = ExecutionConfig.model_validate(
                {**self.config.execution.model_dump(), "engine": engine}
            )
            self.config = self.config.model_copy(update={"execution": execution})
        return self

    def close(self) -> None:
        for name in ("warehouse", "catalog", "online", "executor"):
            backend = self.__dict__.pop(name, None)
            if backend is not None:
                backend.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


PREDICTIONS_SOURCE = "gristmill"
PREDICTIONS_PATH = ".gristmill/predictions/*.jsonl"


def with_prediction_log(root: Path, config: ProjectConfig) -> ProjectConfig:
    """Once `gristmill serve` has logged predictions, they are a source the project syncs
    like any other (`gristmill.predictions` into raw.predictions, merged on prediction_id),
    for monitoring and retraining; a source of that name in gristmill.toml overrides it."""
    from gristmill.config import SourceConfig, TableConfig

    if PREDICTIONS_SOURCE in config.sources or not any(
        (root / PREDICTIONS_PATH).parent.glob("*.jsonl")
    ):
        return config
    table = TableConfig(
        path=PREDICTIONS_PATH,
        format="jsonl",
        mode="merge",
        primary_key=["prediction_id"],
        max_bad_rows=1_000,  # a line cut short by a crash is quarantined, not fatal
    )
    source = SourceConfig(type="files", tables={"predictions": table})
    return config.model_copy(update={"sources": {**config.sources, PREDICTIONS_SOURCE: source}})


def project_modules(root: Path, folder: str, namespace: str) -> Iterator[tuple[str, ModuleType]]:
    """(path shown in messages, module) of each `folder/*.py` of a project, in name order;
    files whose name starts with _ are not definitions."""
    directory = root / folder
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.py")):
        if not path.name.startswith("_"):
            display = path.relative_to(root).as_posix()
            yield display, import_project_file(path, display, namespace)


def import_project_file(path: Path, display: str, namespace: str) -> ModuleType:
    """Import a project's Python file (a transform or feature definition) as a module of
    `namespace`; any error it raises names the file."""
    import importlib.util
    import sys

    from gristmill.errors import GristmillError

    module_name = f"{namespace}.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{display}: cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except GristmillError as exc:
        raise ConfigError(f"{display}: {exc}") from None
    except Exception as exc:
        raise ConfigError(f"{display}: importing it failed: {type(exc).__name__}: {exc}") from exc
    return module


def init_project(directory: Path | str, name: str | None = None) -> Path:
    """Scaffold a project in `directory`; refuse to overwrite an existing gristmill.toml."""
    root = Path(directory)
    config_path = root / CONFIG_FILE
    if config_path.exists():
        raise ConfigError(f"{config_path} already exists; not overwriting it.")
    for folder in ("transforms", "features", "models"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    config_path.write_text(_CONFIG_TEMPLATE.format(name=name or root.resolve().name))
    gitignore = root / ".gitignore"
    if STATE_DIR + "/" not in (gitignore.read_text() if gitignore.exists() else ""):
        with gitignore.open("a") as handle:
            handle.write(f"{STATE_DIR}/\n")
    return root
