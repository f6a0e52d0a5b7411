//! sluice: a dbt-compatible analytics engineering tool in one binary.
//!
//! The flow: project files are loaded (`project`), rendered with minijinja
//! (`templating`), assembled into a DAG (`graph`), selected, and executed
//! against a warehouse (`warehouse`, `execute`); `artifacts` describe the
//! result. `commands` wires the pure core to the edges; `cli` only defines
//! flags.

// Diagnostics carry file, line and hints by value: boxing them buys nothing here.
#![allow(clippy::result_large_err)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod artifacts;
pub mod cli;
pub mod commands;
pub mod compile;
pub mod compiled_files;
pub mod diagnostics;
pub mod docs_site;
pub mod extract;
pub mod graph;
pub mod lake;
pub mod microbatch;
pub mod packages;
pub mod progress;
pub mod project;
pub mod sql;
pub mod stage;
pub mod state;
pub mod templating;
pub mod unit_tests;
pub mod warehouse;
