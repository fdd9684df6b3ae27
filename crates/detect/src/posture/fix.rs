//! The commands the controls' remediations share: disabling and retiring an IAM user, an
//! IAM role or a Kubernetes service account, naming an access key, taking a subject out of
//! a binding, an explicit deny policy, and the note for identities Terraform defines.
//!
//! Every name, id, ARN and document goes through [`q`]. Where Keyward does not know a
//! value (a key the credential report names only by slot, the policies of a principal no
//! IAM snapshot lists), the command looks it up or the step says what to look up.

use keyward_model::ids;
use keyward_model::{Credential, CredentialKind, CredentialStatus, Identity, IdentityKind};
use serde_json::{Value, json};

use super::{Definition, active_keys};
use crate::remediation::{Step, shell_quote as q};

/// The inline policy that disables an IAM role (or a user) by denying it everything.
pub(super) const DENY_ALL: &str = "KeywardDenyAll";

/// An IAM principal as the CLI names it: `user`, `role` or `group`, and its name.
#[derive(Debug, Clone, Copy)]
pub(super) struct Principal<'a> {
    pub noun: &'static str,
    pub name: &'a str,
}

impl Principal<'_> {
    /// `--role-name 'x'`.
    pub fn arg(&self) -> String {
        format!("--{}-name {}", self.noun, q(self.name))
    }

    /// `aws iam put-<noun>-policy` of an inline policy.
    pub fn put_policy(&self, policy: &str, doc: &Value) -> String {
        format!(
            "aws iam put-{}-policy {} --policy-name {} --policy-document {}",
            self.noun,
            self.arg(),
            q(policy),
            q(&keyward_model::json::sorted(doc))
        )
    }

    /// `aws iam delete-<noun>-policy` of an inline policy.
    pub fn delete_policy(&self, policy: &str) -> String {
        format!(
            "aws iam delete-{}-policy {} --policy-name {}",
            self.noun,
            self.arg(),
            q(policy)
        )
    }
}

/// The identity as an IAM principal, when it is an IAM user or role.
pub(super) fn principal(i: &Identity) -> Option<Principal<'_>> {
    let noun = match i.kind {
        IdentityKind::IamUser => "user",
        IdentityKind::IamRole => "role",
        _ => return None,
    };
    Some(Principal {
        noun,
        name: &i.name,
    })
}

/// A policy document of one statement.
pub(super) fn policy(statement: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": [statement]})
}

fn deny_all() -> Value {
    policy(json!({"Effect": "Deny", "Action": "*", "Resource": "*"}))
}

/// A list of strings in the identity's details, if the details have the key (an IAM
/// snapshot lists policies and groups; without one they are unknown, not empty).
pub(super) fn detail_list(i: &Identity, key: &str) -> Option<Vec<String>> {
    let v = i.details.get(key)?.as_array()?;
    Some(
        v.iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
    )
}

/// Whether the account's credential report listed the identity: then its keys and
/// password are known, by slot.
fn reported(i: &Identity) -> bool {
    i.sources.contains("iam-credential-report")
}

/// The second a credential was created, as `CreateDate` starts in `aws iam` answers.
fn second(t: i64) -> String {
    let s = keyward_model::time::format(t);
    s.get(..19).unwrap_or(&s).to_owned()
}

/// An access key as the value of `--access-key-id`: its id when known, otherwise a lookup
/// of the user's key created at that second (the credential report names keys by slot,
/// not by id); `None` when neither is known.
pub(super) fn key_arg(user: &str, k: &Credential) -> Option<String> {
    if ids::access_key_type(&k.id).is_some() {
        return Some(q(&k.id));
    }
    let created = second(k.created?);
    let query = format!("AccessKeyMetadata[?starts_with(CreateDate, `\"{created}\"`)].AccessKeyId");
    Some(format!(
        "\"$(aws iam list-access-keys --user-name {} --query {} --output text)\"",
        q(user),
        q(&query)
    ))
}

/// How a summary names an access key.
pub(super) fn key_label(k: &Credential) -> String {
    match (ids::access_key_type(&k.id).is_some(), k.created) {
        (true, _) => format!("`{}`", k.id),
        (false, Some(c)) => format!(
            "the key created {} (credential report slot `{}`)",
            keyward_model::time::format(c),
            k.id
        ),
        (false, None) => format!("credential report slot `{}`", k.id),
    }
}

pub(super) fn deactivate_key(user: &str, arg: &str) -> String {
    format!(
        "aws iam update-access-key --user-name {} --access-key-id {arg} --status Inactive",
        q(user)
    )
}

