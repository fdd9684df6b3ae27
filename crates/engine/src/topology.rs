//! Keeping the identity graph in step with the store.
//!
//! The graph is built once when the engine opens (from identities, snapshot objects, each
//! account's IAM snapshot and the stored observed edges) and then updated in place by
//! ingestion: changed identities and objects re-derive only their own edges, an account's
//! IAM-derived edges are recomputed when one of its IAM objects changes, and events add to
//! observed edges. Nothing is rebuilt from scratch per ingest.

use std::collections::{BTreeMap, BTreeSet};

use keyward_graph::derive::{self, Names};
use keyward_graph::{EdgeKind, Graph, NodeKind, NodeSpec};
use keyward_model::{Identity, IdentityKind, Observation, SnapshotObject};
use keyward_store::Store;

use crate::EngineError;

/// The graph and the name index its derivations use.
#[derive(Debug, Default)]
pub struct Topology {
    pub graph: Graph,
    pub names: Names,
    /// Accounts whose IAM-derived edges must be recomputed at the next [`Topology::apply`]
    /// (a new OIDC subject may match their trust policies).
    stale_accounts: BTreeSet<String>,
    /// Names of roles, users and service accounts first seen since the last apply: IaC
    /// resources naming them can now be linked.
    new_names: BTreeSet<String>,
    /// Everyone a people directory lists (e-mail, lower-case).
    directory: BTreeSet<String>,
    /// The e-mail domains people directories cover, each with the (first) directory's
    /// file name: an owner of one of these domains absent from every directory has left.
    domains: BTreeMap<String, String>,
    /// Teams the directories name (lower-case): `orders-team@` is the team's mailbox.
    teams: BTreeSet<String>,
}

/// Words that make a mailbox a team's or a function's, not a person's (`web-team@`,
/// `payments-oncall@`, `noreply@`).
const SHARED_MAILBOX_WORDS: &[&str] = &[
    "team", "teams", "group", "groups", "grp", "list", "dl", "oncall", "owners", "admins",
    "alerts", "noreply", "support", "ops", "devops", "sre", "infra", "helpdesk", "squad",
];

/// Whether the local part of an e-mail names a team or a function rather than a person: a
/// word of [`SHARED_MAILBOX_WORDS`] or a team the directory names. Such mailboxes are
/// never in an HR export, and their absence says nothing about anyone leaving.
fn shared_mailbox(local: &str, teams: &BTreeSet<String>) -> bool {
    teams.contains(local)
        || local
            .split(['-', '_', '.', '+'])
            .any(|w| SHARED_MAILBOX_WORDS.contains(&w) || teams.contains(w))
}

/// Objects whose edges are derived per account (from the rebuilt IAM snapshot).
fn is_iam(kind: &str) -> bool {
    matches!(kind, "iam_user" | "iam_group" | "iam_role" | "iam_policy")
}

/// What changed in a batch, beyond identities.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub objects: Vec<SnapshotObject>,
    pub accounts: BTreeSet<String>,
}

impl Pending {
    pub fn object(&mut self, o: &SnapshotObject) {
        if crate::query::ORG_KINDS.contains(&o.kind.as_str()) {
            // Guardrails can change what any account's principals may do.
            self.accounts.insert("*".into());
        } else if is_iam(&o.kind) {
            // AWS-managed policies join every account.
            self.accounts
                .insert(o.scope.clone().unwrap_or_else(|| "*".into()));
        } else {
            self.objects.push(o.clone());
        }
    }
}

/// The literal names a Terraform resource gives (`name`, `metadata.name`).
fn names_in(doc: &serde_json::Value) -> impl Iterator<Item = &str> {
    let values = doc.get("values");
    let direct = values.and_then(|v| v.get("name")).and_then(|v| v.as_str());
    let meta = values
        .and_then(|v| v.get("metadata"))
        .map(|m| m.as_array().and_then(|a| a.first()).unwrap_or(m))
        .and_then(|m| m.get("name"))
        .and_then(|v| v.as_str());
    direct.into_iter().chain(meta)
}

fn codeowners_matches(pattern: &str, path: &str) -> bool {
    keyward_normalize::codeowners::matches(pattern, path)
}

