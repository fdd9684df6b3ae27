//! Output helpers shared by subcommands: the inventory JSON contract (documented in
//! `docs/inventory-json.md`), CSV, and tables.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use comfy_table::{ContentArrangement, Table, presets};
use keyward_model::{Identity, Lifecycle, time};
use serde::Serialize;

pub fn ts(t: Option<i64>) -> Option<String> {
    t.map(time::format)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The audit log's name for whoever runs this command: `cli:<os user>` (from `$USER` or
/// `$LOGNAME`), or `cli`.
pub fn cli_actor() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.trim().is_empty()))
        .map_or_else(|| "cli".to_owned(), |u| format!("cli:{}", u.trim()))
}

/// Parses `--as-of`/`--since` style instants.
pub fn parse_instant(s: &str) -> anyhow::Result<i64> {
    time::parse(s).ok_or_else(|| {
        anyhow::anyhow!("`{s}` is not a timestamp (use RFC 3339, e.g. 2026-11-15T00:00:00Z)")
    })
}

pub fn table() -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING);
    t.set_content_arrangement(if std::io::stdout().is_terminal() {
        ContentArrangement::Dynamic
    } else {
        ContentArrangement::Disabled
    });
    t
}

#[derive(Serialize)]
pub struct CredentialRow<'a> {
    pub id: &'a str,
    pub kind: keyward_model::CredentialKind,
    pub status: keyward_model::CredentialStatus,
    pub created: Option<String>,
    pub age_days: Option<i64>,
    pub last_used: Option<String>,
    pub last_used_region: Option<&'a str>,
    pub last_used_service: Option<&'a str>,
}

/// One inventory entry as JSON: the public contract.
#[derive(Serialize)]
pub struct InventoryRow<'a> {
    pub id: &'a str,
    pub platform: keyward_model::Platform,
    pub kind: keyward_model::IdentityKind,
    pub name: &'a str,
    pub arn: Option<&'a str>,
    pub native_id: Option<&'a str>,
    pub account: Option<&'a str>,
    pub cluster: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub issuer: Option<&'a str>,
    pub created: Option<String>,
    pub last_used: Option<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub deleted: Option<String>,
    pub state: &'static str,
    pub evidence: &'static str,
    pub sources: Vec<&'a str>,
    pub federated: bool,
    pub static_credentials: bool,
    pub active_keys: usize,
    pub credentials: Vec<CredentialRow<'a>>,
    pub event_count: u64,
    pub parent: Option<&'a str>,
    pub assumed_by: Vec<&'a str>,
    pub created_by: Vec<&'a str>,
    pub chain: Vec<&'a str>,
    pub source_identity: Option<&'a str>,
    pub links: Vec<&'a str>,
    pub tags: &'a BTreeMap<String, String>,
    pub labels: &'a BTreeMap<String, String>,
    pub annotations: &'a BTreeMap<String, String>,
    /// The most likely human owner (email or `@handle`), from the identity graph.
    pub owner: Option<String>,
    pub team: Option<String>,
    /// 0–1; `0` when no owner was found.
    pub owner_confidence: f64,
    pub orphan_reason: Option<&'static str>,
}

/// The owner column text: `alice@x (0.86)`, `team platform (0.9)`, or empty.
pub fn owner_cell(o: &keyward_engine::OwnerInfo) -> String {
    let own = &o.ownership;
    let departed = own.primary().is_some_and(|p| p.departed);
    let owner = own.owner.as_ref().map(|p| {
        if departed {
            format!("{p} (departed)")
        } else {
            p.clone()
        }
    });
    match (&owner, &own.team) {
        (Some(p), Some(t)) => format!("{p} / {t} ({:.2})", own.confidence),
        (Some(p), None) => format!("{p} ({:.2})", own.confidence),
        (None, Some(t)) => format!("team {t} ({:.2})", own.confidence),
        (None, None) => String::new(),
    }
}

pub fn row<'a>(
    i: &'a Identity,
    state: Lifecycle,
    as_of: i64,
    owner: &keyward_engine::OwnerInfo,
) -> InventoryRow<'a> {
    InventoryRow {
        id: &i.id,
        platform: i.platform,
        kind: i.kind,
        name: &i.name,
        arn: i.arn.as_deref(),
        native_id: i.native_id.as_deref(),
        account: i.account.as_deref(),
        cluster: i.cluster.as_deref(),
        namespace: i.namespace.as_deref(),
        subject: i.subject.as_deref(),
        issuer: i.issuer.as_deref(),
        created: ts(i.created),
        last_used: ts(i.last_used),
        first_seen: ts(i.first_seen),
        last_seen: ts(i.last_seen),
        deleted: ts(i.deleted),
        state: state.as_str(),
        evidence: i.evidence.label(),
        sources: i.sources.iter().map(String::as_str).collect(),
        federated: i.federated(),
        static_credentials: i.has_static_credentials(),
        active_keys: i.active_key_count(),
        credentials: i
            .credentials
            .iter()
            .map(|c| CredentialRow {
                id: &c.id,
                kind: c.kind,
                status: c.status,
                created: ts(c.created),
                age_days: c.created.map(|t| (as_of - t).max(0) / time::MS_PER_DAY),
                last_used: ts(c.last_used),
                last_used_region: c.last_used_region.as_deref(),
                last_used_service: c.last_used_service.as_deref(),
            })
            .collect(),
        event_count: i.event_count,
        parent: i.parent.as_deref(),
        assumed_by: i.assumed_by.iter().map(String::as_str).collect(),
        created_by: i.created_by.iter().map(String::as_str).collect(),
        chain: i.chain.iter().map(String::as_str).collect(),
        source_identity: i.source_identity.as_deref(),
        links: i.links.iter().map(String::as_str).collect(),
        tags: &i.tags,
        labels: &i.labels,
        annotations: &i.annotations,
        owner: owner.ownership.owner.clone(),
        team: owner.ownership.team.clone(),
        owner_confidence: owner.ownership.confidence,
        orphan_reason: owner.orphan.as_ref().map(|r| r.as_str()),
    }
}

