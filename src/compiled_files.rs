//! `target/compiled/`: each node's compiled SQL in its own file, as dbt
//! writes it, plus a small cache beside it (`target/sluice_compile_cache.tsv`)
//! that remembers what each file holds and which SQL already passed the
//! static check. A compile of an unchanged project then neither rewrites
//! its files nor parses its SQL again: at thousands of nodes those are most
//! of `compile`.
//!
//! The cache only ever saves work: a file is skipped when its recorded
//! hash matches the new SQL *and* its size and modification time on disk
//! are still the ones recorded (so a hand-edited or deleted file is
//! rewritten), and a missing or unreadable cache means "do everything".

use std::collections::HashMap;
use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::project::node::Node;

const CACHE_FILE: &str = "sluice_compile_cache.tsv";
/// The check's verdicts belong to this build's SQL parser: another sluice
/// version starts a fresh cache.
const HEADER: &str = concat!("sluice compile cache v1 ", env!("CARGO_PKG_VERSION"));

/// What a compiled file held when sluice last wrote (or checked) it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Written {
    hash: u64,
    len: u64,
    mtime_ns: i128,
}

#[derive(Debug, Default)]
pub struct CompileCache {
    /// Target-relative path → what it held.
    files: HashMap<String, Written>,
    /// Node id → `check_key(engine, sql)` of its SQL that last passed the
    /// static check.
    passed: HashMap<String, u64>,
}

/// A stable 64-bit hash of `text` (std's SipHash with fixed keys). A hash
/// that changes with the Rust version only costs one full compile.
pub fn sql_hash(text: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(text.as_bytes());
    h.finish()
}

/// The static check's verdict depends on the SQL and the dialect.
pub fn check_key(engine: &str, sql: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(engine.as_bytes());
    h.write_u8(0);
    h.write(sql.as_bytes());
    h.finish()
}

/// The modification time in nanoseconds (0 where the platform has none,
/// which only makes the cache rewrite files).
fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128)
}

impl CompileCache {
    /// The cache under `target_dir`; empty when absent or not ours.
    pub fn load(target_dir: &Path) -> CompileCache {
        let mut cache = CompileCache::default();
        let Ok(text) = std::fs::read_to_string(target_dir.join(CACHE_FILE)) else {
            return cache;
        };
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return cache;
        }
        for line in lines {
            let mut f = line.splitn(5, '\t');
            match (f.next(), f.next(), f.next(), f.next(), f.next()) {
                (Some("F"), Some(hash), Some(len), Some(mtime), Some(path)) => {
                    let parsed = (|| {
                        Some(Written {
                            hash: u64::from_str_radix(hash, 16).ok()?,
                            len: len.parse().ok()?,
                            mtime_ns: mtime.parse().ok()?,
                        })
                    })();
                    if let Some(w) = parsed {
                        cache.files.insert(path.to_string(), w);
                    }
                }
                (Some("C"), Some(key), Some(id), None, None) => {
                    if let Ok(k) = u64::from_str_radix(key, 16) {
                        cache.passed.insert(id.to_string(), k);
                    }
                }
                _ => {}
            }
        }
        cache
    }

    pub fn passed_check(&self, id: &str, key: u64) -> bool {
        self.passed.get(id) == Some(&key)
    }

    /// Record this compile's outcome: `written` files (others keep their
    /// entries: a selection compiles a part of the project), and the nodes
    /// whose SQL passed the check now, with its check key.
    pub fn save(
        mut self,
        target_dir: &Path,
        written: Vec<(String, WrittenFile)>,
        passed: impl IntoIterator<Item = (String, u64)>,
    ) -> std::io::Result<()> {
        let mut changed = false;
        self.files.reserve(written.len());
        for (path, w) in written {
            changed |= self.files.insert(path, w.0) != Some(w.0);
        }
        for (id, key) in passed {
            changed |= self.passed.insert(id, key) != Some(key);
        }
        if !changed && target_dir.join(CACHE_FILE).exists() {
            // An unchanged project: the cache on disk already says all this.
            return Ok(());
        }
        // Tens of thousands of lines: sort and format them on the pool.
        let mut files: Vec<(&String, &Written)> = self.files.iter().collect();
        files.par_sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut passed: Vec<(&String, &u64)> = self.passed.iter().collect();
        passed.par_sort_unstable();
        let (files, passed) = rayon::join(
            || {
                lines(&files, |out, (path, w)| {
                    writeln!(out, "F\t{:016x}\t{}\t{}\t{path}", w.hash, w.len, w.mtime_ns)
                })
            },
            || lines(&passed, |out, (id, k)| writeln!(out, "C\t{k:016x}\t{id}")),
        );
        let mut out = Vec::with_capacity(HEADER.len() + 1 + files.len() + passed.len());
        writeln!(out, "{HEADER}")?;
        out.extend_from_slice(&files);
        out.extend_from_slice(&passed);
        crate::artifacts::write_atomic(&target_dir.join(CACHE_FILE), &out)
    }
}

