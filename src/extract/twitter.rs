//! The X API v2 recent-search plugin (`plugin: x_recent_search`).
//!
//! Speaks `GET {base_url}/2/tweets/search/recent` as described in
//! `shared/x-api.md`: `max_results` up to 100, `tweet.fields`, `user.fields`,
//! `expansions=author_id`, pagination on `meta.next_token` (never on `data`),
//! `since_id` for incremental runs. Rate limits: a 429 waits until
//! `x-rate-limit-reset` + 1 s (plus jitter) unless that exceeds
//! `max_wait_seconds`, which stops the run resumably; `remaining: 0` waits
//! before the next request. 5xx and timeouts back off exponentially
//! (`max_retries`). 400/401/403 fail fast with the API's messages and a hint.
//!
//! The bearer token is read from the environment variable named by
//! `bearer_token_env`; it only ever lives in a sensitive request header and
//! is never printed, logged or written.
//!
//! Responses come from one of three transports: live HTTP, live HTTP that
//! also records every response (`--record <dir>`), or a recording replayed
//! with no network and no token (`replay: <dir>` or `SLUICE_X_REPLAY`).
//!
//! # Recording format
//! A directory with `index.json` (`{"responses": [{"file": "0001.json",
//! "status": 200, "next_token": null, "since_id": null, "headers": {…}}]}`;
//! `next_token` is the request's parameter, null for the first page) and one
//! file per response body, bytes as received. Replay answers a request with
//! the first unused entry whose `next_token` matches; with a `since_id` at or
//! past the recording's newest id it answers `{"meta":{"result_count":0}}`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    id_cmp, resolve_path, Budget, Cursor, ExtractError, Fetched, PageInfo, Plugin, PluginOptions,
};
use crate::progress::{Event, Progress};

pub const PLUGIN_NAME: &str = "x_recent_search";
pub const FAMILY: &str = "twitter";
pub const SEARCH_PATH: &str = "/2/tweets/search/recent";
/// Overrides (or, with `off`, disables) the `replay:` setting.
pub const REPLAY_ENV: &str = "SLUICE_X_REPLAY";

const DEFAULT_TWEET_FIELDS: &str = "author_id,conversation_id,created_at,entities,in_reply_to_user_id,lang,public_metrics,referenced_tweets,possibly_sensitive,reply_settings";
const DEFAULT_USER_FIELDS: &str =
    "created_at,description,public_metrics,verified,protected,username,name";
/// 429s in a row before giving up even when each wait is short.
const MAX_RATE_LIMIT_WAITS: u32 = 20;

/// A list written either as `a,b,c` or as a YAML list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum FieldList {
    Text(String),
    List(Vec<String>),
}

impl FieldList {
    fn joined(&self) -> String {
        match self {
            FieldList::Text(s) => s.split(',').map(str::trim).collect::<Vec<_>>().join(","),
            FieldList::List(v) => v.join(","),
        }
    }
}

/// The `extract:` block of an `x_recent_search` source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XConfig {
    pub plugin: String,
    /// The search rule, e.g. `#HouseOfTheDragon -is:retweet`.
    pub query: String,
    /// Posts per page, 10–100.
    #[serde(default = "default_max_results")]
    pub max_results: u64,
    /// Pages per run.
    #[serde(default)]
    pub max_pages: Option<usize>,
    /// Posts per run (the last request asks for fewer).
    #[serde(default)]
    pub max_posts: Option<u64>,
    /// Name of the environment variable holding the bearer token.
    #[serde(default = "default_token_env")]
    pub bearer_token_env: String,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    #[serde(default, rename = "tweet.fields", alias = "tweet_fields")]
    pub tweet_fields: Option<FieldList>,
    #[serde(default, rename = "user.fields", alias = "user_fields")]
    pub user_fields: Option<FieldList>,
    #[serde(default)]
    pub expansions: Option<FieldList>,
    /// A recording to serve instead of the network (relative to the project).
    #[serde(default)]
    pub replay: Option<String>,
    /// Longest rate-limit wait before stopping resumably, seconds.
    #[serde(default = "default_max_wait")]
    pub max_wait_seconds: u64,
    /// Retries of a request after 5xx or a timeout.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// First back-off delay, doubled on every retry, milliseconds.
    #[serde(default = "default_backoff_ms")]
    pub backoff_initial_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Per-request timeout, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Rejected with a hint: tokens never go into YAML.
    #[serde(default)]
    bearer_token: Option<serde::de::IgnoredAny>,
}

