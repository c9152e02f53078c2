"""Data checks: declared next to what they check, run as SQL in the warehouse.

`parse_checks` validates declarations into `CheckSpec`s; `run_checks` runs them
against a relation inside a warehouse transaction and returns `CheckResult`s.
"""

from __future__ import annotations

from gristmill.checks.parse import parse_check, parse_checks
from gristmill.checks.runner import CheckResult, raise_if_blocking, run_checks
from gristmill.checks.spec import KINDS, SEVERITIES, CheckSpec

__all__ = [
    "KINDS",
    "SEVERITIES",
    "CheckResult",
    "CheckSpec",
    "parse_check",
    "parse_checks",
    "raise_if_blocking",
    "run_checks",
]
