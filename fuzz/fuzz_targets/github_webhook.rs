#![no_main]
//! GitHub webhook deliveries: one delivery line, and a document of one or many.
use keyward_normalize::{Context, Format, normalize_document, normalize_line};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    normalize_line(Format::GithubWebhook, data, 1, &mut Context::default(), &mut common::Check);
    normalize_document(Format::GithubWebhook, data, &mut Context::default(), &mut common::Check);
});
