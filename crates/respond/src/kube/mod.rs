//! Kubernetes: the equivalent `kubectl` commands and (with the `kubernetes` feature) the
//! connector in `client.rs` that carries the actions out through the API server.

use crate::action::{Action, GRANT_ANNOTATION, MANAGED_BY_LABEL, shell_quote as q};

#[cfg(feature = "kubernetes")]
mod campaign;
#[cfg(feature = "kubernetes")]
mod client;
#[cfg(feature = "kubernetes")]
pub use campaign::KubeSecretIndex;
#[cfg(feature = "kubernetes")]
pub use client::{KubeConnector, KubeOptions, RolloutCheck};

/// `kubectl` with the cluster's context when the plan knows the cluster's name.
fn kubectl(cluster: &Option<String>) -> String {
    match cluster {
        Some(c) => format!("kubectl --context {}", q(c)),
        None => "kubectl".into(),
    }
}

/// jq: whether the subject `.` of a binding in namespace `$bns` (null for a
/// ClusterRoleBinding) is the service account `$ns`/`$sa` — as the RBAC authorizer reads it
/// (an empty subject namespace in a RoleBinding is the binding's), or the user its tokens
/// authenticate as.
const JQ_NAMES_SA: &str = r#"(.kind == "ServiceAccount" and .name == $sa and (.namespace // $bns) == $ns) or (.kind == "User" and .name == "system:serviceaccount:" + $ns + ":" + $sa)"#;

/// jq: the service account a Deployment's pod template runs as.
const JQ_TEMPLATE_SA: &str = r#"(.spec.template.spec.serviceAccountName // .spec.template.spec.serviceAccount // "default")"#;

/// `--arg ns NS --arg sa SA`, quoted for the shell.
fn jq_args(namespace: &str, service_account: &str) -> String {
    format!("--arg ns {} --arg sa {}", q(namespace), q(service_account))
}

/// The deployments of `ns` running as `sa`, one name a line.
fn deployments_running_as(k: &str, ns: &str, sa: &str) -> String {
    format!(
        "{k} -n {ns} get deployments -o json | jq -r --arg sa {sa} '.items[] | select({JQ_TEMPLATE_SA} == $sa) | .metadata.name'",
        ns = q(ns),
        sa = q(sa),
    )
}

