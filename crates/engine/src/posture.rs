//! Posture findings and the risk score per identity, after every ingest: the engine
//! gathers each identity's facts from the inventory, the graph, its baseline and its open
//! threat findings, runs the controls of `keyward_detect::posture` on them, and writes new,
//! changed and resolved posture findings (a condition that no longer holds resolves its
//! finding).

use keyward_detect::posture::{self, Definition, Facts, IamFacts, Observed};
use keyward_detect::risk::Risk;
use keyward_detect::{Finding, Severity, Status};
use keyward_graph::iam::Context;
use keyward_graph::iam::admin::{AdminGrant, admin_wildcard};
use keyward_graph::iam::escalation::{Analysis, Path};
use keyward_graph::{EdgeKind, analysis};
use keyward_model::time::Millis;
use keyward_model::{IdentityKind, LifecycleConfig, SourceKind};
use keyward_store::FindingChange;
use rustc_hash::FxHashMap;

use crate::{Engine, EngineError};

const DAY: Millis = 86_400_000;

impl Engine {
    /// Evaluates every posture control and the risk score of every identity; writes new,
    /// changed and resolved posture findings. `allow` lists approved foreign accounts.
    pub fn evaluate_posture(
        &mut self,
        now: Millis,
        allow: &[String],
    ) -> Result<Posture, EngineError> {
        let g = self.graph();
        let lc = LifecycleConfig {
            as_of: now,
            stale_after_days: 30,
        };
        let coverage = analysis::Coverage::of(g);
        let iam = Iam::of(&crate::iam_snapshots(self.store.as_ref())?, now);
        let logs = crate::lifecycle::LogSpans::of(self.inventory.iter());
        let mut foreign: FxHashMap<String, Vec<analysis::ForeignTrust>> = FxHashMap::default();
        for t in analysis::foreign_trusts(g, allow) {
            foreign.entry(t.role.clone()).or_default().push(t);
        }
        // Open threat findings per identity, for the anomaly factor.
        let mut anomaly: FxHashMap<String, (f64, String)> = FxHashMap::default();
        for r in self.store.findings(Some(now - 30 * DAY))? {
            if r.kind != "threat" || !matches!(r.status.as_str(), "open" | "acknowledged") {
                continue;
            }
            let f = crate::detection::from_row(&r)?;
            let a = f
                .details
                .get("score")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(match f.severity {
                    Severity::Critical => 9.0,
                    Severity::High => 7.0,
                    Severity::Medium => 5.0,
                    Severity::Low => 3.0,
                    Severity::Info => 1.0,
                });
            if let Some(id) = &f.identity {
                for key in [id.clone(), keyward_model::ids::principal(id).into_owned()] {
                    let slot = anomaly.entry(key).or_insert((0.0, String::new()));
                    if a > slot.0 {
                        *slot = (a, format!("{} ({})", f.title, f.id));
                    }
                }
            }
        }
        let mut out: Vec<Finding> = Vec::new();
        let mut risks = Vec::new();
        for i in self.inventory.iter() {
            if i.deleted.is_some()
                || !matches!(
                    i.kind,
                    IdentityKind::IamUser | IdentityKind::IamRole | IdentityKind::ServiceAccount
                )
                || i.id.contains(":role/aws-service-role/")
                // Canonical ids drop the path: the ARN keeps it.
                || i.arn.as_deref().is_some_and(|a| a.contains(":role/aws-service-role/"))
            {
                continue;
            }
            let Some(node) = g.find(&i.id) else { continue };
            let owners = analysis::ownership(g, node);
            let scope = i.account.as_deref().or(i.cluster.as_deref());
            let facts = Facts {
                identity: i,
                lifecycle: i.lifecycle(lc),
                orphan: analysis::orphan_reason(
                    g,
                    node,
                    i.kind,
                    scope,
                    &owners,
                    &coverage,
                    i.last_seen.is_some(),
                ),
                p: posture::permission_scope(g, node),
                foreign: foreign.get(&i.id).map_or(&[], Vec::as_slice),
                networks: self
                    .detector
                    .as_ref()
                    .and_then(|d| d.baseline(&i.id))
                    .map_or(0, |b| b.networks.len()),
                iam: iam.principals.get(&i.id).map(|(admin, path)| IamFacts {
                    admin: admin.as_ref(),
                    escalation: path.as_ref(),
                }),
                activity: logs.activity(i, lc),
                defined_in: defined_in(g, node),
                observed: None,
            };
            let mut facts = facts;
            if facts.iam.is_some_and(|iam| iam.admin.is_some()) {
                facts.observed = Some(self.observed(g, node, &i.id)?);
            }
            let risk = posture::risk_of(&facts, anomaly.get(&i.id), now);
            posture::evaluate(&facts, &risk, now, &mut out);
            risks.push((i.id.clone(), risk));
        }
        for (group, path) in &iam.groups {
            out.extend(posture::group_finding(group, path, now));
        }
        for (cluster, objects) in crate::k8s_objects(self.store.as_ref())? {
            posture::rbac::findings(&cluster, &objects, now, &mut out);
        }
        // Write: new or changed findings, and resolve the ones no longer found.
        let stored = self.store.findings(None)?;
        // An active threat finding's path to its owner is the one the graph shows now: one
        // written before its identity reached the graph, or before the context that names
        // its owner came in (which another worker may commit later), gets it here.
        let mut backfill = Vec::new();
        for r in &stored {
            if r.kind == "threat" && matches!(r.status.as_str(), "open" | "acknowledged") {
                let mut f = crate::detection::from_row(r)?;
                if let Some(id) = &f.identity {
                    let path = crate::detection::owner_path(g, id);
                    if !path.is_empty() && path != f.path {
                        f.path = path;
                        backfill.push(f);
                    }
                }
            }
        }
        let mut batch = self.store.begin()?;
        for f in &backfill {
            batch.put_finding(&crate::detection::to_row(f)?)?;
        }
        let mut written = Vec::new();
        let found: rustc_hash::FxHashSet<String> = out.iter().map(|f| f.id.clone()).collect();
        for mut f in out {
            if let Some(row) = batch.finding(&f.id)? {
                let old = crate::detection::from_row(&row)?;
                // An evaluation may be as of an earlier time than the last (the newest
                // event of replayed logs, after one with no events judged as of now).
                f.first_seen = old.first_seen.min(f.first_seen);
                f.last_seen = f.last_seen.max(old.last_seen);
                // `count` is how many times the condition came about: once per reopening,
                // not once per evaluation, so evaluating unchanged data changes nothing.
                let reopened = old.status == Status::Resolved;
                f.count = old.count + u64::from(reopened);
                f.status = if reopened { Status::Open } else { old.status };
                let next = crate::detection::to_row(&f)?;
                if next.doc == row.doc && next.status == row.status {
                    continue;
                }
                batch.put_finding(&next)?;
                written.push(f);
                continue;
            }
            batch.put_finding(&crate::detection::to_row(&f)?)?;
            written.push(f);
        }
        for r in &stored {
            if r.kind == "posture"
                && r.status != "resolved"
                && r.status != "false-positive"
                && !found.contains(&r.id)
            {
                let mut f = crate::detection::from_row(r)?;
                f.status = Status::Resolved;
                batch.put_finding(&crate::detection::to_row(&f)?)?;
                batch.add_finding_change(&FindingChange {
                    finding_id: f.id.clone(),
                    at: now,
                    actor: "keyward".into(),
                    status: "resolved".into(),
                    note: Some("the condition no longer holds".into()),
                })?;
            }
        }
        batch.commit()?;
        risks.sort_by(|a, b| b.1.r.total_cmp(&a.1.r).then(a.0.cmp(&b.0)));
        Ok(Posture {
            findings: written,
            risks,
        })
    }
}

