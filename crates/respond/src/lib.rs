//! Response: plans that contain a compromised identity, revoke what it created, and undo
//! it all, executed through the platforms' own APIs.
//!
//! - [`action`]: the vocabulary — one [`Action`] per platform change, each with the exact
//!   equivalent command and its undo (`aws …`, `kubectl …`).
//! - [`plan`]: a [`Plan`] is an ordered list of [`Step`]s built from what the inventory
//!   and the graph know ([`plan::build`]); pure, no I/O.
//! - [`aws`], [`kube`] and [`vault`]: the connectors (behind the `aws`, `kubernetes` and
//!   `vault` features):
//!   snapshot a target's state, apply an action, verify its effect, undo it.
//!   For the credential broker they also mint: STS sessions for a workload
//!   (`AwsConnector::assume_role_for`, capped by [`aws::agent_boundary_policy`] for AI
//!   agents) and Vault dynamic secrets with their leases (`VaultConnector::dynamic_secret`).
//! - [`rotate`]: a key rotation without downtime as a [`Plan`] (create, write where the old
//!   key lives, verify, deactivate); the new secret passes between steps in memory only.
//! - [`restore`]: self-healing — the changes that put an IAM principal back to its approved
//!   baseline, as a reversible [`Plan`].
//! - [`purge`]: the deletion a rotation or retirement leaves for after its grace period,
//!   made once the period ended and re-checked live before anything is deleted.
//! - [`campaign`]: a breach rotation of every key as a resumable job, and how an item a
//!   killed process left half-done converges; [`schedule`]: rotation periods and deadlines.
//! - [`execute`]: runs a plan's steps through the connectors in order, stopping at the
//!   first failure, and reports each step's result to a recorder (the caller audits and
//!   stores it).
//!
//! Dry-run is the default everywhere: nothing here touches a platform unless
//! [`execute::execute`] (or [`execute::undo`]) is called.

pub mod action;
pub mod aws;
pub mod campaign;
pub mod execute;
pub mod kube;
pub mod plan;
pub mod playbook;
pub mod policy;
pub mod purge;
pub mod restore;
pub mod rotate;
pub mod schedule;
pub mod vault;

pub use action::{Action, IamPrincipal};
pub use plan::{Plan, PlanStatus, Step, StepResult};

/// A connector's failure. Messages name the call and the target, never a credential.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The connector is not compiled in, or has no configuration (no credentials, no
    /// kubeconfig).
    #[error("{0} connector not available: {1}")]
    Unavailable(&'static str, String),
    /// The platform refused or failed a call.
    #[error("{call} on {target}: {message}")]
    Api {
        call: String,
        target: String,
        message: String,
    },
    /// The target's state is not what the step needs (a precondition failed).
    #[error("precondition failed on {target}: {message}")]
    Precondition { target: String, message: String },
    /// The step would act on a protected identity (Keyward's own credentials).
    #[error("refused: {0}")]
    Refused(String),
}

/// What a connector's `verify` (or `undo`) read back from the platform after a step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verified {
    pub ok: bool,
    /// What was observed, in words (`inline policy KeywardContainment present`, `key
    /// AKIA… is Inactive`, `binding gone`).
    pub observed: String,
}
