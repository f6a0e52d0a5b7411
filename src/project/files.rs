//! Finding a project's files: models, seeds, macros, tests, schema YAML and
//! docs blocks under the configured paths. Paths are kept project-relative
//! with `/` separators, sorted, so every later step is deterministic.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use rayon::prelude::*;
use walkdir::WalkDir;

use crate::diagnostics::Diagnostic;

#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Project-relative path, `/`-separated.
    pub path: String,
    /// Path relative to the resource root it was found under (e.g. `models/`).
    pub rel: String,
    pub text: String,
    /// Where keys, `name:` values and list items sit, built on the first
    /// line lookup (YAML files only need it).
    lines: OnceLock<LineIndex>,
}

/// Every line's YAML shape, so that pointing a diagnostic at a line is a
/// binary search rather than a scan: a schema file with thousands of models
/// asks for tens of thousands of lines.
#[derive(Debug, Clone, Default)]
struct LineIndex {
    /// `key:` (after any `- ` and quotes) → the 1-based lines it starts, ascending.
    keys: HashMap<String, Vec<usize>>,
    /// `name: value` (value unquoted, comment dropped) → lines.
    names: HashMap<String, Vec<usize>>,
    /// `- item` (unquoted) → lines.
    items: HashMap<String, Vec<usize>>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut ix = LineIndex::default();
        let unquote = |s: &str| s.trim_matches(|c| c == '"' || c == '\'').to_string();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let lead = line.trim_start();
            if let Some(item) = lead.strip_prefix('-') {
                ix.items.entry(unquote(item.trim())).or_default().push(n);
            }
            let t = lead.trim_start_matches('-').trim_start();
            let Some((key, rest)) = t.split_once(':') else {
                continue;
            };
            let key = key.trim_end();
            if key == "name" {
                let value = rest.split(" #").next().unwrap_or(rest).trim();
                ix.names.entry(unquote(value)).or_default().push(n);
            }
            ix.keys.entry(unquote(key)).or_default().push(n);
        }
        ix
    }
}

/// The first of ascending `lines` in `from .. from + max`.
fn first_in(lines: Option<&Vec<usize>>, from: usize, max: usize) -> Option<usize> {
    let lines = lines?;
    let from = from.max(1);
    let i = lines.partition_point(|&l| l < from);
    lines.get(i).copied().filter(|&l| l - from < max)
}

impl SourceFile {
    pub fn new(path: String, rel: String, text: String) -> SourceFile {
        SourceFile {
            path,
            rel,
            text,
            lines: OnceLock::new(),
        }
    }

    fn index(&self) -> &LineIndex {
        self.lines.get_or_init(|| LineIndex::new(&self.text))
    }

    /// The first line at or after `after_line` that is `name: <name>` (`- name: …` too).
    pub fn line_of_name(&self, name: &str, after_line: usize) -> Option<usize> {
        first_in(self.index().names.get(name), after_line, usize::MAX)
    }

    /// The first line within `max` lines from `after_line` where mapping key `key` starts.
    pub fn line_of_key(&self, key: &str, after_line: usize, max: usize) -> Option<usize> {
        first_in(self.index().keys.get(key), after_line, max)
    }

    /// A line that is just `- value`, within `max` lines from `after_line`.
    pub fn line_of_item(&self, value: &str, after_line: usize, max: usize) -> Option<usize> {
        first_in(self.index().items.get(value), after_line, max)
    }
}

/// Seeds larger than this are not read (nor hashed) when a project loads, as in dbt.
const MAX_HASHED_SEED_BYTES: u64 = 1 << 20;

/// Files with one of `exts` under each of `roots` (project-relative dirs).
/// Missing roots are fine (dbt ignores them). Hidden files and dirs are skipped.
pub fn collect(
    project_dir: &Path,
    roots: &[String],
    exts: &[&str],
) -> Result<Vec<SourceFile>, Diagnostic> {
    let mut found = Vec::new();
    for root in roots {
        let dir = project_dir.join(root);
        if !dir.is_dir() {
            continue;
        }
        let walker = WalkDir::new(&dir)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walker {
            let entry = entry.map_err(|e| {
                Diagnostic::error("E0105", format!("cannot read {root}: {e}"))
                    .at(root.clone(), None)
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let p = entry.path();
            let Some(ext) = p.extension().and_then(|e| e.to_str()) else {
                continue;
            };
            if !exts.contains(&ext) {
                continue;
            }
            let rel = slash_path(p.strip_prefix(&dir).unwrap_or(p));
            let path = slash_path(p.strip_prefix(project_dir).unwrap_or(p));
            found.push((p.to_path_buf(), path, rel));
        }
    }
    // Reading thousands of small files is latency-bound: overlap the reads.
    found
        .into_par_iter()
        .map(|(p, path, rel)| {
            let large_seed = p.extension().is_some_and(|e| e == "csv")
                && std::fs::metadata(&p).is_ok_and(|m| m.len() > MAX_HASHED_SEED_BYTES);
            let text = if large_seed {
                // dbt identifies a seed over 1 MiB by its path, not its
                // contents; its rows are read when it is loaded.
                format!("seed file too large to hash: {path}")
            } else {
                fs_err::read_to_string(&p)
                    .map_err(|e| Diagnostic::error("E0105", e.to_string()).at(path.clone(), None))?
            };
            Ok(SourceFile::new(path, rel, text))
        })
        .collect()
}

pub fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The file name without extension.
pub fn stem(rel: &str) -> &str {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name)
}

/// The folders of `rel` (without the file name).
pub fn dirs(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    parts.pop();
    parts
}

#[cfg(test)]
mod line_tests {
    use super::*;

    #[test]
    fn line_lookups_find_keys_names_and_items_from_a_line_on() {
        let text = "models:\n  - name: a\n    columns:\n      - name: \"id\" # pk\n        data_tests:\n          - not_null\n          - 'unique'\n  - name: b\n    columns:\n      - name: id\n        tests:\n          - accepted_values:\n              values: [x]\n";
        let f = SourceFile::new("m.yml".into(), "m.yml".into(), text.into());
        assert_eq!(f.line_of_name("a", 1), Some(2));
        assert_eq!(f.line_of_name("id", 1), Some(4));
        assert_eq!(f.line_of_name("id", 5), Some(10));
        assert_eq!(f.line_of_name("zz", 1), None);
        assert_eq!(f.line_of_key("models", 1, usize::MAX), Some(1));
        assert_eq!(f.line_of_key("accepted_values", 8, 400), Some(12));
        assert_eq!(
            f.line_of_key("accepted_values", 8, 4),
            None,
            "outside the window"
        );
        assert_eq!(f.line_of_item("not_null", 4, 400), Some(6));
        assert_eq!(f.line_of_item("unique", 4, 400), Some(7));
        assert_eq!(f.line_of_item("unique", 8, 400), None);
    }
}
