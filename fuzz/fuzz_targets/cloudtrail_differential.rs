#![no_main]
//! Two differentials on the same CloudTrail record:
//! - sonic-rs against serde_json: when both accept it, they must produce the same event and
//!   observations;
//! - our single-pass fast path against the serde path: where the fast path decides, it must
//!   read exactly what serde reads, and never accept what serde rejects.
use keyward_normalize::cloudtrail::{fast_path_agrees, normalize_record, normalize_record_serde_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = fast_path_agrees(data) {
        panic!("{e}");
    }
    if let (Ok(Some(a)), Ok(Some(b))) = (normalize_record(data), normalize_record_serde_json(data)) {
        assert_eq!(a.event, b.event);
        assert_eq!(a.observations, b.observations);
    }
});
