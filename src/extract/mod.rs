//! Extraction: plugins that page through an API and land every page, bytes as
//! received, in the lake; plus the cursor state that makes runs incremental
//! and resumable. Extraction never writes to the warehouse: `stage` does.
//!
//! # Configuration
//! A source declares its plugin next to its tables, in schema YAML:
//! `meta: {sluice: {extract: {plugin: x_recent_search, …}}}` (or a top-level
//! `extract:` key on the source). [`plugin_for`] picks the plugin by its
//! `plugin:` name; each plugin validates the rest of the block.
//!
//! # Runs, state and resumption
//! A run gets an id (`20261126T014500123Z-1a2b3c`: UTC start time to the millisecond, then
//! random hex, so ids sort by start time) and a
//! directory `raw/<family>/<source>/dt=<start date>/run=<id>/` in the lake.
//! Pages land as `page-00001.json`, `page-00002.json`, …; `manifest.json` is
//! written last and marks the run complete. The state object
//! `state/<family>/<source>.json` holds the high-water mark (`newest_id`, only
//! advanced after a run's manifest landed) and the run in progress, if any.
//!
//! When a run stops early (rate-limit cap, server errors, a crash), the next
//! invocation resumes that run: it lists the pages already in the lake, takes
//! `next_token` from the last one, and lands only the missing pages under the
//! same run id. The lake is the source of truth for which pages landed, so a
//! crash between landing a page and updating the state loses nothing.

pub mod twitter;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::lake::{layout, Lake, LakeError, PutOutcome};
use crate::progress::{Event, Progress};

/// Errors that stop an extraction.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("invalid `extract` block: {0}")]
    Config(String),
    #[error("unknown extraction plugin `{0}`")]
    UnknownPlugin(String),
    #[error("the bearer token environment variable `{var}` is not set")]
    MissingToken { var: String },
    #[error("the API rejected the request: HTTP {status} {title}")]
    Rejected {
        status: u16,
        title: String,
        /// The API's own messages, in order.
        messages: Vec<String>,
        hint: String,
    },
    #[error("rate limited: the limit resets in {wait_secs}s, more than `max_wait_seconds` ({max_wait_secs}s) allows")]
    RateLimited { wait_secs: u64, max_wait_secs: u64 },
    #[error("the API is unavailable: {0}")]
    Unavailable(String),
    #[error("unexpected response: {0}")]
    BadResponse(String),
    #[error("replay: {0}")]
    Replay(String),
    #[error("recording: {0}")]
    Record(String),
    #[error("state `{key}` is unreadable: {message}")]
    State { key: String, message: String },
    #[error("lake object `{0}` already exists with different content; refusing to overwrite it")]
    Conflict(String),
    #[error(transparent)]
    Lake(#[from] LakeError),
}

impl ExtractError {
    /// Whether running the same command again continues where this stopped.
    pub fn is_resumable(&self) -> bool {
        matches!(
            self,
            ExtractError::RateLimited { .. }
                | ExtractError::Unavailable(_)
                | ExtractError::Lake(_)
                | ExtractError::BadResponse(_)
        )
    }
}

/// A failed run: the error and how far the run got.
#[derive(Debug)]
pub struct RunError {
    pub run_id: Option<String>,
    /// Pages of this run in the lake (landed now or earlier).
    pub pages_in_lake: usize,
    pub error: ExtractError,
}

impl From<ExtractError> for RunError {
    fn from(error: ExtractError) -> Self {
        RunError {
            run_id: None,
            pages_in_lake: 0,
            error,
        }
    }
}

/// Where to continue: the incremental bound and the pagination token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    pub since_id: Option<String>,
    pub next_token: Option<String>,
}

/// What a page says about the pages around it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    pub next_token: Option<String>,
    pub newest_id: Option<String>,
    pub oldest_id: Option<String>,
    pub result_count: u64,
    /// Partial errors returned next to the data (kept in the page).
    pub partial_errors: u64,
}

/// A fetched page: the body exactly as received, and what it says.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub info: PageInfo,
}

/// Budget limits of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    pub max_pages: Option<usize>,
    pub max_posts: Option<u64>,
}

