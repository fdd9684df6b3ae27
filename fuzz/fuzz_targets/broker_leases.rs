#![no_main]
//! The credential broker's leases (`broker-leases`): one lease as a JSON line, and a
//! document of lines (each accepted or rejected alone).
use keyward_normalize::{Context, Format, normalize_document, normalize_line};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    normalize_line(Format::BrokerLeases, data, 1, &mut Context::default(), &mut common::Check);
    normalize_document(Format::BrokerLeases, data, &mut Context::default(), &mut common::Check);
});
