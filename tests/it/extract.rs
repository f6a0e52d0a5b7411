//! Extraction, the lake and staging, end to end with real components: the
//! `sluice` binary against a local server speaking the X API contract
//! (`support::x_server`), local and S3 lakes (`support::s3_server`: s3s over
//! HTTP, reached through aws-sdk-s3), and PostgreSQL (`support::pg`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice::lake::{self, Lake, LakeConfig, PutOutcome};

use crate::cli::{copy_tree, repo_root, sluice, Out};
use crate::support::pg::PgServer;
use crate::support::s3_server::{self, S3Server};
use crate::support::x_server::{empty_page, token_for, tweet_page, Scripted, XServer};

const TOKEN: &str = "xtok-SLUICE-SECRET-AAAAxq9Vz3";

/// A throwaway project with the `twitter` source and an extract block.
struct Proj {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Proj {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> Out {
        let mut c = sluice();
        c.args(args)
            .current_dir(self.path())
            .env_remove("SLUICE_X_REPLAY")
            .env_remove("X_BEARER_TOKEN")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_S3");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let o = c.output().expect("run sluice");
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    fn ok(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        assert_eq!(
            out.code, 0,
            "sluice {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        );
        out
    }

    fn lake(&self) -> PathBuf {
        self.path().join("lake")
    }

    /// Lake keys under `raw/`, relative.
    fn raw_keys(&self) -> Vec<String> {
        local_lake(&self.lake()).list("raw/").unwrap()
    }

    fn pages(&self) -> Vec<String> {
        self.raw_keys()
            .into_iter()
            .filter(|k| k.contains("/page-"))
            .collect()
    }

    fn manifests(&self) -> Vec<Value> {
        let lake = local_lake(&self.lake());
        self.raw_keys()
            .into_iter()
            .filter(|k| k.ends_with("manifest.json"))
            .map(|k| serde_json::from_slice(&lake.get(&k).unwrap().unwrap()).unwrap())
            .collect()
    }

    fn state(&self) -> Value {
        let bytes = std::fs::read(self.lake().join("state/twitter/twitter.json")).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }
}

fn local_lake(root: &Path) -> lake::local::LocalLake {
    lake::local::LocalLake::new(root.to_path_buf(), "lake".into())
}

const SOURCES: &str = r#"version: 2
sources:
  - name: twitter
    schema: raw_twitter
    meta:
      sluice:
        extract:
EXTRACT
    tables:
      - name: tweets
      - name: users
      - name: tweet_hashtags
"#;

/// `extract` keys (YAML mapping lines, unindented) + profiles target body.
fn project(extract: &str, target: &str, env: &[(&str, &str)]) -> Proj {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join("dbt_project.yml"),
        "name: xt\nversion: '1.0'\nconfig-version: 2\nprofile: xt\nmodel-paths: [models]\n",
    )
    .unwrap();
    std::fs::create_dir_all(p.join("models")).unwrap();
    let block: String = extract
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("          {l}\n"))
        .collect();
    std::fs::write(
        p.join("models/sources.yml"),
        SOURCES.replace("EXTRACT\n", &block),
    )
    .unwrap();
    let target: String = target.lines().map(|l| format!("      {l}\n")).collect();
    std::fs::write(
        p.join("profiles.yml"),
        format!("xt:\n  target: t\n  outputs:\n    t:\n{target}"),
    )
    .unwrap();
    Proj {
        dir,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The test extract block; `extra` lines override the defaults by key.
fn x_block(server: &XServer, extra: &str) -> String {
    let defaults = [
        "plugin: x_recent_search".to_string(),
        "query: \"#Dragon -is:retweet\"".to_string(),
        "bearer_token_env: XT_TOKEN".to_string(),
        format!("base_url: {}", server.base_url),
        "backoff_initial_ms: 10".to_string(),
        "max_retries: 2".to_string(),
        "timeout_seconds: 5".to_string(),
    ];
    let key = |l: &str| l.split(':').next().unwrap_or("").trim().to_string();
    let overridden: Vec<String> = extra.lines().map(key).collect();
    let mut out: Vec<String> = defaults
        .into_iter()
        .filter(|l| !overridden.contains(&key(l)))
        .collect();
    out.extend(extra.lines().map(str::to_string));
    out.join("\n") + "\n"
}

const DUCK_TARGET: &str = "type: duckdb\npath: ':memory:'\nschema: main";

fn pg_target(pg: &PgServer, lake: &str) -> String {
    format!(
        "type: postgres\nhost: {}\nport: {}\nuser: {}\npassword: '{}'\ndbname: {}\nschema: analytics\nsslmode: disable\nlake: {lake}",
        pg.host,
        pg.port,
        pg.user,
        pg.password.clone().unwrap_or_default(),
        pg.dbname
    )
}

fn extract_only(server: &XServer, extra: &str) -> Proj {
    project(&x_block(server, extra), DUCK_TARGET, &[("XT_TOKEN", TOKEN)])
}

/// Five pages of 100/100/0/100/37 tweets, newest first.
fn five_pages() -> Vec<Value> {
    vec![
        tweet_page(10_000, 100),
        tweet_page(9_900, 100),
        empty_page(),
        tweet_page(9_800, 100),
        tweet_page(9_700, 37),
    ]
}

fn pg_scalar(pg: &PgServer, sql: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = pg.connect().await;
        let row = c
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        row.get::<_, i64>(0)
    })
}

#[test]
fn extract_follows_next_token_through_empty_pages_and_writes_manifest_last() {
    let server = XServer::start(TOKEN, five_pages());
    let p = extract_only(&server, "");
    let out = p.ok(&["extract", "-s", "source:twitter"]);
    assert!(
        out.stderr.contains("page 5: 37 posts (337 in run)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Extracted source `twitter`"),
        "{}",
        out.stderr
    );

    let reqs = server.requests();
    assert_eq!(reqs.len(), 5);
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(r.params["query"], "#Dragon -is:retweet");
        assert_eq!(r.params["max_results"], "100");
        assert_eq!(r.params["expansions"], "author_id");
        assert!(r.params["tweet.fields"].contains("public_metrics"));
        assert!(r.params["user.fields"].contains("username"));
        assert!(!r.params.contains_key("since_id"));
        assert_eq!(
            r.params.get("next_token").cloned(),
            (i > 0).then(|| token_for(i))
        );
    }