/// An extraction plugin: one API, one source.
pub trait Plugin {
    /// The `plugin:` name, e.g. `x_recent_search`.
    fn name(&self) -> &'static str;
    /// The lake family segment, e.g. `twitter`.
    fn family(&self) -> &'static str;
    fn budget(&self) -> Budget;
    /// The request parameters recorded in the manifest (never secrets).
    fn request_summary(&self) -> serde_json::Value;
    /// The request that would fetch the page at `cursor`, for `--dry-run`.
    fn describe_request(&self, cursor: &Cursor, want: Option<u64>) -> String;
    /// `Some(dir)` when responses come from a recording instead of the network.
    fn replaying(&self) -> Option<String>;
    /// Fetch the page at `cursor`; `want` is how many posts the budget still allows.
    /// Waits and retries are reported to `progress`.
    fn fetch(
        &mut self,
        cursor: &Cursor,
        want: Option<u64>,
        progress: &dyn Progress,
    ) -> Result<Fetched, ExtractError>;
    /// Read [`PageInfo`] back from a landed page.
    fn inspect(&self, body: &[u8]) -> Result<PageInfo, ExtractError>;
}

/// How a plugin is built.
#[derive(Debug, Clone, Default)]
pub struct PluginOptions {
    /// The project directory (relative `replay:` paths resolve against it).
    pub project_dir: PathBuf,
    /// Print requests instead of sending them (no token needed).
    pub dry_run: bool,
    /// Save every live response into this directory (replayable).
    pub record: Option<PathBuf>,
}

/// The plugin a source's `extract` block names.
pub fn plugin_for(
    extract: &serde_json::Value,
    opts: &PluginOptions,
) -> Result<Box<dyn Plugin>, ExtractError> {
    let name = extract
        .get("plugin")
        .and_then(|v| v.as_str())
        .ok_or_else(|| {
            ExtractError::Config("missing `plugin:` (e.g. `plugin: x_recent_search`)".into())
        })?;
    match name {
        twitter::PLUGIN_NAME => Ok(Box::new(twitter::XRecentSearch::new(extract, opts)?)),
        other => Err(ExtractError::UnknownPlugin(other.to_string())),
    }
}

/// The cursor state of one source, kept in the lake.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub plugin: String,
    pub source: String,
    /// High-water mark: the newest id of the last complete run (or older).
    pub newest_id: Option<String>,
    pub last_complete_run: Option<String>,
    pub updated_at: Option<String>,
    pub in_progress: Option<InProgress>,
}

/// A run that started and has no manifest yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InProgress {
    pub run_id: String,
    /// Partition date of the run (its start date, UTC).
    pub dt: String,
    pub since_id: Option<String>,
    pub started_at: String,
}

/// One page in a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestPage {
    pub name: String,
    pub bytes: u64,
    #[serde(flatten)]
    pub info: PageInfo,
}

/// `manifest.json`: written last; a run is complete when it exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub source: String,
    pub plugin: String,
    pub family: String,
    pub dt: String,
    pub started_at: String,
    pub finished_at: String,
    pub since_id: Option<String>,
    pub newest_id: Option<String>,
    pub oldest_id: Option<String>,
    pub posts: u64,
    pub partial_errors: u64,
    /// `max_pages` or `max_posts` when a budget ended the run before the last page.
    pub stopped_by: Option<String>,
    pub replayed_from: Option<String>,
    pub request: serde_json::Value,
    pub pages: Vec<ManifestPage>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub run_id: String,
    pub run_prefix: String,
    pub resumed: bool,
    /// Pages fetched and landed by this invocation.
    pub pages_landed: usize,
    /// Pages of the run in total.
    pub pages: usize,
    pub posts: u64,
    pub partial_errors: u64,
    pub newest_id: Option<String>,
    pub stopped_by: Option<String>,
}

/// Compare two snowflake ids (decimal strings): numerically, falling back to
/// length-then-text for values that do not parse.
pub fn id_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u128>(), b.parse::<u128>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
    }
}

fn max_id(a: Option<String>, b: Option<&String>) -> Option<String> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if id_cmp(y, &x).is_gt() { y.clone() } else { x }),
        (x, None) => x,
        (None, Some(y)) => Some(y.clone()),
    }
}

