//! A local HTTP/1.1 server that speaks the X API v2 recent-search contract
//! (`shared/x-api.md`) for extraction tests: bearer-token check, parameter
//! validation (unknown parameters and id+time bounds are 400s), pagination on
//! `meta.next_token`, `since_id`, rate-limit headers on every response, and
//! scripted failures (429, 5xx, 401, 400, delays) served before the normal
//! answer for a given page.
//!
//! Hand-rolled on `std::net::TcpListener` (one thread per connection,
//! `Connection: close`), so it needs no async runtime.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

pub const SEARCH_PATH: &str = "/2/tweets/search/recent";

const KNOWN_PARAMS: &[&str] = &[
    "query",
    "max_results",
    "next_token",
    "pagination_token",
    "since_id",
    "until_id",
    "start_time",
    "end_time",
    "tweet.fields",
    "expansions",
    "user.fields",
    "media.fields",
    "place.fields",
    "poll.fields",
    "sort_order",
];

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub path: String,
    pub params: BTreeMap<String, String>,
    pub authorization: Option<String>,
    /// Which page (0-based) the request asked for, by its `next_token`.
    pub page: Option<usize>,
}

/// A scripted answer, served once instead of the normal one.
#[derive(Debug, Clone)]
pub struct Scripted {
    /// Only for requests for this page (0-based); `None`: the next request.
    pub page: Option<usize>,
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    /// Sleep before answering (to trigger client timeouts).
    pub delay: Duration,
}

impl Scripted {
    pub fn status(status: u16, body: impl Into<String>) -> Scripted {
        Scripted {
            page: None,
            status,
            body: body.into(),
            headers: vec![],
            delay: Duration::ZERO,
        }
    }
    pub fn on_page(mut self, page: usize) -> Scripted {
        self.page = Some(page);
        self
    }
    pub fn header(mut self, k: &str, v: impl Into<String>) -> Scripted {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    pub fn delay(mut self, d: Duration) -> Scripted {
        self.delay = d;
        self
    }
    /// `429 Too Many Requests` with `x-rate-limit-reset` `reset_in` seconds from now.
    pub fn rate_limited(reset_in: u64) -> Scripted {
        Scripted::status(
            429,
            r#"{"title":"Too Many Requests","type":"about:blank","status":429,"detail":"Too Many Requests"}"#,
        )
        .header("x-rate-limit-limit", "450")
        .header("x-rate-limit-remaining", "0")
        .header("x-rate-limit-reset", (unix_now() + reset_in).to_string())
    }
    pub fn unavailable() -> Scripted {
        Scripted::status(503, "<html><body>Service Unavailable</body></html>")
            .header("content-type", "text/html")
    }
    pub fn unauthorized() -> Scripted {
        Scripted::status(
            401,
            r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#,
        )
        .header("content-type", "application/problem+json")
    }
    pub fn invalid_request(messages: &[&str]) -> Scripted {
        let errors: Vec<Value> = messages
            .iter()
            .map(|m| json!({"parameters": {"query": ["…"]}, "message": m}))
            .collect();
        Scripted::status(
            400,
            json!({"errors": errors, "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.", "type": "https://api.twitter.com/2/problems/invalid-request"}).to_string(),
        )
    }
}

#[derive(Default)]
struct State {
    token: String,
    pages: Vec<Value>,
    script: VecDeque<Scripted>,
    /// From this page on (0-based), answer 500 forever (a hard outage).
    fail_from: Option<usize>,
    requests: Vec<SeenRequest>,
    /// Exact bodies served with status 200, in order.
    served: Vec<String>,
}

pub struct XServer {
    pub base_url: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<JoinHandle<()>>,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The next_token the server hands out for page `n` (0-based).
pub fn token_for(n: usize) -> String {
    format!("tok{n:03}b26v89c19zqg8o3fpzbn1e0ffhxjiofzw6po136rvbnul")
}

fn page_of(token: &str) -> Option<usize> {
    token.strip_prefix("tok")?.get(..3)?.parse().ok()
}

impl XServer {
    /// Start serving `pages` (bodies without `meta.next_token`; the server links them).
    pub fn start(token: &str, pages: Vec<Value>) -> XServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind x server");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State {
            token: token.to_string(),
            pages,
            ..Default::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = handle(conn, &st);
                });
            }
        });
        XServer {
            base_url: format!("http://{addr}"),
            state,
            stop,
            addr,
            thread: Some(thread),
        }
    }

    pub fn set_pages(&self, pages: Vec<Value>) {
        self.state.lock().unwrap().pages = pages;
    }
    pub fn script(&self, s: Scripted) {
        self.state.lock().unwrap().script.push_back(s);
    }
    pub fn fail_from(&self, page: Option<usize>) {
        self.state.lock().unwrap().fail_from = page;
    }
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state.lock().unwrap().requests.clone()
    }
    pub fn clear_requests(&self) {
        self.state.lock().unwrap().requests.clear();
    }
    pub fn served(&self) -> Vec<String> {
        self.state.lock().unwrap().served.clone()
    }
}

