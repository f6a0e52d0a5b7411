//! Flattening X recent-search pages into the `twitter` raw tables:
//! `tweets` (one row per tweet per run, from `data`), `users` (one row per
//! user per run, from `includes.users`) and `tweet_hashtags` (one row per
//! tweet and tag per run, from `data[].entities.hashtags`). Within a run a
//! tweet, user or (tweet, tag) pair appears once; the first occurrence (the
//! newest page) wins. Ids are numbers; timestamps are read from the API's
//! `2026-11-20T14:03:27.000Z` into zone-less UTC timestamps.

use std::borrow::Cow;
use std::collections::HashSet;

use rayon::prelude::*;
use serde::Deserialize;

use super::{Provenance, StageError, StagedRows, TableSpec};
use crate::warehouse::rows::timestamp_micros;

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

/// A decimal id as a number, or `None` when it is not an integer.
fn id(s: &Option<Cow<'_, str>>) -> Option<i64> {
    let s = s.as_deref()?;
    s.parse::<i64>()
        .ok()
        .or_else(|| s.trim().parse::<i64>().ok())
}

/// `2026-11-20T14:03:27.000Z` (or any RFC 3339 instant) as microseconds
/// since the Unix epoch, UTC.
pub fn timestamp(s: &Option<Cow<'_, str>>) -> Option<i64> {
    let s = s.as_deref()?;
    api_timestamp(s).or_else(|| {
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_micros())
    })
}

/// The API's own shape, `YYYY-MM-DDTHH:MM:SS.sssZ`, read by position.
fn api_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    let n = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(n(0, 4)? as i32, n(5, 7)?, n(8, 10)?)?;
    let t = date.and_hms_milli_opt(n(11, 13)?, n(14, 16)?, n(17, 19)?, n(20, 23)?)?;
    Some(timestamp_micros(t))
}

/// Turns a run's pages into rows a batch at a time, each tweet, user and
/// (tweet, hashtag) pair once per run however many pages repeat it.
#[derive(Default)]
pub struct Flattener {
    seen_tweets: HashSet<i64>,
    seen_users: HashSet<i64>,
}

