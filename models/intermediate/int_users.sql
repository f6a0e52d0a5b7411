-- One row per user: every page of every run repeats the authors it mentions, keep the
-- most recently loaded profile. Ties on the load time go to the copy with the highest
-- counts, then to the latest run id.

with source_users as (

    select * from {{ source('twitter', 'users') }}

),

ranked as (

    select
        source_users.*,
        row_number() over (
            partition by id
            order by
                _sluice_loaded_at desc nulls last,
                followers_count desc nulls last,
                tweet_count desc nulls last,
                listed_count desc nulls last,
                following_count desc nulls last,
                _sluice_run_id desc nulls last
        ) as copy_rank
    from source_users

)

select
    id,
    username,
    name,
    description,
    created_at,
    verified,
    followers_count,
    following_count,
    tweet_count,
    listed_count,
    _sluice_loaded_at as last_loaded_at,
    _sluice_run_id as last_run_id
from ranked
where copy_rank = 1
