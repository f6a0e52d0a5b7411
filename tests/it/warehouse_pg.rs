//! The PostgreSQL warehouse (`sluice::warehouse::postgres`) against a real
//! server from `support::pg`: connecting, type conversion, COPY, cancel,
//! dropped connections, connection errors, sslmode and error positions.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sluice::warehouse::{
    self, ColumnMeta, Connection, Engine, PostgresTarget, Relation, TargetConfig, Warehouse,
    WarehouseError,
};

use crate::support::pg::PgServer;

/// A target for the test's database, plain TCP.
fn target_for(server: &PgServer) -> PostgresTarget {
    PostgresTarget {
        host: server.host.clone(),
        port: server.port,
        user: server.user.clone(),
        password: server.password.clone().unwrap_or_default(),
        dbname: server.dbname.clone(),
        schema: "sluice_test".into(),
        threads: Some(2),
        sslmode: Some("disable".into()),
        connect_timeout: Some(10),
        keepalives_idle: Some(30),
        extra: Default::default(),
    }
}

fn open(target: &PostgresTarget) -> Arc<dyn Warehouse> {
    warehouse::postgres::open(target).expect("opening the postgres warehouse")
}

fn connect(wh: &Arc<dyn Warehouse>) -> Box<dyn Connection> {
    wh.connect().expect("connecting")
}

fn scalar(conn: &mut dyn Connection, sql: &str) -> serde_json::Value {
    let result = conn.query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    result.rows[0][0].clone()
}

fn db_message(err: WarehouseError) -> String {
    match err {
        WarehouseError::Database { message } => message,
        other => panic!("expected a database error, got {other:?}"),
    }
}

fn connect_message(result: Result<Box<dyn Connection>, WarehouseError>) -> (String, String) {
    match result {
        Err(WarehouseError::Connect { target, message }) => (target, message),
        Err(other) => panic!("expected a connect error, got {other:?}"),
        Ok(_) => panic!("expected a connect error, but the connection succeeded"),
    }
}

#[test]
fn pg_connects_and_reports_version() {
    let server = PgServer::start();
    let wh = warehouse::open(&TargetConfig::Postgres(target_for(&server)), Path::new("."))
        .expect("warehouse::open dispatches to postgres");
    assert_eq!(wh.engine(), Engine::Postgres);

    let version = wh.server_version().unwrap();
    assert!(version.starts_with("PostgreSQL 1"), "{version}");
    let number = version.trim_start_matches("PostgreSQL ");
    assert!(
        number.split('.').all(|part| part.parse::<u32>().is_ok()),
        "{version}"
    );

    let mut conn = connect(&wh);
    assert_eq!(
        scalar(conn.as_mut(), "select current_setting('application_name')"),
        json!("sluice")
    );
}

#[test]
fn pg_execute_runs_batches_and_counts_rows() {
    let server = PgServer::start();
    let wh = open(&target_for(&server));
    let mut conn = connect(&wh);
    conn.execute("create schema s; create table s.t (id int, name text)")
        .unwrap();
    assert_eq!(
        conn.execute("insert into s.t select g, 'n' || g from generate_series(1, 5) g")
            .unwrap(),
        5
    );
    assert_eq!(
        conn.execute("update s.t set name = 'x' where id > 2")
            .unwrap(),
        3
    );
    // Several statements: the last one's count.
    assert_eq!(
        conn.execute("delete from s.t where id = 1; delete from s.t where id > 3")
            .unwrap(),
        2
    );
    assert_eq!(conn.execute("create table s.u (x int)").unwrap(), 0);
    assert_eq!(scalar(conn.as_mut(), "select count(*) from s.t"), json!(2));
}

