"""Features: one definition for point-in-time training sets (and, next, online values).

`definition.py` holds what users write in features/*.py (FeatureView, aggregate,
expression, Dataset); `discover.py` loads them; `pit.py` turns a dataset into one SQL
query over the warehouse, joining every feature as of each spine row's time.
"""

from __future__ import annotations

from gristmill.features.definition import Dataset, Feature, FeatureView, aggregate, expression

__all__ = ["Dataset", "Feature", "FeatureView", "aggregate", "expression"]
