//! `sluice debug`: the resolved profile and target (secrets masked), and a
//! connection test.

use super::{load_target, project_dir, Exit, Failure, Ui};
use crate::cli::GlobalArgs;
use crate::project;

pub fn debug(g: &GlobalArgs, _ui: &Ui) -> Result<Exit, Failure> {
    let root = project_dir(g);
    let (project, _) = project::load(&root)?;
    eprintln!("sluice version: {}", env!("CARGO_PKG_VERSION"));
    eprintln!("project: {} ({})", project.name(), root.display());
    let target = load_target(g, &project)?;
    eprintln!("profiles.yml: {}", target.profiles_path.display());
    eprintln!(
        "profile: {}  target: {}",
        target.profile_name, target.target_name
    );
    let shown = serde_json::to_value(target.config.masked()).unwrap_or_default();
    if let Some(m) = shown.as_object() {
        for (k, v) in m {
            let unset = v.is_null()
                || v.as_array().is_some_and(|a| a.is_empty())
                || v.as_object().is_some_and(|o| o.is_empty());
            if unset {
                continue;
            }
            eprintln!(
                "  {k}: {}",
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            );
        }
    }
    match crate::warehouse::open(&target.config, &project.root)
        .and_then(|w| w.server_version().map(|v| (w, v)))
    {
        Ok((w, version)) => match w.connect() {
            Ok(_) => {
                for warning in w.warnings() {
                    eprintln!("warning: {warning}");
                }
                eprintln!("connection: OK ({version})");
                Ok(0)
            }
            Err(e) => {
                eprintln!("connection: FAILED\n  {e}");
                Ok(1)
            }
        },
        Err(e) => {
            eprintln!("connection: FAILED\n  {e}\n  hint: check host, port, user and that the server is running; secrets are never printed");
            Ok(1)
        }
    }
}
