//! Whole-CLI tests: the `sluice` binary on fixture projects, with the
//! diagnostics of every deliberately broken project kept as snapshots.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn sluice() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sluice"));
    c.env_remove("DBT_PROFILES_DIR")
        .env_remove("SLUICE_PROFILES_DIR")
        .env_remove("DBT_PROJECT_DIR")
        .env("NO_COLOR", "1");
    c
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copy a directory tree (fixtures are copied so runs never write into the repo).
/// Write `files` (path under `root`, text), making folders as needed.
pub fn write_all(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
}

pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk fixture");
        let rel = entry.path().strip_prefix(from).expect("prefix");
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run_in(dir: &Path, args: &[&str]) -> Out {
    let o = sluice()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run sluice");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A copy of the example project at the repository root (no target/ or databases).
pub fn example_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = repo_root();
    for item in [
        "dbt_project.yml",
        "profiles.yml",
        "models",
        "seeds",
        "macros",
        "data_tests",
        "sample",
    ] {
        let from = root.join(item);
        if from.is_dir() {
            copy_tree(&from, &dir.path().join(item));
        } else {
            std::fs::copy(&from, dir.path().join(item)).expect("copy");
        }
    }
    dir
}

fn bad(case: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(
        &repo_root().join("tests/fixtures/bad").join(case),
        dir.path(),
    );
    let out = run_in(dir.path(), args);
    assert_eq!(out.code, 1, "{case}: expected exit 1\n{}", out.stderr);
    assert!(
        !dir.path().join("target/manifest.json").exists(),
        "{case}: a failed parse must not leave a manifest behind"
    );
    assert!(
        !out.stderr.contains("panicked"),
        "{case} panicked:\n{}",
        out.stderr
    );
    out.stderr
}

macro_rules! bad_input {
    ($name:ident, $args:expr, $needle:expr) => {
        #[test]
        fn $name() {
            let stderr = bad(stringify!($name), $args);
            assert!(
                stderr.contains($needle),
                "{}: expected `{}` in:\n{}",
                stringify!($name),
                $needle,
                stderr
            );
            insta::assert_snapshot!(concat!("bad_", stringify!($name)), stderr);
        }
    };
}

bad_input!(yaml_syntax, &["parse"], "--> models/schema.yml:6");
bad_input!(duplicate_model, &["parse"], "two models are named `orders`");
bad_input!(unknown_ref, &["parse"], "--> models/child.sql:3");
bad_input!(unknown_source, &["parse"], "did you mean `raw.tweets`?");
bad_input!(cycle, &["parse"], "a -> b -> c -> a");
bad_input!(jinja_syntax, &["parse"], "--> models/child.sql:");
bad_input!(undefined_var, &["parse"], "--> models/child.sql:2");
bad_input!(missing_env_var, &["parse"], "SLUICE_FIXTURE_UNSET_VAR");
bad_input!(missing_target, &["parse"], "did you mean `prod`?");
bad_input!(missing_profile, &["parse"], "profile `bad` not found");
bad_input!(unknown_config_key, &["parse"], "--> dbt_project.yml:5");
bad_input!(
    unknown_selector,
    &["ls", "-s", "tagg:x"],
    "did you mean 'tag'?"
);

