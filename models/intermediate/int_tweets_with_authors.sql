-- Tweets enriched with their author's latest profile. A left join: a tweet whose author
-- was not returned in `includes.users` keeps null author columns instead of vanishing.

with tweets as (

    select * from {{ ref('int_tweets') }}

),

users as (

    select * from {{ ref('int_users') }}

)

select
    tweets.id as tweet_id,
    tweets.created_at,
    tweets.text,
    tweets.lang,
    tweets.conversation_id,
    tweets.in_reply_to_user_id,
    tweets.referenced_type,
    tweets.retweet_count,
    tweets.reply_count,
    tweets.like_count,
    tweets.quote_count,
    tweets.impression_count,
    coalesce(tweets.retweet_count, 0)
        + coalesce(tweets.reply_count, 0)
        + coalesce(tweets.like_count, 0)
        + coalesce(tweets.quote_count, 0) as engagement_count,
    tweets.author_id,
    users.username as author_username,
    users.name as author_name,
    users.verified as author_verified,
    users.followers_count as author_followers_count,
    users.created_at as author_created_at
from tweets
left join users
    on tweets.author_id = users.id
