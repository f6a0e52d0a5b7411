//! `modules.re`: the part of Python's `re` that dbt macros use (`match`,
//! `search`, `fullmatch`, `findall`, `sub`, `split`, `compile`, the
//! `IGNORECASE`/`MULTILINE`/`DOTALL`/`VERBOSE` flags, match objects), on the
//! `fancy-regex` crate, which has Python's look-around and back-references.

use std::sync::Arc;

use fancy_regex::Regex;
use minijinja::value::{from_args, Kwargs, Object, ObjectRepr};
use minijinja::{Error, ErrorKind, State, Value};

const IGNORECASE: i64 = 2;
const MULTILINE: i64 = 8;
const DOTALL: i64 = 16;
const VERBOSE: i64 = 64;

/// The `modules.re` value.
pub fn module() -> Value {
    Value::from_object(Module)
}

#[derive(Debug)]
struct Module;

/// A compiled pattern (`re.compile(…)`).
#[derive(Debug)]
struct Pattern(Regex);

/// A successful match: its groups, as strings (`None` for a group that did not take part).
#[derive(Debug)]
struct Match {
    groups: Vec<Option<(usize, usize, String)>>,
}

fn compile(pattern: &str, flags: i64) -> Result<Regex, Error> {
    let mut inline = String::new();
    for (bit, c) in [
        (IGNORECASE, 'i'),
        (MULTILINE, 'm'),
        (DOTALL, 's'),
        (VERBOSE, 'x'),
    ] {
        if flags & bit != 0 {
            inline.push(c);
        }
    }
    let full = if inline.is_empty() {
        pattern.to_string()
    } else {
        format!("(?{inline}){pattern}")
    };
    Regex::new(&full).map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("modules.re: pattern {pattern:?} is not supported: {e}"),
        )
    })
}

/// Python's replacement syntax (`\1`, `\g<1>`, `\g<name>`) as the regex crate's.
fn replacement(repl: &str) -> String {
    let mut out = String::with_capacity(repl.len());
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        n.push(d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|&c| c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// A failed search (the backtracking limit of a pathological pattern).
fn search_error(e: fancy_regex::Error) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("modules.re: {e}"))
}

fn found(re: &Regex, text: &str, at_start: bool, whole: bool) -> Result<Value, Error> {
    let Some((caps, m)) = re
        .captures(text)
        .map_err(search_error)?
        .and_then(|c| c.get(0).map(|m| (m.start(), m.end())).map(|m| (c, m)))
    else {
        return Ok(Value::from(()));
    };
    if (at_start && m.0 != 0) || (whole && (m.0 != 0 || m.1 != text.len())) {
        // Anchored variants: look for a match that starts at 0 (and ends at the end).
        let anchored = if whole {
            format!(r"\A(?:{})\z", re.as_str())
        } else {
            format!(r"\A(?:{})", re.as_str())
        };
        return match Regex::new(&anchored) {
            Ok(a) => found(&a, text, false, false),
            Err(_) => Ok(Value::from(())),
        };
    }
    Ok(Value::from_object(Match {
        groups: caps
            .iter()
            .map(|g| g.map(|g| (g.start(), g.end(), g.as_str().to_string())))
            .collect(),
    }))
}

/// `method(pattern?, args…)` on a pattern `re`.
fn call(re: &Regex, method: &str, args: &[Value]) -> Result<Value, Error> {
    match method {
        "match" | "search" | "fullmatch" => {
            let (text,): (String,) = from_args(args)?;
            found(re, &text, method == "match", method == "fullmatch")
        }
        "findall" => {
            let (text,): (String,) = from_args(args)?;
            let groups = re.captures_len() - 1;
            let all: Vec<Value> = re
                .captures_iter(&text)
                .map(|c| {
                    let c = c.map_err(search_error)?;
                    let s = |i: usize| Value::from(c.get(i).map_or("", |m| m.as_str()));
                    Ok(match groups {
                        0 => s(0),
                        1 => s(1),
                        n => Value::from((1..=n).map(s).collect::<Vec<_>>()),
                    })
                })
                .collect::<Result<_, Error>>()?;
            Ok(Value::from(all))
        }
        "sub" => {
            // Python's `sub(repl, string, count=0)`: count by position too.
            let (repl, text, count, kwargs): (String, String, Option<usize>, Kwargs) =
                from_args(args)?;
            let count: Option<usize> = count.or(kwargs.get("count")?);
            let repl = replacement(&repl);
            Ok(Value::from(
                re.try_replacen(&text, count.unwrap_or(0), repl.as_str())
                    .map_err(search_error)?
                    .into_owned(),
            ))
        }
        "split" => {
            let (text,): (String,) = from_args(args)?;
            let parts = re
                .split(&text)
                .map(|p| p.map(Value::from).map_err(search_error))
                .collect::<Result<Vec<_>, Error>>()?;
            Ok(Value::from(parts))
        }
        _ => Err(Error::new(
            ErrorKind::UnknownMethod,
            format!("modules.re has no function `{method}`"),
        )),
    }
}

