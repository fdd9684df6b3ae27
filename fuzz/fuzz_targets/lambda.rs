#![no_main]
//! `aws lambda list-functions` and `get-function-configuration` documents.
use keyward_normalize::{Context, Format, normalize_document};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    normalize_document(Format::LambdaFunctions, data, &mut Context::default(), &mut common::Check);
});
