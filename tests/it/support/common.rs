//! Helpers most integration tests need: the checkout's root, process
//! output as text.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;

/// The checkout (fixtures, configs, scripts are found from here).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Process output as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A port nothing listens on right now (the OS picks it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