fn default_max_results() -> u64 {
    100
}
fn default_token_env() -> String {
    "X_BEARER_TOKEN".to_string()
}
fn default_base_url() -> String {
    "https://api.x.com".to_string()
}
fn default_max_wait() -> u64 {
    900
}
fn default_max_retries() -> u32 {
    5
}
fn default_backoff_ms() -> u64 {
    1000
}
fn default_backoff_max_ms() -> u64 {
    60_000
}
fn default_timeout() -> u64 {
    30
}

impl XConfig {
    pub fn parse(v: &Value) -> Result<XConfig, ExtractError> {
        let c: XConfig = serde_json::from_value(v.clone())
            .map_err(|e| ExtractError::Config(format!("{e} (plugin `{PLUGIN_NAME}`)")))?;
        if c.bearer_token.is_some() {
            return Err(ExtractError::Config(
                "`bearer_token` must not be written in YAML: name an environment variable with `bearer_token_env` instead".into(),
            ));
        }
        if c.query.trim().is_empty() {
            return Err(ExtractError::Config("`query` is empty".into()));
        }
        if !(10..=100).contains(&c.max_results) {
            return Err(ExtractError::Config(format!(
                "`max_results` must be between 10 and 100, got {}",
                c.max_results
            )));
        }
        if c.max_pages == Some(0) || c.max_posts == Some(0) {
            return Err(ExtractError::Config(
                "`max_pages` and `max_posts` must be at least 1".into(),
            ));
        }
        if !(c.base_url.starts_with("http://") || c.base_url.starts_with("https://")) {
            return Err(ExtractError::Config(format!(
                "`base_url` must start with http:// or https://, got `{}`",
                c.base_url
            )));
        }
        if c.bearer_token_env.trim().is_empty() {
            return Err(ExtractError::Config("`bearer_token_env` is empty".into()));
        }
        Ok(c)
    }

    /// Query parameters of a request, in a fixed order.
    pub fn params(&self, cursor: &Cursor, want: Option<u64>) -> Vec<(String, String)> {
        let max = want
            .map(|w| w.clamp(10, self.max_results))
            .unwrap_or(self.max_results);
        let mut p = vec![
            ("query".to_string(), self.query.clone()),
            ("max_results".to_string(), max.to_string()),
            (
                "tweet.fields".to_string(),
                self.tweet_fields
                    .as_ref()
                    .map(FieldList::joined)
                    .unwrap_or_else(|| DEFAULT_TWEET_FIELDS.to_string()),
            ),
            (
                "expansions".to_string(),
                self.expansions
                    .as_ref()
                    .map(FieldList::joined)
                    .unwrap_or_else(|| "author_id".to_string()),
            ),
            (
                "user.fields".to_string(),
                self.user_fields
                    .as_ref()
                    .map(FieldList::joined)
                    .unwrap_or_else(|| DEFAULT_USER_FIELDS.to_string()),
            ),
        ];
        if let Some(s) = &cursor.since_id {
            p.push(("since_id".to_string(), s.clone()));
        }
        if let Some(t) = &cursor.next_token {
            p.push(("next_token".to_string(), t.clone()));
        }
        p
    }

    fn url(&self) -> String {
        format!("{}{SEARCH_PATH}", self.base_url.trim_end_matches('/'))
    }
}

