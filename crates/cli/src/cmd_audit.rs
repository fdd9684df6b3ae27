//! `keyward audit verify | export | anchor`: the audit log proves itself.
//!
//! `verify` walks the whole keyed MAC chain and reports the first broken entry (and, with
//! `--anchor`, checks the chain still reaches every signed checkpoint of the anchor file
//! with the same MAC, which is how deleting the last entries is caught); `anchor` appends
//! a signed checkpoint of the chain's head to a file outside the data directory; `export`
//! writes every entry as JSON lines or OCSF 1.4 events. The chain, the keys and the
//! checkpoint format are in `keyward_store::audit`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use keyward_store::{AuditRecord, SqliteStore, Store};
use serde_json::{Value, json};

use crate::Outcome;
use crate::output::now_ms;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Walk the whole chain; report the first broken entry. Exit 0 intact, 1 broken.
    Verify {
        /// An anchor file (`audit anchor --to`, `serve --audit-anchor`): the chain must
        /// still reach each checkpoint in it with the same MAC (catches truncation).
        #[arg(long, value_name = "FILE")]
        anchor: Option<PathBuf>,
        /// Print the report as JSON (the shape of `GET /api/audit/verify`).
        #[arg(long)]
        json: bool,
    },
    /// Every entry, oldest first: JSON lines or OCSF 1.4 events (one per line).
    Export {
        /// `jsonl` or `ocsf`.
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "ocsf"])]
        format: String,
        /// Write here instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Append a signed checkpoint of the chain's head to FILE, one JSON line (the file must
    /// be outside the data directory: another disk, host or account).
    Anchor {
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
}

/// Entries read per page when exporting.
const PAGE: usize = 10_000;

pub fn run(dir: &Path, cmd: Command) -> anyhow::Result<Outcome> {
    if keyward_engine::selected_store().is_none() && !dir.join("keyward.db").exists() {
        anyhow::bail!("no store in `{}`", dir.display());
    }
    // The store `--store` selected (its audit keys in `dir`), else SQLite in `dir`.
    let store: Box<dyn Store> = match keyward_engine::selected_store() {
        Some(location) => keyward_store::open(location, dir),
        None => SqliteStore::open(dir).map(|s| Box::new(s) as Box<dyn Store>),
    }
    .with_context(|| format!("opening the store in `{}`", dir.display()))?;
    match cmd {
        Command::Verify { anchor, json } => verify(store.as_ref(), anchor.as_deref(), json),
        Command::Export { format, output } => {
            let mut out: Box<dyn std::io::Write> = match &output {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating `{}`", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut after = 0;
            let mut n = 0u64;
            loop {
                let page = store.audit_entries(after, PAGE)?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for r in page {
                    if format == "ocsf" {
                        serde_json::to_writer(&mut out, &ocsf(&r))?;
                    } else {
                        serde_json::to_writer(&mut out, &keyward_server::audit_json(r))?;
                    }
                    out.write_all(b"\n")?;
                    n += 1;
                }
            }
            out.flush()?;
            if let Some(p) = output {
                eprintln!("exported {n} audit entries to `{}`", p.display());
            }
            Ok(Outcome::Clean)
        }
        Command::Anchor { to } => {
            outside_data_dir(dir, &to)?;
            let cp = store.audit_checkpoint(now_ms())?;
            keyward_store::audit::append_checkpoint(&to, &cp)?;
            println!(
                "anchored seq {} (mac {}) to `{}`",
                cp.seq,
                short(&cp.mac),
                to.display()
            );
            Ok(Outcome::Clean)
        }
    }
}

fn short(mac: &str) -> &str {
    mac.get(..16).unwrap_or(mac)
}

fn verify(store: &dyn Store, anchor: Option<&Path>, json: bool) -> anyhow::Result<Outcome> {
    let anchors = match anchor {
        Some(p) => keyward_store::audit::read_checkpoints(p)?,
        None => Vec::new(),
    };
    let r = store.audit_verify(&anchors)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        let against = match anchor {
            Some(p) => format!(
                "; checked against {} checkpoint(s) in `{}`",
                r.anchors,
                p.display()
            ),
            None => "; no anchor given, so entries deleted from the tail cannot be seen".into(),
        };
        let legacy = if r.legacy_entries > 0 {
            format!(" ({} legacy, unkeyed)", r.legacy_entries)
        } else {
            String::new()
        };
        match (&r.broken, &r.head) {
            (None, head) => println!(
                "audit log intact: {} entries{legacy}, head {}{against}",
                r.entries,
                head.as_ref().map_or_else(
                    || "none".to_owned(),
                    |h| format!("seq {} mac {}", h.seq, short(&h.mac))
                ),
            ),
            (Some(b), _) => println!(
                "audit log BROKEN at seq {}: {} ({} entries verified before it{against})",
                b.seq, b.why, r.entries
            ),
        }
    }
    Ok(if r.ok {
        Outcome::Clean
    } else {
        Outcome::Broken
    })
}

