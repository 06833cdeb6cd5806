//! The integration tests, built as one binary (as ripgrep does): each file
//! is a module, so the test crate and its Polars-heavy dependency graph are
//! linked once instead of once per file. Run one file's tests with
//! `cargo test --release --test it web::` (a module path is a test-name
//! filter).
//!
//! Black-box runs of the binary (`CARGO_BIN_EXE_callout`) against real SMTP
//! (`tests/smtp_sink.py`), HTTP, S3 (`tests/s3_server.py`), PostgreSQL and
//! Chromium; the shared helpers are in [`support`]. Tests run on parallel
//! threads of this one process: a test that needs the process to itself
//! (`memory`) runs its body in a child process of this binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "a failed assumption in a test is a failed test"
)]

mod support;

mod analyst_exports;
mod bad_inputs;
mod chat;
mod cli;
mod daemon;
mod dockerfile;
mod docs;
mod email;
mod explained;
mod incremental;
mod init;
mod layers;
mod markup;
mod memory;
mod quickstart;
mod replay;
mod report;
mod rollups;
mod s3;
mod sql;
mod tls;
mod web;
mod week;
