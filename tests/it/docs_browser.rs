//! The docs site in a real browser: headless Chromium driven over the DevTools
//! protocol (CDP), from `file://` and through `docs_site::serve`.
//!
//! Each test generates a site from a small synthetic project (a source → two
//! staging models → a mart, columns, tests, column lineage and a description
//! full of HTML), opens it, and checks what a person would: the graph shows the
//! right nodes, clicking a node opens its page, search finds a column, the evil
//! description is inert text, and the page neither logs errors nor makes a single
//! request beyond its own file or the local server. Screenshots go to
//! `<target>/test-artifacts/`.
//!
//! Chromium is required, never skipped: without `/usr/bin/chromium` these tests
//! fail with the install command.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice::docs_site::{render_site, serve, SiteInput};
use tungstenite::{Message, WebSocket};

const CHROMIUM: &str = "/usr/bin/chromium";
const TIMEOUT: Duration = Duration::from_secs(30);
const EVIL: &str = "Evil <script>alert(1)</script> <img src=x onerror=\"window.__pwned=1\"> \
                    <b onmouseover=\"window.__pwned=2\">hover</b> [click](javascript:window.__pwned=3) **bold**";

// ---------------------------------------------------------------- fixture

fn column(name: &str, description: &str) -> (String, Value) {
    (
        name.to_owned(),
        json!({"name": name, "description": description}),
    )
}

fn columns(list: &[(&str, &str)]) -> Value {
    Value::Object(list.iter().map(|(n, d)| column(n, d)).collect())
}

/// a source → stg_orders, stg_customers → mart_orders, plus two tests.
fn manifest() -> Value {
    json!({
        "metadata": {"project_name": "shop"},
        "sources": {
            "source.shop.raw.orders": {
                "name": "orders", "resource_type": "source", "source_name": "raw",
                "loader": "sluice-extract", "description": "Raw orders, loaded hourly.",
                "columns": columns(&[("id", "Order id"), ("customer_id", ""), ("customer_email", ""), ("amount", "")]),
                "freshness": {"warn_after": {"count": 12, "period": "hour"}, "error_after": {"count": 1, "period": "day"}},
                "loaded_at_field": "_loaded_at",
                "extract": {"plugin": "postgres", "host": "db.internal", "password": "********"},
                "original_file_path": "models/sources.yml"
            }
        },
        "nodes": {
            "model.shop.stg_orders": {
                "name": "stg_orders", "resource_type": "model", "description": EVIL,
                "columns": columns(&[("order_id", "Primary key"), ("customer_id", ""), ("amount", "Order amount in cents")]),
                "config": {"materialized": "view"}, "tags": ["staging"],
                "depends_on": {"nodes": ["source.shop.raw.orders"]},
                "raw_code": "select id as order_id, customer_id, amount\nfrom {{ source('raw', 'orders') }}\nwhere amount > 0 -- no refunds",
                "compiled_code": "select id as order_id, customer_id, amount\nfrom raw.orders\nwhere amount > 0 -- no refunds",
                "original_file_path": "models/staging/stg_orders.sql"
            },
            "model.shop.stg_customers": {
                "name": "stg_customers", "resource_type": "model", "description": "One row per customer.",
                "columns": columns(&[("customer_id", ""), ("customer_email", "Where receipts go")]),
                "config": {"materialized": "view"},
                "depends_on": {"nodes": ["source.shop.raw.orders"]},
                "raw_code": "select distinct customer_id, customer_email from {{ source('raw', 'orders') }}",
                "original_file_path": "models/staging/stg_customers.sql"
            },
            "model.shop.mart_orders": {
                "name": "mart_orders", "resource_type": "model", "description": "Orders with customer e-mail.",
                "columns": columns(&[("order_id", ""), ("customer_id", ""), ("customer_email", ""), ("amount_usd", ""), ("note", "")]),
                "config": {"materialized": "table"},
                "depends_on": {"nodes": ["model.shop.stg_orders", "model.shop.stg_customers"]},
                "raw_code": "select o.order_id, o.customer_id, c.customer_email, o.amount / 100.0 as amount_usd, my_udf(o.amount) as note\nfrom {{ ref('stg_orders') }} o join {{ ref('stg_customers') }} c using (customer_id)",
                "original_file_path": "models/marts/mart_orders.sql"
            },
            "test.shop.not_null_stg_orders_order_id.1a": {
                "name": "not_null_stg_orders_order_id", "resource_type": "test",
                "column_name": "order_id", "test_metadata": {"name": "not_null", "kwargs": {"column_name": "order_id"}},
                "attached_node": "model.shop.stg_orders",
                "depends_on": {"nodes": ["model.shop.stg_orders"]},
                "raw_code": "{{ test_not_null(**_dbt_generic_test_kwargs) }}"
            },
            "test.shop.unique_mart_orders_order_id.2b": {
                "name": "unique_mart_orders_order_id", "resource_type": "test",
                "column_name": "order_id", "test_metadata": {"name": "unique", "kwargs": {"column_name": "order_id"}},
                "attached_node": "model.shop.mart_orders",
                "depends_on": {"nodes": ["model.shop.mart_orders"]}
            }
        }
    })
}