#[test]
fn pg_query_converts_column_types() {
    let server = PgServer::start();
    let wh = open(&target_for(&server));
    let mut conn = connect(&wh);
    conn.execute("set timezone = 'UTC'").unwrap();
    let result = conn
        .query(
            "select 1::int2 as i2, 2::int4 as i4, 9000000000::int8 as i8, \
                    1.5::float4 as f4, 2.25::float8 as f8, 12.50::numeric(10,2) as num, \
                    123456789012345678::numeric as big, true as b, false as b2, \
                    'txt'::text as t, 'vc'::varchar(10) as vc, 'ch'::char(3) as ch, \
                    date '2024-02-29' as d, timestamp '2024-02-29 13:14:15.5' as ts, \
                    timestamptz '2024-02-29 13:14:15+02' as tstz, \
                    '{\"a\": [1, 2]}'::json as j, '{\"b\": null}'::jsonb as jb, \
                    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid as u, null::int as n, \
                    interval '1 day' as iv, array[1, 2] as arr, 'NaN'::float8 as nan",
        )
        .unwrap();
    let row: serde_json::Map<String, serde_json::Value> = result
        .columns
        .iter()
        .map(|c| c.name.clone())
        .zip(result.rows[0].iter().cloned())
        .collect();
    assert_eq!(
        serde_json::Value::Object(row),
        json!({
            "i2": 1, "i4": 2, "i8": 9_000_000_000_i64, "f4": 1.5, "f8": 2.25, "num": 12.5,
            "big": 123_456_789_012_345_678_i64, "b": true, "b2": false,
            "t": "txt", "vc": "vc", "ch": "ch ",
            "d": "2024-02-29", "ts": "2024-02-29 13:14:15.5", "tstz": "2024-02-29 11:14:15+00",
            "j": {"a": [1, 2]}, "jb": {"b": null}, "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "n": null, "iv": "1 day", "arr": "{1,2}", "nan": "NaN"
        })
    );
    let types: Vec<(&str, &str)> = result
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.data_type.as_str()))
        .collect();
    for expected in [
        ("i4", "integer"),
        ("i8", "bigint"),
        ("num", "numeric"),
        ("vc", "character varying"),
        ("ts", "timestamp without time zone"),
        ("tstz", "timestamp with time zone"),
        ("jb", "jsonb"),
        ("u", "uuid"),
    ] {
        assert!(types.contains(&expected), "{expected:?} not in {types:?}");
    }

    // An empty result still has its columns; several statements give the last result.
    let empty = conn.query("select 1 as a where false").unwrap();
    assert_eq!(empty.columns.len(), 1);
    assert!(empty.rows.is_empty());
    let last = conn
        .query("select 1 as a; select 'x' as b, 2 as c")
        .unwrap();
    assert_eq!(
        last.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["b", "c"]
    );
    assert_eq!(last.rows, vec![vec![json!("x"), json!("2")]]);
}

/// Typed rows go through binary COPY; a table with a column type binary COPY
/// is not written for here (numeric) gets the same rows as CSV instead, and
/// timestamptz columns take the UTC instant.
#[test]
fn pg_load_rows_falls_back_to_csv_for_other_column_types() {
    use sluice::warehouse::rows::Rows;
    let server = PgServer::start();
    let wh = open(&target_for(&server));
    let mut conn = connect(&wh);
    conn.execute(
        "set timezone = 'UTC'; create schema typed; \
         create table typed.mixed (id bigint, amount numeric(12,2), at timestamptz, note text)",
    )
    .unwrap();
    let relation = Relation {
        database: None,
        schema: "typed".into(),
        identifier: "mixed".into(),
    };
    let columns = sluice::warehouse::adapter::get_columns(
        conn.as_mut(),
        sluice::warehouse::Engine::Postgres,
        &relation,
    )
    .unwrap();
    let mut rows = Rows::new(4);
    for i in 0..1000 {
        rows.int(Some(i));
        rows.int(Some(i * 3));
        rows.timestamp(Some(1_795_183_407_120_000 + i));
        rows.text(if i % 2 == 0 { None } else { Some("x,\"y\"") });
    }
    assert_eq!(conn.load_rows(&relation, &columns, &rows).unwrap(), 1000);
    let got = conn
        .query(
            "select count(*), sum(amount)::text, min(at)::text, \
                    count(*) filter (where note = 'x,\"y\"') from typed.mixed",
        )
        .unwrap();
    assert_eq!(
        got.rows[0],
        vec![
            json!(1000),
            json!("1498500.00"),
            json!("2026-11-20 14:03:27.12+00"),
            json!(500)
        ]
    );
}

