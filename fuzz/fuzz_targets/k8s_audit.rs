#![no_main]
//! Kubernetes audit: one event line and `EventList` documents.
use keyward_normalize::{Context, Format, normalize_document, normalize_line};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    normalize_line(Format::K8sAudit, data, 1, &mut Context::default(), &mut common::Check);
    normalize_document(Format::K8sAudit, data, &mut Context::default(), &mut common::Check);
});
