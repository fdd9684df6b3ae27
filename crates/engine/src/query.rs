//! Reading the estate: inventory filters and lookups by id, name or ARN; owners and
//! orphans; the IAM and Kubernetes snapshots and the analyses over them. The CLI and the
//! server both answer from here.

use keyward_model::{Identity, IdentityKind, Lifecycle, LifecycleConfig, Platform};

use crate::Engine;

/// Inventory filters; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub platform: Option<Platform>,
    pub kind: Option<IdentityKind>,
    pub state: Option<Lifecycle>,
    pub account: Option<String>,
    pub namespace: Option<String>,
}

/// Owner filters, which need the graph walked for every row (see [`Engine::owned`]).
#[derive(Debug, Clone, Default)]
pub struct OwnerFilter {
    /// Owned by this person or team.
    pub owner: Option<String>,
    /// Only orphans.
    pub orphaned: bool,
}

impl OwnerFilter {
    fn is_empty(&self) -> bool {
        self.owner.is_none() && !self.orphaned
    }

    fn matches(&self, o: &OwnerInfo) -> bool {
        (!self.orphaned || o.orphan.is_some())
            && self.owner.as_deref().is_none_or(|w| {
                o.ownership.owner.as_deref() == Some(w) || o.ownership.team.as_deref() == Some(w)
            })
    }
}

/// A listed identity, its state, and its owners once walked.
pub type Owned<'e> = ((&'e Identity, Lifecycle), Option<OwnerInfo>);

/// A principal's shortest escalation path to admin.
#[derive(Debug, Clone)]
pub struct Escalation {
    pub account: String,
    pub from: String,
    pub path: keyward_graph::iam::escalation::Path,
}

impl Escalation {
    /// The path as JSON, as `graph escalation --format json` and the MCP tool give it.
    pub fn to_json(&self) -> serde_json::Value {
        let steps: Vec<serde_json::Value> = self
            .path
            .steps
            .iter()
            .map(|s| {
                serde_json::json!({
                    "technique": s.technique,
                    "from": s.from,
                    "to": s.to,
                    "reaches_admin": s.reaches_admin,
                    "conditional_on": s.conditional,
                    "via_existing_workload": s.via_existing_workload,
                })
            })
            .collect();
        serde_json::json!({"account": self.account, "from": self.from, "steps": steps})
    }
}

/// The outcome of looking an identity up by something a person typed.
#[derive(Debug)]
pub enum Resolve<'a> {
    Found(&'a Identity),
    NotFound,
    Ambiguous(Vec<&'a Identity>),
}

impl Engine {
    /// Lifecycle states as of `lc`: `stale` only where a record covers the window,
    /// `unknown` otherwise (see [`crate::lifecycle`]).
    pub fn lifecycles(&self, lc: LifecycleConfig) -> crate::Lifecycles {
        match &self.view {
            Some(v) => crate::Lifecycles::with_spans(v.spans.clone(), lc),
            None => crate::Lifecycles::new(self.inventory.iter(), lc),
        }
    }

    /// Identities matching `filter`, with their lifecycle state, ordered by platform, kind
    /// and id.
    pub fn list(&self, filter: &Filter, lc: LifecycleConfig) -> Vec<(&Identity, Lifecycle)> {
        let states = self.lifecycles(lc);
        let mut out: Vec<(&Identity, Lifecycle)> = self
            .inventory
            .iter()
            .filter(|i| filter.platform.is_none_or(|p| i.platform == p))
            .filter(|i| filter.kind.is_none_or(|k| i.kind == k))
            .filter(|i| {
                filter.account.as_deref().is_none_or(|a| {
                    i.account.as_deref() == Some(a) || i.cluster.as_deref() == Some(a)
                })
            })
            .filter(|i| {
                filter
                    .namespace
                    .as_deref()
                    .is_none_or(|n| i.namespace.as_deref() == Some(n))
            })
            .map(|i| (i, states.of(i)))
            .filter(|(_, s)| filter.state.is_none_or(|st| *s == st))
            .collect();
        out.sort_by(|a, b| {
            (a.0.platform, a.0.kind, &a.0.id).cmp(&(b.0.platform, b.0.kind, &b.0.id))
        });
        out
    }

    /// Finds an identity by canonical id, ARN (with or without path), or a unique name.
    pub fn resolve(&self, query: &str) -> Resolve<'_> {
        if let Some(i) = self.inventory.get(query) {
            return Resolve::Found(i);
        }
        if let Some(i) =
            keyward_model::ids::canonical_iam_arn(query).and_then(|id| self.inventory.get(&id))
        {
            return Resolve::Found(i);
        }
        let mut hits: Vec<&Identity> = self
            .inventory
            .iter()
            .filter(|i| i.name == query || i.arn.as_deref() == Some(query))
            .collect();
        if hits.is_empty() {
            hits = self
                .inventory
                .iter()
                .filter(|i| i.id.ends_with(query))
                .collect();
        }
        hits.sort_by(|a, b| a.id.cmp(&b.id));
        match hits.len() {
            0 => Resolve::NotFound,
            1 => hits.pop().map_or(Resolve::NotFound, Resolve::Found),
            _ => Resolve::Ambiguous(hits),
        }
    }
}