/// Where an identity lives, in one short string.
pub fn scope(i: &Identity) -> String {
    match (&i.account, &i.cluster, &i.namespace) {
        (_, Some(c), Some(ns)) => format!("{c}/{ns}"),
        (_, Some(c), None) => c.clone(),
        (Some(a), None, Some(ns)) => format!("{a} ns:{ns}"),
        (Some(a), None, None) => a.clone(),
        (None, None, Some(ns)) => format!("ns:{ns}"),
        (None, None, None) => String::new(),
    }
}

/// Days between two instants, rendered as `12d`.
pub fn age(t: Option<i64>, as_of: i64) -> String {
    t.map(|t| format!("{}d", (as_of - t).max(0) / time::MS_PER_DAY))
        .unwrap_or_else(|| "-".into())
}

pub fn credential_summary(i: &Identity, as_of: i64) -> String {
    let keys = i.active_key_count();
    let oldest = i
        .credentials
        .iter()
        .filter(|c| {
            c.kind == keyward_model::CredentialKind::AccessKey
                && c.status == keyward_model::CredentialStatus::Active
        })
        .filter_map(|c| c.created)
        .min();
    match (keys, oldest) {
        (0, _) if i.federated() => "federated".into(),
        (0, _) => String::new(),
        (n, Some(t)) => format!(
            "{n} key{} (oldest {})",
            if n == 1 { "" } else { "s" },
            age(Some(t), as_of)
        ),
        (n, None) => format!("{n} key{}", if n == 1 { "" } else { "s" }),
    }
}

/// Waits for the right to write to the store, saying so when another process holds it.
pub fn write_lock(
    engine: &mut keyward_engine::Engine,
    dir: &std::path::Path,
) -> anyhow::Result<keyward_engine::WriteLock> {
    if let Some(l) = engine.try_write_lock()? {
        return Ok(l);
    }
    eprintln!(
        "waiting for another keyward process writing to `{}`…",
        dir.display()
    );
    Ok(engine.write_lock()?)
}

/// A severity argument: info, low, medium, high, critical.
pub fn parse_severity(s: &str) -> Result<keyward_detect::Severity, String> {
    keyward_detect::Severity::parse(s).ok_or_else(|| format!("unknown severity `{s}`"))
}

/// Writes a plan's evidence into `dir`: `evidence.json` (as stored, its BLAKE3 in
/// `evidence.blake3`), `plan.json`, one file per target under `targets/`, and the
/// Kubernetes objects it holds as one `kubernetes-objects.json` List (`kubectl apply -f`
/// re-creates them). Returns how many files were written.
pub fn write_evidence(
    dir: &std::path::Path,
    plan: &keyward_respond::Plan,
    ev: &keyward_store::EvidenceRow,
) -> anyhow::Result<usize> {
    use anyhow::Context as _;
    let write = |name: &str, text: &str| -> anyhow::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing `{}`", path.display()))
    };
    write("evidence.json", &ev.doc)?;
    write("evidence.blake3", &format!("{}  evidence.json\n", ev.hash))?;
    write("plan.json", &serde_json::to_string_pretty(plan)?)?;
    let mut files = 3;
    let doc: serde_json::Value = serde_json::from_str(&ev.doc).context("reading the evidence")?;
    if let Some(targets) = doc.get("targets").and_then(serde_json::Value::as_object) {
        std::fs::create_dir_all(dir.join("targets"))?;
        for (name, state) in targets {
            let file: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            write(
                &format!("targets/{file}.json"),
                &serde_json::to_string_pretty(state)?,
            )?;
            files += 1;
        }
    }
    let mut objects = Vec::new();
    collect_k8s_objects(
        doc.get("targets").unwrap_or(&serde_json::Value::Null),
        &mut objects,
    );
    if !objects.is_empty() {
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
        write(
            "kubernetes-objects.json",
            &serde_json::to_string_pretty(&list)?,
        )?;
        files += 1;
    }
    Ok(files)
}

/// Kubernetes objects (anything with `apiVersion`, `kind` and `metadata.name`) in the
/// evidence, with their server-set fields removed so they can be applied again.
fn collect_k8s_objects(v: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
    match v {
        serde_json::Value::Object(m) => {
            let is_object = m.contains_key("apiVersion")
                && m.contains_key("kind")
                && v.pointer("/metadata/name").is_some();
            if is_object {
                let mut o = v.clone();
                if let Some(meta) = o
                    .get_mut("metadata")
                    .and_then(serde_json::Value::as_object_mut)
                {
                    for k in [
                        "resourceVersion",
                        "uid",
                        "creationTimestamp",
                        "managedFields",
                        "generation",
                    ] {
                        meta.remove(k);
                    }
                }
                if let Some(o) = o.as_object_mut() {
                    o.remove("status");
                }
                if !out.contains(&o) {
                    out.push(o);
                }
                return;
            }
            for x in m.values() {
                collect_k8s_objects(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_k8s_objects(x, out)),
        _ => {}
    }
}
