#![no_main]
//! Rule files: arbitrary text loaded as a Keyward rule or a Sigma rule (told apart by
//! content, as `--rules` does). Loading never panics; a file is either accepted or listed
//! as a problem naming its origin, and whatever was accepted compiles into a detector.
use keyward_detect::{Catalog, Detector, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut catalog = Catalog::default();
    catalog.add_text("fuzz.yml", text);
    for p in &catalog.problems {
        assert!(p.path == "fuzz.yml" && !p.reason.is_empty());
    }
    for r in &catalog.rules {
        assert!(!r.id.is_empty());
    }
    // Accepted rules must compile; the examples of accepted Keyward rules must run.
    if Detector::new(catalog.clone(), Settings::default()).is_ok() {
        let _ = keyward_detect::testing::run(&catalog, None);
    }
});