fn min_id(a: Option<String>, b: Option<&String>) -> Option<String> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if id_cmp(y, &x).is_lt() { y.clone() } else { x }),
        (x, None) => x,
        (None, Some(y)) => Some(y.clone()),
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A new run id: UTC start time (milliseconds) plus six random hex digits,
/// so ids sort by start time.
pub fn new_run_id(now: chrono::DateTime<chrono::Utc>) -> String {
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", now.format("%Y%m%dT%H%M%S%3fZ"), &rand[..6])
}

/// Read the state of a source (default when absent).
pub fn load_state(lake: &dyn Lake, family: &str, source: &str) -> Result<State, ExtractError> {
    let key = layout::state_key(family, source);
    match lake.get(&key)? {
        None => Ok(State::default()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| ExtractError::State {
            key,
            message: e.to_string(),
        }),
    }
}

fn save_state(
    lake: &dyn Lake,
    family: &str,
    source: &str,
    state: &mut State,
) -> Result<(), ExtractError> {
    state.updated_at = Some(now_rfc3339());
    let bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| ExtractError::Config(format!("serializing state: {e}")))?;
    lake.put(&layout::state_key(family, source), &bytes)?;
    Ok(())
}

/// Options of one extraction run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Ignore the high-water mark (fetch without `since_id`).
    pub full_refresh: bool,
}

/// What `--dry-run` prints: the requests a run would make, without sending any.
pub fn dry_run(
    plugin: &dyn Plugin,
    lake: &dyn Lake,
    source: &str,
    opts: RunOptions,
) -> Vec<String> {
    let mut out = Vec::new();
    let state = match load_state(lake, plugin.family(), source) {
        Ok(s) => Some(s),
        Err(e) => {
            out.push(format!("# state unavailable ({e}); assuming a first run"));
            None
        }
    };
    let state = state.unwrap_or_default();
    let budget = plugin.budget();
    let mut cursor = Cursor::default();
    if let Some(ip) = &state.in_progress {
        out.push(format!(
            "# resumes run {} (its landed pages are not fetched again)",
            ip.run_id
        ));
        cursor.since_id = ip.since_id.clone();
        cursor.next_token = Some("<meta.next_token of the last landed page>".into());
    } else if !opts.full_refresh {
        cursor.since_id = state.newest_id.clone();
    }
    out.push(plugin.describe_request(&cursor, budget.max_posts));
    let pages = match budget.max_pages {
        Some(n) => format!("at most {} more", n.saturating_sub(1)),
        None => "then more".to_string(),
    };
    let posts = budget
        .max_posts
        .map(|n| format!(", stopping at {n} posts"))
        .unwrap_or_default();
    out.push(format!(
        "# {pages} requests with the same parameters plus next_token=<meta.next_token of the previous page>, while pages carry one{posts}"
    ));
    out
}

struct Landed {
    name: String,
    bytes: u64,
    info: PageInfo,
}

