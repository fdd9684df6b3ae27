//! Deriving graph edges from what the store holds: identity records, snapshot objects, and
//! each account's IAM snapshot. Every function here is pure: it returns the edges of one
//! origin, and [`Graph::set_edges`](crate::graph::Graph::set_edges) puts them in place.
//!
//! Node keys (identities use their canonical ids, see `docs/identity-ids.md`):
//! `person:<email or @handle>`, `team:<name>`, `aws-account:<id>` (`aws-account:*` for
//! anyone), `iam-policy:<arn>`, `resource:<arn pattern>`, `lambda:<function arn>`,
//! `k8s-obj:<cluster>/<Kind>/<namespace>/<name>`, `k8s-res:<cluster>/<namespace>/<group>/<resource>`,
//! `tf:<file>#<address>`, `file:<path>`, `github:<owner>/<repo>`, `cred:<owner>#<slot>`.

use std::collections::{BTreeMap, BTreeSet};

use keyward_model::{Identity, IdentityKind, SnapshotObject, ids};
use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::graph::{Detail, EdgeKind, EdgeSpec, NodeKind, NodeSpec};
use crate::iam::authz::Snapshot;
use crate::iam::escalation::Analysis;
use crate::iam::policy::{self, Context, Decision, PrincipalRef, Request};

mod account;

pub use account::account_edges;

/// Tag, label and annotation keys that name an owner (compared case-insensitively, with
/// `-`, `_` and `.` ignored, after any `prefix/`).
const OWNER_KEYS: [&str; 6] = [
    "owner",
    "owneremail",
    "contact",
    "maintainer",
    "createdby",
    "technicalowner",
];
const TEAM_KEYS: [&str; 4] = ["team", "ownerteam", "squad", "group"];

fn squash(key: &str) -> String {
    let key = key.rsplit('/').next().unwrap_or(key);
    key.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

pub fn is_email(s: &str) -> bool {
    let mut parts = s.split('@');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(l), Some(d), None) if !l.is_empty() && d.contains('.') && !d.starts_with('.')
    )
}

/// The node of an owner named by a tag, label or CODEOWNERS entry: an email or `@user` is
/// a person, `@org/team` or a bare name is a team.
pub fn owner_node(value: &str) -> NodeSpec {
    let v = value.trim();
    if is_email(v) {
        let e = v.to_ascii_lowercase();
        NodeSpec::new(format!("person:{e}"), NodeKind::Person, e)
    } else if v.starts_with('@') && !v.contains('/') {
        NodeSpec::new(format!("person:{v}"), NodeKind::Person, v)
    } else {
        NodeSpec::new(format!("team:{v}"), NodeKind::Team, v)
    }
}

/// The person a session's `user.id` names: by e-mail (as the people directory keys
/// people), else by the id as the agent's platform gives it.
pub fn prompter_node(user: &str) -> NodeSpec {
    let u = user.trim();
    if is_email(u) {
        owner_node(u)
    } else {
        NodeSpec::new(format!("person:{u}"), NodeKind::Person, u)
    }
}

pub fn identity_node(i: &Identity) -> NodeSpec {
    NodeSpec::new(i.id.as_str(), NodeKind::Identity(i.kind), i.name.as_str())
}

fn id_node(id: &str, kind: IdentityKind) -> NodeSpec {
    let label = id.rsplit(['/', '#', ':']).next().unwrap_or(id);
    NodeSpec::new(id, NodeKind::Identity(kind), label)
}

/// The identity kind an AWS canonical id implies (`Unknown` when it does not say).
pub fn kind_of_id(id: &str) -> IdentityKind {
    if id.contains(":assumed-role/") {
        IdentityKind::StsSession
    } else if id.contains(":federated-user/") {
        IdentityKind::FederatedUser
    } else if id.contains(":user/") {
        IdentityKind::IamUser
    } else if id.contains(":role/") {
        IdentityKind::IamRole
    } else if id.ends_with(":root") {
        IdentityKind::AccountRoot
    } else {
        IdentityKind::Unknown
    }
}

fn edge(from: NodeSpec, kind: EdgeKind, to: NodeSpec) -> EdgeSpec {
    EdgeSpec {
        from,
        kind,
        to,
        detail: None,
        at: None,
    }
}

