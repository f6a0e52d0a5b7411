//! Tests of the test harness itself: the PostgreSQL fixture in `support::pg`.

use crate::support::pg::PgServer;

/// Run an async block on a fresh runtime (for tests that also use sync APIs).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a tokio runtime")
        .block_on(future)
}

#[tokio::test]
async fn postgres_server_round_trip() {
    let server = PgServer::start();
    let client = server.connect().await;

    let version: String = client
        .query_one("select version()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        version.starts_with("PostgreSQL "),
        "unexpected version(): {version}"
    );
    let version_num: i32 = client
        .query_one("select current_setting('server_version_num')::int", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        version_num >= 150_000,
        "need PostgreSQL 15 or newer, got {version}"
    );

    if !server.is_external() {
        let row = client
            .query_one(
                "select current_setting('server_encoding'), current_setting('TimeZone'), current_user",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "UTF8");
        assert_eq!(row.get::<_, String>(1), "UTC");
        assert_eq!(row.get::<_, String>(2), server.user);
    }

    client
        .batch_execute(
            "create table harness_t (id int primary key, name text not null);
             insert into harness_t values (1, 'one'), (2, 'two'), (3, 'drei');",
        )
        .await
        .unwrap();
    let rows = client
        .query(
            "select id, name from harness_t where id >= $1 order by id",
            &[&2_i32],
        )
        .await
        .unwrap();
    let got: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got, vec![(2, "two".to_owned()), (3, "drei".to_owned())]);

    // The URL form connects to the same database.
    let (by_url, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting via {} failed: {e}", server.url()));
    tokio::spawn(connection);
    let n: i64 = by_url
        .query_one("select count(*) from harness_t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);
}

#[test]
fn two_servers_run_at_once() {
    let a = PgServer::start();
    let b = PgServer::start();
    if !a.is_external() {
        assert_ne!(
            a.port, b.port,
            "two local clusters must listen on different ports"
        );
        assert_ne!(a.socket_dir(), b.socket_dir());
    }
    assert_ne!(a.url(), b.url());

    block_on(async {
        let ca = a.connect().await;
        let cb = b.connect().await;
        ca.batch_execute("create table only_in_a (x int); insert into only_in_a values (42);")
            .await
            .unwrap();
        let x: i32 = ca
            .query_one("select x from only_in_a", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(x, 42);
        let err = cb
            .query_one("select x from only_in_a", &[])
            .await
            .expect_err("the servers must be isolated from each other");
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE),
            "{err}"
        );
    });
}

#[test]
fn fresh_database_is_empty_and_separate() {
    let server = PgServer::start();
    let name = server.fresh_database();
    assert_ne!(name, server.dbname);
    block_on(async {
        let main = server.connect().await;
        main.batch_execute("create table in_main (x int)")
            .await
            .unwrap();
        let fresh = server.connect_to(&name).await;
        let db: String = fresh
            .query_one("select current_database()", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(db, name);
        let tables: i64 = fresh
            .query_one(
                "select count(*) from information_schema.tables where table_schema = 'public'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(tables, 0, "a fresh database starts empty");
    });
}

#[test]
fn dropping_a_local_server_stops_it_and_removes_its_directory() {
    let server = PgServer::start();
    let Some(dir) = server.socket_dir().map(|d| d.to_path_buf()) else {
        return; // external server: nothing local to clean up
    };
    let port = server.port;
    assert!(dir.join("data").is_dir());
    drop(server);
    assert!(!dir.exists(), "{} should be removed on drop", dir.display());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing should listen on port {port} after drop"
    );
}
