//! Kubernetes: the equivalent `kubectl` commands and (with the `kubernetes` feature) the
//! connector in `client.rs` that carries the actions out through the API server.

use crate::action::{Action, shell_quote as q};

#[cfg(feature = "kubernetes")]
mod client;
#[cfg(feature = "kubernetes")]
pub use client::{KubeConnector, KubeOptions, RolloutCheck};

/// `kubectl` with the cluster's context when the plan knows the cluster's name.
fn kubectl(cluster: &Option<String>) -> String {
    match cluster {
        Some(c) => format!("kubectl --context {}", q(c)),
        None => "kubectl".into(),
    }
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
            let mut out = vec![format!(
                "{k} get rolebindings,clusterrolebindings -A -o json | jq '.items[] | select(.subjects[]? | .kind==\"ServiceAccount\" and .name==\"{service_account}\" and .namespace==\"{namespace}\") | .kind + \"/\" + .metadata.name'"
            )];
            for b in known {
                let mut parts = b.splitn(3, '/');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some("ClusterRoleBinding"), Some(name), None) => {
                        out.push(format!("{k} delete clusterrolebinding {}", q(name)))
                    }
                    (Some("RoleBinding"), Some(ns), Some(name)) => {
                        out.push(format!("{k} -n {} delete rolebinding {}", q(ns), q(name)))
                    }
                    _ => {}
                }
            }
            out
        }
        Action::DeleteTokenSecrets {
            cluster,
            namespace,
            service_account,
        } => vec![format!(
            "{k} -n {ns} get secrets --field-selector type=kubernetes.io/service-account-token -o json | jq -r '.items[] | select(.metadata.annotations[\"kubernetes.io/service-account.name\"]==\"{service_account}\") | .metadata.name' | xargs -r {k} -n {ns} delete secret",
            k = kubectl(cluster),
            ns = q(namespace),
        )],
        Action::RestartPods {
            cluster,
            namespace,
            service_account,
        } => vec![format!(
            "{k} -n {ns} get pods -o json | jq -r '.items[] | select(.spec.serviceAccountName==\"{service_account}\") | .metadata.name' | xargs -r {k} -n {ns} delete pod",
            k = kubectl(cluster),
            ns = q(namespace),
        )],
        Action::BlueGreen {
            cluster,
            namespace,
            service_account,
            replacement,
        } => {
            let k = kubectl(cluster);
            let ns = q(namespace);
            vec![
                format!("{k} -n {ns} create serviceaccount {}", q(replacement)),
                format!("# copy each binding of {service_account} to {replacement}"),
                format!(
                    "{k} -n {ns} set serviceaccount deployment/DEPLOYMENT {}",
                    q(replacement)
                ),
                format!("{k} -n {ns} rollout status deployment/DEPLOYMENT"),
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
        _ => Vec::new(),
    }
}

pub(crate) fn undo_commands(action: &Action) -> Vec<String> {
    match action {
        Action::RemoveBindings { cluster, .. }
        | Action::DeleteTokenSecrets { cluster, .. }
        | Action::DeleteBinding { cluster, .. } => vec![format!(
            "{} apply -f evidence/kubernetes-objects.yaml  # the objects as they were, from `keyward respond evidence`",
            kubectl(cluster)
        )],
        Action::BlueGreen {
            cluster,
            namespace,
            service_account,
            ..
        } => vec![format!(
            "{} -n {} set serviceaccount deployment/DEPLOYMENT {}  # after re-creating it from the evidence",
            kubectl(cluster),
            q(namespace),
            q(service_account)
        )],
        _ => Vec::new(),
    }
}
