//! The shared vocabulary of Keyward: identities, credentials, normalized events, the
//! observations normalizers emit about identities, and canonical ids.
//!
//! Architecture invariant: this crate does no I/O and reads no clock. Time is always passed
//! in as epoch milliseconds (`i64`).

pub mod event;
pub mod identity;
pub mod ids;
pub mod json;
pub mod lease;
pub mod observation;
pub mod time;

pub use event::{Event, EventKey, ReadFields, SourceKind};
pub use identity::{
    Credential, CredentialKind, CredentialStatus, Evidence, Identity, IdentityKind, Lifecycle,
    LifecycleConfig, Platform,
};
pub use observation::{Diagnostic, Facts, Observation, ObservedEdge, Reason, SnapshotObject};
