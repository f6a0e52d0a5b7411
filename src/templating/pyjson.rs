//! JSON text as Python writes it, for dbt's `tojson()` (`json.dumps`) and
//! Jinja's `|tojson` filter (`json.dumps(…, sort_keys=True)`, HTML-safe).
//! What templates write lands in tables (dbt_artifacts, elementary), so
//! it must be the same text dbt writes: `", "` and `": "` separators
//! (`","` with an indent), non-ASCII as `\uXXXX`, floats as Python's repr.

use serde_json::Value;

/// How to write: `json.dumps`' `sort_keys` and `indent`, and Jinja's
/// HTML-safe escaping of `<`, `>`, `&` and `'`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub sort_keys: bool,
    pub indent: Option<usize>,
    pub html_safe: bool,
}

pub fn dumps(v: &Value, o: &Options) -> String {
    let mut out = String::new();
    write(&mut out, v, o, 0);
    out
}

fn write(out: &mut String, v: &Value, o: &Options, depth: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => string(out, s, o.html_safe),
        Value::Array(items) => {
            let items: Vec<&Value> = items.iter().collect();
            container(out, ('[', ']'), &items, o, depth, |out, item, depth| {
                write(out, item, o, depth)
            });
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if o.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            container(out, ('{', '}'), &entries, o, depth, |out, (k, v), depth| {
                string(out, k, o.html_safe);
                out.push_str(": ");
                write(out, v, o, depth);
            });
        }
    }
}

/// `[a, b]` / `{"k": v}`, or one item per line under `indent`.
fn container<T: Copy>(
    out: &mut String,
    (open, close): (char, char),
    items: &[T],
    o: &Options,
    depth: usize,
    mut item: impl FnMut(&mut String, T, usize),
) {
    out.push(open);
    if items.is_empty() {
        out.push(close);
        return;
    }
    for (i, x) in items.iter().enumerate() {
        match o.indent {
            Some(n) => {
                if i > 0 {
                    out.push(',');
                }
                out.push('\n');
                out.push_str(&" ".repeat(n * (depth + 1)));
            }
            None if i > 0 => out.push_str(", "),
            None => {}
        }
        item(out, *x, depth + 1);
    }
    if let Some(n) = o.indent {
        out.push('\n');
        out.push_str(&" ".repeat(n * depth));
    }
    out.push(close);
}

/// Integers as they are; floats as Python's `repr` (`1.0`, `1e+20`,
/// `1e-05`, `NaN`).
pub(crate) fn number(n: &serde_json::Number) -> String {
    let Some(f) = n.as_f64().filter(|_| n.is_f64()) else {
        return n.to_string();
    };
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let exp = if f == 0.0 {
        0
    } else {
        f.abs().log10().floor() as i32
    };
    if (-4..16).contains(&exp) {
        let s = format!("{f:?}");
        return if s.contains('.') || s.contains('e') {
            s
        } else {
            format!("{s}.0")
        };
    }
    // Scientific: Rust's shortest mantissa, Python's exponent (`e+XX`).
    let s = format!("{f:e}");
    let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    let sign = if e < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", e.abs())
}

fn string(out: &mut String, s: &str, html_safe: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\'' if html_safe => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 || !c.is_ascii() => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{:04x}", u));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Each expected text is what CPython 3.11's `json.dumps` prints.
    #[test]
    fn writes_what_python_writes() {
        let plain = Options::default();
        let v = json!({"b": [1, 2.5, null, true], "a": {"x": "é<ü>"}, "c": []});
        assert_eq!(
            dumps(&v, &plain),
            r#"{"b": [1, 2.5, null, true], "a": {"x": "\u00e9<\u00fc>"}, "c": []}"#
        );
        let sorted = Options {
            sort_keys: true,
            ..plain
        };
        assert_eq!(
            dumps(&v, &sorted),
            r#"{"a": {"x": "\u00e9<\u00fc>"}, "b": [1, 2.5, null, true], "c": []}"#
        );
        let indented = Options {
            indent: Some(2),
            ..plain
        };
        assert_eq!(
            dumps(&json!({"k": [1, {}], "e": {}}), &indented),
            "{\n  \"k\": [\n    1,\n    {}\n  ],\n  \"e\": {}\n}"
        );
        let html = Options {
            html_safe: true,
            ..plain
        };
        assert_eq!(
            dumps(&json!("<a href='x'>&</a>"), &html),
            r#""\u003ca href=\u0027x\u0027\u003e\u0026\u003c/a\u003e""#
        );
        assert_eq!(
            dumps(&json!("tab\there \"q\" \\ 😀 \u{1}"), &plain),
            r#""tab\there \"q\" \\ \ud83d\ude00 \u0001""#
        );
    }

    #[test]
    fn floats_as_pythons_repr() {
        let p = Options::default();
        let f = |x: f64| dumps(&json!(x), &p);
        assert_eq!(f(1.0), "1.0");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(-2.5), "-2.5");
        assert_eq!(f(1e20), "1e+20");
        assert_eq!(f(1.5e16), "1.5e+16");
        assert_eq!(f(123456789012345.0), "123456789012345.0");
        assert_eq!(f(0.0001), "0.0001");
        assert_eq!(f(0.00001), "1e-05");
        assert_eq!(f(0.0), "0.0");
        assert_eq!(dumps(&json!(42), &p), "42");
    }
}
