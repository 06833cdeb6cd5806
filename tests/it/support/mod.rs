//! Helpers shared by the integration tests: the checkout's root and process
//! output (`common`), the SMTP sink (`sink`), a throwaway PostgreSQL
//! (`pg`), a small HTML parser (`html`), Rust source as tests read it
//! (`rust_source`), and the labelled benches of the
//! detection-quality guards (`bench`, `bench_ops`).

pub mod bench;
pub mod bench_ops;
pub mod common;
pub mod html;
pub mod pg;
pub mod rust_source;
pub mod sink;
pub mod webhook;