/// A response as far as the plugin cares: status, the headers that matter, body.
#[derive(Debug, Clone, Default)]
pub struct RawResponse {
    pub status: u16,
    /// Lower-case names; only `x-rate-limit-*`, `content-type`, `retry-after`.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// A request that got no response.
#[derive(Debug)]
pub enum TransportError {
    /// Timeouts and refused or reset connections: retried.
    Transient(String),
    /// Anything else: fatal.
    Fatal(ExtractError),
}

trait Transport {
    fn get(&mut self, params: &[(String, String)]) -> Result<RawResponse, TransportError>;
    fn sleeps(&self) -> bool {
        true
    }
}

const KEPT_HEADERS: &[&str] = &[
    "x-rate-limit-limit",
    "x-rate-limit-remaining",
    "x-rate-limit-reset",
    "content-type",
    "retry-after",
];

/// Live HTTP with reqwest on a private runtime.
struct Live {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    url: String,
    auth: reqwest::header::HeaderValue,
}

impl Live {
    fn new(config: &XConfig, token: &str) -> Result<Live, ExtractError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ExtractError::Config(format!("cannot start the HTTP runtime: {e}")))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_seconds.max(1)))
            .connect_timeout(Duration::from_secs(config.timeout_seconds.clamp(1, 30)))
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ExtractError::Config(format!("cannot build the HTTP client: {e}")))?;
        let mut auth =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                ExtractError::Config(format!(
                    "the token in `{}` contains characters that cannot go in an HTTP header",
                    config.bearer_token_env
                ))
            })?;
        auth.set_sensitive(true);
        Ok(Live {
            rt,
            client,
            url: config.url(),
            auth,
        })
    }
}

impl Transport for Live {
    fn get(&mut self, params: &[(String, String)]) -> Result<RawResponse, TransportError> {
        let req = self
            .client
            .get(&self.url)
            .query(params)
            .header(reqwest::header::AUTHORIZATION, self.auth.clone());
        self.rt.block_on(async {
            let resp = req.send().await.map_err(|e| {
                // reqwest errors name the URL (no secrets in it) but not the header.
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                TransportError::Transient(format!("{what}: {}", e.without_url()))
            })?;
            let status = resp.status().as_u16();
            let mut headers = BTreeMap::new();
            for name in KEPT_HEADERS {
                if let Some(v) = resp.headers().get(*name).and_then(|v| v.to_str().ok()) {
                    headers.insert((*name).to_string(), v.to_string());
                }
            }
            let body = resp.bytes().await.map_err(|e| {
                TransportError::Transient(format!("reading the body failed: {}", e.without_url()))
            })?;
            Ok(RawResponse {
                status,
                headers,
                body: body.to_vec(),
            })
        })
    }
}

/// One recorded response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedResponse {
    pub file: String,
    pub status: u16,
    /// The request's `next_token` (null for a first page).
    pub next_token: Option<String>,
    /// The request's `since_id`, for information.
    #[serde(default)]
    pub since_id: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// `index.json` of a recording.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordingIndex {
    #[serde(default)]
    pub description: Option<String>,
    pub responses: Vec<RecordedResponse>,
}

/// Live HTTP that also writes every response into a recording directory.
struct Recorder {
    live: Live,
    dir: PathBuf,
    index: RecordingIndex,
}

impl Recorder {
    fn new(live: Live, dir: PathBuf) -> Result<Recorder, ExtractError> {
        let rec = |e: std::io::Error| ExtractError::Record(format!("{}: {e}", dir.display()));
        fs_err::create_dir_all(&dir).map_err(rec)?;
        let index = match fs_err::read(dir.join("index.json")) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                ExtractError::Record(format!("{}: {e}", dir.join("index.json").display()))
            })?,
            Err(_) => RecordingIndex::default(),
        };
        Ok(Recorder { live, dir, index })
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl Transport for Recorder {
    fn get(&mut self, params: &[(String, String)]) -> Result<RawResponse, TransportError> {
        let resp = self.live.get(params)?;
        let file = format!("{:04}.json", self.index.responses.len() + 1);
        let fatal = |e: String| TransportError::Fatal(ExtractError::Record(e));
        crate::artifacts::write_atomic(&self.dir.join(&file), &resp.body)
            .map_err(|e| fatal(format!("{file}: {e}")))?;
        self.index.responses.push(RecordedResponse {
            file,
            status: resp.status,
            next_token: param(params, "next_token").map(str::to_string),
            since_id: param(params, "since_id").map(str::to_string),
            headers: resp.headers.clone(),
        });
        let bytes = serde_json::to_vec_pretty(&self.index).map_err(|e| fatal(e.to_string()))?;
        crate::artifacts::write_atomic(&self.dir.join("index.json"), &bytes)
            .map_err(|e| fatal(format!("index.json: {e}")))?;
        Ok(resp)
    }
}

