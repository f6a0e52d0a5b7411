//! Python's `datetime` module as dbt offers it to Jinja (`modules.datetime`,
//! `run_started_at`), and pytz's `timezone(…).localize(…)` (`modules.pytz`):
//! datetimes, dates and timedeltas with their common attributes and
//! methods (`strftime`, `isoformat`, `replace`, `strptime`, `fromisoformat`,
//! `total_seconds`, …), printed as Python prints them.
//!
//! minijinja has no operator overloading, so `run_started_at -
//! modules.datetime.timedelta(days=1)` is rewritten (see
//! [`timedelta_arithmetic`]) into a call of `__sluice_sub`, which knows
//! datetimes and timedeltas and does ordinary arithmetic otherwise.
//!
//! Aware datetimes carry their zone (IANA names through chrono-tz, or a
//! fixed `±HH:MM`): `localize` attaches one to a wall-clock time,
//! `astimezone` converts, and comparisons and differences are between
//! instants.

use std::fmt;
use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use minijinja::value::{from_args, DynObject, Kwargs, Object, Rest};
use minijinja::{Error, ErrorKind, State, Value};

use super::objects::no_method;

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// The zone of an aware datetime: its name (`UTC`, `America/New_York`,
/// `+02:00`) and its offset from UTC at that datetime, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub name: String,
    pub offset: i32,
}

impl Zone {
    fn utc() -> Self {
        Zone {
            name: "UTC".into(),
            offset: 0,
        }
    }

    /// The zone `name` (an IANA name, `UTC`, or `±HH:MM`) at local time `at`.
    fn at_local(name: &str, at: NaiveDateTime) -> Result<Zone, Error> {
        use chrono::{Offset, TimeZone as _};
        if let Some(offset) = fixed_offset(name) {
            return Ok(Zone {
                name: name.to_string(),
                offset,
            });
        }
        let tz: chrono_tz::Tz = name
            .parse()
            .map_err(|_| invalid(format!("UnknownTimeZoneError: '{name}'")))?;
        let local = tz
            .from_local_datetime(&at)
            .earliest()
            .ok_or_else(|| invalid(format!("{at} does not exist in {name}")))?;
        Ok(Zone {
            name: name.to_string(),
            offset: local.offset().fix().local_minus_utc(),
        })
    }

    /// The local time in zone `name` of the UTC instant `utc`.
    fn from_utc(name: &str, utc: NaiveDateTime) -> Result<(NaiveDateTime, Zone), Error> {
        use chrono::{Offset, TimeZone as _};
        if let Some(offset) = fixed_offset(name) {
            let zone = Zone {
                name: name.to_string(),
                offset,
            };
            return Ok((utc + Duration::seconds(offset as i64), zone));
        }
        let tz: chrono_tz::Tz = name
            .parse()
            .map_err(|_| invalid(format!("UnknownTimeZoneError: '{name}'")))?;
        let local = tz.from_utc_datetime(&utc);
        let offset = local.offset().fix().local_minus_utc();
        Ok((
            local.naive_local(),
            Zone {
                name: name.to_string(),
                offset,
            },
        ))
    }
}

