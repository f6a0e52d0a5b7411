//! The lake: where extracted pages land before they are staged into the
//! warehouse. One trait ([`Lake`]) with two implementations, a local
//! directory ([`local::LocalLake`]) and S3 ([`s3::S3Lake`]), plus the key
//! layout every plugin and the stager share.
//!
//! # Layout
//! ```text
//! raw/<family>/<source>/dt=YYYY-MM-DD/run=<run id>/page-00001.json   raw API pages, bytes as received
//! raw/<family>/<source>/dt=YYYY-MM-DD/run=<run id>/manifest.json     written last: the run is complete
//! state/<family>/<source>.json                                         cursor (high-water mark, run in progress)
//! ```
//! Raw pages and manifests are write-once: [`Lake::put_new`] refuses to
//! overwrite (local `create_new` semantics through a hard link, S3
//! `If-None-Match: *`). Only state files are rewritten, with [`Lake::put`].
//!
//! # Configuration
//! Per target in profiles.yml, under a `lake:` key (kept in the target's
//! `extra` map): `{type: local, path: lake}` (the default; relative paths
//! resolve against the project directory) or `{type: s3, bucket: …,
//! prefix: …, region: …, endpoint_url: …, force_path_style: …}`.

pub mod local;
pub mod s3;

use std::path::Path;

use serde::Deserialize;

use crate::warehouse::TargetConfig;

/// Errors from a lake backend.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("invalid lake key `{0}`")]
    BadKey(String),
    #[error("lake I/O error on `{key}`: {message}")]
    Io { key: String, message: String },
    #[error("S3 error on `{key}`: {message}")]
    S3 { key: String, message: String },
    #[error("invalid lake configuration: {0}")]
    Config(String),
}

pub type Result<T, E = LakeError> = std::result::Result<T, E>;

/// What [`Lake::put_new`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// The key already held an object; nothing was written.
    AlreadyExists,
}

/// A key-value store of immutable objects (plus rewritable state files).
///
/// Keys are `/`-separated relative paths without `.`/`..` segments.
pub trait Lake: Send + Sync {
    /// Where the lake is, for messages (`lake/` or `s3://bucket/prefix`).
    fn describe(&self) -> String;
    /// Write `bytes` under `key` unless the key exists (never overwrites).
    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<PutOutcome>;
    /// Write or replace `key` (state files only).
    fn put(&self, key: &str, bytes: &[u8]) -> Result<()>;
    /// The object at `key`, `None` when absent.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Every key starting with `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;
}

/// A lake location, as written under `lake:` in a profiles.yml target.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum LakeConfig {
    Local {
        /// Directory, relative to the project directory; default `lake`.
        #[serde(default = "default_local_path")]
        path: String,
    },
    S3 {
        bucket: String,
        #[serde(default)]
        prefix: String,
        #[serde(default)]
        region: Option<String>,
        /// Custom endpoint (MinIO, a test server); `AWS_ENDPOINT_URL_S3` /
        /// `AWS_ENDPOINT_URL` are honoured when unset.
        #[serde(default)]
        endpoint_url: Option<String>,
        /// Path-style addressing; default: on when an endpoint is set.
        #[serde(default)]
        force_path_style: Option<bool>,
    },
}

fn default_local_path() -> String {
    "lake".to_string()
}

impl Default for LakeConfig {
    fn default() -> Self {
        LakeConfig::Local {
            path: default_local_path(),
        }
    }
}

impl LakeConfig {
    /// The `lake:` block of a target, or the default local lake.
    pub fn from_target(target: &TargetConfig) -> Result<LakeConfig> {
        let extra = match target {
            TargetConfig::Duckdb(t) => &t.extra,
            TargetConfig::Postgres(t) => &t.extra,
        };
        match extra.get("lake") {
            None | Some(serde_json::Value::Null) => Ok(LakeConfig::default()),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
                LakeError::Config(format!(
                    "{e} (expected `{{type: local, path: lake}}` or `{{type: s3, bucket: …, prefix: …}}`)"
                ))
            }),
        }
    }
}

