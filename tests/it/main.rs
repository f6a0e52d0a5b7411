//! The single integration test binary (`autotests = false`), so DuckDB links once.
//! Add test modules below; shared fixtures live in `support`.

mod support;

mod ci_checks;
mod cli;
mod data_tests;
mod harness;
mod run;

mod docs_browser;
mod extract;

#[cfg(feature = "duckdb")]
mod warehouse;
/// Engine-neutral warehouse cases, shared by the DuckDB and PostgreSQL tests
/// (an engine's test module may not call every case).
#[allow(dead_code)]
mod warehouse_cases;
mod warehouse_pg;
