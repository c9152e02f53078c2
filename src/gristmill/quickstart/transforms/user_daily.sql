-- # Per user and day: how much moved, how, and from how many devices.
-- materialized = "incremental"
-- strategy = "merge"
-- unique_key = ["user_id", "day"]
-- time_column = "day"
-- lookback = "1d"
-- checks = [
--   { unique = ["user_id", "day"] },
--   { not_null = ["user_id", "day"] },
--   { expression = "completed_amount >= 0" },
-- ]
SELECT
    user_id,
    CAST(created_at AS DATE) AS day,
    count(*) AS transactions,
    count(*) FILTER (WHERE is_completed) AS completed,
    coalesce(sum(amount) FILTER (WHERE is_completed), 0) AS completed_amount,
    count(DISTINCT device_id) AS devices,
    count(DISTINCT merchant_id) AS merchants,
    max(CASE WHEN foreign_ip THEN 1 ELSE 0 END) AS any_foreign_ip
FROM clean_transactions
GROUP BY user_id, CAST(created_at AS DATE)
