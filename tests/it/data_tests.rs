//! Data tests on a real warehouse: each generic test passing and failing,
//! `severity: warn`, `store_failures`, `where`, custom generic tests and
//! singular tests.

use serde_json::Value;

use crate::cli::{copy_tree, repo_root};
use crate::support::pg::PgServer;

struct Project {
    dir: tempfile::TempDir,
    /// `None`: the project runs on an embedded DuckDB file.
    pg: Option<PgServer>,
}

#[derive(Clone, Copy)]
enum On {
    Postgres,
    #[cfg_attr(not(feature = "duckdb"), allow(dead_code))]
    DuckDb,
}

impl Project {
    fn new(models: &[(&str, &str)]) -> Project {
        Project::on(On::Postgres, models)
    }

    fn on(engine: On, models: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_tree(
            &repo_root().join("tests/fixtures/bad/unknown_selector"),
            dir.path(),
        );
        let pg = match engine {
            On::Postgres => Some(PgServer::start()),
            On::DuckDb => None,
        };
        let profiles = match &pg {
            Some(pg) => format!(
                "bad:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n      host: {}\n      port: {}\n      user: {}\n      dbname: {}\n      schema: s\n      threads: 2\n",
                pg.host, pg.port, pg.user, pg.dbname
            ),
            None => "bad:\n  target: duck\n  outputs:\n    duck:\n      type: duckdb\n      path: warehouse.duckdb\n      schema: s\n      threads: 2\n"
                .to_string(),
        };
        std::fs::write(dir.path().join("profiles.yml"), profiles).expect("write");
        for (path, text) in models {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        Project { dir, pg }
    }

    fn run(&self, args: &[&str]) -> (i32, String) {
        let o = crate::cli::sluice()
            .current_dir(self.dir.path())
            .args(args)
            .output()
            .expect("run");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn statuses(&self) -> Vec<(String, String)> {
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(self.dir.path().join("target/run_results.json"))
                .expect("results"),
        )
        .expect("json");
        let mut out: Vec<(String, String)> = v["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let id = r["unique_id"].as_str().unwrap_or_default();
                let name = id.split('.').nth(2).unwrap_or(id).to_string();
                (name, r["status"].as_str().unwrap_or_default().to_string())
            })
            .collect();
        out.sort();
        out
    }
}

const PEOPLE: &str = "select 1 as id, 'a' as kind, 10 as parent_id union all select 2, 'b', 20 union all select 2, 'z', 30 union all select null, 'a', null";
const PARENTS: &str = "select 10 as id union all select 20";

#[test]
fn generic_tests_pass_and_fail_with_dbt_semantics() {
    generic_tests_on(On::Postgres);
}

#[cfg(feature = "duckdb")]
#[test]
fn generic_tests_pass_and_fail_with_dbt_semantics_on_duckdb() {
    generic_tests_on(On::DuckDb);
}

fn generic_tests_on(engine: On) {
    let p = Project::on(engine, &[
        ("models/people.sql", PEOPLE),
        ("models/parents.sql", PARENTS),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: people\n    columns:\n      - name: id\n        data_tests: [unique, not_null]\n      - name: kind\n        data_tests:\n          - accepted_values:\n              arguments:\n                values: [a, b]\n          - accepted_values:\n              name: kind_allows_z\n              values: [a, b, z]\n      - name: parent_id\n        data_tests:\n          - relationships:\n              to: ref('parents')\n              field: id\n          - not_null:\n              config:\n                severity: warn\n          - not_null:\n              name: parent_set_for_kind_b\n              config:\n                where: \"kind = 'b'\"\n  - name: parents\n    columns:\n      - name: id\n        data_tests: [unique, not_null]\n",
        ),
    ]);
    let (code, stderr) = p.run(&["build"]);
    assert_eq!(code, 1, "{stderr}");
    let s = p.statuses();
    let get = |name: &str| {
        s.iter()
            .find(|(n, _)| n == name)
            .map(|(_, st)| st.as_str())
            .unwrap_or("missing")
    };
    assert_eq!(get("unique_people_id"), "fail", "{s:?}");
    assert_eq!(get("not_null_people_id"), "fail");
    assert_eq!(get("accepted_values_people_kind__a__b"), "fail");
    assert_eq!(get("kind_allows_z"), "pass");
    assert_eq!(
        get("relationships_people_parent_id__id__ref_parents_"),
        "fail"
    );
    // The null parent_id fails not_null, but only as a warning.
    assert_eq!(get("not_null_people_parent_id"), "warn");
    // `where` filters the model first: no kind-b row lacks a parent.
    assert_eq!(get("parent_set_for_kind_b"), "pass");
    assert_eq!(get("unique_parents_id"), "pass");
    assert!(stderr.contains("WARN=1"), "{stderr}");
}

