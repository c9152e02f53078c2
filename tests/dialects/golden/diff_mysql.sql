TEXT_HASHES: md5
HASHTEXT_SQL: 
MD5_32_SQL: CAST(CONV(SUBSTR({md5}, 1, 8), 16, 10) AS UNSIGNED)
SEGMENT_SUM_SQL: CAST(sum({code}) AS {text})
CANONICAL_JSON: False
hash_text: CAST(x AS CHAR)
ordered_text: CAST(x AS BINARY)
concat_text: concat(a, b)
strict_concat: CONCAT(a, b)
md5_hex: md5(t)
to_bigint: CAST(x AS SIGNED)
int_div: (a DIV b)
decimal_text own=2 scale=2: CAST(x AS CHAR)
decimal_text own=2 scale=9: CONCAT(CAST(x AS CHAR), '0000000')
decimal_text own=0 scale=3: CONCAT(CAST(x AS CHAR), '.000')
decimal_text own=9 scale=None: CASE WHEN CAST(x AS CHAR) LIKE '%.%' THEN TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM CAST(x AS CHAR))) ELSE CAST(x AS CHAR) END
decimal_code own=2 scale=2 fits=True: CAST(MOD(MOD(TRUNCATE(x, 0), 4294967291) * 100 + (x - TRUNCATE(x, 0)) * 100 * 1, 4294967291) AS SIGNED)
decimal_code own=2 scale=9 fits=False: CAST(MOD(MOD(TRUNCATE(x, 0), 4294967291) * 1000000000 + (x - TRUNCATE(x, 0)) * 100 * 10000000, 4294967291) AS SIGNED)
decimal_code own=0 scale=3 fits=False: CAST(MOD(MOD(TRUNCATE(x, 0), 4294967291) * 1000, 4294967291) AS SIGNED)
decimal_code own=20 scale=25 fits=False: CAST(MOD(MOD(TRUNCATE(x, 0), 4294967291) * 3107115509 + (x - TRUNCATE(x, 0)) * 100000000000000000000 * 100000, 4294967291) AS SIGNED)
float_value: CAST(x AS DOUBLE)
float_code shift=0: CASE WHEN CAST(x AS DOUBLE) = 0 THEN 0 ELSE CAST(sign(CAST(x AS DOUBLE)) AS SIGNED) * (1 + CASE WHEN abs(CAST(x AS DOUBLE)) < power(2.0, -1022) THEN CAST(floor(abs(CAST(x AS DOUBLE)) * power(2.0, 1022) * 4503599627370496) AS SIGNED) + 0 ELSE (CAST(least(floor(log2(abs(CAST(x AS DOUBLE)))), 1023) - CASE WHEN abs(CAST(x AS DOUBLE)) < power(2.0, least(floor(log2(abs(CAST(x AS DOUBLE)))), 1023)) THEN 1 ELSE 0 END + CASE WHEN abs(CAST(x AS DOUBLE)) / 2 >= power(2.0, least(floor(log2(abs(CAST(x AS DOUBLE)))), 1023)) THEN 1 ELSE 0 END AS SIGNED) + 1022) * 4503599627370496 + CAST(floor(abs(CAST(x AS DOUBLE)) * power(2.0, -CAST(least(floor(log2(abs(CAST(x AS DOUBLE)))), 1023) - CASE WHEN abs(CAST(x AS DOUBLE)) < power(2.0, least(floor(log2(abs(CAST(x AS DOUBLE)))), 1023)) THEN 1 ELSE 0 END + CASE WHEN abs(CAST(x AS DOUBLE)) / 2 >= power(2.0, least(floor(log2(abs(CAST(x AS DOUBLE)))), 1023)) THEN 1 ELSE 0 END AS SIGNED)) * 4503599627370496) AS SIGNED) END) END
float_code shift=2: CASE WHEN CAST(x AS DOUBLE) = 0 THEN 0 ELSE CAST(sign(CAST(x AS DOUBLE)) AS SIGNED) * (1 + CASE WHEN abs(CAST(x AS DOUBLE)) < power(2.0, -1022) THEN CAST(floor(abs(CAST(x AS DOUBLE)) * power(2.0, 1022) * 4503599627370496) AS SIGNED) + 4611686018427387904 ELSE (CAST(least(floor(log2(abs(CAST(x AS DOUBLE)))), 1023) - CASE WHEN abs(CAST(x AS DOUBLE)) < power(2.0, least(floor(log2(abs(CAST(x AS DOUBLE)))), 1023)) THEN 1 ELSE 0 END + CASE WHEN abs(CAST(x AS DOUBLE)) / 2 >= power(2.0, least(floor(log2(abs(CAST(x AS DOUBLE)))), 1023)) THEN 1 ELSE 0 END AS SIGNED) + 1022) * 1125899906842624 + CAST(floor(abs(CAST(x AS DOUBLE)) * power(2.0, -CAST(least(floor(log2(abs(CAST(x AS DOUBLE)))), 1023) - CASE WHEN abs(CAST(x AS DOUBLE)) < power(2.0, least(floor(log2(abs(CAST(x AS DOUBLE)))), 1023)) THEN 1 ELSE 0 END + CASE WHEN abs(CAST(x AS DOUBLE)) / 2 >= power(2.0, least(floor(log2(abs(CAST(x AS DOUBLE)))), 1023)) THEN 1 ELSE 0 END AS SIGNED)) * 1125899906842624 + 0.5) AS SIGNED) END) END
epoch_us: TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', t)
epoch_us_code: TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', t)
timestamp_text: CAST(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', t) AS CHAR)
date_text: CAST(d AS CHAR)
date_code: DATEDIFF(d, '1970-01-01')
boolean_text: CAST((b <> 0) AS CHAR)
boolean_code: (b <> 0)
bytes_text: lower(hex(y))
uuid_text: lower(CAST(u AS CHAR))
json_text: CAST(j AS CHAR)
interval_text: CONCAT('0:0:', CAST(TIME_TO_SEC(i) * 1000000 AS SIGNED))
