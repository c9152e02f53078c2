quote: "we""ird"
qualified: "raw"."T"
literal null: NULL
literal true: TRUE
literal int: -42
literal bigint_max: 9223372036854775807
literal beyond_bigint: 18446744073709551616
literal float: CAST('0.1' AS REAL)
literal tiny_float: CAST('1e-300' AS REAL)
literal nan: CAST('NaN' AS REAL)
literal infinity: CAST('Infinity' AS REAL)
literal minus_infinity: CAST('-Infinity' AS REAL)
literal decimal: -1234.5600
literal tiny_decimal: 0.000000000000000000000000000001
literal text_with_quotes: 'it''s a "test" \ ok'
literal unicode: 'héllo 世界 🚀'
literal bytes: X'00dead'
literal date: '2024-02-29'
literal timestamp: '2024-01-02 03:04:05.123456'
literal timestamptz: '2024-01-02 00:04:05+00:00'
literal time: '23:59:59.999999'
literal interval: error: BackendError: No SQLite literal for a value of type timedelta.
literal uuid: '12345678-1234-5678-1234-567812345678'
literal array: error: BackendError: No SQLite literal for a value of type list.
literal json: '{"a": [1, "b"]}'
