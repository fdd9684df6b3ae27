//! `kw-posture-foreign-trust`: a role that principals of an account outside the estate and
//! the allow-list may assume.

use super::{Control, Facts, Hit};
use crate::Severity;

pub(super) const CONTROL: Control = Control {
    id: "kw-posture-foreign-trust",
    title: "Trusted by an unknown account",
    description: "Its trust policy lets a principal of an account that is neither in the \
                  estate nor approved (`--allow-account`) assume it.",
};

pub(super) fn check(f: &Facts) -> Option<Hit> {
    let first = f.foreign.first()?;
    let i = f.identity;
    let trusted: Vec<String> = f
        .foreign
        .iter()
        .map(|t| format!("{} ({})", t.trusted, t.trusted_account))
        .collect();
    let summary = format!("{} trusts {}", i.id, trusted.join(", "));
    Some(
        Hit::of(&CONTROL, Severity::High, summary)
            .attack(&["T1199"])
            .path(vec![first.trusted.clone(), i.id.clone()]),
    )
}