impl Flattener {
    /// Rows for [`tables`] from the next pages of the run (in page order).
    pub fn add_pages(
        &mut self,
        run: &Provenance<'_>,
        pages: &[(String, Vec<u8>)],
    ) -> Result<Vec<StagedRows>, StageError> {
        // Parse pages in parallel, flatten in order (the first occurrence wins).
        let parsed: Vec<Page<'_>> = pages
            .par_iter()
            .map(|(key, bytes)| {
                serde_json::from_slice(bytes).map_err(|e| StageError::BadPage {
                    run_id: run.run_id.to_string(),
                    page: key.clone(),
                    message: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        let specs = tables();
        let [mut tweets, mut users, mut tags] =
            [&specs[0], &specs[1], &specs[2]].map(|spec| StagedRows::new(spec, run));
        let mut tweet_tags: Vec<&str> = Vec::new();
        for page in &parsed {
            for t in page.data.iter().flatten() {
                let Some(tid) = id(&t.id) else { continue };
                if !self.seen_tweets.insert(tid) {
                    continue;
                }
                let m = t.public_metrics.as_ref();
                let r = tweets.values();
                r.int(Some(tid));
                r.int(id(&t.author_id));
                r.int(id(&t.conversation_id));
                r.text(t.text.as_deref());
                r.text(t.lang.as_deref());
                r.timestamp(timestamp(&t.created_at));
                r.int(m.and_then(|m| m.retweet_count));
                r.int(m.and_then(|m| m.reply_count));
                r.int(m.and_then(|m| m.like_count));
                r.int(m.and_then(|m| m.quote_count));
                r.int(m.and_then(|m| m.impression_count));
                r.int(id(&t.in_reply_to_user_id));
                r.text(
                    t.referenced_tweets
                        .as_ref()
                        .and_then(|r| r.first())
                        .and_then(|r| r.kind.as_deref()),
                );
                tweets.end_row();
                // A tweet is flattened once, so its (tweet, tag) pairs only
                // need deduplicating within its own list.
                tweet_tags.clear();
                let hashtags = t.entities.as_ref().and_then(|e| e.hashtags.as_ref());
                for tag in hashtags
                    .into_iter()
                    .flatten()
                    .filter_map(|h| h.tag.as_deref())
                {
                    if !tweet_tags.contains(&tag) {
                        tweet_tags.push(tag);
                        let r = tags.values();
                        r.int(Some(tid));
                        r.text(Some(tag));
                        tags.end_row();
                    }
                }
            }
            let page_users = page.includes.as_ref().and_then(|i| i.users.as_ref());
            for u in page_users.into_iter().flatten() {
                let Some(uid) = id(&u.id) else { continue };
                if !self.seen_users.insert(uid) {
                    continue;
                }
                let m = u.public_metrics.as_ref();
                let r = users.values();
                r.int(Some(uid));
                r.text(u.username.as_deref());
                r.text(u.name.as_deref());
                r.text(u.description.as_deref());
                r.timestamp(timestamp(&u.created_at));
                r.bool(u.verified);
                r.int(m.and_then(|m| m.followers_count));
                r.int(m.and_then(|m| m.following_count));
                r.int(m.and_then(|m| m.tweet_count));
                r.int(m.and_then(|m| m.listed_count));
                users.end_row();
            }
        }
        Ok(vec![tweets, users, tags])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::rows::Value;

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
        let run = Provenance {
            run_id: "R",
            loaded_at: 0,
        };
        let rows = Flattener::default().add_pages(&run, &pages).unwrap();
        let mut batched = Flattener::default();
        let first = batched.add_pages(&run, &pages[..1]).unwrap();
        let second = batched.add_pages(&run, &pages[1..]).unwrap();
        let lens = |b: &[StagedRows]| b.iter().map(|t| t.rows().len()).collect::<Vec<_>>();
        assert_eq!(lens(&first), [2, 1, 2], "tweets, users, tag pairs");
        assert_eq!(lens(&second), [0, 0, 0], "once per run across batches");
        assert_eq!(lens(&rows), [2, 1, 2], "tags keep case, pairs once");
        let row = |t: usize, i: usize| -> Vec<Value<'_>> {
            rows[t].rows().rows().nth(i).expect("row").collect()
        };
        let t = row(0, 0);
        assert_eq!(t.len(), 15, "13 columns + run id + load time");
        assert_eq!(t[0], Value::Int(20));
        assert_eq!(t[3], Value::Text("a #Dragon #dragon #Dragon"));
        assert_eq!(
            t[5].to_text().as_deref(),
            Some("2026-11-20 14:03:27.000000")
        );
        assert_eq!(t[11], Value::Int(8));
        assert_eq!(t[12], Value::Text("replied_to"));
        assert_eq!((t[13], t[14]), (Value::Text("R"), Value::Timestamp(0)));
        assert_eq!(row(0, 1)[6], Value::Null, "absent metrics are NULL");
        let u = row(1, 0);
        assert_eq!((u[5], u[6]), (Value::Bool(false), Value::Int(10)));
        assert_eq!(row(2, 1)[1], Value::Text("dragon"));
    }

    #[test]
    fn ids_and_timestamps_normalize() {
        fn c(s: &str) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(s))
        }
        let text = |m: Option<i64>| m.and_then(|m| Value::Timestamp(m).to_text());
        assert_eq!(id(&c("1590000000000000001")), Some(1590000000000000001));
        assert_eq!(id(&c("007")), Some(7));
        assert_eq!(id(&c(" 42 ")), Some(42));
        assert_eq!(id(&c("x1")), None);
        assert_eq!(
            text(timestamp(&c("2026-11-20T14:03:27.120Z"))).as_deref(),
            Some("2026-11-20 14:03:27.120000")
        );
        assert_eq!(
            text(timestamp(&c("2026-11-20T16:03:27+02:00"))).as_deref(),
            Some("2026-11-20 14:03:27.000000")
        );
        assert_eq!(timestamp(&c("2026-02-30T14:03:27.000Z")), None);
        assert_eq!(timestamp(&c("2026-11-20T14:03:27.1x0Z")), None);
    }
}
