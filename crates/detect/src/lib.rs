//! Detection: rules as data (Keyward's own and unmodified Sigma, correlations included),
//! stateful identity checks, behavioural baselines per identity, posture findings and the
//! risk score.
//!
//! Architecture invariant: no I/O but reading rule files; no wall clock — time is the
//! events' own, so a replay of old logs detects what a live stream would have.

pub mod baseline;
pub mod checks;
pub mod detector;
pub mod draft;
pub mod eval;
pub mod exceptions;
pub mod export;
pub mod finding;
pub mod intent;
pub mod posture;
pub mod prefilter;
pub mod remediation;
pub mod risk;
pub mod rules;
pub mod testing;
pub mod view;

pub use checks::{Lookup, NoLookup, Settings};

/// A 64-bit hash of a string keyed with this process's random key (SipHash-1-3), to tell
/// strings apart without reading a stored copy, which is rarely in cache. Two different
/// strings agree with probability 2⁻⁶⁴, and without the key nobody can make them agree on
/// purpose. Never persisted: the key changes with every process.
pub(crate) fn keyed_hash<T: std::hash::Hash + ?Sized>(s: &T) -> u64 {
    use std::hash::BuildHasher;
    static KEY: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
    KEY.get_or_init(std::hash::RandomState::new).hash_one(s)
}
pub use detector::Detector;
pub use finding::{Finding, Kind, Severity, Status};
pub use rules::Catalog;
