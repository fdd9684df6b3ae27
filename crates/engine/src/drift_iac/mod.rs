//! Baselines taken from Terraform: each IAM role and user and each Kubernetes service account
//! a configuration (`.tf`, `.tf.json`) or a `terraform show -json` plan or state defines, with
//! the governed facts Terraform declares for it, in the shapes [`Engine::governed`] gives
//! them — so `keyward drift` and `drift --live` compare Terraform's intent with what is
//! observed like any other baseline, and `drift --live --revert` puts that intent back.
//!
//! The files are read by the Terraform normalizer (`keyward_normalize::terraform`); a
//! reference between resources of one module (`aws_iam_role.app.name`,
//! `aws_iam_policy.p.arn`) is followed. Whatever else only Terraform can compute — a
//! variable, a data source, a value a plan does not know yet — leaves that fact out of the
//! baseline as *ungoverned*, with why: never compared, never reverted, never approved as a
//! placeholder. An identity is matched to the inventory by its ARN when Terraform knows it
//! (state), else by name (namespace and name for a service account); a name found in
//! several accounts or clusters is ambiguous and not approved, unless `account` narrows it.
//!
//! What a fact is declared by:
//! - `attached_policies`: `aws_iam_{role,user}_policy_attachment`, `aws_iam_policy_attachment`,
//!   `aws_iam_{role,user}_policy_attachments_exclusive`, a role's `managed_policy_arns`;
//! - `inline_policies`: `aws_iam_{role,user}_policy`, `aws_iam_{role,user}_policies_exclusive`,
//!   a role's `inline_policy` blocks;
//! - `trust_policy`: a role's `assume_role_policy`; `permissions_boundary`: the attribute
//!   (absent: none);
//! - `groups`: `aws_iam_user_group_membership`, `aws_iam_group_membership`;
//! - `active_keys`: `aws_iam_access_key` with its id (state only; a user with no key
//!   declared leaves keys ungoverned, as keys made outside Terraform are common);
//! - `bindings`: `kubernetes_{cluster_,}role_binding{,_v1}` subjects.

use std::collections::BTreeMap;

use keyward_model::time::Millis;
use keyward_model::{Diagnostic, IdentityKind, SnapshotObject, ids};
use keyward_normalize::{Context, Output, Sink};
use keyward_store::AuditEntry;
use serde::Serialize;

mod declared;

use declared::{Intent, Kind, Place, Res, intents, refuse_twice_defined};

use crate::drift::{BASELINES, Baseline, principal_of};
use crate::{Engine, EngineError};

/// The Terraform files a baseline is approved from.
pub struct TerraformInput {
    /// The path as the user gave it: the baselines' source is `terraform:<label>`.
    pub label: String,
    /// Each file's path and bytes.
    pub files: Vec<(String, Vec<u8>)>,
}

/// What to approve from Terraform.
#[derive(Debug, Default, Clone, Copy)]
pub struct TerraformApproval<'a> {
    /// Only this identity (canonical id, ARN or unique name in the inventory, or the
    /// Terraform address or name).
    pub identity: Option<&'a str>,
    /// The AWS account the configuration applies to, when Terraform does not say.
    pub account: Option<&'a str>,
}

/// Why Terraform could not be read as baselines.
#[derive(Debug, thiserror::Error)]
pub enum TerraformError {
    #[error("`{file}` line {line}: {reason}")]
    Unreadable {
        file: String,
        line: u64,
        reason: String,
    },
    #[error(
        "`{0}` defines no IAM role, user or Kubernetes service account (a state file is read as `terraform show -json` prints it)"
    )]
    NothingDefined(String),
    #[error("no identity defined in `{path}` matches `{identity}`")]
    NoMatch { path: String, identity: String },
}

/// One identity Terraform defines, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TerraformIdentity {
    /// The resource's address (`module.iam.aws_iam_role.app`).
    pub address: String,
    /// `file:line` (`file` alone for JSON).
    pub defined_at: String,
    /// The baseline's key (the inventory's canonical id), when known.
    pub identity: Option<String>,
    pub in_inventory: bool,
    /// Why it was not approved; `None` when it was.
    pub not_approved: Option<String>,
    /// The facts approved.
    pub governed: Vec<String>,
    /// The facts left out, with why.
    pub ungoverned: BTreeMap<String, String>,
}