    // Pages land exactly as received, numbered; the manifest names them.
    let pages = p.pages();
    assert_eq!(pages.len(), 5, "{pages:?}");
    assert!(
        pages[0].starts_with("raw/twitter/twitter/dt="),
        "{}",
        pages[0]
    );
    assert!(pages[0].ends_with("/page-00001.json"));
    let served = server.served();
    let lake = local_lake(&p.lake());
    for (k, body) in pages.iter().zip(&served) {
        assert_eq!(lake.get(k).unwrap().unwrap(), body.as_bytes(), "{k}");
    }
    let m = &p.manifests()[0];
    assert_eq!(m["posts"], 337);
    assert_eq!(m["pages"].as_array().unwrap().len(), 5);
    assert_eq!(m["newest_id"], "10000");
    assert_eq!(m["oldest_id"], "9664");
    assert_eq!(m["pages"][2]["result_count"], 0);
    let state = p.state();
    assert_eq!(state["newest_id"], "10000");
    assert!(state["in_progress"].is_null());
}

#[test]
fn empty_result_is_a_complete_run_and_the_next_run_uses_since_id() {
    let server = XServer::start(TOKEN, vec![]);
    let p = extract_only(&server, "");
    p.ok(&["extract"]);
    assert_eq!(p.pages().len(), 1);
    assert_eq!(
        server.served(),
        vec![r#"{"meta":{"result_count":0}}"#.to_string()]
    );
    assert_eq!(p.manifests()[0]["posts"], 0);
    assert!(p.state()["newest_id"].is_null());

    server.set_pages(vec![tweet_page(500, 20)]);
    p.ok(&["extract"]);
    assert_eq!(p.state()["newest_id"], "500");
    server.set_pages(vec![tweet_page(530, 30), tweet_page(500, 20)]);
    server.clear_requests();
    let out = p.ok(&["extract"]);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1, "only the newer page: {reqs:?}");
    assert_eq!(
        reqs[0].params.get("since_id").map(String::as_str),
        Some("500")
    );
    assert!(out.stderr.contains("since_id 500"), "{}", out.stderr);
    assert_eq!(p.state()["newest_id"], "530");
    assert_eq!(p.manifests().len(), 3);

    // --full-refresh ignores the high-water mark.
    server.clear_requests();
    p.ok(&["extract", "--full-refresh"]);
    assert!(!server.requests()[0].params.contains_key("since_id"));
}

#[test]
fn partial_errors_are_kept_and_reported() {
    let mut page = tweet_page(800, 30);
    page["errors"] = serde_json::json!([{"value": "99999", "detail": "Could not find user with id: [99999].", "title": "Not Found Error",
        "resource_type": "user", "parameter": "id", "resource_id": "99999", "type": "https://api.twitter.com/2/problems/resource-not-found"}]);
    let server = XServer::start(TOKEN, vec![page, tweet_page(770, 10)]);
    let p = extract_only(&server, "");
    let out = p.ok(&["extract"]);
    assert!(
        out.stderr.contains("1 partial error kept"),
        "{}",
        out.stderr
    );
    let landed = std::fs::read_to_string(p.lake().join(&p.pages()[0])).unwrap();
    assert!(landed.contains("Could not find user with id: [99999]."));
    assert_eq!(p.manifests()[0]["partial_errors"], 1);
}