pub(super) fn delete_key(user: &str, arg: &str) -> String {
    format!(
        "aws iam delete-access-key --user-name {} --access-key-id {arg}",
        q(user)
    )
}

/// The same command for every key of the user the lookup `filter` selects (a JMESPath
/// filter of `AccessKeyMetadata`), for keys Keyward cannot name.
fn each_key(user: &str, filter: &str, command: fn(&str, &str) -> String) -> String {
    let query = format!("AccessKeyMetadata[{filter}].AccessKeyId");
    format!(
        "for k in $(aws iam list-access-keys --user-name {} --query {} --output text); do {}; done",
        q(user),
        q(&query),
        command(user, "\"$k\"")
    )
}

/// Commands that apply `command` to `keys` by name, or to every key the lookup `filter`
/// selects when some of them cannot be named or the credential report did not list the
/// user (then keys Keyward never saw may exist).
fn keys_or_lookup(
    i: &Identity,
    keys: &[&Credential],
    filter: &str,
    command: fn(&str, &str) -> String,
) -> Vec<String> {
    let user = i.name.as_str();
    let named: Option<Vec<String>> = keys
        .iter()
        .map(|k| key_arg(user, k).map(|a| command(user, &a)))
        .collect();
    match named {
        Some(named) if reported(i) => named,
        _ => vec![each_key(user, filter, command)],
    }
}

/// The user's keys that still exist, as the credential report's slots when it listed the
/// user (key ids seen in CloudTrail are the same keys again).
fn existing_keys(i: &Identity) -> Vec<&Credential> {
    let slots = reported(i);
    i.credentials
        .iter()
        .filter(|c| {
            c.kind == CredentialKind::AccessKey
                && c.status != CredentialStatus::Deleted
                && (!slots || ids::access_key_type(&c.id).is_none())
        })
        .collect()
}

fn has_password(i: &Identity) -> bool {
    i.credentials
        .iter()
        .any(|c| c.kind == CredentialKind::Password && c.status == CredentialStatus::Active)
}

/// Disabling the identity in a way that can be undone: what to take now.
pub(super) fn disable(i: &Identity) -> Step {
    match i.kind {
        IdentityKind::IamUser => disable_user(i),
        IdentityKind::IamRole => {
            let r = Principal {
                noun: "role",
                name: &i.name,
            };
            Step::now(
                format!(
                    "Disable role `{}` with an inline policy that denies everything: unlike \
                     emptying its trust policy it also stops sessions already issued, it \
                     leaves the trust policy as it is, and `{}` undoes it",
                    i.name,
                    r.delete_policy(DENY_ALL)
                ),
                vec![r.put_policy(DENY_ALL, &deny_all())],
            )
        }
        IdentityKind::ServiceAccount => disable_service_account(i),
        // Posture evaluates only IAM users and roles and service accounts.
        _ => Step::now(
            format!("Disable `{}` where it is defined", i.id),
            Vec::new(),
        ),
    }
}

fn disable_user(i: &Identity) -> Step {
    let user = i.name.as_str();
    let keys = active_keys(i);
    let mut commands = if keys.is_empty() && reported(i) {
        Vec::new()
    } else {
        keys_or_lookup(i, &keys, "?Status==`\"Active\"`", deactivate_key)
    };
    let mut summary =
        format!("Disable user `{user}`: deactivate its access keys (`--status Active` undoes it)");
    if has_password(i) {
        commands.push(format!(
            "aws iam delete-login-profile --user-name {}",
            q(user)
        ));
        summary.push_str(" and delete its console password (it can be set again, not restored)");
    } else if !reported(i) {
        summary.push_str(&format!(
            "; Keyward has no credential report for it: `aws iam get-login-profile --user-name {}` \
             shows whether it has a console password to delete as well",
            q(user)
        ));
    }
    Step::now(summary, commands)
}

