-- One row per tweet: the raw table holds a copy per extraction run, keep the most
-- recently loaded copy (it carries the newest public metrics). Ties on the load time
-- go to the copy with the highest metrics, then to the latest run id.

with source_tweets as (

    select * from {{ source('twitter', 'tweets') }}

),

ranked as (

    select
        source_tweets.*,
        row_number() over (
            partition by id
            order by
                _sluice_loaded_at desc nulls last,
                impression_count desc nulls last,
                like_count desc nulls last,
                retweet_count desc nulls last,
                reply_count desc nulls last,
                quote_count desc nulls last,
                _sluice_run_id desc nulls last
        ) as copy_rank,
        count(*) over (partition by id) as times_loaded,
        min(_sluice_loaded_at) over (partition by id) as first_loaded_at
    from source_tweets

)

select
    id,
    author_id,
    conversation_id,
    text,
    lang,
    created_at,
    retweet_count,
    reply_count,
    like_count,
    quote_count,
    impression_count,
    in_reply_to_user_id,
    referenced_type,
    times_loaded,
    first_loaded_at,
    _sluice_loaded_at as last_loaded_at,
    _sluice_run_id as last_run_id
from ranked
where copy_rank = 1
