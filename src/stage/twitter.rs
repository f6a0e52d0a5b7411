//! Flattening X recent-search pages into the `twitter` raw tables:
//! `tweets` (one row per tweet per run, from `data`), `users` (one row per
//! user per run, from `includes.users`) and `tweet_hashtags` (one row per
//! tweet and tag per run, from `data[].entities.hashtags`). Within a run a
//! tweet, user or (tweet, tag) pair appears once; the first occurrence (the
//! newest page) wins. Timestamps are converted from the API's
//! `2026-11-20T14:03:27.000Z` to a zone-less UTC `2026-11-20 14:03:27.000`.

use std::collections::BTreeSet;

use serde_json::Value;

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

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// A decimal id (string or number in JSON), or NULL when not an integer.
fn id(v: &Value, key: &str) -> Option<String> {
    let s = text(v, key)?;
    s.parse::<i64>().ok().map(|n| n.to_string())
}

fn metric(v: &Value, key: &str) -> Option<String> {
    v.get("public_metrics")
        .and_then(|m| m.get(key))
        .and_then(Value::as_i64)
        .map(|n| n.to_string())
}

fn boolean(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_bool).map(|b| b.to_string())
}

/// `2026-11-20T14:03:27.000Z` → `2026-11-20 14:03:27.000` (UTC, no zone).
pub fn timestamp(v: &Value, key: &str) -> Option<String> {
    let s = text(v, key)?;
    chrono::DateTime::parse_from_rfc3339(&s).ok().map(|t| {
        t.with_timezone(&chrono::Utc)
            .naive_utc()
            .format("%Y-%m-%d %H:%M:%S%.3f")
            .to_string()
    })
}

/// Rows for [`tables`] from the pages of one run.
pub fn flatten(run_id: &str, pages: &[(String, Vec<u8>)]) -> Result<TableRows, StageError> {
    let mut tweets = Vec::new();
    let mut users = Vec::new();
    let mut tags = Vec::new();
    let mut seen_tweets = BTreeSet::new();
    let mut seen_users = BTreeSet::new();
    let mut seen_tags = BTreeSet::new();
    // Parsing dominates staging time: parse pages in parallel, flatten in order.
    use rayon::prelude::*;
    let parsed: Vec<Value> = pages
        .par_iter()
        .map(|(key, bytes)| {
            serde_json::from_slice(bytes).map_err(|e| StageError::BadPage {
                run_id: run_id.to_string(),
                page: key.clone(),
                message: e.to_string(),
            })
        })
        .collect::<Result<_, _>>()?;
    for page in &parsed {
        for t in page
            .get("data")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(tid) = id(t, "id") else { continue };
            if !seen_tweets.insert(tid.clone()) {
                continue;
            }
            let referenced_type = t
                .get("referenced_tweets")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|r| text(r, "type"));
            tweets.push(vec![
                Some(tid.clone()),
                id(t, "author_id"),
                id(t, "conversation_id"),
                text(t, "text"),
                text(t, "lang"),
                timestamp(t, "created_at"),
                metric(t, "retweet_count"),
                metric(t, "reply_count"),
                metric(t, "like_count"),
                metric(t, "quote_count"),
                metric(t, "impression_count"),
                id(t, "in_reply_to_user_id"),
                referenced_type,
            ]);
            for h in t
                .get("entities")
                .and_then(|e| e.get("hashtags"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(tag) = text(h, "tag") {
                    if seen_tags.insert((tid.clone(), tag.clone())) {
                        tags.push(vec![Some(tid.clone()), Some(tag)]);
                    }
                }
            }
        }
        for u in page
            .get("includes")
            .and_then(|i| i.get("users"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(uid) = id(u, "id") else { continue };
            if !seen_users.insert(uid.clone()) {
                continue;
            }
            users.push(vec![
                Some(uid),
                text(u, "username"),
                text(u, "name"),
                text(u, "description"),
                timestamp(u, "created_at"),
                boolean(u, "verified"),
                metric(u, "followers_count"),
                metric(u, "following_count"),
                metric(u, "tweet_count"),
                metric(u, "listed_count"),
            ]);
        }
    }
    Ok(vec![tweets, users, tags])
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
}
