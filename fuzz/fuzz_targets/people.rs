#![no_main]
//! People directory CSV documents.
use keyward_normalize::{Context, Format, normalize_document};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    normalize_document(Format::PeopleDirectory, data, &mut Context::default(), &mut common::Check);
});