/// Responses served from a recording: no network, no token, no waiting.
struct Replay {
    dir: PathBuf,
    index: RecordingIndex,
    used: Vec<bool>,
    /// Newest id in the recording, for `since_id` requests; found on the
    /// first such request (a first extraction never needs it).
    newest: Option<Option<String>>,
}

impl Replay {
    fn open(dir: PathBuf) -> Result<Replay, ExtractError> {
        let path = dir.join("index.json");
        let bytes = fs_err::read(&path).map_err(|e| ExtractError::Replay(e.to_string()))?;
        let index: RecordingIndex = serde_json::from_slice(&bytes)
            .map_err(|e| ExtractError::Replay(format!("{}: {e}", path.display())))?;
        Ok(Replay {
            used: vec![false; index.responses.len()],
            dir,
            index,
            newest: None,
        })
    }

    fn newest(&mut self) -> Option<&String> {
        let (dir, index) = (&self.dir, &self.index);
        self.newest
            .get_or_insert_with(|| {
                let pages = index.responses.iter().filter(|r| r.status == 200);
                pages.fold(None, |newest, r| {
                    let info = fs_err::read(dir.join(&r.file))
                        .ok()
                        .and_then(|b| page_info(&b).ok());
                    super::max_id(newest, info.and_then(|i| i.newest_id).as_ref())
                })
            })
            .as_ref()
    }
}

impl Transport for Replay {
    fn get(&mut self, params: &[(String, String)]) -> Result<RawResponse, TransportError> {
        let token = param(params, "next_token");
        if token.is_none() {
            let since = param(params, "since_id");
            if let (Some(since), Some(newest)) = (since, since.and_then(|_| self.newest())) {
                if id_cmp(newest, since).is_le() {
                    return Ok(RawResponse {
                        status: 200,
                        headers: BTreeMap::new(),
                        body: br#"{"meta":{"result_count":0}}"#.to_vec(),
                    });
                }
            }
        }
        let pos = self
            .index
            .responses
            .iter()
            .enumerate()
            .position(|(i, r)| !self.used[i] && r.next_token.as_deref() == token)
            .or_else(|| {
                // Replaying twice: serve the last recorded answer for the token again.
                self.index
                    .responses
                    .iter()
                    .rposition(|r| r.next_token.as_deref() == token)
            });
        let Some(i) = pos else {
            return Err(TransportError::Fatal(ExtractError::Replay(format!(
                "the recording in {} has no response for next_token={}",
                self.dir.display(),
                token.unwrap_or("<none>")
            ))));
        };
        self.used[i] = true;
        let r = &self.index.responses[i];
        let body = fs_err::read(self.dir.join(&r.file))
            .map_err(|e| TransportError::Fatal(ExtractError::Replay(e.to_string())))?;
        Ok(RawResponse {
            status: r.status,
            headers: r.headers.clone(),
            body,
        })
    }

    fn sleeps(&self) -> bool {
        false
    }
}

/// Parse the pagination facts out of a 200 body.
pub fn page_info(body: &[u8]) -> Result<PageInfo, ExtractError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ExtractError::BadResponse(format!("the body is not JSON: {e}")))?;
    let meta = v
        .get("meta")
        .and_then(Value::as_object)
        .ok_or_else(|| ExtractError::BadResponse("the response has no `meta` object".into()))?;
    let s = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_string);
    let data_len = v.get("data").and_then(Value::as_array).map(Vec::len);
    Ok(PageInfo {
        next_token: s("next_token").filter(|t| !t.is_empty()),
        newest_id: s("newest_id"),
        oldest_id: s("oldest_id"),
        result_count: meta
            .get("result_count")
            .and_then(Value::as_u64)
            .or(data_len.map(|n| n as u64))
            .unwrap_or(0),
        partial_errors: v
            .get("errors")
            .and_then(Value::as_array)
            .map_or(0, |a| a.len() as u64),
    })
}

