//! Finding a project's files: models, seeds, macros, tests, schema YAML and
//! docs blocks under the configured paths. Paths are kept project-relative
//! with `/` separators, sorted, so every later step is deterministic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
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

/// The files under a project's resource roots, found with one walk per
/// root: `dbt_project.yml` often points several kinds of resource at the
/// same folder (models, docs and schema YAML all live under `models/`).
pub struct Listing {
    /// root (project-relative) → its files, sorted by path.
    roots: HashMap<String, Vec<Listed>>,
}

struct Listed {
    abs: PathBuf,
    path: String,
    rel: String,
}

/// List every file under `roots` (project-relative dirs). Missing roots are
/// fine (dbt ignores them). Hidden files and dirs are skipped; symbolic
/// links are followed.
pub fn list<'a>(
    project_dir: &Path,
    roots: impl IntoIterator<Item = &'a String>,
) -> Result<Listing, Diagnostic> {
    let mut listing = Listing {
        roots: HashMap::new(),
    };
    for root in roots {
        if listing.roots.contains_key(root) {
            continue;
        }
        let dir = project_dir.join(root);
        let mut found = Vec::new();
        if dir.is_dir() {
            walk(&dir, &mut Vec::new(), &mut |p| {
                let rel = slash_path(p.strip_prefix(&dir).unwrap_or(&p));
                let path = slash_path(p.strip_prefix(project_dir).unwrap_or(&p));
                found.push(Listed { abs: p, path, rel });
            })
            .map_err(|e| {
                Diagnostic::error("E0105", format!("cannot read {root}: {e}"))
                    .at(root.clone(), None)
            })?;
        }
        listing.roots.insert(root.clone(), found);
    }
    Ok(listing)
}

/// Walk `dir` in file-name order. Entries are typed from the directory
/// listing itself, so only symbolic links cost a `stat`; a link to a
/// directory is walked under its own name unless it loops back to a
/// directory being walked (`chain`).
fn walk(
    dir: &Path,
    chain: &mut Vec<PathBuf>,
    found: &mut dyn FnMut(PathBuf),
) -> walkdir::Result<()> {
    let real = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if chain.contains(&real) {
        return Ok(());
    }
    chain.push(real);
    let walker = WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = entry?;
        let kind = entry.file_type();
        if kind.is_file() {
            found(entry.into_path());
        } else if kind.is_symlink() {
            match std::fs::metadata(entry.path()) {
                Ok(m) if m.is_dir() => walk(entry.path(), chain, found)?,
                Ok(m) if m.is_file() => found(entry.into_path()),
                // A dangling link: nothing to read (dbt skips it too).
                _ => {}
            }
        }
    }
    chain.pop();
    Ok(())
}

impl Listing {
    /// The files with one of `exts` under each of `roots`, read in parallel.
    pub fn read(&self, roots: &[String], exts: &[&str]) -> Result<Vec<SourceFile>, Diagnostic> {
        let wanted: Vec<&Listed> = roots
            .iter()
            .filter_map(|r| self.roots.get(r))
            .flatten()
            .filter(|f| {
                f.abs
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| exts.contains(&e))
            })
            .collect();
        // Thousands of small files, each a few system calls: overlap them.
        wanted
            .into_par_iter()
            .map(|f| {
                let unreadable = |e: std::io::Error| {
                    Diagnostic::error("E0105", format!("cannot read {}: {e}", f.path))
                        .at(f.path.clone(), None)
                };
                let mut file = std::fs::File::open(&f.abs).map_err(unreadable)?;
                let len = file.metadata().map_err(unreadable)?.len();
                let text = if f.path.ends_with(".csv") && len > MAX_HASHED_SEED_BYTES {
                    // dbt identifies a seed over 1 MiB by its path, not its
                    // contents; its rows are read when it is loaded.
                    format!("{TOO_LARGE_TO_HASH}{}", f.path)
                } else {
                    let bytes = read_known_len(&mut file, len).map_err(unreadable)?;
                    String::from_utf8(bytes).map_err(|_| {
                        Diagnostic::error("E0105", format!("{} is not valid UTF-8", f.path))
                            .at(f.path.clone(), None)
                            .hint("save the file as UTF-8")
                    })?
                };
                Ok(SourceFile::new(f.path.clone(), f.rel.clone(), text))
            })
            .collect()
    }
}

/// How a seed too large to hash starts its text (then its path).
pub const TOO_LARGE_TO_HASH: &str = "seed file too large to hash: ";

/// Read a file whose size is `len`: a read that returns exactly that much
/// is the whole file, which spares the extra read that would confirm the
/// end (one system call in four, at thousands of files). A file that
/// changed meanwhile is read to its real end.
fn read_known_len(file: &mut std::fs::File, len: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let want = usize::try_from(len).unwrap_or(usize::MAX - 1);
    let mut buf = vec![0u8; want + 1];
    let mut filled = 0;
    loop {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if filled == want || filled == buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    if filled > want {
        file.read_to_end(&mut buf)?;
    }
    Ok(buf)
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
mod listing_tests {
    use super::*;

    #[test]
    fn one_listing_serves_every_kind_and_follows_links_without_looping() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let write = |p: &str, text: &str| {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("models/a.sql", "select 1");
        write("models/sub/b.sql", "select 2");
        write("models/schema.yml", "version: 2");
        write("models/.hidden/c.sql", "select 3");
        write("shared/d.sql", "select 4");
        write("elsewhere/e.sql", "select 5");
        std::os::unix::fs::symlink(root.join("shared"), root.join("models/linked")).unwrap();
        std::os::unix::fs::symlink(root.join("elsewhere/e.sql"), root.join("models/e.sql"))
            .unwrap();
        // A link back up the tree must not send the walk round forever.
        std::os::unix::fs::symlink(root.join("models"), root.join("models/sub/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("missing"), root.join("models/dangling.sql")).unwrap();

        let roots = vec!["models".to_string(), "nowhere".to_string()];
        let listing = list(root, &roots).unwrap();
        let sql = listing.read(&roots, &["sql"]).unwrap();
        let paths: Vec<(&str, &str)> = sql
            .iter()
            .map(|f| (f.path.as_str(), f.text.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                ("models/a.sql", "select 1"),
                ("models/e.sql", "select 5"),
                ("models/linked/d.sql", "select 4"),
                ("models/sub/b.sql", "select 2"),
            ]
        );
        assert_eq!(sql[2].rel, "linked/d.sql");
        let yml = listing.read(&roots, &["yml", "yaml"]).unwrap();
        assert_eq!(yml.len(), 1);
        assert_eq!(yml[0].text, "version: 2");
    }

    #[test]
    fn a_file_read_with_a_stale_length_is_still_read_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f.sql");
        std::fs::write(&p, "select 1234567890").unwrap();
        for guess in [0, 5, 17, 100] {
            let mut f = std::fs::File::open(&p).unwrap();
            assert_eq!(
                read_known_len(&mut f, guess).unwrap(),
                b"select 1234567890",
                "{guess}"
            );
        }
    }
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
