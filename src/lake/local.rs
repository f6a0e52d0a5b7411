//! A lake in a local directory (default `<project>/lake`).
//!
//! Write-once objects are written to a temporary file in the destination
//! directory and then hard-linked to their name, so a key either does not
//! exist or holds its complete bytes, and an existing key is never replaced.
//! State files are replaced atomically with a rename.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{check_key, Lake, LakeError, PutOutcome, Result};

const TMP_PREFIX: &str = ".tmp-";

#[derive(Debug, Clone)]
pub struct LocalLake {
    root: PathBuf,
    /// The path as configured, for messages.
    shown: String,
}

impl LocalLake {
    pub fn new(root: PathBuf, shown: String) -> LocalLake {
        LocalLake { root, shown }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(key.split('/').fold(self.root.clone(), |p, seg| p.join(seg)))
    }

    /// Write `bytes` into a fresh temporary file next to `dest`.
    fn write_tmp(&self, key: &str, dest: &Path, bytes: &[u8]) -> Result<PathBuf> {
        let io = |e: std::io::Error| LakeError::Io {
            key: key.to_string(),
            message: e.to_string(),
        };
        let dir = dest.parent().unwrap_or(&self.root);
        fs_err::create_dir_all(dir).map_err(io)?;
        let tmp = dir.join(format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        let mut f = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(tmp)
    }
}

impl Lake for LocalLake {
    fn describe(&self) -> String {
        format!("{}/", self.shown.trim_end_matches('/'))
    }

    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<PutOutcome> {
        let dest = self.path_of(key)?;
        if dest.exists() {
            return Ok(PutOutcome::AlreadyExists);
        }
        let tmp = self.write_tmp(key, &dest, bytes)?;
        let linked = std::fs::hard_link(&tmp, &dest);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(PutOutcome::Created),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok(PutOutcome::AlreadyExists)
            }
            Err(e) => Err(LakeError::Io {
                key: key.to_string(),
                message: e.to_string(),
            }),
        }
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.path_of(key)?;
        let tmp = self.write_tmp(key, &dest, bytes)?;
        fs_err::rename(&tmp, &dest).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            LakeError::Io {
                key: key.to_string(),
                message: e.to_string(),
            }
        })
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path_of(key)?;
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LakeError::Io {
                key: key.to_string(),
                message: e.to_string(),
            }),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        // Walk the deepest directory the prefix names, then filter.
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.path_of(dir_part)?
        };
        if !start.is_dir() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(&start) {
            let entry = entry.map_err(|e| LakeError::Io {
                key: prefix.to_string(),
                message: e.to_string(),
            })?;
            if !entry.file_type().is_file()
                || entry.file_name().to_string_lossy().starts_with(TMP_PREFIX)
            {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&self.root) else {
                continue;
            };
            let key = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            if key.starts_with(prefix) {
                out.push(key);
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_new_never_overwrites_and_list_is_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let lake = LocalLake::new(dir.path().to_path_buf(), "lake".into());
        assert_eq!(
            lake.put_new("a/b/2.json", b"two").unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            lake.put_new("a/b/1.json", b"one").unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            lake.put_new("a/b/1.json", b"changed").unwrap(),
            PutOutcome::AlreadyExists
        );
        assert_eq!(lake.get("a/b/1.json").unwrap().unwrap(), b"one");
        assert_eq!(lake.get("a/b/3.json").unwrap(), None);
        lake.put("s/x.json", b"1").unwrap();
        lake.put("s/x.json", b"2").unwrap();
        assert_eq!(lake.get("s/x.json").unwrap().unwrap(), b"2");
        assert_eq!(lake.list("a/").unwrap(), vec!["a/b/1.json", "a/b/2.json"]);
        assert_eq!(lake.list("a/b/1").unwrap(), vec!["a/b/1.json"]);
        assert!(lake.list("zzz/").unwrap().is_empty());
        assert!(lake.put_new("../evil", b"x").is_err());
    }
}