impl Drop for XServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(h, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn write_response(
    conn: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    let mut has_ct = false;
    for (k, v) in headers {
        has_ct |= k.eq_ignore_ascii_case("content-type");
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_ct {
        head.push_str("content-type: application/json; charset=utf-8\r\n");
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())?;
    conn.flush()
}

fn rate_headers() -> Vec<(String, String)> {
    vec![
        ("x-rate-limit-limit".into(), "450".into()),
        ("x-rate-limit-remaining".into(), "449".into()),
        ("x-rate-limit-reset".into(), (unix_now() + 900).to_string()),
    ]
}

fn handle(mut conn: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(());
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut params = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params.insert(pct_decode(k), pct_decode(v));
    }
    let page = match params.get("next_token") {
        None => Some(0),
        Some(t) => page_of(t),
    };
    let (status, headers, body, delay) = {
        let mut st = state.lock().unwrap();
        st.requests.push(SeenRequest {
            path: path.to_string(),
            params: params.clone(),
            authorization: authorization.clone(),
            page,
        });
        let scripted = st
            .script
            .iter()
            .position(|s| s.page.is_none() || s.page == page)
            .and_then(|i| st.script.remove(i));
        if let Some(s) = scripted {
            let mut headers = s.headers.clone();
            if !headers.iter().any(|(k, _)| k.starts_with("x-rate-limit")) {
                headers.extend(rate_headers());
            }
            (s.status, headers, s.body, s.delay)
        } else {
            let (status, body) = answer(
                &mut st,
                &method,
                path,
                &params,
                authorization.as_deref(),
                page,
            );
            if status == 200 {
                st.served.push(body.clone());
            }
            (status, rate_headers(), body, Duration::ZERO)
        }
    };
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    write_response(&mut conn, status, &headers, &body)
}

fn invalid(message: &str) -> (u16, String) {
    (
        400,
        json!({"errors": [{"parameters": {}, "message": message}], "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.", "type": "https://api.twitter.com/2/problems/invalid-request"}).to_string(),
    )
}

fn answer(
    st: &mut State,
    method: &str,
    path: &str,
    params: &BTreeMap<String, String>,
    authorization: Option<&str>,
    page: Option<usize>,
) -> (u16, String) {
    if method != "GET" || path != SEARCH_PATH {
        return (
            404,
            r#"{"title":"Not Found Error","detail":"no such endpoint"}"#.into(),
        );
    }
    if authorization != Some(format!("Bearer {}", st.token).as_str()) {
        return (
            401,
            r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#
                .into(),
        );
    }
    for k in params.keys() {
        if !KNOWN_PARAMS.contains(&k.as_str()) {
            return invalid(&format!("The query parameter [{k}] is not one of [query,start_time,end_time,since_id,until_id,max_results,next_token,pagination_token,sort_order,expansions,tweet.fields,media.fields,poll.fields,place.fields,user.fields]"));
        }
    }
    match params.get("query") {
        Some(q) if !q.trim().is_empty() => {}
        _ => return invalid("The `query` query parameter can not be empty"),
    }
    if let Some(m) = params.get("max_results") {
        match m.parse::<u32>() {
            Ok(n) if (10..=100).contains(&n) => {}
            _ => {
                return invalid(&format!(
                    "The `max_results` query parameter value [{m}] is not between 10 and 100"
                ))
            }
        }
    }
    let ids = params.contains_key("since_id") || params.contains_key("until_id");
    let times = params.contains_key("start_time") || params.contains_key("end_time");
    if ids && times {
        return invalid("since_id/until_id cannot be used with start_time/end_time");
    }
    let Some(page) = page else {
        return invalid("The `next_token` query parameter value is not valid");
    };
    if st.fail_from.is_some_and(|f| page >= f) {
        return (500, r#"{"title":"Internal Server Error"}"#.into());
    }
    // since_id: only pages with tweets newer than it. Pages are newest first.
    let since = params.get("since_id").and_then(|s| s.parse::<u64>().ok());
    let newer = |p: &Value| {
        since.is_none_or(|s| {
            p.pointer("/meta/newest_id")
                .and_then(Value::as_str)
                .and_then(|x| x.parse::<u64>().ok())
                .is_none_or(|n| n > s)
        })
    };
    let mut pages = st.pages.iter().filter(|p| newer(p));
    let Some(first) = pages.nth(page) else {
        if page == 0 {
            return (200, r#"{"meta":{"result_count":0}}"#.into());
        }
        return invalid("The `next_token` query parameter value is not valid");
    };
    let mut body = first.clone();
    if pages.next().is_some() {
        body["meta"]["next_token"] = Value::from(token_for(page + 1));
    }
    (200, body.to_string())
}

/// A page of `n` tweets with ids counting down from `newest` (newest first),
/// authors cycling through `users` user ids starting at 1000, each tweet
/// tagged `#Dragon` plus `#Tag<id % 3>`; `includes.users` holds the authors.
pub fn tweet_page(newest: u64, n: u64) -> Value {
    let mut data = Vec::new();
    let mut users: BTreeMap<u64, Value> = BTreeMap::new();
    for i in 0..n {
        let id = newest - i;
        let author = 1000 + id % 7;
        let mut t = json!({
            "id": id.to_string(),
            "edit_history_tweet_ids": [id.to_string()],
            "text": format!("post {id} about #Dragon and #Tag{}", id % 3),
            "author_id": author.to_string(),
            "created_at": format!("2026-11-20T14:{:02}:{:02}.000Z", (id / 60) % 60, id % 60),
            "conversation_id": id.to_string(),
            "lang": if id.is_multiple_of(5) { "es" } else { "en" },
            "public_metrics": {"retweet_count": id % 4, "reply_count": 0, "like_count": id % 10, "quote_count": 0, "bookmark_count": 0, "impression_count": id % 100},
            "entities": {"hashtags": [
                {"start": 0, "end": 7, "tag": "Dragon"},
                {"start": 12, "end": 17, "tag": format!("Tag{}", id % 3)}
            ]}
        });
        if id % 4 == 1 {
            t["referenced_tweets"] = json!([{"type": "replied_to", "id": (id - 1).to_string()}]);
            t["in_reply_to_user_id"] = Value::from((1000 + (id - 1) % 7).to_string());
        } else if id % 4 == 2 {
            t["referenced_tweets"] = json!([{"type": "retweeted", "id": (id - 2).to_string()}]);
        }
        data.push(t);
        users.entry(author).or_insert_with(|| {
            json!({"id": author.to_string(), "name": format!("User {author}"), "username": format!("user{author}"),
                   "created_at": "2014-10-02T18:30:05.000Z", "description": "test user", "verified": author.is_multiple_of(2),
                   "protected": false,
                   "public_metrics": {"followers_count": author, "following_count": 5, "tweet_count": 10, "listed_count": 1, "like_count": 0}})
        });
    }
    json!({
        "data": data,
        "includes": {"users": users.into_values().collect::<Vec<_>>()},
        "meta": {"newest_id": newest.to_string(), "oldest_id": (newest - n + 1).to_string(), "result_count": n}
    })
}

/// An empty page (`{"meta":{"result_count":0}}`); the server adds `next_token`
/// when pages follow it.
pub fn empty_page() -> Value {
    json!({"meta": {"result_count": 0}})
}
