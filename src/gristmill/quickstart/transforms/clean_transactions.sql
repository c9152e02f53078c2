-- # One row per transaction, with its user, in the warehouse's own types.
-- materialized = "table"
-- checks = [
--   { not_null = ["transaction_id", "user_id", "amount", "created_at"] },
--   { unique = "transaction_id" },
--   { accepted_values = { column = "kind", values = ["payment", "p2p_transfer", "cash_in", "cash_out", "airtime"] } },
--   { relationships = { column = "user_id", to = "users", field = "id" } },
--   { expression = "amount > 0" },
--   { row_count = { min = 1 } },
-- ]
SELECT
    t.id AS transaction_id,
    a.user_id,
    t.account_id,
    nullif(t.merchant_id, 0) AS merchant_id,
    t.kind,
    t.amount,
    t.fee,
    t.status,
    t.status = 'completed' AS is_completed,
    t.device_id,
    t.ip_country,
    u.country <> t.ip_country AS foreign_ip,
    t.created_at,
    t.is_fraud
FROM transactions AS t
JOIN accounts AS a ON a.id = t.account_id
JOIN users AS u ON u.id = a.user_id
