//! Flattening X recent-search pages into the `twitter` raw tables:
//! `tweets` (one row per tweet per run, from `data`), `users` (one row per
//! user per run, from `includes.users`) and `tweet_hashtags` (one row per
//! tweet and tag per run, from `data[].entities.hashtags`). Within a run a
//! tweet, user or (tweet, tag) pair appears once; the first occurrence (the
//! newest page) wins. Timestamps are converted from the API's
//! `2026-11-20T14:03:27.000Z` to a zone-less UTC `2026-11-20 14:03:27.000`.

use std::borrow::Cow;
use std::collections::HashSet;

use rayon::prelude::*;
use serde::Deserialize;

use super::{StageError, TableRows, TableSpec};

/// The raw tables and their columns, as models/sources.yml documents them.
pub fn tables() -> Vec<TableSpec> {
    vec![
        TableSpec {
            name: "tweets",
            columns: vec![
                ("id", "bigint"),
                ("author_id", "bigint"),
                ("conversation_id", "bigint"),
                ("text", "varchar"),
                ("lang", "varchar"),
                ("created_at", "timestamp"),
                ("retweet_count", "bigint"),
                ("reply_count", "bigint"),
                ("like_count", "bigint"),
                ("quote_count", "bigint"),
                ("impression_count", "bigint"),
                ("in_reply_to_user_id", "bigint"),
                ("referenced_type", "varchar"),
            ],
        },
        TableSpec {
            name: "users",
            columns: vec![
                ("id", "bigint"),
                ("username", "varchar"),
                ("name", "varchar"),
                ("description", "varchar"),
                ("created_at", "timestamp"),
                ("verified", "boolean"),
                ("followers_count", "bigint"),
                ("following_count", "bigint"),
                ("tweet_count", "bigint"),
                ("listed_count", "bigint"),
            ],
        },
        TableSpec {
            name: "tweet_hashtags",
            columns: vec![("tweet_id", "bigint"), ("tag", "varchar")],
        },
    ]
}

// The parts of a page staging reads, deserialized without building a JSON
// tree (borrowing from the page bytes where no unescaping is needed). Unknown
// fields are skipped; every field may be absent or null.

#[derive(Deserialize)]
struct Page<'a> {
    #[serde(default, borrow)]
    data: Option<Vec<Tweet<'a>>>,
    #[serde(default, borrow)]
    includes: Option<Includes<'a>>,
}

#[derive(Deserialize)]
struct Includes<'a> {
    #[serde(default, borrow)]
    users: Option<Vec<User<'a>>>,
}

#[derive(Deserialize)]
struct Tweet<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    author_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    conversation_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    lang: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    created_at: Option<Cow<'a, str>>,
    #[serde(default)]
    public_metrics: Option<TweetMetrics>,
    #[serde(default, borrow)]
    in_reply_to_user_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    referenced_tweets: Option<Vec<Referenced<'a>>>,
    #[serde(default, borrow)]
    entities: Option<Entities<'a>>,
}

#[derive(Deserialize)]
struct TweetMetrics {
    retweet_count: Option<i64>,
    reply_count: Option<i64>,
    like_count: Option<i64>,
    quote_count: Option<i64>,
    impression_count: Option<i64>,
}

#[derive(Deserialize)]
struct Referenced<'a> {
    #[serde(default, borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Entities<'a> {
    #[serde(default, borrow)]
    hashtags: Option<Vec<Hashtag<'a>>>,
}

#[derive(Deserialize)]
struct Hashtag<'a> {
    #[serde(default, borrow)]
    tag: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct User<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    username: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    created_at: Option<Cow<'a, str>>,
    #[serde(default)]
    verified: Option<bool>,
    #[serde(default)]
    public_metrics: Option<UserMetrics>,
}

#[derive(Deserialize)]
struct UserMetrics {
    followers_count: Option<i64>,
    following_count: Option<i64>,
    tweet_count: Option<i64>,
    listed_count: Option<i64>,
}

fn owned(s: &Option<Cow<'_, str>>) -> Option<String> {
    s.as_deref().map(str::to_string)
}