/// `±HH:MM` (and `UTC`/`Z`) as seconds east of UTC.
fn fixed_offset(name: &str) -> Option<i32> {
    if matches!(name, "UTC" | "utc" | "Z" | "GMT") {
        return Some(0);
    }
    let (sign, rest) = match name.as_bytes().first()? {
        b'+' => (1, &name[1..]),
        b'-' => (-1, &name[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    Some(sign * (h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60))
}

/// A Python `datetime` (with `date: false`) or `date`.
#[derive(Debug, Clone, PartialEq)]
pub struct PyDateTime {
    /// The wall-clock time (local to `tz` when aware).
    pub at: NaiveDateTime,
    pub is_date: bool,
    /// The zone of an aware datetime.
    pub tz: Option<Zone>,
}

impl PyDateTime {
    pub fn utc_now() -> Self {
        PyDateTime {
            at: chrono::Utc::now().naive_utc(),
            is_date: false,
            tz: Some(Zone::utc()),
        }
    }

    fn naive(at: NaiveDateTime) -> Self {
        PyDateTime {
            at,
            is_date: false,
            tz: None,
        }
    }

    fn date(d: NaiveDate) -> Self {
        PyDateTime {
            at: d.and_time(NaiveTime::MIN),
            is_date: true,
            tz: None,
        }
    }

    pub fn value(self) -> Value {
        Value::from_object(self)
    }

    /// `+09:00`, or nothing for a naive datetime.
    fn offset(&self) -> String {
        match &self.tz {
            Some(z) => {
                let sign = if z.offset < 0 { '-' } else { '+' };
                let a = z.offset.abs();
                format!("{sign}{:02}:{:02}", a / 3600, a / 60 % 60)
            }
            None => String::new(),
        }
    }

    /// The instant in UTC (a naive datetime is taken as UTC).
    fn utc(&self) -> NaiveDateTime {
        self.at - Duration::seconds(self.tz.as_ref().map_or(0, |z| z.offset) as i64)
    }

    /// This wall-clock time in zone `name` (pytz's `localize`).
    fn localized(&self, name: &str) -> Result<Self, Error> {
        Ok(PyDateTime {
            tz: Some(Zone::at_local(name, self.at)?),
            ..self.clone()
        })
    }

    fn isoformat(&self, sep: &str) -> String {
        if self.is_date {
            return self.at.format("%Y-%m-%d").to_string();
        }
        let micros = self.at.and_utc().timestamp_subsec_micros();
        let frac = if micros == 0 {
            String::new()
        } else {
            format!(".{micros:06}")
        };
        format!(
            "{}{sep}{}{frac}{}",
            self.at.format("%Y-%m-%d"),
            self.at.format("%H:%M:%S"),
            self.offset()
        )
    }
}

/// Python's `%f` is microseconds; chrono's `%6f` is.
fn chrono_format(python: &str) -> String {
    python.replace("%f", "%6f")
}

fn parse_iso(s: &str) -> Option<PyDateTime> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(PyDateTime::date(d));
    }
    let (body, tz) = match s.len().checked_sub(6).map(|i| s.split_at(i)) {
        Some((b, z)) if (z.starts_with('+') || z.starts_with('-')) && z.as_bytes()[3] == b':' => (
            b,
            fixed_offset(z).map(|offset| Zone {
                name: z.to_string(),
                offset,
            }),
        ),
        _ => (s.trim_end_matches('Z'), s.ends_with('Z').then(Zone::utc)),
    };
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(body, f) {
            return Some(PyDateTime {
                at,
                is_date: false,
                tz,
            });
        }
    }
    None
}

impl fmt::Display for PyDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.isoformat(" "))
    }
}

