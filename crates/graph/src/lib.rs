//! The identity graph. So far: IAM policy evaluation (`iam`) and the inventory — merging observations from every source into
//! one record per identity, deriving session chains, and linking identities across
//! platforms (IRSA subject ↔ service account ↔ IAM role, EKS user ↔ IAM session).
//!
//! Architecture invariant: no I/O, no clock. The engine loads identities from the store,
//! applies observations, and writes back what [`Inventory::take_dirty`] returns.

pub mod iam;
pub mod inventory;
pub mod k8s;

pub use inventory::{Applied, Inventory, Slot};
