quote: "we""ird"
qualified: "raw"."T"
literal null: NULL
literal true: TRUE
literal int: -42
literal bigint_max: 9223372036854775807
literal beyond_bigint: 18446744073709551616
literal float: CAST('0.1' AS DOUBLE PRECISION)
literal tiny_float: CAST('1e-300' AS DOUBLE PRECISION)
literal nan: CAST('NaN' AS DOUBLE PRECISION)
literal infinity: CAST('Infinity' AS DOUBLE PRECISION)
literal minus_infinity: CAST('-Infinity' AS DOUBLE PRECISION)
literal decimal: '-1234.5600'::NUMERIC
literal tiny_decimal: '0.000000000000000000000000000001'::NUMERIC
literal text_with_quotes: 'it''s a "test" \ ok'
literal unicode: 'héllo 世界 🚀'
literal bytes: '\x00dead'::BYTEA
literal date: DATE '2024-02-29'
literal timestamp: TIMESTAMP '2024-01-02 03:04:05.123456'
literal timestamptz: TIMESTAMPTZ '2024-01-02 00:04:05+00:00'
literal time: TIME '23:59:59.999999'
literal interval: INTERVAL '86400000005 microseconds'
literal uuid: CAST('12345678-1234-5678-1234-567812345678' AS UUID)
literal array: ARRAY[1, NULL, 3]
literal json: CAST('{"a": [1, "b"]}' AS JSONB)
type bool: BOOLEAN
type int8: SMALLINT
type int64: BIGINT
type uint64: NUMERIC(20,0)
type float32: REAL
type float64: DOUBLE PRECISION
type string: TEXT
type binary: BYTEA
type decimal: NUMERIC(12,2)
type date: DATE
type timestamp: TIMESTAMP
type timestamptz: TIMESTAMPTZ
type time: TIME
type duration: INTERVAL
type json: JSONB
type uuid: UUID
type list: INTEGER[]
type nested_list: TEXT[][]
type struct: JSONB
check accepted_values: SELECT "status", count(*) AS "count" FROM "t" WHERE "status" IS NOT NULL AND "status" NOT IN ('ok', 'it''s', 1, TRUE, CAST('2.5' AS DOUBLE PRECISION)) GROUP BY "status" ORDER BY count(*) DESC, "status"
check unique: SELECT "user_id", "day", count(*) AS "count" FROM "t" WHERE "user_id" IS NOT NULL OR "day" IS NOT NULL GROUP BY "user_id", "day" HAVING count(*) > 1 ORDER BY count(*) DESC, "user_id", "day"
check relationships: SELECT gm_child.* FROM "t" AS gm_child WHERE gm_child."user_id" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "raw"."Users" AS gm_parent WHERE gm_parent."id" = gm_child."user_id")
utc timestamp: CASE WHEN pg_typeof("at") = 'timestamp with time zone'::regtype THEN CAST("at" AS TIMESTAMPTZ) AT TIME ZONE 'UTC' ELSE CAST("at" AS TIMESTAMP) END
