-- Tweet volume per time bucket (10 minutes by default, see the `bucket_minutes` var),
-- with running totals. Buckets without any tweet are not listed.
--
-- running_distinct_authors counts each author once, in the bucket of their first tweet:
-- a window count(distinct ...) is not portable, so it is the running sum of new authors.

with tweets as (

    select
        id as tweet_id,
        author_id,
        {{ bucket_start('created_at', var('bucket_minutes')) }} as bucket_start
    from {{ ref('int_tweets') }}

),

per_bucket as (

    select
        bucket_start,
        count(*) as tweets,
        count(distinct author_id) as distinct_authors
    from tweets
    group by bucket_start

),

author_first_bucket as (

    select
        author_id,
        min(bucket_start) as first_bucket_start
    from tweets
    group by author_id

),

new_authors_per_bucket as (

    select
        first_bucket_start as bucket_start,
        count(*) as new_authors
    from author_first_bucket
    group by first_bucket_start

)

select
    per_bucket.bucket_start,
    per_bucket.bucket_start + {{ var('bucket_minutes') }} * interval '1 minute' as bucket_end,
    per_bucket.tweets,
    per_bucket.distinct_authors,
    coalesce(new_authors_per_bucket.new_authors, 0) as new_authors,
    cast(sum(per_bucket.tweets) over (
        order by per_bucket.bucket_start
        rows between unbounded preceding and current row
    ) as bigint) as running_tweets,
    cast(sum(coalesce(new_authors_per_bucket.new_authors, 0)) over (
        order by per_bucket.bucket_start
        rows between unbounded preceding and current row
    ) as bigint) as running_distinct_authors
from per_bucket
left join new_authors_per_bucket
    on per_bucket.bucket_start = new_authors_per_bucket.bucket_start
order by per_bucket.bucket_start