#[test]
fn patch_for_missing_model_warns_like_dbt_and_fails_under_warn_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(
        &repo_root().join("tests/fixtures/bad/patch_missing_model"),
        dir.path(),
    );
    let out = run_in(dir.path(), &["parse"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("--> models/schema.yml:4"),
        "{}",
        out.stderr
    );
    let out = run_in(dir.path(), &["--warn-error", "parse"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    insta::assert_snapshot!("bad_patch_missing_model", out.stderr);
}

#[test]
fn example_project_parses_compiles_and_lists_upstream_of_a_mart() {
    let dir = example_project();
    let out = run_in(dir.path(), &["parse"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/manifest.json")).expect("manifest"),
    )
    .expect("json");
    let mart = &manifest["nodes"]["model.twitter_analytics.tweets_per_10_minutes"];
    assert_eq!(mart["config"]["materialized"], "table");
    assert_eq!(
        mart["depends_on"]["nodes"],
        serde_json::json!(["model.twitter_analytics.int_tweets"])
    );
    assert!(manifest["sources"]["source.twitter_analytics.twitter.tweets"].is_object());
    assert_eq!(
        manifest["parent_map"]["model.twitter_analytics.int_tweets"],
        serde_json::json!(["source.twitter_analytics.twitter.tweets"])
    );

    let out = run_in(
        dir.path(),
        &[
            "ls",
            "-s",
            "+tweets_per_10_minutes",
            "--resource-type",
            "model",
            "source",
            "--output",
            "name",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let names: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(names, vec!["int_tweets", "tweets_per_10_minutes", "tweets"]);

    let out = run_in(dir.path(), &["compile"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let compiled = std::fs::read_to_string(
        dir.path()
            .join("target/compiled/twitter_analytics/models/datamart/tweets_per_10_minutes.sql"),
    )
    .expect("compiled mart");
    assert!(
        compiled.contains("\"analytics\".\"int_tweets\""),
        "{compiled}"
    );
    assert!(!compiled.contains("{{"), "{compiled}");
    assert!(
        !compiled.contains('\u{1}'),
        "placeholders must be substituted: {compiled}"
    );
}

#[test]
fn manifest_is_deterministic_apart_from_timestamps() {
    let dir = example_project();
    let read = || {
        let out = run_in(dir.path(), &["parse"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let mut m: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("target/manifest.json")).expect("manifest"),
        )
        .expect("json");
        m["metadata"]["generated_at"] = serde_json::Value::Null;
        m["metadata"]["invocation_id"] = serde_json::Value::Null;
        serde_json::to_string(&m).expect("json")
    };
    assert_eq!(read(), read());
}

#[test]
fn compile_inline_prints_rendered_sql_on_stdout() {
    let dir = example_project();
    let out = run_in(
        dir.path(),
        &[
            "compile",
            "--inline",
            "select * from {{ ref('int_users') }} where {{ var('bucket_minutes') }} > 0",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.trim(),
        "select * from \"twitter\".\"analytics\".\"int_users\" where 10 > 0"
    );
}

#[test]
fn vars_on_the_command_line_override_project_vars() {
    let dir = example_project();
    let out = run_in(
        dir.path(),
        &[
            "--vars",
            "{bucket_minutes: 15}",
            "compile",
            "--inline",
            "{{ var('bucket_minutes') }}",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "15");
}

#[test]
fn init_scaffolds_a_project_that_compiles_and_clean_removes_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_in(dir.path(), &["init", "shop"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let project = dir.path().join("shop");
    let text = std::fs::read_to_string(project.join("dbt_project.yml")).expect("project file");
    assert!(
        text.contains("name: shop")
            || text.contains("name: 'shop'")
            || text.contains("name: \"shop\""),
        "{text}"
    );
    let out = run_in(&project, &["compile"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(project.join("target/manifest.json").exists());
    let out = run_in(&project, &["clean"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!project.join("target").exists());
    // init refuses to overwrite.
    let out = run_in(dir.path(), &["init", "shop"]);
    assert_eq!(out.code, 1);
}

#[test]
fn static_sql_check_reports_syntax_errors_at_the_compiled_line() {
    let dir = one_model_project();
    std::fs::write(
        dir.path().join("models/broken.sql"),
        "select id,\n  from\n{{ ref('base') }} where (\n",
    )
    .expect("write");
    let out = run_in(dir.path(), &["compile"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("SQL syntax error in model `broken`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("--> target/compiled/bad/models/broken.sql:"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_repeated_compile_rewrites_and_rechecks_only_what_changed() {
    let dir = one_model_project();
    let model = dir.path().join("models/extra.sql");
    let compiled = dir.path().join("target/compiled/bad/models/extra.sql");
    let compile = || run_in(dir.path(), &["compile"]);
    let mtime = |p: &std::path::Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .expect("mtime")
    };

    std::fs::write(&model, "select id from {{ ref('base') }}\n").expect("write");
    let out = compile();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(dir.path().join("target/sluice_compile_cache.tsv").exists());
    let first = mtime(&compiled);

    // Unchanged: the compiled file is left as it is.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let out = compile();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(mtime(&compiled), first, "an unchanged file was rewritten");

    // Broken: the cached verdict of the old SQL does not cover the new SQL.
    std::fs::write(&model, "select id,\n  from {{ ref('base') }} where (\n").expect("write");
    for _ in 0..2 {
        let out = compile();
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(
            out.stderr.contains("SQL syntax error in model `extra`"),
            "{}",
            out.stderr
        );
    }

    // Fixed again; then a hand-edited compiled file is put back.
    std::fs::write(&model, "select id from {{ ref('base') }}\n").expect("write");
    assert_eq!(compile().code, 0);
    std::fs::write(&compiled, "-- edited").expect("write");
    let out = compile();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = std::fs::read_to_string(&compiled).expect("read");
    assert!(
        text.starts_with("select id from") && text.contains("base"),
        "{text}"
    );
}

/// A project with one model, `base`, on in-memory DuckDB, to add files to.
fn one_model_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(
        &repo_root().join("tests/fixtures/bad/unknown_selector"),
        dir.path(),
    );
    dir
}

fn write_file(root: &std::path::Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("json")
}

/// dbt's exposures: declared in schema YAML, below what they depend on in
/// the graph (`+exposure:x` selects it all), in the manifest's `exposures`,
/// listed with an `exposure:` prefix, never run by `build`.
#[test]
fn exposures_sit_below_what_they_use() {
    let dir = one_model_project();
    let write = |rel: &str, text: &str| write_file(dir.path(), rel, text);
    write(
        "models/downstream.sql",
        "select id from {{ ref('base') }}\n",
    );
    write("models/other.sql", "select 2 as id\n");
    write(
        "models/exposures.yml",
        "exposures:\n  - name: weekly_dashboard\n    label: Weekly\n    type: dashboard\n    maturity: high\n    url: https://bi.example.com/weekly\n    description: The **weekly** numbers.\n    owner:\n      name: Data team\n      email: data@example.com\n    depends_on:\n      - ref('downstream')\n",
    );
    let out = run_in(dir.path(), &["ls", "-s", "+exposure:weekly_dashboard"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut listed: Vec<&str> = out.stdout.lines().collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "bad.base",
            "bad.downstream",
            "exposure:bad.weekly_dashboard"
        ],
        "{}",
        out.stdout
    );
    let out = run_in(dir.path(), &["parse"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("1 exposure"), "{}", out.stderr);
    let manifest = read_json(&dir.path().join("target/manifest.json"));
    let e = &manifest["exposures"]["exposure.bad.weekly_dashboard"];
    assert_eq!(e["type"], "dashboard");
    assert_eq!(e["owner"]["email"], "data@example.com");
    assert_eq!(e["url"], "https://bi.example.com/weekly");
    assert_eq!(e["depends_on"]["nodes"][0], "model.bad.downstream");
    assert!(manifest["nodes"]
        .get("exposure.bad.weekly_dashboard")
        .is_none());
    assert_eq!(
        manifest["child_map"]["model.bad.downstream"][0],
        "exposure.bad.weekly_dashboard"
    );
    // `build` builds what it selects and leaves the exposure alone.
    let out = run_in(dir.path(), &["build", "-s", "+exposure:weekly_dashboard"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("TOTAL=2"), "{}", out.stderr);

    write(
        "models/exposures.yml",
        "exposures:\n  - name: weekly_dashboard\n    type: spreadsheet\n    owner: {name: x}\n",
    );
    let out = run_in(dir.path(), &["parse"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("models/exposures.yml:2"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("use one of dashboard, notebook"),
        "{}",
        out.stderr
    );
}

#[test]
fn analyses_compile_list_and_never_run() {
    let dir = one_model_project();
    let write = |rel: &str, text: &str| write_file(dir.path(), rel, text);
    write(
        "analyses/weekly/report.sql",
        "select count(*) as n from {{ ref('base') }}\n",
    );
    write(
        "analyses/props.yml",
        "version: 2\nanalyses:\n  - name: report\n    description: Rows in base.\n",
    );

    // dbt compiles no analyses until `analysis-paths` says where they are.
    let out = run_in(dir.path(), &["ls", "--resource-type", "analysis"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "", "{}", out.stdout);

    let project = dir.path().join("dbt_project.yml");
    let text = std::fs::read_to_string(&project).expect("read");
    std::fs::write(&project, format!("{text}analysis-paths: [\"analyses\"]\n")).expect("write");
    let out = run_in(dir.path(), &["ls", "--resource-type", "analysis"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // dbt's default fqn keeps the folder: `project.analyses.<dirs>.name`.
    assert_eq!(
        out.stdout.trim(),
        "bad.analyses.weekly.report",
        "{}",
        out.stdout
    );

    let out = run_in(dir.path(), &["compile"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let compiled = std::fs::read_to_string(
        dir.path()
            .join("target/compiled/bad/analyses/weekly/report.sql"),
    )
    .expect("compiled analysis");
    assert!(
        compiled.contains("\"base\"") && !compiled.contains("ref("),
        "{compiled}"
    );
    let manifest = read_json(&dir.path().join("target/manifest.json"));
    let node = &manifest["nodes"]["analysis.bad.report"];
    assert_eq!(node["resource_type"], "analysis");
    assert_eq!(node["description"], "Rows in base.");
    assert_eq!(node["depends_on"]["nodes"][0], "model.bad.base");

    // `run` builds models only.
    let out = run_in(dir.path(), &["run"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let results = read_json(&dir.path().join("target/run_results.json"));
    let ids: Vec<&str> = results["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["unique_id"].as_str())
        .collect();
    assert!(
        !ids.is_empty() && ids.iter().all(|id| id.starts_with("model.")),
        "{ids:?}"
    );

    // With dbt's corrected-fqn flag the folder drops out and `analyses:` configs apply.
    std::fs::write(
        &project,
        format!("{text}analysis-paths: [\"analyses\"]\nflags:\n  require_corrected_analysis_fqns: true\nanalyses:\n  bad:\n    weekly:\n      +tags: [finance]\n"),
    )
    .expect("write");
    let out = run_in(dir.path(), &["ls", "-s", "tag:finance"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "bad.weekly.report", "{}", out.stdout);
}

#[test]
fn a_partial_compile_leaves_unselected_nodes_uncompiled_in_the_manifest() {
    let dir = example_project();
    let out = run_in(dir.path(), &["compile", "-s", "int_tweets"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let manifest = read_json(&dir.path().join("target/manifest.json"));
    let nodes = manifest["nodes"].as_object().expect("nodes");
    let selected = nodes["model.twitter_analytics.int_tweets"]["compiled_code"]
        .as_str()
        .expect("the selected model is compiled");
    assert!(
        selected.contains("\"raw_twitter\".\"tweets\""),
        "{selected}"
    );
    for (id, n) in nodes {
        let code = n["compiled_code"].as_str().unwrap_or_default();
        assert!(
            !code.contains('\u{1}'),
            "{id} carries a placeholder: {code}"
        );
    }
    assert!(nodes["model.twitter_analytics.int_users"]["compiled_code"].is_null());
}

#[test]
fn snapshots_parse_compile_and_can_be_referenced() {
    let dir = one_model_project();
    let write = |rel: &str, text: &str| write_file(dir.path(), rel, text);
    write(
        "snapshots/base_snap.sql",
        "-- history of base\n{% snapshot base_snapshot %}\n{{ config(target_schema='history', unique_key='id', strategy='check', check_cols='all') }}\nselect * from {{ ref('base') }}\n{% endsnapshot %}\n",
    );
    write(
        "models/uses_snap.sql",
        "select * from {{ ref('base_snapshot') }}\n",
    );

    // dbt's fqn for a snapshot carries its file name.
    let out = run_in(dir.path(), &["ls", "--resource-type", "snapshot"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.trim(),
        "bad.base_snap.base_snapshot",
        "{}",
        out.stdout
    );

    let out = run_in(dir.path(), &["compile"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let read = |rel: &str| std::fs::read_to_string(dir.path().join(rel)).expect(rel);
    let snap = read("target/compiled/bad/snapshots/base_snap.sql");
    assert!(
        snap.contains("\"base\"") && !snap.contains("ref("),
        "{snap}"
    );
    // `target_schema` is used as written, not through generate_schema_name.
    let uses = read("target/compiled/bad/models/uses_snap.sql");
    assert!(uses.contains("\"history\".\"base_snapshot\""), "{uses}");
    let manifest = read_json(&dir.path().join("target/manifest.json"));
    let node = &manifest["nodes"]["snapshot.bad.base_snapshot"];
    assert_eq!(node["resource_type"], "snapshot");
    assert_eq!(node["config"]["materialized"], "snapshot");
    assert_eq!(node["config"]["unique_key"], "id");
    assert_eq!(node["depends_on"]["nodes"][0], "model.bad.base");
    assert_eq!(
        manifest["nodes"]["model.bad.uses_snap"]["depends_on"]["nodes"][0],
        "snapshot.bad.base_snapshot"
    );

    // dbt 1.9's snapshots defined in YAML select from their `relation:`;
    // the entry's config, columns and tests apply as to any snapshot.
    write(
        "snapshots/more/snaps.yml",
        "snapshots:\n  - name: base_history\n    relation: ref('base')\n    config:\n      unique_key: id\n      strategy: check\n      check_cols: all\n    columns:\n      - name: id\n        data_tests: [not_null]\n",
    );
    // Its fqn: the project, the YAML file's folders, its name.
    let out = run_in(dir.path(), &["ls", "--resource-type", "snapshot"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.lines().any(|l| l == "bad.more.base_history"),
        "{}",
        out.stdout
    );
    let out = run_in(dir.path(), &["build", "-s", "+base_history+"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("snapshot main.base_history"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("not_null_base_history_id"),
        "{}",
        out.stderr
    );
    let compiled = read("target/compiled/bad/snapshots/more/snaps.yml/base_history.sql");
    assert_eq!(
        compiled.trim(),
        "select * from \"memory\".\"main\".\"base\""
    );

    // `build` runs it after what it selects from and before what refs it
    // (its history is tested in run::snapshots_keep_history_*).
    let out = run_in(dir.path(), &["build", "-s", "+uses_snap"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let at = |what: &str| {
        out.stderr
            .find(what)
            .unwrap_or_else(|| panic!("no {what} in:\n{}", out.stderr))
    };
    assert!(at("model main.base") < at("snapshot history.base_snapshot"));
    assert!(at("snapshot history.base_snapshot") < at("model main.uses_snap"));

    // Errors inside a snapshot point at the line in its file.
    write(
        "snapshots/broken.sql",
        "{% snapshot broken %}\nselect 1\n{{ no_such_macro() }}\n{% endsnapshot %}\n",
    );
    let out = run_in(dir.path(), &["parse"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("snapshots/broken.sql:3"),
        "{}",
        out.stderr
    );
}

#[test]
fn ls_json_carries_column_lineage() {
    let dir = example_project();
    let out = run_in(
        dir.path(),
        &[
            "ls",
            "-s",
            "int_tweets_with_authors",
            "--output",
            "json",
            "--resource-type",
            "model",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("one json line");
    assert_eq!(
        v["unique_id"],
        "model.twitter_analytics.int_tweets_with_authors"
    );
    let username = &v["column_lineage"]["author_username"]["upstream"];
    assert_eq!(
        username,
        &serde_json::json!([{"node": "model.twitter_analytics.int_users", "column": "username"}]),
        "{v}"
    );
}

/// dbt's default naming (`<target schema>_<custom>`), then project overrides
/// of `generate_schema_name` and `generate_alias_name` taking effect in
/// `ref()`, `relation_name` and the manifest.
#[test]
fn generate_schema_and_alias_name_overrides_name_relations() {
    let dir = example_project();
    let p = dir.path();
    std::fs::write(
        p.join("models/custom_named.sql"),
        "{{ config(schema='marts') }}\nselect 1 as x\n",
    )
    .expect("write model");
    std::fs::write(
        p.join("models/reads_custom.sql"),
        "select x from {{ ref('custom_named') }}\n",
    )
    .expect("write model");
    let inline = ["compile", "--inline", "{{ ref('custom_named') }}"];
    let out = run_in(p, &inline);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.trim(),
        "\"twitter\".\"analytics_marts\".\"custom_named\"",
        "dbt's default: target schema + custom schema"
    );

    std::fs::write(
        p.join("macros/naming.sql"),
        "{% macro generate_schema_name(custom_schema_name, node) -%}\n\
         {%- if custom_schema_name is none -%}{{ target.schema }}\n\
         {%- else -%}{{ custom_schema_name | trim }}{%- endif -%}\n\
         {%- endmacro %}\n\
         {% macro generate_alias_name(custom_alias_name=none, node=none) -%}\n\
         {%- if node.name == 'custom_named' -%}renamed_{{ node.name }}\n\
         {%- else -%}{{ custom_alias_name or node.name }}{%- endif -%}\n\
         {%- endmacro %}\n",
    )
    .expect("write macros");
    let out = run_in(p, &inline);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.trim(),
        "\"twitter\".\"marts\".\"renamed_custom_named\"",
        "the project's macros decide"
    );
    let out = run_in(p, &["compile", "-s", "reads_custom"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let compiled = std::fs::read_to_string(
        p.join("target/compiled/twitter_analytics/models/reads_custom.sql"),
    )
    .expect("compiled model");
    assert!(
        compiled.contains("\"twitter\".\"marts\".\"renamed_custom_named\""),
        "{compiled}"
    );
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.join("target/manifest.json")).expect("manifest"),
    )
    .expect("json");
    let node = &manifest["nodes"]["model.twitter_analytics.custom_named"];
    assert_eq!(node["schema"], "marts");
    assert_eq!(node["alias"], "renamed_custom_named");
    let other = &manifest["nodes"]["model.twitter_analytics.int_users"];
    assert_eq!(
        other["schema"], "analytics",
        "no custom schema: the target's"
    );
    assert_eq!(other["alias"], "int_users");
}

#[test]
fn a_macro_calling_another_of_its_file_gets_that_ones_return_value() {
    let dir = one_model_project();
    let write = |rel: &str, text: &str| write_file(dir.path(), rel, text);
    // `return()` ends only the macro that calls it, as in dbt, even when the
    // caller is defined in the same file.
    write(
        "macros/arith.sql",
        "top-level text dbt ignores\n{% macro double(x) %}{{ return(x * 2) }}{% endmacro %}\n\n{% macro quadruple(x) -%}\n{{ double(x) * 2 }}\n{%- endmacro %}\n",
    );
    write(
        "models/uses_macros.sql",
        "select {{ quadruple(3) }} as n, {{ dbt.date_trunc('day', 'x') }} as d",
    );
    let out = run_in(dir.path(), &["compile", "-s", "uses_macros"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let compiled = std::fs::read_to_string(
        dir.path()
            .join("target/compiled/bad/models/uses_macros.sql"),
    )
    .expect("compiled");
    assert_eq!(compiled.trim(), "select 12 as n, date_trunc('day', x) as d");

    // An error inside a macro still names the macro file and its line.
    write(
        "macros/arith.sql",
        "{% macro double(x) %}{{ return(x * 2) }}{% endmacro %}\n\n{% macro quadruple(x) %}\n{{ double(x) * 2 }}\n{{ exceptions.raise_compiler_error('no quadruples today') }}\n{% endmacro %}\n",
    );
    let out = run_in(dir.path(), &["compile", "-s", "uses_macros"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("no quadruples today") && out.stderr.contains("macros/arith.sql:5"),
        "{}",
        out.stderr
    );
}

/// A package as `dbt deps` installs it, written for this test.
fn install_tiny_package(root: &std::path::Path) {
    let write = |rel: &str, text: &str| write_file(root, rel, text);
    write(
        "dbt_packages/tiny_utils/dbt_project.yml",
        "name: tiny_utils\nversion: '1.0.0'\nconfig-version: 2\nmacro-paths: ['src_macros']\n",
    );
    write(
        "dbt_packages/tiny_utils/src_macros/sql.sql",
        "{% macro cents(column) %}{{ return(adapter.dispatch('cents', 'tiny_utils')(column)) }}{% endmacro %}\n\
         {% macro default__cents(column) %}({{ column }} / 100.0){% endmacro %}\n\
         {% macro duckdb__cents(column) %}cast({{ column }} / 100.0 as decimal(18, 2)){% endmacro %}\n\
         {% macro upper_list(names) %}{% set out = [] %}{% for n in names %}{% do out.append(n.upper()) %}{% endfor %}{{ return(out | join(', ')) }}{% endmacro %}\n\
         {% macro shout() %}{{ return(helper() ~ '!') }}{% endmacro %}\n\
         {% macro helper() %}{{ return('local') }}{% endmacro %}\n",
    );
    write(
        "dbt_packages/tiny_utils/src_macros/generic/is_even.sql",
        "{% test is_even(model, column_name) %}\nselect * from {{ model }} where {{ column_name }} % 2 <> 0\n{% endtest %}\n",
    );
}

#[test]
fn installed_packages_macros_and_tests_are_called_through_their_namespace() {
    let dir = one_model_project();
    install_tiny_package(dir.path());
    let write = |rel: &str, text: &str| write_file(dir.path(), rel, text);
    write(
        "models/priced.sql",
        "{% set labels = {'a': 1} %}{% do labels.update({'b': 2}) %}\n\
         select {{ tiny_utils.cents('amount') }} as dollars, '{{ tiny_utils.shout() }}' as s,\n  \
         '{{ tiny_utils.upper_list(['x', 'y']) }}' as xy, '{{ labels.keys() | join('') }}' as k,\n  \
         '{{ modules.re.sub('[^a-z]+', '_', 'a-b  c') }}' as cleaned,\n  \
         '{{ api.Relation.create(schema='raw', identifier='events') }}' as rel\n\
         from {{ ref('base') }}\n",
    );
    write(
        "models/props.yml",
        "version: 2\nmodels:\n  - name: priced\n    columns:\n      - name: dollars\n        data_tests: [tiny_utils.is_even]\n",
    );
    let out = run_in(dir.path(), &["compile"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let compiled = |rel: &str| {
        std::fs::read_to_string(dir.path().join("target/compiled/bad").join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
    };
    // The package's DuckDB implementation wins the dispatch; inside the
    // package its own macros are callable bare; lists and dicts change in
    // place and strings have Python's methods.
    assert_eq!(
        compiled("models/priced.sql").trim(),
        "select cast(amount / 100.0 as decimal(18, 2)) as dollars, 'local!' as s,\n  'X, Y' as xy, 'ab' as k,\n  'a_b_c' as cleaned,\n  '\"raw\".\"events\"' as rel\nfrom \"memory\".\"main\".\"base\""
    );
    // A package's generic test, named as dbt names it.
    assert_eq!(
        compiled("models/props.yml/tiny_utils_is_even_priced_dollars.sql").trim(),
        "select * from \"memory\".\"main\".\"priced\" where dollars % 2 <> 0"
    );
    // dbt stops when packages.yml lists packages that are not installed;
    // sluice warns (the ones that are installed still work).
    write(
        "packages.yml",
        "packages:\n  - local: dbt_packages/tiny_utils\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n",
    );
    let out = run_in(dir.path(), &["compile", "-s", "priced"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("packages.yml lists 2 package(s) but 1 are installed in dbt_packages/"),
        "{}",
        out.stderr
    );

    // `dispatch:` in dbt_project.yml puts the project's implementation first.
    let project = dir.path().join("dbt_project.yml");
    let text = std::fs::read_to_string(&project).expect("read");
    std::fs::write(
        &project,
        format!("{text}dispatch:\n  - macro_namespace: tiny_utils\n    search_order: ['bad', 'tiny_utils']\n"),
    )
    .expect("write");
    write(
        "macros/cents.sql",
        "{% macro default__cents(column) %}round({{ column }}){% endmacro %}\n",
    );
    let out = run_in(dir.path(), &["compile", "-s", "priced"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        compiled("models/priced.sql")
            .trim_start()
            .starts_with("select round(amount) as dollars"),
        "{}",
        compiled("models/priced.sql")
    );

    // A package macro is not a bare name in the project (dbt needs the namespace).
    write("models/bare.sql", "select {{ shout() }} as s\n");
    let out = run_in(dir.path(), &["compile", "-s", "bare"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("models/bare.sql:1"), "{}", out.stderr);
    std::fs::remove_file(dir.path().join("models/bare.sql")).expect("rm");

    // A package whose dbt_project.yml is broken: an error at its file and line.
    write(
        "dbt_packages/broken/dbt_project.yml",
        "name: broken\nmacro-paths: [\"macros\"\n",
    );
    let out = run_in(dir.path(), &["compile", "-s", "priced"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("dbt_packages/broken/dbt_project.yml:"),
        "{}",
        out.stderr
    );
    std::fs::remove_dir_all(dir.path().join("dbt_packages/broken")).expect("rm");

    // An error inside a package macro names the package's file and line.
    write(
        "dbt_packages/tiny_utils/src_macros/generic/is_even.sql",
        "{% test is_even(model, column_name) %}\n{{ exceptions.raise_compiler_error('odd') }}\n{% endtest %}\n",
    );
    let out = run_in(dir.path(), &["compile"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("dbt_packages/tiny_utils/src_macros/generic/is_even.sql:2"),
        "{}",
        out.stderr
    );
}

/// A package release as the dbt Hub serves it: a .tar.gz (made with the
/// system `tar`) whose one top-level directory holds the package.
fn package_tarball(name: &str, answer: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let top = format!("acme-{name}-abc123");
    write_file(
        &dir.path().join(&top),
        "dbt_project.yml",
        &format!("name: {name}\nversion: '1.0'\nconfig-version: 2\n"),
    );
    write_file(
        &dir.path().join(&top),
        "macros/answer.sql",
        &format!("{{% macro answer() %}}{answer}{{% endmacro %}}\n"),
    );
    let archive = dir.path().join("release.tar.gz");
    let status = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path())
        .arg(&top)
        .status()
        .expect("run tar (install it: apt-get install tar)");
    assert!(status.success());
    std::fs::read(archive).expect("read tarball")
}

/// A local stand-in for hub.getdbt.com: the package index and its
/// releases' tarballs, over HTTP on a loopback port.
fn start_package_hub(name: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let versions = ["0.1.0", "0.2.0", "1.0.0"];
    let index = serde_json::json!({
        "name": name,
        "versions": versions.iter().map(|v| (v.to_string(), serde_json::json!({
            "downloads": {"tarball": format!("{base}/tarballs/{v}.tar.gz")}
        }))).collect::<serde_json::Map<_, _>>()
    })
    .to_string();
    let name = name.to_string();
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            // Drain the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
            }
            let path = request
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            let body = if path == format!("/api/v1/acme/{name}.json") {
                Some(index.clone().into_bytes())
            } else {
                versions
                    .iter()
                    .find(|v| path == format!("/tarballs/{v}.tar.gz"))
                    .map(|v| package_tarball(&name, &format!("answer {v}")))
            };
            let (status, body) = match body {
                Some(b) => ("200 OK", b),
                None => ("404 Not Found", b"not found".to_vec()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    base
}

/// `deps` installs what packages.yml lists: a Hub package at the newest
/// release its version range allows (from a local hub, as
/// DBT_PACKAGE_HUB_URL points dbt at one) and a local package as a link;
/// their macros are then called through their namespaces.
#[test]
fn deps_installs_hub_and_local_packages() {
    let hub = start_package_hub("tiny_answers");
    let dir = one_model_project();
    let write = |rel: &str, text: &str| write_file(dir.path(), rel, text);
    let shared = tempfile::tempdir().expect("tempdir");
    write_file(
        shared.path(),
        "dbt_project.yml",
        "name: shared_macros\nversion: '1.0'\nconfig-version: 2\n",
    );
    write_file(
        shared.path(),
        "macros/greet.sql",
        "{% macro greet() %}'hello'{% endmacro %}\n",
    );
    write(
        "packages.yml",
        &format!(
            "packages:\n  - package: acme/tiny_answers\n    version: [\">=0.1.0\", \"<1.0.0\"]\n  - local: {}\n",
            shared.path().display()
        ),
    );
    write(
        "models/uses_packages.sql",
        "select '{{ tiny_answers.answer() }}' as answer, {{ shared_macros.greet() }} as greeting\n",
    );
    let deps = |dir: &std::path::Path| {
        let o = sluice()
            .arg("deps")
            .current_dir(dir)
            .env("DBT_PACKAGE_HUB_URL", &hub)
            .output()
            .expect("run sluice");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, stderr) = deps(dir.path());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("Installed tiny_answers 0.2.0"), "{stderr}");
    assert!(dir.path().join("dbt_packages/shared_macros").is_symlink());
    let out = run_in(dir.path(), &["compile", "-s", "uses_packages"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let compiled = std::fs::read_to_string(
        dir.path()
            .join("target/compiled/bad/models/uses_packages.sql"),
    )
    .expect("compiled");
    assert_eq!(
        compiled.trim(),
        "select 'answer 0.2.0' as answer, 'hello' as greeting"
    );

    // A range no release meets: an error listing what there is.
    write(
        "packages.yml",
        "packages:\n  - package: acme/tiny_answers\n    version: \">=2.0.0\"\n",
    );
    let (code, stderr) = deps(dir.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("no release of acme/tiny_answers meets >=2.0.0")
            && stderr.contains("0.1.0, 0.2.0, 1.0.0"),
        "{stderr}"
    );
    // It points at the entry that asked for it.
    assert!(stderr.contains("packages.yml:2"), "{stderr}");
}

/// dbt's parse-time leniency: a node disabled by its own `config()` or by
/// the project may reference models and vars that do not exist, and the
/// generic tests declared on a disabled model go with it; `var('x', none)`
/// is none, not a missing var. Jinja2's `do … if …` and unary plus render.
#[test]
fn disabled_nodes_may_reference_what_does_not_exist() {
    let dir = one_model_project();
    let root = dir.path();
    let write = |path: &str, text: &str| write_all(root, &[(path, text)]);
    write(
        "models/off_by_config.sql",
        "{{ config(enabled=var('feature_on', false)) }}\nselect * from {{ ref('not_a_model') }} join {{ var('not_a_var') }}\n",
    );
    write(
        "models/off_by_yaml.sql",
        "select * from {{ ref('base') }}\n",
    );
    write(
        "models/schema.yml",
        "models:\n  - name: off_by_yaml\n    config:\n      enabled: false\n    columns:\n      - name: id\n        data_tests: [not_null]\n",
    );
    write(
        "models/python_habits.sql",
        "{% set parts = [] %}{% do parts.append('kept') if var('flag', none) is none %}{% do parts.append('dropped') if false %}\nselect '{{ parts | join(',') }}' as parts, {{ +1 }} as one\n",
    );
    let out = run_in(root, &["compile"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let compiled =
        std::fs::read_to_string(root.join("target/compiled/bad/models/python_habits.sql"))
            .expect("compiled");
    assert!(
        compiled.contains("select 'kept' as parts, 1 as one"),
        "{compiled}"
    );
    let manifest = std::fs::read_to_string(root.join("target/manifest.json")).expect("manifest");
    assert!(
        !manifest.contains("model.bad.off_by_config"),
        "disabled model listed"
    );
    assert!(
        !manifest.contains("not_null_off_by_yaml_id"),
        "test of a disabled model kept"
    );

    // Enabled, the same model's unknown ref is the error it always was.
    let out = run_in(root, &["compile", "--vars", "{feature_on: true}"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown model `not_a_model` in ref()")
            && out.stderr.contains("models/off_by_config.sql:2"),
        "{}",
        out.stderr
    );

    // Broken Jinja in a project config value points at its line there.
    let project = std::fs::read_to_string(root.join("dbt_project.yml")).expect("read");
    let lines = project.lines().count();
    std::fs::write(
        root.join("dbt_project.yml"),
        format!("{project}models:\n  +materialized: \"{{{{ 'view' if }}}}\"\n"),
    )
    .expect("write");
    let out = run_in(root, &["parse"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.matches("error[E0201]").count() == 1
            && out.stderr.contains("config `materialized`: ")
            && out
                .stderr
                .contains(&format!("--> dbt_project.yml:{}", lines + 2)),
        "{}",
        out.stderr
    );
}

/// Descriptions are Jinja: `{{ doc('…') }}` in a model's, a column's or a
/// source's description is the docs block's text in the manifest (and a
/// column's `data_type` renders too); a doc that does not exist is an error
/// at the YAML entry.
#[test]
fn descriptions_render_doc_blocks() {
    let dir = one_model_project();
    let root = dir.path();
    let write = |path: &str, text: &str| write_all(root, &[(path, text)]);
    write(
        "models/docs.md",
        "{% docs base_doc %}\nOne row per **thing**.\n{% enddocs %}\n\n{% docs id_doc %}The key.{% enddocs %}\n",
    );
    write(
        "models/schema.yml",
        "sources:\n  - name: raw\n    description: 'Raw: {{ doc(\"id_doc\") }}'\n    tables:\n      - name: things\n        description: '{{ doc(\"base_doc\") }}'\n\
         models:\n  - name: base\n    description: '{{ doc(\"base_doc\") }}'\n    columns:\n      - name: id\n        description: \"{{ doc('bad', 'id_doc') }} Never null.\"\n        data_type: \"{{ 'UInt8' if target.type == 'clickhouse' else 'integer' }}\"\n",
    );
    let out = run_in(root, &["parse"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("target/manifest.json")).expect("manifest"),
    )
    .expect("json");
    let base = &manifest["nodes"]["model.bad.base"];
    assert_eq!(base["description"], "One row per **thing**.");
    assert_eq!(base["columns"]["id"]["description"], "The key. Never null.");
    assert_eq!(base["columns"]["id"]["data_type"], "integer");
    let src = &manifest["sources"]["source.bad.raw.things"];
    assert_eq!(src["description"], "One row per **thing**.");
    assert_eq!(src["source_description"], "Raw: The key.");

    write(
        "models/schema.yml",
        "models:\n  - name: base\n    description: '{{ doc(\"nope\") }}'\n",
    );
    let out = run_in(root, &["parse"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("models/schema.yml:2")
            && out.stderr.contains("doc `nope` was not found"),
        "{}",
        out.stderr
    );
}

/// Python habits of real packages (dbt_date, dbt_expectations): datetime
/// arithmetic and comparisons at compile time, `list.index`, and Jinja
/// inside a generic test's string argument, rendered as dbt renders it; the
/// root project's macros under the project's name (`bad.shout()`); dbt's
/// `builtins` (`builtins.ref(…)`, and the runtime config as
/// `builtins.ref.config`).
#[test]
fn python_datetimes_and_jinja_in_test_arguments_compile() {
    let dir = one_model_project();
    let root = dir.path();
    write_all(
        root,
        &[
            (
                "models/dated.sql",
                "{% set end = modules.datetime.datetime(2024, 3, 1).replace(hour=6) %}\n\
                 {% set start = end - modules.datetime.timedelta(days=1, hours=6) %}\n\
                 select '{{ start }}' as start_at, '{{ (end - modules.datetime.timedelta(hours=1)).hour }}' as hour,\n\
                 '{{ start < end }}' as ordered, {{ ['a', 'b', 'c'].index('c') }} as idx,\n\
                 '{{ modules.pytz.timezone(\"UTC\").localize(modules.datetime.datetime.strptime(\"2024-05-06\", \"%Y-%m-%d\")).isoformat() }}' as iso,\n\
                 '{{ bad.shout('root namespace') }}' as shouted,\n\
                 '{{ builtins.ref.config.project_name }}' as project, (select 1 from {{ builtins.ref('base') }}) as one,\n\
                 '{{ make_temp_relation(ref('base')).identifier }}' as temp_name, '{{ create_table_as(true, make_temp_relation(ref('base')), 'select 1') | trim }}' as ddl\n",
            ),
            (
                "models/schema.yml",
                "models:\n  - name: dated\n    data_tests:\n      - expression_holds:\n          condition: \"idx = {{ var('expected_idx', 2) }}\"\n",
            ),
            (
                "macros/shout.sql",
                "{% macro shout(x) %}{{ x | upper }}{% endmacro %}\n",
            ),
            (
                "tests/generic/expression_holds.sql",
                "{% test expression_holds(model, condition) %}select * from {{ model }} where not ({{ condition }}){% endtest %}\n",
            ),
        ],
    );
    let out = run_in(root, &["compile"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let model = std::fs::read_to_string(root.join("target/compiled/bad/models/dated.sql"))
        .expect("compiled model");
    for expected in [
        "'2024-02-29 00:00:00' as start_at",
        "'5' as hour",
        "'True' as ordered",
        "2 as idx",
        "'2024-05-06T00:00:00+00:00' as iso",
        "'ROOT NAMESPACE' as shouted",
        "'bad' as project, (select 1 from ",
    ] {
        assert!(model.contains(expected), "no {expected:?} in:\n{model}");
    }
    // dbt-duckdb's temporary relation: no schema, the time in its name.
    let stamped = |after: &str| {
        let rest = model.split(after).nth(1).unwrap_or_default();
        rest.chars().take_while(char::is_ascii_digit).count() == 20
    };
    assert!(stamped("'base__dbt_tmp"), "{model}");
    assert!(stamped("'create temporary table base__dbt_tmp"), "{model}");
    let test = std::fs::read_dir(root.join("target/compiled/bad/models/schema.yml"))
        .expect("compiled tests")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("test"))
        .collect::<String>();
    assert!(test.contains("where not (idx = 2)"), "{test}");
}

/// dbt's YAML selectors: `--selector` runs a named definition (method/value
/// with graph operators, unions with an `exclude`, another selector), the
/// `default: true` one applies when no selection is given, `--select` then
/// wins over the default, and an unknown name is an error with a
/// suggestion.
#[test]
fn yaml_selectors_choose_nodes() {
    let dir = example_project();
    let root = dir.path();
    std::fs::write(
        root.join("selectors.yml"),
        "selectors:\n  - name: marts\n    default: true\n    definition:\n      union:\n        - method: path\n          value: models/datamart\n        - exclude:\n            - hashtags_per_hour\n            - resource_type: test\n  - name: users_up\n    definition:\n      intersection:\n        - method: fqn\n          value: int_users\n          children: true\n          children_depth: 1\n        - resource_type: model\n  - name: via_other\n    definition:\n      method: selector\n      value: users_up\n  - name: users_cautious\n    definition:\n      method: fqn\n      value: int_users\n      indirect_selection: cautious\n",
    )
    .expect("write selectors");
    let listed = |args: &[&str]| -> Vec<String> {
        let out = run_in(root, args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        let mut names: Vec<String> = out.stdout.lines().map(str::to_string).collect();
        names.sort();
        names
    };
    assert_eq!(
        listed(&["ls", "--output", "name"]),
        [
            "tweets_by_language",
            "tweets_dashboard",
            "tweets_per_10_minutes"
        ]
    );
    // `via_other` is `users_up` by reference.
    for name in ["users_up", "via_other"] {
        let models = ["--resource-type", "model"];
        assert_eq!(
            listed(&[
                "ls",
                "--output",
                "name",
                "--selector",
                name,
                models[0],
                models[1]
            ]),
            ["int_tweets_with_authors", "int_users"]
        );
    }
    assert_eq!(
        listed(&[
            "ls",
            "--output",
            "name",
            "-s",
            "int_tweets",
            "--resource-type",
            "model"
        ]),
        ["int_tweets"]
    );
    // A definition's own `indirect_selection`: the relationships test
    // also reads int_tweets, so cautious selection leaves it out.
    let tests = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["ls", "--output", "name", "--resource-type", "test"];
        all.extend_from_slice(args);
        listed(&all)
    };
    eager_and_cautious_tests_of_int_users(
        &tests(&["-s", "int_users"]),
        &tests(&["--selector", "users_cautious"]),
    );
    let out = run_in(root, &["ls", "--selector", "mart"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("no selector named `mart`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `marts`"),
        "{}",
        out.stderr
    );
}

/// Flags dbt users pass in scripts: dbt-only switches are accepted (before
/// or after the command), `--target-path` moves the artifacts, and
/// `--indirect-selection` decides which tests follow a selection.
#[test]
fn dbt_flags_from_scripts_are_accepted() {
    let dir = example_project();
    let root = dir.path();
    let out = run_in(
        root,
        &[
            "--no-partial-parse",
            "--no-send-anonymous-usage-stats",
            "compile",
            "--no-version-check",
            "--log-level",
            "debug",
            "--target-path",
            "elsewhere",
            "-s",
            "int_users",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(root.join("elsewhere/manifest.json").is_file());
    assert!(root
        .join("elsewhere/compiled/twitter_analytics/models/intermediate/int_users.sql")
        .is_file());
    assert!(!root.join("target/manifest.json").exists());
    let tests_of = |mode: &str| -> Vec<String> {
        let out = run_in(
            root,
            &[
                "ls",
                "-s",
                "int_users",
                "--resource-type",
                "test",
                "--output",
                "name",
                "--indirect-selection",
                mode,
            ],
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.stdout.lines().map(str::to_string).collect()
    };
    eager_and_cautious_tests_of_int_users(&tests_of("eager"), &tests_of("cautious"));
    assert!(tests_of("empty").is_empty());
}

/// dbt 1.8's `--resource-type` / `--exclude-resource-type` narrow any
/// selection (`build --exclude-resource-type unit_test` in production);
/// an unknown type is an error.
#[test]
fn resource_type_flags_narrow_the_selection() {
    let dir = example_project();
    let root = dir.path();
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["ls", "--output", "name", "-s", "+tweets_per_10_minutes"];
        all.extend_from_slice(args);
        let out = run_in(root, &all);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        let mut names: Vec<String> = out.stdout.lines().map(str::to_string).collect();
        names.sort();
        names
    };
    let models = names(&["--resource-type", "model"]);
    assert_eq!(models, ["int_tweets", "tweets_per_10_minutes"]);
    let everything = names(&[]);
    let without_tests = names(&["--exclude-resource-type", "test", "source"]);
    assert!(everything.len() > without_tests.len() + 2, "{everything:?}");
    assert_eq!(without_tests, models);
    assert_eq!(
        names(&[
            "--resource-type",
            "model",
            "test",
            "--exclude-resource-type",
            "test"
        ]),
        models
    );
    let out = run_in(root, &["ls", "--resource-type", "modle"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("unknown resource type `modle`"),
        "{}",
        out.stderr
    );
}

/// The example project's tests selected with int_users: its relationships
/// test also reads int_tweets, so eager selection takes it and cautious
/// selection leaves it out (keeping int_users' own tests).
fn eager_and_cautious_tests_of_int_users(eager: &[String], cautious: &[String]) {
    let relationships = |tests: &[String]| tests.iter().any(|t| t.starts_with("relationships_"));
    assert!(relationships(eager), "{eager:?}");
    assert!(!relationships(cautious), "{cautious:?}");
    assert!(
        cautious.iter().any(|t| t == "unique_int_users_id"),
        "{cautious:?}"
    );
}

/// The Semantic Layer's YAML (`semantic_models:`, `metrics:`,
/// `saved_queries:`) and `groups:` parse into the manifest's sections and
/// the graph, as dbt parses them; names they cannot resolve, an undeclared
/// group and a ref to another group's private model are errors at the file.
#[test]
fn semantic_layer_resources_and_groups_parse_into_the_graph() {
    let dir = example_project();
    let root = dir.path();
    let yaml = "version: 2\n\
groups:\n  - name: analytics\n    owner: {name: Analytics, email: analytics@example.com}\n\
semantic_models:\n  - name: tweet_buckets\n    model: ref('tweets_per_10_minutes')\n    defaults: {agg_time_dimension: bucket_start}\n    entities: [{name: bucket, type: primary, expr: bucket_start}]\n    dimensions: [{name: bucket_start, type: time, type_params: {time_granularity: minute}}]\n    measures: [{name: tweet_count, agg: sum, expr: tweets}]\n\
metrics:\n  - name: tweets\n    label: Tweets\n    type: simple\n    type_params: {measure: tweet_count}\n  - name: tweets_growth\n    label: Growth\n    type: derived\n    config: {group: analytics}\n    type_params: {expr: tweets - tweets_prev, metrics: [tweets, {name: tweets, offset_window: 1 day, alias: tweets_prev}]}\n\
saved_queries:\n  - name: tweets_daily\n    query_params: {metrics: [tweets_growth], group_by: [\"TimeDimension('bucket__bucket_start', 'day')\"]}\n\
exposures:\n  - name: tweet_board\n    type: dashboard\n    owner: {name: Analytics}\n    depends_on: [\"metric('tweets')\"]\n";
    std::fs::write(root.join("models/datamart/semantic.yml"), yaml).expect("write");
    let out = run_in(root, &["parse"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("1 semantic model, 2 metrics, 1 saved query, 1 group"),
        "{}",
        out.stderr
    );
    let m = read_json(&root.join("target/manifest.json"));
    let p = "twitter_analytics";
    let parents = |id: &str| m["parent_map"][id].clone();
    assert_eq!(
        parents(&format!("semantic_model.{p}.tweet_buckets")),
        serde_json::json!([format!("model.{p}.tweets_per_10_minutes")])
    );
    assert_eq!(
        parents(&format!("metric.{p}.tweets")),
        serde_json::json!([format!("semantic_model.{p}.tweet_buckets")])
    );
    assert_eq!(
        parents(&format!("metric.{p}.tweets_growth")),
        serde_json::json!([format!("metric.{p}.tweets")])
    );
    assert_eq!(
        parents(&format!("saved_query.{p}.tweets_daily")),
        serde_json::json!([format!("metric.{p}.tweets_growth")])
    );
    assert!(parents(&format!("exposure.{p}.tweet_board"))
        .as_array()
        .is_some_and(|a| a.contains(&serde_json::json!(format!("metric.{p}.tweets")))));
    let metric = &m["metrics"][format!("metric.{p}.tweets")];
    assert_eq!(metric["type"], "simple");
    assert_eq!(metric["type_params"]["measure"], "tweet_count");
    assert_eq!(
        m["semantic_models"][format!("semantic_model.{p}.tweet_buckets")]["measures"][0]["agg"],
        "sum"
    );
    assert_eq!(
        m["groups"][format!("group.{p}.analytics")]["owner"]["email"],
        "analytics@example.com"
    );
    assert_eq!(
        m["group_map"]["analytics"],
        serde_json::json!([format!("metric.{p}.tweets_growth")])
    );
    assert!(m["nodes"]
        .as_object()
        .is_some_and(|n| n.keys().all(|k| !k.starts_with("metric."))));

    // Listed and selected like any resource; never built.
    let out = run_in(root, &["ls", "--resource-type", "metric"]);
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        [
            format!("metric:{p}.datamart.tweets"),
            format!("metric:{p}.datamart.tweets_growth")
        ],
        "{}",
        out.stderr
    );
    let out = run_in(
        root,
        &[
            "ls",
            "-s",
            "+saved_query:tweets_daily",
            "--exclude",
            "resource_type:test",
            "-o",
            "name",
        ],
    );
    let mut names: Vec<&str> = out.stdout.lines().collect();
    names.sort();
    for wanted in [
        "tweets_per_10_minutes",
        "tweet_buckets",
        "tweets",
        "tweets_growth",
        "tweets_daily",
        "int_tweets",
    ] {
        assert!(names.contains(&wanted), "{wanted} not in {names:?}");
    }
    let out = run_in(
        root,
        &[
            "ls",
            "-s",
            "tweets_per_10_minutes+",
            "--resource-type",
            "saved_query",
        ],
    );
    assert_eq!(
        out.stdout.trim(),
        format!("saved_query:{p}.datamart.tweets_daily"),
        "{}",
        out.stderr
    );

    // The docs site shows them in the lineage.
    let out = run_in(root, &["docs", "generate", "--empty-catalog"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let site = std::fs::read_to_string(root.join("target/index.html")).expect("site");
    assert!(site.contains(&format!("metric.{p}.tweets_growth")));

    // A measure nobody defines.
    std::fs::write(
        root.join("models/datamart/semantic.yml"),
        yaml.replace("{measure: tweet_count}", "{measure: tweet_cnt}"),
    )
    .expect("write");
    let out = run_in(root, &["parse"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("E0118")
            && out
                .stderr
                .contains("metric `tweets` names measure `tweet_cnt`")
            && out.stderr.contains("models/datamart/semantic.yml:")
            && out.stderr.contains("did you mean `tweet_count`?"),
        "{}",
        out.stderr
    );

    // int_users private to `analytics`: int_tweets_with_authors may not ref
    // it; a misspelt group is not declared.
    std::fs::write(root.join("models/datamart/semantic.yml"), yaml).expect("write");
    let schema_path = root.join("models/intermediate/schema.yml");
    let schema = std::fs::read_to_string(&schema_path).expect("read");
    let schema = schema
        .replace(
            "  - name: int_users\n",
            "  - name: int_users\n    access: private\n    config:\n      group: analytics\n",
        )
        .replace(
            "  - name: int_tweets\n",
            "  - name: int_tweets\n    config:\n      group: analytcs\n",
        );
    assert!(schema.contains("group: analytcs") && schema.contains("access: private"));
    std::fs::write(&schema_path, schema).expect("write");
    let out = run_in(root, &["parse"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("E0306")
            && out.stderr.contains("`int_tweets_with_authors` refers to `int_users`, which is private to group `analytics`")
            && out.stderr.contains("models/intermediate/int_tweets_with_authors.sql:"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("E0305")
            && out
                .stderr
                .contains("`int_tweets` is in group `analytcs`, which is not declared")
            && out.stderr.contains("did you mean `analytics`?"),
        "{}",
        out.stderr
    );
}

/// A model's text as dbt keeps it: `raw_code` without surrounding blank
/// lines (its checksum and line counts then match dbt's), errors still at
/// the file's own line; `deprecation_date` as dbt writes it.
#[test]
fn raw_code_is_trimmed_and_errors_keep_file_lines() {
    let dir = example_project();
    let root = dir.path();
    std::fs::write(
        root.join("models/lead_blank.sql"),
        "\n\n\nselect 1 as a\n\n",
    )
    .expect("write");
    std::fs::write(
        root.join("models/lead_blank.yml"),
        "version: 2\nmodels:\n  - name: lead_blank\n    deprecation_date: 2030-01-01\n",
    )
    .expect("write");
    let out = run_in(root, &["parse"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let m = read_json(&root.join("target/manifest.json"));
    let node = &m["nodes"]["model.twitter_analytics.lead_blank"];
    assert_eq!(node["raw_code"], "select 1 as a");
    assert_eq!(node["deprecation_date"], "2030-01-01T00:00:00+00:00");
    assert!(node["config"].get("deprecation_date").is_none());

    std::fs::write(
        root.join("models/lead_blank.sql"),
        "\n\n\nselect 1 as a,\n  {{ no_such_macro() }} as b\n",
    )
    .expect("write");
    let out = run_in(root, &["parse"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("models/lead_blank.sql:5"),
        "the error is on the file's line 5: {}",
        out.stderr
    );
}

/// A package's source YAML reads the vars scoped to its package, as every
/// Fivetran package's `schema: "{{ var('<pkg>_schema', '<pkg>') }}"` does:
/// the root project's `vars: {pkg: {…}}` decide where its raw tables are.
#[test]
fn package_sources_read_vars_scoped_to_the_package() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_all(
        root,
        &[
            (
                "dbt_project.yml",
                "name: app\nprofile: app\nvars:\n  pkg:\n    pkg_schema: raw_pkg\n    pkg_orders_identifier: orders_data\n",
            ),
            (
                "profiles.yml",
                "app:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: w.duckdb\n      schema: main\n",
            ),
            ("dbt_packages/pkg/dbt_project.yml", "name: pkg\n"),
            (
                "dbt_packages/pkg/models/src.yml",
                "version: 2\nsources:\n  - name: pkg\n    schema: \"{{ var('pkg_schema', 'pkg') }}\"\n    tables:\n      - name: orders\n        identifier: \"{{ var('pkg_orders_identifier', 'orders') }}\"\n",
            ),
        ],
    );
    let out = run_in(root, &["parse"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let m = read_json(&root.join("target/manifest.json"));
    let source = &m["sources"]["source.pkg.pkg.orders"];
    assert_eq!(source["schema"], "raw_pkg", "{source}");
    assert!(
        source["relation_name"]
            .as_str()
            .is_some_and(|r| r.ends_with("\"raw_pkg\".\"orders_data\"")),
        "{source}"
    );
}