/// Refuses an anchor file inside the data directory: whoever can rewrite the store could
/// rewrite it too.
pub fn outside_data_dir(dir: &Path, file: &Path) -> anyhow::Result<()> {
    let data = std::fs::canonicalize(dir)
        .with_context(|| format!("reading the data directory `{}`", dir.display()))?;
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent = std::fs::canonicalize(parent)
        .with_context(|| format!("the anchor file's directory `{}`", parent.display()))?;
    if parent.starts_with(&data) {
        anyhow::bail!(
            "the anchor file `{}` is inside the data directory `{}`: keep it where whoever can \
             write the store cannot (another disk, host or account)",
            file.display(),
            dir.display()
        );
    }
    Ok(())
}

/// An audit entry as an OCSF 1.4 event: Account Change (3001) for API tokens created or
/// revoked (a token is a non-human account), API Activity (6003) for everything else.
pub fn ocsf(r: &AuditRecord) -> Value {
    let e = &r.entry;
    let failed = e.action.ends_with(".failed");
    let (class_uid, category_uid, activity_id, activity_name) = match e.action.as_str() {
        "token.create" => (3001, 3, 1, "Create"),
        "token.revoke" => (3001, 3, 5, "Disable"),
        a if a == "ingest" || a.starts_with("ingest.") => (6003, 6, 1, "Create"),
        a if a.starts_with("finding.") || a.starts_with("config.") => (6003, 6, 3, "Update"),
        _ => (6003, 6, 99, "Other"),
    };
    let surface = e.actor.split(':').next().unwrap_or("unknown");
    let surface = match surface {
        "token" => "api",
        s => s,
    };
    let mut v = json!({
        "class_uid": class_uid,
        "category_uid": category_uid,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        "time": e.at,
        "severity_id": 1,
        "status_id": if failed { 2 } else { 1 },
        "status": if failed { "Failure" } else { "Success" },
        "message": e.detail.clone().unwrap_or_else(|| e.action.clone()),
        "metadata": {
            "version": "1.4.0",
            "uid": r.seq.to_string(),
            "log_name": "keyward-audit",
            "product": {"name": "Keyward", "vendor_name": "Keyward", "version": env!("CARGO_PKG_VERSION")},
        },
        "actor": {"user": {"name": e.actor, "uid": e.actor}},
        "api": {"operation": e.action, "service": {"name": "keyward"}},
        "src_endpoint": {"name": surface},
        "unmapped": {
            "seq": r.seq, "mac": r.mac, "legacy": r.legacy, "target": e.target,
            "detail": e.detail, "before": e.before, "after": e.after,
        },
    });
    if class_uid == 3001 {
        let name = e
            .after
            .as_deref()
            .and_then(|a| serde_json::from_str::<Value>(a).ok())
            .and_then(|a| a.get("name").cloned());
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "user".into(),
                json!({"uid": e.target, "name": name, "type": "Other", "type_id": 99}),
            );
        }
    } else if let (Some(t), Some(o)) = (&e.target, v.as_object_mut()) {
        o.insert("resources".into(), json!([{"name": t}]));
    }
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use keyward_store::AuditEntry;

    fn record(action: &str, target: Option<&str>, after: Option<&str>) -> AuditRecord {
        AuditRecord {
            seq: 7,
            entry: AuditEntry {
                at: 1_700_000_000_123,
                actor: "token:abc".into(),
                action: action.into(),
                target: target.map(str::to_owned),
                after: after.map(str::to_owned),
                ..AuditEntry::default()
            },
            mac: "ff".into(),
            legacy: false,
        }
    }

    #[test]
    fn token_changes_are_account_changes_and_the_rest_api_activity() {
        let created = ocsf(&record(
            "token.create",
            Some("t1"),
            Some(r#"{"id":"t1","role":"admin","name":"ci"}"#),
        ));
        assert_eq!(created["class_uid"], 3001);
        assert_eq!(created["category_uid"], 3);
        assert_eq!(created["type_uid"], 300101);
        assert_eq!(created["user"]["uid"], "t1");
        assert_eq!(created["user"]["name"], "ci");
        let revoked = ocsf(&record("token.revoke", Some("t1"), None));
        assert_eq!(revoked["type_uid"], 300105);
        let status = ocsf(&record("finding.status", Some("kw-1"), Some("resolved")));
        assert_eq!(status["class_uid"], 6003);
        assert_eq!(status["type_uid"], 600303);
        assert_eq!(status["resources"][0]["name"], "kw-1");
        let failed = ocsf(&record("ui.sign-in.failed", None, None));
        assert_eq!(failed["type_uid"], 600399);
        assert_eq!(failed["status_id"], 2);
        // What every event carries.
        for v in [created, revoked, status, failed] {
            for field in [
                "class_uid",
                "category_uid",
                "activity_id",
                "type_uid",
                "time",
                "severity_id",
            ] {
                assert!(v[field].is_number(), "{field}: {v}");
            }
            assert_eq!(v["time"], 1_700_000_000_123_i64);
            assert_eq!(v["metadata"]["product"]["name"], "Keyward");
            assert_eq!(v["actor"]["user"]["name"], "token:abc");
            assert!(v["api"]["operation"].is_string());
            assert_eq!(v["src_endpoint"]["name"], "api");
            assert_eq!(v["unmapped"]["mac"], "ff");
        }
    }
}
