//! The web dashboard: server-rendered pages (askama templates compiled into the binary),
//! our own stylesheet and SVG drawn here. No JavaScript, no Node toolchain.
//!
//! Sign-in takes an API token; the session cookie (`kw_session`, 256 random bits) is
//! `HttpOnly`, `SameSite=Strict`, `Secure` under TLS. The store keeps the session under the
//! hash of its id, with the token's hash (never either secret), so every `keyward serve` on
//! one store honours it and a restart signs nobody out. Every page re-checks the token, so a
//! revoked token ends its sessions at once.
//! State-changing forms carry the session's CSRF token and are refused from another
//! origin. Pages send a strict Content-Security-Policy (no scripts at all).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use keyward_detect::{Finding, Kind, Severity, Status};
use keyward_engine::{Engine, FindingQuery};
use keyward_graph::analysis::{self, BlastOptions, Reach};
use keyward_model::time::{MS_PER_DAY, Millis};
use keyward_model::{
    CredentialKind, CredentialStatus, Identity, IdentityKind, Lifecycle, LifecycleConfig, Platform,
};
use keyward_store::AuditEntry;
use serde::Deserialize;

use keyward_policy::{Act, Resource, Situation, Surface};

use crate::{AppState, Caller, auth, listing, now};

const COOKIE: &str = "kw_session";
/// Sessions last a working day.
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
const PAGE: usize = 50;

/// Why a page could not be built or a session started (answered with 500 and the message).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    #[error(transparent)]
    Engine(#[from] keyward_engine::EngineError),
    /// The system's random source failed: no session id or CSRF token could be drawn.
    #[error("{0}")]
    Random(getrandom::Error),
    /// The session could not be stored.
    #[error("{0}")]
    Store(String),
}

/// A signed-in session as the store keeps it (a job of kind [`SESSION_JOB`] whose id is
/// derived from the session id): the token's hash, never the token or the session id, so
/// a database reader can take over neither; any `keyward serve` on the same store honours
/// it (a restart or another instance behind the balancer keeps everyone signed in).
#[derive(serde::Serialize, serde::Deserialize)]
struct Session {
    token_hash: String,
    csrf: String,
    expires_at: Millis,
}

/// The job kind of a dashboard session.
const SESSION_JOB: &str = "ui_session";

/// The job id a session id is kept under.
fn session_job(id: &str) -> String {
    format!("uis-{}", auth::hash(id))
}

/// Signed-in sessions, in the store.
mod session {
    use super::*;

    /// A new session for the token whose hash is `token_hash`: its id and CSRF token.
    pub(super) async fn insert(
        state: &AppState,
        token_hash: String,
    ) -> Result<(String, String), PageError> {
        let id = random_hex().map_err(PageError::Random)?;
        let csrf = random_hex().map_err(PageError::Random)?;
        let at = now();
        let ttl = Millis::try_from(SESSION_TTL.as_millis()).unwrap_or(Millis::MAX);
        let job = keyward_engine::jobs::Job {
            id: session_job(&id),
            kind: SESSION_JOB.into(),
            parent: None,
            created_at: at,
            updated_at: at,
            status: "active".into(),
            doc: Session {
                token_hash,
                csrf: csrf.clone(),
                expires_at: at.saturating_add(ttl),
            },
        };
        state
            .engine
            .write(move |e| e.put_job(&job, None))
            .await
            .map_err(|e| PageError::Store(e.message))??;
        Ok((id, csrf))
    }

    /// The token hash and CSRF token of an active, unexpired session.
    pub(super) async fn get(state: &AppState, id: &str) -> Option<(String, String)> {
        let key = session_job(id);
        let job = state
            .engine
            .call(move |e| e.job::<Session>(&key))
            .await
            .ok()?
            .ok()??;
        (job.status == "active" && job.doc.expires_at > now())
            .then_some((job.doc.token_hash, job.doc.csrf))
    }

    /// Ends a session (sign-out, a revoked token).
    pub(super) async fn remove(state: &AppState, id: &str) {
        let key = session_job(id);
        let _ = state
            .engine
            .write(move |e| {
                let Some(mut job) = e.job::<Session>(&key)? else {
                    return Ok(());
                };
                job.status = "ended".into();
                job.updated_at = now();
                e.put_job(&job, None)
            })
            .await;
    }
}

fn random_hex() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)?;
    Ok(b.iter().fold(String::with_capacity(64), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    }))
}

/// A signed-in page request.
struct Ui {
    caller: Caller,
    csrf: String,
    session: String,
    /// What the pages offer this caller.
    may: May,
}

/// What the policy lets the signed-in caller do on the estate, for what pages offer; each
/// form is decided again (and audited) when it is sent.
#[derive(Debug, Clone, Copy, Default)]
struct May {
    triage: bool,
    plan: bool,
    execute: bool,
    approve: bool,
    grant: bool,
    revoke: bool,
}

impl May {
    fn of(state: &AppState, caller: &Caller) -> May {
        let may = |a| auth::permits(state, caller, a, &Resource::Estate);
        May {
            triage: may(Act::Triage),
            plan: may(Act::Plan),
            execute: may(Act::Execute),
            approve: may(Act::Approve),
            grant: may(Act::Grant),
            revoke: auth::permits_in(
                state,
                caller,
                Act::Grant,
                &Resource::Estate,
                Situation {
                    revoke: true,
                    ..Situation::default()
                },
            ),
        }
    }
}

