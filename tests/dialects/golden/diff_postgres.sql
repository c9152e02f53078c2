TEXT_HASHES: hashtext, md5
HASHTEXT_SQL: (hashtext({text})::bigint & 4294967295)
MD5_32_SQL: ('x' || substr({md5}, 1, 8))::bit(32)::bigint
SEGMENT_SUM_SQL: CAST(sum({code}) AS {text})
CANONICAL_JSON: True
hash_text: (x)::text
ordered_text: (x) COLLATE "C"
concat_text: concat(a, b)
strict_concat: (a || b)
md5_hex: md5(t)
to_bigint: (x)::bigint
int_div: (a / b)
decimal_text own=2 scale=2: (x)::text
decimal_text own=2 scale=9: ((x)::text || '0000000')
decimal_text own=0 scale=3: ((x)::text || '.000')
decimal_text own=9 scale=None: trim_scale(x)::text
decimal_code own=2 scale=2 fits=True: CASE WHEN (x)::numeric = 'NaN' THEN 4294967291 ELSE ((x * 100)::bigint % 4294967291) END
decimal_code own=2 scale=9 fits=False: CASE WHEN (x)::numeric = 'NaN' THEN 4294967291 ELSE (((x * 1000000000) % 4294967291)::bigint) END
decimal_code own=0 scale=3 fits=False: CASE WHEN (x)::numeric = 'NaN' THEN 4294967291 ELSE (((x * 1000) % 4294967291)::bigint) END
decimal_code own=20 scale=25 fits=False: CASE WHEN (x)::numeric = 'NaN' THEN 4294967291 ELSE (((x * 10000000000000000000000000) % 4294967291)::bigint) END
float_value: CAST(x AS DOUBLE PRECISION)
float_code shift=0: CASE WHEN (x)::float8 = 0 THEN 0 WHEN (x)::float8 = 'NaN'::float8 THEN 9223372036854775807 WHEN (x)::float8 = 'Infinity'::float8 THEN 9223372036854775806 WHEN (x)::float8 = '-Infinity'::float8 THEN -9223372036854775806 ELSE sign((x)::float8)::bigint * (1 + CASE WHEN (('x' || encode(float8send((x)::float8), 'hex'))::bit(64)::bigint & 9223372036854775807) < 4503599627370496 THEN (('x' || encode(float8send((x)::float8), 'hex'))::bit(64)::bigint & 9223372036854775807) + 0 ELSE ((('x' || encode(float8send((x)::float8), 'hex'))::bit(64)::bigint & 9223372036854775807) + 0) >> 0 END) END
float_code shift=2: CASE WHEN (x)::float8 = 0 THEN 0 WHEN (x)::float8 = 'NaN'::float8 THEN 9223372036854775807 WHEN (x)::float8 = 'Infinity'::float8 THEN 9223372036854775806 WHEN (x)::float8 = '-Infinity'::float8 THEN -9223372036854775806 ELSE sign((x)::float8)::bigint * (1 + CASE WHEN (('x' || encode(float8send((x)::float8), 'hex'))::bit(64)::bigint & 9223372036854775807) < 4503599627370496 THEN (('x' || encode(float8send((x)::float8), 'hex'))::bit(64)::bigint & 9223372036854775807) + 4611686018427387904 ELSE ((('x' || encode(float8send((x)::float8), 'hex'))::bit(64)::bigint & 9223372036854775807) + 2) >> 2 END) END
epoch_us: CASE WHEN isfinite(t) THEN (extract(epoch FROM t) * 1000000)::bigint WHEN t > 'epoch' THEN 9200000000000000000 ELSE -9200000000000000000 END
epoch_us_code: round(least(greatest(date_part('epoch', t), -9200000000000), 9200000000000) * 1000000)::bigint
timestamp_text: CASE WHEN isfinite(t) THEN (extract(epoch FROM t) * 1000000)::bigint::text ELSE t::text END
date_text: (d)::text
date_code: CASE WHEN isfinite(d) THEN d - DATE '1970-01-01' WHEN d > DATE '1970-01-01' THEN 2147483647 ELSE -2147483647 END
boolean_text: (CAST(b AS INTEGER))::text
boolean_code: CAST(b AS INTEGER)
bytes_text: encode(y, 'hex')
utf8_hex: encode(convert_to(s, 'UTF8'), 'hex')
uuid_text: lower((u)::text)
json_text: (j)::jsonb::text
interval_text: (((extract(year FROM i) * 12 + extract(month FROM i))::bigint)::text || ':' || ((extract(day FROM i))::bigint)::text || ':' || ((extract(hour FROM i) * 3600000000 + extract(minute FROM i) * 60000000 + extract(microseconds FROM i))::bigint)::text)
array_text _int4: (a)::text
array_text _float4: (a)::float8[]::text
array_json: to_jsonb(a)
