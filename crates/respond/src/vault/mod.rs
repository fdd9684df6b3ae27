//! Vault/OpenBao: the equivalent `vault` commands (`bao` takes the same arguments), the
//! plans for Vault-issued tokens ([`plan_issue`], [`plan_rotate`], [`plan_revoke`]) and for
//! `keyward disable` ([`disable_steps`], [`plan_disable`]), all pure; and (with the `vault`
//! feature) the connector in `client.rs` that carries the actions out through the HTTP API.
//!
//! **A token is never stored.** The issue step puts the new token into
//! [`crate::rotate::handoff`] (this process's memory, keyed by its destination); the write
//! and verify steps take it from there (once verified it leaves memory); step results hold
//! accessors, versions and resource versions only. A run that dies between issuing and writing leaves a token nobody holds:
//! `keyward respond undo PLAN` revokes it by the accessor the issue step recorded.
//!
//! For playbooks: a step that issues, rotates or revokes a token becomes an ordinary
//! [`Plan`] (stored, audited, run by [`crate::execute::execute`]):
//! - [`plan_issue`]: issue (through a token role) → write into the destination → verify;
//! - [`plan_rotate`]: the same, then revoke the old accessor; the old token keeps working
//!   until the new one is written and verified (no downtime);
//! - [`plan_revoke`]: revoke accessors and lease prefixes at once.
//!
//! The monitoring question "who is this accessor, is it valid, when does it expire" is
//! `VaultConnector::lookup_accessor` ([`AccessorInfo`]).

use std::collections::BTreeMap;

use keyward_model::time::Millis;
use keyward_model::{Identity, IdentityKind};
use serde::{Deserialize, Serialize};

use crate::action::{Action, shell_quote as q};
use crate::plan::{Plan, PlanStatus, Step};
use crate::rotate::SecretLocation;

#[cfg(feature = "vault")]
mod campaign;
#[cfg(feature = "vault")]
mod client;
#[cfg(feature = "vault")]
mod http;
#[cfg(feature = "vault")]
mod identity;
#[cfg(feature = "vault")]
mod kv;
#[cfg(feature = "vault")]
mod leases;
#[cfg(feature = "vault")]
mod tokens;
#[cfg(feature = "vault")]
pub use campaign::VaultSecretIndex;
#[cfg(feature = "vault")]
pub use client::{VaultConfig, VaultConnector};
#[cfg(feature = "vault")]
pub use leases::{DynamicSecret, LeaseInfo};

/// What Vault says about a token accessor (`auth/token/lookup-accessor`), for monitoring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessorInfo {
    pub accessor: String,
    /// Whether Vault knows the token (not revoked, not expired).
    pub valid: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub entity_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// RFC 3339, as Vault answers it; `None` for a token without expiry (root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_time: Option<String>,
    /// Seconds left, as Vault answers it.
    #[serde(default)]
    pub ttl_secs: u64,
    /// The token's role (`auth/token/create/ROLE`), if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
}

/// A Vault identity entity that stands for a Keyward identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityMatch {
    pub id: String,
    pub name: String,
    pub disabled: bool,
    /// What matched: `alias NAME (MOUNT)` or `entity name`.
    pub matched_by: String,
}

/// A token (by accessor) that belongs to a Keyward identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenMatch {
    pub accessor: String,
    pub display: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub entity_id: String,
    pub matched_by: String,
}

/// What the connector found in Vault for an identity ([`disable_steps`] plans it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    pub entities: Vec<EntityMatch>,
    pub tokens: Vec<TokenMatch>,
    /// Lease prefixes with leases under them (`database/creds/payments-api`,
    /// `pki/issue/payments-api`).
    pub lease_prefixes: Vec<String>,
    /// What could not be searched, in words.
    pub notes: Vec<String>,
}

impl Found {
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty() && self.tokens.is_empty() && self.lease_prefixes.is_empty()
    }
}