/// How many of a role's sessions, the most recent first, a policy of observed use reads.
const OBSERVED_SESSIONS: usize = 10;
/// How many of each one's most recent events it reads.
const OBSERVED_EVENTS: usize = 1_000;

impl Engine {
    /// The IAM actions an identity and its most recent sessions were seen calling in the
    /// stored CloudTrail (calls denied left out): what a policy of observed use allows.
    /// Bounded ([`OBSERVED_SESSIONS`], [`OBSERVED_EVENTS`]), and asked only for the few
    /// identities allowed `*` on `*`.
    fn observed(
        &self,
        g: &keyward_graph::Graph,
        node: keyward_graph::NodeId,
        id: &str,
    ) -> Result<Observed, EngineError> {
        let mut sessions: Vec<(i64, &str)> = g
            .in_edges(node)
            .filter(|e| e.kind == EdgeKind::SessionOf)
            .map(|e| (e.last_seen.unwrap_or(0), g.key(e.from)))
            .collect();
        sessions.sort_unstable_by(|a, b| b.cmp(a));
        let actors =
            std::iter::once(id).chain(sessions.into_iter().take(OBSERVED_SESSIONS).map(|s| s.1));
        let mut out = Observed::default();
        let mut actions = std::collections::BTreeSet::new();
        for actor in actors {
            out.actors += 1;
            for e in self.store.recent_events(actor, OBSERVED_EVENTS)? {
                if e.source != SourceKind::Cloudtrail || e.denied() {
                    continue;
                }
                out.events += 1;
                if let Some((source, name)) = e.action.rsplit_once(':')
                    && !name.is_empty()
                    // Console sign-in events are not calls an identity policy allows.
                    && keyward_model::ids::service_name(source) != "signin"
                {
                    actions.insert(format!(
                        "{}:{name}",
                        keyward_model::ids::service_name(source)
                    ));
                }
            }
        }
        out.actions = actions.into_iter().collect();
        Ok(out)
    }
}