impl Topology {
    /// A topology of an already built graph (a view's), with no name index: nothing may
    /// be derived into it.
    pub(crate) fn of_graph(graph: Graph) -> Topology {
        Topology {
            graph,
            ..Topology::default()
        }
    }

    /// Builds the graph from everything stored.
    pub fn build(store: &dyn Store, identities: &[&Identity]) -> Result<Topology, EngineError> {
        let mut t = Topology {
            graph: Graph::new(),
            names: Names::new(identities.iter().copied()),
            stale_accounts: BTreeSet::new(),
            new_names: BTreeSet::new(),
            directory: BTreeSet::new(),
            domains: BTreeMap::new(),
            teams: BTreeSet::new(),
        };
        for i in identities {
            t.identity(i);
        }
        let mut pending = Pending::default();
        for kind in store.object_kinds()? {
            if is_iam(&kind) || crate::query::ORG_KINDS.contains(&kind.as_str()) {
                continue;
            }
            pending.objects.extend(store.objects(&kind)?);
        }
        pending.accounts.insert("*".into());
        // Everything is derived below anyway: bindings indexed now are not "new" names that
        // would make `apply` read the Terraform resources a second time.
        for o in &pending.objects {
            t.names.add_object(o);
        }
        t.stale_accounts.clear();
        t.new_names.clear();
        t.apply(store, pending)?;
        for e in store.observed_edges()? {
            let unknown = NodeKind::Identity(IdentityKind::Unknown);
            t.graph.load_observed(&e, unknown, unknown);
        }
        Ok(t)
    }

    /// Re-derives the edges of one identity record.
    pub fn identity(&mut self, i: &Identity) {
        let added = self.names.add(i);
        if added == derive::Added::Name {
            self.new_names.insert(i.name.clone());
        }
        if added == derive::Added::OidcSubject {
            let accounts: Vec<String> = i
                .links
                .iter()
                .filter_map(|l| l.split(':').nth(4).map(str::to_owned))
                .collect();
            if accounts.is_empty() {
                self.stale_accounts.insert("*".into());
            }
            self.stale_accounts.extend(accounts);
        }
        self.graph
            .set_edges(&derive::identity_node(i), derive::identity_edges(i));
        let gone = i.deleted.is_some();
        if let Some(n) = self.graph.find(&i.id) {
            self.graph.set_gone(n, gone);
        }
    }

    /// Records what one observation says about who assumed or created what.
    pub fn observe(&mut self, o: &Observation, event_id: Option<&str>) {
        let at = o.used_at.or(o.seen_at).or(o.facts.created).unwrap_or(0);
        let me = NodeSpec::new(o.id.as_str(), NodeKind::Identity(o.kind), o.name.as_str());
        let unknown = |id: &str| NodeSpec::new(id, NodeKind::Identity(IdentityKind::Unknown), "");
        if let Some(by) = o.facts.assumed_by.as_deref() {
            if matches!(
                o.kind,
                IdentityKind::StsSession | IdentityKind::FederatedUser
            ) {
                self.graph
                    .observe(EdgeKind::Created, &unknown(by), &me, at, event_id);
            }
            if o.kind == IdentityKind::StsSession
                && let Some(role) = o.facts.parent.as_deref()
            {
                let role = NodeSpec::new(role, NodeKind::Identity(IdentityKind::IamRole), "");
                self.graph
                    .observe(EdgeKind::Assumed, &unknown(by), &role, at, event_id);
            }
        }
        if let Some(by) = o.facts.created_by.as_deref() {
            self.graph
                .observe(EdgeKind::Created, &unknown(by), &me, at, event_id);
        }
        if let Some(by) = o.facts.used_by.as_deref() {
            self.graph
                .observe(EdgeKind::Used, &unknown(by), &me, at, event_id);
        }
    }