fn catalog() -> Value {
    json!({"nodes": {"model.shop.mart_orders": {"columns": {
        "order_id": {"name": "order_id", "type": "INTEGER", "index": 1},
        "customer_id": {"name": "customer_id", "type": "INTEGER", "index": 2},
        "customer_email": {"name": "customer_email", "type": "VARCHAR", "index": 3},
        "amount_usd": {"name": "amount_usd", "type": "DOUBLE", "index": 4},
        "note": {"name": "note", "type": "VARCHAR", "index": 5}
    }}}})
}

fn run_results() -> Value {
    json!({"results": [
        {"unique_id": "model.shop.mart_orders", "status": "success", "execution_time": 0.42, "message": "OK"},
        {"unique_id": "test.shop.unique_mart_orders_order_id.2b", "status": "pass", "execution_time": 0.01, "message": null}
    ]})
}

fn up(node: &str, column: &str) -> Value {
    json!({"node": node, "column": column})
}

fn lineage() -> Value {
    let raw = "source.shop.raw.orders";
    json!({
        "model.shop.stg_orders": {
            "order_id": {"upstream": [up(raw, "id")]},
            "customer_id": {"upstream": [up(raw, "customer_id")]},
            "amount": {"upstream": [up(raw, "amount")]}
        },
        "model.shop.stg_customers": {
            "customer_id": {"upstream": [up(raw, "customer_id")]},
            "customer_email": {"upstream": [up(raw, "customer_email")]}
        },
        "model.shop.mart_orders": {
            "order_id": {"upstream": [up("model.shop.stg_orders", "order_id")]},
            "customer_id": {"upstream": [up("model.shop.stg_orders", "customer_id"), up("model.shop.stg_customers", "customer_id")]},
            "customer_email": {"upstream": [up("model.shop.stg_customers", "customer_email")]},
            "amount_usd": {"upstream": [up("model.shop.stg_orders", "amount")]},
            "note": {"untraced": "calls the unknown function my_udf"}
        }
    })
}

/// Writes the generated `index.html` into a fresh temp dir.
fn write_site() -> tempfile::TempDir {
    let (manifest, catalog, runs, lineage) = (manifest(), catalog(), run_results(), lineage());
    let overview = "# Shop analytics\n\nThe **shop** project. <script>window.__pwned = 4</script>";
    let input = SiteInput {
        manifest: &manifest,
        catalog: Some(&catalog),
        run_results: Some(&runs),
        lineage: Some(&lineage),
        overview_markdown: Some(overview),
    };
    let page = render_site(&input).expect("render_site");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("index.html"), page).expect("write index.html");
    dir
}

// ---------------------------------------------------------------- CDP client

/// A CDP connection to the browser endpoint with one attached page session.
struct Cdp {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    session: Option<String>,
    /// Every event received so far, in order.
    events: Vec<Value>,
}

impl Cdp {
    fn connect(ws_url: &str) -> Cdp {
        let host_port = ws_url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .expect("ws url host");
        let stream = TcpStream::connect(host_port).expect("connect to DevTools");
        let (ws, _) = tungstenite::client(ws_url, stream).expect("DevTools websocket handshake");
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        Cdp {
            ws,
            next_id: 0,
            session: None,
            events: Vec::new(),
        }
    }

