//! `sluice init <dir>`: a runnable project from the template embedded in
//! the binary.

use std::path::Path;

use super::{Exit, Failure, Ui};
use crate::diagnostics::Diagnostic;

/// (path inside the template, contents), embedded at build time.
const TEMPLATE: &[(&str, &str)] = &[
    (
        "dbt_project.yml",
        include_str!("../../project_template/dbt_project.yml"),
    ),
    (
        "profiles.yml",
        include_str!("../../project_template/profiles.yml"),
    ),
    (
        "models/example/my_first_model.sql",
        include_str!("../../project_template/models/example/my_first_model.sql"),
    ),
    (
        "models/example/my_second_model.sql",
        include_str!("../../project_template/models/example/my_second_model.sql"),
    ),
    (
        "models/example/schema.yml",
        include_str!("../../project_template/models/example/schema.yml"),
    ),
    ("seeds/.gitkeep", ""),
    ("macros/.gitkeep", ""),
    ("tests/.gitkeep", ""),
    (
        ".gitignore",
        include_str!("../../project_template/.gitignore"),
    ),
    (
        ".github/workflows/sluice-ci.yml",
        include_str!("../../project_template/.github/workflows/sluice-ci.yml"),
    ),
];

pub fn init(dir: &Path, ui: &Ui) -> Result<Exit, Failure> {
    if dir.exists() && fs_err::read_dir(dir)?.next().is_some() {
        return Err(Diagnostic::error(
            "E0107",
            format!("{} already exists and is not empty", dir.display()),
        )
        .hint("choose a new directory name")
        .into());
    }
    let name: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "my_project".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let name = if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("p_{name}")
    } else {
        name
    };
    for (path, text) in TEMPLATE {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::write(&p, text.replace("my_project", &name))?;
    }
    ui.info(format!(
        "Created project `{name}` in {}\nNext: cd {} && sluice build",
        dir.display(),
        dir.display()
    ));
    Ok(0)
}