/// What approving from Terraform did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TerraformReport {
    /// `terraform:<label>`.
    pub source: String,
    pub identities: Vec<TerraformIdentity>,
}

impl TerraformReport {
    pub fn approved(&self) -> usize {
        self.identities
            .iter()
            .filter(|i| i.not_approved.is_none())
            .count()
    }
}

impl Engine {
    /// Approves, as their baselines, the identities `input` defines with the facts it
    /// declares for them; one audited write naming the source. Unreadable Terraform
    /// approves nothing: a file missing from the view would make every policy it attaches
    /// look added.
    pub fn approve_terraform(
        &mut self,
        input: &TerraformInput,
        opts: TerraformApproval<'_>,
        actor: &str,
        now: Millis,
    ) -> Result<TerraformReport, EngineError> {
        let objects = read(input)?;
        let resources: Vec<Res<'_>> = objects.iter().filter_map(Res::of).collect();
        let mut intents = intents(&resources);
        if intents.is_empty() {
            return Err(TerraformError::NothingDefined(input.label.clone()).into());
        }
        for t in &mut intents {
            self.key(t, opts.account);
        }
        refuse_twice_defined(&mut intents);
        if let Some(q) = opts.identity {
            let wanted = match self.resolve(q) {
                crate::Resolve::Found(i) => Some(i.id.clone()),
                crate::Resolve::NotFound | crate::Resolve::Ambiguous(_) => None,
            };
            intents.retain(|t| {
                t.key
                    .as_deref()
                    .is_some_and(|k| Some(k) == wanted.as_deref() || k == q)
                    || t.res.address == q
                    || t.name == q
            });
            if intents.is_empty() {
                return Err(TerraformError::NoMatch {
                    path: input.label.clone(),
                    identity: q.to_owned(),
                }
                .into());
            }
        }
        let source = format!("terraform:{}", input.label);
        let mut all = self.baselines_approved()?;
        let mut report = Vec::new();
        for t in &intents {
            let in_inventory = t
                .key
                .as_deref()
                .is_some_and(|k| self.inventory.get(k).is_some());
            let mut row = TerraformIdentity {
                address: t.res.address.to_owned(),
                defined_at: t.res.at(),
                identity: t.key.clone(),
                in_inventory,
                not_approved: t.refused.clone(),
                governed: Vec::new(),
                ungoverned: BTreeMap::new(),
            };
            if let (None, Some(key)) = (&t.refused, &t.key) {
                let (facts, mut ungoverned) = t.facts(self.account_of(key));
                // What the inventory shows and Terraform has no word for is not judged.
                if let Some(i) = self.inventory.get(key) {
                    for fact in self.governed(i).into_keys() {
                        if !facts.contains_key(&fact) && fact != "permissions_boundary" {
                            ungoverned
                                .entry(fact)
                                .or_insert_with(|| "Terraform does not declare it".into());
                        }
                    }
                }
                row.governed = facts.keys().cloned().collect();
                row.ungoverned.clone_from(&ungoverned);
                all.insert(
                    key.clone(),
                    Baseline {
                        approved_at: now,
                        approved_by: actor.to_owned(),
                        facts,
                        source: source.clone(),
                        ungoverned,
                    },
                );
            }
            report.push(row);
        }
        let report = TerraformReport {
            source,
            identities: report,
        };
        let approved = report.approved();
        if approved > 0 {
            let doc = serde_json::to_string(&all)
                .map_err(|e| EngineError::Respond(format!("baselines: {e}")))?;
            let audit = AuditEntry {
                at: now,
                actor: actor.to_owned(),
                action: "baseline.approve".into(),
                target: opts.identity.map(str::to_owned),
                detail: Some(format!(
                    "{approved} identities approved from {} ({} not approved)",
                    report.source,
                    report.identities.len() - approved
                )),
                before: None,
                after: None,
            };
            self.store.put_setting(BASELINES, &doc, &audit)?;
        }
        Ok(report)
    }