#[test]
fn rate_limit_429_waits_for_the_reset_then_retries_the_same_request() {
    let server = XServer::start(TOKEN, vec![tweet_page(100, 50), tweet_page(50, 50)]);
    server.script(Scripted::rate_limited(1).on_page(1));
    let p = extract_only(&server, "");
    let started = Instant::now();
    let out = p.ok(&["extract"]);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(
        out.stderr.contains("rate limited (HTTP 429): waiting"),
        "{}",
        out.stderr
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(
        reqs[1].params, reqs[2].params,
        "the same request is retried"
    );
    assert_eq!(p.pages().len(), 2);
}

#[test]
fn rate_limit_past_max_wait_stops_resumably_and_resumes_without_refetching() {
    let server = XServer::start(TOKEN, five_pages());
    server.script(Scripted::rate_limited(3600).on_page(2));
    let p = extract_only(&server, "max_wait_seconds: 30");
    let out = p.run(&["extract"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("rate limited"), "{}", out.stderr);
    assert!(
        out.stderr.contains("run `sluice extract` again to resume"),
        "{}",
        out.stderr
    );
    assert_eq!(p.pages().len(), 2);
    assert!(
        p.manifests().is_empty(),
        "no manifest for an unfinished run"
    );
    assert!(
        p.state()["newest_id"].is_null(),
        "high-water mark not advanced"
    );
    assert!(!p.state()["in_progress"].is_null());

    server.clear_requests();
    let out = p.ok(&["extract"]);
    assert!(out.stderr.contains("Resuming run"), "{}", out.stderr);
    let pages: Vec<Option<usize>> = server.requests().iter().map(|r| r.page).collect();
    assert_eq!(pages, vec![Some(2), Some(3), Some(4)]);
    assert_eq!(p.pages().len(), 5);
    assert_eq!(p.manifests().len(), 1);
    assert_eq!(p.manifests()[0]["posts"], 337);
    assert_eq!(p.state()["newest_id"], "10000");
}

#[test]
fn server_errors_back_off_then_succeed() {
    let server = XServer::start(TOKEN, vec![tweet_page(100, 10)]);
    server.script(Scripted::unavailable());
    server.script(Scripted::unavailable());
    let p = extract_only(&server, "");
    let out = p.ok(&["extract"]);
    assert_eq!(server.requests().len(), 3);
    assert!(
        out.stderr.contains("HTTP 503 from the API; retrying"),
        "{}",
        out.stderr
    );
    assert_eq!(p.pages().len(), 1);
}

#[test]
fn timeouts_are_retried() {
    let server = XServer::start(TOKEN, vec![tweet_page(100, 10)]);
    server.script(Scripted::status(200, "{}").delay(Duration::from_secs(3)));
    let p = extract_only(&server, "timeout_seconds: 1");
    let out = p.ok(&["extract"]);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    assert_eq!(p.manifests()[0]["posts"], 10);
}

#[test]
fn unauthorized_fails_fast_with_a_token_hint() {
    let server = XServer::start("the-right-token", vec![tweet_page(100, 10)]);
    let p = extract_only(&server, "");
    let out = p.run(&["extract"]);
    assert_eq!(out.code, 1);
    assert_eq!(server.requests().len(), 1, "no retries on 401");
    assert!(
        out.stderr.contains("HTTP 401 Unauthorized"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("`XT_TOKEN`"), "{}", out.stderr);
    assert!(!out.stderr.contains(TOKEN) && !out.stdout.contains(TOKEN));
}

#[test]
fn forbidden_mentions_the_access_tier() {
    let server = XServer::start(TOKEN, vec![]);
    server.script(Scripted::status(403, r#"{"title":"Forbidden","detail":"When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project.","type":"https://api.twitter.com/2/problems/client-forbidden"}"#));
    let p = extract_only(&server, "");
    let out = p.run(&["extract"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("attached to a Project"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("tier"), "{}", out.stderr);
}

#[test]
fn bad_request_prints_every_api_message() {
    let server = XServer::start(TOKEN, vec![]);
    server.script(Scripted::invalid_request(&[
        "There were errors processing your request: Rules must contain a non-negation term (at position 1)",
        "There were errors processing your request: Reference to invalid operator 'lang2'",
    ]));
    let p = extract_only(&server, "");
    let out = p.run(&["extract"]);
    assert_eq!(out.code, 1);
    assert_eq!(server.requests().len(), 1);
    assert!(
        out.stderr.contains("HTTP 400 Invalid Request"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("non-negation term"), "{}", out.stderr);
    assert!(
        out.stderr.contains("invalid operator 'lang2'"),
        "{}",
        out.stderr
    );
}

#[test]
fn max_results_out_of_range_is_a_config_error() {
    // Guards the fake: a typo'd field list would be a 400 on the real API too.
    let server = XServer::start(TOKEN, vec![tweet_page(100, 10)]);
    let p = extract_only(&server, "max_results: 5");
    let out = p.run(&["extract"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("`max_results` must be between 10 and 100"),
        "{}",
        out.stderr
    );
    assert!(server.requests().is_empty());
}

#[test]
fn missing_token_explains_and_dry_run_needs_none() {
    let server = XServer::start(TOKEN, vec![tweet_page(100, 10)]);
    let p = project(
        &x_block(&server, "max_pages: 3\nmax_posts: 250"),
        DUCK_TARGET,
        &[],
    );
    let out = p.run(&["extract"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("`XT_TOKEN` is not set"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--dry-run"), "{}", out.stderr);

    let out = p.ok(&["extract", "--dry-run"]);
    assert!(server.requests().is_empty());
    assert!(
        out.stdout.contains(&format!(
            "GET {}/2/tweets/search/recent?query=%23Dragon%20-is%3Aretweet&max_results=100",
            server.base_url
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("at most 2 more requests"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("stopping at 250 posts"),
        "{}",
        out.stdout
    );
    assert!(!p.lake().join("raw").exists());
}

#[test]
fn budgets_stop_a_run_early() {
    let server = XServer::start(TOKEN, five_pages());
    let p = extract_only(&server, "max_pages: 2");
    let out = p.ok(&["extract"]);
    assert!(
        out.stderr.contains("stopped by `max_pages`"),
        "{}",
        out.stderr
    );
    assert_eq!(p.pages().len(), 2);
    assert_eq!(p.manifests()[0]["stopped_by"], "max_pages");

    let server = XServer::start(TOKEN, five_pages());
    let p = extract_only(&server, "max_posts: 130");
    p.ok(&["extract"]);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[1].params["max_results"], "30",
        "the last request asks for what is left"
    );
}

#[test]
fn unknown_plugin_and_inline_token_are_config_errors() {
    let p = project("plugin: x_firehose\nquery: a", DUCK_TARGET, &[]);
    let out = p.run(&["extract"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("unknown extraction plugin `x_firehose`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("models/sources.yml"), "{}", out.stderr);
    let p = project(
        "plugin: x_recent_search\nquery: a\nbearer_token: hunter2-inline",
        DUCK_TARGET,
        &[],
    );
    let out = p.run(&["extract"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("bearer_token_env"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2-inline"));
}

#[test]
fn record_then_replay_lands_identical_pages_without_network() {
    let server = XServer::start(TOKEN, five_pages());
    let p = extract_only(&server, "");
    let rec = p.path().join("rec");
    p.ok(&["extract", "--record", rec.to_str().unwrap()]);
    let live_pages: Vec<Vec<u8>> = p
        .pages()
        .iter()
        .map(|k| std::fs::read(p.lake().join(k)).unwrap())
        .collect();
    assert!(rec.join("index.json").exists());
    let index = std::fs::read_to_string(rec.join("index.json")).unwrap();
    assert!(!index.contains(TOKEN));

    // A second project replays it: no token, the server is not asked.
    server.clear_requests();
    let q = project(
        &format!("{}replay: {}\n", x_block(&server, ""), rec.display()),
        DUCK_TARGET,
        &[],
    );
    let out = q.ok(&["extract"]);
    assert!(
        out.stderr.contains("Replaying recorded X API responses"),
        "{}",
        out.stderr
    );
    assert!(server.requests().is_empty());
    let replayed: Vec<Vec<u8>> = q
        .pages()
        .iter()
        .map(|k| std::fs::read(q.lake().join(k)).unwrap())
        .collect();
    assert_eq!(live_pages, replayed);
    assert_eq!(q.manifests()[0]["replayed_from"], rec.display().to_string());
    // Replaying again with the high-water mark: nothing new.
    q.ok(&["extract"]);
    assert_eq!(q.manifests()[1]["posts"], 0);
    // SLUICE_X_REPLAY=off turns a configured replay off (then the token is needed)...
    let mut off = q;
    off.env.push(("SLUICE_X_REPLAY".into(), "off".into()));
    let out = off.run(&["extract"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("`XT_TOKEN` is not set"),
        "{}",
        out.stderr
    );
    // ...and SLUICE_X_REPLAY=<dir> turns one on.
    let r = project(
        &x_block(&server, ""),
        DUCK_TARGET,
        &[("SLUICE_X_REPLAY", rec.to_str().unwrap())],
    );
    let out = r.ok(&["extract"]);
    assert!(out.stderr.contains("Replaying"), "{}", out.stderr);
    assert_eq!(r.manifests()[0]["posts"], 337);
    assert!(server.requests().is_empty());
}

fn assert_staged_once(pg: &PgServer, tweets: i64) {
    assert_eq!(
        pg_scalar(pg, "select count(*) from raw_twitter.tweets"),
        tweets
    );
    assert_eq!(
        pg_scalar(pg, "select count(distinct id) from raw_twitter.tweets"),
        tweets,
        "each tweet once"
    );
    assert_eq!(
        pg_scalar(pg, "select count(*) from raw_twitter.tweet_hashtags"),
        tweets * 2
    );
    assert_eq!(
        pg_scalar(
            pg,
            "select count(*) from (select distinct id, _sluice_run_id from raw_twitter.users) u"
        ),
        pg_scalar(pg, "select count(*) from raw_twitter.users")
    );
}

#[test]
fn crash_after_page_k_resumes_only_missing_pages_and_stages_each_tweet_once_in_postgres() {
    let pg = PgServer::start();
    let server = XServer::start(TOKEN, five_pages());
    server.fail_from(Some(3));
    let p = project(
        &x_block(&server, "max_retries: 1"),
        &pg_target(&pg, "{type: local, path: lake}"),
        &[("XT_TOKEN", TOKEN)],
    );
    let out = p.run(&["extract"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("HTTP 500"), "{}", out.stderr);
    assert_eq!(p.pages().len(), 3);

    // Nothing complete to stage yet.
    let out = p.ok(&["stage"]);
    assert!(
        out.stderr
            .contains("0 runs (0 already staged, 0 in the lake)"),
        "{}",
        out.stderr
    );
    assert_eq!(pg_scalar(&pg, "select count(*) from raw_twitter.tweets"), 0);

    server.fail_from(None);
    server.clear_requests();
    p.ok(&["extract"]);
    let asked: Vec<Option<usize>> = server.requests().iter().map(|r| r.page).collect();
    assert_eq!(asked, vec![Some(3), Some(4)], "only the missing pages");
    assert_eq!(p.pages().len(), 5);

    let out = p.ok(&["stage", "-s", "source:twitter"]);
    assert!(
        out.stderr
            .contains("337 tweets, 7 users, 674 tweet_hashtags"),
        "{}",
        out.stderr
    );
    assert_staged_once(&pg, 337);
    assert_eq!(
        pg_scalar(&pg, "select count(*) from raw_twitter._sluice_runs"),
        1
    );
    assert_eq!(
        pg_scalar(&pg, "select count(*) from information_schema.columns where table_schema = 'raw_twitter' and table_name = 'tweets' and column_name = '_sluice_loaded_at' and data_type = 'timestamp without time zone'"),
        1
    );
    assert_eq!(
        pg_scalar(&pg, "select count(*) from raw_twitter.tweets where referenced_type = 'replied_to' and in_reply_to_user_id is not null"),
        pg_scalar(&pg, "select count(*) from raw_twitter.tweets where id % 4 = 1")
    );

    // Re-staging a staged run changes nothing; a new run adds rows once.
    let out = p.ok(&["stage"]);
    assert!(
        out.stderr.contains("0 runs (1 already staged"),
        "{}",
        out.stderr
    );
    assert_staged_once(&pg, 337);
    server.set_pages(vec![tweet_page(10_050, 50), tweet_page(10_000, 100)]);
    p.ok(&["extract"]);
    p.ok(&["stage"]);
    assert_eq!(
        pg_scalar(&pg, "select count(*) from raw_twitter.tweets"),
        387
    );
    assert_eq!(
        pg_scalar(&pg, "select count(*) from raw_twitter._sluice_runs"),
        2
    );

    // --full-refresh rebuilds from the lake: same rows.
    p.ok(&["stage", "--full-refresh"]);
    assert_eq!(
        pg_scalar(&pg, "select count(*) from raw_twitter.tweets"),
        387
    );
}

#[test]
fn s3_lake_keeps_objects_write_once_through_aws_sdk() {
    let s3 = S3Server::start("lake-bucket");
    let config = LakeConfig::S3 {
        bucket: "lake-bucket".into(),
        prefix: "team/raw-zone/".into(),
        region: Some(s3_server::REGION.into()),
        endpoint_url: Some(s3.endpoint.clone()),
        force_path_style: None,
    };
    let lake = lake::s3::S3Lake::connect(&config, Some(S3Server::credentials())).unwrap();
    assert_eq!(lake.describe(), "s3://lake-bucket/team/raw-zone/");
    assert_eq!(lake.get("raw/a/page-00001.json").unwrap(), None);
    assert_eq!(
        lake.put_new("raw/a/page-00001.json", b"one").unwrap(),
        PutOutcome::Created
    );
    assert_eq!(
        lake.put_new("raw/a/page-00001.json", b"other").unwrap(),
        PutOutcome::AlreadyExists
    );
    assert_eq!(lake.get("raw/a/page-00001.json").unwrap().unwrap(), b"one");
    lake.put("state/a.json", b"1").unwrap();
    lake.put("state/a.json", b"2").unwrap();
    assert_eq!(lake.get("state/a.json").unwrap().unwrap(), b"2");
    for i in 2..=3 {
        lake.put_new(&format!("raw/a/page-{i:05}.json"), b"x")
            .unwrap();
    }
    assert_eq!(
        lake.list("raw/").unwrap(),
        vec![
            "raw/a/page-00001.json",
            "raw/a/page-00002.json",
            "raw/a/page-00003.json"
        ]
    );
    assert!(s3
        .root()
        .join("lake-bucket/team/raw-zone/raw/a/page-00001.json")
        .exists());

    // Wrong credentials are an error, not a silent miss.
    let bad = lake::s3::S3Lake::connect(
        &config,
        Some(aws_sdk_s3::config::Credentials::new(
            s3_server::ACCESS_KEY,
            "wrong",
            None,
            None,
            "t",
        )),
    )
    .unwrap();
    let e = bad.get("state/a.json").unwrap_err().to_string();
    assert!(!e.contains(s3_server::SECRET_KEY), "{e}");
}

#[test]
fn extract_to_s3_and_stage_from_it_without_leaking_secrets() {
    let pg = PgServer::start();
    let s3 = S3Server::start("warehouse-lake");
    let server = XServer::start(TOKEN, five_pages());
    // The endpoint comes from AWS_ENDPOINT_URL_S3, credentials from the standard chain (env).
    let p = project(
        &x_block(&server, ""),
        &pg_target(
            &pg,
            "{type: s3, bucket: warehouse-lake, prefix: sluice, region: us-east-1}",
        ),
        &[
            ("XT_TOKEN", TOKEN),
            ("AWS_ACCESS_KEY_ID", s3_server::ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", s3_server::SECRET_KEY),
            ("AWS_ENDPOINT_URL_S3", &s3.endpoint),
            ("AWS_CONFIG_FILE", "/nonexistent"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    let mut outputs = vec![];
    // A 401 first (error paths print too), then a good run, then staging.
    server.script(Scripted::unauthorized());
    outputs.push(p.run(&["extract"]));
    assert_eq!(outputs[0].code, 1);
    outputs.push(p.ok(&["extract"]));
    assert!(
        outputs[1]
            .stderr
            .contains("s3://warehouse-lake/sluice/raw/twitter/twitter/dt="),
        "{}",
        outputs[1].stderr
    );
    outputs.push(p.ok(&["stage"]));
    outputs.push(p.ok(&["extract", "--dry-run"]));
    outputs.push(p.ok(&["parse"]));
    assert_staged_once(&pg, 337);
    let objects: Vec<PathBuf> = s3.files();
    assert!(
        objects.iter().any(|f| f.ends_with("manifest.json")),
        "{objects:?}"
    );
    assert!(objects
        .iter()
        .any(|f| f.ends_with("state/twitter/twitter.json")));

    // The secret scan: token and AWS secret in no output and no file we wrote.
    for o in &outputs {
        for secret in [TOKEN, s3_server::SECRET_KEY] {
            assert!(
                !o.stdout.contains(secret),
                "stdout leaks a secret:\n{}",
                o.stdout
            );
            assert!(
                !o.stderr.contains(secret),
                "stderr leaks a secret:\n{}",
                o.stderr
            );
        }
    }
    let mut files = objects;
    files.extend(
        walkdir::WalkDir::new(p.path())
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().to_path_buf()),
    );
    assert!(files.iter().any(|f| f.ends_with("target/manifest.json")));
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in [TOKEN, s3_server::SECRET_KEY] {
            assert!(!text.contains(secret), "{} leaks a secret", f.display());
        }
    }
}

#[test]
fn the_example_project_replays_its_sample_stages_it_and_builds() {
    let pg = PgServer::start();
    let dir = crate::cli::example_project();
    copy_tree(&repo_root().join("sample"), &dir.path().join("sample"));
    let p = Proj { dir, env: vec![] };
    let profiles = format!(
        "twitter_analytics:\n  target: pg\n  outputs:\n    pg:\n{}\n",
        pg_target(&pg, "{type: local, path: lake}")
            .lines()
            .map(|l| format!("      {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    std::fs::write(p.path().join("profiles.yml"), profiles).unwrap();
    let out = p.ok(&["extract", "-s", "source:twitter"]);
    assert!(
        out.stderr
            .contains("Replaying recorded X API responses from `sample/x-recent-search`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("612 posts"), "{}", out.stderr);
    assert!(
        out.stderr.contains("1 partial error kept"),
        "{}",
        out.stderr
    );
    p.ok(&["stage", "-s", "source:twitter"]);
    assert_eq!(
        pg_scalar(&pg, "select count(*) from raw_twitter.tweets"),
        612
    );
    assert!(pg_scalar(&pg, "select count(*) from raw_twitter.users") > 100);
    assert!(
        pg_scalar(
            &pg,
            "select count(*) from raw_twitter.tweets where referenced_type = 'retweeted'"
        ) > 50
    );
    assert!(
        pg_scalar(
            &pg,
            "select count(*) from raw_twitter.tweets where referenced_type = 'replied_to'"
        ) > 50
    );
    assert_eq!(
        pg_scalar(&pg, "select count(*) from raw_twitter.tweets t where not exists (select 1 from raw_twitter.users u where u.id = t.author_id)"),
        1,
        "the deleted author of the partial-errors page"
    );
    // Quiet mode prints nothing on a no-op.
    let out = p.ok(&["-q", "stage"]);
    assert_eq!(out.stderr, "");
    // The models and tests of the example project run on the staged sample (the
    // one warning is the deleted author's tweet, kept by the left join).
    let out = p.ok(&["build"]);
    assert!(out.stderr.contains("ERROR=0"), "{}", out.stderr);
}

#[cfg(feature = "duckdb")]
#[test]
fn staging_into_duckdb_is_idempotent() {
    let server = XServer::start(TOKEN, five_pages());
    let p = project(
        &x_block(&server, ""),
        "type: duckdb\npath: stage.duckdb\nschema: main",
        &[("XT_TOKEN", TOKEN)],
    );
    p.ok(&["extract"]);
    let out = p.ok(&["stage"]);
    assert!(
        out.stderr
            .contains("337 tweets, 7 users, 674 tweet_hashtags"),
        "{}",
        out.stderr
    );
    let out = p.ok(&["stage"]);
    assert!(
        out.stderr.contains("0 runs (1 already staged"),
        "{}",
        out.stderr
    );
    let conn = duckdb::Connection::open(p.path().join("stage.duckdb")).unwrap();
    let n: i64 = conn
        .query_row("select count(*) from raw_twitter.tweets", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 337);
    let ty: String = conn
        .query_row("select data_type from information_schema.columns where table_name = 'tweets' and column_name = '_sluice_loaded_at'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ty, "TIMESTAMP");
}

/// Staging throughput into PostgreSQL: `cargo test --test it staging_throughput -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark; run explicitly"]
fn staging_throughput_postgres() {
    let pages: u64 = std::env::var("SLUICE_BENCH_PAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let pg = PgServer::start();
    let server = XServer::start(
        TOKEN,
        (0..pages)
            .map(|i| tweet_page(10_000_000 - i * 100, 100))
            .collect(),
    );
    let p = project(
        &x_block(&server, ""),
        &pg_target(&pg, "{type: local, path: lake}"),
        &[("XT_TOKEN", TOKEN)],
    );
    let started = Instant::now();
    p.ok(&["-q", "extract"]);
    let extract_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let out = p.ok(&["stage"]);
    let stage_secs = started.elapsed().as_secs_f64();
    let tweets = pg_scalar(&pg, "select count(*) from raw_twitter.tweets");
    assert_eq!(tweets as u64, pages * 100);
    let rows = pg_scalar(
        &pg,
        "select (select count(*) from raw_twitter.tweets) + (select count(*) from raw_twitter.users) + (select count(*) from raw_twitter.tweet_hashtags)",
    );
    eprintln!(
        "extract: {pages} pages in {extract_secs:.2}s; stage: {tweets} tweets, {rows} rows in {stage_secs:.2}s wall ({:.0} rows/s)\n{}",
        rows as f64 / stage_secs,
        out.stderr
    );
}

#[test]
fn a_crash_after_the_manifest_but_before_the_state_update_commits_without_refetching() {
    let server = XServer::start(TOKEN, vec![tweet_page(300, 30), tweet_page(270, 20)]);
    let p = extract_only(&server, "");
    p.ok(&["extract"]);
    let m = &p.manifests()[0];
    // Put the state back to "run in progress", as if the process died right after
    // writing the manifest.
    let mut state = p.state();
    state["newest_id"] = Value::Null;
    state["in_progress"] = serde_json::json!({
        "run_id": m["run_id"], "dt": m["dt"], "since_id": null, "started_at": m["started_at"]
    });
    std::fs::write(
        p.lake().join("state/twitter/twitter.json"),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();
    server.clear_requests();
    let out = p.ok(&["extract"]);
    assert!(
        out.stderr.contains("already has a manifest"),
        "{}",
        out.stderr
    );
    assert!(server.requests().is_empty());
    assert_eq!(p.state()["newest_id"], "300");
    assert!(p.state()["in_progress"].is_null());
    assert_eq!(p.manifests().len(), 1);
}

// `build` runs extraction and staging as one step of its DAG.

/// A project where the `twitter` source (extracted from `server`) feeds
/// `stg_tweets` (with a `not_null` test) and `tweet_count`, next to an
/// unrelated branch: the seed `countries` and the model `country_names`.
#[cfg(feature = "duckdb")]
fn dag_project(server: &XServer) -> Proj {
    let p = project(
        &x_block(server, ""),
        "type: duckdb\npath: dag.duckdb\nschema: main",
        &[("XT_TOKEN", TOKEN)],
    );
    let files = [
        (
            "models/stg_tweets.sql",
            "select id, author_id, text from {{ source('twitter', 'tweets') }}",
        ),
        (
            "models/tweet_count.sql",
            "select count(*) as n from {{ ref('stg_tweets') }}",
        ),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: stg_tweets\n    columns:\n      - name: id\n        data_tests: [not_null]\n",
        ),
        ("seeds/countries.csv", "code,name\nGB,United Kingdom\nUS,United States\n"),
        (
            "models/country_names.sql",
            "select name from {{ ref('countries') }}",
        ),
    ];
    for (path, text) in files {
        let path = p.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    p
}

#[cfg(feature = "duckdb")]
fn stderr_has(out: &Out, needles: &[&str]) {
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "stderr lacks `{needle}`:\n{}",
            out.stderr
        );
    }
}

/// `target/run_results.json` results by unique id, in file order.
#[cfg(feature = "duckdb")]
fn run_results(p: &Proj) -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(p.path().join("target/run_results.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["unique_id"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

#[cfg(feature = "duckdb")]
fn status_of(results: &[(String, Value)], id_prefix: &str) -> String {
    let (_, r) = results
        .iter()
        .find(|(id, _)| id.starts_with(id_prefix))
        .unwrap_or_else(|| panic!("no result for {id_prefix}: {results:?}"));
    r["status"].as_str().unwrap().to_string()
}

#[cfg(feature = "duckdb")]
#[test]
fn a_failed_extraction_skips_what_it_feeds_and_builds_unrelated_branches() {
    let server = XServer::start(TOKEN, five_pages());
    let p = dag_project(&server);
    server.script(Scripted::unauthorized());
    let out = p.run(&["build", "--threads", "2"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let results = run_results(&p);
    let (_, source) = results
        .iter()
        .find(|(id, _)| id == "source.xt.twitter")
        .unwrap_or_else(|| panic!("no source step: {results:?}"));
    assert_eq!(source["status"], "error");
    let message = source["message"].as_str().unwrap();
    assert!(message.contains("HTTP 401 Unauthorized"), "{message}");
    assert!(message.contains("`XT_TOKEN`"), "{message}");
    for downstream in [
        "model.xt.stg_tweets",
        "model.xt.tweet_count",
        "test.xt.not_null_stg_tweets_id",
    ] {
        assert_eq!(status_of(&results, downstream), "skipped", "{downstream}");
    }
    assert_eq!(status_of(&results, "seed.xt.countries"), "success");
    assert_eq!(status_of(&results, "model.xt.country_names"), "success");
    stderr_has(&out, &["ERROR source twitter", "source `twitter` failed"]);
    let run_results_text =
        std::fs::read_to_string(p.path().join("target/run_results.json")).unwrap();
    for text in [&out.stdout, &out.stderr, &run_results_text] {
        assert!(!text.contains(TOKEN), "the bearer token leaked:\n{text}");
    }

    // `retry` runs the failed extraction and what it skipped, not the rest.
    let out = p.ok(&["retry"]);
    let results = run_results(&p);
    let ids: Vec<&str> = results.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(status_of(&results, "source.xt.twitter"), "success");
    assert_eq!(status_of(&results, "model.xt.tweet_count"), "success");
    assert!(
        !ids.contains(&"seed.xt.countries"),
        "{ids:?}\n{}",
        out.stderr
    );

    // --fail-fast: the failed extraction (first in the DAG) stops everything queued after it.
    server.script(Scripted::unauthorized());
    let out = p.run(&["build", "--fail-fast", "--threads", "1"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let results = run_results(&p);
    assert_eq!(results[0].0, "source.xt.twitter");
    assert_eq!(results[0].1["status"], "error");
    for (id, r) in &results[1..] {
        assert_eq!(r["status"], "skipped", "{id}: {r}");
    }
    assert!(
        results
            .iter()
            .any(|(_, r)| r["message"] == "skipped: --fail-fast"),
        "{results:?}"
    );
}

#[cfg(feature = "duckdb")]
#[test]
fn build_extracts_and_stages_a_source_as_a_dag_step_before_its_models() {
    let server = XServer::start(TOKEN, five_pages());
    let p = dag_project(&server);

    // Only `build` extracts, and only sources whose tables are selected.
    p.ok(&["seed"]);
    p.ok(&["run", "-s", "country_names"]);
    p.ok(&["build", "-s", "country_names"]);
    assert!(server.requests().is_empty(), "{:?}", server.requests());

    let out = p.ok(&["build", "-s", "+tweet_count", "--threads", "2"]);
    assert_eq!(server.requests().len(), 5);
    stderr_has(
        &out,
        &[
            "page 5: 37 posts (337 in run)",
            "OK extracted and staged source twitter",
        ],
    );
    let results = run_results(&p);
    let ids: Vec<&str> = results.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids[0], "source.xt.twitter", "{ids:?}");
    assert!(!ids.contains(&"model.xt.country_names"), "{ids:?}");
    let source = &results[0].1;
    assert_eq!(source["status"], "success");
    let message = source["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "5 pages, 337 posts, 1018 rows staged; 337 tweets, 7 users, 674 tweet_hashtags; run "
        ),
        "{message}"
    );
    assert_eq!(source["adapter_response"]["rows_affected"], 1018);
    let stg = &results
        .iter()
        .find(|(id, _)| id == "model.xt.stg_tweets")
        .unwrap()
        .1;
    assert_eq!(stg["status"], "success");
    let finished = source["timing"][0]["completed_at"].as_str().unwrap();
    let started = stg["timing"][0]["started_at"].as_str().unwrap();
    assert!(finished <= started, "{finished} > {started}");
    let conn = duckdb::Connection::open(p.path().join("dag.duckdb")).unwrap();
    let n: i64 = conn
        .query_row("select n from main.tweet_count", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 337);
    drop(conn);

    // Selecting the source selects its step; JSON logs carry the progress events.
    server.clear_requests();
    let out = p.ok(&["--log-format", "json", "build", "-s", "source:twitter+"]);
    assert_eq!(server.requests()[0].params["since_id"], "10000");
    assert!(
        out.stderr.lines().any(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| v["progress"]["event"] == "run_started")
        }),
        "{}",
        out.stderr
    );
    assert_eq!(run_results(&p)[0].0, "source.xt.twitter");

    // -q: no progress at all.
    let out = p.ok(&["-q", "build", "-s", "source:twitter+"]);
    assert!(!out.stderr.contains("Starting run"), "{}", out.stderr);
    assert_eq!(out.stderr, "", "{}", out.stderr);
}
