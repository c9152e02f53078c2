quote: "we""ird"
qualified: "raw"."T"
literal null: NULL
literal true: TRUE
literal int: -42
literal bigint_max: 9223372036854775807
literal beyond_bigint: CAST('18446744073709551616' AS HUGEINT)
literal float: CAST('0.1' AS DOUBLE)
literal tiny_float: CAST('1e-300' AS DOUBLE)
literal nan: CAST('NaN' AS DOUBLE)
literal infinity: CAST('Infinity' AS DOUBLE)
literal minus_infinity: CAST('-Infinity' AS DOUBLE)
literal decimal: CAST('-1234.5600' AS DECIMAL(8,4))
literal tiny_decimal: CAST('0.000000000000000000000000000001' AS DECIMAL(30,30))
literal text_with_quotes: 'it''s a "test" \ ok'
literal unicode: 'héllo 世界 🚀'
literal bytes: from_hex('00dead')
literal date: DATE '2024-02-29'
literal timestamp: TIMESTAMP '2024-01-02 03:04:05.123456'
literal timestamptz: TIMESTAMPTZ '2024-01-02 00:04:05+00'
literal time: TIME '23:59:59.999999'
literal interval: INTERVAL '86400000005 microseconds'
literal uuid: CAST('12345678-1234-5678-1234-567812345678' AS UUID)
literal array: [1, NULL, 3]
literal json: CAST('{"a": [1, "b"]}' AS JSON)
type bool: BOOLEAN
type int8: TINYINT
type int64: BIGINT
type uint64: UBIGINT
type float32: FLOAT
type float64: DOUBLE
type string: VARCHAR
type binary: BLOB
type decimal: DECIMAL(12,2)
type date: DATE
type timestamp: TIMESTAMP
type timestamptz: TIMESTAMPTZ
type time: TIME
type duration: INTERVAL
type json: JSON
type uuid: UUID
type list: INTEGER[]
type nested_list: VARCHAR[][]
type struct: STRUCT("a" BIGINT, "b" VARCHAR)
check accepted_values: SELECT "status", count(*) AS "count" FROM "t" WHERE "status" IS NOT NULL AND "status" NOT IN ('ok', 'it''s', 1, TRUE, CAST('2.5' AS DOUBLE)) GROUP BY "status" ORDER BY count(*) DESC, "status"
check unique: SELECT "user_id", "day", count(*) AS "count" FROM "t" WHERE "user_id" IS NOT NULL OR "day" IS NOT NULL GROUP BY "user_id", "day" HAVING count(*) > 1 ORDER BY count(*) DESC, "user_id", "day"
check relationships: SELECT gm_child.* FROM "t" AS gm_child WHERE gm_child."user_id" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "raw"."Users" AS gm_parent WHERE gm_parent."id" = gm_child."user_id")
utc timestamp: CASE WHEN typeof("at") = 'TIMESTAMP WITH TIME ZONE' THEN timezone('UTC', CAST("at" AS TIMESTAMPTZ)) ELSE CAST("at" AS TIMESTAMP) END
