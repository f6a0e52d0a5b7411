//! Lists and dicts that dbt's templates change in place.
//!
//! Jinja as dbt runs it (Python) lets a template build a list with
//! `{% set cols = [] %}…{% do cols.append(c) %}` and a dict with
//! `{% do d.update({…}) %}`; minijinja's literals cannot change. So a
//! `{% set name = [...] %}` or `{% set name = {...} %}` whose right-hand side
//! is a single literal becomes a mutable list or dict (`literals`), with
//! Python's methods. Line numbers do not move. Methods these do not have
//! (`count`, `items`, `get`, …) fall through to minijinja-contrib's Python
//! compatibility, like every other value's.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, MutexGuard};

use indexmap::IndexMap;
use minijinja::value::{from_args, Enumerator, Object, ObjectRepr};
use minijinja::{Error, ErrorKind, State, Value};

/// The global function a list literal is wrapped in.
pub const LIST: &str = "__sluice_list";
/// The global function a dict literal is wrapped in.
pub const DICT: &str = "__sluice_dict";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn unknown(kind: &str, method: &str) -> Error {
    Error::new(
        ErrorKind::UnknownMethod,
        format!("{kind} has no method named {method}"),
    )
}

/// A list that can change in place in the list's stead (anything else as
/// it is): for a list stored into a dict (`d.update({k: []})`, so that
/// `d[k].append(x)` works as in Python) or passed to a macro.
pub fn changeable(v: Value) -> Value {
    if v.kind() == minijinja::value::ValueKind::Seq && v.downcast_object_ref::<List>().is_none() {
        List::value(v.clone()).unwrap_or(v)
    } else {
        v
    }
}

/// `v` with every dict and list in it (at any depth) able to change in
/// place, as the Python structures dbt hands to Jinja (`graph`) are.
pub fn deep(v: Value) -> Value {
    use minijinja::value::ValueKind;
    let is_ours =
        v.downcast_object_ref::<Dict>().is_some() || v.downcast_object_ref::<List>().is_some();
    // Plain data only: relations, query results and other objects stay
    // what they are.
    let plain = v.downcast_object_ref::<Vec<Value>>().is_some()
        || v.downcast_object_ref::<indexmap::IndexMap<Value, Value>>()
            .is_some()
        || v.downcast_object_ref::<std::collections::BTreeMap<Value, Value>>()
            .is_some();
    match v.kind() {
        _ if is_ours || !plain => v,
        ValueKind::Map => {
            let entries: IndexMap<Value, Value> = v
                .try_iter()
                .map(|keys| {
                    keys.map(|k| {
                        let item = v.get_item(&k).unwrap_or_default();
                        (k, deep(item))
                    })
                    .collect()
                })
                .unwrap_or_default();
            Value::from_object(Dict(Mutex::new(entries)))
        }
        ValueKind::Seq => {
            let items: Vec<Value> = v
                .try_iter()
                .map(|i| i.map(deep).collect())
                .unwrap_or_default();
            Value::from_object(List(Mutex::new(items)))
        }
        _ => v,
    }
}

/// A list with Python's mutating methods.
#[derive(Debug, Default)]
pub struct List(Mutex<Vec<Value>>);

impl List {
    pub fn value(items: Value) -> Result<Value, Error> {
        let items: Vec<Value> = items.try_iter()?.collect();
        Ok(Value::from_object(List(Mutex::new(items))))
    }
}