/// The names a Keyward identity may go by in Vault: an alias is the JWT/OIDC `sub` (a GitHub
/// subject `repo:acme/payments-api:ref:refs/heads/main`), a Kubernetes service account as
/// `namespace/name` or its uid, an IAM principal's ARN; or an entity named like it.
pub fn candidates(i: &Identity) -> Vec<String> {
    let mut out = vec![i.name.clone(), i.id.clone()];
    out.extend(i.arn.clone());
    out.extend(i.subject.clone());
    if i.kind == IdentityKind::ServiceAccount {
        let sa = i.name.rsplit(':').next().unwrap_or(&i.name);
        if let Some(ns) = &i.namespace {
            out.push(format!("{ns}/{sa}"));
        }
        out.push(sa.to_owned());
        out.extend(i.native_id.clone());
    }
    if matches!(i.kind, IdentityKind::IamRole | IdentityKind::IamUser)
        && let Some(short) = i.id.rsplit('/').next()
    {
        out.push(short.to_owned());
    }
    out.retain(|s| !s.trim().is_empty());
    out.sort();
    out.dedup();
    out
}

/// The steps that cut a Vault identity off: each entity disabled (its tokens stop working;
/// `keyward enable` re-enables it and they work again), each token no disabled entity covers
/// revoked, each lease prefix revoked (those two cannot be undone).
pub fn disable_steps(found: &Found) -> Vec<Step> {
    let mut steps = Vec::new();
    for e in &found.entities {
        steps.push(Step::new(
            Action::DisableVaultEntity {
                id: e.id.clone(),
                name: e.name.clone(),
            },
            &format!("contain: Vault entity found by {}", e.matched_by),
        ));
    }
    let covered = |t: &TokenMatch| {
        !t.entity_id.is_empty() && found.entities.iter().any(|e| e.id == t.entity_id)
    };
    for t in found.tokens.iter().filter(|t| !covered(t)) {
        steps.push(Step::new(
            Action::RevokeVaultToken {
                accessor: t.accessor.clone(),
                display: t.display.clone(),
            },
            &format!("contain: Vault token found by {}", t.matched_by),
        ));
    }
    for p in &found.lease_prefixes {
        steps.push(Step::new(
            Action::RevokeVaultLeases { prefix: p.clone() },
            "contain: dynamic secrets issued under a role named for the identity",
        ));
    }
    steps
}

/// Notes for a plan that has Vault steps: the tokens a disabled entity covers, what Vault
/// could not be searched for.
pub fn disable_notes(found: &Found) -> Vec<String> {
    let mut notes = found.notes.clone();
    let covered = found
        .tokens
        .iter()
        .filter(|t| found.entities.iter().any(|e| e.id == t.entity_id))
        .count();
    if covered > 0 {
        notes.push(format!(
            "{covered} Vault token(s) of the disabled entities stop working while the entity is disabled and work again after `keyward enable`: they are not revoked"
        ));
    }
    if found
        .tokens
        .iter()
        .any(|t| !found.entities.iter().any(|e| e.id == t.entity_id))
        || !found.lease_prefixes.is_empty()
    {
        notes.push(
            "revoked Vault tokens and leases cannot be brought back: `keyward enable` re-enables entities only; the workload logs in again for new ones".into(),
        );
    }
    notes
}

/// Appends the Vault steps and notes to a plan (renumbering its steps).
pub fn extend_plan(plan: &mut Plan, found: &Found) {
    let seen: std::collections::BTreeSet<String> = plan
        .steps
        .iter()
        .map(|s| serde_json::to_string(&s.action).unwrap_or_default())
        .collect();
    for s in disable_steps(found) {
        if !seen.contains(&serde_json::to_string(&s.action).unwrap_or_default()) {
            plan.steps.push(s);
        }
    }
    for n in disable_notes(found) {
        if !plan.notes.contains(&n) {
            plan.notes.push(n);
        }
    }
    number(&mut plan.steps);
}

