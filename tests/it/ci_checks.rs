//! CI model checks: `state:modified` selection against a previous manifest,
//! `--defer` to the state's relations, `retry`, static SQL checks before
//! any connection, and `source freshness`.

use std::path::Path;

use serde_json::Value;

use crate::cli::{copy_tree, repo_root, run_in};
use crate::support::pg::PgServer;

fn jaffle() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&repo_root().join("tests/fixtures/jaffle"), dir.path());
    dir
}

fn names(dir: &Path, args: &[&str]) -> Vec<String> {
    let out = run_in(dir, args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout.lines().map(str::to_string).collect()
}

fn snapshot_state(dir: &Path) -> tempfile::TempDir {
    let out = run_in(dir, &["parse"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let state = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        dir.join("target/manifest.json"),
        state.path().join("manifest.json"),
    )
    .expect("copy manifest");
    state
}

#[test]
fn state_modified_selects_exactly_the_changed_model_and_its_children() {
    let dir = jaffle();
    let state = snapshot_state(dir.path());
    let st = state.path().to_str().expect("utf8");
    let ls = |sel: &str| {
        names(
            dir.path(),
            &[
                "ls",
                "-s",
                sel,
                "--state",
                st,
                "--resource-type",
                "model",
                "-o",
                "name",
            ],
        )
    };
    assert!(ls("state:modified").is_empty(), "nothing changed yet");

    // An edit to one model's SQL.
    let f = dir.path().join("models/staging/stg_customers.sql");
    let sql = std::fs::read_to_string(&f).expect("read");
    std::fs::write(&f, format!("{sql}-- touched\n")).expect("write");
    assert_eq!(ls("state:modified"), vec!["stg_customers"]);
    assert_eq!(ls("state:modified+"), vec!["customers", "stg_customers"]);
    std::fs::write(&f, sql).expect("restore");

    // An edit to one config.
    let p = dir.path().join("models/marts/order_events.sql");
    let text = std::fs::read_to_string(&p).expect("read");
    std::fs::write(
        &p,
        text.replace(
            "on_schema_change='append_new_columns'",
            "on_schema_change='fail'",
        ),
    )
    .expect("write");
    assert_eq!(ls("state:modified.configs"), vec!["order_events"]);
    assert_eq!(
        ls("state:modified.body"),
        vec!["order_events"],
        "the config() call is in the body too"
    );
    std::fs::write(&p, text).expect("restore");

    // An edit to a macro changes the models that use it.
    let m = dir.path().join("macros/cents_to_dollars.sql");
    let macro_text = std::fs::read_to_string(&m).expect("read");
    std::fs::write(&m, macro_text.replace("100.0", "100.00")).expect("write");
    // stg_payments is ephemeral, orders inlines it: both count as modified through the macro.
    assert_eq!(ls("state:modified"), vec!["stg_payments"]);
    assert_eq!(
        ls("state:modified+"),
        vec!["customers", "orders", "stg_payments"]
    );

    // A new model is state:new.
    std::fs::write(
        dir.path().join("models/marts/brand_new.sql"),
        "select 1 as id",
    )
    .expect("write");
    assert_eq!(ls("state:new"), vec!["brand_new"]);
}

#[test]
fn defer_builds_a_child_against_the_state_parent() {
    let pg = PgServer::start();
    let env = |c: &mut std::process::Command| {
        c.env("PGHOST", &pg.host)
            .env("PGPORT", pg.port.to_string())
            .env("PGUSER", &pg.user)
            .env("PGDATABASE", &pg.dbname);
    };
    // "Production": everything built into schema `jaffle`.
    let prod = jaffle();
    let mut c = crate::cli::sluice();
    env(&mut c);
    let o = c
        .current_dir(prod.path())
        .args(["-t", "prod", "build", "-q"])
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // "Dev": a different schema, nothing built there; build only `customers`, deferring its parents.
    let dev = jaffle();
    let profiles = std::fs::read_to_string(dev.path().join("profiles.yml")).expect("profiles");
    std::fs::write(
        dev.path().join("profiles.yml"),
        profiles.replace("schema: jaffle", "schema: dev_jaffle"),
    )
    .expect("write");
    let mut c = crate::cli::sluice();
    env(&mut c);
    let o = c
        .current_dir(dev.path())
        .args(["-t", "prod", "run", "-s", "customers", "--state"])
        .arg(prod.path().join("target"))
        .arg("--defer")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let compiled = std::fs::read_to_string(
        dev.path()
            .join("target/run/jaffle/models/marts/customers.sql"),
    )
    .expect("compiled");
    assert!(
        compiled.contains("\"jaffle\".\"orders\""),
        "parents must resolve to production: {compiled}"
    );
    assert!(
        compiled.contains("\"jaffle\".\"stg_customers\""),
        "{compiled}"
    );
}

#[test]
fn retry_reruns_only_what_failed_or_was_skipped() {
    let pg = PgServer::start();
    let dir = jaffle();
    let run = |args: &[&str]| {
        let mut c = crate::cli::sluice();
        c.env("PGHOST", &pg.host)
            .env("PGPORT", pg.port.to_string())
            .env("PGUSER", &pg.user)
            .env("PGDATABASE", &pg.dbname);
        let o = c
            .current_dir(dir.path())
            .arg("-t")
            .arg("prod")
            .args(args)
            .output()
            .expect("run");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&["seed"]);
    assert_eq!(code, 0, "{stderr}");
    let good =
        std::fs::read_to_string(dir.path().join("models/staging/stg_orders.sql")).expect("read");
    std::fs::write(
        dir.path().join("models/staging/stg_orders.sql"),
        "select * from missing_table_xyz",
    )
    .expect("write");
    let (code, stderr) = run(&["run"]);
    assert_eq!(code, 1, "{stderr}");
    std::fs::write(dir.path().join("models/staging/stg_orders.sql"), good).expect("restore");
    let (code, stderr) = run(&["retry"]);
    assert_eq!(code, 0, "{stderr}");
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/run_results.json")).expect("results"),
    )
    .expect("json");
    let mut ids: Vec<String> = results["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["unique_id"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    // stg_orders failed; customers, orders and order_events were skipped below it.
    assert_eq!(
        ids,
        vec![
            "model.jaffle.customers",
            "model.jaffle.order_events",
            "model.jaffle.orders",
            "model.jaffle.stg_orders"
        ]
    );
}

#[test]
fn syntax_errors_are_caught_before_any_connection() {
    let dir = jaffle();
    std::fs::write(
        dir.path().join("models/marts/broken.sql"),
        "select order_id,\nfrom {{ ref('orders') }}\nwhere (",
    )
    .expect("write");
    // Port 1 on loopback: nothing listens, so reaching the warehouse would fail differently.
    let mut c = crate::cli::sluice();
    let o = c
        .current_dir(dir.path())
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", "1")
        .args(["-t", "prod", "build"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("SQL syntax error in model `broken`"),
        "{stderr}"
    );
    assert!(!stderr.contains("could not connect"), "{stderr}");
}

#[test]
fn source_freshness_judges_loaded_at_and_writes_sources_json() {
    let pg = PgServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(
        &repo_root().join("tests/fixtures/bad/unknown_selector"),
        dir.path(),
    );
    std::fs::write(
        dir.path().join("models/sources.yml"),
        "version: 2\nsources:\n  - name: raw\n    schema: raw\n    loaded_at_field: loaded_at\n    freshness:\n      warn_after: {count: 1, period: hour}\n      error_after: {count: 1, period: day}\n    tables:\n      - name: fresh\n      - name: stale_ish\n      - name: stale\n      - name: unchecked\n        freshness: null\n",
    )
    .expect("write");
    let profiles = format!(
        "bad:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n      host: {}\n      port: {}\n      user: {}\n      dbname: {}\n      schema: public\n",
        pg.host, pg.port, pg.user, pg.dbname
    );
    std::fs::write(dir.path().join("profiles.yml"), profiles).expect("write");
    let target = pg.target("public");
    let w = sluice::warehouse::open(&target, dir.path()).expect("open");
    let mut conn = w.connect().expect("connect");
    conn.execute(
        "create schema raw;
         create table raw.fresh as select cast(now() at time zone 'utc' as timestamp) as loaded_at;
         create table raw.stale_ish as select cast(now() at time zone 'utc' - interval '3 hours' as timestamp) as loaded_at;
         create table raw.stale as select cast(now() at time zone 'utc' - interval '3 days' as timestamp) as loaded_at;
         create table raw.unchecked as select 1 as x;",
    )
    .expect("setup");
    let out = run_in(dir.path(), &["source", "freshness"]);
    assert_eq!(
        out.code, 1,
        "an error_after breach fails the command:\n{}",
        out.stderr
    );
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("target/sources.json")).expect("sources.json"),
    )
    .expect("json");
    let status = |t: &str| {
        doc["results"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|r| r["unique_id"] == format!("source.bad.raw.{t}"))
            })
            .map(|r| r["status"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(status("fresh").as_deref(), Some("pass"));
    assert_eq!(status("stale_ish").as_deref(), Some("warn"));
    assert_eq!(status("stale").as_deref(), Some("error"));
    assert_eq!(status("unchecked"), None);
}
