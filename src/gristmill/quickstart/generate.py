"""A synthetic mobile-money application database, as a SQLite file.

Users, accounts, merchants, transactions, KYC documents and chargebacks, with skewed
amounts, daily and weekly seasonality, bursts, and a small fraud rate whose signal lives
in behaviour (velocity, new devices, foreign IPs, risky merchants, night hours, unusual
amounts) rather than in any single column. Generation is vectorised with numpy and the
transactions are written in chunks, so 10 million rows take minutes, not hours.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

DAYS = 180
CHUNK = 1_000_000
US_PER_MIN = 60_000_000
US_PER_DAY = 86_400_000_000

COUNTRIES = np.array(["KE", "UG", "TZ", "RW", "NG", "GH"])
COUNTRY_WEIGHTS = np.array([0.45, 0.2, 0.15, 0.05, 0.1, 0.05])
CURRENCY = {"KE": "KES", "UG": "UGX", "TZ": "TZS", "RW": "RWF", "NG": "NGN", "GH": "GHS"}
# Typical transaction size in each currency (roughly 10 US dollars).
CURRENCY_SCALE = {
    "KES": 1300.0,
    "UGX": 37000.0,
    "TZS": 26000.0,
    "RWF": 13000.0,
    "NGN": 15000.0,
    "GHS": 150.0,
}
CATEGORIES = np.array(
    [
        "airtime",
        "groceries",
        "fuel",
        "betting",
        "electronics",
        "transfers",
        "utilities",
        "crypto_exchange",
    ]
)
CATEGORY_WEIGHTS = np.array([0.25, 0.25, 0.12, 0.08, 0.08, 0.1, 0.1, 0.02])
CATEGORY_RISK = np.array([0.05, 0.05, 0.08, 0.5, 0.45, 0.2, 0.05, 0.7])
FIRST = [
    "Amina",
    "Wanjirũ",
    "Kwame",
    "Zoë",
    "Nguyễn",
    "Chidi",
    "Aïsha",
    "Otieno",
    "Fatuma",
    "Jean-Baptiste",
    "Nkosana",
    "Eşref",
    "Grace",
    "Mũthoni",
    "Kofi",
    "Ngozi",
]
LAST = [
    "Odhiambo",
    "Mensah",
    "Mwangi",
    "Okafor",
    "Uwimana",
    "Nakato",
    "Njoroge",
    "Achieng",
    "Boateng",
    "Kariuki",
    "Müller",
    "Ssempala",
]
KINDS = np.array(["payment", "p2p_transfer", "cash_in", "cash_out", "airtime"])
KIND_WEIGHTS = np.array([0.45, 0.15, 0.15, 0.13, 0.12])

SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY, phone TEXT UNIQUE NOT NULL, full_name TEXT NOT NULL,
  email TEXT, country TEXT NOT NULL, date_of_birth DATE, signup_at TIMESTAMP NOT NULL,
  kyc_level INTEGER NOT NULL, is_agent BOOLEAN NOT NULL, device_info JSON,
  updated_at TIMESTAMP NOT NULL);
CREATE TABLE accounts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, currency TEXT NOT NULL,
  balance DECIMAL(12,2) NOT NULL, opened_at TIMESTAMP NOT NULL, status TEXT NOT NULL,
  deleted_at TIMESTAMP, updated_at TIMESTAMP NOT NULL);
CREATE TABLE merchants (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,
  country TEXT NOT NULL, risk_score REAL NOT NULL, created_at TIMESTAMP NOT NULL,
  updated_at TIMESTAMP NOT NULL);
CREATE TABLE transactions (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL,
  merchant_id INTEGER, kind TEXT NOT NULL, amount DECIMAL(12,2) NOT NULL,
  fee DECIMAL(12,2) NOT NULL, status TEXT NOT NULL, device_id TEXT NOT NULL,
  ip_country TEXT NOT NULL, created_at TIMESTAMP NOT NULL, is_fraud BOOLEAN NOT NULL,
  updated_at TIMESTAMP NOT NULL);
CREATE TABLE kyc_documents (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL,
  doc_type TEXT NOT NULL, status TEXT NOT NULL, submitted_at TIMESTAMP NOT NULL,
  reviewed_at TIMESTAMP, image_sha256 BLOB NOT NULL, updated_at TIMESTAMP NOT NULL);
CREATE TABLE chargebacks (id INTEGER PRIMARY KEY, transaction_id INTEGER NOT NULL,
  reason TEXT NOT NULL, amount DECIMAL(12,2) NOT NULL, filed_at TIMESTAMP NOT NULL,
  status TEXT NOT NULL, updated_at TIMESTAMP NOT NULL);
"""
INDEXES = """
CREATE INDEX transactions_account ON transactions (account_id);
CREATE INDEX transactions_updated ON transactions (updated_at);
CREATE INDEX users_updated ON users (updated_at);
CREATE INDEX accounts_updated ON accounts (updated_at);
CREATE INDEX merchants_updated ON merchants (updated_at);
CREATE INDEX kyc_documents_updated ON kyc_documents (updated_at);
CREATE INDEX chargebacks_updated ON chargebacks (updated_at);
"""


