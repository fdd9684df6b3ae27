//! GitHub webhook deliveries → events and identity observations.
//!
//! The input is a delivery as GitHub's own API returns it (`GET
//! /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}`, and the same shape for
//! organization and App hooks): `guid`, `delivered_at`, `event`, `action`, and
//! `request.payload`, the body GitHub posted. `keyward serve` writes each webhook it
//! receives in exactly this shape, so a delivery posted live and one fetched later from
//! the API normalize the same way.
//!
//! Events that create or use non-human identities become inventory facts:
//!
//! | event | identity |
//! |---|---|
//! | `deploy_key` | `github:deploy-key/<owner>/<repo>/<key id>` (created, deleted, read-only) |
//! | `installation`, `installation_repositories` | `github:app/<app slug>@<account>` |
//! | `personal_access_token_request` | `github:pat/<org>/<token id>`, owned by its user |
//! | `workflow_run`, `workflow_job` | activity of `github:workflow/<owner>/<repo>/<path>` |
//! | `secret_scanning_alert` | activity on the repository (the secret is never in the payload) |
//! | `github_app_authorization` | a user revoked an App's authorization |
//!
//! The sender is the actor: `github:user/<login>`, or for a bot (`dependabot[bot]`) the App
//! installation it acts as. Other event types are skipped (not rejected).

use keyward_model::Reason;
use std::borrow::Cow;

use keyward_model::{Event, IdentityKind, Observation, Platform, SourceKind, time};
use serde_json::{Value, json};

use crate::{Context, Output, Sink, json_error, sniff::trim_start};

/// Event types read; all others are skipped.
pub const EVENTS: [&str; 9] = [
    "deploy_key",
    "installation",
    "installation_repositories",
    "personal_access_token_request",
    "workflow_run",
    "workflow_job",
    "secret_scanning_alert",
    "github_app_authorization",
    "ping",
];

pub fn user_id(login: &str) -> String {
    format!("github:user/{login}")
}

pub fn app_id(slug: &str, account: &str) -> String {
    format!("github:app/{slug}@{account}")
}

pub fn deploy_key_id(repo: &str, key_id: &str) -> String {
    format!("github:deploy-key/{repo}/{key_id}")
}

pub fn pat_id(org: &str, token_id: &str) -> String {
    format!("github:pat/{org}/{token_id}")
}

pub fn workflow_id(repo: &str, path: &str) -> String {
    format!("github:workflow/{repo}/{path}")
}

/// The value at `path` (object keys), if every step exists.
fn at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |cur, p| cur.get(p))
}

fn s<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    at(v, path)?.as_str().filter(|s| !s.is_empty())
}

/// A string or number as text (ids are numbers in payloads).
fn text(v: &Value, path: &[&str]) -> Option<String> {
    match at(v, path)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An RFC 3339 time, or epoch seconds (installation payloads use both).
fn when(v: &Value, path: &[&str]) -> Option<i64> {
    match at(v, path)? {
        Value::String(s) => time::parse(s),
        Value::Number(n) => n.as_i64().map(|secs| secs.saturating_mul(1000)),
        _ => None,
    }
}

/// A details object without its absent (null) fields.
fn compact(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, x| !x.is_null());
    }
    v
}

fn observation(id: String, kind: IdentityKind, name: impl Into<String>) -> Observation {
    Observation::new(id, Platform::Github, kind, name, SourceKind::GithubWebhook)
}

/// Adds an observation to the output; returns its id.
fn push(out: &mut Output, o: Observation) -> String {
    let id = o.id.clone();
    out.observations.push(o);
    id
}

/// A `created` action names who created the identity; `deleted` ends it.
fn lifecycle(o: &mut Observation, action: Option<&str>, actor: &Option<String>, at: i64) {
    match action {
        Some("created") => o.facts.created_by = actor.clone(),
        Some("deleted") => o.facts.deleted = Some(at),
        _ => {}
    }
}