/// Run (or resume) one extraction for `source`: fetch pages, land them, write
/// the manifest, advance the state.
pub fn run(
    plugin: &mut dyn Plugin,
    lake: &dyn Lake,
    source: &str,
    opts: RunOptions,
    progress: &dyn Progress,
) -> Result<RunSummary, RunError> {
    let family = plugin.family();
    let mut state = load_state(lake, family, source)?;
    if state.plugin.is_empty() {
        state.plugin = plugin.name().to_string();
        state.source = source.to_string();
    }
    let (ip, resumed) = match state.in_progress.clone() {
        Some(ip) => (ip, true),
        None => {
            let now = chrono::Utc::now();
            let ip = InProgress {
                run_id: new_run_id(now),
                dt: now.format("%Y-%m-%d").to_string(),
                since_id: if opts.full_refresh {
                    None
                } else {
                    state.newest_id.clone()
                },
                started_at: now_rfc3339(),
            };
            state.in_progress = Some(ip.clone());
            save_state(lake, family, source, &mut state)?;
            (ip, false)
        }
    };
    let prefix = layout::run_prefix(family, source, &ip.dt, &ip.run_id);
    let fail = |pages: usize, error: ExtractError| RunError {
        run_id: Some(ip.run_id.clone()),
        pages_in_lake: pages,
        error,
    };

    // The lake says which pages landed; a manifest means the run finished
    // and only the state update was lost.
    let manifest_key = format!("{prefix}{}", layout::MANIFEST);
    if let Some(bytes) = lake.get(&manifest_key).map_err(|e| fail(0, e.into()))? {
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            fail(
                0,
                ExtractError::State {
                    key: manifest_key.clone(),
                    message: e.to_string(),
                },
            )
        })?;
        progress.emit(Event::RunAlreadyComplete {
            run_id: ip.run_id.clone(),
        });
        commit(lake, family, source, &mut state, &m).map_err(|e| fail(m.pages.len(), e))?;
        return Ok(RunSummary {
            run_id: m.run_id.clone(),
            run_prefix: prefix,
            resumed: true,
            pages_landed: 0,
            pages: m.pages.len(),
            posts: m.posts,
            partial_errors: m.partial_errors,
            newest_id: m.newest_id.clone(),
            stopped_by: m.stopped_by.clone(),
        });
    }
    let mut landed: Vec<Landed> = Vec::new();
    let mut keys: Vec<(usize, String)> = lake
        .list(&prefix)
        .map_err(|e| fail(0, e.into()))?
        .into_iter()
        .filter_map(|k| layout::page_number(&k).map(|n| (n, k)))
        .collect();
    keys.sort();
    for (i, (n, key)) in keys.iter().enumerate() {
        if *n != i + 1 {
            return Err(fail(
                landed.len(),
                ExtractError::State {
                    key: prefix.clone(),
                    message: format!("page {} is missing but page {n} exists", i + 1),
                },
            ));
        }
        let bytes = lake
            .get(key)
            .map_err(|e| fail(landed.len(), e.into()))?
            .ok_or_else(|| fail(landed.len(), ExtractError::Conflict(key.clone())))?;
        let info = plugin.inspect(&bytes).map_err(|e| fail(landed.len(), e))?;
        landed.push(Landed {
            name: layout::page_name(*n),
            bytes: bytes.len() as u64,
            info,
        });
    }
    let budget = plugin.budget();
    let mut posts: u64 = landed.iter().map(|p| p.info.result_count).sum();
    progress.emit(if resumed {
        Event::RunResumed {
            source: source.to_string(),
            run_id: ip.run_id.clone(),
            pages_in_lake: landed.len(),
            posts_in_lake: posts,
            max_pages: budget.max_pages,
        }
    } else {
        Event::RunStarted {
            source: source.to_string(),
            run_id: ip.run_id.clone(),
            since_id: ip.since_id.clone(),
            max_pages: budget.max_pages,
        }
    });
    let already = landed.len();
    let mut stopped_by = None;
    loop {
        let next_token = match landed.last() {
            None => None,
            Some(p) => match &p.info.next_token {
                Some(t) => Some(t.clone()),
                None => break,
            },
        };
        if budget.max_pages.is_some_and(|m| landed.len() >= m) {
            stopped_by = Some("max_pages".to_string());
            break;
        }
        if budget.max_posts.is_some_and(|m| posts >= m) {
            stopped_by = Some("max_posts".to_string());
            break;
        }
        let cursor = Cursor {
            since_id: ip.since_id.clone(),
            next_token,
        };
        let want = budget.max_posts.map(|m| m.saturating_sub(posts));
        let page = plugin
            .fetch(&cursor, want, progress)
            .map_err(|e| fail(landed.len(), e))?;
        let n = landed.len() + 1;
        let name = layout::page_name(n);
        let key = format!("{prefix}{name}");
        match lake
            .put_new(&key, &page.body)
            .map_err(|e| fail(landed.len(), e.into()))?
        {
            PutOutcome::Created => {}
            PutOutcome::AlreadyExists => {
                // Someone else landed it concurrently; only identical bytes are acceptable.
                let existing = lake.get(&key).map_err(|e| fail(landed.len(), e.into()))?;
                if existing.as_deref() != Some(page.body.as_slice()) {
                    return Err(fail(landed.len(), ExtractError::Conflict(key)));
                }
            }
        }
        posts += page.info.result_count;
        progress.emit(Event::PageLanded {
            page: n,
            posts: page.info.result_count,
            run_posts: posts,
            partial_errors: page.info.partial_errors,
        });
        landed.push(Landed {
            name,
            bytes: page.body.len() as u64,
            info: page.info,
        });
    }

    let mut newest = None;
    let mut oldest = None;
    for p in &landed {
        newest = max_id(newest, p.info.newest_id.as_ref());
        oldest = min_id(oldest, p.info.oldest_id.as_ref());
    }
    let manifest = Manifest {
        run_id: ip.run_id.clone(),
        source: source.to_string(),
        plugin: plugin.name().to_string(),
        family: family.to_string(),
        dt: ip.dt.clone(),
        started_at: ip.started_at.clone(),
        finished_at: now_rfc3339(),
        since_id: ip.since_id.clone(),
        newest_id: newest.clone(),
        oldest_id: oldest,
        posts,
        partial_errors: landed.iter().map(|p| p.info.partial_errors).sum(),
        stopped_by: stopped_by.clone(),
        replayed_from: plugin.replaying(),
        request: plugin.request_summary(),
        pages: landed
            .iter()
            .map(|p| ManifestPage {
                name: p.name.clone(),
                bytes: p.bytes,
                info: p.info.clone(),
            })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| {
        fail(
            landed.len(),
            ExtractError::Config(format!("serializing the manifest: {e}")),
        )
    })?;
    lake.put_new(&manifest_key, &bytes)
        .map_err(|e| fail(landed.len(), e.into()))?;
    commit(lake, family, source, &mut state, &manifest).map_err(|e| fail(landed.len(), e))?;
    Ok(RunSummary {
        run_id: ip.run_id.clone(),
        run_prefix: prefix,
        resumed,
        pages_landed: landed.len() - already,
        pages: landed.len(),
        posts,
        partial_errors: manifest.partial_errors,
        newest_id: newest,
        stopped_by,
    })
}