/// The Terraform resources the graph says define an identity (`defined_in` edges to a
/// `tf:<file>#<address>` node, whose evidence is the file and line).
fn defined_in(g: &keyward_graph::Graph, node: keyward_graph::NodeId) -> Vec<Definition> {
    let mut out: Vec<Definition> = g
        .out_edges(node)
        .filter(|e| e.kind == EdgeKind::DefinedIn)
        .filter_map(|e| {
            let key = g.key(e.to).strip_prefix("tf:")?;
            let (file, address) = key.rsplit_once('#')?;
            let source = e
                .detail
                .map(|d| d.source.clone())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| file.to_owned());
            Some(Definition {
                address: address.to_owned(),
                source,
            })
        })
        .collect();
    out.sort_unstable_by(|a, b| (&a.address, &a.source).cmp(&(&b.address, &b.source)));
    out.dedup();
    out
}

/// What the accounts' IAM snapshots say at the evaluation's time: each principal's
/// `*`-on-`*` grant and shortest escalation path, and the groups every member of which can
/// escalate.
#[derive(Default)]
struct Iam {
    principals: FxHashMap<String, (Option<AdminGrant>, Option<Path>)>,
    groups: Vec<(String, Path)>,
}

impl Iam {
    fn of(snapshots: &[(String, keyward_graph::iam::authz::Snapshot)], now: Millis) -> Iam {
        let mut ctx = Context::default();
        ctx.at(now);
        let mut out = Iam::default();
        for (_, snap) in snapshots {
            let analysis = Analysis::run_at(snap, now);
            for (id, p) in snap.principals() {
                let admin = admin_wildcard(&p, &ctx);
                let path = analysis.path_to_admin(&id).filter(|p| !p.steps.is_empty());
                out.principals.insert(id, (admin, path));
            }
            let groups: std::collections::BTreeSet<&String> =
                analysis.group_steps.iter().map(|s| &s.from).collect();
            for g in groups {
                if let Some(path) = analysis.path_to_admin(g) {
                    out.groups.push((g.clone(), path));
                }
            }
        }
        out
    }
}

/// What a posture evaluation found.
pub struct Posture {
    /// Posture findings that hold now.
    pub findings: Vec<Finding>,
    /// Every evaluated identity's risk, highest first.
    pub risks: Vec<(String, Risk)>,
}
