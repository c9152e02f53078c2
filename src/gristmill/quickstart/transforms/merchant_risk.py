"""Per merchant: volume and observed fraud rate, next to the risk score the app assigns."""

import pyarrow as pa
import pyarrow.compute as pc

from gristmill import transform


@transform(
    inputs=["clean_transactions", "merchants"],
    checks=[
        {"unique": "merchant_id"},
        {"expression": "fraud_rate BETWEEN 0 AND 1"},
    ],
)
def merchant_risk(clean_transactions: pa.Table, merchants: pa.Table) -> pa.Table:
    payments = clean_transactions.filter(pc.is_valid(clean_transactions["merchant_id"]))
    stats = payments.group_by("merchant_id").aggregate(
        [
            ("transaction_id", "count"),
            ("is_fraud", "sum"),
            ("amount", "sum"),
        ]
    )
    counts = stats["transaction_id_count"]
    frauds = pc.cast(stats["is_fraud_sum"], pa.float64())
    table = pa.table(
        {
            "merchant_id": stats["merchant_id"],
            "transactions": counts,
            "volume": stats["amount_sum"],
            "fraud_rate": pc.divide(frauds, pc.cast(counts, pa.float64())),
        }
    )
    app_scores = merchants.select(["id", "category", "risk_score"]).rename_columns(
        ["merchant_id", "category", "app_risk_score"]
    )
    return table.join(app_scores, "merchant_id", join_type="left outer").sort_by("merchant_id")
