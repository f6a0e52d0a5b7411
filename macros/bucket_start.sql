{#-
    bucket_start(column, minutes)

    Floors a timestamp to the start of its `minutes`-wide bucket within the hour,
    e.g. 14:37:12 -> 14:30:00 for 10-minute buckets. `minutes` must divide 60.

    Written with date_trunc, extract, floor and interval arithmetic only, so the same
    expression gives identical results on PostgreSQL and DuckDB (no date_bin/time_bucket).
-#}
{% macro bucket_start(column, minutes) -%}
    (date_trunc('hour', {{ column }})
        + cast(floor(extract(minute from {{ column }}) / {{ minutes }}) * {{ minutes }} as integer)
        * interval '1 minute')
{%- endmacro %}