impl Object for List {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = lock(&self.0);
        let i = i64::try_from(key.clone()).ok()?;
        let i = if i < 0 { items.len() as i64 + i } else { i };
        items.get(usize::try_from(i).ok()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(lock(&self.0).clone())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(lock(&self.0).len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let mut items = lock(&self.0);
        let none = Value::from(());
        match method {
            "append" => {
                let (v,): (Value,) = from_args(args)?;
                items.push(v);
                Ok(none)
            }
            "extend" => {
                let (more,): (Value,) = from_args(args)?;
                items.extend(more.try_iter()?);
                Ok(none)
            }
            "insert" => {
                let (at, v): (i64, Value) = from_args(args)?;
                let len = items.len() as i64;
                let at = if at < 0 {
                    (len + at).max(0)
                } else {
                    at.min(len)
                };
                items.insert(at as usize, v);
                Ok(none)
            }
            "pop" => {
                let (at,): (Option<i64>,) = from_args(args)?;
                let len = items.len() as i64;
                let at = at.map_or(len - 1, |i| if i < 0 { len + i } else { i });
                if at < 0 || at >= len {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "pop index out of range",
                    ));
                }
                Ok(items.remove(at as usize))
            }
            "remove" => {
                let (v,): (Value,) = from_args(args)?;
                match items.iter().position(|x| *x == v) {
                    Some(i) => {
                        items.remove(i);
                        Ok(none)
                    }
                    None => Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("list.remove({v}): not in list"),
                    )),
                }
            }
            "index" => {
                let (v,): (Value,) = from_args(args)?;
                items
                    .iter()
                    .position(|x| *x == v)
                    .map(Value::from)
                    .ok_or_else(|| {
                        Error::new(ErrorKind::InvalidOperation, format!("{v} is not in list"))
                    })
            }
            "reverse" => {
                items.reverse();
                Ok(none)
            }
            "clear" => {
                items.clear();
                Ok(none)
            }
            "copy" => Ok(Value::from_object(List(Mutex::new(items.clone())))),
            _ => Err(unknown("list", method)),
        }
    }
}

/// A dict with Python's mutating methods.
#[derive(Debug, Default)]
pub struct Dict(Mutex<IndexMap<Value, Value>>);

impl Dict {
    pub fn value(map: Value) -> Result<Value, Error> {
        let mut entries = IndexMap::new();
        for k in map.try_iter()? {
            let v = map.get_item(&k)?;
            entries.insert(k, v);
        }
        Ok(Value::from_object(Dict(Mutex::new(entries))))
    }
}

impl Object for Dict {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        lock(&self.0).get(key).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(lock(&self.0).keys().cloned().collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(lock(&self.0).len())
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let none = Value::from(());
        match method {
            "update" => {
                let (other,): (Value,) = from_args(args)?;
                let mut add = Vec::new();
                for k in other.try_iter()? {
                    let v = other.get_item(&k)?;
                    add.push((k, changeable(v)));
                }
                lock(&self.0).extend(add);
                Ok(none)
            }
            "setdefault" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                let mut entries = lock(&self.0);
                Ok(entries
                    .entry(k)
                    .or_insert_with(|| changeable(default.unwrap_or_default()))
                    .clone())
            }
            "pop" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                match (lock(&self.0).shift_remove(&k), default) {
                    (Some(v), _) | (None, Some(v)) => Ok(v),
                    (None, None) => Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("dict.pop({k}): no such key"),
                    )),
                }
            }
            "clear" => {
                lock(&self.0).clear();
                Ok(none)
            }
            "copy" => Ok(Value::from_object(Dict(Mutex::new(lock(&self.0).clone())))),
            _ => Err(unknown("dict", method)),
        }
    }
}

