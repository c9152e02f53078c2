"""Python transforms on a Dask worker.

The driver reads the inputs (only it may read a DuckDB warehouse file) and hands them
over as Parquet in staging; a worker runs the function and hands its result back the
same way; the driver writes the warehouse. The function travels by value, with the
module of the project file it was defined in, so workers need neither the project's
folder nor its files.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from gristmill.execution import Executor
    from gristmill.execution.staging import StagingArea
    from gristmill.transforms.definition import Transform

OUTPUT = "output.parquet"


@dataclass(frozen=True)
class PythonTask:
    transform: Transform
    inputs: tuple[str, ...]
    """Table names; each is `<name>.parquet` in the staging area."""
    area: StagingArea

    def __str__(self) -> str:
        return self.transform.name


def call_on_worker(
    executor: Executor, transform: Transform, inputs: Mapping[str, pa.Table]
) -> pa.Table:
    """What `call_transform` returns, computed by a task on the executor's cluster."""
    import cloudpickle

    assert transform.function is not None
    module = sys.modules.get(transform.function.__module__)
    if module is not None:
        cloudpickle.register_pickle_by_value(module)
    with executor.staging("transform") as area:
        for name, table in inputs.items():
            area.write_table(f"{name}.parquet", table)
        task = PythonTask(transform, tuple(inputs), area)
        executor.map(run_python_task, [task], label="transform")
        return area.read_table(OUTPUT)


def run_python_task(task: PythonTask) -> int:
    """On a worker: run the transform over its staged inputs, stage its result."""
    from gristmill.transforms.python import call_transform

    inputs = {name: task.area.read_table(f"{name}.parquet") for name in task.inputs}
    table = call_transform(task.transform, inputs)
    task.area.write_table(OUTPUT, table)
    return int(table.num_rows)