fn sourced(mut e: EdgeSpec, source: impl Into<String>) -> EdgeSpec {
    e.detail.get_or_insert_with(Detail::default).source = source.into();
    e
}

fn is_key_id(id: &str) -> bool {
    ids::access_key_type(id).is_some()
}

/// Edges an identity's own record implies: its credentials, its session's role, its
/// federation links, owners named in its tags / labels / annotations, and the person it
/// belongs to when it is a human's own identity.
pub fn identity_edges(i: &Identity) -> Vec<EdgeSpec> {
    let me = identity_node(i);
    let mut out = Vec::new();
    match (i.kind, i.parent.as_deref()) {
        (IdentityKind::AccessKey | IdentityKind::TemporaryAccessKey, Some(p)) if !p.is_empty() => {
            let mut e = edge(
                id_node(p, kind_of_id(p)),
                EdgeKind::HasCredential,
                me.clone(),
            );
            // Only a known creation time: containment (`--since`) must not mistake the first
            // sighting of an old key for its creation.
            e.at = i.created;
            out.push(e);
        }
        (IdentityKind::StsSession, Some(p)) => {
            out.push(edge(
                me.clone(),
                EdgeKind::SessionOf,
                id_node(p, IdentityKind::IamRole),
            ));
        }
        // An agent's conversation is a session of the agent, as an STS session is of its
        // role: its owner answers for it, and listing an agent's sessions is one hop.
        (IdentityKind::AgentSession, Some(p)) => {
            out.push(edge(
                me.clone(),
                EdgeKind::SessionOf,
                id_node(p, IdentityKind::AiAgent),
            ));
        }
        _ => {}
    }
    // The person whose prompt started an agent's session created it: the chain from what
    // the session did (the STS sessions it assumed) leads back to them.
    if i.kind == IdentityKind::AgentSession
        && let Some(user) = i
            .details
            .get("agent_session")
            .and_then(|d| d.get("prompted_by"))
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
    {
        out.push(sourced(
            edge(prompter_node(user), EdgeKind::Created, me.clone()),
            "prompt",
        ));
    }
    for c in &i.credentials {
        let to = if is_key_id(&c.id) {
            id_node(&c.id, IdentityKind::AccessKey)
        } else {
            NodeSpec::new(
                format!("cred:{}#{}", i.id, c.id),
                NodeKind::Credential,
                c.id.as_str(),
            )
        };
        let mut e = edge(me.clone(), EdgeKind::HasCredential, to);
        e.at = c.created;
        out.push(e);
    }
    for l in &i.links {
        let role = l.contains(":role/");
        let federates = match i.kind {
            IdentityKind::OidcSubject
            | IdentityKind::SamlSubject
            | IdentityKind::ServiceAccount
            | IdentityKind::IdentityCenterUser => role,
            IdentityKind::IamRole => l.contains("/user:"),
            _ => false,
        };
        if federates {
            let kind = if role {
                IdentityKind::IamRole
            } else {
                IdentityKind::KubernetesUser
            };
            out.push(edge(me.clone(), EdgeKind::Federates, id_node(l, kind)));
        }
    }
    // GitHub Actions: a reusable workflow pinned in the subject runs as it.
    if let Some(wf) = i
        .details
        .get("github")
        .and_then(|g| g.get("job_workflow_ref"))
        .and_then(Value::as_str)
    {
        out.push(edge(
            NodeSpec::new(format!("github-workflow:{wf}"), NodeKind::Workload, wf),
            EdgeKind::RunsAs,
            me.clone(),
        ));
    }
    // GitHub Actions: the repository's workflows run as the subject.
    if i.kind == IdentityKind::OidcSubject
        && let Some(repo) = i
            .subject
            .as_deref()
            .and_then(|s| s.strip_prefix("repo:"))
            .and_then(|s| s.split(':').next())
    {
        out.push(edge(
            NodeSpec::new(format!("github:{repo}"), NodeKind::Repository, repo),
            EdgeKind::RunsAs,
            me.clone(),
        ));
    }
    for (what, map) in [
        ("tag", &i.tags),
        ("label", &i.labels),
        ("annotation", &i.annotations),
    ] {
        owner_edges(
            what,
            map.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            &me,
            &mut out,
        );
    }
    if let Some(email) = human_email(i) {
        out.push(sourced(
            edge(
                NodeSpec::new(format!("person:{email}"), NodeKind::Person, email.clone()),
                EdgeKind::Owns,
                me.clone(),
            ),
            "self",
        ));
    }
    // A GitHub account is its person's own identity: `@login`, the same person CODEOWNERS
    // names, so what the account created (deploy keys, App installations, tokens) traces
    // to them.
    if i.kind == IdentityKind::GithubUser && !i.name.contains('/') && !i.name.is_empty() {
        out.push(sourced(
            edge(
                owner_node(&format!("@{}", i.name)),
                EdgeKind::Owns,
                me.clone(),
            ),
            "self",
        ));
    }
    out
}