/// A decimal id, or NULL when it is not an integer.
fn id(s: &Option<Cow<'_, str>>) -> Option<String> {
    let s = s.as_deref()?;
    // The API's ids are canonical already; only others need normalizing.
    let canonical = (1..=18).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s.len() == 1 || !s.starts_with('0'));
    if canonical {
        return Some(s.to_string());
    }
    s.trim().parse::<i64>().ok().map(|n| n.to_string())
}

fn num(n: Option<i64>) -> Option<String> {
    n.map(|n| n.to_string())
}

/// `2026-11-20T14:03:27.000Z` → `2026-11-20 14:03:27.000` (UTC, no zone).
pub fn timestamp(s: &Option<Cow<'_, str>>) -> Option<String> {
    let s = s.as_deref()?;
    // The API's own shape, `YYYY-MM-DDTHH:MM:SS.sssZ`, is rewritten in place
    // once chrono agrees it is a valid instant; other shapes are converted.
    let b = s.as_bytes();
    if b.len() == 24
        && b[10] == b'T'
        && b[19] == b'.'
        && b[23] == b'Z'
        && crate::warehouse::seed::is_timestamp(&s[..23])
    {
        return Some(format!("{} {}", &s[..10], &s[11..23]));
    }
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| {
        t.with_timezone(&chrono::Utc)
            .naive_utc()
            .format("%Y-%m-%d %H:%M:%S%.3f")
            .to_string()
    })
}

/// Rows for [`tables`] from the pages of one run.
pub fn flatten(run_id: &str, pages: &[(String, Vec<u8>)]) -> Result<TableRows, StageError> {
    Flattener::default().add_pages(run_id, pages)
}

/// Turns a run's pages into rows a batch at a time, each tweet, user and
/// (tweet, hashtag) pair once per run however many pages repeat it.
#[derive(Default)]
pub struct Flattener {
    seen_tweets: HashSet<String>,
    seen_users: HashSet<String>,
    seen_tags: HashSet<(String, String)>,
}