    /// The key of an identity Terraform defines (the inventory's canonical id), or why it
    /// has none.
    fn key(&self, t: &mut Intent<'_>, account: Option<&str>) {
        if t.refused.is_some() {
            return;
        }
        let noun = t.kind.as_str();
        match t.kind {
            Kind::Role | Kind::User => {
                let kind = t.kind.identity_kind();
                if let Some(id) = t.arn.as_deref().and_then(ids::canonical_iam_arn) {
                    t.key = Some(id);
                    return;
                }
                let found: Vec<&keyward_model::Identity> = self
                    .inventory
                    .iter()
                    .filter(|i| i.kind == kind)
                    .filter(|i| principal_of(i).is_some_and(|p| p.name() == t.name))
                    .filter(|i| account.is_none_or(|a| i.account.as_deref() == Some(a)))
                    .collect();
                match (found.as_slice(), account) {
                    ([one], _) => t.key = Some(one.id.clone()),
                    ([], Some(a)) => t.key = Some(ids::iam(a, noun, &t.name)),
                    ([], None) => {
                        t.refused = Some(format!(
                            "no {noun} named `{}` is in the inventory, and Terraform does not say its account: pass --account",
                            t.name
                        ));
                    }
                    (many, _) => {
                        let accounts: Vec<&str> =
                            many.iter().filter_map(|i| i.account.as_deref()).collect();
                        t.refused = Some(format!(
                            "ambiguous: a {noun} named `{}` is in accounts {}: pass --account",
                            t.name,
                            accounts.join(", ")
                        ));
                    }
                }
            }
            Kind::ServiceAccount => {
                let found: Vec<&keyward_model::Identity> = self
                    .inventory
                    .iter()
                    .filter(|i| i.kind == IdentityKind::ServiceAccount)
                    .filter(|i| {
                        i.id.strip_prefix("k8s:").is_some_and(|rest| {
                            rest.ends_with(&format!(
                                "/system:serviceaccount:{}:{}",
                                t.namespace, t.name
                            ))
                        })
                    })
                    .collect();
                match found.as_slice() {
                    [one] => t.key = Some(one.id.clone()),
                    [] => {
                        t.refused = Some(format!(
                            "service account `{}/{}` is not in the inventory, and Terraform does not say its cluster",
                            t.namespace, t.name
                        ));
                    }
                    many => {
                        let clusters: Vec<&str> =
                            many.iter().filter_map(|i| cluster(&i.id)).collect();
                        t.refused = Some(format!(
                            "ambiguous: service account `{}/{}` is in clusters {}",
                            t.namespace,
                            t.name,
                            clusters.join(", ")
                        ));
                    }
                }
            }
        }
    }

    /// Partition and account (IAM) or cluster (Kubernetes) of a baseline key.
    fn account_of(&self, key: &str) -> Place {
        if let Some(c) = cluster(key) {
            return Place::Cluster(c.to_owned());
        }
        match ids::Arn::parse(key) {
            Some(a) if !a.account.is_empty() => Place::Account {
                partition: a.partition.to_owned(),
                account: a.account.to_owned(),
            },
            Some(_) | None => Place::Unknown,
        }
    }
}

/// The cluster of a service account's canonical id (`k8s:<cluster>/system:serviceaccount:…`).
fn cluster(id: &str) -> Option<&str> {
    id.strip_prefix("k8s:")?
        .split_once("/system:serviceaccount:")
        .map(|(c, _)| c)
}

/// Every identity-bearing resource of the files; any rejected record is an error.
fn read(input: &TerraformInput) -> Result<Vec<SnapshotObject>, TerraformError> {
    #[derive(Default)]
    struct Collect {
        objects: Vec<SnapshotObject>,
        rejected: Option<Diagnostic>,
    }
    impl Sink for Collect {
        fn accept(&mut self, out: Output<'_>) {
            self.objects.extend(out.objects);
        }
        fn reject(&mut self, diag: Diagnostic) {
            self.rejected.get_or_insert(diag);
        }
    }
    let mut objects = Vec::new();
    for (path, bytes) in &input.files {
        let mut sink = Collect::default();
        let ctx = Context::default().with_path(path.clone());
        keyward_normalize::terraform::normalize(bytes, &ctx, &mut sink);
        if let Some(d) = sink.rejected {
            return Err(TerraformError::Unreadable {
                file: path.clone(),
                line: d.line,
                reason: d.reason.to_string(),
            });
        }
        objects.extend(sink.objects);
    }
    Ok(objects)
}

#[cfg(test)]
mod tests;