/// `owns` edges from the owners and teams named by tags, labels or annotations (`what`)
/// to `target`.
fn owner_edges<'a>(
    what: &str,
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
    target: &NodeSpec,
    out: &mut Vec<EdgeSpec>,
) {
    for (k, v) in pairs {
        let key = squash(k);
        let is_owner = OWNER_KEYS.contains(&key.as_str());
        let is_team = TEAM_KEYS.contains(&key.as_str());
        if !(is_owner || is_team) || v.trim().is_empty() {
            continue;
        }
        let node = if is_team && !is_email(v) {
            owner_team(v)
        } else {
            owner_node(v)
        };
        out.push(sourced(
            edge(node, EdgeKind::Owns, target.clone()),
            format!("{what} {k}"),
        ));
    }
}

/// The email of the person an identity is the own identity of: an IAM user or Kubernetes
/// user named by an email, an STS session named by one (IAM Identity Center and most SSO
/// set the session name to the user's email), an Identity Center user, a SAML subject.
pub fn human_email(i: &Identity) -> Option<String> {
    let candidate = match i.kind {
        IdentityKind::IamUser
        | IdentityKind::StsSession
        | IdentityKind::FederatedUser
        | IdentityKind::IdentityCenterUser
        | IdentityKind::SamlSubject
        | IdentityKind::KubernetesUser => i.name.as_str(),
        _ => return None,
    };
    let candidate = candidate.rsplit(['/', '#']).next().unwrap_or(candidate);
    is_email(candidate).then(|| candidate.to_ascii_lowercase())
}

/// What [`Names::add`] learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Nothing,
    /// A role, user or service account name not indexed before.
    Name,
    /// An OIDC subject not seen before.
    OidcSubject,
}

/// Identities by name, for linking IaC resources and workloads to live identities.
#[derive(Debug, Default)]
pub struct Names {
    by_name: FxHashMap<(IdentityKind, String), Vec<String>>,
    /// Service accounts by (namespace, name): their ids in every cluster.
    sa: FxHashMap<(String, String), Vec<String>>,
    /// OIDC subjects: (id, issuer key, subject).
    pub oidc_subjects: Vec<(String, String, String)>,
    /// Kubernetes bindings by (kind, namespace, name): their node keys in every cluster.
    bindings: FxHashMap<(String, String, String), Vec<String>>,
}

