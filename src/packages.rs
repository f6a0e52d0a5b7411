//! The packages a project depends on (`packages.yml`, or `dependencies.yml`
//! since dbt 1.6), and which release of a dbt Hub package a version spec
//! picks. Pure: `commands::deps` does the downloading.

use serde_json::Value;

use crate::diagnostics::Diagnostic;

/// One entry of `packages:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// `local: ../path` (relative to the project declaring it).
    Local { path: String },
    /// `package: org/name` from dbt Hub, `version:` one spec or a list.
    Hub {
        package: String,
        versions: Vec<String>,
        prerelease: bool,
    },
    /// `git: url` at `revision:` (a branch, tag or commit), optionally a
    /// `subdirectory:` of the repository.
    Git {
        url: String,
        revision: Option<String>,
        subdirectory: Option<String>,
    },
}

impl Spec {
    /// How the spec is shown in messages.
    pub fn label(&self) -> String {
        match self {
            Spec::Local { path } => format!("local: {path}"),
            Spec::Hub {
                package, versions, ..
            } => format!("{package} {}", versions.join(", ")),
            Spec::Git { url, revision, .. } => match revision {
                Some(r) => format!("{url}@{r}"),
                None => url.clone(),
            },
        }
    }
}

/// A spec and the line of `packages.yml` it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub spec: Spec,
    pub line: usize,
}

/// The 1-based lines where the items of the `packages:` list start: the
/// `- ` lines at the list's indentation.
fn entry_lines(text: &str) -> Vec<usize> {
    let Some(start) = crate::project::yaml::line_of_key(text, "packages", 1) else {
        return Vec::new();
    };
    let mut indent = None;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(start) {
        let trimmed = line.trim_start();
        let depth = line.len() - trimmed.len();
        if !trimmed.starts_with('-') {
            continue;
        }
        match indent {
            None => indent = Some(depth),
            Some(d) if depth < d => break,
            Some(d) if depth > d => continue,
            _ => {}
        }
        out.push(i + 1);
    }
    out
}

/// The `packages:` list of `text` (the file `file`).
pub fn parse_specs(text: &str, file: &str) -> Result<Vec<Listed>, Diagnostic> {
    let doc = crate::project::yaml::parse(text, file)?;
    let lines = entry_lines(text);
    let mut out = Vec::new();
    let entries = doc.get("packages").and_then(Value::as_array);
    for (i, entry) in entries.into_iter().flatten().enumerate() {
        let line = lines.get(i).copied().unwrap_or(1);
        let get = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_string);
        let versions = match entry.get("version") {
            Some(Value::Array(a)) => a.iter().map(value_text).collect(),
            Some(v) => vec![value_text(v)],
            None => Vec::new(),
        };
        let spec = if let Some(path) = get("local") {
            Spec::Local { path }
        } else if let Some(package) = get("package") {
            if versions.is_empty() {
                return Err(
                    entry_error(file, line, format!("package {package} has no `version`"))
                        .hint("dbt Hub packages need one, e.g. version: [\">=1.0.0\", \"<2.0.0\"]"),
                );
            }
            Spec::Hub {
                package,
                versions,
                prerelease: entry
                    .get("install-prerelease")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            }
        } else if let Some(url) = get("git") {
            Spec::Git {
                url,
                revision: get("revision").or_else(|| versions.first().cloned()),
                subdirectory: get("subdirectory"),
            }
        } else {
            return Err(entry_error(
                file,
                line,
                "a package entry names no `package`, `git` or `local`".into(),
            ));
        };
        out.push(Listed { spec, line });
    }
    Ok(out)
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn entry_error(file: &str, line: usize, msg: String) -> Diagnostic {
    Diagnostic::error("E0810", msg).at(file.to_string(), Some(line))
}

/// A release number: its numeric parts and whether it is a prerelease
/// (`1.0.0-b1`, `1.0.0rc1`).
fn parse_version(s: &str) -> Option<(Vec<u64>, bool)> {
    let s = s.trim().trim_start_matches('v');
    let core_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (core, rest) = s.split_at(core_end);
    let parts: Vec<u64> = core
        .split('.')
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if parts.is_empty() {
        return None;
    }
    Some((parts, !rest.is_empty()))
}

