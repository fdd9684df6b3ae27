//! AWS IAM policy semantics: parsing policy documents and deciding what they allow.
//!
//! Evaluation is three-valued. Keyward evaluates policies for hypothetical requests (can
//! this role call `iam:PassRole` on that role?), so a condition on a key the request does
//! not determine — the caller's source IP, the time of day — is neither true nor false: it
//! is reported as undecided, with its key, and never silently ignored.

pub mod admin;
pub mod authz;
pub mod escalation;
pub mod org;
pub mod policy;
pub mod removed;

pub use policy::{
    Context, Decision, Outcome, Policy, PolicyError, PrincipalRef, Request, StatementError, Tri,
    evaluate, evaluate_trust,
};