    /// Reads one message if any arrives within the socket timeout.
    fn read_message(&mut self) -> Option<Value> {
        match self.ws.read() {
            Ok(Message::Text(text)) => Some(serde_json::from_str(text.as_str()).expect("CDP json")),
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("DevTools connection failed: {e}"),
        }
    }

    /// Sends a command and waits for its result; CDP errors fail the test.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            msg["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .expect("send CDP command");
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            let Some(msg) = self.read_message() else {
                continue;
            };
            if msg.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(err) = msg.get("error") {
                    panic!("CDP {method} failed: {err}");
                }
                return msg["result"].clone();
            }
            if msg.get("method").is_some() {
                self.events.push(msg);
            }
        }
        panic!("CDP {method} timed out");
    }

    /// Reads pending events for a little while.
    fn pump(&mut self, for_ms: u64) {
        let deadline = Instant::now() + Duration::from_millis(for_ms);
        while Instant::now() < deadline {
            if let Some(msg) = self.read_message() {
                if msg.get("method").is_some() {
                    self.events.push(msg);
                }
            }
        }
    }

    /// Evaluates an expression in the page; `None` if it threw (e.g. mid-navigation).
    fn try_eval(&mut self, expression: &str) -> Option<Value> {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if result.get("exceptionDetails").is_some() {
            return None;
        }
        Some(
            result["result"]
                .get("value")
                .cloned()
                .unwrap_or(Value::Null),
        )
    }

    fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .unwrap_or_else(|| panic!("page threw evaluating: {expression}"))
    }

    /// Polls until the expression is truthy; returns its value.
    fn wait_for(&mut self, expression: &str) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.try_eval(expression) {
                Some(v) if truthy(&v) => return v,
                _ if Instant::now() > deadline => panic!("timed out waiting for: {expression}"),
                _ => thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// A real left click (press + release) at viewport coordinates.
    fn click_at(&mut self, x: f64, y: f64) {
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": x, "y": y}),
        );
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "buttons": 1, "clickCount": 1}),
            );
        }
    }

    /// Clicks the centre of the element matched by a CSS selector.
    fn click(&mut self, selector: &str) {
        let rect = self.wait_for(&format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return null; \
             e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
             return {{x: r.x + r.width / 2, y: r.y + r.height / 2}}; }})()",
            sel = json!(selector)
        ));
        let (x, y) = (
            rect["x"].as_f64().unwrap_or(0.0),
            rect["y"].as_f64().unwrap_or(0.0),
        );
        self.click_at(x, y);
    }

    fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
        std::fs::create_dir_all(path.parent().expect("artifact dir")).expect("create artifact dir");
        std::fs::write(path, png).expect("write screenshot");
        println!("screenshot: {}", path.display());
    }

    fn events_named<'a>(&'a self, method: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events.iter().filter(move |e| e["method"] == method)
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// Standard base64 (screenshots), without a dependency.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("bad base64 byte {c}"),
    };
    let bytes: Vec<u8> = text
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= u32::from(value(c)) << (18 - 6 * i);
        }
        let [_, a, b, c] = acc.to_be_bytes();
        out.extend_from_slice(&[a, b, c][..chunk.len() - 1]);
    }
    out
}

// ---------------------------------------------------------------- browser

