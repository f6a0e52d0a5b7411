//! `sluice deps`: install the packages `packages.yml` (or
//! `dependencies.yml`) lists into `packages-install-path` (`dbt_packages/`),
//! as `dbt deps` does: dbt Hub packages at the newest release their version
//! spec allows (from the Hub's API, `DBT_PACKAGE_HUB_URL` to use another;
//! releases unpacked with the system `tar`), git packages with the `git`
//! CLI, local ones as symlinks; then the packages those list, once each.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use super::{project_dir, Exit, Failure, Ui};
use crate::cli::GlobalArgs;
use crate::diagnostics::Diagnostic;
use crate::packages::{self, Spec};
use crate::project::config::{ProjectConfig, PROJECT_FILE};

const DEFAULT_HUB: &str = "https://hub.getdbt.com/";

fn fail(msg: String) -> Diagnostic {
    Diagnostic::error("E0811", msg)
}

/// A spec to install, where it was declared (the directory its `local:`
/// paths are relative to, and the file and line errors point at).
struct Wanted {
    spec: Spec,
    dir: PathBuf,
    file: String,
    line: usize,
}

/// The specs `dir`'s packages.yml or dependencies.yml lists; `shown` is
/// `dir` as messages show it (empty for the project itself).
fn listed(dir: &Path, shown: &str) -> Result<Vec<Wanted>, Diagnostic> {
    for name in ["packages.yml", "dependencies.yml"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
            let file = if shown.is_empty() {
                name.to_string()
            } else {
                format!("{shown}/{name}")
            };
            return Ok(packages::parse_specs(&text, &file)?
                .into_iter()
                .map(|l| Wanted {
                    spec: l.spec,
                    dir: dir.to_path_buf(),
                    file: file.clone(),
                    line: l.line,
                })
                .collect());
        }
    }
    Ok(Vec::new())
}

pub fn deps(g: &GlobalArgs, ui: &Ui) -> Result<Exit, Failure> {
    let root = project_dir(g);
    let text = fs_err::read_to_string(root.join(PROJECT_FILE)).map_err(|_| {
        Diagnostic::error("E0100", format!("no dbt_project.yml in {}", root.display()))
    })?;
    let (config, _) = ProjectConfig::parse(&text)?;
    let install = root.join(config.packages_install_path.trim_end_matches('/'));
    let mut queue: VecDeque<Wanted> = listed(&root, "")?.into();
    if queue.is_empty() {
        ui.info("No packages to install (no packages.yml or dependencies.yml with packages:)");
        return Ok(0);
    }
    fs_err::create_dir_all(&install)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let scratch = tempfile::tempdir_in(&install)?;
    let mut installed: BTreeSet<String> = BTreeSet::new();
    let mut n = 0usize;
    while let Some(wanted) = queue.pop_front() {
        n += 1;
        let fetched = scratch.path().join(n.to_string());
        let spec = &wanted.spec;
        // Errors point at the entry that asked for the package.
        let at = |d: Diagnostic| d.at(wanted.file.clone(), Some(wanted.line));
        let (source, version) = match spec {
            Spec::Local { path } => (wanted.dir.join(path), None),
            Spec::Hub {
                package,
                versions,
                prerelease,
            } => {
                let version = runtime
                    .block_on(fetch_hub(package, versions, *prerelease, &fetched))
                    .map_err(at)?;
                (package_root(&fetched).map_err(at)?, Some(version))
            }
            Spec::Git {
                url,
                revision,
                subdirectory,
            } => {
                fetch_git(url, revision.as_deref(), &fetched).map_err(at)?;
                let dir = match subdirectory {
                    Some(sub) => fetched.join(sub),
                    None => fetched.clone(),
                };
                (dir, revision.clone())
            }
        };
        let project_text = std::fs::read_to_string(source.join(PROJECT_FILE)).map_err(|_| {
            at(fail(format!(
                "{} has no {PROJECT_FILE}: it is not a dbt package",
                spec.label()
            )))
        })?;
        let (package, _) = ProjectConfig::parse(&project_text)?;
        let name = package.name.clone();
        if !installed.insert(name.clone()) {
            continue;
        }
        let target = install.join(&name);
        remove_existing(&target)?;
        match spec {
            Spec::Local { .. } => link_local(&source, &target).map_err(at)?,
            _ => std::fs::rename(&source, &target)?,
        }
        ui.info(format!(
            "Installed {name}{} into {}",
            version.map(|v| format!(" {v}")).unwrap_or_default(),
            super::shown_path(&target, &root)
        ));
        queue.extend(listed(&target, &super::shown_path(&target, &root))?);
    }
    Ok(0)
}