/// `items` formatted one line each by `line`, in order, on the pool.
fn lines<T: Sync>(
    items: &[T],
    line: impl Fn(&mut Vec<u8>, &T) -> std::io::Result<()> + Sync,
) -> Vec<u8> {
    items
        .par_chunks(4096)
        .map(|chunk| {
            let mut out = Vec::with_capacity(chunk.len() * 96);
            for item in chunk {
                // Writing into a Vec cannot fail.
                let _ = line(&mut out, item);
            }
            out
        })
        .reduce(Vec::new, |mut a, b| {
            a.extend_from_slice(&b);
            a
        })
}

/// A file as written (opaque outside this module).
#[derive(Debug, Clone, Copy)]
pub struct WrittenFile(Written);

/// One compiled file to write: its path under the target dir, and the SQL.
pub struct Job<'a> {
    pub path: PathBuf,
    pub key: String,
    pub sql: &'a str,
}

impl<'a> Job<'a> {
    /// Node `n`'s file under `target/compiled/<its package>/`, holding `sql`.
    pub fn new(target_dir: &Path, n: &Node, sql: &'a str) -> Job<'a> {
        let project = &n.package_name;
        let rel = rel_path(n);
        Job {
            path: target_dir.join("compiled").join(project).join(&rel),
            key: format!("compiled/{project}/{rel}"),
            sql,
        }
    }
}

/// Where a node's compiled SQL goes under `target/compiled/<package>/`, as
/// dbt lays it out: its file's path in its project or package, and a node
/// declared in YAML (a generic test, a snapshot with `relation:`) under the
/// path of that YAML file.
pub fn rel_path(n: &Node) -> String {
    let file = n.package_file_path();
    let from_yaml = [".yml", ".yaml"].iter().any(|ext| file.ends_with(ext));
    if n.test_metadata.is_some() || from_yaml {
        // A generic test with a long synthesized name is filed under its
        // short, hashed alias (dbt's `compiled_name`).
        let stem = match n.config.get("alias").and_then(|a| a.as_str()) {
            Some(alias) if n.test_metadata.is_some() && n.name.len() >= 64 => alias,
            _ => n.name.as_str(),
        };
        format!("{file}/{stem}.sql")
    } else {
        file.to_string()
    }
}

/// Write every job's SQL to its file, in parallel, leaving alone a file the
/// cache says already holds it. Returns what each file now holds.
pub fn write_all(
    jobs: &[Job<'_>],
    cache: &CompileCache,
) -> std::io::Result<Vec<(String, WrittenFile)>> {
    let dirs: std::collections::BTreeSet<&Path> =
        jobs.iter().filter_map(|j| j.path.parent()).collect();
    for d in dirs {
        fs_err::create_dir_all(d)?;
    }
    jobs.par_iter().map(|j| write_one(j, cache)).collect()
}

/// One job of `write_all`.
fn write_one(j: &Job<'_>, cache: &CompileCache) -> std::io::Result<(String, WrittenFile)> {
    let hash = sql_hash(j.sql);
    if let Some(old) = cache.files.get(&j.key) {
        if old.hash == hash {
            if let Ok(m) = std::fs::metadata(&j.path) {
                if old.mtime_ns != 0 && m.len() == old.len && mtime_ns(&m) == old.mtime_ns {
                    return Ok((j.key.clone(), WrittenFile(*old)));
                }
            }
        }
    }
    let m = write_in_place(&j.path, j.sql.as_bytes())
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", j.path.display())))?;
    let written = Written {
        hash,
        len: m.len(),
        mtime_ns: mtime_ns(&m),
    };
    Ok((j.key.clone(), WrittenFile(written)))
}

/// Write `bytes` over `path` without truncating it to zero first: on ext4
/// a truncate-to-zero makes `close` start writing the file out at once
/// (`auto_da_alloc`), which at thousands of files costs more than the
/// writes. Returns the file's metadata after the write.
fn write_in_place(path: &Path, bytes: &[u8]) -> std::io::Result<std::fs::Metadata> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    f.write_all(bytes)?;
    let mut m = f.metadata()?;
    if m.len() > bytes.len() as u64 {
        f.set_len(bytes.len() as u64)?;
        m = f.metadata()?;
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job<'a>(dir: &Path, name: &str, sql: &'a str) -> Job<'a> {
        Job {
            path: dir.join("compiled").join(name),
            key: format!("compiled/{name}"),
            sql,
        }
    }

