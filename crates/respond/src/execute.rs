//! Running a plan: forensic snapshot first, then each step through its connector, its
//! effect read back from the platform, the result recorded before the next step starts.
//! A failed step stops the plan; what ran before it is in the results. Undo walks the
//! executed steps backwards.

use keyward_model::time::Millis;
use serde_json::{Map, Value, json};

use crate::plan::{Plan, PlanStatus, StepResult};
use crate::{Action, ConnectorError, Verified};

/// The connectors this process has, and why the others are missing.
#[derive(Default)]
pub struct Connectors {
    #[cfg(feature = "aws")]
    pub aws: Option<crate::aws::AwsConnector>,
    #[cfg(feature = "kubernetes")]
    pub kube: Option<crate::kube::KubeConnector>,
    #[cfg(feature = "vault")]
    pub vault: Option<crate::vault::VaultConnector>,
    /// `platform → why not available`.
    pub missing: Vec<(&'static str, String)>,
}

impl Connectors {
    /// Connectors from the environment: the AWS credential chain (`AWS_ENDPOINT_URL`
    /// honoured), the kubeconfig (`KUBECONFIG`, `kube_context`) and Vault/OpenBao
    /// (`VAULT_ADDR`/`BAO_ADDR`, `VAULT_TOKEN`/`BAO_TOKEN` or `~/.vault-token`).
    pub async fn from_env(kube_context: Option<&str>) -> Connectors {
        let mut c = Connectors::default();
        #[cfg(feature = "aws")]
        match crate::aws::AwsConnector::from_env().await {
            Ok(a) => c.aws = Some(a),
            Err(e) => c.missing.push(("aws", e.to_string())),
        }
        #[cfg(not(feature = "aws"))]
        c.missing.push((
            "aws",
            "this keyward was built without the `aws` feature".into(),
        ));
        #[cfg(feature = "kubernetes")]
        match crate::kube::KubeConnector::from_kubeconfig(kube_context).await {
            Ok(k) => c.kube = Some(k),
            Err(e) => c.missing.push(("kubernetes", e.to_string())),
        }
        #[cfg(not(feature = "kubernetes"))]
        {
            let _ = kube_context;
            c.missing.push((
                "kubernetes",
                "this keyward was built without the `kubernetes` feature".into(),
            ));
        }
        #[cfg(feature = "vault")]
        match crate::vault::VaultConnector::from_env() {
            Ok(v) => c.vault = Some(v),
            Err(e) => c.missing.push(("vault", e.to_string())),
        }
        #[cfg(not(feature = "vault"))]
        c.missing.push((
            "vault",
            "this keyward was built without the `vault` feature".into(),
        ));
        c
    }

    /// The platform's name as `missing` spells it (`"vault"`, static).
    fn platform_name(p: &str) -> &'static str {
        match p {
            "aws" => "aws",
            "kubernetes" => "kubernetes",
            "vault" => "vault",
            _ => "manual",
        }
    }

    /// Why the connector of `platform` is missing (`not configured` when nothing said).
    pub fn why_missing(&self, platform: &str) -> &str {
        self.missing
            .iter()
            .find(|(p, _)| *p == platform)
            .map_or("not configured", |(_, w)| w.as_str())
    }

    fn unavailable(&self, platform: &'static str) -> ConnectorError {
        ConnectorError::Unavailable(platform, self.why_missing(platform).to_owned())
    }

    /// Whether every step's platform has a connector; the first missing one otherwise.
    pub fn check(&self, plan: &Plan) -> Result<(), ConnectorError> {
        for s in &plan.steps {
            match s.action.platform() {
                #[cfg(feature = "aws")]
                "aws" if self.aws.is_some() => {}
                #[cfg(feature = "kubernetes")]
                "kubernetes" if self.kube.is_some() => {}
                #[cfg(feature = "vault")]
                "vault" if self.vault.is_some() => {}
                "manual" => {}
                p @ ("aws" | "kubernetes" | "vault") => return Err(self.unavailable(p)),
                _ => {}
            }
        }
        Ok(())
    }

    /// The principals this process acts as (never to be contained by it).
    pub async fn own_principals(&self) -> Vec<String> {
        #[allow(unused_mut)]
        let mut out = Vec::new();
        #[cfg(feature = "aws")]
        if let Some(a) = &self.aws
            && let Ok(arn) = a.caller().await
        {
            out.push(arn);
        }
        #[cfg(feature = "vault")]
        if let Some(v) = &self.vault
            && let Ok(own) = v.own_principals().await
        {
            out.extend(own);
        }
        out
    }