impl Names {
    pub fn new<'a>(identities: impl IntoIterator<Item = &'a Identity>) -> Names {
        let mut n = Names::default();
        for i in identities {
            n.add(i);
        }
        n
    }

    /// Indexes an identity; says what was new, since edges derived earlier may now link
    /// (an IaC resource naming it, a trust policy whose subject pattern it matches).
    pub fn add(&mut self, i: &Identity) -> Added {
        match i.kind {
            IdentityKind::IamRole | IdentityKind::IamUser => {
                let list = self.by_name.entry((i.kind, i.name.clone())).or_default();
                if !list.contains(&i.id) {
                    list.push(i.id.clone());
                    return Added::Name;
                }
            }
            IdentityKind::ServiceAccount => {
                if let Some(ns) = &i.namespace {
                    let list = self.sa.entry((ns.clone(), i.name.clone())).or_default();
                    if !list.contains(&i.id) {
                        list.push(i.id.clone());
                        return Added::Name;
                    }
                }
            }
            IdentityKind::OidcSubject => {
                if let (Some(iss), Some(sub)) = (&i.issuer, &i.subject)
                    && !self.oidc_subjects.iter().any(|(id, _, _)| *id == i.id)
                {
                    self.oidc_subjects.push((
                        i.id.clone(),
                        ids::issuer_key(iss).to_owned(),
                        sub.clone(),
                    ));
                    return Added::OidcSubject;
                }
            }
            _ => {}
        }
        Added::Nothing
    }

    /// Indexes a Kubernetes RoleBinding / ClusterRoleBinding object; `true` when new.
    pub fn add_object(&mut self, o: &SnapshotObject) -> bool {
        let Some(kind @ ("RoleBinding" | "ClusterRoleBinding")) = o.kind.strip_prefix("k8s:")
        else {
            return false;
        };
        let (name, ns) = crate::k8s::name_ns(&o.doc);
        let key = object_node(o).key;
        let list = self
            .bindings
            .entry((kind.to_owned(), ns.unwrap_or_default(), name))
            .or_default();
        if list.contains(&key) {
            return false;
        }
        list.push(key);
        true
    }

    fn bindings(&self, kind: &str, ns: &str, name: &str) -> &[String] {
        self.bindings
            .get(&(kind.to_owned(), ns.to_owned(), name.to_owned()))
            .map_or(&[], Vec::as_slice)
    }

    fn named(&self, kind: IdentityKind, name: &str) -> &[String] {
        self.by_name
            .get(&(kind, name.to_owned()))
            .map_or(&[], Vec::as_slice)
    }

    fn service_accounts(&self, ns: &str, name: &str) -> &[String] {
        self.sa
            .get(&(ns.to_owned(), name.to_owned()))
            .map_or(&[], Vec::as_slice)
    }
}

fn s<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// The node an object is the origin of: the object itself.
pub fn object_node(o: &SnapshotObject) -> NodeSpec {
    match o.kind.as_str() {
        "person" => NodeSpec::new(format!("person:{}", o.id), NodeKind::Person, o.id.as_str()),
        "lambda_function" => NodeSpec::new(
            format!("lambda:{}", o.id),
            NodeKind::Workload,
            s(&o.doc, "FunctionName").unwrap_or(&o.id),
        ),
        "tf_resource" => NodeSpec::new(
            format!("tf:{}", o.id),
            NodeKind::Iac,
            s(&o.doc, "address").unwrap_or(&o.id),
        ),
        "codeowners" => NodeSpec::new(
            format!("codeowners:{}", o.id),
            NodeKind::Iac,
            s(&o.doc, "file").unwrap_or(&o.id),
        ),
        k => match k.strip_prefix("k8s:") {
            Some(kind) => k8s_object_node(o.scope.as_deref().unwrap_or("default"), kind, &o.doc),
            None => NodeSpec::new(format!("object:{k}:{}", o.id), NodeKind::Resource, ""),
        },
    }
}

