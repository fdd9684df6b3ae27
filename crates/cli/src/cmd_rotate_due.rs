//! `keyward rotate --due [--plan] [--high-days N] [--standard-days N] [--as-of TIME]`: the
//! access keys overdue or due soon on their rotation schedule (30 days for high-privilege
//! identities, 90 for the others: `keyward_respond::schedule`), from the inventory (IAM
//! snapshots, credential reports). With `--plan`, a dry-run rotation plan per due key,
//! stored like any plan (`keyward respond list`), unless one is already planned.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_model::{CredentialKind, CredentialStatus, IdentityKind};
use keyward_respond::execute::Connectors;
use keyward_respond::rotate::{self, SecretLocation};
use keyward_respond::schedule::{self, Due, KeyDue, Schedule};
use keyward_respond::{Action, PlanStatus};
use keyward_store::AuditEntry;

use crate::Outcome;
use crate::output::{cli_actor, now_ms, table};

pub struct Ask<'a> {
    pub schedule: Schedule,
    pub as_of: Option<i64>,
    pub plan: bool,
    pub json: bool,
    pub all: bool,
    pub grace_days: u32,
    pub kube_context: Option<&'a str>,
}

pub fn run(dir: &Path, ask: &Ask<'_>) -> anyhow::Result<Outcome> {
    let mut engine =
        Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))?;
    let now = ask.as_of.unwrap_or_else(now_ms);
    let keys = due_keys(&mut engine, dir, ask.schedule, now)?;
    let shown: Vec<&KeyDue> = keys
        .iter()
        .filter(|k| ask.all || k.status != Due::Ok)
        .collect();
    let mut planned = BTreeMap::new();
    if ask.plan {
        planned = plan_due(&mut engine, dir, &shown, ask)?;
    }
    if ask.json {
        let rows: Vec<serde_json::Value> = shown
            .iter()
            .map(|k| {
                let mut v = serde_json::to_value(k).unwrap_or_default();
                if let (serde_json::Value::Object(m), Some(p)) = (&mut v, planned.get(&k.key_id)) {
                    m.insert("plan".into(), p.clone().into());
                }
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let mut t = table();
        t.set_header([
            "status", "user", "key", "age", "schedule", "deadline", "plan", "reason",
        ]);
        for k in &shown {
            t.add_row([
                k.status.as_str().to_owned(),
                k.user.clone(),
                k.key_id.clone(),
                format!("{} d", k.age_days),
                format!("{} d (warn from {})", k.schedule_days, k.warn_from_day),
                k.deadline.clone(),
                planned.get(&k.key_id).cloned().unwrap_or_default(),
                k.reason.clone(),
            ]);
        }
        println!("{t}");
        let over = keys.iter().filter(|k| k.status == Due::Overdue).count();
        let soon = keys.iter().filter(|k| k.status == Due::DueSoon).count();
        println!(
            "{over} overdue, {soon} due soon of {} active access keys (as of {}){}",
            keys.len(),
            keyward_model::time::format(now),
            if ask.plan || shown.is_empty() {
                String::new()
            } else {
                ": `keyward rotate --due --plan` stores a rotation plan for each".into()
            }
        );
    }
    Ok(Outcome::Clean)
}

/// Every active access key of every IAM user in the inventory against its schedule, most
/// urgent first.
pub fn due_keys(
    engine: &mut Engine,
    dir: &Path,
    s: Schedule,
    now: i64,
) -> anyhow::Result<Vec<KeyDue>> {
    let p: BTreeMap<String, f64> = {
        let _writing = crate::output::write_lock(engine, dir)?;
        let as_of = engine.latest_event_time()?.unwrap_or(now);
        engine
            .evaluate_posture(as_of, &[])?
            .risks
            .into_iter()
            .map(|(id, r)| (id, r.p))
            .collect()
    };
    let mut out = Vec::new();
    for i in engine.inventory().iter() {
        if i.deleted.is_some() || i.kind != IdentityKind::IamUser {
            continue;
        }
        for c in &i.credentials {
            if c.kind != CredentialKind::AccessKey || c.status != CredentialStatus::Active {
                continue;
            }
            let Some(created) = c.created else { continue };
            let scope = p.get(&i.id).copied().unwrap_or(0.0);
            out.push(schedule::due(s, &i.id, &i.name, &c.id, scope, created, now));
        }
    }
    out.sort_by(|a, b| {
        a.status
            .cmp(&b.status)
            .then_with(|| b.age_days.cmp(&a.age_days))
            .then_with(|| a.key_id.cmp(&b.key_id))
    });
    Ok(out)
}

/// Stores a dry-run rotation plan per due key without one; key id → plan id.
fn plan_due(
    engine: &mut Engine,
    dir: &Path,
    keys: &[&KeyDue],
    ask: &Ask<'_>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for p in engine.response_plans(100_000)? {
        if !matches!(p.status, PlanStatus::Planned | PlanStatus::Executing) {
            continue;
        }
        for s in &p.steps {
            if let Action::CreateAccessKey { replaces, .. } = &s.action {
                out.insert(replaces.clone(), p.id.clone());
            }
        }
    }
    let todo: Vec<&&KeyDue> = keys
        .iter()
        .filter(|k| !out.contains_key(&k.key_id))
        .collect();
    if todo.is_empty() {
        return Ok(out);
    }
    let slots: Vec<(String, i64)> = todo
        .iter()
        .filter(|k| !is_key_id(&k.key_id))
        .map(|k| (k.user.clone(), k.created_ms))
        .collect();
    let (sm, kube, note, ids) = live(ask.kube_context, &slots)?;
    let actor = cli_actor();
    let now = now_ms();
    let _writing = crate::output::write_lock(engine, dir)?;
    for k in todo {
        // A credential report names slots (`access_key_1`), not ids: the id is the live key
        // made at the same second.
        let key_id = if is_key_id(&k.key_id) {
            k.key_id.clone()
        } else if let Some(id) = ids.get(&(k.user.clone(), k.created_ms)) {
            id.clone()
        } else {
            eprintln!(
                "{} of {}: no plan, its key id is unknown (the credential report names slots): run with the AWS connector configured, or `keyward rotate {}`",
                k.key_id, k.user, k.user
            );
            continue;
        };
        if let Some(p) = out.get(&key_id).cloned() {
            out.insert(k.key_id.clone(), p);
            continue;
        }
        let account = k
            .identity
            .strip_prefix("arn:aws:iam::")
            .and_then(|r| r.split(':').next())
            .map(str::to_owned);
        let mut locations: Vec<SecretLocation> = sm
            .get(&key_id)
            .into_iter()
            .flatten()
            .map(|s| SecretLocation::Secretsmanager {
                secret_id: s.clone(),
            })
            .collect();
        locations.extend(kube.get(&key_id).into_iter().flatten().map(|(ns, n)| {
            SecretLocation::Kubernetes {
                namespace: ns.clone(),
                name: n.clone(),
            }
        }));
        let mut plan = rotate::plan(&rotate::Request {
            account: account.as_deref(),
            user: &k.user,
            old_key_id: &key_id,
            locations: &locations,
            grace_days: ask.grace_days,
            now,
            actor: &actor,
        });
        plan.notes
            .insert(0, format!("due by schedule: {}", k.reason));
        plan.notes.extend(note.clone());
        engine.save_plan(
            &plan,
            AuditEntry {
                at: now,
                actor: actor.clone(),
                action: "respond.plan".into(),
                target: Some(plan.id.clone()),
                detail: Some(format!(
                    "scheduled rotation of {} of {} ({}, deadline {})",
                    key_id,
                    k.user,
                    k.status.as_str(),
                    k.deadline
                )),
                before: None,
                after: None,
            },
        )?;
        out.insert(k.key_id.clone(), plan.id.clone());
        out.insert(key_id, plan.id.clone());
    }
    Ok(out)
}

