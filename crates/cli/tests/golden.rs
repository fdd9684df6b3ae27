//! The example estate's answers are held byte for byte: the inventory, the graph in all
//! three export formats, and the findings. A change that is meant to change none of them
//! (a refactoring, a speed-up) must leave these hashes as they are; a change that is meant
//! to change them says so by updating `golden/estate.blake3` (run with `KEYWARD_BLESS=1`,
//! and diff the outputs the failure message points to).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

/// Runs from the repository's root, so the paths the answers hold (`examples/estate/…`)
/// are the same in every clone.
fn keyward(data: &Path, args: &[&str]) -> Vec<u8> {
    let o = common::command(data)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args(args)
        .env_remove("KEYWARD_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        o.status.success() || o.status.code() == Some(2),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

#[test]
fn the_example_estate_answers_byte_for_byte() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let golden = root.join("tests/golden/estate.blake3");
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::Builder::new()
        .prefix("keyward-golden-")
        .tempdir()
        .unwrap()
        .keep();
    // With the example configuration: its AI agent's declared purpose is judged.
    keyward(
        data.path(),
        &[
            "--config",
            "examples/keyward.yaml",
            "ingest",
            "examples/estate",
        ],
    );
    let as_of = "2026-12-01T00:00:00Z";
    let mut answers: Vec<(&str, Vec<u8>)> = vec![
        (
            "inventory.json",
            keyward(
                data.path(),
                &["inventory", "--format", "json", "--as-of", as_of],
            ),
        ),
        (
            "findings.json",
            keyward(data.path(), &["findings", "--format", "json"]),
        ),
    ];
    for (name, format) in [
        ("graph.json", "json"),
        ("graph.graphml", "graphml"),
        ("graph.dot", "dot"),
    ] {
        let file = out.join(name);
        keyward(
            data.path(),
            &[
                "graph",
                "export",
                "--format",
                format,
                "-o",
                file.to_str().unwrap(),
            ],
        );
        answers.push((name, std::fs::read(&file).unwrap()));
    }
    let mut now = String::new();
    for (name, bytes) in &answers {
        std::fs::write(out.join(name), bytes).unwrap();
        assert!(bytes.len() > 1000, "{name} is nearly empty");
        now.push_str(&format!(
            "{name} {} {}\n",
            blake3::hash(bytes).to_hex(),
            bytes.len()
        ));
    }
    if std::env::var_os("KEYWARD_BLESS").is_some() {
        std::fs::write(&golden, &now).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        want == now,
        "the example estate's answers changed (outputs in {}):\n--- held\n{want}--- now\n{now}",
        out.display()
    );
    let _ = std::fs::remove_dir_all(&out);
}