#[test]
fn pg_bulk_insert_loads_100k_rows() {
    let server = PgServer::start();
    let wh = open(&target_for(&server));
    let mut conn = connect(&wh);
    conn.execute(
        "create schema seeds; create table seeds.big (id integer, name text, \
         amount numeric(12,2), day date, at timestamp, flag boolean, note text)",
    )
    .unwrap();
    let columns: Vec<ColumnMeta> = [
        ("id", "integer"),
        ("name", "text"),
        ("amount", "numeric"),
        ("day", "date"),
        ("at", "timestamp"),
        ("flag", "boolean"),
        ("note", "text"),
    ]
    .iter()
    .map(|(name, data_type)| ColumnMeta {
        name: (*name).into(),
        data_type: (*data_type).into(),
    })
    .collect();
    let rows: Vec<Vec<Option<String>>> = (0..100_000)
        .map(|i| {
            let note = match i % 4 {
                0 => None,
                1 => Some(String::new()),
                2 => Some("says \"hi\", then\nleaves".to_string()),
                _ => Some("\\.".to_string()),
            };
            vec![
                Some(i.to_string()),
                Some(format!("name {i}")),
                Some(format!("{}.{:02}", i / 100, i % 100)),
                Some(format!("2024-01-{:02}", i % 28 + 1)),
                Some(format!("2024-01-01 00:00:{:02}", i % 60)),
                Some(if i % 2 == 0 { "true" } else { "false" }.to_string()),
                note,
            ]
        })
        .collect();
    let relation = Relation {
        database: Some(server.dbname.clone()),
        schema: "seeds".into(),
        identifier: "big".into(),
    };
    let started = Instant::now();
    let loaded = conn.bulk_insert(&relation, &columns, &rows).unwrap();
    eprintln!("bulk_insert of 100k rows took {:?}", started.elapsed());
    assert_eq!(loaded, 100_000);

    let summary = conn
        .query(
            "select count(*), sum(id), sum(amount), count(*) filter (where note is null), \
                    count(*) filter (where note = ''), \
                    count(*) filter (where note = 'says \"hi\", then' || chr(10) || 'leaves'), \
                    count(*) filter (where note = '\\.'), count(*) filter (where flag), \
                    min(day)::text, max(at)::text from seeds.big",
        )
        .unwrap();
    assert_eq!(
        summary.rows[0],
        vec![
            json!(100_000),
            json!(4_999_950_000_i64),
            json!(49_999_500.0),
            json!(25_000),
            json!(25_000),
            json!(25_000),
            json!(25_000),
            json!(50_000),
            json!("2024-01-01"),
            json!("2024-01-01 00:00:59"),
        ]
    );

    // Bad data fails with the server's message and where it happened.
    let bad = vec![vec![
        Some("not a number".to_string()),
        None,
        None,
        None,
        None,
        None,
        None,
    ]];
    let message = db_message(conn.bulk_insert(&relation, &columns, &bad).unwrap_err());
    assert!(
        message.contains("invalid input syntax for type integer"),
        "{message}"
    );
    assert!(message.contains("CONTEXT: COPY big, line 1"), "{message}");
    // The connection is still usable afterwards.
    assert_eq!(scalar(conn.as_mut(), "select 1"), json!(1));
}

