#![no_main]
//! `CODEOWNERS` files, and the matcher: the first line is a pattern, the second a path.
use keyward_normalize::codeowners::{matches, owners_for, parse};
use keyward_normalize::{Context, Format, normalize_document};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let mut ctx = Context::default().with_path("fuzz/.github/CODEOWNERS");
    normalize_document(Format::Codeowners, data, &mut ctx, &mut common::Check);
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines();
    if let (Some(pattern), Some(path)) = (lines.next(), lines.next()) {
        let _ = matches(pattern, path);
        let (rules, _) = parse(data);
        if let Some(owners) = owners_for(&rules, path) {
            // The owners come from a rule that matches the path.
            assert!(rules.iter().any(|r| r.owners == owners && matches(&r.pattern, path)));
        }
    }
});
