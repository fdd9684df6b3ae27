//! Governance: the checks an identity change passes before it is merged, the access paths
//! (standard, privileged and time-bound, break-glass) and the evidence compliance asks for.
//! Pure: the engine stores and audits, the connectors apply.

pub mod access;
pub mod check;
pub mod compliance;
pub mod rightsize;
