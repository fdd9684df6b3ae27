#![no_main]
//! Rule files: arbitrary text loaded as a Keyward rule, a Sigma rule or a file of
//! exceptions (told apart by content, as `--rules` does; exceptions are added to the
//! built-in rules they name). Loading never panics; a file is either accepted or listed as
//! a problem naming its origin, and whatever was accepted compiles into a detector.
use std::sync::OnceLock;

use keyward_detect::{Catalog, Detector, Settings};
use libfuzzer_sys::fuzz_target;

static BUILTIN: OnceLock<Catalog> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let exceptions = text.contains("exceptions:");
    let mut catalog = if exceptions {
        BUILTIN.get_or_init(Catalog::builtin).clone()
    } else {
        Catalog::default()
    };
    catalog.add_text("fuzz.yml", text);
    for p in &catalog.problems {
        assert!(p.path == "fuzz.yml" && !p.reason.is_empty());
    }
    for r in &catalog.rules {
        assert!(!r.id.is_empty());
    }
    if exceptions {
        // Exceptions accepted compile without a panic; the built-in rules' examples are
        // not this input's.
        let _ = Detector::new(catalog, Settings::default());
        return;
    }
    // Accepted rules must compile; the examples of accepted Keyward rules must run.
    if Detector::new(catalog.clone(), Settings::default()).is_ok() {
        let _ = keyward_detect::testing::run(&catalog, None);
    }
});
