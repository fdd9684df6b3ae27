//! The `keyward` binary as the tests run it.

#![allow(clippy::unwrap_used, dead_code)]

pub mod bao;
pub mod moto;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Runs `keyward --data-dir DATA ARGS…` to its end (no standard input).
pub fn keyward(data: &Path, args: &[&str]) -> Output {
    spawn(data, args).wait_with_output().unwrap()
}

/// Starts `keyward --data-dir DATA ARGS…` with its output captured.
pub fn spawn(data: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("KEYWARD_DATA_DIR")
        .env_remove("KEYWARD_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The bundled example estate.
pub fn estate() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
