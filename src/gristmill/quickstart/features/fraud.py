"""Behaviour features for fraud: how a user and a merchant have been transacting lately,
and the training set that joins them to every labelled transaction as of its time."""

from gristmill.features import Dataset, FeatureView, aggregate, expression

user_velocity = FeatureView(
    name="user_velocity",
    entity=["user_id"],
    timestamp="created_at",
    source="clean_transactions",
    ttl="30d",
    features=[
        aggregate("tx_count", "count", windows=["1h", "24h", "7d"]),
        aggregate("amount_sum", "sum", "amount", windows=["24h", "7d"]),
        aggregate("amount_max", "max", "amount", windows=["7d"]),
        aggregate("devices", "count_distinct", "device_id", windows=["24h", "7d"]),
        aggregate("merchants", "count_distinct", "merchant_id", windows=["24h"]),
        aggregate("failed", "count", windows=["24h"], filter="status = 'failed'"),
        aggregate("foreign_ip", "count", windows=["7d"], filter="foreign_ip"),
        expression("last_amount", "amount"),
    ],
)

merchant_velocity = FeatureView(
    name="merchant_velocity",
    entity=["merchant_id"],
    timestamp="created_at",
    source="clean_transactions",
    ttl="30d",
    features=[
        aggregate("merchant_tx_count", "count", windows=["1h", "24h"]),
        aggregate("merchant_amount_mean", "mean", "amount", windows=["7d"]),
        aggregate("merchant_users", "count_distinct", "user_id", windows=["24h"]),
    ],
)

fraud_training = Dataset(
    name="fraud_training",
    spine="""
        SELECT c.transaction_id, c.user_id, c.merchant_id, c.created_at, c.amount, c.kind,
               f.is_bad
        FROM clean_transactions AS c
        JOIN fraud_labels AS f USING (transaction_id)
    """,
    timestamp="created_at",
    features=["user_velocity", "merchant_velocity"],
    label="is_bad",
)