    #[test]
    fn an_unchanged_file_is_left_alone_and_a_changed_or_edited_one_rewritten() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let first = write_all(
            &[
                job(dir, "a.sql", "select 1"),
                job(dir, "b.sql", "select 22"),
            ],
            &CompileCache::default(),
        )
        .unwrap();
        CompileCache::default()
            .save(dir, first, [("model.p.a".to_string(), 7)])
            .unwrap();
        let cache = CompileCache::load(dir);
        assert!(cache.passed_check("model.p.a", 7));
        assert!(!cache.passed_check("model.p.a", 8) && !cache.passed_check("model.p.b", 7));
        assert_eq!(cache.files.len(), 2);

        // Same SQL: the file is not touched (its mtime would move otherwise).
        let before = std::fs::metadata(dir.join("compiled/a.sql")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_all(&[job(dir, "a.sql", "select 1")], &cache).unwrap();
        let after = std::fs::metadata(dir.join("compiled/a.sql")).unwrap();
        assert_eq!(mtime_ns(&before), mtime_ns(&after));

        // Edited by hand behind the cache's back: rewritten.
        std::fs::write(dir.join("compiled/b.sql"), "-- mine").unwrap();
        write_all(&[job(dir, "b.sql", "select 22")], &cache).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("compiled/b.sql")).unwrap(),
            "select 22"
        );

        // New, shorter SQL: no stale tail is left behind.
        write_all(&[job(dir, "b.sql", "select 3")], &cache).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("compiled/b.sql")).unwrap(),
            "select 3"
        );

        // Deleted: written again.
        std::fs::remove_file(dir.join("compiled/a.sql")).unwrap();
        write_all(&[job(dir, "a.sql", "select 1")], &cache).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("compiled/a.sql")).unwrap(),
            "select 1"
        );
    }

    #[test]
    fn an_unchanged_compile_leaves_the_cache_file_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let jobs = [job(dir, "a.sql", "select 1")];
        let passed = || [("model.p.a".to_string(), 7)];
        let first = write_all(&jobs, &CompileCache::default()).unwrap();
        CompileCache::default().save(dir, first, passed()).unwrap();
        let saved = std::fs::metadata(dir.join(CACHE_FILE)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));

        let cache = CompileCache::load(dir);
        let again = write_all(&jobs, &cache).unwrap();
        cache.save(dir, again, passed()).unwrap();
        let now = std::fs::metadata(dir.join(CACHE_FILE)).unwrap();
        assert_eq!(mtime_ns(&saved), mtime_ns(&now));

        // A new verdict is recorded.
        let cache = CompileCache::load(dir);
        let again = write_all(&jobs, &cache).unwrap();
        cache
            .save(dir, again, [("model.p.a".to_string(), 8)])
            .unwrap();
        assert!(CompileCache::load(dir).passed_check("model.p.a", 8));
    }

    #[test]
    fn a_foreign_or_damaged_cache_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join(CACHE_FILE),
            "something else\nC\t0000000000000007\tm\n",
        )
        .unwrap();
        assert!(!CompileCache::load(tmp.path()).passed_check("m", 7));
        std::fs::write(
            tmp.path().join(CACHE_FILE),
            format!("{HEADER}\nF\tzz\t1\t2\tx.sql\nC\tnothex\tm\nC\t0000000000000009\tm\n"),
        )
        .unwrap();
        let c = CompileCache::load(tmp.path());
        assert!(c.files.is_empty() && c.passed_check("m", 9));
    }

    #[test]
    fn the_check_key_depends_on_the_dialect() {
        assert_ne!(
            check_key("duckdb", "select 1"),
            check_key("postgres", "select 1")
        );
        assert_eq!(
            check_key("duckdb", "select 1"),
            check_key("duckdb", "select 1")
        );
    }
}
