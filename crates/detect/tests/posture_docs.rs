//! The posture controls `keyward rules list` shows are the ones
//! `docs/detection-coverage.md` documents, word for word.

#![allow(clippy::unwrap_used, clippy::panic)]

#[test]
fn posture_controls_are_documented() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/detection-coverage.md"),
    )
    .unwrap();
    for c in keyward_detect::posture::CONTROLS {
        let row = format!("| `{}` | {} | {} |", c.id, c.title, c.description);
        assert!(
            doc.contains(&row),
            "docs/detection-coverage.md lacks the row:\n{row}"
        );
    }
    let rows = doc
        .lines()
        .filter(|l| l.starts_with("| `kw-posture-"))
        .count();
    assert_eq!(
        rows,
        keyward_detect::posture::CONTROLS.len(),
        "a documented control is gone"
    );
}