pub(crate) fn commands(action: &Action) -> Vec<String> {
    match action {
        Action::RemoveBindings {
            cluster,
            namespace,
            service_account,
            known,
        } => {
            let k = kubectl(cluster);
            let args = jq_args(namespace, service_account);
            let mut out = vec![
                format!(
                    "{k} get rolebindings,clusterrolebindings -A -o json | jq -r {args} '.items[] | .metadata.namespace as $bns | select(any(.subjects[]?; {JQ_NAMES_SA})) | .kind + \"/\" + (if $bns then $bns + \"/\" else \"\" end) + .metadata.name'"
                ),
                // Only the account's subjects go; a binding left with none grants nothing (the
                // connector deletes it). `replace` fails if a binding changed in between.
                format!(
                    "{k} get rolebindings,clusterrolebindings -A -o json | jq {args} '{{apiVersion: \"v1\", kind: \"List\", items: [.items[] | .metadata.namespace as $bns | select(any(.subjects[]?; {JQ_NAMES_SA})) | .subjects |= map(select(({JQ_NAMES_SA}) | not))]}}' | {k} replace -f -"
                ),
            ];
            if !known.is_empty() {
                out.push(format!("# known when planned: {}", known.join(", ")));
            }
            out
        }
        Action::DeleteTokenSecrets {
            cluster,
            namespace,
            service_account,
        } => vec![format!(
            "{k} -n {ns} get secrets --field-selector type=kubernetes.io/service-account-token -o json | jq -r --arg sa {sa} '.items[] | select(.metadata.annotations[\"kubernetes.io/service-account.name\"] == $sa) | .metadata.name' | xargs -r {k} -n {ns} delete secret",
            k = kubectl(cluster),
            ns = q(namespace),
            sa = q(service_account),
        )],
        Action::RestartPods {
            cluster,
            namespace,
            service_account,
        } => vec![format!(
            "{} -n {} delete pods --field-selector {}",
            kubectl(cluster),
            q(namespace),
            q(&format!("spec.serviceAccountName={service_account}")),
        )],
        Action::BlueGreen {
            cluster,
            namespace,
            service_account,
            replacement,
        } => {
            let k = kubectl(cluster);
            let ns = q(namespace);
            let r = q(replacement);
            let args = jq_args(namespace, service_account);
            vec![
                format!("{k} -n {ns} create serviceaccount {r}"),
                format!(
                    "{k} -n {ns} label serviceaccount {r} app.kubernetes.io/managed-by=keyward"
                ),
                // `create` refuses an empty list: only when a binding names the account.
                format!(
                    "copies=$({k} get rolebindings,clusterrolebindings -A -o json | jq {args} --arg r {r} '{{apiVersion: \"v1\", kind: \"List\", items: [.items[] | .metadata.namespace as $bns | select(any(.subjects[]?; {JQ_NAMES_SA})) | {{apiVersion, kind, metadata: ({{name: (.metadata.name + \"-\" + $r), labels: {{\"app.kubernetes.io/managed-by\": \"keyward\"}}}} + if $bns then {{namespace: $bns}} else {{}} end), roleRef, subjects: [{{kind: \"ServiceAccount\", name: $r, namespace: $ns}}]}}]}}'); if [ \"$(jq '.items | length' <<< \"$copies\")\" -gt 0 ]; then {k} create -f - <<< \"$copies\"; fi"
                ),
                format!(
                    "{} | xargs -r -I{{}} {k} -n {ns} set serviceaccount deployment/{{}} {r}",
                    deployments_running_as(&k, namespace, service_account)
                ),
                format!(
                    "{} | xargs -r -I{{}} {k} -n {ns} rollout status deployment/{{}}",
                    deployments_running_as(&k, namespace, replacement)
                ),
                format!("{k} -n {ns} delete serviceaccount {}", q(service_account)),
            ]
        }
        Action::DeleteBinding {
            cluster,
            kind,
            namespace,
            name,
        } => {
            let k = kubectl(cluster);
            match namespace {
                Some(ns) => vec![format!(
                    "{k} -n {} delete {} {}",
                    q(ns),
                    kind.resource(),
                    q(name)
                )],
                None => vec![format!("{k} delete {} {}", kind.resource(), q(name))],
            }
        }
        Action::CreateBinding {
            cluster,
            kind,
            namespace,
            name,
            role_kind,
            role,
            sa_namespace,
            service_account,
            grant,
        } => {
            let k = kubectl(cluster);
            let ns = namespace
                .as_deref()
                .map_or_else(String::new, |n| format!(" -n {}", q(n)));
            let object = format!("{}{ns} {}", kind.resource(), q(name));
            vec![
                format!(
                    "{k}{ns} create {object_kind} {n} {flag}={role} --serviceaccount={sa}",
                    object_kind = kind.resource(),
                    n = q(name),
                    flag = role_kind.flag(),
                    role = q(role),
                    sa = q(&format!("{sa_namespace}:{service_account}")),
                ),
                format!("{k} label {object} {MANAGED_BY_LABEL}=keyward"),
                format!(
                    "{k} annotate {object} {}",
                    q(&format!("{GRANT_ANNOTATION}={grant}"))
                ),
            ]
        }
        Action::DenyAll { .. }
        | Action::RevokeSessions { .. }
        | Action::DeactivateAccessKey { .. }
        | Action::DeleteLoginProfile { .. }
        | Action::ListMfaDevices { .. }
        | Action::DenyWebIdentitySubject { .. }
        | Action::CreateAccessKey { .. }
        | Action::PromoteSecretVersion { .. }
        | Action::RestoreBaseline { .. }
        | Action::UpdateSecretValue { .. }
        | Action::VerifyAccessKey { .. }
        | Action::DisableVaultEntity { .. }
        | Action::RevokeVaultToken { .. }
        | Action::RevokeVaultLeases { .. }
        | Action::IssueVaultToken { .. }
        | Action::WriteVaultToken { .. }
        | Action::VerifyVaultToken { .. }
        | Action::Delete { .. }
        | Action::AttachPolicy { .. }
        | Action::AddToGroup { .. }
        | Action::Review { .. } => Vec::new(),
    }
}