fn k8s_object_node(cluster: &str, kind: &str, doc: &Value) -> NodeSpec {
    let (name, ns) = crate::k8s::name_ns(doc);
    let node_kind = match kind {
        "Role" | "ClusterRole" => NodeKind::Policy,
        "RoleBinding" | "ClusterRoleBinding" => NodeKind::Binding,
        "ServiceAccount" => NodeKind::Identity(IdentityKind::ServiceAccount),
        "Secret" | "ConfigMap" | "Namespace" => NodeKind::Resource,
        _ => NodeKind::Workload,
    };
    let label = match &ns {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    NodeSpec::new(
        format!(
            "k8s-obj:{cluster}/{kind}/{}/{name}",
            ns.as_deref().unwrap_or("")
        ),
        node_kind,
        label,
    )
}

/// Edges one snapshot object implies on its own (IAM objects are handled per account by
/// [`account_edges`]). `None` when the object is not an edge origin.
pub fn object_edges(o: &SnapshotObject, names: &Names) -> Option<Vec<EdgeSpec>> {
    let me = object_node(o);
    let mut out = Vec::new();
    match o.kind.as_str() {
        "person" => {
            // Their GitHub login (`@login` in CODEOWNERS) is the same person.
            if let Some(login) = s(&o.doc, "github").filter(|g| !g.trim().is_empty()) {
                out.push(sourced(
                    edge(me.clone(), EdgeKind::Owns, owner_node(&format!("@{login}"))),
                    "people directory",
                ));
            }
            if let Some(team) = s(&o.doc, "team").filter(|t| !t.trim().is_empty()) {
                out.push(sourced(
                    edge(me, EdgeKind::MemberOf, owner_team(team)),
                    "people directory",
                ));
            }
        }
        "lambda_function" => {
            if let Some(role) = s(&o.doc, "Role").and_then(ids::canonical_iam_arn) {
                out.push(edge(
                    me,
                    EdgeKind::RunsAs,
                    id_node(&role, IdentityKind::IamRole),
                ));
            }
        }
        "tf_resource" => out = tf_edges(o, me, names),
        "codeowners" => return None,
        k => {
            let kind = k.strip_prefix("k8s:")?;
            let cluster = o.scope.as_deref().unwrap_or("default");
            out = k8s_edges(cluster, kind, &o.doc, me)
        }
    }
    Some(out)
}

fn owner_team(team: &str) -> NodeSpec {
    let t = team.trim();
    NodeSpec::new(format!("team:{t}"), NodeKind::Team, t)
}

fn k8s_edges(cluster: &str, kind: &str, doc: &Value, me: NodeSpec) -> Vec<EdgeSpec> {
    let mut out = Vec::new();
    let (_, ns) = crate::k8s::name_ns(doc);
    match kind {
        "RoleBinding" | "ClusterRoleBinding" => {
            let role_kind = doc
                .pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or("Role");
            let role_name = doc
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let role_ns = if role_kind == "Role" {
                ns.as_deref().unwrap_or("default")
            } else {
                ""
            };
            out.push(edge(
                me.clone(),
                EdgeKind::BoundTo,
                NodeSpec::new(
                    format!("k8s-obj:{cluster}/{role_kind}/{role_ns}/{role_name}"),
                    NodeKind::Policy,
                    if role_ns.is_empty() {
                        format!("{role_kind} {role_name}")
                    } else {
                        format!("{role_kind} {role_ns}/{role_name}")
                    },
                ),
            ));
            for subj in doc
                .get("subjects")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = s(subj, "name").unwrap_or_default();
                let node = match s(subj, "kind") {
                    Some("ServiceAccount") => {
                        let sns = s(subj, "namespace").or(ns.as_deref()).unwrap_or("default");
                        id_node(
                            &ids::k8s_service_account(cluster, sns, name),
                            IdentityKind::ServiceAccount,
                        )
                    }
                    Some("User") => {
                        id_node(&ids::k8s_user(cluster, name), IdentityKind::KubernetesUser)
                    }
                    Some("Group") => {
                        NodeSpec::new(format!("k8s-group:{cluster}/{name}"), NodeKind::Group, name)
                    }
                    _ => continue,
                };
                out.push(edge(node, EdgeKind::BoundTo, me.clone()));
            }
        }
        "Role" | "ClusterRole" => {
            // One `can` edge per (namespace, group, resource) with the verbs allowed.
            let scope = if kind == "Role" {
                ns.as_deref().unwrap_or("default")
            } else {
                "*"
            };
            let mut per: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
            for r in crate::k8s::rules_of(doc) {
                for g in if r.api_groups.is_empty() {
                    vec![String::new()]
                } else {
                    r.api_groups.clone()
                } {
                    for res in &r.resources {
                        per.entry((g.clone(), res.clone()))
                            .or_default()
                            .extend(r.verbs.iter().cloned());
                    }
                }
            }
            for ((g, res), verbs) in per {
                let group = if g.is_empty() { "core" } else { g.as_str() };
                let mut e = edge(
                    me.clone(),
                    EdgeKind::Can,
                    NodeSpec::new(
                        format!("k8s-res:{cluster}/{scope}/{group}/{res}"),
                        NodeKind::Resource,
                        if scope == "*" {
                            format!("{res} (all namespaces)")
                        } else {
                            format!("{res} in {scope}")
                        },
                    ),
                );
                e.detail = Some(Detail {
                    actions: verbs.into_iter().collect(),
                    ..Detail::default()
                });
                out.push(e);
            }
        }
        "ServiceAccount" | "Secret" | "ConfigMap" | "Namespace" => {}
        _ => {
            // A workload: runs as its pod spec's service account.
            if let Some(spec) = crate::k8s_posture::pod_spec(doc) {
                let sa = s(spec, "serviceAccountName")
                    .or(s(spec, "serviceAccount"))
                    .unwrap_or("default");
                let ns = ns.as_deref().unwrap_or("default");
                out.push(edge(
                    me.clone(),
                    EdgeKind::RunsAs,
                    id_node(
                        &ids::k8s_service_account(cluster, ns, sa),
                        IdentityKind::ServiceAccount,
                    ),
                ));
            }
            for (what, ptr) in [
                ("label", "/metadata/labels"),
                ("annotation", "/metadata/annotations"),
            ] {
                let pairs = doc
                    .pointer(ptr)
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)));
                owner_edges(what, pairs, &me, &mut out);
            }
        }
    }
    out
}