/// The API's messages in an error body: `errors[].message`, `detail`, `title`.
pub fn api_messages(body: &[u8]) -> (String, Vec<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        return (
            String::new(),
            if text.is_empty() {
                vec![]
            } else {
                vec![text.chars().take(300).collect()]
            },
        );
    };
    let title = v
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut msgs = Vec::new();
    for e in v
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(m) = e.get("message").and_then(Value::as_str) {
            msgs.push(m.to_string());
        }
    }
    if let Some(d) = v.get("detail").and_then(Value::as_str) {
        if !msgs.iter().any(|m| m == d) {
            msgs.push(d.to_string());
        }
    }
    (title, msgs)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Up to `max_ms` of jitter.
fn jitter(max_ms: u64) -> Duration {
    let b = uuid::Uuid::new_v4().as_u128() as u64;
    Duration::from_millis(if max_ms == 0 { 0 } else { b % max_ms })
}

/// The X API v2 recent-search plugin.
pub struct XRecentSearch {
    config: XConfig,
    transport: Option<Box<dyn Transport>>,
    replay_dir: Option<String>,
    /// When the last response said `remaining: 0`, the reset time.
    exhausted_until: Option<u64>,
}

impl XRecentSearch {
    pub fn new(extract: &Value, opts: &PluginOptions) -> Result<XRecentSearch, ExtractError> {
        let config = XConfig::parse(extract)?;
        let replay = match std::env::var(REPLAY_ENV) {
            Ok(v) if matches!(v.trim(), "0" | "off" | "false" | "no") => None,
            Ok(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
            _ => config.replay.clone(),
        };
        let mut plugin = XRecentSearch {
            config,
            transport: None,
            replay_dir: None,
            exhausted_until: None,
        };
        if let Some(dir) = replay {
            if opts.record.is_some() {
                return Err(ExtractError::Config(format!(
                    "cannot --record while replaying `{dir}` (set {REPLAY_ENV}=off to call the API)"
                )));
            }
            let path = resolve_path(&opts.project_dir, &dir);
            if !opts.dry_run {
                plugin.transport = Some(Box::new(Replay::open(path)?));
            }
            plugin.replay_dir = Some(dir);
            return Ok(plugin);
        }
        if opts.dry_run {
            return Ok(plugin);
        }
        let var = &plugin.config.bearer_token_env;
        let token = std::env::var(var).unwrap_or_default();
        if token.trim().is_empty() {
            return Err(ExtractError::MissingToken { var: var.clone() });
        }
        let live = Live::new(&plugin.config, token.trim())?;
        plugin.transport = Some(match &opts.record {
            Some(dir) => Box::new(Recorder::new(live, dir.clone())?),
            None => Box::new(live),
        });
        Ok(plugin)
    }

    pub fn config(&self) -> &XConfig {
        &self.config
    }

    fn sleep(&self, d: Duration) {
        if self.transport.as_ref().is_some_and(|t| t.sleeps()) {
            std::thread::sleep(d);
        }
    }

    /// Wait until a reset time, or stop when that is longer than allowed.
    fn wait_for_reset(
        &self,
        reset: Option<u64>,
        progress: &dyn Progress,
        why: &str,
    ) -> Result<(), ExtractError> {
        let now = unix_now();
        let wait_secs = reset.map_or(60, |r| r.saturating_sub(now)) + 1;
        if wait_secs > self.config.max_wait_seconds {
            return Err(ExtractError::RateLimited {
                wait_secs,
                max_wait_secs: self.config.max_wait_seconds,
            });
        }
        if self.transport.as_ref().is_some_and(|t| t.sleeps()) {
            progress.emit(Event::RateLimitWait {
                reason: why.to_string(),
                seconds: wait_secs,
            });
        }
        self.sleep(Duration::from_secs(wait_secs) + jitter(500));
        Ok(())
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .config
            .backoff_initial_ms
            .saturating_mul(1u64 << (attempt.saturating_sub(1)).min(20));
        Duration::from_millis(base.min(self.config.backoff_max_ms))
            + jitter(self.config.backoff_initial_ms / 4)
    }

    /// Back off after the `failures`-th transient failure, saying so.
    fn retry_after(&self, reason: String, failures: u32, progress: &dyn Progress) {
        let delay = self.backoff(failures);
        progress.emit(Event::Retry {
            reason,
            delay,
            attempt: failures + 1,
            attempts: self.config.max_retries + 1,
        });
        self.sleep(delay);
    }

    fn token_hint(&self) -> String {
        format!(
            "the bearer token comes from the environment variable `{}`: export an app-only token from the X developer portal there, or set `replay:` to run without the API",
            self.config.bearer_token_env
        )
    }
}

impl Plugin for XRecentSearch {
    fn name(&self) -> &'static str {
        PLUGIN_NAME
    }

