#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Every built-in rule loads and passes its own examples.

use keyward_detect::{Catalog, testing};

#[test]
fn builtin_rules_pass_their_examples() {
    let c = Catalog::builtin();
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    let outcomes = testing::run(&c, None);
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.passed).collect();
    for o in &outcomes {
        println!(
            "{} {} {}: {}",
            if o.passed { "ok  " } else { "FAIL" },
            o.rule,
            o.example,
            o.message
        );
    }
    assert!(failed.is_empty(), "{failed:#?}");
    // Every Keyward rule has at least one example and one negative example.
    for (id, f) in &c.files {
        assert!(!f.examples.is_empty(), "{id} has no example");
        assert!(
            !f.negative_examples.is_empty(),
            "{id} has no negative example"
        );
    }
}