fn is_key_id(s: &str) -> bool {
    s.starts_with("AKIA") && s.len() == 20
}

type Index = (
    BTreeMap<String, Vec<String>>,
    BTreeMap<String, Vec<(String, String)>>,
    Option<String>,
    BTreeMap<(String, i64), String>,
);

/// Where keys live, and the ids of the keys known by slot (user, creation time), when the
/// connectors are configured (otherwise a note for the plans).
fn live(kube_context: Option<&str>, slots: &[(String, i64)]) -> anyhow::Result<Index> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let c = Connectors::from_env(kube_context).await;
        let mut note = Vec::new();
        let mut ids = BTreeMap::new();
        #[cfg(feature = "aws")]
        let sm = match &c.aws {
            Some(a) => {
                for (user, created) in slots {
                    let keys = a.dated_keys(user).await.unwrap_or_default();
                    if let Some(k) = keys
                        .iter()
                        .find(|k| k.created.is_some_and(|c| (c - created).abs() < 2_000))
                    {
                        ids.insert((user.clone(), *created), k.id.clone());
                    }
                }
                a.secret_index().await?
            }
            None => {
                note.push("Secrets Manager");
                BTreeMap::new()
            }
        };
        #[cfg(not(feature = "aws"))]
        let sm = {
            let _ = slots;
            note.push("Secrets Manager");
            BTreeMap::new()
        };
        #[cfg(feature = "kubernetes")]
        let kube = match &c.kube {
            Some(k) => k.secret_index(&[]).await?,
            None => {
                note.push("Kubernetes Secrets");
                BTreeMap::new()
            }
        };
        #[cfg(not(feature = "kubernetes"))]
        let kube = {
            note.push("Kubernetes Secrets");
            BTreeMap::new()
        };
        let note = (!note.is_empty()).then(|| {
            format!(
                "{} not searched (no connector): make the plan again where they can be read, or rotate with `keyward rotate USER`, which searches when it runs",
                note.join(" and ")
            )
        });
        Ok((sm, kube, note, ids))
    })
}
