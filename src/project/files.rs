//! Finding a project's files: models, seeds, macros, tests, schema YAML and
//! docs blocks under the configured paths. Paths are kept project-relative
//! with `/` separators, sorted, so every later step is deterministic.

use std::path::Path;

use walkdir::WalkDir;

use crate::diagnostics::Diagnostic;

#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Project-relative path, `/`-separated.
    pub path: String,
    /// Path relative to the resource root it was found under (e.g. `models/`).
    pub rel: String,
    pub text: String,
    /// Byte offset of the start of each line, for line lookups from the middle of the file.
    pub starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: String, rel: String, text: String) -> SourceFile {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            path,
            rel,
            text,
            starts,
        }
    }

    /// The text from 1-based line `from` on, at most `max` lines of it.
    fn window(&self, from: usize, max: usize) -> &str {
        let i = from.max(1) - 1;
        let start = self.starts.get(i).copied().unwrap_or(self.text.len());
        let end = self
            .starts
            .get(i.saturating_add(max))
            .copied()
            .unwrap_or(self.text.len());
        &self.text[start..end]
    }

    /// `yaml::line_of_name` from `after_line` on, without rescanning the lines before it.
    pub fn line_of_name(&self, name: &str, after_line: usize) -> Option<usize> {
        crate::project::yaml::line_of_name(self.window(after_line, usize::MAX), name, 1)
            .map(|l| l + after_line.max(1) - 1)
    }

    /// `yaml::line_of_key` within `max` lines from `after_line`.
    pub fn line_of_key(&self, key: &str, after_line: usize, max: usize) -> Option<usize> {
        crate::project::yaml::line_of_key(self.window(after_line, max), key, 1)
            .map(|l| l + after_line.max(1) - 1)
    }

    /// A line that is just `- value` (or `value:`), within `max` lines from `after_line`.
    pub fn line_of_item(&self, value: &str, after_line: usize, max: usize) -> Option<usize> {
        self.window(after_line, max)
            .lines()
            .position(|l| {
                l.trim_start()
                    .strip_prefix('-')
                    .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'') == value)
                    .unwrap_or(false)
            })
            .map(|i| i + after_line.max(1))
    }
}

/// Files with one of `exts` under each of `roots` (project-relative dirs).
/// Missing roots are fine (dbt ignores them). Hidden files and dirs are skipped.
pub fn collect(
    project_dir: &Path,
    roots: &[String],
    exts: &[&str],
) -> Result<Vec<SourceFile>, Diagnostic> {
    let mut out = Vec::new();
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
            let text = fs_err::read_to_string(p)
                .map_err(|e| Diagnostic::error("E0105", e.to_string()).at(path.clone(), None))?;
            out.push(SourceFile::new(path, rel, text));
        }
    }
    Ok(out)
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