/// The sender as an identity: a user, or the App installation a bot acts as.
fn sender(payload: &Value, account: Option<&str>, at: i64, out: &mut Output) -> Option<String> {
    let login = s(payload, &["sender", "login"])?;
    let bot = s(payload, &["sender", "type"]) == Some("Bot") || login.ends_with("[bot]");
    let mut o = match (bot, account) {
        (true, Some(acct)) => {
            let slug = login.trim_end_matches("[bot]");
            observation(
                app_id(slug, acct),
                IdentityKind::GithubApp,
                format!("{slug} on {acct}"),
            )
        }
        _ => observation(user_id(login), IdentityKind::GithubUser, login),
    };
    o.facts.native_id = text(payload, &["sender", "id"]);
    o.facts.account = account.map(str::to_owned);
    o.used_at = Some(at);
    Some(push(out, o))
}

/// Normalizes one delivery (one JSON line). `Ok(None)` for event types that carry no
/// identity (`push`, `issues`, …) and for `ping`.
pub fn normalize_delivery(bytes: &[u8], _ctx: &Context) -> Result<Option<Output<'static>>, Reason> {
    crate::depth::check(bytes)?;
    let d: Value = serde_json::from_slice(bytes).map_err(json_error)?;
    delivery(&d, || bytes.to_vec())
}

/// A delivery received live (the webhook endpoint): its tree as built from the request's
/// headers and payload, and `raw`, its serialized form, stored as the event's record.
/// Accepted, skipped or rejected into `sink` as line 1, as a file's delivery would be.
pub fn normalize_webhook(d: &Value, raw: Vec<u8>, sink: &mut dyn crate::Sink) {
    crate::emit(sink, delivery(d, || raw), 1, None);
}

/// `raw`: the delivery's bytes, copied only for a delivery that becomes an event.
fn delivery(d: &Value, raw: impl FnOnce() -> Vec<u8>) -> Result<Option<Output<'static>>, Reason> {
    if !d.is_object() {
        return Err("expected a webhook delivery object".into());
    }
    let event = s(d, &["event"])
        .or_else(|| s(d, &["request", "headers", "X-GitHub-Event"]))
        .ok_or("missing `event` (the X-GitHub-Event header)")?;
    let guid = s(d, &["guid"])
        .or_else(|| s(d, &["request", "headers", "X-GitHub-Delivery"]))
        .ok_or("missing `guid` (the X-GitHub-Delivery header)")?;
    let payload = d
        .get("request")
        .and_then(|r| r.get("payload"))
        .filter(|p| p.is_object())
        .ok_or("missing `request.payload` object")?;
    let delivered = s(d, &["delivered_at"]).ok_or(Reason::Missing("delivered_at".into()))?;
    let at = time::parse(delivered).ok_or(Reason::Invalid {
        field: "delivered_at",
        expected: "a timestamp",
    })?;
    if event == "ping" || !EVENTS.contains(&event) {
        return Ok(None);
    }
    let action = s(payload, &["action"]);
    let repo = s(payload, &["repository", "full_name"]);
    let account = s(payload, &["organization", "login"])
        .or_else(|| s(payload, &["repository", "owner", "login"]))
        .or_else(|| s(payload, &["installation", "account", "login"]))
        .or_else(|| repo.and_then(|r| r.split('/').next()));
    let mut out = Output::default();
    let actor = sender(payload, account, at, &mut out);
    let target = match event {
        "deploy_key" => deploy_key(payload, repo, action, &actor, at, &mut out)?,
        "installation" | "installation_repositories" => {
            installation(payload, event, action, &actor, at, &mut out)?
        }
        "personal_access_token_request" => pat_request(payload, account, action, at, &mut out)?,
        "workflow_run" | "workflow_job" => workflow(payload, event, repo, at, &mut out),
        "secret_scanning_alert" => repo.map(|r| {
            let n = text(payload, &["alert", "number"]).unwrap_or_default();
            format!("{r}#secret-scanning-alert-{n}")
        }),
        _ => s(payload, &["installation", "app_slug"]).map(str::to_owned),
    };
    let name = match action {
        Some(a) => format!("{event}.{a}"),
        None => event.to_owned(),
    };
    out.event = Some(Event {
        native_id: Cow::Owned(guid.to_owned()),
        source: SourceKind::GithubWebhook,
        time: at,
        action: Cow::Owned(name),
        actor: actor.map(Cow::Owned),
        source_ip: None,
        user_agent: None,
        region: None,
        account: account.map(|a| Cow::Owned(a.to_owned())),
        error_code: None,
        target: target.map(Cow::Owned),
        credential: None,
        invoked_by: None,
        shared_id: None,
        stage: 0,
    });
    out.raw = Some(Cow::Owned(raw()));
    Ok(Some(out))
}