def _ts(us: np.ndarray) -> list[str]:
    """Microseconds since the epoch as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC)."""
    text = np.datetime_as_string(us.astype("datetime64[us]"), unit="us")
    return np.char.replace(text, "T", " ").tolist()  # type: ignore[no-any-return]


def _money(values: np.ndarray) -> list[str]:
    # Text with exactly two decimals: the database never sees a binary float.
    return np.char.mod("%.2f", np.round(values, 2)).tolist()  # type: ignore[no-any-return]


def _insert(db: sqlite3.Connection, table: str, columns: Sequence[Iterable[Any]]) -> int:
    rows = list(zip(*columns, strict=True))
    marks = ", ".join("?" * len(columns))
    db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    return len(rows)


def generate_app_db(
    path: Path, transactions: int = 100_000, seed: int = 0, ends_at: datetime | None = None
) -> dict[str, int]:
    """Write the application database to `path` (replacing any file there); return row
    counts. The history ends at `ends_at` (by default now, UTC), so that the online features
    of a new quickstart are live ones: traffic served right after holds the hour windows
    that the training set's rows held (a history ending at the start of the hour left those
    windows short of events, a shift `gristmill monitor` saw)."""
    if ends_at is None:
        ends_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    rng = np.random.default_rng(seed)
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.executescript(SCHEMA)
    db.execute("BEGIN")
    end = int(np.datetime64(ends_at.replace(tzinfo=None), "us").astype("int64"))
    start = end - DAYS * US_PER_DAY
    counts: dict[str, int] = {}

    # -- users ---------------------------------------------------------------------------
    n_users = max(200, transactions // 20)
    user_ids = np.arange(1, n_users + 1)
    country = rng.choice(COUNTRIES, n_users, p=COUNTRY_WEIGHTS)
    first = rng.choice(np.array(FIRST), n_users)
    last = rng.choice(np.array(LAST), n_users)
    names = np.char.add(np.char.add(first, " "), last)
    emails = [
        None if missing else f"user{uid}@example.com"
        for uid, missing in zip(
            user_ids.tolist(), (rng.random(n_users) < 0.3).tolist(), strict=True
        )
    ]
    signup = rng.integers(start - 365 * US_PER_DAY, end - 30 * US_PER_DAY, n_users)
    dob_days = rng.integers(-3650, 12_775, n_users)  # born 1960..2005
    dob = np.datetime_as_string(
        np.datetime64("1970-01-01") + dob_days.astype("timedelta64[D]")
    ).tolist()
    os_ = rng.choice(np.array(["android", "ios", "feature_phone"]), n_users, p=[0.75, 0.15, 0.1])
    devices = [
        json.dumps(
            {"os": o, "model": f"model-{m}", "app_version": f"5.{v}.1"}, separators=(",", ":")
        )
        for o, m, v in zip(
            os_.tolist(),
            rng.integers(1, 60, n_users).tolist(),
            rng.integers(0, 9, n_users).tolist(),
            strict=True,
        )
    ]
    user_updated = signup + rng.integers(0, 30 * US_PER_DAY, n_users)
    counts["users"] = _insert(
        db,
        "users",
        [
            user_ids.tolist(),
            [f"+2547{10_000_000 + u}" for u in user_ids.tolist()],
            names.tolist(),
            emails,
            country.tolist(),
            dob,
            _ts(signup),
            rng.choice(4, n_users, p=[0.1, 0.3, 0.4, 0.2]).tolist(),
            (rng.random(n_users) < 0.02).astype(int).tolist(),
            devices,
            _ts(user_updated),
        ],
    )

    # -- accounts ------------------------------------------------------------------------
    extra = rng.random(n_users) < 0.3
    account_user = np.concatenate([user_ids, user_ids[extra]])
    n_accounts = len(account_user)
    account_ids = np.arange(1, n_accounts + 1)
    account_country = country[account_user - 1]
    currency = np.array([CURRENCY[c] for c in account_country.tolist()])
    scale = np.array([CURRENCY_SCALE[c] for c in currency.tolist()])
    opened = signup[account_user - 1] + rng.integers(0, 20 * US_PER_DAY, n_accounts)
    deleted = rng.random(n_accounts) < 0.01
    deleted_at = np.where(deleted, end - rng.integers(0, 30 * US_PER_DAY, n_accounts), 0)
    account_updated = np.minimum(
        np.maximum(opened + rng.integers(0, 60 * US_PER_DAY, n_accounts), deleted_at), end
    )
    counts["accounts"] = _insert(
        db,
        "accounts",
        [
            account_ids.tolist(),
            account_user.tolist(),
            currency.tolist(),
            _money(rng.lognormal(0, 1.2, n_accounts) * scale * 5),
            _ts(opened),
            rng.choice(
                np.array(["active", "frozen", "closed"]), n_accounts, p=[0.95, 0.03, 0.02]
            ).tolist(),
            [t if d else None for t, d in zip(_ts(deleted_at), deleted.tolist(), strict=True)],
            _ts(account_updated),
        ],
    )

    # -- merchants -----------------------------------------------------------------------
    n_merchants = max(50, transactions // 200)
    category_index = rng.choice(len(CATEGORIES), n_merchants, p=CATEGORY_WEIGHTS)
    risk = np.clip(CATEGORY_RISK[category_index] + rng.normal(0, 0.1, n_merchants), 0, 1)
    merchant_created = rng.integers(start - 700 * US_PER_DAY, start, n_merchants)
    counts["merchants"] = _insert(
        db,
        "merchants",
        [
            np.arange(1, n_merchants + 1).tolist(),
            [
                f"{c.replace('_', ' ').title()} #{i}"
                for i, c in enumerate(CATEGORIES[category_index].tolist(), 1)
            ],
            CATEGORIES[category_index].tolist(),
            rng.choice(COUNTRIES, n_merchants, p=COUNTRY_WEIGHTS).tolist(),
            np.round(risk, 4).tolist(),
            _ts(merchant_created),
            _ts(merchant_created + rng.integers(0, 100 * US_PER_DAY, n_merchants)),
        ],
    )
    risky_merchants = np.flatnonzero(risk > 0.4) + 1

    # -- transactions --------------------------------------------------------------------
    activity = rng.lognormal(0, 1.0, n_accounts)
    activity /= activity.sum()
    hour_weights = np.array(
        [1, 0.5, 0.3, 0.3, 0.4, 0.8, 2, 4, 6, 7, 7, 7, 8, 8, 7, 7, 7, 8, 9, 9, 8, 6, 4, 2],
        dtype=float,
    )
    hour_weights /= hour_weights.sum()
    day_weights = np.array([1.25 if d % 7 in (4, 5) else 1.0 for d in range(DAYS)])
    day_weights /= day_weights.sum()
    fraud_rows = chargebacks = 0
    next_id = 1
    chargeback_rows: list[tuple[Any, ...]] = []
    for offset in range(0, transactions, CHUNK):
        n = min(CHUNK, transactions - offset)
        n_fraud = int(n * 0.009)
        n_normal = n - n_fraud
        # Normal activity: seasonality by day and hour; some of it in bursts of its own.
        acct = rng.choice(n_accounts, n_normal, p=activity) + 1
        when = (
            start
            + rng.choice(DAYS, n_normal, p=day_weights) * US_PER_DAY
            + rng.choice(24, n_normal, p=hour_weights) * 3_600_000_000
            + rng.integers(0, 3_600_000_000, n_normal)
        )
        burst = rng.random(n_normal) < 0.04
        when[burst] = np.roll(when, 1)[burst] + rng.integers(0, 10 * US_PER_MIN, burst.sum())
        acct[burst] = np.roll(acct, 1)[burst]
        new_device = rng.random(n_normal) < 0.03
        device = np.where(new_device, rng.integers(1_000_000, 9_999_999, n_normal), 0)
        foreign_normal = rng.random(n_normal) < 0.02
        merchant = rng.integers(1, n_merchants + 1, n_normal)
        amount_factor = rng.lognormal(0, 0.9, n_normal)
        # Fraud: episodes of 2-8 transactions within minutes on one taken-over account.
        episode_len = rng.integers(2, 9, max(1, n_fraud // 4))
        episode_len = episode_len[: np.searchsorted(np.cumsum(episode_len), n_fraud) + 1]
        episode_len[-1] = n_fraud - episode_len[:-1].sum()
        episode = np.repeat(np.arange(len(episode_len)), episode_len)
        victim = rng.choice(n_accounts, len(episode_len), p=activity) + 1
        night = rng.random(len(episode_len)) < 0.6
        episode_start = (
            start
            + rng.integers(0, DAYS, len(episode_len)) * US_PER_DAY
            + np.where(
                night, rng.integers(0, 5, len(episode_len)), rng.integers(8, 22, len(episode_len))
            )
            * 3_600_000_000
        )
        f_when = episode_start[episode] + rng.integers(0, 15 * US_PER_MIN, n_fraud)
        # A fifth of fraud looks ordinary: the user's own device, home IP, a normal merchant.
        disguised = rng.random(n_fraud) < 0.2
        f_device = np.where(disguised, 0, 10_000_000 + offset + episode)
        f_foreign = ~disguised & (rng.random(n_fraud) < 0.7)
        f_merchant = np.where(
            disguised | (rng.random(n_fraud) < 0.25),
            rng.integers(1, n_merchants + 1, n_fraud),
            rng.choice(risky_merchants, n_fraud) if len(risky_merchants) else 1,
        )
        f_factor = np.where(
            disguised, rng.lognormal(0, 0.9, n_fraud), rng.lognormal(1.3, 0.6, n_fraud)
        )

        total = n_normal + n_fraud
        acct_all = np.concatenate([acct, victim[episode]])
        when_all = np.concatenate([when, f_when])
        is_fraud = np.concatenate([np.zeros(n_normal, bool), np.ones(n_fraud, bool)])
        device_all = np.concatenate([device, f_device])
        foreign = np.concatenate([foreign_normal, f_foreign])
        merchant_all = np.concatenate([merchant, f_merchant])
        factor = np.concatenate([amount_factor, f_factor])
        order = np.argsort(when_all, kind="stable")
        acct_all, when_all, is_fraud = acct_all[order], when_all[order], is_fraud[order]
        device_all, foreign, merchant_all, factor = (
            device_all[order],
            foreign[order],
            merchant_all[order],
            factor[order],
        )

        users_of = account_user[acct_all - 1]
        home = country[users_of - 1]
        ip_country = np.where(
            foreign, rng.choice(np.array(["US", "GB", "AE", "CN", "ZA", "IN"]), total), home
        )
        kind = np.where(
            is_fraud,
            rng.choice(
                np.array(["payment", "cash_out", "p2p_transfer"]), total, p=[0.6, 0.25, 0.15]
            ),
            rng.choice(KINDS, total, p=KIND_WEIGHTS),
        )
        merchant_col = np.where(np.isin(kind, ["payment", "airtime"]), merchant_all, 0)
        amount = factor * scale[acct_all - 1] * np.where(rng.random(total) < 0.001, 50, 1)
        amount = np.clip(amount, 1, 9_999_999_999)
        fee = np.where(
            kind == "cash_out", amount * 0.01, np.where(kind == "p2p_transfer", amount * 0.005, 0)
        )
        status = np.where(
            is_fraud & (rng.random(total) < 0.3),
            "reversed",
            rng.choice(np.array(["completed", "failed", "reversed"]), total, p=[0.95, 0.04, 0.01]),
        )
        changed = rng.random(total) < 0.1
        updated = np.maximum(
            when_all,
            np.minimum(
                when_all + np.where(changed, rng.integers(US_PER_MIN, 5 * US_PER_DAY, total), 0),
                end,
            ),
        )
        device_text = [
            f"dev-{u}" if d == 0 else f"dev-x{d}"
            for u, d in zip(users_of.tolist(), device_all.tolist(), strict=True)
        ]
        ids = np.arange(next_id, next_id + total)
        next_id += total
        _insert(
            db,
            "transactions",
            [
                ids.tolist(),
                acct_all.tolist(),
                [m or None for m in merchant_col.tolist()],
                kind.tolist(),
                _money(amount),
                _money(fee),
                status.tolist(),
                device_text,
                ip_country.tolist(),
                _ts(when_all),
                is_fraud.astype(int).tolist(),
                _ts(updated),
            ],
        )
        fraud_rows += n_fraud
        # Chargebacks: most fraud is disputed days to weeks later; a few honest rows too.
        disputed = (is_fraud & (rng.random(total) < 0.85)) | (
            ~is_fraud & (rng.random(total) < 0.0005)
        )
        d_idx = np.flatnonzero(disputed)
        filed = np.minimum(
            when_all[d_idx] + rng.integers(2 * US_PER_DAY, 40 * US_PER_DAY, len(d_idx)), end
        )
        chargeback_rows.extend(
            zip(
                ids[d_idx].tolist(),
                rng.choice(
                    np.array(["unauthorised", "not_received", "duplicate", "account_takeover"]),
                    len(d_idx),
                ).tolist(),
                _money(amount[d_idx]),
                _ts(filed),
                np.where(
                    is_fraud[d_idx],
                    rng.choice(np.array(["open", "won"]), len(d_idx), p=[0.3, 0.7]),
                    rng.choice(np.array(["open", "lost"]), len(d_idx), p=[0.3, 0.7]),
                ).tolist(),
                _ts(np.minimum(filed + rng.integers(0, 10 * US_PER_DAY, len(d_idx)), end)),
                strict=True,
            )
        )
    counts["transactions"] = next_id - 1
    chargebacks = len(chargeback_rows)
    db.executemany(
        "INSERT INTO chargebacks VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(i, *row) for i, row in enumerate(chargeback_rows, 1)],
    )
    counts["chargebacks"] = chargebacks

    # -- KYC documents ---------------------------------------------------------------------
    doc_user = np.concatenate([user_ids, rng.choice(user_ids, n_users // 5)])
    n_docs = len(doc_user)
    submitted = signup[doc_user - 1] + rng.integers(0, 5 * US_PER_DAY, n_docs)
    doc_status = rng.choice(
        np.array(["verified", "pending", "rejected"]), n_docs, p=[0.8, 0.12, 0.08]
    )
    reviewed = submitted + rng.integers(US_PER_MIN, 3 * US_PER_DAY, n_docs)
    counts["kyc_documents"] = _insert(
        db,
        "kyc_documents",
        [
            np.arange(1, n_docs + 1).tolist(),
            doc_user.tolist(),
            rng.choice(
                np.array(["national_id", "passport", "selfie", "proof_of_address"]), n_docs
            ).tolist(),
            doc_status.tolist(),
            _ts(submitted),
            [
                None if s == "pending" else r
                for s, r in zip(doc_status.tolist(), _ts(reviewed), strict=True)
            ],
            [bytes(b) for b in rng.integers(0, 256, (n_docs, 32), dtype=np.uint8)],
            _ts(np.where(doc_status == "pending", submitted, reviewed)),
        ],
    )
    db.execute("COMMIT")
    db.executescript(INDEXES)
    db.close()
    tmp.replace(path)
    counts["fraud_transactions"] = fraud_rows
    return counts