/// A plan with only Vault steps, for an identity Keyward knows only through Vault (or whose
/// other platforms have no containment).
pub fn plan_disable(identity: &str, found: &Found, now: Millis, actor: &str) -> Plan {
    let mut steps = disable_steps(found);
    number(&mut steps);
    new_plan(
        identity,
        "vault",
        &format!("disable\n{identity}\n{now}\n{actor}"),
        now,
        actor,
        steps,
        disable_notes(found),
    )
}

/// A token to issue through a token role and where it goes.
#[derive(Debug, Clone)]
pub struct TokenRequest<'a> {
    /// Who the token is for (a service, a playbook's subject): the plan's identity.
    pub identity: &'a str,
    /// The token role (`auth/token/roles/ROLE`): it bounds the policies and TTL.
    pub role: &'a str,
    pub ttl_secs: u64,
    /// Policies asked for (empty: the role's).
    pub policies: &'a [String],
    /// Metadata on the token (shown by `lookup-accessor`; never a secret).
    pub meta: &'a BTreeMap<String, String>,
    /// Where the token goes: a Kubernetes Secret or a KV v2 secret.
    pub into: &'a SecretLocation,
    /// The entry of `into` that holds it (`VAULT_TOKEN`).
    pub key: &'a str,
    pub now: Millis,
    pub actor: &'a str,
}

fn token_steps(r: &TokenRequest<'_>) -> Vec<Step> {
    vec![
        Step::new(
            Action::IssueVaultToken {
                role: r.role.to_owned(),
                ttl_secs: r.ttl_secs,
                policies: r.policies.to_vec(),
                meta: r.meta.clone(),
                into: r.into.clone(),
                key: r.key.to_owned(),
            },
            "issue: the token is held in this process's memory only",
        ),
        Step::new(
            Action::WriteVaultToken {
                into: r.into.clone(),
                key: r.key.to_owned(),
            },
            "issue: the token goes where its workload reads it",
        ),
        Step::new(
            Action::VerifyVaultToken {
                into: r.into.clone(),
                key: r.key.to_owned(),
            },
            "issue: the new token works",
        ),
    ]
}

const NEVER_STORED: &str = "the token is held in this process's memory only: never in the plan, its results, the evidence or the audit log (results name its accessor)";

/// Issue a token into a destination: issue → write → verify.
pub fn plan_issue(r: &TokenRequest<'_>) -> Plan {
    let mut steps = token_steps(r);
    number(&mut steps);
    new_plan(
        r.identity,
        "vault_token",
        &format!(
            "vault-issue\n{}\n{}\n{}\n{}",
            r.identity, r.into, r.now, r.actor
        ),
        r.now,
        r.actor,
        steps,
        vec![NEVER_STORED.into()],
    )
}

/// Rotate the token in a destination without downtime: issue → write → verify → revoke the
/// old accessor (the old token works until the new one is written and verified).
pub fn plan_rotate(r: &TokenRequest<'_>, old_accessor: &str) -> Plan {
    let mut steps = token_steps(r);
    steps.push(Step::new(
        Action::RevokeVaultToken {
            accessor: old_accessor.to_owned(),
            display: format!("the token {} held before", r.into),
        },
        "rotate: the old token stops once the new one is in place and works",
    ));
    number(&mut steps);
    new_plan(
        r.identity,
        "vault_token",
        &format!(
            "vault-rotate\n{}\n{}\n{old_accessor}\n{}\n{}",
            r.identity, r.into, r.now, r.actor
        ),
        r.now,
        r.actor,
        steps,
        vec![NEVER_STORED.into()],
    )
}