fn disable_service_account(i: &Identity) -> Step {
    let (ns, cluster) = (
        i.namespace.as_deref().unwrap_or("default"),
        i.cluster.as_deref().unwrap_or_default(),
    );
    let bindings = bindings_of(i);
    let mut commands = Vec::new();
    for (binding, _) in &bindings {
        commands.extend(unbind(
            cluster,
            binding,
            &Subject::service_account(&i.name, ns),
            false,
        ));
    }
    let summary = if bindings.is_empty() {
        format!(
            "Service account `{ns}/{}` has no binding in the cluster's snapshot: nothing to \
             take away before deleting it",
            i.name
        )
    } else {
        format!(
            "Take service account `{ns}/{}` out of its bindings ({}); other subjects keep \
             theirs, and adding it back undoes it",
            i.name,
            bindings
                .iter()
                .map(|(b, _)| b.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Step::now(summary, commands)
}

/// A service account's bindings from its snapshot: (`RoleBinding ns/name`, `ClusterRole x`).
pub(super) fn bindings_of(i: &Identity) -> Vec<(String, String)> {
    i.details
        .get("bindings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| {
            Some((
                b.get("binding")?.as_str()?.to_owned(),
                b.get("role")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Deleting the identity after the grace period, with what has to go first.
pub(super) fn retire(i: &Identity) -> Step {
    match i.kind {
        IdentityKind::IamUser => retire_user(i),
        IdentityKind::IamRole => retire_role(i),
        IdentityKind::ServiceAccount => {
            let ns = i.namespace.as_deref().unwrap_or("default");
            Step::later(
                format!(
                    "Delete service account `{ns}/{}` (its tokens stop working with it)",
                    i.name
                ),
                vec![format!(
                    "{} -n {} delete serviceaccount {}",
                    kubectl(i.cluster.as_deref().unwrap_or_default()),
                    q(ns),
                    q(&i.name)
                )],
            )
        }
        // Posture evaluates only IAM users and roles and service accounts.
        _ => Step::later(format!("Delete `{}` where it is defined", i.id), Vec::new()),
    }
}

/// What a principal's policies and groups are, from its IAM snapshot: commands that remove
/// them, or (without a snapshot) commands that list them and a note saying so.
fn detach_all(i: &Identity, p: Principal<'_>, out: &mut Vec<String>, notes: &mut Vec<String>) {
    let inline = detail_list(i, "inline_policies");
    let attached = detail_list(i, "attached_policies");
    match (&inline, &attached) {
        (Some(inline), Some(attached)) => {
            for arn in attached {
                out.push(format!(
                    "aws iam detach-{}-policy {} --policy-arn {}",
                    p.noun,
                    p.arg(),
                    q(arn)
                ));
            }
            // The deny-all is deleted last, by `retire_role`.
            for name in inline.iter().filter(|n| *n != DENY_ALL) {
                out.push(p.delete_policy(name));
            }
        }
        _ => {
            out.push(format!("aws iam list-{}-policies {}", p.noun, p.arg()));
            out.push(format!(
                "aws iam list-attached-{}-policies {}",
                p.noun,
                p.arg()
            ));
            notes.push(format!(
                "no IAM snapshot lists its policies: detach and delete the ones these list first \
                 (`aws iam detach-{n}-policy`, `aws iam delete-{n}-policy`)",
                n = p.noun
            ));
        }
    }
}

fn retire_user(i: &Identity) -> Step {
    let user = i.name.as_str();
    let p = Principal {
        noun: "user",
        name: user,
    };
    let mut commands = Vec::new();
    let mut notes = Vec::new();
    let keys = existing_keys(i);
    if !(keys.is_empty() && reported(i)) {
        commands.extend(keys_or_lookup(i, &keys, "", delete_key));
    }
    detach_all(i, p, &mut commands, &mut notes);
    match detail_list(i, "groups") {
        Some(groups) => {
            for g in groups {
                commands.push(format!(
                    "aws iam remove-user-from-group --group-name {} --user-name {}",
                    q(&g),
                    q(user)
                ));
            }
        }
        None => {
            commands.push(format!(
                "aws iam list-groups-for-user --user-name {}",
                q(user)
            ));
            notes.push(
                "remove it from the groups this lists (`aws iam remove-user-from-group`)".into(),
            );
        }
    }
    commands.push(format!("aws iam delete-user --user-name {}", q(user)));
    notes.push(
        "`delete-user` also needs its MFA devices, signing certificates, SSH keys and \
         service-specific credentials gone, which Keyward does not track"
            .into(),
    );
    Step::later(
        format!(
            "Delete user `{user}` and what it holds: {}",
            notes.join("; ")
        ),
        commands,
    )
}

fn retire_role(i: &Identity) -> Step {
    let role = i.name.as_str();
    let p = Principal {
        noun: "role",
        name: role,
    };
    let mut commands = Vec::new();
    let mut notes = Vec::new();
    match detail_list(i, "instance_profiles") {
        Some(profiles) => {
            for ip in profiles {
                commands.push(format!(
                    "aws iam remove-role-from-instance-profile --instance-profile-name {} --role-name {}",
                    q(&ip),
                    q(role)
                ));
            }
        }
        None => {
            commands.push(format!(
                "aws iam list-instance-profiles-for-role --role-name {}",
                q(role)
            ));
            notes.push(
                "take it out of the instance profiles this lists \
                 (`aws iam remove-role-from-instance-profile`)"
                    .into(),
            );
        }
    }
    detach_all(i, p, &mut commands, &mut notes);
    commands.push(p.delete_policy(DENY_ALL));
    commands.push(format!("aws iam delete-role --role-name {}", q(role)));
    let mut summary = format!(
        "Delete role `{role}`, after its instance profiles and policies (the deny-all included)"
    );
    if !notes.is_empty() {
        summary.push_str(": ");
        summary.push_str(&notes.join("; "));
    }
    Step::later(summary, commands)
}

/// `kubectl` for a cluster: its context named as Keyward names the cluster.
pub(super) fn kubectl(cluster: &str) -> String {
    if cluster.is_empty() {
        "kubectl".into()
    } else {
        format!("kubectl --context {}", q(cluster))
    }
}

/// A binding's subject.
pub(super) struct Subject<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    /// A service account's namespace.
    pub namespace: Option<&'a str>,
}

impl<'a> Subject<'a> {
    pub fn service_account(name: &'a str, namespace: &'a str) -> Subject<'a> {
        Subject {
            kind: "ServiceAccount",
            name,
            namespace: Some(namespace),
        }
    }
}

/// A binding as Keyward names it (`RoleBinding ns/name`, `ClusterRoleBinding name`): its
/// `kubectl` resource, namespace and name.
pub(super) fn parse_binding(binding: &str) -> Option<(&'static str, Option<&str>, &str)> {
    let (kind, rest) = binding.split_once(' ')?;
    match kind {
        "RoleBinding" => {
            let (ns, name) = rest.split_once('/')?;
            Some(("rolebinding", Some(ns), name))
        }
        "ClusterRoleBinding" => Some(("clusterrolebinding", None, rest)),
        _ => None,
    }
}

/// The `kubectl` change that takes `subject` out of `binding`: deleting the binding when
/// it is the only subject (`sole`), otherwise rewriting the live binding without it (the
/// values are `jq --arg`s, never part of the filter; `replace` fails if the binding
/// changed meanwhile).
pub(super) fn unbind(
    cluster: &str,
    binding: &str,
    subject: &Subject<'_>,
    sole: bool,
) -> Vec<String> {
    let Some((resource, ns, name)) = parse_binding(binding) else {
        return Vec::new();
    };
    let k = kubectl(cluster);
    let target = match ns {
        Some(ns) => format!("{k} -n {} {{}} {resource} {}", q(ns), q(name)),
        None => format!("{k} {{}} {resource} {}", q(name)),
    };
    if sole {
        return vec![target.replace("{}", "delete")];
    }
    let filter = match subject.namespace {
        // A service account subject of a RoleBinding may leave out its namespace.
        Some(_) => {
            "del(.subjects[]? | select(.kind == $kind and .name == $name and (.namespace // $bns) == $ns))"
        }
        None => "del(.subjects[]? | select(.kind == $kind and .name == $name))",
    };
    let mut args = format!(
        "--arg kind {} --arg name {}",
        q(subject.kind),
        q(subject.name)
    );
    if let Some(sns) = subject.namespace {
        args.push_str(&format!(
            " --arg ns {} --arg bns {}",
            q(sns),
            q(ns.unwrap_or_default())
        ));
    }
    vec![format!(
        "{} -o json | jq {args} {} | {k} replace -f -",
        target.replace("{}", "get"),
        q(filter)
    )]
}

/// The Terraform note: where Terraform defines the identity and what to change there.
pub(super) fn terraform(defs: &[Definition], change: &str) -> Option<String> {
    if defs.is_empty() {
        return None;
    }
    let at: Vec<String> = defs
        .iter()
        .map(|d| format!("`{}` ({})", d.address, d.source))
        .collect();
    Some(format!(
        "{} defines it: {change}, then `terraform plan` and `terraform apply`; a change made \
         only with the commands is reverted by the next apply",
        at.join(", ")
    ))
}

/// A canonical IAM ARN (which drops the path) as the resources a statement must name to
/// cover the principal whatever its path.
pub(super) fn any_path(arn: &str) -> Vec<String> {
    match arn.rsplit_once('/') {
        Some((head, name)) if arn.starts_with("arn:aws:iam::") => {
            vec![arn.to_owned(), format!("{head}/*/{name}")]
        }
        _ => vec![arn.to_owned()],
    }
}
