//! Shared helpers for the integration test binary (`tests/it`).
//!
//! Each submodule owns one kind of test fixture; test modules import what they
//! need, e.g. `use crate::support::pg::PgServer;`.

// Helpers are shared by many test modules; not every one uses every helper.
#![allow(dead_code)]

pub mod pg;
pub mod s3_server;
pub mod x_server;
