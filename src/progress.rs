//! Progress events of long-running core work (extraction and staging): what
//! happened, as data. The core emits [`Event`]s through a [`Progress`] sink
//! and never touches the terminal; the command edge decides how they look
//! (progress bars on a terminal, log lines otherwise, nothing under `-q`).

use std::time::Duration;

use serde::Serialize;

/// One thing that happened during an extraction or a staging run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A new extraction run started.
    RunStarted {
        source: String,
        run_id: String,
        since_id: Option<String>,
        /// The run's page budget, when it has one.
        max_pages: Option<usize>,
    },
    /// An interrupted run continues after the pages already in the lake.
    RunResumed {
        source: String,
        run_id: String,
        pages_in_lake: usize,
        posts_in_lake: u64,
        max_pages: Option<usize>,
    },
    /// The run in progress already has its manifest: only the state is committed.
    RunAlreadyComplete { run_id: String },
    /// A page was fetched and landed in the lake.
    PageLanded {
        /// Page number in the run (1-based).
        page: usize,
        posts: u64,
        /// Posts in the run so far, this page included.
        run_posts: u64,
        partial_errors: u64,
    },
    /// Waiting for the API's rate-limit window to reset.
    RateLimitWait { reason: String, seconds: u64 },
    /// A transient failure (5xx, timeout); the same request is retried.
    Retry {
        reason: String,
        #[serde(rename = "delay_secs", serialize_with = "as_secs")]
        delay: Duration,
        /// The attempt about to be made (2 for the first retry).
        attempt: u32,
        attempts: u32,
    },
    /// Staging of a source begins: what is about to be read.
    StageStarted {
        source: String,
        runs: usize,
        pages: usize,
        posts: u64,
    },
    /// One page of a run was read from the lake for staging.
    StagePageRead { run_id: String },
    /// A run's rows are flattened and about to be loaded.
    StageLoading { run_id: String, rows: u64 },
    /// A run was loaded into the raw tables (rows per table).
    RunStaged {
        run_id: String,
        rows: Vec<(String, u64)>,
        read_secs: f64,
        load_secs: f64,
    },
    /// `--dry-run`: a run that would be staged.
    WouldStage {
        run_id: String,
        posts: u64,
        pages: usize,
    },
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Where the core sends its progress.
pub trait Progress {
    fn emit(&self, event: Event);
}

/// Drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {
    fn emit(&self, _: Event) {}
}
