-- Running totals in tweets_per_10_minutes must never go down from one bucket to the
-- next. Returns the offending buckets (a passing test returns no rows).

with ordered as (

    select
        bucket_start,
        running_tweets,
        running_distinct_authors,
        lag(running_tweets) over (order by bucket_start) as previous_running_tweets,
        lag(running_distinct_authors) over (order by bucket_start) as previous_running_distinct_authors
    from {{ ref('tweets_per_10_minutes') }}

)

select *
from ordered
where running_tweets < previous_running_tweets
   or running_distinct_authors < previous_running_distinct_authors