impl Object for PyDateTime {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    /// `<`, `==`, … between datetimes (and dates), as in Python.
    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<std::cmp::Ordering> {
        Some(self.utc().cmp(&other.downcast_ref::<Self>()?.utc()))
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let a = &self.at;
        let time = |v: u32| (!self.is_date).then_some(Value::from(v));
        match key.as_str()? {
            "year" => Some(Value::from(a.year())),
            "month" => Some(Value::from(a.month())),
            "day" => Some(Value::from(a.day())),
            "hour" => time(a.hour()),
            "minute" => time(a.minute()),
            "second" => time(a.second()),
            "microsecond" => time(a.and_utc().timestamp_subsec_micros()),
            "tzinfo" if !self.is_date => Some(match &self.tz {
                Some(z) => Value::from_object(TimeZone(z.name.clone())),
                None => Value::from(()),
            }),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let d = &self.at;
        Ok(match method {
            "strftime" => {
                let (f,): (String,) = from_args(args)?;
                Value::from(d.format(&chrono_format(&f)).to_string())
            }
            "isoformat" => {
                let (sep,): (Option<String>,) = from_args(args)?;
                Value::from(self.isoformat(sep.as_deref().unwrap_or("T")))
            }
            "timestamp" => Value::from(self.utc().and_utc().timestamp_micros() as f64 / 1e6),
            "date" => PyDateTime::date(d.date()).value(),
            "weekday" => Value::from(d.weekday().num_days_from_monday()),
            "isoweekday" => Value::from(d.weekday().number_from_monday()),
            "toordinal" => Value::from(d.date().num_days_from_ce()),
            "astimezone" => {
                let (tz,): (Option<Value>,) = from_args(args)?;
                let name = tz.map_or_else(|| "UTC".to_string(), |t| t.to_string());
                let (at, zone) = Zone::from_utc(&name, self.utc())?;
                PyDateTime {
                    at,
                    tz: Some(zone),
                    ..(**self).clone()
                }
                .value()
            }
            "replace" => {
                let (_, kwargs): (&[Value], Kwargs) = from_args(args)?;
                let get = |k: &str, current: u32| -> Result<u32, Error> {
                    Ok(kwargs.get::<Option<u32>>(k)?.unwrap_or(current))
                };
                let year = kwargs.get::<Option<i32>>("year")?.unwrap_or(d.year());
                let date =
                    NaiveDate::from_ymd_opt(year, get("month", d.month())?, get("day", d.day())?)
                        .ok_or_else(|| invalid("replace(): day is out of range for month"))?;
                let micro = get("microsecond", d.and_utc().timestamp_subsec_micros())?;
                let time = NaiveTime::from_hms_micro_opt(
                    get("hour", d.hour())?,
                    get("minute", d.minute())?,
                    get("second", d.second())?,
                    micro,
                )
                .ok_or_else(|| invalid("replace(): time out of range"))?;
                let mut out = (**self).clone();
                out.at = date.and_time(time);
                if kwargs.has("tzinfo") {
                    let tz: Value = kwargs.get("tzinfo")?;
                    out.tz = match tz.is_none() {
                        true => None,
                        false => Some(Zone::at_local(&tz.to_string(), out.at)?),
                    };
                }
                kwargs.assert_all_used()?;
                out.value()
            }
            _ => return Err(no_method("datetime", method)),
        })
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }
}

/// A Python `timedelta`.
#[derive(Debug, Clone, PartialEq)]
pub struct PyTimeDelta(pub Duration);

impl Object for PyTimeDelta {
    /// Python's `bool(timedelta(0))` is false.
    fn is_true(self: &Arc<Self>) -> bool {
        !self.0.is_zero()
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<std::cmp::Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<Self>()?.0))
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let micros = self.0.num_microseconds()?;
        let days = micros.div_euclid(86_400_000_000);
        let rest = micros.rem_euclid(86_400_000_000);
        Some(Value::from(match key.as_str()? {
            "days" => days,
            "seconds" => rest / 1_000_000,
            "microseconds" => rest % 1_000_000,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "total_seconds" => Ok(Value::from(
                self.0.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6,
            )),
            _ => Err(no_method("timedelta", method)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.0.num_microseconds().unwrap_or(0);
        let days = micros.div_euclid(86_400_000_000);
        let rest = micros.rem_euclid(86_400_000_000) / 1_000_000;
        if days != 0 {
            write!(f, "{days} day{}, ", if days.abs() == 1 { "" } else { "s" })?;
        }
        write!(f, "{}:{:02}:{:02}", rest / 3600, rest / 60 % 60, rest % 60)
    }
}

/// A pytz zone, by name.
#[derive(Debug, Clone)]
struct TimeZone(String);

impl Object for TimeZone {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        (key.as_str()? == "zone").then(|| Value::from(self.0.clone()))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "localize" => {
                let (dt,): (Value,) = from_args(args)?;
                let d = as_datetime(&dt).ok_or_else(|| invalid("localize() takes a datetime"))?;
                Ok(d.localized(&self.0)?.value())
            }
            _ => Err(no_method("timezone", method)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn as_datetime(v: &Value) -> Option<&PyDateTime> {
    v.downcast_object_ref::<PyDateTime>()
}

fn as_timedelta(v: &Value) -> Option<&PyTimeDelta> {
    v.downcast_object_ref::<PyTimeDelta>()
}

/// `modules.datetime.datetime`, `.date` and `.timedelta`: callable like the
/// Python classes, with their class methods.
#[derive(Debug)]
enum Class {
    DateTime,
    Date,
    TimeDelta,
}

impl Object for Class {
    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (pos, kwargs): (&[Value], Kwargs) = from_args(args)?;
        let arg = |i: usize, name: &str, default: i64| -> Result<i64, Error> {
            match pos.get(i) {
                Some(v) => i64::try_from(v.clone()),
                None => Ok(kwargs.get::<Option<i64>>(name)?.unwrap_or(default)),
            }
        };
        let out = match **self {
            Class::DateTime | Class::Date => {
                let (y, m, d) = (arg(0, "year", 1)?, arg(1, "month", 1)?, arg(2, "day", 1)?);
                let date = NaiveDate::from_ymd_opt(y as i32, m as u32, d as u32)
                    .ok_or_else(|| invalid("day is out of range for month"))?;
                if matches!(**self, Class::Date) {
                    PyDateTime::date(date).value()
                } else {
                    let time = NaiveTime::from_hms_micro_opt(
                        arg(3, "hour", 0)? as u32,
                        arg(4, "minute", 0)? as u32,
                        arg(5, "second", 0)? as u32,
                        arg(6, "microsecond", 0)? as u32,
                    )
                    .ok_or_else(|| invalid("time out of range"))?;
                    let mut dt = PyDateTime::naive(date.and_time(time));
                    if let Some(tz) = kwargs.get::<Option<Value>>("tzinfo")? {
                        if !tz.is_none() {
                            dt = dt.localized(&tz.to_string())?;
                        }
                    }
                    dt.value()
                }
            }
            Class::TimeDelta => {
                let f = |i: usize, name: &str| -> Result<f64, Error> {
                    match pos.get(i) {
                        Some(v) => f64::try_from(v.clone()),
                        None => Ok(kwargs.get::<Option<f64>>(name)?.unwrap_or(0.0)),
                    }
                };
                let micros = f(0, "days")? * 86_400e6
                    + f(1, "seconds")? * 1e6
                    + f(2, "microseconds")?
                    + f(3, "milliseconds")? * 1e3
                    + f(4, "minutes")? * 60e6
                    + f(5, "hours")? * 3_600e6
                    + f(6, "weeks")? * 604_800e6;
                Value::from_object(PyTimeDelta(Duration::microseconds(micros.round() as i64)))
            }
        };
        kwargs.assert_all_used()?;
        Ok(out)
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let now = PyDateTime::utc_now();
        let parse_fail = |s: &str| invalid(format!("could not parse `{s}` as a date or time"));
        Ok(match (&**self, method) {
            (Class::Date, "today") => PyDateTime::date(now.at.date()).value(),
            (Class::DateTime, "now" | "today") => PyDateTime { tz: None, ..now }.value(),
            (Class::DateTime, "utcnow") => PyDateTime { tz: None, ..now }.value(),
            (Class::DateTime, "strptime") => {
                let (s, f): (String, String) = from_args(args)?;
                let f = chrono_format(&f);
                let at = NaiveDateTime::parse_from_str(&s, &f)
                    .or_else(|_| {
                        NaiveDate::parse_from_str(&s, &f).map(|d| d.and_time(NaiveTime::MIN))
                    })
                    .map_err(|e| invalid(format!("strptime(`{s}`, `{f}`): {e}")))?;
                PyDateTime::naive(at).value()
            }
            (Class::DateTime | Class::Date, "fromisoformat") => {
                let (s,): (String,) = from_args(args)?;
                let mut d = parse_iso(&s).ok_or_else(|| parse_fail(&s))?;
                match **self {
                    Class::Date => d = PyDateTime::date(d.at.date()),
                    _ => d.is_date = false,
                }
                d.value()
            }
            (Class::DateTime | Class::Date, "fromtimestamp" | "utcfromtimestamp") => {
                let (ts,): (f64,) = from_args(args)?;
                let at = chrono::DateTime::from_timestamp_micros((ts * 1e6) as i64)
                    .ok_or_else(|| invalid("timestamp out of range"))?
                    .naive_utc();
                match **self {
                    Class::Date => PyDateTime::date(at.date()).value(),
                    _ => PyDateTime::naive(at).value(),
                }
            }
            _ => return Err(no_method(&format!("{self:?}"), method)),
        })
    }
}

/// `modules.datetime`.
pub fn module() -> Value {
    minijinja::context! {
        datetime => Value::from_object(Class::DateTime),
        date => Value::from_object(Class::Date),
        timedelta => Value::from_object(Class::TimeDelta),
    }
}

/// `modules.pytz`: `timezone(name)`, `utc`, `UTC`.
pub fn pytz_module() -> Value {
    let utc = Value::from_object(TimeZone("UTC".into()));
    minijinja::context! {
        timezone => Value::from_function(|name: String| Value::from_object(TimeZone(name))),
        utc => utc.clone(),
        UTC => utc,
    }
}

/// `a + b` where either may be a datetime or a timedelta; anything else is
/// added as Jinja adds.
pub fn add(state: &State, a: Value, b: Value) -> Result<Value, Error> {
    match (
        as_datetime(&a),
        as_timedelta(&a),
        as_datetime(&b),
        as_timedelta(&b),
    ) {
        (Some(d), _, _, Some(t)) | (_, Some(t), Some(d), _) => Ok(PyDateTime {
            at: d.at + t.0,
            ..d.clone()
        }
        .value()),
        (_, Some(x), _, Some(y)) => Ok(Value::from_object(PyTimeDelta(x.0 + y.0))),
        _ => plain(state, "a + b", a, b),
    }
}

/// `a - b`: datetime minus timedelta, datetime minus datetime (a timedelta),
/// timedelta minus timedelta; anything else as Jinja subtracts.
pub fn sub(state: &State, a: Value, b: Value) -> Result<Value, Error> {
    match (
        as_datetime(&a),
        as_timedelta(&a),
        as_datetime(&b),
        as_timedelta(&b),
    ) {
        (Some(d), _, _, Some(t)) => Ok(PyDateTime {
            at: d.at - t.0,
            ..d.clone()
        }
        .value()),
        (Some(x), _, Some(y), _) => Ok(Value::from_object(PyTimeDelta(x.utc() - y.utc()))),
        (_, Some(x), _, Some(y)) => Ok(Value::from_object(PyTimeDelta(x.0 - y.0))),
        _ => plain(state, "a - b", a, b),
    }
}

fn plain(state: &State, expr: &str, a: Value, b: Value) -> Result<Value, Error> {
    state
        .env()
        .compile_expression(expr)?
        .eval(minijinja::context! { a => a, b => b })
}

/// Register `__sluice_add` / `__sluice_sub` (the targets of
/// [`timedelta_arithmetic`]).
pub fn register(env: &mut minijinja::Environment<'_>) {
    env.add_function("__sluice_add", |state: &State, args: Rest<Value>| {
        let (a, b): (Value, Value) = from_args(&args)?;
        add(state, a, b)
    });
    env.add_function("__sluice_sub", |state: &State, args: Rest<Value>| {
        let (a, b): (Value, Value) = from_args(&args)?;
        sub(state, a, b)
    });
}

/// Rewrite `<operand> ± modules.datetime.timedelta(…)` into
/// `__sluice_sub(<operand>, modules.datetime.timedelta(…))` (or `_add`).
/// The left operand is a postfix expression: names, attribute lookups,
/// calls and subscripts (`run_started_at`, `modules.datetime.date.today()`,
/// `(end - x)`). Unchanged (and not copied) when there is no such
/// expression.
pub fn timedelta_arithmetic(text: &str) -> std::borrow::Cow<'_, str> {
    const CALL: &str = "timedelta(";
    if !text.contains(CALL) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    let mut search_from = out.len();
    while let Some(call) = out[..search_from].rfind(CALL) {
        search_from = call;
        let b = out.as_bytes();
        // The start of the right operand: the dotted name ending in `timedelta(`.
        let mut start = call;
        while start > 0
            && (b[start - 1].is_ascii_alphanumeric()
                || b[start - 1] == b'_'
                || b[start - 1] == b'.')
        {
            start -= 1;
        }
        // The operator before it.
        let mut op = start;
        while op > 0 && b[op - 1] == b' ' {
            op -= 1;
        }
        if op == 0 || !(b[op - 1] == b'-' || b[op - 1] == b'+') {
            continue;
        }
        let op_at = op - 1;
        let sign = b[op_at];
        // The left operand, scanned backwards.
        let mut left_end = op_at;
        while left_end > 0 && b[left_end - 1] == b' ' {
            left_end -= 1;
        }
        let Some(left_start) = postfix_start(b, left_end) else {
            continue;
        };
        // An operator binding tighter than `-` (or a chain) before the left
        // operand makes it a part of a larger one: left alone.
        let before = b[..left_start].iter().rev().find(|c| **c != b' ');
        if before.is_some_and(|c| b"*/%~-+.".contains(c)) {
            continue;
        }
        // The end of the call.
        let Some(close) = matching_close(b, call + CALL.len() - 1) else {
            continue;
        };
        let function = if sign == b'-' {
            "__sluice_sub"
        } else {
            "__sluice_add"
        };
        let rewritten = format!(
            "{function}({}, {})",
            &out[left_start..left_end],
            &out[start..=close]
        );
        out.replace_range(left_start..=close, &rewritten);
        search_from = left_start;
    }
    std::borrow::Cow::Owned(out)
}

/// Where the postfix expression ending at `end` (exclusive) starts.
fn postfix_start(b: &[u8], end: usize) -> Option<usize> {
    let mut i = end;
    loop {
        // Calls and subscripts (and a parenthesised operand).
        while i > 0 && (b[i - 1] == b')' || b[i - 1] == b']') {
            i = matching_open(b, i - 1)?;
        }
        let name_end = i;
        while i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') {
            i -= 1;
        }
        if i > 0 && b[i - 1] == b'.' && (i < name_end) {
            i -= 1;
            continue;
        }
        break;
    }
    (i < end).then_some(i)
}

/// `a - b` inside `{{ … }}` / `{% … %}` where an operand is a datetime
/// (it names `datetime`, `run_started_at`, `utcnow`, `now()`, `today()`)
/// becomes `__sluice_sub(a, b)`: minijinja has no operator overloading, and
/// dbt packages take differences of datetimes
/// (`modules.datetime.datetime.utcnow() - ctx.start_time`). Both operands
/// are postfix expressions; a tighter-binding operator on either side
/// leaves the text alone. Unchanged (and not copied) when there is none.
pub fn datetime_difference(text: &str) -> std::borrow::Cow<'_, str> {
    const HINTS: [&str; 5] = ["datetime", "run_started_at", "utcnow", "now()", "today()"];
    if !HINTS.iter().any(|h| text.contains(h)) {
        return std::borrow::Cow::Borrowed(text);
    }
    binary_calls(text, " - ", "__sluice_sub", |left, right| {
        HINTS.iter().any(|h| left.contains(h) || right.contains(h))
    })
}

/// `a + b` between two names (or other postfix expressions) in a template
/// that uses timedeltas becomes `__sluice_add(a, b)`, which adds datetimes
/// and timedeltas as Python does and anything else as Jinja does: sums of
/// durations held in variables (elementary's `existing_duration +
/// sub_context_duration`) have no datetime to recognize them by.
pub fn timedelta_sums(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("timedelta") {
        return std::borrow::Cow::Borrowed(text);
    }
    let operand = |o: &str| o.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    binary_calls(text, " + ", "__sluice_add", |left, right| {
        operand(left) && operand(right)
    })
}

/// Rewrite `left <op> right` inside Jinja into `func(left, right)` where
/// both sides are postfix expressions, no tighter-binding operator touches
/// them, and `applies(left, right)`. Unchanged (and not copied) when no
/// such expression is found.
fn binary_calls<'t>(
    text: &'t str,
    op: &str,
    func: &str,
    applies: impl Fn(&str, &str) -> bool,
) -> std::borrow::Cow<'t, str> {
    if !text.contains(op) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    let mut changed = false;
    let mut from = 0;
    while let Some(found) = out[from..].find(op).map(|i| from + i) {
        from = found + op.len();
        if !inside_jinja(&out, found) {
            continue;
        }
        let b = out.as_bytes();
        let mut left_end = found;
        while left_end > 0 && b[left_end - 1] == b' ' {
            left_end -= 1;
        }
        let Some(left_start) = postfix_start(b, left_end) else {
            continue;
        };
        let mut right_start = found + op.len();
        while right_start < b.len() && b[right_start] == b' ' {
            right_start += 1;
        }
        let Some(right_end) = postfix_end(b, right_start) else {
            continue;
        };
        let before = b[..left_start].iter().rev().find(|c| **c != b' ');
        let after = b[right_end..].iter().find(|c| **c != b' ');
        if before.is_some_and(|c| b"*/%~-+.".contains(c))
            || after.is_some_and(|c| b"*/%.([".contains(c))
        {
            continue;
        }
        let (left, right) = (&out[left_start..left_end], &out[right_start..right_end]);
        if !applies(left, right) {
            continue;
        }
        let rewritten = format!("{func}({left}, {right})");
        out.replace_range(left_start..right_end, &rewritten);
        from = left_start + rewritten.len();
        changed = true;
    }
    if changed {
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Whether offset `at` is inside a `{{ … }}` or `{% … %}`, and not inside
/// a string literal there.
fn inside_jinja(text: &str, at: usize) -> bool {
    let open = [text[..at].rfind("{{"), text[..at].rfind("{%")]
        .into_iter()
        .flatten()
        .max();
    let close = [text[..at].rfind("}}"), text[..at].rfind("%}")]
        .into_iter()
        .flatten()
        .max();
    let Some(open) = open.filter(|o| close.is_none_or(|c| *o > c)) else {
        return false;
    };
    let mut quote = None;
    for c in text[open..at].chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            _ => {}
        }
    }
    quote.is_none()
}