/// A headless Chromium with a throw-away profile, closed on drop.
struct Browser {
    child: Child,
    cdp: Cdp,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch() -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} not found: install Debian's chromium: apt-get install -y chromium"
        );
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,860",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--remote-debugging-port=0")
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let ws_url = devtools_url(&mut child);
        let mut cdp = Cdp::connect(&ws_url);
        attach_page(&mut cdp);
        Browser {
            child,
            cdp,
            _profile: profile,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.cdp.session = None;
        let msg = json!({"id": 999_999, "method": "Browser.close", "params": {}});
        let _ = self.cdp.ws.send(Message::Text(msg.to_string().into()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `DevTools listening on ws://…` from stderr (then keeps draining it).
fn devtools_url(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("chromium stderr");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.split("DevTools listening on ").nth(1) {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    rx.recv_timeout(TIMEOUT)
        .expect("chromium did not print 'DevTools listening on ws://...' within 30 s")
}

/// Opens a fresh page target, attaches a flat session and enables the domains we watch.
fn attach_page(cdp: &mut Cdp) {
    let target = cdp.call("Target.createTarget", json!({"url": "about:blank"}));
    let attached = cdp.call(
        "Target.attachToTarget",
        json!({"targetId": target["targetId"], "flatten": true}),
    );
    cdp.session = Some(
        attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned(),
    );
    for domain in [
        "Page.enable",
        "Runtime.enable",
        "Network.enable",
        "Log.enable",
    ] {
        cdp.call(domain, json!({}));
    }
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1280, "height": 860, "deviceScaleFactor": 1, "mobile": false}),
    );
}

fn artifact(name: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent()
        .unwrap_or(tmp)
        .join("test-artifacts")
        .join(name)
}

// ---------------------------------------------------------------- scenario

/// Loads `url`, waits for the viewer, and returns the milliseconds it took.
fn open(cdp: &mut Cdp, url: &str) -> u128 {
    let start = Instant::now();
    cdp.call("Page.navigate", json!({"url": url}));
    cdp.wait_for("document.readyState === 'complete' && document.body.dataset.ready === '1'");
    start.elapsed().as_millis()
}

fn go(cdp: &mut Cdp, hash: &str) {
    cdp.eval(&format!("location.hash = {}", json!(hash)));
}

fn check_graph(cdp: &mut Cdp) {
    go(cdp, "#!/graph");
    let count = cdp.wait_for("document.querySelector('#graph')?.dataset.nodeCount");
    assert_eq!(count, json!("4"), "source + 3 models, tests not drawn");
    assert_eq!(
        cdp.eval("document.querySelectorAll('#graph svg g.node').length"),
        json!(4)
    );
    assert_eq!(
        cdp.eval("document.querySelectorAll('#graph svg path.edge').length"),
        json!(4)
    );
    assert_eq!(
        cdp.eval("document.querySelector('#graph').dataset.renderer"),
        json!("svg")
    );
    // Wheel zoom changes the viewport transform.
    let before = cdp.eval("document.querySelector('#graph g.viewport').getAttribute('transform')");
    cdp.call(
        "Input.dispatchMouseEvent",
        json!({"type": "mouseWheel", "x": 700, "y": 400, "deltaX": 0, "deltaY": -240}),
    );
    cdp.pump(100);
    let after = cdp.eval("document.querySelector('#graph g.viewport').getAttribute('transform')");
    assert_ne!(before, after, "wheel zoom did nothing");
    // Re-open the graph (fitted again) before clicking.
    go(cdp, "#!/overview");
    go(cdp, "#!/graph");
    cdp.wait_for("document.querySelectorAll('#graph g.node').length === 4");
    // A real click on the mart opens its page.
    cdp.click("#graph g.node[data-label='mart_orders']");
    cdp.wait_for("location.hash === '#!/model/model.shop.mart_orders'");
    let heading = cdp.wait_for("document.querySelector('h1[data-node-id]')?.dataset.nodeId");
    assert_eq!(heading, json!("model.shop.mart_orders"));
    let page_text = cdp.eval("document.getElementById('content').innerText");
    let text = page_text.as_str().unwrap_or("");
    for expected in [
        "VARCHAR",
        "customer_email",
        "unique",
        "success",
        "stg_customers",
        "Referenced by",
    ] {
        assert!(
            text.contains(expected),
            "mart page lacks {expected:?}:\n{text}"
        );
    }
}

fn check_focused_and_column_views(cdp: &mut Cdp) {
    go(cdp, "#!/graph/model.shop.stg_customers/1");
    cdp.wait_for("document.querySelector('#graph-depth') && document.querySelector('#graph').dataset.nodeCount === '3'");
    go(cdp, "#!/column/model.shop.mart_orders/customer_email");
    cdp.wait_for("document.querySelector('h1[data-column-lineage]')");
    assert_eq!(
        cdp.eval("document.querySelector('#graph').dataset.nodeCount"),
        json!("3")
    );
    assert_eq!(
        cdp.eval("document.querySelectorAll('table.lineage-upstream tr').length - 1"),
        json!(2)
    );
    let labels = cdp.eval("[...document.querySelectorAll('#graph g.node')].map(g => g.dataset.label).sort().join(',')");
    assert_eq!(
        labels,
        json!("mart_orders.customer_email,raw.orders.customer_email,stg_customers.customer_email")
    );
    // Untraced columns say why.
    go(cdp, "#!/column/model.shop.mart_orders/note");
    let note = cdp.wait_for("document.querySelector('.untraced-note:not(:empty)')?.textContent");
    assert!(note.as_str().unwrap_or("").contains("my_udf"), "{note}");
}

fn check_search(cdp: &mut Cdp) {
    go(cdp, "#!/overview");
    cdp.eval("document.getElementById('search').focus()");
    cdp.call("Input.insertText", json!({"text": "customer_email"}));
    let found = cdp.wait_for(
        "[...document.querySelectorAll('#search-results a.result')]\
         .find(a => a.dataset.where === 'column customer_email' && a.dataset.id === 'model.shop.stg_customers')?.dataset.id",
    );
    assert_eq!(found, json!("model.shop.stg_customers"));
    cdp.click("#search-results a.result[data-id='model.shop.stg_customers']");
    cdp.wait_for("location.hash === '#!/model/model.shop.stg_customers'");
    // SQL is searchable too.
    cdp.eval("const s = document.getElementById('search'); s.value = ''; s.focus()");
    cdp.call("Input.insertText", json!({"text": "no refunds"}));
    let sql_hit = cdp.wait_for(
        "document.querySelector('#search-results a.result[data-where=\"SQL\"]')?.dataset.id",
    );
    assert_eq!(sql_hit, json!("model.shop.stg_orders"));
}

fn check_evil_description(cdp: &mut Cdp) {
    go(cdp, "#!/model/model.shop.stg_orders");
    cdp.wait_for(
        "document.querySelector('h1[data-node-id]')?.dataset.nodeId === 'model.shop.stg_orders'",
    );
    let text = cdp.eval("document.querySelector('#content .desc').textContent");
    let text = text.as_str().unwrap_or("");
    assert!(
        text.contains("<script>alert(1)</script>"),
        "evil markup should show as text: {text}"
    );
    assert!(text.contains("<img src=x"), "{text}");
    assert_eq!(cdp.eval("document.querySelectorAll('#content script, #content img, #content [onmouseover], #content [onerror]').length"), json!(0));
    assert_eq!(
        cdp.eval("document.querySelector('#content .desc strong')?.textContent"),
        json!("bold")
    );
    cdp.click("#content .desc a");
    cdp.click("#content .desc");
    cdp.pump(200);
    assert_eq!(
        cdp.eval("typeof window.__pwned"),
        json!("undefined"),
        "injected code ran"
    );
    assert_eq!(
        cdp.events_named("Page.javascriptDialogOpening").count(),
        0,
        "an alert opened"
    );
}

fn check_source_page(cdp: &mut Cdp) {
    go(cdp, "#!/source/source.shop.raw.orders");
    cdp.wait_for(
        "document.querySelector('h1[data-node-id]')?.dataset.nodeId === 'source.shop.raw.orders'",
    );
    let text = cdp.eval("document.getElementById('content').innerText");
    let text = text.as_str().unwrap_or("");
    for expected in [
        "postgres",
        "********",
        "12 hours",
        "1 day",
        "_loaded_at",
        "sluice-extract",
    ] {
        assert!(
            text.contains(expected),
            "source page lacks {expected:?}:\n{text}"
        );
    }
}

/// No request may leave the machine; no script error may be logged.
fn check_quiet(cdp: &mut Cdp, allowed_prefix: &str) {
    cdp.pump(300);
    let urls: Vec<String> = cdp
        .events_named("Network.requestWillBeSent")
        .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_owned))
        .collect();
    assert!(
        !urls.is_empty(),
        "no network events seen: is the Network domain enabled?"
    );
    for url in &urls {
        assert!(
            url.starts_with(allowed_prefix)
                || url.starts_with("data:")
                || url.starts_with("about:"),
            "request left the page's origin: {url} (all: {urls:?})"
        );
    }
    let exceptions: Vec<&Value> = cdp.events_named("Runtime.exceptionThrown").collect();
    assert!(exceptions.is_empty(), "script errors: {exceptions:#?}");
    let errors: Vec<&Value> = cdp
        .events_named("Log.entryAdded")
        .filter(|e| e["params"]["entry"]["level"] == "error")
        .chain(
            cdp.events_named("Runtime.consoleAPICalled")
                .filter(|e| e["params"]["type"] == "error"),
        )
        .collect();
    assert!(errors.is_empty(), "errors logged: {errors:#?}");
}