impl Object for Module {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(Value::from(match key.as_str()? {
            "IGNORECASE" | "I" => IGNORECASE,
            "MULTILINE" | "M" => MULTILINE,
            "DOTALL" | "S" => DOTALL,
            "VERBOSE" | "X" => VERBOSE,
            _ => return None,
        }))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        // `re.f(pattern, …, flags=0)`: the pattern first, flags by keyword
        // or as the last positional argument of `compile`/`match`/`search`.
        let (pattern, rest) = args.split_first().ok_or_else(|| {
            Error::new(
                ErrorKind::MissingArgument,
                format!("re.{method} needs a pattern"),
            )
        })?;
        let pattern = pattern.as_str().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                "a regular expression must be a string",
            )
        })?;
        let mut rest = rest.to_vec();
        let mut flags = 0;
        if let Some(kw) = rest.last().and_then(|v| Kwargs::try_from(v.clone()).ok()) {
            if let Some(f) = kw.get::<Option<i64>>("flags")? {
                flags = f;
                rest.pop();
            }
        }
        let positional_flags = match method {
            "compile" => 1,
            "match" | "search" | "fullmatch" | "findall" | "split" => 2,
            "sub" => 4,
            _ => usize::MAX,
        };
        if rest.len() == positional_flags {
            if let Some(f) = rest.last().and_then(Value::as_i64) {
                flags = f;
                rest.pop();
            }
        }
        let re = compile(pattern, flags)?;
        if method == "compile" {
            return Ok(Value::from_object(Pattern(re)));
        }
        call(&re, method, &rest)
    }
}

impl Object for Pattern {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        (key.as_str()? == "pattern").then(|| Value::from(self.0.as_str()))
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        call(&self.0, method, args)
    }
}

impl Object for Match {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let group = |i: usize| {
            self.groups
                .get(i)
                .map(|g| {
                    g.as_ref()
                        .map_or(Value::from(()), |g| Value::from(g.2.clone()))
                })
                .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "no such group"))
        };
        let (n,): (Option<usize>,) = match method {
            "groups" => (None,),
            _ => from_args(args)?,
        };
        let n = n.unwrap_or(0);
        let span = |i: usize| {
            self.groups
                .get(i)
                .and_then(|g| g.as_ref().map(|g| (g.0, g.1)))
        };
        match method {
            "group" => group(n),
            "groups" => (1..self.groups.len())
                .map(group)
                .collect::<Result<Vec<_>, _>>()
                .map(Value::from),
            "start" => Ok(Value::from(span(n).map(|s| s.0))),
            "end" => Ok(Value::from(span(n).map(|s| s.1))),
            "span" => Ok(span(n).map_or(Value::from(()), |(a, b)| Value::from(vec![a, b]))),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("a match has no method `{method}`"),
            )),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.groups.first().and_then(|g| g.as_ref());
        match m {
            Some((a, b, s)) => write!(f, "<re.Match object; span=({a}, {b}), match={s:?}>"),
            None => f.write_str("<re.Match object>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str) -> String {
        let mut env = minijinja::Environment::new();
        env.add_global("re", module());
        env.render_str(src, ()).expect("render")
    }

    #[test]
    fn python_re_functions_behave_as_in_python() {
        assert_eq!(
            render("{{ re.match('a(b+)', 'abbc').group(1) }}|{{ re.match('b', 'abc') is none }}|{{ re.search('b+', 'abbc').group() }}"),
            "bb|True|bb"
        );
        assert_eq!(
            render("{{ re.sub('(\\\\w+)@(\\\\w+)', '\\\\2 at \\\\1', 'me@home, you@work') }}"),
            "home at me, work at you"
        );
        assert_eq!(
            render(
                "{{ re.sub('o', '0', 'foo boo', 1) }}|{{ re.sub('o', '0', 'foo boo', count=2) }}"
            ),
            "f0o boo|f00 boo"
        );
        assert_eq!(
            render("{{ re.findall('[0-9]+', 'a1b22c333') | join(',') }}|{{ re.split(',\\\\s*', 'a, b,c') | join('|') }}"),
            "1,22,333|a|b|c"
        );
        assert_eq!(
            render("{% set p = re.compile('^STG_', re.IGNORECASE) %}{{ p.match('stg_orders') is not none }}|{{ re.fullmatch('a+', 'aab') is none }}|{{ re.sub('x', '$', 'axb') }}"),
            "True|True|a$b"
        );
        assert_eq!(
            render("{{ re.search('(a)(z)?', 'ab').groups() }}"),
            "[\"a\", None]"
        );
    }

    #[test]
    fn look_around_back_references_and_verbose_patterns_work() {
        assert_eq!(
            render(
                r#"{{ re.findall('(?<!distinct\s)(from|join)\s+(\w+)', 'select distinct from_x from t join u') | map('join', ':') | join(',') }}"#
            ),
            "from:t,join:u"
        );
        assert_eq!(
            render(
                r#"{{ re.sub('(\w)\\1', '<\\1\\1>', 'aabcc') }}|{{ re.search('(?x) a  # an a
 b', 'xab') is not none }}"#
            ),
            "<aa>b<cc>|True"
        );
    }

    #[test]
    fn an_unsupported_pattern_says_so() {
        let mut env = minijinja::Environment::new();
        env.add_global("re", module());
        let e = env
            .render_str("{{ re.search('a(?P<x', 'ab') }}", ())
            .expect_err("unclosed group");
        assert!(e.to_string().contains("not supported"), "{e}");
    }
}