impl Flattener {
    /// Rows for [`tables`] from the next pages of the run (in page order).
    pub fn add_pages(
        &mut self,
        run_id: &str,
        pages: &[(String, Vec<u8>)],
    ) -> Result<TableRows, StageError> {
        // Parsing dominates staging time: parse pages in parallel, flatten in order.
        let parsed: Vec<Page<'_>> = pages
            .par_iter()
            .map(|(key, bytes)| {
                serde_json::from_slice(bytes).map_err(|e| StageError::BadPage {
                    run_id: run_id.to_string(),
                    page: key.clone(),
                    message: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        let mut tweets = Vec::new();
        let mut users = Vec::new();
        let mut tags = Vec::new();
        for page in &parsed {
            for t in page.data.iter().flatten() {
                let Some(tid) = id(&t.id) else { continue };
                if !self.seen_tweets.insert(tid.clone()) {
                    continue;
                }
                let m = t.public_metrics.as_ref();
                tweets.push(vec![
                    Some(tid.clone()),
                    id(&t.author_id),
                    id(&t.conversation_id),
                    owned(&t.text),
                    owned(&t.lang),
                    timestamp(&t.created_at),
                    num(m.and_then(|m| m.retweet_count)),
                    num(m.and_then(|m| m.reply_count)),
                    num(m.and_then(|m| m.like_count)),
                    num(m.and_then(|m| m.quote_count)),
                    num(m.and_then(|m| m.impression_count)),
                    id(&t.in_reply_to_user_id),
                    t.referenced_tweets
                        .as_ref()
                        .and_then(|r| r.first())
                        .and_then(|r| owned(&r.kind)),
                ]);
                let hashtags = t.entities.as_ref().and_then(|e| e.hashtags.as_ref());
                for h in hashtags.into_iter().flatten() {
                    if let Some(tag) = owned(&h.tag) {
                        if self.seen_tags.insert((tid.clone(), tag.clone())) {
                            tags.push(vec![Some(tid.clone()), Some(tag)]);
                        }
                    }
                }
            }
            let page_users = page.includes.as_ref().and_then(|i| i.users.as_ref());
            for u in page_users.into_iter().flatten() {
                let Some(uid) = id(&u.id) else { continue };
                if !self.seen_users.insert(uid.clone()) {
                    continue;
                }
                let m = u.public_metrics.as_ref();
                users.push(vec![
                    Some(uid),
                    owned(&u.username),
                    owned(&u.name),
                    owned(&u.description),
                    timestamp(&u.created_at),
                    u.verified.map(|b| b.to_string()),
                    num(m.and_then(|m| m.followers_count)),
                    num(m.and_then(|m| m.following_count)),
                    num(m.and_then(|m| m.tweet_count)),
                    num(m.and_then(|m| m.listed_count)),
                ]);
            }
        }
        Ok(vec![tweets, users, tags])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_and_dedupes_within_a_run() {
        let page = br##"{"data":[
            {"id":"20","text":"a #Dragon #dragon #Dragon","author_id":"7","created_at":"2026-11-20T14:03:27.000Z",
             "public_metrics":{"retweet_count":1,"reply_count":2,"like_count":3,"quote_count":4,"impression_count":5},
             "referenced_tweets":[{"type":"replied_to","id":"1"}],"in_reply_to_user_id":"8",
             "entities":{"hashtags":[{"start":2,"end":9,"tag":"Dragon"},{"start":10,"end":17,"tag":"dragon"},{"start":18,"end":25,"tag":"Dragon"}]}},
            {"id":"19","text":"b","author_id":"99"}],
            "includes":{"users":[{"id":"7","username":"u7","name":"U","verified":false,"created_at":"2014-10-02T18:30:05.000Z",
               "public_metrics":{"followers_count":10,"following_count":1,"tweet_count":2,"listed_count":0}}]},
            "errors":[{"value":"99","detail":"Could not find user with id: [99]."}],
            "meta":{"result_count":2,"newest_id":"20","oldest_id":"19"}}"##;
        let pages = vec![
            ("p1".to_string(), page.to_vec()),
            ("p2".to_string(), page.to_vec()),
        ];
        let rows = flatten("R", &pages).unwrap();
        let mut batched = Flattener::default();
        let first = batched.add_pages("R", &pages[..1]).unwrap();
        let second = batched.add_pages("R", &pages[1..]).unwrap();
        assert_eq!(
            (first[0].len(), second[0].len()),
            (2, 0),
            "once per run across batches"
        );
        assert_eq!((first[1].len(), second[1].len()), (1, 0));
        assert_eq!((first[2].len(), second[2].len()), (2, 0));
        assert_eq!(rows[0].len(), 2, "tweets once per run");
        assert_eq!(rows[1].len(), 1, "users once per run");
        assert_eq!(rows[2].len(), 2, "tags keep case, pairs once");
        let t = &rows[0][0];
        assert_eq!(t[5].as_deref(), Some("2026-11-20 14:03:27.000"));
        assert_eq!(t[12].as_deref(), Some("replied_to"));
        assert_eq!(t[11].as_deref(), Some("8"));
        assert_eq!(rows[0][1][6], None, "absent metrics are NULL");
        assert_eq!(rows[1][0][5].as_deref(), Some("false"));
        assert_eq!(rows[1][0][6].as_deref(), Some("10"));
    }

    #[test]
    fn ids_and_timestamps_normalize() {
        fn c(s: &str) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(s))
        }
        assert_eq!(
            id(&c("1590000000000000001")),
            Some("1590000000000000001".into())
        );
        assert_eq!(id(&c("007")), Some("7".into()));
        assert_eq!(id(&c(" 42 ")), Some("42".into()));
        assert_eq!(id(&c("x1")), None);
        assert_eq!(
            timestamp(&c("2026-11-20T14:03:27.120Z")),
            Some("2026-11-20 14:03:27.120".into())
        );
        assert_eq!(
            timestamp(&c("2026-11-20T16:03:27+02:00")),
            Some("2026-11-20 14:03:27.000".into())
        );
        assert_eq!(timestamp(&c("2026-02-30T14:03:27.000Z")), None);
    }
}