pub(crate) fn undo_commands(action: &Action) -> Vec<String> {
    match action {
        Action::RemoveBindings { cluster, .. } | Action::DeleteBinding { cluster, .. } => vec![format!(
            "{} apply -f DIR/kubernetes-objects.json  # the bindings as they were: `keyward respond evidence PLAN -o DIR`",
            kubectl(cluster)
        )],
        Action::DeleteTokenSecrets {
            cluster,
            namespace,
            service_account,
        } => vec![format!(
            "{} -n {} apply -f DIR/kubernetes-objects.json  # each deleted token secret by name, without data, annotated kubernetes.io/service-account.name={}: the token controller fills in a new token (the old ones stay invalid)",
            kubectl(cluster),
            q(namespace),
            q(service_account)
        )],
        Action::RestartPods { .. } => vec![
            "# restarted pods cannot be brought back: their controllers made new ones; a bare pod is re-created from its manifest".into(),
        ],
        Action::BlueGreen {
            cluster,
            namespace,
            service_account,
            replacement,
        } => {
            let k = kubectl(cluster);
            let ns = q(namespace);
            let r = q(replacement);
            let sa = q(service_account);
            vec![
                format!("{k} -n {ns} create serviceaccount {sa}  # its bindings still name it; new tokens"),
                format!(
                    "{} | xargs -r -I{{}} {k} -n {ns} set serviceaccount deployment/{{}} {sa}",
                    deployments_running_as(&k, namespace, replacement)
                ),
                format!(
                    "{k} get rolebindings,clusterrolebindings -A -o json | jq -r --arg r {r} '.items[] | select(.metadata.labels[\"app.kubernetes.io/managed-by\"] == \"keyward\" and (.metadata.name | endswith(\"-\" + $r))) | if .metadata.namespace then \"-n \" + .metadata.namespace + \" delete rolebinding \" + .metadata.name else \"delete clusterrolebinding \" + .metadata.name end' | xargs -r -L1 {k}"
                ),
                format!("{k} -n {ns} delete serviceaccount {r}"),
            ]
        }
        Action::CreateBinding {
            cluster,
            kind,
            namespace,
            name,
            ..
        } => vec![match namespace {
            Some(ns) => format!(
                "{} -n {} delete {} {}",
                kubectl(cluster),
                q(ns),
                kind.resource(),
                q(name)
            ),
            None => format!("{} delete {} {}", kubectl(cluster), kind.resource(), q(name)),
        }],
        Action::DenyAll { .. }
        | Action::RevokeSessions { .. }
        | Action::DeactivateAccessKey { .. }
        | Action::DeleteLoginProfile { .. }
        | Action::ListMfaDevices { .. }
        | Action::DenyWebIdentitySubject { .. }
        | Action::CreateAccessKey { .. }
        | Action::PromoteSecretVersion { .. }
        | Action::RestoreBaseline { .. }
        | Action::UpdateSecretValue { .. }
        | Action::VerifyAccessKey { .. }
        | Action::DisableVaultEntity { .. }
            | Action::RevokeVaultToken { .. }
            | Action::RevokeVaultLeases { .. }
            | Action::IssueVaultToken { .. }
            | Action::WriteVaultToken { .. }
            | Action::VerifyVaultToken { .. }
            | Action::Delete { .. }
            | Action::AttachPolicy { .. }
            | Action::AddToGroup { .. }
            | Action::Review { .. } => Vec::new(),
    }
}
