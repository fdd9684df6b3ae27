#![no_main]
//! `cred_report` documents.
use keyward_normalize::{Context, Format, normalize_document};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    normalize_document(Format::IamCredentialReport, data, &mut Context::default(), &mut common::Check);
});
