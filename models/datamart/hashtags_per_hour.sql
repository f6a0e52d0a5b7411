-- Hashtag usage per hour: for every hashtag seen on the collected tweets, how many
-- distinct tweets and authors used it in each hour. Tags are compared case-insensitively
-- (#HouseOfTheDragon and #houseofthedragon are the same tag) and a tag loaded again by a
-- later run is counted once per tweet.

with tweet_tags as (

    select distinct
        tweet_id,
        lower(tag) as hashtag
    from {{ source('twitter', 'tweet_hashtags') }}
    where tag is not null

),

tweets as (

    select
        id as tweet_id,
        author_id,
        date_trunc('hour', created_at) as hour_start
    from {{ ref('int_tweets') }}

)

select
    tweet_tags.hashtag,
    tweets.hour_start,
    tweet_tags.hashtag = lower('{{ var("hashtag") }}') as is_tracked_hashtag,
    count(*) as tweets,
    count(distinct tweets.author_id) as distinct_authors
from tweet_tags
inner join tweets
    on tweet_tags.tweet_id = tweets.tweet_id
group by
    tweet_tags.hashtag,
    tweets.hour_start
order by
    tweets.hour_start,
    tweet_tags.hashtag