/// Kinds of the stored AWS Organizations objects (see `keyward_normalize::organizations`).
pub(crate) const ORG_KINDS: [&str; 4] = [
    "org_policy_summary",
    "org_policy",
    "org_target",
    "org_parent",
];

/// The organization as stored: its SCPs and RCPs, where they are attached, the OU tree.
fn organization(
    store: &dyn keyward_store::Store,
) -> Result<keyward_graph::iam::org::Organization, crate::EngineError> {
    let [summaries, described, targets, parents] = ORG_KINDS.map(|k| store.objects(k));
    let docs = |objects: Vec<keyward_model::SnapshotObject>| {
        objects.into_iter().map(|o| o.doc).collect::<Vec<_>>()
    };
    let mut policies = docs(summaries?);
    // Described after listed: a policy's content wins over its summary.
    policies.extend(docs(described?));
    let (org, _unreadable) =
        keyward_graph::iam::org::Organization::new(&policies, &docs(targets?), &docs(parents?));
    Ok(org)
}

/// The IAM snapshot of each account, rebuilt from stored authorization-details objects
/// (AWS-managed policies, stored under the pseudo-account `aws`, join every account),
/// with the account's Organizations guardrails resolved once.
pub(crate) fn iam_snapshots(
    store: &dyn keyward_store::Store,
) -> Result<Vec<(String, keyward_graph::iam::authz::Snapshot)>, crate::EngineError> {
    use std::collections::BTreeMap;
    let lists = [
        ("iam_user", "UserDetailList"),
        ("iam_group", "GroupDetailList"),
        ("iam_role", "RoleDetailList"),
        ("iam_policy", "Policies"),
    ];
    let mut per_account: BTreeMap<String, serde_json::Map<String, serde_json::Value>> =
        BTreeMap::new();
    let mut aws_managed = Vec::new();
    for (kind, list) in lists {
        for o in store.objects(kind)? {
            let scope = o.scope.unwrap_or_default();
            if kind == "iam_policy" && scope == "aws" {
                aws_managed.push(o.doc);
                continue;
            }
            let doc = per_account.entry(scope).or_default();
            if let serde_json::Value::Array(items) = doc
                .entry(list)
                .or_insert_with(|| serde_json::Value::Array(Vec::new()))
            {
                items.push(o.doc);
            }
        }
    }
    let org = organization(store)?;
    Ok(per_account
        .into_iter()
        .map(|(account, mut doc)| {
            if let serde_json::Value::Array(items) = doc
                .entry("Policies")
                .or_insert_with(|| serde_json::Value::Array(Vec::new()))
            {
                items.extend(aws_managed.iter().cloned());
            }
            let mut snap =
                keyward_graph::iam::authz::Snapshot::new(&serde_json::Value::Object(doc));
            snap.org = org.guardrails(&account).map(std::sync::Arc::new);
            (account, snap)
        })
        .collect())
}