impl Ui {
    /// The policy's decision on a form's `action` on `on` (the estate when `None`),
    /// audited: the 403 page, naming the deciding policies, when refused.
    async fn allowed(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        action: Act,
        on: Option<(Resource, Situation)>,
    ) -> Result<(), Response> {
        let (resource, situation) = on.unwrap_or_default();
        let situation = Situation {
            surface: Surface::Dashboard,
            ..situation
        };
        auth::decide(state, &self.caller, headers, action, resource, situation)
            .await
            .map(|_| ())
            .map_err(|e| page_error(e.status, &e.message))
    }
}

fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The session's caller, or a redirect to the sign-in page.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Ui, Response> {
    let to_login = || Redirect::to("/ui/login").into_response();
    let session = cookie_value(headers, COOKIE)
        .ok_or_else(to_login)?
        .to_owned();
    let (token_hash, csrf) = session::get(state, &session).await.ok_or_else(to_login)?;
    let caller = state
        .engine
        .call(move |e| auth::verify_hash(e, &token_hash))
        .await
        .map_err(IntoResponse::into_response)?
        .map_err(|e| page_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
    match caller {
        Some(caller) => {
            let dashboard = Situation {
                surface: Surface::Dashboard,
                ..Situation::default()
            };
            auth::decide(
                state,
                &caller,
                headers,
                Act::View,
                Resource::Estate,
                dashboard,
            )
            .await
            .map_err(|e| page_error(e.status, &e.message))?;
            Ok(Ui {
                may: May::of(state, &caller),
                caller,
                csrf,
                session,
            })
        }
        None => {
            session::remove(state, &session).await;
            Err(to_login())
        }
    }
}

/// A signed-in, same-origin form carrying the session's CSRF token; otherwise the page
/// to answer with (sign-in redirect or 403).
async fn signed_in_form(state: &AppState, headers: &HeaderMap, csrf: &str) -> Result<Ui, Response> {
    let ui = signed_in(state, headers).await?;
    match form_refusal(headers, Some(&ui), csrf) {
        Some(m) => Err(page_error(StatusCode::FORBIDDEN, m)),
        None => Ok(ui),
    }
}

/// Why a state-changing form is refused, if it is: another origin, or not the session's
/// CSRF token.
fn form_refusal(headers: &HeaderMap, ui: Option<&Ui>, csrf: &str) -> Option<&'static str> {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
        // `null` (a sandboxed frame, a file, a cross-origin redirect) is never our page:
        // pages are served with `Referrer-Policy: same-origin`, so our forms send the origin.
        if origin == "null" || origin_host != host {
            return Some("cross-origin form refused");
        }
    }
    if let Some(ui) = ui
        && !constant_time_eq(ui.csrf.as_bytes(), csrf.as_bytes())
    {
        return Some("the form's CSRF token does not match the session");
    }
    None
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Headers on every page: no scripts, no framing, no caching, no referrer outside the
/// dashboard (`same-origin`: browsers then send our forms' `Origin`, which `no-referrer`
/// turns into `null`).
fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => secure(Html(html).into_response()),
        Err(e) => page_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn page_error(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Error · \
         Keyward</title><link rel=\"stylesheet\" href=\"/ui/assets/app.css\"></head><body>\
         <main><section class=\"card narrow\"><h1>{}</h1><p class=\"error\">{}</p><p><a \
         href=\"/ui/\">Back to the dashboard</a></p></section></main></body></html>",
        status.as_u16(),
        esc(message)
    );
    secure((status, Html(body)).into_response())
}

/// Text escaping for the SVG we draw ourselves (templates escape on their own).
use keyward_graph::export::xml_escape as esc;

mod access;
mod compliance;
mod findings;
mod graph;
mod identity;
mod inventory;
mod overview;
mod respond;
mod signin;

pub(crate) use access::{
    access, access_apply, access_approve, access_deny, access_request, access_revoke,
};
pub(crate) use compliance::compliance;
pub(crate) use findings::{findings, set_status};
pub(crate) use identity::identity;
pub(crate) use inventory::inventory;
pub(crate) use overview::overview;
pub(crate) use respond::{
    create as create_plan, execute as execute_plan, plan, plans, undo as undo_plan,
};
pub(crate) use signin::{login, login_form, logout};
// What one page shares with another (links, filters, choices, the graph drawing).
use graph::*;
use inventory::*;

fn q(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn ago(t: Option<Millis>, as_of: Millis) -> String {
    match t {
        None => "never".into(),
        Some(t) => {
            let d = (as_of - t).max(0);
            if d < 3_600_000 {
                format!("{} min ago", d / 60_000)
            } else if d < MS_PER_DAY {
                format!("{} h ago", d / 3_600_000)
            } else {
                format!("{} d ago", d / MS_PER_DAY)
            }
        }
    }
}

pub(crate) static CSS: &str = include_str!("../../assets/app.css");

pub(crate) async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

pub(crate) async fn root() -> Redirect {
    Redirect::to("/ui/")
}
