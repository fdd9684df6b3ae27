#![no_main]
//! Claude Desktop MCP logs: the bytes as one line and as a whole log (the prefix in both
//! bracket orders, the per-server session state across lines, argument redaction).
use keyward_normalize::{Context, Format, normalize_document, normalize_line};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    normalize_line(Format::McpLog, data, 1, &mut Context::default(), &mut common::Check);
    normalize_document(Format::McpLog, data, &mut Context::default(), &mut common::Check);
});