    async fn snapshot(&self, action: &Action) -> Result<Value, ConnectorError> {
        match action.platform() {
            #[cfg(feature = "aws")]
            "aws" => match &self.aws {
                Some(a) => a.snapshot(action).await,
                None => Err(self.unavailable("aws")),
            },
            #[cfg(feature = "kubernetes")]
            "kubernetes" => match &self.kube {
                Some(k) => k.snapshot(action).await,
                None => Err(self.unavailable("kubernetes")),
            },
            #[cfg(feature = "vault")]
            "vault" => match &self.vault {
                Some(v) => v.snapshot(action).await,
                None => Err(self.unavailable("vault")),
            },
            "manual" => Ok(Value::Null),
            p => Err(self.unavailable(Self::platform_name(p))),
        }
    }

    async fn apply(&self, action: &Action) -> Result<(Value, Verified), ConnectorError> {
        match action.platform() {
            #[cfg(feature = "aws")]
            "aws" => match &self.aws {
                Some(a) => {
                    let state = a.apply(action).await?;
                    Ok((state, a.verify(action).await?))
                }
                None => Err(self.unavailable("aws")),
            },
            #[cfg(feature = "kubernetes")]
            "kubernetes" => match &self.kube {
                Some(k) => {
                    let state = k.apply(action).await?;
                    Ok((state, k.verify(action).await?))
                }
                None => Err(self.unavailable("kubernetes")),
            },
            #[cfg(feature = "vault")]
            "vault" => match &self.vault {
                Some(v) => {
                    let state = v.apply(action).await?;
                    Ok((state, v.verify(action).await?))
                }
                None => Err(self.unavailable("vault")),
            },
            "manual" => Ok((
                Value::Null,
                Verified {
                    ok: true,
                    observed: "left to a person: see the step's command".into(),
                },
            )),
            p => Err(self.unavailable(Self::platform_name(p))),
        }
    }

    async fn undo(&self, action: &Action, state: &Value) -> Result<Verified, ConnectorError> {
        let _ = state;
        match action.platform() {
            #[cfg(feature = "aws")]
            "aws" => match &self.aws {
                Some(a) => a.undo(action, state).await,
                None => Err(self.unavailable("aws")),
            },
            #[cfg(feature = "kubernetes")]
            "kubernetes" => match &self.kube {
                Some(k) => k.undo(action, state).await,
                None => Err(self.unavailable("kubernetes")),
            },
            #[cfg(feature = "vault")]
            "vault" => match &self.vault {
                Some(v) => v.undo(action, state).await,
                None => Err(self.unavailable("vault")),
            },
            p => Err(self.unavailable(Self::platform_name(p))),
        }
    }
}

/// Which way a recorded step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Execute,
    Undo,
}

/// Where execution writes as it goes (the caller's store and audit log). Each call must be
/// durable before it returns: the next platform change waits for it.
pub trait Recorder {
    /// Stores the forensic snapshot, immutably; returns its content hash.
    fn evidence(&mut self, plan: &Plan, doc: &Value) -> Result<String, String>;
    /// Stores the plan after step `n` (1-based; 0 for the plan's own status) changed.
    fn step(&mut self, plan: &Plan, n: usize, phase: Phase) -> Result<(), String>;
}

