-- A starter model materialized as a table. Replace it with your own SQL.

{{ config(materialized='table') }}

with source_data as (

    select 1 as id
    union all
    select 2 as id

)

select id
from source_data
