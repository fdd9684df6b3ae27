//! Kubernetes manifests (YAML, multi-document, or JSON), read object by object with
//! `keyward_normalize::k8s_snapshot::objects`. Checked: bindings to `cluster-admin`, roles
//! with `*` in verbs, resources or apiGroups, and service accounts or workloads that mount a
//! token although no binding in the checked manifests names the account.
//!
//! The automount rule is deliberately simple: every manifest of the run is one cluster;
//! a binding anywhere in it to a service account (by namespace and name) is a role bound,
//! whether or not the role exists; a pod's own `automountServiceAccountToken` wins over its
//! account's, and unset means mounted (as the API server does it).

use keyward_graph::k8s::{is_cluster_admin, name_ns, rules_of};
use keyward_graph::k8s_posture::{bound, pod_spec, sa_automount};
use keyward_model::Diagnostic;
use keyward_normalize::{Output, Sink};
use serde_json::Value;

use super::locate::Text;
use super::{Input, InputError, Problem, Report, Rule, Severity};

/// One file's objects, each with the line its document starts on and where the next
/// object starts.
pub(crate) struct Manifest<'a> {
    path: &'a str,
    text: Text<'a>,
    objects: Vec<(u64, Option<u64>, Value)>,
}

/// Rejections of the object reader.
#[derive(Default)]
struct Rejected(Vec<Diagnostic>);

impl Sink for Rejected {
    fn accept(&mut self, _: Output<'_>) {}
    fn reject(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
}

/// Reads a manifest file; a Helm template (`{{ … }}`) is skipped (render it first), a
/// broken document is an error naming its line.
pub(crate) fn read<'a>(input: Input<'a>, report: &mut Report) -> Option<Manifest<'a>> {
    if input.bytes.windows(2).any(|w| w == b"{{") && !input.path.ends_with(".json") {
        report.skipped.push((
            input.path.to_owned(),
            "a template (`{{ … }}`): check the rendered manifests".into(),
        ));
        return None;
    }
    let mut rejected = Rejected::default();
    let objects = keyward_normalize::k8s_snapshot::objects(input.bytes, &mut rejected);
    for d in rejected.0 {
        report.errors.push(InputError {
            file: input.path.to_owned(),
            line: d.line.max(1),
            reason: d.reason.to_string(),
        });
    }
    let starts: Vec<u64> = objects.iter().map(|(l, _)| *l).collect();
    let objects = objects
        .into_iter()
        .map(|(line, v)| {
            let until = starts.iter().copied().find(|s| *s > line);
            (line.max(1), until, v)
        })
        .collect();
    Some(Manifest {
        path: input.path,
        text: Text::new(input.bytes),
        objects,
    })
}

fn kind(o: &Value) -> &str {
    o.get("kind").and_then(Value::as_str).unwrap_or_default()
}

/// `Kind/namespace/name` (or `Kind/name`): what a problem's key starts with.
fn object_key(o: &Value) -> String {
    let (name, ns) = name_ns(o);
    match ns {
        Some(ns) => format!("{}/{ns}/{name}", kind(o)),
        None => format!("{}/{name}", kind(o)),
    }
}

/// Judges every object of every manifest together (see the module's notes).
pub(crate) fn judge(manifests: &[Manifest<'_>], out: &mut Vec<Problem>) {
    let all = || {
        manifests
            .iter()
            .flat_map(|m| m.objects.iter().map(move |(l, u, o)| (m, *l, *u, o)))
    };
    // Every object of the run, for the graph's questions about service accounts.
    let objects: Vec<Value> = all().map(|(_, _, _, o)| o.clone()).collect();
    for (m, line, until, o) in all() {
        let (name, ns) = name_ns(o);
        let problem =
            |rule: Rule, severity: Severity, detail: &str, then: &[&str], message: String| {
                // The object's name first: objects of one `List` share their start line.
                let mut needles = vec![name.as_str()];
                needles.extend_from_slice(then);
                let at = m.text.find(line, until, &needles);
                Problem {
                    rule,
                    severity,
                    message,
                    file: m.path.to_owned(),
                    line: at.line,
                    column: at.column,
                    key: format!("{}/{detail}", object_key(o)),
                    baselined: false,
                }
            };
        match kind(o) {
            k @ ("RoleBinding" | "ClusterRoleBinding") => {
                let role = o.get("roleRef");
                let role_kind = role.and_then(|r| r.get("kind")).and_then(Value::as_str);
                let role_name = role.and_then(|r| r.get("name")).and_then(Value::as_str);
                if role_kind == Some("ClusterRole") && role_name == Some("cluster-admin") {
                    let (severity, scope) = match k {
                        "ClusterRoleBinding" => (Severity::High, "the whole cluster".to_owned()),
                        _ => (
                            Severity::Medium,
                            format!("namespace `{}`", ns.as_deref().unwrap_or("default")),
                        ),
                    };
                    out.push(problem(
                        Rule::ClusterAdminBinding,
                        severity,
                        "cluster-admin",
                        &["roleRef", "cluster-admin"],
                        format!("{k} `{name}` grants cluster-admin in {scope}"),
                    ));
                }
            }
            k @ ("Role" | "ClusterRole") => {
                let rules = rules_of(o);
                let star = |l: &[String]| l.iter().any(|x| x == "*");
                let mut fields = Vec::new();
                for (field, any) in [
                    ("verbs", rules.iter().any(|r| star(&r.verbs))),
                    ("resources", rules.iter().any(|r| star(&r.resources))),
                    ("apiGroups", rules.iter().any(|r| star(&r.api_groups))),
                ] {
                    if any {
                        fields.push(field);
                    }
                }
                if let Some(first) = fields.first() {
                    let severity = if is_cluster_admin(&rules) {
                        Severity::High
                    } else {
                        Severity::Medium
                    };
                    out.push(problem(
                        Rule::WildcardRbacRole,
                        severity,
                        "wildcard",
                        &["rules", first, "*"],
                        format!("{k} `{name}` has `*` in {}", fields.join(", ")),
                    ));
                }
            }
            "ServiceAccount" => {
                let ns = ns.unwrap_or_else(|| "default".into());
                if automount(o) != Some(false) && !bound(&objects, &ns, &name) {
                    out.push(problem(
                        Rule::TokenAutomount,
                        Severity::Low,
                        "automount",
                        &[],
                        format!(
                            "ServiceAccount `{ns}/{name}` mounts its token by default but no \
                             binding grants it a role"
                        ),
                    ));
                }
            }
            k => {
                let Some(spec) = pod_spec(o) else {
                    continue;
                };
                let ns = ns.unwrap_or_else(|| "default".into());
                let sa = spec
                    .get("serviceAccountName")
                    .or_else(|| spec.get("serviceAccount"))
                    .and_then(Value::as_str)
                    .unwrap_or("default")
                    .to_owned();
                let mounts =
                    automount(spec).or_else(|| sa_automount(&objects, &ns, &sa)) != Some(false);
                if mounts && !bound(&objects, &ns, &sa) {
                    out.push(problem(
                        Rule::TokenAutomount,
                        Severity::Low,
                        "automount",
                        &[],
                        format!(
                            "{k} `{ns}/{name}` mounts the token of service account `{sa}`, \
                             which no binding grants a role"
                        ),
                    ));
                }
            }
        }
    }
}

fn automount(o: &Value) -> Option<bool> {
    o.get("automountServiceAccountToken")
        .and_then(Value::as_bool)
}