/// Revoke tokens (`(accessor, display)`) and lease prefixes at once (a compromised service).
pub fn plan_revoke(
    identity: &str,
    accessors: &[(String, String)],
    lease_prefixes: &[String],
    now: Millis,
    actor: &str,
) -> Plan {
    let mut steps: Vec<Step> = accessors
        .iter()
        .map(|(accessor, display)| {
            Step::new(
                Action::RevokeVaultToken {
                    accessor: accessor.clone(),
                    display: display.clone(),
                },
                "revoke",
            )
        })
        .chain(
            lease_prefixes
                .iter()
                .map(|p| Step::new(Action::RevokeVaultLeases { prefix: p.clone() }, "revoke")),
        )
        .collect();
    number(&mut steps);
    new_plan(
        identity,
        "vault_token",
        &format!("vault-revoke\n{identity}\n{accessors:?}\n{lease_prefixes:?}\n{now}\n{actor}"),
        now,
        actor,
        steps,
        vec!["revoked tokens and leases cannot be brought back".into()],
    )
}

fn number(steps: &mut [Step]) {
    for (i, s) in steps.iter_mut().enumerate() {
        s.n = i + 1;
    }
}

fn new_plan(
    identity: &str,
    kind: &str,
    seed: &str,
    now: Millis,
    actor: &str,
    steps: Vec<Step>,
    notes: Vec<String>,
) -> Plan {
    Plan {
        id: format!("rp-{}", &blake3::hash(seed.as_bytes()).to_hex()[..16]),
        created_at: now,
        created_by: actor.to_owned(),
        identity: identity.to_owned(),
        identity_kind: kind.to_owned(),
        identity_name: identity.to_owned(),
        finding: None,
        since: None,
        status: PlanStatus::Planned,
        workloads: Vec::new(),
        notes,
        steps,
        evidence: None,
        grace_days: None,
    }
}

/// The handoff key of a destination's entry.
pub fn dest_key(into: &SecretLocation, key: &str) -> String {
    format!("{into}#{key}")
}

/// The write of `$TOKEN` into a destination's entry, by hand.
fn write_commands(into: &SecretLocation, key: &str) -> Vec<String> {
    match into {
        SecretLocation::Kubernetes { namespace, name } => vec![format!(
            "kubectl -n {} patch secret {} --type merge -p \"$(jq -n --arg t \"$TOKEN\" '{{stringData: {{{}: $t}}}}')\"",
            q(namespace),
            q(name),
            serde_json::to_string(key).unwrap_or_default()
        )],
        SecretLocation::Vault { mount, path } => vec![format!(
            "vault kv patch -mount={} {} {}=\"$TOKEN\"",
            q(mount),
            q(path),
            q(key)
        )],
        SecretLocation::Secretsmanager { secret_id } => vec![format!(
            "# a Vault token is not written into Secrets Manager ({}): use a Kubernetes Secret or a KV path",
            secret_id
        )],
    }
}

pub(crate) fn commands(action: &Action) -> Vec<String> {
    match action {
        Action::DisableVaultEntity { id, .. } => vec![format!(
            "vault write identity/entity/id/{} disabled=true",
            q(id)
        )],
        Action::RevokeVaultToken { accessor, .. } => {
            vec![format!("vault token revoke -accessor {}", q(accessor))]
        }
        Action::RevokeVaultLeases { prefix } => {
            vec![format!("vault lease revoke -prefix {}", q(prefix))]
        }
        Action::IssueVaultToken {
            role,
            ttl_secs,
            policies,
            meta,
            ..
        } => {
            let mut c = format!("TOKEN=$(vault token create -role={} -ttl={ttl_secs}s", q(role));
            for p in policies {
                c.push_str(&format!(" -policy={}", q(p)));
            }
            for (k, v) in meta {
                c.push_str(&format!(" -metadata={}", q(&format!("{k}={v}"))));
            }
            c.push_str(" -field=token)  # keep it in the shell only; the next step writes it");
            vec![c]
        }
        Action::WriteVaultToken { into, key } => write_commands(into, key),
        Action::VerifyVaultToken { .. } => vec![
            "VAULT_TOKEN=\"$TOKEN\" vault token lookup -format=json | jq -r .data.accessor  # the accessor the issue step recorded".into(),
        ],
        Action::DenyAll { .. }
        | Action::RevokeSessions { .. }
        | Action::DeactivateAccessKey { .. }
        | Action::DeleteLoginProfile { .. }
        | Action::ListMfaDevices { .. }
        | Action::DenyWebIdentitySubject { .. }
        | Action::RemoveBindings { .. }
        | Action::DeleteTokenSecrets { .. }
        | Action::RestartPods { .. }
        | Action::BlueGreen { .. }
        | Action::DeleteBinding { .. }
        | Action::CreateAccessKey { .. }
        | Action::PromoteSecretVersion { .. }
        | Action::RestoreBaseline { .. }
        | Action::UpdateSecretValue { .. }
        | Action::VerifyAccessKey { .. }
        | Action::Delete { .. }
        | Action::AttachPolicy { .. }
        | Action::AddToGroup { .. }
        | Action::CreateBinding { .. }
        | Action::Review { .. } => Vec::new(),
    }
}