/// A Terraform attribute as a literal string (not a reference expression).
fn literal<'v>(values: &'v Value, key: &str) -> Option<&'v str> {
    let v = s(values, key)?;
    let is_ref = v.starts_with("${")
        || v.starts_with("var.")
        || v.starts_with("local.")
        || v.starts_with("module.")
        || v.starts_with("data.")
        || v.starts_with("aws_")
        || v.starts_with("kubernetes_");
    (!is_ref && !v.is_empty()).then_some(v)
}

fn tf_edges(o: &SnapshotObject, me: NodeSpec, names: &Names) -> Vec<EdgeSpec> {
    let doc = &o.doc;
    let empty = Value::Null;
    let values = doc.get("values").unwrap_or(&empty);
    let ty = s(doc, "type").unwrap_or_default();
    let file = s(doc, "file").unwrap_or("-");
    let line = doc.get("line").and_then(Value::as_u64);
    let source = match line {
        Some(l) => format!("{file}:{l}"),
        None => file.to_owned(),
    };
    let mut out = vec![edge(
        me.clone(),
        EdgeKind::DefinedIn,
        NodeSpec::new(format!("file:{file}"), NodeKind::Iac, file),
    )];
    let defines = |node: NodeSpec, out: &mut Vec<EdgeSpec>| {
        out.push(sourced(
            edge(node, EdgeKind::DefinedIn, me.clone()),
            source.clone(),
        ));
    };
    // A live IAM identity: by ARN (state, plan), else by its literal name.
    let iam = |kind: IdentityKind| -> Vec<String> {
        if let Some(id) = s(values, "arn").and_then(ids::canonical_iam_arn) {
            return vec![id];
        }
        literal(values, "name")
            .map(|n| names.named(kind, n).to_vec())
            .unwrap_or_default()
    };
    match ty {
        "aws_iam_role" => {
            for id in iam(IdentityKind::IamRole) {
                defines(id_node(&id, IdentityKind::IamRole), &mut out);
            }
        }
        "aws_iam_user" => {
            for id in iam(IdentityKind::IamUser) {
                defines(id_node(&id, IdentityKind::IamUser), &mut out);
            }
        }
        "aws_iam_access_key" => {
            if let Some(key) = s(values, "id").filter(|k| is_key_id(k)) {
                defines(id_node(key, IdentityKind::AccessKey), &mut out);
            }
        }
        "aws_lambda_function" => {
            if let Some(arn) = s(values, "arn").filter(|a| a.starts_with("arn:")) {
                defines(
                    NodeSpec::new(
                        format!("lambda:{arn}"),
                        NodeKind::Workload,
                        literal(values, "function_name").unwrap_or(arn),
                    ),
                    &mut out,
                );
            }
        }
        "kubernetes_role_binding"
        | "kubernetes_role_binding_v1"
        | "kubernetes_cluster_role_binding"
        | "kubernetes_cluster_role_binding_v1" => {
            let cluster_wide = ty.contains("cluster_role");
            let meta = values
                .get("metadata")
                .map(|m| m.as_array().and_then(|a| a.first()).unwrap_or(m));
            if let Some(meta) = meta
                && let Some(name) = literal(meta, "name")
            {
                let (kind, ns) = if cluster_wide {
                    ("ClusterRoleBinding", "")
                } else {
                    (
                        "RoleBinding",
                        literal(meta, "namespace").unwrap_or("default"),
                    )
                };
                for key in names.bindings(kind, ns, name) {
                    defines(NodeSpec::new(key.as_str(), NodeKind::Binding, ""), &mut out);
                }
            }
        }
        "aws_iam_policy" => {
            if let Some(arn) = s(values, "arn").filter(|a| a.starts_with("arn:")) {
                defines(policy_node(arn), &mut out);
            }
        }
        "kubernetes_service_account" | "kubernetes_service_account_v1" => {
            let meta = values
                .get("metadata")
                .map(|m| m.as_array().and_then(|a| a.first()).unwrap_or(m));
            if let Some(meta) = meta
                && let Some(name) = literal(meta, "name")
            {
                let ns = literal(meta, "namespace").unwrap_or("default");
                for id in names.service_accounts(ns, name) {
                    defines(id_node(id, IdentityKind::ServiceAccount), &mut out);
                }
            }
        }
        _ => {}
    }
    out
}

