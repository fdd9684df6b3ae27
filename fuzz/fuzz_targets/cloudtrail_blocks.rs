#![no_main]
//! A CloudTrail document read with its records' UTF-8 checked in small blocks (the first
//! byte picks the size, 1 to 256 bytes) must give exactly what one block gives: every
//! output and rejection, in order, with its line and record index. Small blocks cut
//! records and multi-byte characters at every position, so the retry of a cut record and
//! the back-off to a character boundary run on every input.
use keyward_normalize::cloudtrail::blocks_agree;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&size, doc)) = data.split_first() else {
        return;
    };
    if let Err(e) = blocks_agree(doc, usize::from(size) + 1) {
        panic!("{e}");
    }
});
