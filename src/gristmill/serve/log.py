"""The prediction log: one JSON line per prediction (request, features used, score,
decision, model and policy versions, latency), appended to a file per day under
`.gristmill/predictions/`. Appends are single `write` calls on a file opened with
O_APPEND, so concurrent workers never interleave within a line; a line cut short by a
crash is the last one, and whoever reads the log skips it."""

from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOG_DIR = Path(".gristmill") / "predictions"


class PredictionLog:
    def __init__(self, root: Path) -> None:
        self.folder = root / LOG_DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._day = ""
        self._fd = -1

    def write(self, records: list[dict[str, Any]]) -> None:
        """Append records; nested values (the request, the features) are kept as JSON
        text, so that every line has the same flat columns."""
        now = datetime.now(UTC)
        lines = "".join(
            json.dumps(
                {
                    "prediction_id": uuid.uuid4().hex,
                    "logged_at": now.isoformat(),
                    **{k: _flat(v) for k, v in r.items()},
                },
                separators=(",", ":"),
            )
            + "\n"
            for r in records
        ).encode()
        with self._lock:
            day = now.strftime("%Y-%m-%d")
            if day != self._day:
                if self._fd >= 0:
                    os.close(self._fd)
                path = self.folder / f"{day}.jsonl"
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                self._day = day
            os.write(self._fd, lines)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._day = ""  # the next write opens the file again (an app served anew)


def _flat(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, separators=(",", ":"))
    return value


def read_log(root: Path) -> list[dict[str, Any]]:
    """Every whole line of the log, oldest first, its JSON text fields parsed."""
    records = []
    for path in sorted((root / LOG_DIR).glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line a crash cut short
            for key in ("request", "features", "scores"):
                if isinstance(record.get(key), str):
                    record[key] = json.loads(record[key])
            records.append(record)
    return records
