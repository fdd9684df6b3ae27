#![no_main]
//! Bus records on arbitrary bytes (what a worker takes from a stream anyone may publish
//! to): never a panic; a payload that decodes encodes back to one that decodes to the same
//! record.
use keyward_normalize::wire::{Origin, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(rec) = decode(data) else { return };
    let origin = Origin {
        label: &rec.label,
        format: rec.format.as_str(),
        cluster: rec.cluster.as_deref().unwrap_or_default(),
    };
    let (again, _key) = encode(&origin, &rec.output).expect("a decoded record encodes");
    let back = decode(&again).expect("an encoded record decodes");
    assert_eq!(back.label, rec.label);
    assert_eq!(back.format, rec.format);
    assert_eq!(back.output.event, rec.output.event);
    assert_eq!(back.output.observations, rec.output.observations);
    assert_eq!(back.output.raw, rec.output.raw);
});