#[test]
fn severity_warn_does_not_fail_the_build_and_store_failures_keeps_rows() {
    store_failures_on(On::Postgres);
}

#[cfg(feature = "duckdb")]
#[test]
fn severity_warn_and_store_failures_on_duckdb() {
    store_failures_on(On::DuckDb);
}

fn store_failures_on(engine: On) {
    let p = Project::on(engine, &[
        ("models/people.sql", PEOPLE),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: people\n    columns:\n      - name: id\n        data_tests:\n          - unique:\n              config:\n                severity: warn\n                store_failures: true\n      - name: kind\n        data_tests:\n          - accepted_values:\n              values: ['a_rather_long_accepted_value_one', 'another_rather_long_value_two']\n              config:\n                severity: warn\n                store_failures: true\n",
        ),
    ]);
    let (code, stderr) = p.run(&["build"]);
    assert_eq!(code, 0, "{stderr}");
    // A test whose full name is 64 characters or longer keeps its rows
    // under its short, hashed alias (as dbt; PostgreSQL cuts names at 63).
    let stored = stderr
        .split("failing rows stored in s_dbt_test__audit.")
        .skip(1)
        .map(|rest| rest.split_whitespace().next().unwrap_or(""))
        .find(|t| t.starts_with("accepted_values_people_"))
        .unwrap_or_else(|| panic!("no stored accepted_values failures: {stderr}"));
    // `<test>_<model>` (at most 30 characters), `_`, the full name's md5.
    assert_eq!(
        stored.len(),
        "accepted_values_people_".len() + 32,
        "{stored}"
    );
    assert!(
        stderr.contains("accepted_values_people_kind__a_rather_long_accepted_value_one__another_rather_long_value_two"),
        "the full name is the test's name: {stderr}"
    );
    assert!(
        stderr.contains("failing rows stored in s_dbt_test__audit.unique_people_id"),
        "{stderr}"
    );
    let target: sluice::warehouse::TargetConfig = match &p.pg {
        Some(pg) => pg.target("s"),
        None => serde_json::from_value(
            serde_json::json!({"type": "duckdb", "path": "warehouse.duckdb", "schema": "s"}),
        )
        .expect("duckdb target"),
    };
    let w = sluice::warehouse::open(&target, p.dir.path()).expect("open");
    let rows = w
        .connect()
        .expect("connect")
        .query("select unique_field, n_records from s_dbt_test__audit.unique_people_id")
        .expect("audit table")
        .rows;
    assert_eq!(rows, vec![vec![Value::from(2), Value::from(2)]]);
}

#[test]
fn custom_generic_and_singular_tests_run_and_fail_when_rows_return() {
    let p = Project::new(&[
        ("models/people.sql", PEOPLE),
        ("tests/generic/is_small.sql", "{% test is_small(model, column_name, limit_value=25) %}\nselect * from {{ model }} where {{ column_name }} > {{ limit_value }}\n{% endtest %}\n"),
        ("tests/no_z_kind.sql", "select * from {{ ref('people') }} where kind = 'z'"),
        // `limit` caps the failing rows even after a trailing `--` comment.
        (
            "tests/limited.sql",
            "{{ config(limit=1) }}\nselect * from {{ ref('people') }} -- every row fails",
        ),
        (
            "models/schema.yml",
            "version: 2\nmodels:\n  - name: people\n    columns:\n      - name: parent_id\n        data_tests:\n          - is_small\n          - is_small:\n              limit_value: 100\n",
        ),
    ]);
    let (code, stderr) = p.run(&["test"]);
    // Tests need the model: run it first, then test.
    assert_eq!(code, 1, "{stderr}");
    let (code, stderr) = p.run(&["run"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = p.run(&["test"]);
    assert_eq!(code, 1, "{stderr}");
    let s = p.statuses();
    let get = |name: &str| {
        s.iter()
            .find(|(n, _)| n == name)
            .map(|(_, st)| st.as_str())
            .unwrap_or("missing")
    };
    assert_eq!(get("is_small_people_parent_id"), "fail", "{s:?}");
    assert_eq!(get("is_small_people_parent_id__100"), "pass", "{s:?}");
    assert_eq!(get("no_z_kind"), "fail", "{s:?}");
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(p.dir.path().join("target/run_results.json")).expect("results"),
    )
    .expect("json");
    let limited = results["results"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| {
            r["unique_id"]
                .as_str()
                .is_some_and(|id| id.contains(".limited"))
        })
        .expect("limited test");
    assert_eq!(limited["failures"], 1, "{limited}");
    // Selecting a model selects its tests; test_type narrows to singular ones.
    let (code, _) = p.run(&["test", "-s", "test_type:singular"]);
    assert_eq!(code, 1);
    assert_eq!(
        p.statuses(),
        vec![
            ("limited".to_string(), "fail".to_string()),
            ("no_z_kind".to_string(), "fail".to_string())
        ]
    );
}
