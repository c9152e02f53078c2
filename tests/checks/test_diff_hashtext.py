"""gristmill's vectorised hashtext equals PostgreSQL's on any text."""

from __future__ import annotations

import random

import pyarrow as pa

from gristmill.checks.diff.hashtext import hashtext


def test_equals_postgres_hashtext(pg_url: str) -> None:
    import psycopg

    rng = random.Random(7)
    alphabet = "abcXYZ0123_ -'\\\n\téüß世界🙂"
    words = ["", "a", "ab", "abc", "abcd", "x" * 11, "x" * 12, "x" * 13, "x" * 24, "x" * 25]
    words += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(2000)]
    with psycopg.connect(pg_url) as db:
        expected = [
            row[0]
            for row in db.execute(
                "SELECT hashtext(w)::bigint & 4294967295 FROM unnest(%s::text[])"
                " WITH ORDINALITY AS t(w, i) ORDER BY i",
                [words],
            ).fetchall()
        ]
    values = pa.array([*words, None])
    assert hashtext(values).to_pylist() == [*expected, None]
    # Slices and chunked arrays read their own bytes only.
    assert hashtext(values.slice(5, 100)).to_pylist() == expected[5:105]
    chunked = pa.chunked_array([values.slice(0, 10), values.slice(10, 20)])
    assert hashtext(chunked).to_pylist() == expected[:30]