/// `owns` edges from CODEOWNERS owners to the IaC files under the CODEOWNERS root, and to
/// the GitHub repository named like the root directory. `files` are the `file:` and
/// `github:` node keys known to the graph; `matches(pattern, path)` is the CODEOWNERS
/// pattern matcher.
pub fn codeowners_edges(
    o: &SnapshotObject,
    files: &[&str],
    matches: impl Fn(&str, &str) -> bool,
) -> Vec<EdgeSpec> {
    let Some(rules) = o.doc.get("rules").and_then(Value::as_array) else {
        return Vec::new();
    };
    let rules: Vec<(String, Vec<String>, u64)> = rules
        .iter()
        .filter_map(|r| {
            Some((
                s(r, "pattern")?.to_owned(),
                r.get("owners")?
                    .as_array()?
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
                r.get("line").and_then(Value::as_u64).unwrap_or(0),
            ))
        })
        .collect();
    let cfile = s(&o.doc, "file").unwrap_or(&o.id);
    let root = s(&o.doc, "root").unwrap_or(&o.id).trim_end_matches('/');
    let mut out = Vec::new();
    let own = |path: &str, node: NodeSpec, out: &mut Vec<EdgeSpec>| {
        // GitHub semantics: the last matching rule wins, even when it lists no owner.
        if let Some((_, owners, line)) = rules.iter().rev().find(|(p, _, _)| matches(p, path)) {
            for owner in owners {
                out.push(sourced(
                    edge(owner_node(owner), EdgeKind::Owns, node.clone()),
                    format!("{cfile}:{line}"),
                ));
            }
        }
    };
    let root_name = root.rsplit('/').next().unwrap_or(root);
    for f in files {
        if let Some(repo) = f.strip_prefix("github:") {
            // A repository checked out under the CODEOWNERS root's name: its workflows'
            // owners own the repository's OIDC identities.
            if repo.rsplit('/').next() == Some(root_name) {
                own(
                    ".github/workflows/",
                    NodeSpec::new(*f, NodeKind::Repository, repo),
                    &mut out,
                );
            }
            continue;
        }
        let path = f.strip_prefix("file:").unwrap_or(f);
        let rel = if root == "." || root.is_empty() {
            Some(path.trim_start_matches("./"))
        } else {
            path.strip_prefix(root).and_then(|r| r.strip_prefix('/'))
        };
        if let Some(rel) = rel {
            own(rel, NodeSpec::new(*f, NodeKind::Iac, path), &mut out);
        }
    }
    out
}

/// An AWS account as a trusted principal (`*`: anyone).
pub fn account_node(account: &str) -> NodeSpec {
    let label = if account == "*" {
        "anyone".to_owned()
    } else {
        format!("AWS account {account}")
    };
    NodeSpec::new(format!("aws-account:{account}"), NodeKind::Account, label)
}

fn resource_node(pattern: &str, account: &str) -> NodeSpec {
    if pattern == "*" {
        return NodeSpec::new(
            format!("resource:*@{account}"),
            NodeKind::Resource,
            format!("all resources (account {account})"),
        );
    }
    if let Some(id) = ids::canonical_iam_arn(pattern).filter(|_| !pattern.contains('*')) {
        let kind = kind_of_id(&id);
        if matches!(kind, IdentityKind::IamRole | IdentityKind::IamUser) {
            return id_node(&id, kind);
        }
    }
    NodeSpec::new(format!("resource:{pattern}"), NodeKind::Resource, pattern)
}

fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

fn policy_node(arn: &str) -> NodeSpec {
    NodeSpec::new(
        format!("iam-policy:{arn}"),
        NodeKind::Policy,
        arn.rsplit('/').next().unwrap_or(arn),
    )
}
