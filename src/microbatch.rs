//! dbt 1.9's `microbatch` incremental strategy: a model with an
//! `event_time` column is built in time batches (`batch_size` hour, day,
//! month or year). Each batch renders the model with every `ref`/`source`
//! of an upstream that has an `event_time` of its own filtered to the
//! batch's window, and replaces exactly that window of the table.
//!
//! Which batches run (dbt's `MicrobatchBuilder`): a first or full-refresh
//! run covers `begin` up to now; a later run the last `lookback` batches
//! before the current one and the current one. `--event-time-start` /
//! `--event-time-end` choose the window explicitly. All times are UTC.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use serde_json::{json, Value};

use crate::project::node::Node;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    Hour,
    Day,
    Month,
    Year,
}

impl BatchSize {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "hour" => Self::Hour,
            "day" => Self::Day,
            "month" => Self::Month,
            "year" => Self::Year,
            _ => return None,
        })
    }
}

/// A microbatch model's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MicrobatchConfig {
    pub event_time: String,
    pub batch_size: BatchSize,
    pub begin: Option<NaiveDateTime>,
    pub lookback: i64,
}

/// Whether a node is built with the microbatch strategy.
pub fn is_microbatch(node: &Node) -> bool {
    node.config
        .get("incremental_strategy")
        .and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case("microbatch"))
}

impl MicrobatchConfig {
    pub fn of(node: &Node) -> Result<MicrobatchConfig, String> {
        let get = |k: &str| node.config.get(k).filter(|v| !v.is_null());
        let event_time = get("event_time")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                format!(
                    "microbatch model `{}` needs an `event_time` config: the column that \
                     places each row in time",
                    node.name
                )
            })?;
        let batch_size = get("batch_size")
            .and_then(Value::as_str)
            .and_then(BatchSize::parse)
            .ok_or_else(|| {
                format!(
                    "microbatch model `{}` needs a `batch_size` config, one of hour, day, month, year",
                    node.name
                )
            })?;
        let begin = match get("begin") {
            None => None,
            Some(v) => {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                Some(parse_time(&text).ok_or_else(|| {
                    format!(
                        "microbatch model `{}`: `begin: {text}` is not a date or timestamp",
                        node.name
                    )
                })?)
            }
        };
        let lookback = match get("lookback") {
            None => 1,
            Some(v) => v
                .as_i64()
                .filter(|n| *n >= 0)
                .ok_or_else(|| format!("`lookback` must be a whole number, got {v}"))?,
        };
        Ok(MicrobatchConfig {
            event_time,
            batch_size,
            begin,
            lookback,
        })
    }
}

/// `2024-09-17`, `2024-09-17 16:06:00`, `2024-09-17T16:06:00Z`, … as UTC.
pub fn parse_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim().trim_end_matches('Z');
    let s = s.strip_suffix("+00:00").unwrap_or(s);
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

pub fn truncate(t: NaiveDateTime, size: BatchSize) -> NaiveDateTime {
    let d = t.date();
    let date = match size {
        BatchSize::Hour | BatchSize::Day => d,
        BatchSize::Month => d.with_day(1).unwrap_or(d),
        BatchSize::Year => NaiveDate::from_ymd_opt(d.year(), 1, 1).unwrap_or(d),
    };
    let hour = if size == BatchSize::Hour { t.hour() } else { 0 };
    date.and_hms_opt(hour, 0, 0).unwrap_or(t)
}

/// `t` truncated to its batch, moved by `n` batches.
pub fn offset(t: NaiveDateTime, size: BatchSize, n: i64) -> NaiveDateTime {
    let t = truncate(t, size);
    match size {
        BatchSize::Hour => t + Duration::hours(n),
        BatchSize::Day => t + Duration::days(n),
        BatchSize::Month => {
            let months = t.year() as i64 * 12 + t.month0() as i64 + n;
            NaiveDate::from_ymd_opt(
                (months.div_euclid(12)) as i32,
                months.rem_euclid(12) as u32 + 1,
                1,
            )
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or(t)
        }
        BatchSize::Year => NaiveDate::from_ymd_opt(t.year() + n as i32, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or(t),
    }
}

/// The start of the next batch, or `t` when it already is a batch start.
pub fn ceiling(t: NaiveDateTime, size: BatchSize) -> NaiveDateTime {
    let truncated = truncate(t, size);
    if truncated == t {
        t
    } else {
        offset(truncated, size, 1)
    }
}

/// One batch: rows with `start <= event_time < end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub size: BatchSize,
}

/// A timestamp as dbt writes it into SQL: `2024-09-17 00:00:00+00:00`.
pub fn sql_time(t: NaiveDateTime) -> String {
    format!("{}+00:00", t.format("%Y-%m-%d %H:%M:%S"))
}

