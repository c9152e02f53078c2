"""Transforms: derived tables made by SQL files and Python functions.

`definition.py` reads a transform (a SQL file's TOML header, or the options of the
`@gristmill.transform` decorator in `python.py`); `sql.py` finds what a query reads and
its column lineage; `materialize.py` builds views, tables and incremental tables, checks
them, and publishes them atomically.
"""