/// Download the release of Hub package `org/name` that `versions` picks
/// into `into`; returns the version.
async fn fetch_hub(
    package: &str,
    versions: &[String],
    prerelease: bool,
    into: &Path,
) -> Result<String, Diagnostic> {
    let hub = std::env::var("DBT_PACKAGE_HUB_URL").unwrap_or_else(|_| DEFAULT_HUB.to_string());
    let url = format!("{}/api/v1/{package}.json", hub.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let get = |url: String| {
        let client = client.clone();
        async move {
            let response = client.get(&url).send().await.map_err(|e| {
                fail(format!("could not reach {url}: {e}")).hint(
                    "check the network, or point DBT_PACKAGE_HUB_URL at a reachable package hub",
                )
            })?;
            if !response.status().is_success() {
                return Err(fail(format!("{url} answered HTTP {}", response.status()))
                    .hint("is the package name right (org/name, as on hub.getdbt.com)?"));
            }
            response
                .bytes()
                .await
                .map_err(|e| fail(format!("{url}: {e}")))
        }
    };
    let index: serde_json::Value = serde_json::from_slice(&get(url.clone()).await?)
        .map_err(|e| fail(format!("{url}: not a package index: {e}")))?;
    let releases = index
        .get("versions")
        .and_then(|v| v.as_object())
        .ok_or_else(|| fail(format!("{url}: the index lists no versions")))?;
    let available: Vec<String> = releases.keys().cloned().collect();
    let version = packages::pick(&available, versions, prerelease).ok_or_else(|| {
        fail(format!(
            "no release of {package} meets {}: available are {}",
            versions.join(", "),
            available.join(", ")
        ))
        .hint("change the version spec in packages.yml")
    })?;
    let tarball = releases[version]
        .pointer("/downloads/tarball")
        .and_then(|v| v.as_str())
        .ok_or_else(|| fail(format!("{package} {version}: the index has no tarball")))?
        .to_string();
    let bytes = get(tarball.clone()).await?;
    std::fs::create_dir_all(into).map_err(|e| fail(e.to_string()))?;
    let archive = into.with_extension("tar.gz");
    std::fs::write(&archive, &bytes).map_err(|e| fail(e.to_string()))?;
    run_tool(
        "tar",
        &[
            "-xzf",
            &archive.to_string_lossy(),
            "-C",
            &into.to_string_lossy(),
        ],
    )
    .map_err(|d| fail(format!("{tarball}: could not unpack: {}", d.message)))?;
    Ok(version.to_string())
}

/// The package inside an unpacked release: the directory itself, or the
/// one top-level directory GitHub tarballs have.
fn package_root(dir: &Path) -> Result<PathBuf, Diagnostic> {
    if dir.join(PROJECT_FILE).is_file() {
        return Ok(dir.to_path_buf());
    }
    std::fs::read_dir(dir)
        .map_err(|e| fail(e.to_string()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join(PROJECT_FILE).is_file())
        .ok_or_else(|| fail(format!("the downloaded release has no {PROJECT_FILE}")))
}

/// Run a system tool (`git`, `tar`), its error output in the error.
fn run_tool(tool: &str, args: &[&str]) -> Result<(), Diagnostic> {
    let out = std::process::Command::new(tool)
        .args(args)
        .output()
        .map_err(|e| fail(format!("could not run {tool}: {e}")).hint(format!("install {tool}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(fail(format!(
            "{tool} {} failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Clone `url` into `into` and check out `revision`.
fn fetch_git(url: &str, revision: Option<&str>, into: &Path) -> Result<(), Diagnostic> {
    let dest = into.to_string_lossy();
    run_tool("git", &["clone", "--quiet", url, &dest])?;
    if let Some(rev) = revision {
        run_tool("git", &["-C", &dest, "checkout", "--quiet", rev])?;
    }
    Ok(())
}

fn remove_existing(target: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(target) {
        Ok(m) if m.file_type().is_symlink() || m.is_file() => std::fs::remove_file(target),
        Ok(_) => std::fs::remove_dir_all(target),
        Err(_) => Ok(()),
    }
}

/// dbt links a local package rather than copying it.
fn link_local(source: &Path, target: &Path) -> Result<(), Diagnostic> {
    let source = source
        .canonicalize()
        .map_err(|e| fail(format!("local package {}: {e}", source.display())))?;
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&source, target).map_err(|e| fail(e.to_string()))
    }
    #[cfg(not(unix))]
    {
        Err(fail(format!(
            "local package {}: linking needs a Unix system",
            source.display()
        )))
    }
}