fn cmp_versions(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// Whether `version` meets one constraint: `>=1.0.0`, `<2.0.0`, `>`, `<=`,
/// `==`/`=`, or a bare version (exactly that one).
fn meets(version: &[u64], constraint: &str) -> bool {
    let c = constraint.trim();
    let (op, rest) = ["<=", ">=", "==", "<", ">", "="]
        .iter()
        .find_map(|op| c.strip_prefix(op).map(|r| (*op, r)))
        .unwrap_or(("==", c));
    let Some((bound, _)) = parse_version(rest) else {
        return false;
    };
    let o = cmp_versions(version, &bound);
    match op {
        "<=" => o.is_le(),
        ">=" => o.is_ge(),
        "<" => o.is_lt(),
        ">" => o.is_gt(),
        _ => o.is_eq(),
    }
}

/// The newest of `available` that meets every constraint (prereleases only
/// when allowed).
pub fn pick<'a>(
    available: &'a [String],
    constraints: &[String],
    prerelease: bool,
) -> Option<&'a str> {
    available
        .iter()
        .filter_map(|v| parse_version(v).map(|(parts, pre)| (v, parts, pre)))
        .filter(|(_, parts, pre)| {
            (prerelease || !pre) && constraints.iter().all(|c| meets(parts, c))
        })
        .max_by(|a, b| cmp_versions(&a.1, &b.1))
        .map(|(v, _, _)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_every_kind_are_read() {
        let specs = parse_specs(
            "packages:\n  - package: dbt-labs/dbt_utils\n    version: [\">=1.0.0\", \"<2.0.0\"]\n  - package: godatadriven/dbt_date\n    version: 0.17.1\n  - git: https://example.com/x.git\n    revision: main\n    subdirectory: pkg\n  - local: ../shared\n",
            "packages.yml",
        )
        .unwrap();
        let lines: Vec<usize> = specs.iter().map(|l| l.line).collect();
        assert_eq!(lines, [2, 4, 6, 9]);
        let specs: Vec<Spec> = specs.into_iter().map(|l| l.spec).collect();
        assert_eq!(
            specs,
            vec![
                Spec::Hub {
                    package: "dbt-labs/dbt_utils".into(),
                    versions: vec![">=1.0.0".into(), "<2.0.0".into()],
                    prerelease: false
                },
                Spec::Hub {
                    package: "godatadriven/dbt_date".into(),
                    versions: vec!["0.17.1".into()],
                    prerelease: false
                },
                Spec::Git {
                    url: "https://example.com/x.git".into(),
                    revision: Some("main".into()),
                    subdirectory: Some("pkg".into())
                },
                Spec::Local {
                    path: "../shared".into()
                },
            ]
        );
        let e = parse_specs(
            "packages:\n  - local: ../x\n  - package: a/b\n",
            "packages.yml",
        )
        .unwrap_err();
        assert!(e.message.contains("has no `version`"), "{}", e.message);
        assert_eq!((e.file.as_deref(), e.line), (Some("packages.yml"), Some(3)));
    }

    #[test]
    fn the_newest_release_meeting_every_constraint_is_picked() {
        let available: Vec<String> = ["0.9.6", "1.0.0", "1.3.3", "1.10.0", "2.0.0", "1.11.0-b1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let c = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            pick(&available, &c(&[">=1.0.0", "<2.0.0"]), false),
            Some("1.10.0")
        );
        assert_eq!(
            pick(&available, &c(&[">=1.0.0", "<2.0.0"]), true),
            Some("1.11.0-b1")
        );
        assert_eq!(pick(&available, &c(&["1.3.3"]), false), Some("1.3.3"));
        assert_eq!(pick(&available, &c(&["<1.0.0"]), false), Some("0.9.6"));
        assert_eq!(pick(&available, &c(&[">3"]), false), None);
    }
}
