#![no_main]
//! CloudTrail: one record (JSON lines) and whole documents (S3 files, lookup-events).
use keyward_normalize::{Context, Format, normalize_document, normalize_line};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    normalize_line(Format::Cloudtrail, data, 1, &mut Context::default(), &mut common::Check);
    normalize_document(Format::Cloudtrail, data, &mut Context::default(), &mut common::Check);
});