impl Batch {
    /// dbt's batch id: `20240917`, `2024091716`-style (`%Y%m%d` for days,
    /// `%Y%m%dT%H` for hours, …).
    pub fn id(&self) -> String {
        let f = match self.size {
            BatchSize::Year => "%Y",
            BatchSize::Month => "%Y-%m",
            BatchSize::Day => "%Y-%m-%d",
            BatchSize::Hour => "%Y-%m-%dT%H",
        };
        self.start.format(f).to_string().replace('-', "")
    }

    /// `model.batch` in Jinja.
    pub fn context(&self) -> Value {
        json!({
            "id": self.id(),
            "event_time_start": sql_time(self.start),
            "event_time_end": sql_time(self.end),
        })
    }
}

/// Batches of `size` from `start` until `end` (the last one ends at `end`).
pub fn batches(start: NaiveDateTime, end: NaiveDateTime, size: BatchSize) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut from = start;
    loop {
        let to = offset(from, size, 1);
        out.push(Batch {
            start: from,
            end: to,
            size,
        });
        if to >= end {
            break;
        }
        from = to;
    }
    if let Some(last) = out.last_mut() {
        last.end = end;
    }
    out
}

/// The batches a run builds. `is_incremental`: the model's table exists and
/// this is not a full refresh.
pub fn plan(
    config: &MicrobatchConfig,
    is_incremental: bool,
    event_time_start: Option<NaiveDateTime>,
    event_time_end: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Result<Vec<Batch>, String> {
    let size = config.batch_size;
    let end = ceiling(event_time_end.unwrap_or(now), size);
    let start = match (event_time_start, is_incremental) {
        (Some(s), _) => truncate(s, size),
        (None, false) => truncate(
            config.begin.ok_or(
                "a microbatch model's first run needs a `begin` config (or --event-time-start)",
            )?,
            size,
        ),
        (None, true) => {
            // `end` is a batch boundary, so the current batch is one more.
            offset(end, size, -(config.lookback + 1))
        }
    };
    if start >= end {
        return Err(format!(
            "nothing to build: the batches would start at {} and end at {}",
            sql_time(start),
            sql_time(end)
        ));
    }
    Ok(batches(start, end, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        parse_time(s).unwrap()
    }

    #[test]
    fn truncate_offset_and_ceiling_follow_dbt() {
        let x = t("2024-09-17 16:06:00");
        assert_eq!(offset(x, BatchSize::Hour, -1), t("2024-09-17 15:00:00"));
        assert_eq!(offset(x, BatchSize::Day, 1), t("2024-09-18"));
        assert_eq!(offset(x, BatchSize::Month, -1), t("2024-08-01"));
        assert_eq!(offset(x, BatchSize::Month, 4), t("2025-01-01"));
        assert_eq!(offset(x, BatchSize::Year, -1), t("2023-01-01"));
        assert_eq!(ceiling(x, BatchSize::Day), t("2024-09-18"));
        assert_eq!(ceiling(t("2024-09-17"), BatchSize::Day), t("2024-09-17"));
        assert_eq!(ceiling(x, BatchSize::Year), t("2025-01-01"));
        assert_eq!(truncate(x, BatchSize::Month), t("2024-09-01"));
    }

    #[test]
    fn a_first_run_covers_begin_to_now_and_a_later_one_the_lookback() {
        let config = MicrobatchConfig {
            event_time: "at".into(),
            batch_size: BatchSize::Day,
            begin: Some(t("2024-09-14 10:00")),
            lookback: 1,
        };
        let now = t("2024-09-17 16:06:00");
        let first = plan(&config, false, None, None, now).unwrap();
        assert_eq!(first.len(), 4);
        assert_eq!(first[0].start, t("2024-09-14"));
        assert_eq!(first[3].end, t("2024-09-18"));
        assert_eq!(first[3].id(), "20240917");
        let later = plan(&config, true, None, None, now).unwrap();
        assert_eq!(
            later.iter().map(Batch::id).collect::<Vec<_>>(),
            ["20240916", "20240917"]
        );
        let chosen = plan(
            &config,
            true,
            Some(t("2024-09-15")),
            Some(t("2024-09-16")),
            now,
        )
        .unwrap();
        assert_eq!(chosen.len(), 1);
        assert_eq!(
            chosen[0].context()["event_time_start"],
            "2024-09-15 00:00:00+00:00"
        );
        let no_begin = MicrobatchConfig {
            begin: None,
            ..config
        };
        assert!(plan(&no_begin, false, None, None, now).is_err());
    }
}
