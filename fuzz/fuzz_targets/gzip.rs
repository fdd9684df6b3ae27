#![no_main]
//! The gzip readers: a request body within its limits, and a file kept up to its damage.
//! Never a panic, never more than the limit, and what a damaged file keeps is what a plain
//! decoder reads of the same stream (one is a prefix of the other: they read in different
//! chunks, and a decoder may hold back a chunk when it meets the damage).
use std::io::Read as _;

use keyward_sources::{BodyLimits, decompress_partial, request_body};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let limits = BodyLimits {
        max_decompressed: LIMIT,
        max_ratio: 200,
    };
    if let Ok(body) = request_body(Some("gzip"), data, limits) {
        assert!(body.len() <= LIMIT);
    }
    let (kept, damage) = decompress_partial(data.to_vec(), Vec::new(), LIMIT as u64);
    if !data.starts_with(&[0x1f, 0x8b]) {
        // Not gzip: the bytes as they are.
        assert!(damage.is_none() && kept == data);
        return;
    }
    assert!(kept.len() <= LIMIT);
    let mut plain = Vec::new();
    let read = flate2::read::MultiGzDecoder::new(data)
        .take(LIMIT as u64 + 1)
        .read_to_end(&mut plain);
    assert!(
        plain.starts_with(&kept) || kept.starts_with(&plain),
        "kept {} bytes, a plain decoder {}",
        kept.len(),
        plain.len()
    );
    if damage.is_none() {
        // Whole and within the limit: exactly the stream.
        assert!(read.is_ok());
        assert_eq!(kept, plain);
    }
});
