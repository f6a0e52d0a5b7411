//! sluice: a dbt-compatible analytics engineering tool in one binary.
//!
//! The flow: project files are loaded (`project`), rendered with minijinja
//! (`templating`), assembled into a DAG (`graph`), selected, and executed
//! against a warehouse (`warehouse`, `execute`); `artifacts` describe the
//! result. `commands` wires the pure core to the edges; `cli` only defines
//! flags.

pub mod artifacts;
pub mod cli;
pub mod commands;
pub mod compile;
pub mod diagnostics;
pub mod docs_site;
pub mod graph;
pub mod project;
pub mod sql;
pub mod templating;
pub mod warehouse;