/// An identity's owners and, if it is one, why it is an orphan.
#[derive(Debug, Clone, Default)]
pub struct OwnerInfo {
    pub ownership: keyward_graph::analysis::Ownership,
    pub orphan: Option<keyward_graph::analysis::OrphanReason>,
}

impl Engine {
    /// The rows that pass `filter`'s owner tests, with their owners. Owners are walked for
    /// every row only when a filter or `all_owners` (a sort by owner) needs them; otherwise
    /// they stay `None` for [`Engine::fill_owners`] to walk on a page alone.
    pub fn owned<'e>(
        &self,
        rows: Vec<(&'e Identity, Lifecycle)>,
        filter: &OwnerFilter,
        all_owners: bool,
    ) -> Vec<Owned<'e>> {
        if !all_owners && filter.is_empty() {
            return rows.into_iter().map(|r| (r, None)).collect();
        }
        let listed: Vec<&Identity> = rows.iter().map(|(i, _)| *i).collect();
        rows.into_iter()
            .zip(self.owner_infos(&listed))
            .filter(|(_, o)| filter.matches(o))
            .map(|(r, o)| (r, Some(o)))
            .collect()
    }

    /// One page of the listing: the rows of `filter` that pass `owners`' tests, in
    /// listing order, after the first `offset`, at most `limit`, with their owners. An
    /// engine opened for that page ([`Engine::open_page`]) holds just its rows.
    pub fn page(
        &self,
        filter: &Filter,
        lc: LifecycleConfig,
        owners: &OwnerFilter,
        offset: usize,
        limit: usize,
    ) -> Vec<Owned<'_>> {
        let rows = self.owned(self.list(filter, lc), owners, false);
        let mut page: Vec<Owned<'_>> = if self.view.as_ref().is_some_and(|v| v.paged) {
            rows
        } else {
            rows.into_iter().skip(offset).take(limit).collect()
        };
        self.fill_owners(&mut page);
        page
    }

    /// Walks the owners [`Engine::owned`] left out (a page's).
    pub fn fill_owners(&self, page: &mut [Owned<'_>]) {
        let missing: Vec<&Identity> = page
            .iter()
            .filter(|(_, o)| o.is_none())
            .map(|((i, _), _)| *i)
            .collect();
        let mut found = self.owner_infos(&missing).into_iter();
        for (_, slot) in page.iter_mut().filter(|(_, o)| o.is_none()) {
            *slot = found.next();
        }
    }

    /// The IAM snapshot of each account, rebuilt from the stored authorization details.
    pub fn iam_snapshots(
        &self,
    ) -> Result<Vec<(String, keyward_graph::iam::authz::Snapshot)>, crate::EngineError> {
        iam_snapshots(self.store.as_ref())
    }

    /// Stored Kubernetes objects (RBAC, service accounts, workloads) by cluster.
    pub fn k8s_objects(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Vec<serde_json::Value>>, crate::EngineError>
    {
        k8s_objects(self.store.as_ref())
    }

    /// Escalation paths to admin from every principal (or only `from`), per account, and
    /// the admin-equivalent principals, as of `as_of`.
    pub fn escalation_paths(
        &self,
        from: Option<&str>,
        as_of: keyward_model::time::Millis,
    ) -> Result<(Vec<String>, Vec<Escalation>), crate::EngineError> {
        use keyward_graph::iam::escalation::Analysis;
        let mut found = Vec::new();
        let mut admins = Vec::new();
        for (account, snap) in &self.iam_snapshots()? {
            // Conditions on the time are decided as of then: an expired grant grants nothing.
            let analysis = Analysis::run_at(snap, as_of);
            admins.extend(analysis.admins.iter().cloned());
            for id in snap
                .principals()
                .into_keys()
                .filter(|id| from.is_none_or(|f| f == id))
            {
                if analysis.admins.contains(&id) {
                    continue;
                }
                if let Some(path) = analysis.path_to_admin(&id) {
                    found.push(Escalation {
                        account: account.clone(),
                        from: id,
                        path,
                    });
                }
            }
        }
        Ok((admins, found))
    }

    /// Escalation paths to admin that permissions boundaries and Organizations guardrails
    /// remove (from every principal, or only `from`), per account, as of `as_of`, with
    /// which boundary stopped which step.
    pub fn removed_paths(
        &self,
        from: Option<&str>,
        as_of: keyward_model::time::Millis,
    ) -> Result<Vec<(String, keyward_graph::iam::removed::Removed)>, crate::EngineError> {
        use keyward_graph::iam::escalation::Analysis;
        let mut out = Vec::new();
        for (account, snap) in &self.iam_snapshots()? {
            let bounded = Analysis::run_at(snap, as_of);
            let removed = keyward_graph::iam::removed::removed(snap, &bounded, from, as_of);
            out.extend(removed.into_iter().map(|r| (account.clone(), r)));
        }
        Ok(out)
    }

    /// What the estate's snapshots cover (for orphan reasons); compute once per listing.
    pub fn coverage(&self) -> keyward_graph::analysis::Coverage {
        match &self.view {
            Some(v) => v.coverage(),
            None => keyward_graph::analysis::Coverage::of(self.graph()),
        }
    }

    /// Ownership and orphan status of many identities (listings): short-lived identities
    /// inherit from what they belong to, each parent walked once
    /// ([`keyward_graph::analysis::OwnershipCache`]).
    pub fn owner_infos(&self, identities: &[&Identity]) -> Vec<OwnerInfo> {
        use keyward_graph::analysis;
        let g = self.graph();
        let coverage = self.coverage();
        let mut cache = analysis::OwnershipCache::without_chains();
        identities
            .iter()
            .map(|i| {
                let Some(node) = g.find(&i.id) else {
                    return OwnerInfo::default();
                };
                let ownership = cache.get(g, node);
                let scope = i.account.as_deref().or(i.cluster.as_deref());
                let orphan = analysis::orphan_reason(
                    g,
                    node,
                    i.kind,
                    scope,
                    &ownership,
                    &coverage,
                    i.last_seen.is_some(),
                );
                OwnerInfo { ownership, orphan }
            })
            .collect()
    }

    /// Ownership and orphan status of one identity, from the graph.
    pub fn owner_info(
        &self,
        i: &Identity,
        coverage: &keyward_graph::analysis::Coverage,
    ) -> OwnerInfo {
        use keyward_graph::analysis;
        let g = self.graph();
        let Some(node) = g.find(&i.id) else {
            return OwnerInfo::default();
        };
        let ownership = analysis::ownership(g, node);
        let scope = i.account.as_deref().or(i.cluster.as_deref());
        let orphan = analysis::orphan_reason(
            g,
            node,
            i.kind,
            scope,
            &ownership,
            coverage,
            i.last_seen.is_some(),
        );
        OwnerInfo { ownership, orphan }
    }
}

/// Stored Kubernetes objects (RBAC, service accounts, workloads) by cluster.
pub(crate) fn k8s_objects(
    store: &dyn keyward_store::Store,
) -> Result<std::collections::BTreeMap<String, Vec<serde_json::Value>>, crate::EngineError> {
    let mut out: std::collections::BTreeMap<String, Vec<serde_json::Value>> = Default::default();
    for kind in store.object_kinds()? {
        if !kind.starts_with("k8s:") {
            continue;
        }
        for o in store.objects(&kind)? {
            out.entry(o.scope.unwrap_or_else(|| "default".into()))
                .or_default()
                .push(o.doc);
        }
    }
    Ok(out)
}
