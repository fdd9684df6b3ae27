#![no_main]
//! Terraform: `.tf` (HCL), `.tf.json` and `terraform show -json` documents (the module
//! tells them apart by content).
use keyward_normalize::{Context, Format, normalize_document};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let mut ctx = Context::default().with_path("fuzz/main.tf");
    normalize_document(Format::Terraform, data, &mut ctx, &mut common::Check);
});