    fn family(&self) -> &'static str {
        FAMILY
    }

    fn budget(&self) -> Budget {
        Budget {
            max_pages: self.config.max_pages,
            max_posts: self.config.max_posts,
        }
    }

    fn request_summary(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("url".into(), Value::from(self.config.url()));
        for (k, v) in self.config.params(&Cursor::default(), None) {
            m.insert(k, Value::from(v));
        }
        Value::Object(m)
    }

    fn describe_request(&self, cursor: &Cursor, want: Option<u64>) -> String {
        let params = self.config.params(cursor, want);
        let query = params
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let auth = match &self.replay_dir {
            Some(d) => format!("# replayed from {d}, no request is sent"),
            None => format!("# Authorization: Bearer ${}", self.config.bearer_token_env),
        };
        format!("GET {}?{query}\n{auth}", self.config.url())
    }

    fn replaying(&self) -> Option<String> {
        self.replay_dir.clone()
    }

    fn inspect(&self, body: &[u8]) -> Result<PageInfo, ExtractError> {
        page_info(body)
    }

    fn fetch(
        &mut self,
        cursor: &Cursor,
        want: Option<u64>,
        progress: &dyn Progress,
    ) -> Result<Fetched, ExtractError> {
        if let Some(reset) = self.exhausted_until.take() {
            if reset >= unix_now() {
                self.wait_for_reset(Some(reset), progress, "no requests left in this window")?;
            }
        }
        let params = self.config.params(cursor, want);
        let mut failures = 0u32;
        let mut rate_waits = 0u32;
        loop {
            let Some(transport) = self.transport.as_mut() else {
                return Err(ExtractError::Config(
                    "this plugin was built for a dry run".into(),
                ));
            };
            let resp = match transport.get(&params) {
                Ok(r) => r,
                Err(TransportError::Fatal(e)) => return Err(e),
                Err(TransportError::Transient(msg)) => {
                    failures += 1;
                    if failures > self.config.max_retries {
                        return Err(ExtractError::Unavailable(format!(
                            "{msg} ({failures} attempts)"
                        )));
                    }
                    self.retry_after(msg, failures, progress);
                    continue;
                }
            };
            let reset = resp
                .headers
                .get("x-rate-limit-reset")
                .and_then(|v| v.trim().parse::<u64>().ok());
            match resp.status {
                200 => {
                    let info = page_info(&resp.body)?;
                    let remaining = resp
                        .headers
                        .get("x-rate-limit-remaining")
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    if remaining == Some(0) {
                        self.exhausted_until = reset;
                    }
                    return Ok(Fetched {
                        body: resp.body,
                        info,
                    });
                }
                429 => {
                    rate_waits += 1;
                    if rate_waits > MAX_RATE_LIMIT_WAITS {
                        return Err(ExtractError::Unavailable(format!(
                            "still rate limited after {MAX_RATE_LIMIT_WAITS} waits"
                        )));
                    }
                    self.wait_for_reset(reset, progress, "rate limited (HTTP 429)")?;
                }
                500 | 502 | 503 | 504 => {
                    failures += 1;
                    if failures > self.config.max_retries {
                        return Err(ExtractError::Unavailable(format!(
                            "HTTP {} after {failures} attempts",
                            resp.status
                        )));
                    }
                    self.retry_after(
                        format!("HTTP {} from the API", resp.status),
                        failures,
                        progress,
                    );
                }
                status @ (400 | 401 | 403) => {
                    let (title, messages) = api_messages(&resp.body);
                    let hint = match status {
                        400 => "fix the request in the source's `extract:` block (`query` syntax and length depend on the access tier; ids and times cannot be combined)".to_string(),
                        401 => self.token_hint(),
                        _ => format!(
                            "the token was accepted but may not use recent search: check that the app belongs to a project with access to /2/tweets/search/recent on your tier; {}",
                            self.token_hint()
                        ),
                    };
                    return Err(ExtractError::Rejected {
                        status,
                        title: if title.is_empty() {
                            default_title(status).to_string()
                        } else {
                            title
                        },
                        messages,
                        hint,
                    });
                }
                other => {
                    let (title, messages) = api_messages(&resp.body);
                    return Err(ExtractError::BadResponse(format!(
                        "HTTP {other} {title} {}",
                        messages.join("; ")
                    )));
                }
            }
        }
    }
}

