#![no_main]
//! Format detection, a body's envelope and the timestamp parsers.
use keyward_normalize::envelope::{self, Expect};
use keyward_normalize::{Layout, sniff};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name in ["x.json", "x.yaml", "x.csv", "x", "x.tf", "x.tf.json", "a/CODEOWNERS"] {
        let _ = sniff::sniff(data, name);
        let _ = sniff::layout(data, name);
    }
    // An envelope an `EventList` opens is one document, and opens as records too.
    if envelope::open(data, Expect::EventList).is_ok() {
        assert_eq!(envelope::open(data, Expect::Records), Ok(Layout::Document));
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(t) = keyward_model::time::parse(s) {
            // Whatever parses must format and parse back to the same instant.
            if (-62_135_596_800_000..253_402_300_800_000).contains(&t) {
                assert_eq!(keyward_model::time::parse(&keyward_model::time::format(t)), Some(t));
            }
        }
        let _ = keyward_normalize::cloudtrail::parse_time(s);
        let _ = keyward_model::ids::account_from_access_key(s);
    }
});
