-- Tweets per language, with the language name from the `languages` seed. Tweets without
-- a language count as `und` (undetermined); codes missing from the seed keep their code
-- as the name so nothing is dropped.

with tweets as (

    select
        coalesce(lang, 'und') as lang_code,
        author_id,
        engagement_count
    from {{ ref('int_tweets_with_authors') }}

),

languages as (

    select * from {{ ref('languages') }}

),

per_language as (

    select
        lang_code,
        count(*) as tweets,
        count(distinct author_id) as distinct_authors,
        sum(engagement_count) as engagement
    from tweets
    group by lang_code

)

select
    per_language.lang_code,
    coalesce(languages.language_name, per_language.lang_code) as language_name,
    per_language.tweets,
    per_language.distinct_authors,
    cast(per_language.engagement as bigint) as engagement,
    cast(round(100.0 * per_language.tweets / sum(per_language.tweets) over (), 2) as numeric(5, 2))
        as share_of_tweets_pct
from per_language
left join languages
    on per_language.lang_code = languages.lang_code
order by
    per_language.tweets desc,
    per_language.lang_code