/// The whole scenario against one URL of the site.
fn exercise_site(url: &str, allowed_prefix: &str, screenshot: &str) {
    let mut browser = Browser::launch();
    let cdp = &mut browser.cdp;
    let ms = open(cdp, url);
    println!("loaded {url} in {ms} ms");
    assert_eq!(cdp.eval("document.title"), json!("shop · sluice docs"));
    let overview = cdp.eval("document.getElementById('content').innerText");
    assert!(overview
        .as_str()
        .unwrap_or("")
        .contains("<script>window.__pwned = 4</script>"));
    check_graph(cdp);
    check_focused_and_column_views(cdp);
    check_search(cdp);
    check_evil_description(cdp);
    check_source_page(cdp);
    go(cdp, "#!/column/model.shop.stg_orders/amount");
    cdp.wait_for("document.querySelectorAll('#graph g.node').length === 3");
    cdp.screenshot(&artifact(&format!("{screenshot}-column.png")));
    go(cdp, "#!/model/model.shop.mart_orders");
    cdp.wait_for("document.querySelector('h1[data-node-id]')");
    cdp.screenshot(&artifact(&format!("{screenshot}-model.png")));
    go(cdp, "#!/graph");
    cdp.wait_for("document.querySelectorAll('#graph g.node').length === 4");
    cdp.screenshot(&artifact(&format!("{screenshot}.png")));
    check_quiet(cdp, allowed_prefix);
}