fn deploy_key(
    p: &Value,
    repo: Option<&str>,
    action: Option<&str>,
    actor: &Option<String>,
    at: i64,
    out: &mut Output,
) -> Result<Option<String>, Reason> {
    let repo = repo.ok_or("deploy_key: missing `repository.full_name`")?;
    let key_id = text(p, &["key", "id"]).ok_or("deploy_key: missing `key.id`")?;
    let title = s(p, &["key", "title"]).unwrap_or(&key_id);
    let mut o = observation(deploy_key_id(repo, &key_id), IdentityKind::DeployKey, title);
    o.facts.native_id = Some(key_id);
    o.facts.account = repo.split('/').next().map(str::to_owned);
    o.facts.created = when(p, &["key", "created_at"]);
    o.facts.last_used = when(p, &["key", "last_used"]);
    o.seen_at = Some(at);
    let read_only = p.get("key").and_then(|k| k.get("read_only")).cloned();
    o.facts.details.insert(
        "deploy_key".into(),
        json!({"repository": repo, "read_only": read_only,
               "added_by": s(p, &["key", "added_by"]),
               "verified": p.get("key").and_then(|k| k.get("verified"))}),
    );
    lifecycle(&mut o, action, actor, at);
    Ok(Some(push(out, o)))
}

fn installation(
    p: &Value,
    event: &str,
    action: Option<&str>,
    actor: &Option<String>,
    at: i64,
    out: &mut Output,
) -> Result<Option<String>, Reason> {
    let inst = p
        .get("installation")
        .ok_or_else(|| format!("{event}: missing `installation`"))?;
    let slug = s(inst, &["app_slug"])
        .ok_or_else(|| format!("{event}: missing `installation.app_slug`"))?;
    let acct = s(inst, &["account", "login"])
        .ok_or_else(|| format!("{event}: missing `installation.account.login`"))?;
    let mut o = observation(
        app_id(slug, acct),
        IdentityKind::GithubApp,
        format!("{slug} on {acct}"),
    );
    o.facts.native_id = text(inst, &["id"]);
    o.facts.account = Some(acct.to_owned());
    o.facts.created = when(inst, &["created_at"]);
    o.seen_at = Some(at);
    let repos = |key: &str| -> Vec<String> {
        p.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|r| s(r, &["full_name"]).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut detail = compact(json!({
        "app_id": inst.get("app_id"),
        "installation_id": inst.get("id"),
        "target_type": s(inst, &["target_type"]),
        "repository_selection": s(inst, &["repository_selection"]).or(s(p, &["repository_selection"])),
        "permissions": inst.get("permissions"),
        "events": inst.get("events"),
    }));
    if let Some(m) = detail.as_object_mut() {
        let added = [repos("repositories"), repos("repositories_added")].concat();
        if !added.is_empty() {
            m.insert("repositories_added".into(), json!(added));
        }
        let removed = repos("repositories_removed");
        if !removed.is_empty() {
            m.insert("repositories_removed".into(), json!(removed));
        }
        match action {
            Some("suspend") => {
                m.insert("suspended_at".into(), json!(time::format(at)));
            }
            Some("unsuspend") => {
                m.insert("suspended_at".into(), Value::Null);
            }
            _ => {}
        }
    }
    o.facts.details.insert("github_app".into(), detail);
    if event == "installation" {
        lifecycle(&mut o, action, actor, at);
    }
    Ok(Some(push(out, o)))
}

fn pat_request(
    p: &Value,
    org: Option<&str>,
    action: Option<&str>,
    at: i64,
    out: &mut Output,
) -> Result<Option<String>, Reason> {
    let r = p
        .get("personal_access_token_request")
        .ok_or("personal_access_token_request: missing `personal_access_token_request`")?;
    let org = org.ok_or("personal_access_token_request: missing `organization.login`")?;
    let owner = s(r, &["owner", "login"]).ok_or(
        "personal_access_token_request: missing `personal_access_token_request.owner.login`",
    )?;
    let token = text(r, &["token_id"])
        .or_else(|| text(r, &["id"]).map(|id| format!("request-{id}")))
        .ok_or("personal_access_token_request: missing `token_id` and `id`")?;
    let name = s(r, &["token_name"]).map_or_else(|| format!("token {token}"), str::to_owned);
    let mut o = observation(pat_id(org, &token), IdentityKind::PersonalAccessToken, name);
    o.facts.account = Some(org.to_owned());
    o.facts.parent = Some(user_id(owner));
    o.facts.created_by = Some(user_id(owner));
    o.facts.created = when(r, &["created_at"]);
    o.facts.last_used = when(r, &["token_last_used_at"]);
    o.seen_at = Some(at);
    if r.get("token_expired").and_then(Value::as_bool) == Some(true) {
        o.facts.deleted = when(r, &["token_expires_at"]).or(Some(at));
    }
    let detail = compact(json!({
        "request_id": r.get("id"),
        "status": action,
        "permissions_added": r.get("permissions_added"),
        "permissions_result": r.get("permissions_result"),
        "repository_selection": s(r, &["repository_selection"]),
        "repository_count": r.get("repository_count"),
        "expires_at": s(r, &["token_expires_at"]),
    }));
    o.facts
        .details
        .insert("personal_access_token".into(), detail);
    let mut user = observation(user_id(owner), IdentityKind::GithubUser, owner);
    user.seen_at = Some(at);
    let id = push(out, o);
    out.observations.push(user);
    Ok(Some(id))
}

fn workflow(
    p: &Value,
    event: &str,
    repo: Option<&str>,
    at: i64,
    out: &mut Output,
) -> Option<String> {
    let obj = p.get(event)?;
    let repo = repo.or_else(|| s(obj, &["repository", "full_name"]))?;
    let path = s(obj, &["path"])
        .or_else(|| s(obj, &["workflow_name"]))
        .or_else(|| s(obj, &["name"]))?;
    let mut o = observation(
        workflow_id(repo, path),
        IdentityKind::GithubWorkflow,
        s(obj, &["name"])
            .or(s(obj, &["workflow_name"]))
            .unwrap_or(path),
    );
    o.facts.account = repo.split('/').next().map(str::to_owned);
    o.used_at = Some(at);
    let detail = compact(json!({
        "repository": repo,
        "path": s(obj, &["path"]),
        "trigger": s(obj, &["event"]),
        "head_branch": s(obj, &["head_branch"]),
        "head_repository": s(obj, &["head_repository", "full_name"]),
        "runner_labels": obj.get("labels"),
        "runner_group": s(obj, &["runner_group_name"]),
    }));
    o.facts.details.insert("github_workflow".into(), detail);
    Some(push(out, o))
}

/// One delivery object, or an array of them.
pub fn normalize_document(doc: &[u8], ctx: &Context, sink: &mut dyn Sink) {
    let d = trim_start(doc);
    if !d.starts_with(b"[") {
        crate::emit(sink, normalize_delivery(d, ctx), 1, None);
        return;
    }
    let mut lines = crate::LineCounter::new(doc);
    for (idx, item) in sonic_rs::to_array_iter(d).enumerate() {
        match item {
            Ok(v) => {
                let raw = v.as_raw_str().as_bytes();
                let line = lines.line_of(raw);
                crate::emit(sink, normalize_delivery(raw, ctx), line, Some(idx as u64));
            }
            Err(e) => {
                sink.reject(keyward_model::Diagnostic {
                    line: lines.line,
                    record: Some(idx as u64),
                    reason: format!("{}; the rest of the document was skipped", json_error(e))
                        .into(),
                });
                return;
            }
        }
    }
}