pub(crate) fn undo_commands(action: &Action) -> Vec<String> {
    match action {
        Action::DisableVaultEntity { id, .. } => vec![format!(
            "vault write identity/entity/id/{} disabled=false",
            q(id)
        )],
        Action::RevokeVaultToken { .. } => vec![
            "# a revoked token cannot be restored: its workload logs in again (or: vault token create -role=ROLE)".into(),
        ],
        Action::RevokeVaultLeases { .. } => vec![
            "# revoked leases cannot be restored: their secrets are gone; read new ones from the role".into(),
        ],
        Action::IssueVaultToken { .. } => vec![
            "vault token revoke -accessor ACCESSOR  # the step's result names it".into(),
        ],
        Action::WriteVaultToken { into, key } => match into {
            SecretLocation::Vault { mount, path } => vec![format!(
                "vault kv rollback -mount={} -version=PREVIOUS {}  # PREVIOUS is in the step's result",
                q(mount),
                q(path)
            )],
            SecretLocation::Kubernetes { namespace, name } => vec![format!(
                "kubectl -n {} edit secret {}  # put {} back as it was (Keyward keeps no copy outside the issuing process's memory)",
                q(namespace),
                q(name),
                q(key)
            )],
            SecretLocation::Secretsmanager { .. } => Vec::new(),
        },
        Action::VerifyVaultToken { .. }
        | Action::DenyAll { .. }
        | Action::RevokeSessions { .. }
        | Action::DeactivateAccessKey { .. }
        | Action::DeleteLoginProfile { .. }
        | Action::ListMfaDevices { .. }
        | Action::DenyWebIdentitySubject { .. }
        | Action::RemoveBindings { .. }
        | Action::DeleteTokenSecrets { .. }
        | Action::RestartPods { .. }
        | Action::BlueGreen { .. }
        | Action::DeleteBinding { .. }
        | Action::CreateAccessKey { .. }
        | Action::PromoteSecretVersion { .. }
        | Action::RestoreBaseline { .. }
        | Action::UpdateSecretValue { .. }
        | Action::VerifyAccessKey { .. }
        | Action::Delete { .. }
        | Action::AttachPolicy { .. }
        | Action::AddToGroup { .. }
        | Action::CreateBinding { .. }
        | Action::Review { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(
        into: &'a SecretLocation,
        meta: &'a BTreeMap<String, String>,
        policies: &'a [String],
    ) -> TokenRequest<'a> {
        TokenRequest {
            identity: "payments-api",
            role: "payments",
            ttl_secs: 86_400,
            policies,
            meta,
            into,
            key: "VAULT_TOKEN",
            now: 0,
            actor: "test",
        }
    }

    #[test]
    fn a_rotation_writes_and_verifies_before_the_old_token_is_revoked() {
        let into = SecretLocation::Kubernetes {
            namespace: "pay".into(),
            name: "vault".into(),
        };
        let meta = BTreeMap::from([("service".to_owned(), "payments-api".to_owned())]);
        let policies = vec!["payments".to_owned()];
        let p = plan_rotate(&request(&into, &meta, &policies), "acc-old");
        let names: Vec<&str> = p.steps.iter().map(|s| s.action.name()).collect();
        assert_eq!(
            names,
            [
                "issue_vault_token",
                "write_vault_token",
                "verify_vault_token",
                "revoke_vault_token"
            ]
        );
        assert_eq!(p.steps[1].action.platform(), "kubernetes");
        assert_eq!(
            p.steps[0].command,
            [
                "TOKEN=$(vault token create -role=payments -ttl=86400s -policy=payments -metadata=service=payments-api -field=token)  # keep it in the shell only; the next step writes it"
            ]
        );
        assert_eq!(p.steps[3].command, ["vault token revoke -accessor acc-old"]);
        assert!(!p.steps[3].action.reversible());
        let doc = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Plan>(&doc).unwrap(), p);
    }

    #[test]
    fn an_identity_goes_by_its_alias_names_in_vault() {
        use keyward_model::Platform;
        let mut sa = Identity::new(
            "k8s:prod:payments:payments-api".into(),
            Platform::Kubernetes,
            IdentityKind::ServiceAccount,
            "system:serviceaccount:payments:payments-api".into(),
        );
        sa.namespace = Some("payments".into());
        sa.native_id = Some("0b7c-uid".into());
        let c = candidates(&sa);
        assert!(c.contains(&"payments/payments-api".to_owned()), "{c:?}");
        assert!(c.contains(&"0b7c-uid".to_owned()), "{c:?}");
        let mut oidc = Identity::new(
            "oidc:github:repo:acme/payments-api:ref:refs/heads/main".into(),
            Platform::Github,
            IdentityKind::OidcSubject,
            "payments-api main".into(),
        );
        oidc.subject = Some("repo:acme/payments-api:ref:refs/heads/main".into());
        assert!(
            candidates(&oidc).contains(&"repo:acme/payments-api:ref:refs/heads/main".to_owned())
        );
    }

    #[cfg(feature = "vault")]
    #[test]
    fn the_token_never_shows_in_debug() {
        let c = VaultConfig {
            addr: "https://vault:8200".into(),
            token: crate::rotate::handoff::Secret::new("s.supersecret".into()),
            namespace: None,
            ca_cert: None,
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("supersecret") && shown.contains("redacted"),
            "{shown}"
        );
    }

    #[test]
    fn tokens_of_a_disabled_entity_are_left_to_it() {
        let found = Found {
            entities: vec![EntityMatch {
                id: "e1".into(),
                name: "payments".into(),
                disabled: false,
                matched_by: "alias".into(),
            }],
            tokens: vec![
                TokenMatch {
                    accessor: "a1".into(),
                    display: "jwt-payments".into(),
                    entity_id: "e1".into(),
                    matched_by: "entity".into(),
                },
                TokenMatch {
                    accessor: "a2".into(),
                    display: "token-payments".into(),
                    entity_id: String::new(),
                    matched_by: "meta".into(),
                },
            ],
            lease_prefixes: vec!["database/creds/payments".into()],
            notes: Vec::new(),
        };
        let p = plan_disable("payments", &found, 0, "test");
        let cmds: Vec<&str> = p.steps.iter().map(|s| s.command[0].as_str()).collect();
        assert_eq!(
            cmds,
            [
                "vault write identity/entity/id/e1 disabled=true",
                "vault token revoke -accessor a2",
                "vault lease revoke -prefix database/creds/payments",
            ]
        );
        assert_eq!(
            p.steps[0].undo,
            ["vault write identity/entity/id/e1 disabled=false"]
        );
        assert_eq!(p.steps.iter().map(|s| s.n).collect::<Vec<_>>(), [1, 2, 3]);
    }
}