/// `text` with each `{% set name = [...] %}` / `{% set name = {...} %}`
/// literal wrapped in `__sluice_list(…)` / `__sluice_dict(…)`, on the same
/// lines. Unchanged (and not copied) when there is none.
pub fn literals(text: &str) -> Cow<'_, str> {
    if !text.contains("set") {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    let mut copied = 0;
    let mut at = 0;
    while let Some(open) = text[at..].find("{%").map(|i| at + i) {
        at = open + 2;
        let Some((lit, close)) = set_literal(text, at) else {
            continue;
        };
        let wrap = if text.as_bytes()[lit] == b'[' {
            LIST
        } else {
            DICT
        };
        out.push_str(&text[copied..lit]);
        out.push_str(wrap);
        out.push('(');
        out.push_str(&text[lit..=close]);
        out.push(')');
        copied = close + 1;
        at = close + 1;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// Inside a tag starting at `from` (just after `{%`): if it reads
/// `set name = <literal> %}`, the byte offsets of the literal's opening and
/// closing bracket.
fn set_literal(text: &str, from: usize) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut i = from;
    let skip_ws = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    if i < bytes.len() && matches!(bytes[i], b'-' | b'+') {
        i += 1;
    }
    i = skip_ws(i);
    i = i
        .checked_add(3)
        .filter(|&e| text.get(i..e) == Some("set"))?;
    let name_start = skip_ws(i);
    if name_start == i {
        return None;
    }
    i = name_start;
    // `name` or a namespace's attribute, `ns.name`.
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.')) {
        i += 1;
    }
    if i == name_start {
        return None;
    }
    i = skip_ws(i);
    if bytes.get(i) != Some(&b'=') {
        return None;
    }
    let lit = skip_ws(i + 1);
    if !matches!(bytes.get(lit), Some(b'[' | b'{')) {
        return None;
    }
    let close = matching_bracket(bytes, lit)?;
    let end = skip_ws(close + 1);
    let rest = &text[end..];
    (rest.starts_with("%}") || rest.starts_with("-%}") || rest.starts_with("+%}"))
        .then_some((lit, close))
}

/// The offset of the bracket closing the one at `open`, skipping strings.
fn matching_bracket(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'[' | b'{' | b'(' => depth += 1,
            b']' | b'}' | b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'%' if bytes.get(i + 1) == Some(&b'}') => return None,
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_literals_are_wrapped_on_the_same_lines() {
        let src = "{%- set cols = [] -%}\n{% set d = {'a': [1, ']'], \"b\": '}'} %}\n{% set x = y %}{% set z = [1] + w %}{% for c in [1] %}{% endfor %}";
        assert_eq!(
            literals(src),
            "{%- set cols = __sluice_list([]) -%}\n{% set d = __sluice_dict({'a': [1, ']'], \"b\": '}'}) %}\n{% set x = y %}{% set z = [1] + w %}{% for c in [1] %}{% endfor %}"
        );
        assert_eq!(
            literals("{% set ns.cols = [] %}"),
            "{% set ns.cols = __sluice_list([]) %}"
        );
        assert!(matches!(literals("select 1"), Cow::Borrowed(_)));
        assert!(matches!(literals("{% set a = 1 %}"), Cow::Borrowed(_)));
    }

    fn render(src: &str) -> String {
        let mut env = minijinja::Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(LIST, List::value);
        env.add_function(DICT, Dict::value);
        env.render_str(&literals(src), ()).expect("render")
    }

    #[test]
    fn lists_and_dicts_change_in_place_as_in_python() {
        let out = render(
            "{% set cols = [] %}{% for c in ['a', 'b', 'c'] %}{% do cols.append(c) %}{% endfor %}\
             {% do cols.extend(['d']) %}{% do cols.insert(0, 'z') %}{{ cols.pop() }}|{{ cols | join(',') }}|\
             {{ cols | length }}|{{ cols[-1] }}|{{ 'yes' if 'a' in cols }}|{{ cols.count('a') }}|{{ cols[1:] | join('') }}",
        );
        assert_eq!(out, "d|z,a,b,c|4|c|yes|1|abc");
        let out = render(
            "{% set d = {'a': 1} %}{% do d.update({'b': 2}) %}{{ d.setdefault('c', 3) }}|\
             {% for k, v in d.items() %}{{ k }}={{ v }} {% endfor %}|{{ d.get('b') }}|{{ d.pop('a') }}|{{ d | tojson }}",
        );
        assert_eq!(out, "3|a=1 b=2 c=3 |2|1|{\"b\":2,\"c\":3}");
    }
}
