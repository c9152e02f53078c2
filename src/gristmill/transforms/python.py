"""Python transforms: functions over frames, declared with `@gristmill.transform`.

    from gristmill import transform

    @transform(inputs=["clean_transactions", "raw.merchants"], checks=[{"unique": "id"}])
    def merchant_risk(clean_transactions, merchants):
        ...  # pyarrow Tables in (or pandas/polars with frame=...), a frame out

Each input arrives as a keyword argument named after the table (without its schema).
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from gristmill.errors import ConfigError, MissingDependencyError, TransformError
from gristmill.transforms.definition import Frame, Transform, validate_options

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__gristmill_transform__"


def transform(
    inputs: list[str],
    *,
    name: str | None = None,
    checks: list[dict[str, Any]] | None = None,
    frame: Frame = "arrow",
) -> Callable[[F], F]:
    """Declare a Python transform reading `inputs` and returning a frame (a table)."""

    def mark(function: F) -> F:
        setattr(
            function,
            _MARK,
            {"inputs": list(inputs), "name": name, "checks": checks or [], "frame": frame},
        )
        return function

    return mark


def load_python_file(path: Path, display: Path) -> list[Transform]:
    """The transforms a Python file declares; importing it runs its top-level code."""
    from gristmill.project import import_project_file

    module = import_project_file(path, display.as_posix(), "gristmill_project_transforms")
    found = []
    for value in vars(module).values():
        declared = getattr(value, _MARK, None)
        if declared is None or not callable(value):
            continue
        where = f"{display.as_posix()}:{value.__code__.co_firstlineno}"
        options = validate_options({"checks": declared["checks"]}, where)
        found.append(
            Transform(
                name=declared["name"] or value.__name__,
                kind="python",
                path=display,
                line=value.__code__.co_firstlineno,
                options=options,
                inputs=declared["inputs"],
                function=value,
                frame=declared["frame"],
                source_text=inspect.getsource(value),
            )
        )
    return found


def call_transform(transform: Transform, inputs: Mapping[str, Any]) -> Any:
    """Run a Python transform over its inputs (Arrow tables, by table name) and return
    its result as an Arrow table; an exception it raises names its file and line."""
    assert transform.function is not None
    frames = {
        name: to_frame(table, transform.frame, transform.where) for name, table in inputs.items()
    }
    try:
        output = transform.function(**frames)
    except Exception as exc:
        # The file's own frames (a function sent to a worker by value keeps its lines,
        # not its file name, so the code's file name is compared, not the path)
        source = transform.function.__code__.co_filename
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == source]
        line = lines[-1] if lines else transform.line
        raise TransformError(
            f"{transform.path.as_posix()}:{line}: {transform.name} raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return to_arrow(output, transform.where)


def to_frame(table: Any, frame: Frame, where: str) -> Any:
    """An Arrow table as the frame kind a Python transform asked for."""
    if frame == "arrow":
        return table
    if frame == "pandas":
        try:
            return table.to_pandas()
        except ImportError:
            raise MissingDependencyError("pandas", "pandas", f"{where} (frame='pandas')") from None
    try:
        import polars
    except ImportError:
        raise MissingDependencyError("polars", "polars", f"{where} (frame='polars')") from None
    import pyarrow as pa

    for field in table.schema:
        # polars holds decimals of at most 38 digits (and panics on wider ones).
        if isinstance(field.type, pa.Decimal256Type):
            raise TransformError(
                f"{where}: column {field.name} is a {field.type}, and polars holds decimals of"
                " at most 38 digits. Read it with frame='arrow' or 'pandas', or cast it in SQL"
                " (NUMERIC(38,s), or DOUBLE PRECISION)."
            )
    return polars.from_arrow(table)


def to_arrow(result: Any, where: str) -> Any:
    """What a Python transform returned, as an Arrow table."""
    import pyarrow as pa

    if isinstance(result, pa.Table):
        return result
    if isinstance(result, pa.RecordBatchReader):
        return result.read_all()
    if isinstance(result, pa.RecordBatch):
        return pa.Table.from_batches([result])
    module = type(result).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(result, preserve_index=False)
    if module == "polars":
        return result.to_arrow()
    if hasattr(result, "__arrow_c_stream__"):
        return pa.table(result)
    raise ConfigError(
        f"{where}: the transform returned {type(result).__name__}; return a pyarrow Table, "
        "a pandas DataFrame or a polars DataFrame."
    )