fn default_title(status: u16) -> &'static str {
    match status {
        400 => "Invalid Request",
        401 => "Unauthorized",
        _ => "Forbidden",
    }
}

/// Percent-encode a query value (RFC 3986 unreserved characters kept).
fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_defaults_and_errors() {
        let c = XConfig::parse(&json!({"plugin": "x_recent_search", "query": "#a"})).unwrap();
        assert_eq!(c.max_results, 100);
        assert_eq!(c.bearer_token_env, "X_BEARER_TOKEN");
        let p = c.params(
            &Cursor {
                since_id: Some("5".into()),
                next_token: Some("t".into()),
            },
            Some(25),
        );
        assert_eq!(p[1], ("max_results".to_string(), "25".to_string()));
        assert_eq!(p[3], ("expansions".to_string(), "author_id".to_string()));
        assert_eq!(p.last().unwrap().0, "next_token");
        for bad in [
            json!({"plugin": "x_recent_search", "query": "#a", "bearer_token": "s3cret"}),
            json!({"plugin": "x_recent_search", "query": "#a", "max_results": 500}),
            json!({"plugin": "x_recent_search", "query": "#a", "max_page": 5}),
            json!({"plugin": "x_recent_search", "query": ""}),
        ] {
            let e = XConfig::parse(&bad).unwrap_err().to_string();
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn page_info_loops_on_next_token_not_data() {
        let i = page_info(br#"{"meta":{"result_count":0,"next_token":"abc"}}"#).unwrap();
        assert_eq!(i.next_token.as_deref(), Some("abc"));
        assert_eq!(i.result_count, 0);
        let i = page_info(br#"{"meta":{"result_count":0}}"#).unwrap();
        assert_eq!(i.next_token, None);
        assert!(page_info(b"{}").is_err());
    }

    #[test]
    fn api_messages_reads_errors_and_detail() {
        let (t, m) = api_messages(
            br#"{"errors":[{"parameters":{"query":["x"]},"message":"There were errors processing your request: query is too long"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"about:blank"}"#,
        );
        assert_eq!(t, "Invalid Request");
        assert_eq!(m.len(), 2);
        assert!(m[0].contains("too long"));
        let (_, m) = api_messages(b"<html>bad gateway</html>");
        assert_eq!(m, vec!["<html>bad gateway</html>".to_string()]);
    }

    #[test]
    fn urlencode_keeps_commas() {
        assert_eq!(urlencode("#a -is:retweet"), "%23a%20-is%3Aretweet");
        assert_eq!(urlencode("a,b"), "a,b");
    }
}
