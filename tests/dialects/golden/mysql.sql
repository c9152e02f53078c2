quote: `we"ird`
qualified: `raw`.`T`
literal null: NULL
literal true: TRUE
literal int: -42
literal bigint_max: 9223372036854775807
literal beyond_bigint: 18446744073709551616
literal float: 0.1
literal tiny_float: 1e-300
literal nan: error: BackendError: MySQL has no floating-point value nan.
literal infinity: error: BackendError: MySQL has no floating-point value inf.
literal minus_infinity: error: BackendError: MySQL has no floating-point value -inf.
literal decimal: CAST('-1234.5600' AS DECIMAL(8,4))
literal tiny_decimal: CAST('0.000000000000000000000000000001' AS DECIMAL(30,30))
literal text_with_quotes: 'it''s a "test" \\ ok'
literal unicode: 'héllo 世界 🚀'
literal bytes: X'00dead'
literal date: DATE '2024-02-29'
literal timestamp: TIMESTAMP '2024-01-02 03:04:05.123456'
literal timestamptz: TIMESTAMP '2024-01-02 00:04:05'
literal time: TIME '23:59:59.999999'
literal interval: error: BackendError: No MySQL literal for a value of type timedelta.
literal uuid: '12345678-1234-5678-1234-567812345678'
literal array: error: BackendError: No MySQL literal for a value of type list.
literal json: '{"a": [1, "b"]}'