#[test]
fn pg_cancel_all_interrupts_a_running_query() {
    let server = PgServer::start();
    let wh = open(&target_for(&server));
    let mut sleeper = connect(&wh);
    let mut watcher = connect(&wh);
    let started = Instant::now();
    let worker = std::thread::spawn(move || sleeper.execute("select pg_sleep(30)"));
    wait_until_running(watcher.as_mut(), "pg_sleep");
    wh.cancel_all();
    let outcome = worker.join().unwrap();
    assert!(
        matches!(outcome, Err(WarehouseError::Cancelled)),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Other connections are unaffected.
    assert_eq!(scalar(watcher.as_mut(), "select 1"), json!(1));
}

/// Poll `pg_stat_activity` until another session runs a query containing `needle`.
fn wait_until_running(conn: &mut dyn Connection, needle: &str) {
    let sql = format!(
        "select count(*) from pg_stat_activity where state = 'active' \
         and pid <> pg_backend_pid() and query like '%{needle}%'"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while scalar(conn, &sql) == json!(0) {
        assert!(
            Instant::now() < deadline,
            "no session started running {needle}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pg_terminated_backend_gives_a_clear_error() {
    let server = PgServer::start();
    let wh = open(&target_for(&server));
    let mut admin = connect(&wh);

    // Terminated while running a query.
    let mut busy = connect(&wh);
    let pid = scalar(busy.as_mut(), "select pg_backend_pid()");
    let started = Instant::now();
    let worker = std::thread::spawn(move || busy.execute("select pg_sleep(30)"));
    wait_until_running(admin.as_mut(), "pg_sleep");
    admin
        .execute(&format!("select pg_terminate_backend({pid})"))
        .unwrap();
    let message = db_message(worker.join().unwrap().unwrap_err());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(message.contains("lost the connection to"), "{message}");
    assert!(message.contains("terminating connection"), "{message}");

    // Terminated while idle: the next statement reports it, and so do later ones.
    let mut idle = connect(&wh);
    let pid = scalar(idle.as_mut(), "select pg_backend_pid()");
    admin
        .execute(&format!("select pg_terminate_backend({pid})"))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..2 {
        let message = db_message(idle.execute("select 1").unwrap_err());
        assert!(message.contains("lost the connection to"), "{message}");
        assert!(
            message.contains(&format!("{}:{}", server.host, server.port)),
            "{message}"
        );
    }
    // The warehouse still hands out working connections.
    assert_eq!(scalar(connect(&wh).as_mut(), "select 2"), json!(2));
}

#[test]
fn pg_wrong_password_is_a_connect_error_without_the_password() {
    let server = PgServer::start();
    if server.is_external() {
        eprintln!("skipped: needs a local cluster to change pg_hba.conf");
        return;
    }
    let wh = open(&target_for(&server));
    let mut admin = connect(&wh);
    admin
        .execute("set password_encryption = 'scram-sha-256'; create role pw_user login password 'Right-Horse-Battery'")
        .unwrap();
    require_password_for(&server, "pw_user");
    admin.execute("select pg_reload_conf()").unwrap();

    let mut target = target_for(&server);
    target.user = "pw_user".into();
    target.password = "Wrong-Staple-Secret".into();
    let wrong = open(&target);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (label, message) = loop {
        // pg_reload_conf() is asynchronous: wait until the new rule applies.
        match wrong.connect() {
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => break connect_message(other),
        }
    };
    assert_eq!(
        label,
        format!("pw_user@{}:{}/{}", server.host, server.port, server.dbname)
    );
    assert!(
        message.contains("password authentication failed"),
        "{message}"
    );
    let shown = format!(
        "{}",
        WarehouseError::Connect {
            target: label,
            message
        }
    );
    assert!(!shown.contains("Wrong-Staple-Secret"), "{shown}");

    target.password = "Right-Horse-Battery".into();
    let mut right = connect(&open(&target));
    assert_eq!(
        scalar(right.as_mut(), "select current_user"),
        json!("pw_user")
    );
}

/// Prepend a `scram-sha-256` rule for `user` to the local cluster's pg_hba.conf.
fn require_password_for(server: &PgServer, user: &str) {
    let hba = server
        .socket_dir()
        .expect("local cluster")
        .join("data/pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    let rule = format!("host all {user} 127.0.0.1/32 scram-sha-256\n");
    std::fs::write(&hba, rule + &old).unwrap();
}

#[test]
fn pg_unreachable_port_is_a_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let target = PostgresTarget {
        host: "127.0.0.1".into(),
        port,
        user: "nobody".into(),
        password: "Hidden-Password-1".into(),
        dbname: "nowhere".into(),
        schema: "s".into(),
        threads: None,
        sslmode: None,
        connect_timeout: Some(5),
        keepalives_idle: None,
        extra: Default::default(),
    };
    let started = Instant::now();
    let err = open(&target).connect().err().expect("connect must fail");
    assert!(started.elapsed() < Duration::from_secs(6));
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!(
            "could not connect to nobody@127.0.0.1:{port}/nowhere: "
        )),
        "{shown}"
    );
    assert!(shown.contains("refused"), "{shown}");
    assert!(!shown.contains("Hidden-Password-1"), "{shown}");
    assert!(!format!("{err:?}").contains("Hidden-Password-1"));
}

#[test]
fn pg_silent_server_times_out() {
    // Accepts TCP connections (the kernel does, from the backlog) but never
    // answers the startup message: connect_timeout must bound the whole attempt.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = PostgresTarget {
        host: "127.0.0.1".into(),
        port,
        user: "nobody".into(),
        password: String::new(),
        dbname: "nowhere".into(),
        schema: "s".into(),
        threads: None,
        sslmode: Some("disable".into()),
        connect_timeout: Some(1),
        keepalives_idle: None,
        extra: Default::default(),
    };
    let started = Instant::now();
    let (_, message) = connect_message(open(&target).connect());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(message.contains("timed out after 1s"), "{message}");
    drop(listener);
}

#[test]
fn pg_sslmodes_against_a_plain_server() {
    let server = PgServer::start();
    let mut target = target_for(&server);

    for mode in ["disable", "prefer"] {
        target.sslmode = Some(mode.into());
        let mut conn = connect(&open(&target));
        assert_eq!(
            scalar(conn.as_mut(), "select 1"),
            json!(1),
            "sslmode={mode}"
        );
    }

    target.sslmode = Some("require".into());
    let (_, message) = connect_message(open(&target).connect());
    assert!(
        message.contains("does not accept SSL/TLS connections, but sslmode is `require`"),
        "{message}"
    );

    target.sslmode = Some("sometimes".into());
    let err = warehouse::postgres::open(&target)
        .err()
        .expect("bad sslmode");
    assert!(
        err.to_string().contains("invalid sslmode `sometimes`"),
        "{err}"
    );
}

#[test]
fn pg_sslmodes_against_a_tls_server() {
    let server = PgServer::start();
    if server.is_external() {
        eprintln!("skipped: needs a local cluster to enable TLS");
        return;
    }
    let data = server.socket_dir().expect("local cluster").join("data");
    let ca = make_certificates(&data);
    let mut target = target_for(&server);
    let mut admin = connect(&open(&target));
    admin.execute("alter system set ssl = on").unwrap();
    admin.execute("select pg_reload_conf()").unwrap();
    // Let the reload land, then check the server really speaks TLS.
    target.sslmode = Some("require".into());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut conn = loop {
        match open(&target).connect() {
            Ok(conn) => break conn,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("TLS never came up: {e}\n{}", server.server_log()),
        }
    };
    let ssl_in_use = "select ssl from pg_stat_ssl where pid = pg_backend_pid()";
    assert_eq!(scalar(conn.as_mut(), ssl_in_use), json!(true));

    target.sslmode = Some("prefer".into());
    assert_eq!(
        scalar(connect(&open(&target)).as_mut(), ssl_in_use),
        json!(true)
    );
    target.sslmode = Some("disable".into());
    assert_eq!(
        scalar(connect(&open(&target)).as_mut(), ssl_in_use),
        json!(false)
    );

    // Checked modes: our CA verifies; the public roots do not know it.
    target
        .extra
        .insert("sslrootcert".into(), json!(ca.display().to_string()));
    for mode in ["verify-ca", "verify-full"] {
        target.sslmode = Some(mode.into());
        assert_eq!(
            scalar(connect(&open(&target)).as_mut(), ssl_in_use),
            json!(true),
            "sslmode={mode}"
        );
    }
    target.extra.clear();
    target.sslmode = Some("verify-full".into());
    let (_, message) = connect_message(open(&target).connect());
    assert!(message.contains("TLS"), "{message}");
    assert!(message.to_lowercase().contains("certificate"), "{message}");

    // cancel_all works over TLS too.
    target.sslmode = Some("require".into());
    let wh = open(&target);
    let mut sleeper = connect(&wh);
    let worker = std::thread::spawn(move || sleeper.execute("select pg_sleep(30)"));
    wait_until_running(admin.as_mut(), "pg_sleep");
    wh.cancel_all();
    assert!(matches!(
        worker.join().unwrap(),
        Err(WarehouseError::Cancelled)
    ));
}

/// A CA and a server certificate for 127.0.0.1 in `data` (as the server's
/// `server.crt`/`server.key`); returns the CA certificate's path.
fn make_certificates(data: &Path) -> std::path::PathBuf {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(data)
            .output()
            .expect("the TLS test needs the `openssl` command");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=sluice test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        data.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
    for file in ["server.key", "server.crt"] {
        let path = data.join(file);
        let status = Command::new("chmod")
            .arg("600")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        // As root, the server runs as `postgres` and must own its key.
        if Command::new("id").arg("-u").output().unwrap().stdout == b"0\n" {
            let status = Command::new("chown")
                .arg("postgres:")
                .arg(&path)
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
    data.join("ca.crt")
}

#[test]
fn pg_errors_point_into_the_sql() {
    let server = PgServer::start();
    let wh = open(&target_for(&server));
    let mut conn = connect(&wh);

    let sql = "select 1;\nselect *\n  from missing_table";
    let message = db_message(conn.execute(sql).unwrap_err());
    assert!(
        message.starts_with(
            "relation \"missing_table\" does not exist (SQLSTATE 42P01) at line 3, column 8"
        ),
        "{message}"
    );
    assert!(
        message.contains("\n  LINE 3:   from missing_table\n                 ^"),
        "{message}"
    );

    // query() reports the same position (from the prepare step).
    let message = db_message(conn.query(sql).unwrap_err());
    assert!(message.contains("at line 3, column 8"), "{message}");

    let message = db_message(conn.query("select 1 +").unwrap_err());
    assert!(
        message.contains("syntax error at end of input"),
        "{message}"
    );
    assert!(message.contains("at line 1, column 11"), "{message}");

    let message = db_message(conn.query("select\n  nosuch_fn(1)").unwrap_err());
    assert!(message.contains("at line 2, column 3"), "{message}");
    assert!(
        message.contains("\n  HINT: No function matches"),
        "{message}"
    );

    conn.execute("create table t (id int primary key); insert into t values (1)")
        .unwrap();
    let message = db_message(conn.execute("insert into t values (1)").unwrap_err());
    assert!(message.contains("SQLSTATE 23505"), "{message}");
    assert!(
        message.contains("\n  DETAIL: Key (id)=(1) already exists."),
        "{message}"
    );

    // statement_timeout is an error, not a cancel by us.
    conn.execute("set statement_timeout = '50ms'").unwrap();
    let message = db_message(conn.execute("select pg_sleep(1)").unwrap_err());
    assert!(message.contains("statement timeout"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_sync_api_works_inside_a_tokio_runtime() {
    let server = PgServer::start();
    let wh = open(&target_for(&server));
    let mut conn = connect(&wh);
    assert_eq!(scalar(conn.as_mut(), "select 40 + 2"), json!(42));
    drop(conn);
    drop(wh);
}

// ---------------------------------------------------------------------------
// The engine-neutral cases of `warehouse_cases`, against PostgreSQL.

mod cases {
    //! Each case on its own server (clusters are cheap copies of a template).

    use super::{open, target_for};
    use crate::support::pg::PgServer;
    use crate::warehouse_cases as cases;

    const SCHEMA: &str = "analytics";

    macro_rules! pg_cases {
        ($($name:ident $(($($arg:expr),*))?;)*) => {
            $(
                #[test]
                fn $name() {
                    let server = PgServer::start();
                    let wh = open(&target_for(&server));
                    cases::$name(&*wh, SCHEMA $($(, $arg)*)?);
                }
            )*
        };
    }

    pg_cases! {
        adapter_catalog_operations;
        view_materialization;
        table_materialization;
        failed_table_rebuild_keeps_old_rows;
        view_downstream_of_rebuilt_table_still_answers;
        ephemeral_builds_nothing;
        hooks_run_in_order_inside_the_build;
        incremental_first_run_then_append;
        incremental_predicates_narrow_the_replaced_rows;
        schema_change_ignore;
        schema_change_fail;
        schema_change_append_new_columns;
        schema_change_sync_all_columns;
        seed_infers_types;
        seed_reads_csv_edge_cases_like_the_checker;
        load_rows_keeps_types;
        seed_column_types_override;
        seed_reload_replaces_rows;
        seed_ragged_row_reports_line_and_keeps_table;
        seed_bad_override_value_reports_line_and_keeps_table;
    }

    mod upsert {
        //! Overlapping incremental runs under each keyed strategy.
        use super::*;

        fn run(strategy: Option<&str>, composite: bool) {
            let server = PgServer::start();
            let wh = open(&target_for(&server));
            cases::incremental_upsert_has_no_duplicates(&*wh, SCHEMA, strategy, composite);
        }

        #[test]
        fn merge_single_key() {
            run(Some("merge"), false);
        }
        #[test]
        fn merge_composite_key() {
            run(Some("merge"), true);
        }
        #[test]
        fn delete_insert_single_key() {
            run(Some("delete+insert"), false);
        }
        #[test]
        fn delete_insert_composite_key() {
            run(Some("delete+insert"), true);
        }
        #[test]
        fn default_strategy_with_unique_key() {
            run(None, true);
        }
    }

    #[test]
    fn cancel_all_interrupts_long_query() {
        let server = PgServer::start();
        let wh = open(&target_for(&server));
        cases::cancel_all_interrupts_long_query(&*wh, "SELECT pg_sleep(60) AS slept");
    }
}

// ---------------------------------------------------------------------------
// Throughput, run by hand:
// cargo test --release --no-default-features --test it pg_bulk_insert_1m -- --ignored --nocapture

#[test]
#[ignore = "benchmark: 1M rows through bulk_insert, binary COPY and psql \\copy"]
fn pg_bulk_insert_1m_rows_throughput() {
    const ROWS: usize = 1_000_000;
    const TABLE: &str = "(id integer, name text, amount double precision, day date, \
                         at timestamp, flag boolean, note text)";
    let server = PgServer::start();
    let wh = open(&target_for(&server));
    let mut conn = connect(&wh);
    for t in ["via_sluice", "via_binary", "via_psql"] {
        conn.execute(&format!("create unlogged table public.{t} {TABLE}"))
            .unwrap();
    }
    let rows: Vec<Vec<Option<String>>> = (0..ROWS)
        .map(|i| {
            vec![
                Some(i.to_string()),
                Some(format!("customer number {i}")),
                Some(format!("{}.{:02}", i / 100, i % 100)),
                Some(format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1)),
                Some(format!(
                    "2024-01-01 {:02}:{:02}:{:02}",
                    i % 24,
                    i % 60,
                    i % 60
                )),
                Some(if i % 2 == 0 { "true" } else { "false" }.to_string()),
                (i % 3 != 0).then(|| format!("note, \"quoted\" {i}")),
            ]
        })
        .collect();
    let columns: Vec<ColumnMeta> = ["id", "name", "amount", "day", "at", "flag", "note"]
        .iter()
        .map(|name| ColumnMeta {
            name: (*name).into(),
            data_type: String::new(),
        })
        .collect();
    let rel = |identifier: &str| Relation {
        database: None,
        schema: "public".into(),
        identifier: identifier.into(),
    };

    let sluice = {
        let started = Instant::now();
        conn.bulk_insert(&rel("via_sluice"), &columns, &rows)
            .unwrap();
        started.elapsed()
    };
    let binary = binary_copy(&server, &rows);
    let psql = psql_copy(&server, &rows);
    for t in ["via_sluice", "via_binary", "via_psql"] {
        assert_eq!(
            scalar(conn.as_mut(), &format!("select count(*) from {t}")),
            json!(ROWS)
        );
    }
    let rate = |d: Duration| ROWS as f64 / d.as_secs_f64();
    eprintln!(
        "1M rows: sluice bulk_insert (CSV COPY) {sluice:?} = {:.0} rows/s; \
         binary COPY (text parsed client-side) {binary:?} = {:.0} rows/s; \
         psql \\copy (CSV) {psql:?} = {:.0} rows/s; sluice/psql = {:.0}%",
        rate(sluice),
        rate(binary),
        rate(psql),
        100.0 * psql.as_secs_f64() / sluice.as_secs_f64()
    );
}

/// The alternative design: parse the text in Rust and send binary COPY.
fn binary_copy(server: &PgServer, rows: &[Vec<Option<String>>]) -> Duration {
    use tokio_postgres::binary_copy::BinaryCopyInWriter;
    use tokio_postgres::types::{ToSql, Type};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = server.connect().await;
        let started = Instant::now();
        let sink = client
            .copy_in("COPY public.via_binary FROM STDIN (FORMAT binary)")
            .await
            .unwrap();
        let types = [
            Type::INT4,
            Type::TEXT,
            Type::FLOAT8,
            Type::DATE,
            Type::TIMESTAMP,
            Type::BOOL,
            Type::TEXT,
        ];
        let writer = BinaryCopyInWriter::new(sink, &types);
        let mut writer = std::pin::pin!(writer);
        for row in rows {
            let text = |i: usize| row[i].as_deref().unwrap_or_default();
            let id: i32 = text(0).parse().unwrap();
            let amount: f64 = text(2).parse().unwrap();
            let day = chrono::NaiveDate::parse_from_str(text(3), "%Y-%m-%d").unwrap();
            let at = chrono::NaiveDateTime::parse_from_str(text(4), "%Y-%m-%d %H:%M:%S").unwrap();
            let flag = text(5) == "true";
            let values: [&(dyn ToSql + Sync); 7] =
                [&id, &row[1], &amount, &day, &at, &flag, &row[6]];
            writer.as_mut().write(&values).await.unwrap();
        }
        writer.as_mut().finish().await.unwrap();
        started.elapsed()
    })
}

/// `psql \copy` of the same rows written as CSV (file writing not timed).
fn psql_copy(server: &PgServer, rows: &[Vec<Option<String>>]) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.csv");
    let mut out = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Necessary)
        .from_path(&path)
        .unwrap();
    for row in rows {
        // `csv` writes None and "" alike; none of these rows has "".
        out.write_record(row.iter().map(|v| v.as_deref().unwrap_or_default()))
            .unwrap();
    }
    out.flush().unwrap();
    drop(out);
    let started = Instant::now();
    let status = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", &server.host, "-p", &server.port.to_string()])
        .args(["-U", &server.user, "-d", &server.dbname])
        .arg("-c")
        .arg(format!(
            "\\copy public.via_psql from '{}' (format csv)",
            path.display()
        ))
        .status()
        .expect("the benchmark needs psql");
    assert!(status.success());
    started.elapsed()
}
