#![no_main]
//! sonic-rs against serde_json on the same CloudTrail record: when both accept it, they
//! must produce the same event and observations.
use keyward_normalize::cloudtrail::{normalize_record, normalize_record_serde_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let (Ok(Some(a)), Ok(Some(b))) = (normalize_record(data), normalize_record_serde_json(data)) {
        assert_eq!(a.event, b.event);
        assert_eq!(a.observations, b.observations);
    }
});
