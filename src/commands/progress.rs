//! How progress events from the core ([`crate::progress::Event`]) reach the
//! user: progress bars (indicatif) when stderr is a terminal, plain log lines
//! when it is not or under `--log-format json`, nothing under `-q`. The
//! choice is [`display_for`]; the lines are [`line`]; both are pure.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{HumanCount, ProgressBar, ProgressState, ProgressStyle};

use super::Ui;
use crate::progress::{Event, Progress};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Progress bars redrawn in place (a terminal).
    Bars,
    /// One log line per event that matters (pipes, files, CI, JSON logs).
    Lines,
    /// Nothing (`-q`).
    Silent,
}

/// Bars only on a terminal, never under `-q` or `--log-format json`.
pub fn display_for(stderr_is_tty: bool, quiet: bool, json: bool) -> Display {
    if quiet {
        Display::Silent
    } else if json || !stderr_is_tty {
        Display::Lines
    } else {
        Display::Bars
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The log line for an event, or `None` for events too fine-grained for a log.
pub fn line(event: &Event) -> Option<String> {
    Some(match event {
        Event::RunStarted {
            source,
            run_id,
            since_id,
            ..
        } => format!(
            "Starting run {run_id} of source `{source}`{}",
            match since_id {
                Some(s) => format!(" (since_id {s})"),
                None => " (no high-water mark: everything the API still has)".into(),
            }
        ),
        Event::RunResumed {
            source,
            run_id,
            pages_in_lake,
            ..
        } => format!(
            "Resuming run {run_id} of source `{source}` after {pages_in_lake} landed page{}",
            plural(*pages_in_lake as u64)
        ),
        Event::RunAlreadyComplete { run_id } => {
            format!("Run {run_id} already has a manifest; committing its high-water mark")
        }
        Event::PageLanded {
            page,
            posts,
            run_posts,
            partial_errors,
        } => {
            let mut l = format!(
                "  page {page}: {posts} post{} ({run_posts} in run)",
                plural(*posts)
            );
            if *partial_errors > 0 {
                let _ = write!(
                    l,
                    ", {partial_errors} partial error{} kept",
                    plural(*partial_errors)
                );
            }
            l
        }
        Event::RateLimitWait { reason, seconds } => {
            format!("  {reason}: waiting {seconds}s for the rate limit to reset")
        }
        Event::Retry {
            reason,
            delay,
            attempt,
            attempts,
        } => format!(
            "  {reason}; retrying in {:.1}s (attempt {attempt} of {attempts})",
            delay.as_secs_f64()
        ),
        Event::WouldStage {
            run_id,
            posts,
            pages,
        } => format!("  would stage run {run_id} ({posts} posts, {pages} pages)"),
        Event::RunStaged {
            run_id,
            rows,
            read_secs,
            load_secs,
        } => format!(
            "  staged run {run_id}: {} (read {read_secs:.2}s, load {load_secs:.2}s)",
            rows.iter()
                .map(|(t, n)| format!("{n} {t}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Event::StageStarted { .. } | Event::StagePageRead { .. } | Event::StageLoading { .. } => {
            return None
        }
    })
}

/// The progress sink for one extraction or staging of one source.
pub enum Reporter<'a> {
    Silent,
    Lines(&'a Ui),
    Bar(Bar),
}

impl Progress for Reporter<'_> {
    fn emit(&self, event: Event) {
        match self {
            Reporter::Silent => {}
            Reporter::Lines(ui) => {
                if let Some(l) = line(&event) {
                    ui.event(&l, &event);
                }
            }
            Reporter::Bar(bar) => bar.update(&event),
        }
    }
}

/// A sink for the progress of one task, shown as `ui` shows progress.
pub fn reporter(ui: &Ui) -> Reporter<'_> {
    match (&ui.bars, ui.quiet) {
        (_, true) => Reporter::Silent,
        (Some(multi), false) => Reporter::Bar(Bar::new(multi)),
        (None, false) => Reporter::Lines(ui),
    }
}

/// A countdown shown next to the bar while extraction waits (rate limit, back-off).
type Waiting = Arc<Mutex<Option<(Instant, String)>>>;

/// One progress bar on the terminal: a spinner with pages and posts while
/// extracting (a bar when the run has a page budget), a bar over pages
/// while staging. Cleared when dropped, so the summary line replaces it.
pub struct Bar {
    bar: ProgressBar,
    waiting: Waiting,
    rows_staged: AtomicU64,
    /// Drawing starts with the first event.
    ticking: std::sync::Once,
}

const TICK: Duration = Duration::from_millis(120);

impl Bar {
    fn new(multi: &indicatif::MultiProgress) -> Bar {
        let waiting: Waiting = Arc::default();
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(style("{spinner} {prefix} {msg}", &waiting));
        Bar {
            bar,
            waiting,
            rows_staged: AtomicU64::new(0),
            ticking: std::sync::Once::new(),
        }
    }

    fn wait(&self, until: Option<(Instant, String)>) {
        match self.waiting.lock() {
            Ok(mut w) => *w = until,
            Err(p) => *p.into_inner() = until,
        }
    }

    fn update(&self, event: &Event) {
        let b = &self.bar;
        match event {
            Event::RunStarted {
                source, max_pages, ..
            }
            | Event::RunResumed {
                source, max_pages, ..
            } => {
                b.set_prefix(format!("extract `{source}`"));
                let posts = match event {
                    Event::RunResumed {
                        pages_in_lake,
                        posts_in_lake,
                        ..
                    } => {
                        b.set_position(*pages_in_lake as u64);
                        *posts_in_lake
                    }
                    _ => 0,
                };
                if let Some(max) = max_pages {
                    b.set_length(*max as u64);
                    b.set_style(style(
                        "{spinner} {prefix} [{bar:30}] {pos}/{len} pages, {msg} posts{wait} [{elapsed}]",
                        &self.waiting,
                    ));
                } else {
                    b.set_style(style(
                        "{spinner} {prefix} page {pos}, {msg} posts{wait} [{elapsed}]",
                        &self.waiting,
                    ));
                }
                b.set_message(HumanCount(posts).to_string());
            }
            Event::RunAlreadyComplete { run_id } => {
                b.set_style(style("{spinner} {msg}", &self.waiting));
                b.set_message(format!(
                    "run {run_id} already has a manifest; committing its high-water mark"
                ));
            }
            Event::PageLanded {
                page, run_posts, ..
            } => {
                self.wait(None);
                b.set_position(*page as u64);
                b.set_message(HumanCount(*run_posts).to_string());
            }
            Event::RateLimitWait { reason, seconds } => self.wait(Some((
                Instant::now() + Duration::from_secs(*seconds),
                format!("{reason}: retrying"),
            ))),
            Event::Retry {
                reason,
                delay,
                attempt,
                attempts,
            } => self.wait(Some((
                Instant::now() + *delay,
                format!("{reason}: retry {attempt}/{attempts}"),
            ))),
            Event::StageStarted { source, pages, .. } => {
                b.set_prefix(format!("stage `{source}`"));
                b.set_length(*pages as u64);
                b.set_position(0);
                b.set_style(style(
                    "{spinner} {prefix} [{bar:30}] {pos}/{len} pages read, {msg} [{elapsed}]",
                    &self.waiting,
                ));
                b.set_message("0 rows staged");
            }
            Event::StagePageRead { .. } => b.inc(1),
            Event::StageLoading { rows, .. } => {
                let done = self.rows_staged.load(Ordering::Relaxed);
                b.set_message(format!(
                    "{} rows staged, loading {}",
                    HumanCount(done),
                    HumanCount(*rows)
                ));
            }
            Event::RunStaged { rows, .. } => {
                let n: u64 = rows.iter().map(|(_, n)| n).sum();
                let total = self.rows_staged.fetch_add(n, Ordering::Relaxed) + n;
                b.set_message(format!("{} rows staged", HumanCount(total)));
            }
            Event::WouldStage { .. } => {}
        }
        self.ticking.call_once(|| b.enable_steady_tick(TICK));
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// A bar style whose `{wait}` key counts down to the current wait's end.
fn style(template: &str, waiting: &Waiting) -> ProgressStyle {
    let waiting = waiting.clone();
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .with_key(
            "wait",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let now = Instant::now();
                if let Ok(guard) = waiting.lock() {
                    if let Some((until, why)) = guard.as_ref().filter(|(u, _)| *u > now) {
                        let left = until.duration_since(now).as_secs_f64().ceil();
                        let _ = write!(w, " · {why} in {left:.0}s");
                    }
                }
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_only_on_a_terminal_without_quiet_or_json() {
        assert_eq!(display_for(true, false, false), Display::Bars);
        assert_eq!(display_for(false, false, false), Display::Lines);
        assert_eq!(display_for(true, false, true), Display::Lines);
        assert_eq!(display_for(false, false, true), Display::Lines);
        for (tty, json) in [(true, false), (false, false), (true, true), (false, true)] {
            assert_eq!(display_for(tty, true, json), Display::Silent);
        }
    }

    #[test]
    fn extraction_events_render_as_log_lines() {
        let cases = [
            (
                Event::RunStarted {
                    source: "twitter".into(),
                    run_id: "20260101T000000000Z-abcdef".into(),
                    since_id: None,
                    max_pages: Some(5),
                },
                "Starting run 20260101T000000000Z-abcdef of source `twitter` (no high-water mark: everything the API still has)",
            ),
            (
                Event::RunStarted {
                    source: "twitter".into(),
                    run_id: "r1".into(),
                    since_id: Some("1849".into()),
                    max_pages: None,
                },
                "Starting run r1 of source `twitter` (since_id 1849)",
            ),
            (
                Event::RunResumed {
                    source: "twitter".into(),
                    run_id: "r1".into(),
                    pages_in_lake: 1,
                    posts_in_lake: 100,
                    max_pages: None,
                },
                "Resuming run r1 of source `twitter` after 1 landed page",
            ),
            (
                Event::RunAlreadyComplete { run_id: "r1".into() },
                "Run r1 already has a manifest; committing its high-water mark",
            ),
            (
                Event::PageLanded {
                    page: 3,
                    posts: 1,
                    run_posts: 201,
                    partial_errors: 0,
                },
                "  page 3: 1 post (201 in run)",
            ),
            (
                Event::PageLanded {
                    page: 4,
                    posts: 100,
                    run_posts: 301,
                    partial_errors: 2,
                },
                "  page 4: 100 posts (301 in run), 2 partial errors kept",
            ),
            (
                Event::RateLimitWait {
                    reason: "rate limited (HTTP 429)".into(),
                    seconds: 3,
                },
                "  rate limited (HTTP 429): waiting 3s for the rate limit to reset",
            ),
            (
                Event::Retry {
                    reason: "HTTP 503 from the API".into(),
                    delay: Duration::from_millis(300),
                    attempt: 2,
                    attempts: 4,
                },
                "  HTTP 503 from the API; retrying in 0.3s (attempt 2 of 4)",
            ),
        ];
        for (event, want) in cases {
            assert_eq!(line(&event).as_deref(), Some(want), "{event:?}");
        }
    }

    #[test]
    fn staging_events_render_as_log_lines_and_page_reads_stay_quiet() {
        let staged = Event::RunStaged {
            run_id: "r1".into(),
            rows: vec![("tweets".into(), 337), ("users".into(), 7)],
            read_secs: 0.014,
            load_secs: 0.5,
        };
        assert_eq!(
            line(&staged).as_deref(),
            Some("  staged run r1: 337 tweets, 7 users (read 0.01s, load 0.50s)")
        );
        assert_eq!(
            line(&Event::WouldStage {
                run_id: "r1".into(),
                posts: 337,
                pages: 5
            })
            .as_deref(),
            Some("  would stage run r1 (337 posts, 5 pages)")
        );
        for quiet in [
            Event::StageStarted {
                source: "twitter".into(),
                runs: 1,
                pages: 5,
                posts: 337,
            },
            Event::StagePageRead {
                run_id: "r1".into(),
            },
            Event::StageLoading {
                run_id: "r1".into(),
                rows: 1018,
            },
        ] {
            assert_eq!(line(&quiet), None, "{quiet:?}");
        }
    }

    #[test]
    fn quiet_and_plain_uis_never_draw_bars() {
        let quiet = Ui::plain(true, false);
        assert!(matches!(reporter(&quiet), Reporter::Silent));
        let plain = Ui::plain(false, false);
        assert!(matches!(reporter(&plain), Reporter::Lines(_)));
    }
}