#[test]
fn docs_site_works_from_file_url() {
    let dir = write_site();
    let url = format!("file://{}", dir.path().join("index.html").display());
    exercise_site(&url, "file://", "docs");
}

#[test]
fn docs_site_works_through_local_server() {
    let dir = write_site();
    let root = dir.path().to_path_buf();
    let (tx, rx) = mpsc::channel::<SocketAddr>();
    thread::spawn(move || {
        serve(&root, "127.0.0.1", 0, move |addr| {
            let _ = tx.send(addr);
        })
    });
    let addr = rx.recv_timeout(TIMEOUT).expect("docs server did not start");
    let base = format!("http://{addr}/");
    exercise_site(&base, &base, "docs-http");
}

/// A project of `n` models in a layered DAG (three parents each).
fn big_manifest(n: usize) -> Value {
    let nodes: serde_json::Map<String, Value> = (0..n)
        .map(|i| {
            let deps: Vec<String> = if i < 100 {
                Vec::new()
            } else {
                (1..=3)
                    .map(|k| format!("model.big.m{}", (i * 7 + k * 13) % (i - i % 100)))
                    .collect()
            };
            let node = json!({
                "name": format!("m{i}"), "resource_type": "model",
                "description": format!("Model {i}"),
                "columns": columns(&[("id", "key"), ("value", ""), (&format!("col_{i}"), "")]),
                "config": {"materialized": "view"},
                "depends_on": {"nodes": deps},
                "raw_code": format!("select id, value from m{} -- model {i}", i / 2)
            });
            (format!("model.big.m{i}"), node)
        })
        .collect();
    json!({"metadata": {"project_name": "big"}, "nodes": nodes, "sources": {}})
}

