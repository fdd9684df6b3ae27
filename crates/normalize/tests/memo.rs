//! The caller memo is an optimisation only: an inventory built through it must equal one
//! built by normalizing every record in full.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Read;
use std::path::{Path, PathBuf};

use keyward_graph::Inventory;
use keyward_model::Diagnostic;
use keyward_normalize::{Context, Format, Output, Sink, cloudtrail, normalize_document};

struct Apply<'a>(&'a mut Inventory, usize);

impl Sink for Apply<'_> {
    fn accept(&mut self, out: Output<'_>) {
        let at = out.event.as_ref().map(|e| e.time).unwrap_or_default();
        if let Some(t) = &out.active {
            self.1 += 1;
            for id in &t.ids {
                self.0.touch(id, at, true);
            }
            for (owner, cred, place) in &t.credentials {
                let region = out
                    .event
                    .as_ref()
                    .and_then(|e| e.region.as_deref())
                    .filter(|_| *place);
                let service = out
                    .event
                    .as_ref()
                    .and_then(|e| e.action.split_once(':'))
                    .map(|(s, _)| s.trim_end_matches(".amazonaws.com"))
                    .filter(|_| *place);
                let owner = self.0.slot(owner).unwrap();
                self.0.touch_credential(owner, cred, at, region, service);
            }
        }
        for o in out.observations {
            self.0.apply(o, true);
        }
    }
    fn reject(&mut self, d: Diagnostic) {
        panic!("{d:?}");
    }
}

fn read(p: &Path) -> Vec<u8> {
    let bytes = std::fs::read(p).unwrap();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        bytes
    }
}

fn walk(d: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn dump(inv: &Inventory) -> Vec<String> {
    let mut v: Vec<String> = inv.iter().map(|i| format!("{i:?}")).collect();
    v.sort();
    v
}

#[test]
fn memo_matches_full_normalization() {
    let mut files = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate/AWSLogs"),
        &mut files,
    );
    match keyward_testkit::corpora() {
        Some(c) => walk(
            &c.join("aws-cloudtrail-stratus-detonations/detonation-logs"),
            &mut files,
        ),
        None => eprintln!("stratus detonations skipped: ../shared/corpora not found"),
    }
    let mut fast = Inventory::default();
    let mut full = Inventory::default();
    let mut ctx = Context::default();
    let mut touches = 0;
    for f in &files {
        let doc = read(f);
        let mut sink = Apply(&mut fast, 0);
        normalize_document(Format::Cloudtrail, &doc, &mut ctx, &mut sink);
        touches += sink.1;
        // Every record in full, no memo.
        let d = doc.trim_ascii_start();
        let array = if d.starts_with(b"[") {
            d
        } else {
            &d[d.iter().position(|&b| b == b'[').unwrap()..]
        };
        for rec in sonic_rs::to_array_iter(array) {
            let rec = rec.unwrap();
            let out = cloudtrail::normalize_record(rec.as_raw_str().as_bytes())
                .unwrap()
                .unwrap();
            assert!(out.active.is_none());
            Apply(&mut full, 0).accept(out);
        }
    }
    assert!(touches > 500, "the fast path was taken {touches} times");
    // Records are current once changed identities are taken for writing (see `Inventory`).
    fast.take_dirty();
    full.take_dirty();
    let (a, b) = (dump(&fast), dump(&full));
    let only_fast: Vec<&String> = a.iter().filter(|x| !b.contains(x)).take(3).collect();
    let only_full: Vec<&String> = b.iter().filter(|x| !a.contains(x)).take(3).collect();
    assert!(
        only_fast.is_empty() && only_full.is_empty(),
        "memo path:\n{only_fast:#?}\nfull path:\n{only_full:#?}"
    );
}