/// Open the lake a configuration points at.
pub fn open(config: &LakeConfig, project_dir: &Path) -> Result<Box<dyn Lake>> {
    match config {
        LakeConfig::Local { path } => {
            let p = Path::new(path);
            let root = if p.is_absolute() {
                p.to_path_buf()
            } else {
                project_dir.join(p)
            };
            Ok(Box::new(local::LocalLake::new(root, path.clone())))
        }
        LakeConfig::S3 { .. } => Ok(Box::new(s3::S3Lake::connect(config, None)?)),
    }
}

/// Reject keys that could escape the lake root.
pub fn check_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.contains('\\')
        || key
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if bad {
        Err(LakeError::BadKey(key.to_string()))
    } else {
        Ok(())
    }
}

/// The key layout shared by extraction and staging.
pub mod layout {
    /// `raw/<family>/<source>/`
    pub fn source_prefix(family: &str, source: &str) -> String {
        format!("raw/{family}/{source}/")
    }
    /// `raw/<family>/<source>/dt=<dt>/run=<run_id>/`
    pub fn run_prefix(family: &str, source: &str, dt: &str, run_id: &str) -> String {
        format!("raw/{family}/{source}/dt={dt}/run={run_id}/")
    }
    /// `page-00001.json` (1-based).
    pub fn page_name(n: usize) -> String {
        format!("page-{n:05}.json")
    }
    /// The page number of a `…/page-00001.json` key.
    pub fn page_number(key: &str) -> Option<usize> {
        let name = key.rsplit('/').next()?;
        name.strip_prefix("page-")?
            .strip_suffix(".json")?
            .parse()
            .ok()
    }
    pub const MANIFEST: &str = "manifest.json";
    /// `state/<family>/<source>.json`
    pub fn state_key(family: &str, source: &str) -> String {
        format!("state/{family}/{source}.json")
    }
    /// The run id in a key containing `run=<id>/`.
    pub fn run_id_of(key: &str) -> Option<&str> {
        key.split('/').find_map(|seg| seg.strip_prefix("run="))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_escape_are_rejected() {
        for k in ["", "/a", "a//b", "a/../b", "./a", "a\\b", "a/"] {
            assert!(check_key(k).is_err(), "{k}");
        }
        check_key("raw/twitter/x/page-00001.json").unwrap();
    }

    #[test]
    fn layout_round_trips() {
        let p = layout::run_prefix("twitter", "tw", "2026-11-20", "R1");
        let k = format!("{p}{}", layout::page_name(12));
        assert_eq!(k, "raw/twitter/tw/dt=2026-11-20/run=R1/page-00012.json");
        assert_eq!(layout::page_number(&k), Some(12));
        assert_eq!(layout::run_id_of(&k), Some("R1"));
        assert_eq!(layout::page_number("raw/x/manifest.json"), None);
    }

    #[test]
    fn lake_config_from_target_extra() {
        let t: TargetConfig = serde_yaml_ng::from_str(
            "type: duckdb\npath: x.duckdb\nlake: {type: s3, bucket: b, prefix: p/q, endpoint_url: 'http://127.0.0.1:9'}\n",
        )
        .unwrap();
        match LakeConfig::from_target(&t).unwrap() {
            LakeConfig::S3 { bucket, prefix, .. } => {
                assert_eq!(bucket, "b");
                assert_eq!(prefix, "p/q");
            }
            other => panic!("{other:?}"),
        }
        let t: TargetConfig = serde_yaml_ng::from_str("type: duckdb\n").unwrap();
        assert_eq!(LakeConfig::from_target(&t).unwrap(), LakeConfig::default());
        let t: TargetConfig =
            serde_yaml_ng::from_str("type: duckdb\nlake: {type: gcs, bucket: b}\n").unwrap();
        assert!(LakeConfig::from_target(&t).is_err());
    }
}