/// Why a plan did not (fully) run.
#[derive(Debug, thiserror::Error)]
pub enum ExecuteError {
    #[error("plan {0} is {1}: only a planned or failed plan can be executed")]
    NotExecutable(String, &'static str),
    #[error("plan {0} is {1}: only an executed or failed plan can be undone")]
    NotUndoable(String, &'static str),
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(
        "step {n} ({action} on {target}) failed: {message}; steps before it ran and stay in effect (undo them with `keyward respond undo {plan}`)"
    )]
    Step {
        plan: String,
        n: usize,
        action: &'static str,
        target: String,
        message: String,
    },
    #[error("could not record: {0}")]
    Record(String),
}

fn failed(message: String, now: Millis) -> StepResult {
    StepResult {
        at: now,
        ok: false,
        message,
        verified: None,
        state: Value::Null,
    }
}

/// Takes the forensic snapshot of every step's target (once per target).
pub async fn snapshot(plan: &Plan, c: &Connectors, now: Millis) -> Result<Value, ConnectorError> {
    let mut targets = Map::new();
    for s in &plan.steps {
        let key = format!("{}:{}", s.action.platform(), s.target);
        if targets.contains_key(&key) || s.action.platform() == "manual" {
            continue;
        }
        targets.insert(key, c.snapshot(&s.action).await?);
    }
    Ok(json!({
        "plan": plan.id,
        "identity": plan.identity,
        "taken_at": keyward_model::time::format(now),
        "targets": targets,
    }))
}

/// Runs `plan`: the snapshot (unless one was taken), then each step not yet done, stopping
/// at the first failure. `clock` gives the time of each record.
pub async fn execute(
    plan: &mut Plan,
    c: &Connectors,
    rec: &mut dyn Recorder,
    clock: &dyn Fn() -> Millis,
) -> Result<(), ExecuteError> {
    if !matches!(plan.status, PlanStatus::Planned | PlanStatus::Failed) {
        return Err(ExecuteError::NotExecutable(
            plan.id.clone(),
            plan.status.as_str(),
        ));
    }
    c.check(plan)?;
    let own = c.own_principals().await;
    for s in &plan.steps {
        let on_self = |t: &str| own.iter().any(|arn| same_principal(arn, t));
        if s.action.changes_platform()
            && (on_self(&s.target) || key_owner(&s.action).is_some_and(|u| on_self(&u)))
        {
            return Err(ConnectorError::Refused(format!(
                "step {} acts on {}, the principal Keyward itself runs as",
                s.n, s.target
            ))
            .into());
        }
    }
    if plan.evidence.is_none() {
        let doc = snapshot(plan, c, clock()).await?;
        let hash = rec.evidence(plan, &doc).map_err(ExecuteError::Record)?;
        plan.evidence = Some(hash);
    }
    plan.status = PlanStatus::Executing;
    rec.step(plan, 0, Phase::Execute)
        .map_err(ExecuteError::Record)?;
    let total = plan.steps.len();
    for i in 0..total {
        let Some(step) = plan.steps.get(i) else { break };
        if step.result.as_ref().is_some_and(|r| r.ok) {
            continue;
        }
        let action = step.action.clone();
        let outcome = c.apply(&action).await;
        let now = clock();
        let result = match outcome {
            Ok((state, verified)) => StepResult {
                at: now,
                ok: verified.ok,
                message: if verified.ok {
                    "done".into()
                } else {
                    format!("applied, but not in effect: {}", verified.observed)
                },
                verified: Some(verified),
                state,
            },
            Err(e) => failed(e.to_string(), now),
        };
        settle(plan, i, Phase::Execute, result, &action, rec)?;
    }
    plan.status = PlanStatus::Executed;
    rec.step(plan, 0, Phase::Execute)
        .map_err(ExecuteError::Record)?;
    Ok(())
}

/// Keeps step `i`'s result (or undo result) in the plan and records it; a failed one marks
/// the plan failed (or undo-failed), is recorded too, and stops the run.
fn settle(
    plan: &mut Plan,
    i: usize,
    phase: Phase,
    result: StepResult,
    action: &Action,
    rec: &mut dyn Recorder,
) -> Result<(), ExecuteError> {
    let (ok, message) = (result.ok, result.message.clone());
    if let Some(step) = plan.steps.get_mut(i) {
        match phase {
            Phase::Execute => step.result = Some(result),
            Phase::Undo => step.undo_result = Some(result),
        }
    }
    if !ok {
        plan.status = match phase {
            Phase::Execute => PlanStatus::Failed,
            Phase::Undo => PlanStatus::UndoFailed,
        };
    }
    rec.step(plan, i + 1, phase).map_err(ExecuteError::Record)?;
    if ok {
        return Ok(());
    }
    Err(ExecuteError::Step {
        plan: plan.id.clone(),
        n: i + 1,
        action: action.name(),
        target: action.target(),
        message,
    })
}

/// Undoes every executed, reversible step, last first. A step that cannot be undone is
/// recorded as such (its undo command says what a person does).
pub async fn undo(
    plan: &mut Plan,
    c: &Connectors,
    rec: &mut dyn Recorder,
    clock: &dyn Fn() -> Millis,
) -> Result<(), ExecuteError> {
    if !matches!(
        plan.status,
        PlanStatus::Executed | PlanStatus::Failed | PlanStatus::UndoFailed
    ) {
        return Err(ExecuteError::NotUndoable(
            plan.id.clone(),
            plan.status.as_str(),
        ));
    }
    for i in (0..plan.steps.len()).rev() {
        let Some(step) = plan.steps.get(i) else {
            continue;
        };
        let Some(done) = step.result.as_ref().filter(|r| r.ok) else {
            continue;
        };
        if step.undo_result.as_ref().is_some_and(|r| r.ok) {
            continue;
        }
        let action = step.action.clone();
        let note = |message: String| StepResult {
            at: clock(),
            ok: true,
            message,
            verified: None,
            state: Value::Null,
        };
        let result = if !action.changes_platform() {
            note("nothing to undo".into())
        } else if !action.reversible() {
            note(format!(
                "cannot be undone automatically: {}",
                action.undo_commands().join("; ")
            ))
        } else {
            match c.undo(&action, &done.state).await {
                Ok(v) => StepResult {
                    at: clock(),
                    ok: v.ok,
                    message: if v.ok {
                        "undone".into()
                    } else {
                        format!("undone, but not in effect: {}", v.observed)
                    },
                    verified: Some(v),
                    state: Value::Null,
                },
                Err(e) => failed(e.to_string(), clock()),
            }
        };
        settle(plan, i, Phase::Undo, result, &action, rec)?;
    }
    plan.status = PlanStatus::Undone;
    rec.step(plan, 0, Phase::Undo)
        .map_err(ExecuteError::Record)?;
    Ok(())
}

/// The user an access-key step acts on (its target is the key id), as a target would name it.
fn key_owner(action: &Action) -> Option<String> {
    let Action::DeactivateAccessKey { account, user, .. } = action else {
        return None;
    };
    Some(match account {
        Some(a) => format!("arn:aws:iam::{a}:user/{user}"),
        None => format!("user/{user}"),
    })
}

/// Whether a caller ARN (a user, or an assumed-role session) is the step's target: the same
/// kind and name (IAM names are case-insensitive; paths ignored), in the same account when
/// the target names one (`role/NAME` when the plan did not know the account).
fn same_principal(caller: &str, target: &str) -> bool {
    if caller == target {
        return true;
    }
    match (iam_principal(caller), iam_principal(target)) {
        (Some((ca, cn, cname)), Some((ta, tn, tname))) => {
            cn == tn && cname.eq_ignore_ascii_case(tname) && ta.is_none_or(|t| Some(t) == ca)
        }
        _ => false,
    }
}

/// `(account, "user" | "role", name)` of an IAM user or role ARN, an assumed-role session
/// ARN (its role), or a target without account (`user/NAME`, `role/NAME`).
fn iam_principal(s: &str) -> Option<(Option<&str>, &str, &str)> {
    let (account, resource) = match s.strip_prefix("arn:") {
        Some(rest) => {
            let mut parts = rest.splitn(5, ':');
            let (_partition, service, _region) = (parts.next()?, parts.next()?, parts.next()?);
            let (account, resource) = (parts.next()?, parts.next()?);
            if !matches!(service, "iam" | "sts") {
                return None;
            }
            (Some(account), resource)
        }
        None => (None, s),
    };
    let (kind, rest) = resource.split_once('/')?;
    let name = match kind {
        // assumed-role/ROLE/SESSION
        "assumed-role" => rest.split('/').next()?,
        // user/PATH/NAME, role/PATH/NAME
        "user" | "role" => rest.rsplit('/').next()?,
        _ => return None,
    };
    let noun = if kind == "user" { "user" } else { "role" };
    (!name.is_empty()).then_some((account, noun, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_is_matched_with_or_without_the_account() {
        let user = "arn:aws:iam::123456789012:user/ops/keyward-admin";
        assert!(same_principal(
            user,
            "arn:aws:iam::123456789012:user/keyward-admin"
        ));
        assert!(same_principal(user, "user/keyward-admin"));
        assert!(same_principal(user, "user/Keyward-Admin"));
        assert!(!same_principal(
            user,
            "arn:aws:iam::999999999999:user/keyward-admin"
        ));
        assert!(!same_principal(user, "role/keyward-admin"));
        assert!(!same_principal(user, "user/other"));
        let session = "arn:aws:sts::123456789012:assumed-role/responder/alice";
        assert!(same_principal(
            session,
            "arn:aws:iam::123456789012:role/responder"
        ));
        assert!(same_principal(session, "role/responder"));
        assert!(!same_principal(session, "role/alice"));
        assert!(!same_principal(session, "AKIAEXAMPLE"));
        assert!(!same_principal(
            "arn:aws:iam::123456789012:root",
            "user/root"
        ));
    }

    #[test]
    fn a_key_step_acts_on_its_user() {
        let key = Action::DeactivateAccessKey {
            account: None,
            user: "keyward-admin".into(),
            key_id: "AKIAEXAMPLE".into(),
        };
        let owner = key_owner(&key);
        assert_eq!(owner.as_deref(), Some("user/keyward-admin"));
        assert!(
            owner.is_some_and(|u| same_principal(
                "arn:aws:iam::123456789012:user/keyward-admin",
                &u
            ))
        );
    }
}
