"""`gristmill features get|verify` and `gristmill materialize` from the command line: keys
parsed by the entity's declared type, rows beyond the serving clock reported."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import gristmill
from tests.features._helpers import VIEW, now, payments_project

DEVICES = """
from gristmill.features import FeatureView, aggregate

devices = FeatureView(
    name="devices",
    entity=["device_id"],
    timestamp="happened",
    source="raw.logins",
    features=[aggregate("logins", "count", windows=["1d"])],
)
"""


def login(device: str, minutes_ago: int) -> tuple[Any, ...]:
    return (device, now() - timedelta(minutes=minutes_ago))


def test_a_text_key_stays_text(tmp_path: Path) -> None:
    rows = [login("007", 5), login("007", 10), login("007", 20), login("7", 1)]
    with payments_project(
        tmp_path / "p",
        rows,
        view=DEVICES,
        columns="device_id VARCHAR, happened TIMESTAMP",
        table="logins",
    ) as root:
        assert gristmill("materialize", "-p", str(root)).returncode == 0
        got = gristmill("features", "get", "devices", "device_id=007", "--json", "-p", str(root))
        assert got.returncode == 0, got.stderr
        read = json.loads(got.stdout)
        assert read["entity"] == {"device_id": "007"} and read["values"] == {"logins_1d": 3}
        other = gristmill("features", "get", "devices", "device_id=7", "--json", "-p", str(root))
        assert json.loads(other.stdout)["values"] == {"logins_1d": 1}


@pytest.fixture
def payments(tmp_path: Path) -> Any:
    start = now()
    rows = [
        (42, Decimal("10.00"), 0.5, "a", True, start - timedelta(hours=2)),
        (42, Decimal("5.00"), 0.5, "b", False, start - timedelta(hours=1)),
        (43, Decimal("1.00"), 0.5, "a", False, start + timedelta(days=31)),
    ]
    with payments_project(tmp_path / "p", rows, view=VIEW) as root:
        yield root


def test_an_integer_key_is_parsed_as_one_or_refused(payments: Path) -> None:
    assert gristmill("materialize", "-p", str(payments)).returncode == 0
    got = gristmill(
        "features", "get", "payments.paid_1d", "user_id=0042", "--json", "-p", str(payments)
    )
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["entity"] == {"user_id": 42}
    assert json.loads(got.stdout)["values"] == {"paid_1d": 15.0}
    wrong = gristmill("features", "get", "payments", "user_id=abc", "-p", str(payments))
    said = wrong.stdout + wrong.stderr
    assert wrong.returncode == 2 and "user_id" in said and "int64" in said and "'abc'" in said
    assert "Traceback" not in said
    typo = gristmill("features", "get", "payments", "usr_id=42", "-p", str(payments))
    said = typo.stdout + typo.stderr
    assert typo.returncode == 2 and "Did you mean 'user_id'" in said


def test_materialize_and_verify_report_rows_beyond_the_clock(payments: Path) -> None:
    built = gristmill("materialize", "-p", str(payments))
    assert built.returncode == 0, built.stderr
    assert "1 rows dated after now + [online] clock_skew left out" in " ".join(built.stdout.split())
    as_json = gristmill("materialize", "--json", "-p", str(payments))
    assert json.loads(as_json.stdout)[0]["future_events"] == 1
    checked = gristmill("features", "verify", "payments", "--samples", "40", "-p", str(payments))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    said = " ".join(checked.stdout.split())
    assert "scratch sqlite store: 0 mismatches" in said and "1 rows dated after now" in said
    report = json.loads(
        gristmill("features", "verify", "payments", "--json", "-p", str(payments)).stdout
    )
    assert report["ok"] and (report["future_events"], report["unknown_keys"]) == (1, 20)
    assert report["store"] == "sqlite"


def test_json_output_keeps_every_digit_of_a_decimal() -> None:
    from gristmill.cli.output import json_exact

    hostile = {"sum": Decimal("1000000000000.01"), "text": '\x00 quoted " 1.5', "n": None}
    text = json_exact(hostile)
    assert '"sum": 1000000000000.01' in text
    assert json.loads(text, parse_float=Decimal) == hostile
