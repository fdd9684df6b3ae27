#![no_main]
//! The record splitter of CloudTrail documents against sonic-rs's array iterator: never a
//! panic, and wherever sonic-rs accepts the whole array, the same elements, byte for byte.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(start) = data.iter().position(|c| *c == b'[') else {
        return;
    };
    let array = data.get(start..).unwrap_or_default();
    let ours: Vec<Result<&[u8], &str>> = keyward_normalize::split::elements(array).collect();
    let sonic: Result<Vec<Vec<u8>>, _> = sonic_rs::to_array_iter(array)
        .map(|v| v.map(|v| v.as_raw_str().as_bytes().to_vec()))
        .collect();
    if let Ok(sonic) = sonic {
        let ours: Vec<Vec<u8>> = ours
            .into_iter()
            .map(|e| e.expect("sonic-rs split it").to_vec())
            .collect();
        assert_eq!(ours, sonic);
    }
});