    /// Applies changed objects and re-derives the accounts whose IAM objects changed.
    pub(crate) fn apply(&mut self, store: &dyn Store, mut p: Pending) -> Result<(), EngineError> {
        p.accounts.append(&mut self.stale_accounts);
        for o in &p.objects {
            if self.names.add_object(o) {
                let (name, _) = keyward_graph::k8s::name_ns(&o.doc);
                self.new_names.insert(name);
            }
        }
        let names = std::mem::take(&mut self.new_names);
        if !names.is_empty() {
            // IaC resources that name an identity seen for the first time.
            let pending: BTreeSet<String> = p.objects.iter().map(|o| o.id.clone()).collect();
            for o in store.objects("tf_resource")? {
                if !pending.contains(&o.id) && names_in(&o.doc).any(|n| names.contains(n)) {
                    p.objects.push(o);
                }
            }
        }
        for o in &p.objects {
            if let Some(edges) = derive::object_edges(o, &self.names) {
                self.graph.set_edges(&derive::object_node(o), edges);
            }
            if o.kind == "person" {
                self.person(o);
            }
        }
        if !p.accounts.is_empty() {
            let all = p.accounts.contains("*");
            for (account, snap) in crate::iam_snapshots(store)? {
                if all || p.accounts.contains(&account) {
                    let edges = derive::account_edges(&account, &snap, &self.names);
                    self.graph.set_edges(&derive::account_node(&account), edges);
                }
            }
        }
        // Cheap (files × rules) and new IaC files or repositories may appear with any
        // batch, so CODEOWNERS are re-applied every time.
        self.codeowners(store)?;
        // Owners named by any identity or file so far may be absent from a directory.
        self.absent_owners();
        Ok(())
    }

    /// A people directory's row: whether the person (and their GitHub login) has left,
    /// and the domain the directory covers.
    fn person(&mut self, o: &SnapshotObject) {
        let departed = o.doc.get("status").and_then(|s| s.as_str()) == Some("departed");
        let id = self.graph.ensure(&derive::object_node(o));
        self.graph.set_gone(id, departed);
        if let Some(login) = o.doc.get("github").and_then(|g| g.as_str()) {
            let id = self.graph.ensure(&derive::owner_node(&format!("@{login}")));
            self.graph.set_gone(id, departed);
        }
        let email = o.id.to_ascii_lowercase();
        if let Some((_, domain)) = email.rsplit_once('@') {
            let file = o
                .scope
                .clone()
                .unwrap_or_else(|| "the people directory".into());
            self.domains.entry(domain.to_owned()).or_insert(file);
        }
        self.directory.insert(email);
        if let Some(team) = o.doc.get("team").and_then(|t| t.as_str()) {
            self.teams.insert(team.trim().to_ascii_lowercase());
        }
    }

    /// Owners of a domain a people directory covers who are not in it: they have left
    /// (evidence: `not in <directory>`). A team's or a function's mailbox
    /// ([`shared_mailbox`]) is not a person, and is not judged.
    fn absent_owners(&mut self) {
        if self.domains.is_empty() {
            return;
        }
        let absent: Vec<(keyward_graph::NodeId, String)> = self
            .graph
            .nodes()
            .filter(|(_, _, n)| n.kind == NodeKind::Person && !n.gone)
            .filter_map(|(id, key, _)| {
                let email = key.strip_prefix("person:")?;
                let (local, domain) = email.rsplit_once('@').filter(|(l, _)| !l.is_empty())?;
                let file = self.domains.get(domain)?;
                if shared_mailbox(local, &self.teams) {
                    return None;
                }
                (!self.directory.contains(email)).then(|| (id, format!("not in {file}")))
            })
            .collect();
        for (id, why) in absent {
            self.graph.set_gone_because(id, &why);
        }
    }

    /// Re-derives every CODEOWNERS file's edges (after IaC files or CODEOWNERS changed).
    fn codeowners(&mut self, store: &dyn Store) -> Result<(), EngineError> {
        let files: Vec<String> = self
            .graph
            .nodes()
            .filter(|(_, k, _)| k.starts_with("file:") || k.starts_with("github:"))
            .map(|(_, k, _)| k.to_owned())
            .collect();
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        for o in store.objects("codeowners")? {
            let edges = derive::codeowners_edges(&o, &files, codeowners_matches);
            self.graph.set_edges(&derive::object_node(&o), edges);
        }
        Ok(())
    }
}
