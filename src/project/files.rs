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
            out.push(SourceFile { path, rel, text });
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
