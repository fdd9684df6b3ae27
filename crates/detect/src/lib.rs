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
pub mod export;
pub mod finding;
pub mod prefilter;
pub mod risk;
pub mod rules;
pub mod testing;
pub mod view;

pub use checks::{Lookup, NoLookup, Settings};
pub use detector::Detector;
pub use finding::{Finding, Kind, Severity, Status};
pub use rules::Catalog;