/// The end of the postfix expression starting at `start`: a name or a
/// parenthesised group, then attribute lookups, calls and subscripts.
fn postfix_end(b: &[u8], start: usize) -> Option<usize> {
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = start;
    match b.get(i) {
        Some(b'(') => i = bracket_close(b, i)? + 1,
        Some(c) if ident(*c) => {
            while i < b.len() && ident(b[i]) {
                i += 1;
            }
        }
        _ => return None,
    }
    loop {
        match b.get(i) {
            Some(b'.')
                if b.get(i + 1)
                    .is_some_and(|c| ident(*c) && !c.is_ascii_digit()) =>
            {
                i += 1;
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
            }
            Some(b'(' | b'[') => i = bracket_close(b, i)? + 1,
            _ => break,
        }
    }
    Some(i)
}

/// The bracket closing the `(` or `[` at `open`.
fn bracket_close(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in b.iter().enumerate().skip(open) {
        match c {
            b'(' | b'[' => depth += 1,
            b')' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn matching_open(b: &[u8], close: usize) -> Option<usize> {
    let (open, shut) = if b[close] == b')' {
        (b'(', b')')
    } else {
        (b'[', b']')
    };
    let mut depth = 0;
    for i in (0..=close).rev() {
        if b[i] == shut {
            depth += 1;
        } else if b[i] == open {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

fn matching_close(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in b.iter().enumerate().skip(open) {
        match c {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_in_templates_using_timedeltas_become_calls() {
        let text = "{% set zero = modules.datetime.timedelta() %}{% do d.update({k: existing_duration + sub_context_duration}) %}{{ loop.index + 1 }}{{ a + b * c }}{{ 'x' + y }}";
        assert_eq!(
            timedelta_sums(text),
            "{% set zero = modules.datetime.timedelta() %}{% do d.update({k: __sluice_add(existing_duration, sub_context_duration)}) %}{{ loop.index + 1 }}{{ a + b * c }}{{ 'x' + y }}"
        );
        assert_eq!(
            timedelta_sums("{{ a + b + c }} timedelta"),
            "{{ __sluice_add(__sluice_add(a, b), c) }} timedelta"
        );
        // Without timedeltas in the template: left alone.
        let plain = "{{ a + b }}";
        assert!(matches!(
            timedelta_sums(plain),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn datetime_differences_become_calls() {
        assert_eq!(
            datetime_difference("{% do d.update({n: modules.datetime.datetime.utcnow() - ctx.start_time}) %}"),
            "{% do d.update({n: __sluice_sub(modules.datetime.datetime.utcnow(), ctx.start_time)}) %}"
        );
        assert_eq!(
            datetime_difference("{{ (run_started_at - started[0]).total_seconds() }}"),
            "{{ (__sluice_sub(run_started_at, started[0])).total_seconds() }}"
        );
        // Outside Jinja, without a datetime, or under a tighter operator: left alone.
        assert_eq!(
            datetime_difference("select now() - interval 1 day"),
            "select now() - interval 1 day"
        );
        assert_eq!(
            datetime_difference("{{ a - b }} datetime"),
            "{{ a - b }} datetime"
        );
        assert_eq!(
            datetime_difference("{{ 'run_started_at - x' }}"),
            "{{ 'run_started_at - x' }}"
        );
        assert_eq!(
            datetime_difference("{{ run_started_at - x * 2 }}"),
            "{{ run_started_at - x * 2 }}"
        );
    }

    #[test]
    fn timedelta_arithmetic_becomes_calls() {
        assert_eq!(
            timedelta_arithmetic("{{ run_started_at - modules.datetime.timedelta(days=1) }}"),
            "{{ __sluice_sub(run_started_at, modules.datetime.timedelta(days=1)) }}"
        );
        assert_eq!(
            timedelta_arithmetic(
                "{% set s = (modules.datetime.date.today() + modules.datetime.timedelta(2)).isoformat() %}"
            ),
            "{% set s = (__sluice_add(modules.datetime.date.today(), modules.datetime.timedelta(2))).isoformat() %}"
        );
        assert_eq!(
            timedelta_arithmetic("{{ x[0].at - timedelta(hours=(1 + 2)) }}"),
            "{{ __sluice_sub(x[0].at, timedelta(hours=(1 + 2))) }}"
        );
        assert_eq!(timedelta_arithmetic("select 1 - 2"), "select 1 - 2");
        // `*` binds tighter: the rewrite would change the meaning.
        assert_eq!(
            timedelta_arithmetic("{{ 2 * x - timedelta(1) }}"),
            "{{ 2 * x - timedelta(1) }}"
        );
    }

    fn render(src: &str) -> String {
        let mut env = minijinja::Environment::new();
        register(&mut env);
        env.add_global("datetime", module());
        env.add_global("pytz", pytz_module());
        env.render_str(&timedelta_sums(&timedelta_arithmetic(src)), ())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn datetimes_behave_like_pythons() {
        assert_eq!(
            render("{{ datetime.datetime(2024, 3, 1, 12) - datetime.timedelta(days=1) }}"),
            "2024-02-29 12:00:00"
        );
        assert_eq!(
            render("{{ (datetime.date(2024, 1, 31) + datetime.timedelta(1)).isoformat() }}"),
            "2024-02-01"
        );
        assert_eq!(
            render("{{ datetime.datetime.strptime('2024-05-06', '%Y-%m-%d').replace(hour=7).strftime('%Y%m%d %H') }}"),
            "20240506 07"
        );
        assert_eq!(
            render("{{ __sluice_sub(datetime.datetime(2024,1,3), datetime.datetime(2024,1,1)).days }} {{ datetime.timedelta(hours=36) }}"),
            "2 1 day, 12:00:00"
        );
        assert_eq!(
            render("{{ pytz.timezone('UTC').localize(datetime.datetime.fromisoformat('2024-01-01T10:00:00')) }}"),
            "2024-01-01 10:00:00+00:00"
        );
        assert_eq!(
            render("{{ datetime.date.fromisoformat('2024-02-03').weekday() }}"),
            "5"
        );
        // Durations held in variables add up (elementary's timings), and
        // numbers, strings and lists still add as Jinja adds them.
        assert_eq!(
            render("{% set a = datetime.timedelta(seconds=90) %}{% set b = datetime.timedelta(minutes=1) %}{% set n = 2 %}{% set m = 3 %}{% set l = [1] %}{% set k = [2] %}{% set s = 'x' %}{% set t = 'y' %}{{ (a + b).total_seconds() }} {{ n + m }} {{ l + k }} {{ s + t }}"),
            "150.0 5 [1, 2] xy"
        );
        // Zones shift instants: midnight in Tokyo is 15:00 UTC the day before.
        assert_eq!(
            render("{% set t = pytz.timezone('Asia/Tokyo').localize(datetime.datetime(2026, 9, 1)) %}{{ t }} {{ t.astimezone(pytz.utc) }} {{ 'before' if t < datetime.datetime.fromisoformat('2026-08-31T15:00:01+00:00') else 'after' }} {{ 'yes' if t and t == t.astimezone(pytz.utc) }}"),
            "2026-09-01 00:00:00+09:00 2026-08-31 15:00:00+00:00 before yes"
        );
        assert_eq!(
            render("{{ pytz.timezone('America/Los_Angeles').localize(datetime.datetime(2026, 1, 15)).isoformat() }}"),
            "2026-01-15T00:00:00-08:00"
        );
        assert_eq!(
            render("{{ pytz.timezone('Asia/Tokyo').localize(datetime.datetime(1970, 1, 1, 9)).timestamp() }}"),
            "0.0"
        );
        assert_eq!(
            render("{{ 5 - 2 }} {{ __sluice_sub(5, 2) }} {{ __sluice_add('a', 'b') }}"),
            "3 3 ab"
        );
    }
}
