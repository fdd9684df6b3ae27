#![no_main]
//! OTLP JSON traces: one export request as a JSON line, and as a whole document (the walk
//! that tolerates a document cut short, the span contexts, argument redaction).
use keyward_normalize::{Context, Format, normalize_document, normalize_line};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    normalize_line(Format::OtelTraces, data, 1, &mut Context::default(), &mut common::Check);
    normalize_document(Format::OtelTraces, data, &mut Context::default(), &mut common::Check);
});