/// Advance the high-water mark to a complete run's newest id and clear the
/// run in progress.
fn commit(
    lake: &dyn Lake,
    family: &str,
    source: &str,
    state: &mut State,
    m: &Manifest,
) -> Result<(), ExtractError> {
    state.newest_id = max_id(state.newest_id.take(), m.newest_id.as_ref());
    state.last_complete_run = Some(m.run_id.clone());
    state.in_progress = None;
    save_state(lake, family, source, state)
}

/// A complete run found in the lake.
#[derive(Debug, Clone)]
pub struct CompleteRun {
    pub prefix: String,
    pub manifest: Manifest,
}

/// Every complete run (one with a manifest) of a source, oldest first.
pub fn complete_runs(
    lake: &dyn Lake,
    family: &str,
    source: &str,
) -> Result<Vec<CompleteRun>, ExtractError> {
    let mut out = Vec::new();
    for key in lake.list(&layout::source_prefix(family, source))? {
        let Some(prefix) = key.strip_suffix(layout::MANIFEST) else {
            continue;
        };
        let Some(bytes) = lake.get(&key)? else {
            continue;
        };
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| ExtractError::State {
                key: key.clone(),
                message: e.to_string(),
            })?;
        out.push(CompleteRun {
            prefix: prefix.to_string(),
            manifest,
        });
    }
    out.sort_by(|a, b| a.manifest.run_id.cmp(&b.manifest.run_id));
    Ok(out)
}

/// Resolve a possibly relative path against the project directory.
pub fn resolve_path(project_dir: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        project_dir.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflakes_compare_numerically() {
        assert!(id_cmp("10", "9").is_gt());
        assert!(id_cmp("2123779255170081459", "2123774591104138247").is_gt());
        assert_eq!(
            max_id(Some("9".into()), Some(&"10".to_string())),
            Some("10".to_string())
        );
        assert_eq!(min_id(None, Some(&"3".to_string())), Some("3".to_string()));
    }

    #[test]
    fn run_ids_sort_by_start_time() {
        let a = new_run_id(chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let b = new_run_id(chrono::DateTime::from_timestamp(1_700_000_060, 0).unwrap());
        assert!(a < b, "{a} {b}");
        assert!(a.starts_with("20231114T221320000Z-"));
    }
}
