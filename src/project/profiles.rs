//! `profiles.yml`: where it is found, which profile and target apply, and
//! the rendered target configuration (with `env_var()` resolved).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::diagnostics::{did_you_mean, Diagnostic, Diagnostics};
use crate::project::yaml;
use crate::warehouse::TargetConfig;

pub const PROFILES_FILE: &str = "profiles.yml";

/// The resolved target of a run.
#[derive(Debug, Clone)]
pub struct Target {
    pub profile_name: String,
    pub target_name: String,
    pub config: TargetConfig,
    /// Where profiles.yml was found (for `debug`).
    pub profiles_path: PathBuf,
}

/// Find profiles.yml: `--profiles-dir`, then `SLUICE_PROFILES_DIR` /
/// `DBT_PROFILES_DIR`, then the project directory, then `~/.dbt/`.
pub fn find_profiles(profiles_dir: Option<&Path>, project_dir: &Path) -> Option<PathBuf> {
    if let Some(dir) = profiles_dir {
        return Some(dir.join(PROFILES_FILE));
    }
    for var in ["SLUICE_PROFILES_DIR", "DBT_PROFILES_DIR"] {
        if let Some(dir) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(dir).join(PROFILES_FILE));
        }
    }
    let local = project_dir.join(PROFILES_FILE);
    if local.is_file() {
        return Some(local);
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".dbt").join(PROFILES_FILE))
}

/// Resolve profile `profile_name` and target (`--target`, else the
/// profile's `target:`) from the text of profiles.yml. `render` renders a
/// Jinja string (env_var, var) and `shown_path` is how errors name the file.
pub fn resolve(
    text: &str,
    shown_path: &str,
    profiles_path: PathBuf,
    profile_name: &str,
    target_override: Option<&str>,
    render: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Target, Diagnostics> {
    let doc = yaml::parse(text, shown_path)?;
    let profiles = doc.as_object().cloned().unwrap_or_default();
    let Some(profile) = profiles.get(profile_name).and_then(Value::as_object) else {
        let names: Vec<&str> = profiles
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "config")
            .collect();
        let mut d = Diagnostic::error(
            "E0501",
            format!("profile `{profile_name}` not found in {shown_path}"),
        )
        .at(shown_path, None);
        d = match did_you_mean(profile_name, names.iter().copied()) {
            Some(s) => d.hint(format!(
                "did you mean `{s}`? (the profile is named by `profile:` in dbt_project.yml)"
            )),
            None if names.is_empty() => {
                d.hint("the file defines no profiles; run `sluice init` for an example")
            }
            None => d.hint(format!("profiles defined: {}", names.join(", "))),
        };
        return Err(d.into());
    };
    let render_value = |v: &Value, what: &str, line: Option<usize>| -> Result<Value, Diagnostic> {
        render_strings(v, render).map_err(|m| {
            Diagnostic::error("E0502", format!("could not render {what}: {m}"))
                .at(shown_path, line)
                .hint("set the environment variable or give env_var() a default: env_var('NAME', 'default')")
        })
    };
    let profile_line = yaml::line_of_key(text, profile_name, 1);
    let target_name = match target_override {
        Some(t) => t.to_string(),
        None => match profile.get("target") {
            Some(v) => match render_value(v, "the profile's `target`", profile_line)? {
                Value::String(s) => s,
                other => other.to_string(),
            },
            None => "default".to_string(),
        },
    };
    let outputs = profile
        .get("outputs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let Some(output) = outputs.get(&target_name) else {
        let names: Vec<&str> = outputs.keys().map(String::as_str).collect();
        let mut d = Diagnostic::error(
            "E0503",
            format!("target `{target_name}` not found in profile `{profile_name}`"),
        )
        .at(shown_path, profile_line);
        d = match did_you_mean(&target_name, names.iter().copied()) {
            Some(s) => d.hint(format!("did you mean `{s}`?")),
            None => d.hint(format!("targets defined: {}", names.join(", "))),
        };
        return Err(d.into());
    };
    let line = yaml::line_of_key(text, &target_name, profile_line.unwrap_or(1));
    let rendered = render_value(output, &format!("target `{target_name}`"), line)?;
    let config: TargetConfig = yaml::from_value(normalise_target(rendered)).map_err(|m| {
        Diagnostics::from(
            Diagnostic::error("E0504", format!("invalid target `{target_name}`: {m}"))
                .at(shown_path, line)
                .hint("supported types: duckdb (path, schema, threads) and postgres (host, port, user, password, dbname, schema, threads, sslmode)"),
        )
    })?;
    if let TargetConfig::Duckdb(d) = &config {
        d.check().map_err(|m| {
            Diagnostics::from(
                Diagnostic::error("E0504", format!("invalid target `{target_name}`: {m}"))
                    .at(shown_path, line)
                    .hint("leave `database` out, or set it to the alias of a database under `attach:`"),
            )
        })?;
    }
    Ok(Target {
        profile_name: profile_name.to_string(),
        target_name,
        config,
        profiles_path,
    })
}

/// dbt accepts numbers as strings in profiles (`port: "{{ env_var('PGPORT') }}"` renders to a string).
fn normalise_target(v: Value) -> Value {
    let Value::Object(mut map) = v else { return v };
    for key in ["port", "threads", "connect_timeout", "keepalives_idle"] {
        if let Some(Value::String(s)) = map.get(key) {
            if let Ok(n) = s.trim().parse::<u64>() {
                map.insert(key.to_string(), Value::from(n));
            }
        }
    }
    if let Some(Value::Number(n)) = map.get("password") {
        let s = n.to_string();
        map.insert("password".into(), Value::String(s));
    }
    Value::Object(map)
}

/// Render every string containing Jinja in a YAML value.
pub fn render_strings(
    v: &Value,
    render: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) if s.contains("{{") || s.contains("{%") => Value::String(render(s)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| render_strings(x, render))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), render_strings(x, render)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_render(s: &str) -> Result<String, String> {
        Ok(s.replace("{{ env_var('P') }}", "5433"))
    }

    const PROFILES: &str = "shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: x.duckdb\n    prod:\n      type: postgres\n      host: h\n      port: \"{{ env_var('P') }}\"\n      user: u\n      password: secret\n      dbname: d\n      schema: s\n";

    #[test]
    fn resolves_default_and_override_targets() {
        let t = resolve(
            PROFILES,
            "profiles.yml",
            PathBuf::new(),
            "shop",
            None,
            &no_render,
        )
        .unwrap();
        assert_eq!(t.target_name, "dev");
        assert!(matches!(t.config, TargetConfig::Duckdb(_)));
        let t = resolve(
            PROFILES,
            "profiles.yml",
            PathBuf::new(),
            "shop",
            Some("prod"),
            &no_render,
        )
        .unwrap();
        match t.config {
            TargetConfig::Postgres(p) => assert_eq!(p.port, 5433),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_profile_and_target_are_errors_with_hints() {
        let e = resolve(
            PROFILES,
            "profiles.yml",
            PathBuf::new(),
            "shpo",
            None,
            &no_render,
        )
        .unwrap_err();
        assert!(e.to_string().contains("did you mean `shop`"), "{e}");
        let e = resolve(
            PROFILES,
            "profiles.yml",
            PathBuf::new(),
            "shop",
            Some("prd"),
            &no_render,
        )
        .unwrap_err();
        assert!(e.to_string().contains("target `prd` not found"), "{e}");
        assert!(e.to_string().contains("did you mean `prod`"), "{e}");
    }
}
