-- The last bucket's running totals must equal the number of distinct tweets and
-- authors in int_tweets. Returns a row when they differ.

with last_bucket as (

    select
        running_tweets,
        running_distinct_authors
    from {{ ref('tweets_per_10_minutes') }}
    where bucket_start = (select max(bucket_start) from {{ ref('tweets_per_10_minutes') }})

),

expected as (

    select
        count(*) as tweets,
        count(distinct author_id) as authors
    from {{ ref('int_tweets') }}

)

select
    last_bucket.running_tweets,
    expected.tweets as expected_tweets,
    last_bucket.running_distinct_authors,
    expected.authors as expected_authors
from last_bucket
cross join expected
where last_bucket.running_tweets <> expected.tweets
   or last_bucket.running_distinct_authors <> expected.authors
