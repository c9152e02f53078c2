-- # The label a fraud model learns: a transaction flagged as fraud or charged back.
-- materialized = "view"
-- checks = [{ unique = "transaction_id" }]
SELECT
    c.transaction_id,
    c.user_id,
    c.created_at,
    c.is_fraud OR cb.transaction_id IS NOT NULL AS is_bad,
    cb.reason AS chargeback_reason
FROM clean_transactions AS c
LEFT JOIN (
    SELECT transaction_id, min(reason) AS reason FROM chargebacks GROUP BY transaction_id
) AS cb ON cb.transaction_id = c.transaction_id