/// Screen position of a graph node, from the embedded layout and the viewer's zoom/pan.
fn node_on_screen(cdp: &mut Cdp, id: &str) -> (f64, f64) {
    let pos = cdp.eval(&format!(
        "(() => {{ const d = JSON.parse(document.getElementById('sluice-data').textContent); \
         const g = d.graph.nodes.find(g => d.nodes[g[0]].id === {id}); \
         const el = document.querySelector('#graph'); const r = el.getBoundingClientRect(); \
         const [k, tx, ty] = el.dataset.view.split(',').map(Number); \
         return {{x: r.left + tx + g[1] * k, y: r.top + ty + g[2] * k}}; }})()",
        id = json!(id)
    ));
    (
        pos["x"].as_f64().unwrap_or(0.0),
        pos["y"].as_f64().unwrap_or(0.0),
    )
}

/// Zooms in on a canvas-drawn node with the wheel, then clicks it.
fn click_canvas_node(cdp: &mut Cdp, id: &str) {
    cdp.eval("document.getElementById('search').blur(); document.body.click()");
    go(cdp, "#!/overview");
    go(cdp, "#!/graph");
    cdp.wait_for("document.querySelector('#graph')?.dataset.view");
    for _ in 0..12 {
        let (x, y) = node_on_screen(cdp, id);
        cdp.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseWheel", "x": x, "y": y, "deltaX": 0, "deltaY": -300}),
        );
        cdp.pump(30);
    }
    cdp.pump(200);
    let zoom = cdp.eval("Number(document.querySelector('#graph').dataset.view.split(',')[0])");
    assert!(
        zoom.as_f64().unwrap_or(0.0) > 0.5,
        "wheel did not zoom in: {zoom}"
    );
    cdp.screenshot(&artifact("docs-5000-zoomed.png"));
    let (x, y) = node_on_screen(cdp, id);
    cdp.click_at(x, y);
    cdp.wait_for(&format!(
        "location.hash === {}",
        json!(format!("#!/model/{id}"))
    ));
}

#[test]
fn docs_site_stays_responsive_with_5000_models() {
    let manifest = big_manifest(5_000);
    let input = SiteInput {
        manifest: &manifest,
        catalog: None,
        run_results: None,
        lineage: None,
        overview_markdown: None,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("index.html"),
        render_site(&input).expect("render"),
    )
    .expect("write");
    let mut browser = Browser::launch();
    let cdp = &mut browser.cdp;
    let load_ms = open(
        cdp,
        &format!("file://{}", dir.path().join("index.html").display()),
    );
    let start = Instant::now();
    go(cdp, "#!/graph");
    cdp.wait_for("document.querySelector('#graph')?.dataset.frames >= 1");
    let graph_ms = start.elapsed().as_millis();
    assert_eq!(
        cdp.eval("document.querySelector('#graph').dataset.renderer"),
        json!("canvas")
    );
    assert_eq!(
        cdp.eval("document.querySelector('#graph').dataset.nodeCount"),
        json!("5000")
    );
    let start = Instant::now();
    for step in 0..5 {
        let delta = if step % 2 == 0 { -300 } else { 200 };
        cdp.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseWheel", "x": 640, "y": 450, "deltaX": 0, "deltaY": delta}),
        );
    }
    cdp.wait_for("document.querySelector('#graph').dataset.frames >= 2");
    let zoom_ms = start.elapsed().as_millis();
    let start = Instant::now();
    cdp.eval("document.getElementById('search').focus()");
    cdp.call("Input.insertText", json!({"text": "col_4321"}));
    let hit = cdp.wait_for("document.querySelector('#search-results a.result')?.dataset.id");
    let search_ms = start.elapsed().as_millis();
    assert_eq!(hit, json!("model.big.m4321"));
    cdp.screenshot(&artifact("docs-5000.png"));
    click_canvas_node(cdp, "model.big.m4321");
    println!("5000 models: load {load_ms} ms, canvas graph {graph_ms} ms, zoom {zoom_ms} ms, search {search_ms} ms");
    // Loose: a frozen viewer (dbt docs on big projects) takes far longer.
    assert!(
        load_ms + graph_ms < 20_000,
        "viewer too slow: load {load_ms} ms, graph {graph_ms} ms"
    );
    check_quiet(cdp, "file://");
}
