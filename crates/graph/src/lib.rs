//! The identity graph (`graph`, built by `derive`, queried by `analysis`), IAM policy
//! evaluation and escalation (`iam`), Kubernetes RBAC (`k8s`), and the inventory — merging observations from every source into
//! one record per identity, deriving session chains, and linking identities across
//! platforms (IRSA subject ↔ service account ↔ IAM role, EKS user ↔ IAM session).
//!
//! Architecture invariant: no I/O, no clock. The engine loads identities from the store,
//! applies observations, and writes back what [`Inventory::take_dirty`] returns.

pub mod analysis;
pub mod derive;
pub mod export;
pub mod graph;
pub mod iam;
pub mod inventory;
pub mod k8s;
pub mod k8s_posture;

pub use graph::{Detail, EdgeKind, EdgeSpec, EdgeView, Graph, Node, NodeId, NodeKind, NodeSpec};
pub use inventory::{Applied, Inventory, Slot};
