//! The web dashboard: server-rendered pages (askama templates compiled into the binary),
//! our own stylesheet and SVG drawn here. No JavaScript, no Node toolchain.
//!
//! Sign-in takes an API token; the session cookie (`kw_session`, 256 random bits) is
//! `HttpOnly`, `SameSite=Strict`, `Secure` under TLS, and maps to the token in memory
//! only. Every page re-checks the token, so a revoked token ends its sessions at once.
//! State-changing forms carry the session's CSRF token and are refused from another
//! origin. Pages send a strict Content-Security-Policy (no scripts at all).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

use crate::{AppState, Caller, Role, auth, listing, now};

const COOKIE: &str = "kw_session";
/// Sessions last a working day.
const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
const PAGE: usize = 50;

struct Session {
    token: String,
    csrf: String,
    expires: Instant,
}

/// Signed-in sessions, in memory (a restart signs everyone out).
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    fn insert(&self, token: String) -> Result<(String, String), String> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let mut m = self
            .0
            .lock()
            .map_err(|_| "session lock poisoned".to_owned())?;
        let now = Instant::now();
        m.retain(|_, s| s.expires > now);
        m.insert(
            id.clone(),
            Session {
                token,
                csrf: csrf.clone(),
                expires: now + SESSION_TTL,
            },
        );
        Ok((id, csrf))
    }

    fn get(&self, id: &str) -> Option<(String, String)> {
        let m = self.0.lock().ok()?;
        m.get(id)
            .filter(|s| s.expires > Instant::now())
            .map(|s| (s.token.clone(), s.csrf.clone()))
    }

    fn remove(&self, id: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(id);
        }
    }
}

fn random_hex() -> Result<String, String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| e.to_string())?;
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
    let (token, csrf) = state.sessions.get(&session).ok_or_else(to_login)?;
    let caller = state
        .engine
        .call(move |e| auth::verify(e.store(), &token))
        .await
        .map_err(IntoResponse::into_response)?
        .map_err(|e| page_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
    match caller {
        Some(caller) => Ok(Ui {
            caller,
            csrf,
            session,
        }),
        None => {
            state.sessions.remove(&session);
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

pub(crate) static CSS: &str = include_str!("../assets/app.css");

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

// ---- sign-in ----

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav_user: Option<String>,
    nav: &'static str,
    csrf: String,
    error: Option<String>,
}

/// The sign-in page, with an error to show after a failed attempt.
fn login_page(error: Option<String>) -> Response {
    render(&LoginPage {
        nav_user: None,
        nav: "",
        csrf: String::new(),
        error,
    })
}

pub(crate) async fn login_form() -> Response {
    login_page(None)
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    token: String,
}

pub(crate) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if let Some(m) = form_refusal(&headers, None, "") {
        return page_error(StatusCode::FORBIDDEN, m);
    }
    let token = form.token.trim().to_owned();
    let check = token.clone();
    let caller = state
        .engine
        .call(move |e| auth::verify(e.store(), &check))
        .await;
    let failed = |m: &str| {
        let mut r = login_page(Some(m.to_owned()));
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        r
    };
    let caller = match caller {
        Ok(Ok(Some(c))) => c,
        Ok(Ok(None)) => {
            // Recorded without the token's text: only that it failed and where from.
            let audit = AuditEntry {
                at: now(),
                actor: "ui:anonymous".into(),
                action: "ui.sign-in.failed".into(),
                target: None,
                detail: Some(format!("failed sign-in from {}", client_origin(&headers))),
                before: None,
                after: None,
            };
            if let Err(e) = audited(&state, audit).await {
                return e;
            }
            return failed("Unknown or revoked token.");
        }
        Ok(Err(e)) => return page_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => return e.into_response(),
    };
    let (id, _) = match state.sessions.insert(token) {
        Ok(s) => s,
        Err(e) => return page_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    let audit = AuditEntry {
        at: now(),
        actor: caller.actor(),
        action: "ui.sign-in".into(),
        target: None,
        detail: Some(format!("signed in from {}", client_origin(&headers))),
        before: None,
        after: None,
    };
    if let Err(e) = audited(&state, audit).await {
        state.sessions.remove(&id);
        return e;
    }
    let secure_flag = if state.config.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure_flag}",
        SESSION_TTL.as_secs()
    );
    let mut r = Redirect::to("/ui/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// Where a sign-in came from, as far as the request says: its `Origin`, else its `Host`
/// (never anything from the form). Quoted and cut to 200 characters.
fn client_origin(headers: &HeaderMap) -> String {
    let v = [header::ORIGIN, header::HOST]
        .iter()
        .find_map(|h| headers.get(h).and_then(|v| v.to_str().ok()));
    match v {
        Some(v) => format!("{:?}", v.chars().take(200).collect::<String>()),
        None => "an unknown origin".to_owned(),
    }
}

/// Appends an audit entry; the error page if it cannot be written (an action that cannot
/// be recorded is not taken silently).
async fn audited(state: &AppState, audit: AuditEntry) -> Result<(), Response> {
    match state
        .engine
        .call(move |e| e.store_mut().audit(&audit))
        .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(page_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &e.to_string(),
        )),
        Err(e) => Err(e.into_response()),
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let ui = match signed_in_form(&state, &headers, &form.csrf).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    state.sessions.remove(&ui.session);
    let audit = AuditEntry {
        at: now(),
        actor: ui.caller.actor(),
        action: "ui.sign-out".into(),
        target: None,
        detail: None,
        before: None,
        after: None,
    };
    if let Err(e) = audited(&state, audit).await {
        return e;
    }
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("kw_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

// ---- overview ----

struct Bar {
    key: String,
    label: String,
    count: usize,
    max: usize,
}

fn bars(counts: BTreeMap<String, usize>) -> Vec<Bar> {
    let max = counts.values().copied().max().unwrap_or(0).max(1);
    let mut v: Vec<Bar> = counts
        .into_iter()
        .map(|(k, count)| Bar {
            label: k.replace('_', " "),
            key: k,
            count,
            max,
        })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
    v
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    nav_user: Option<String>,
    nav: &'static str,
    csrf: String,
    as_of: String,
    total: usize,
    stale: usize,
    stale_pct: String,
    orphaned: usize,
    orphaned_pct: String,
    unfederated: usize,
    unfederated_pct: String,
    keys_total: usize,
    keys_rotated: usize,
    rotation_pct: String,
    severities: Vec<Bar>,
    platforms: Vec<Bar>,
    kinds: Vec<Bar>,
}

fn pct(n: usize, of: usize) -> String {
    if of == 0 {
        "–".into()
    } else {
        format!("{:.0} %", n as f64 * 100.0 / of as f64)
    }
}

/// Access keys older than this are due for rotation (the PCI limit).
const ROTATION_DAYS: i64 = 90;

pub(crate) async fn overview(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ui = match signed_in(&state, &headers).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    let stale_days = state.config.stale_after_days;
    let data = state
        .engine
        .call(move |e| -> Result<OverviewPage, String> {
            let as_of = now();
            let lc = LifecycleConfig {
                as_of,
                stale_after_days: stale_days,
            };
            let rows = e.list(&keyward_engine::Filter::default(), lc);
            let live: Vec<&Identity> = rows
                .iter()
                .filter(|(_, s)| *s != Lifecycle::Deleted)
                .map(|(i, _)| *i)
                .collect();
            let owners = e.owner_infos(&live);
            let mut platforms = BTreeMap::new();
            let mut kinds = BTreeMap::new();
            let (mut stale, mut orphaned, mut unfederated, mut keys, mut rotated) = (0, 0, 0, 0, 0);
            for ((i, s), o) in rows
                .iter()
                .filter(|(_, s)| *s != Lifecycle::Deleted)
                .zip(&owners)
            {
                *platforms.entry(i.platform.as_str().to_owned()).or_insert(0) += 1;
                *kinds.entry(i.kind.as_str().to_owned()).or_insert(0) += 1;
                stale += usize::from(*s == Lifecycle::Stale);
                orphaned += usize::from(o.orphan.is_some());
                unfederated += usize::from(i.has_static_credentials() && !i.federated());
                for c in &i.credentials {
                    if c.kind == CredentialKind::AccessKey
                        && c.status == CredentialStatus::Active
                        && !c.id.starts_with("access_key_")
                    {
                        keys += 1;
                        rotated += usize::from(
                            c.created
                                .is_some_and(|t| as_of - t <= ROTATION_DAYS * MS_PER_DAY),
                        );
                    }
                }
            }
            let counts = e.store().open_finding_counts().map_err(|e| e.to_string())?;
            let max = counts.iter().copied().max().unwrap_or(0).max(1) as usize;
            let severities = Severity::ALL
                .iter()
                .zip(counts)
                .rev()
                .map(|(s, n)| Bar {
                    key: s.as_str().to_owned(),
                    label: s.as_str().to_owned(),
                    count: n as usize,
                    max,
                })
                .collect();
            let total = live.len();
            Ok(OverviewPage {
                nav_user: None,
                nav: "overview",
                csrf: String::new(),
                as_of: keyward_model::time::format(as_of),
                total,
                stale,
                stale_pct: pct(stale, total),
                orphaned,
                orphaned_pct: pct(orphaned, total),
                unfederated,
                unfederated_pct: pct(unfederated, total),
                keys_total: keys,
                keys_rotated: rotated,
                rotation_pct: pct(rotated, keys),
                severities,
                platforms: bars(platforms),
                kinds: bars(kinds),
            })
        })
        .await;
    match data {
        Ok(Ok(mut page)) => {
            page.nav_user = Some(ui.caller.label());
            page.csrf = ui.csrf;
            render(&page)
        }
        Ok(Err(e)) => page_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(e) => e.into_response(),
    }
}

// ---- inventory ----

#[derive(Deserialize, Default, Clone)]
pub(crate) struct InventoryQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    risk: String,
    #[serde(default)]
    orphaned: bool,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    offset: usize,
}

impl InventoryQuery {
    fn href(&self, sort: &str, offset: usize) -> String {
        let orphaned = if self.orphaned { "true" } else { "" };
        page_href(
            "/ui/identities",
            &[
                ("q", &self.q),
                ("platform", &self.platform),
                ("kind", &self.kind),
                ("state", &self.state),
                ("owner", &self.owner),
                ("risk", &self.risk),
                ("orphaned", orphaned),
                ("sort", sort),
            ],
            offset,
        )
    }
}

/// A page's URL: its path with the non-empty query values and, past the first page, the
/// offset.
fn page_href(path: &str, pairs: &[(&str, &str)], offset: usize) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        s.append_pair(k, v);
    }
    if offset > 0 {
        s.append_pair("offset", &offset.to_string());
    }
    format!("{path}?{}", s.finish())
}

struct Column {
    label: &'static str,
    href: String,
    mark: &'static str,
}

struct Row {
    id: String,
    id_q: String,
    name: String,
    platform: &'static str,
    kind: &'static str,
    state: &'static str,
    owner: String,
    orphaned: bool,
    risk: &'static str,
    last_used: String,
}

#[derive(Template)]
#[template(path = "identities.html")]
struct InventoryPage {
    nav_user: Option<String>,
    nav: &'static str,
    csrf: String,
    f: InventoryQuery,
    platforms: Vec<(String, bool)>,
    kinds: Vec<(String, bool)>,
    states: Vec<(String, bool)>,
    risks: Vec<(String, bool)>,
    columns: Vec<Column>,
    rows: Vec<Row>,
    total: usize,
    first: usize,
    last: usize,
    prev: Option<String>,
    next: Option<String>,
}

/// A filter from a form's select: empty is "any".
fn choice<T>(
    v: &str,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, crate::ApiError> {
    crate::api::parse_opt((!v.is_empty()).then_some(v), what, parse)
}

fn options(all: impl IntoIterator<Item = &'static str>, chosen: &str) -> Vec<(String, bool)> {
    all.into_iter()
        .map(|v| (v.to_owned(), v == chosen))
        .collect()
}

/// The worst open finding per identity (counted in the store).
fn worst_open(e: &Engine) -> Result<HashMap<String, Severity>, String> {
    Ok(e.store()
        .worst_open_by_identity()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(|(id, sev)| Severity::ALL.get(usize::from(sev)).map(|s| (id, *s)))
        .collect())
}

pub(crate) async fn inventory(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(f): Query<InventoryQuery>,
) -> Response {
    let ui = match signed_in(&state, &headers).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    let parsed = (|| {
        Ok::<_, crate::ApiError>((
            choice(&f.platform, "platform", Platform::parse)?,
            choice(&f.kind, "kind", IdentityKind::parse)?,
            choice(&f.state, "state", Lifecycle::parse)?,
            choice(&f.risk, "risk", Severity::parse)?,
        ))
    })();
    let (platform, kind, lifecycle, min_risk) = match parsed {
        Ok(p) => p,
        Err(e) => return page_error(e.status, &e.message),
    };
    let stale_days = state.config.stale_after_days;
    let fq = f.clone();
    let data = state
        .engine
        .call(move |e| -> Result<(Vec<Row>, usize), String> {
            let as_of = now();
            let lc = LifecycleConfig {
                as_of,
                stale_after_days: stale_days,
            };
            let filter = keyward_engine::Filter {
                platform,
                kind,
                state: lifecycle,
                ..Default::default()
            };
            let worst = worst_open(e)?;
            // Cheap filters first: owners are walked only for what is left.
            let rows: Vec<(&Identity, Lifecycle)> = listing::search(e, &filter, lc, &fq.q)
                .into_iter()
                .filter(|(i, _)| min_risk.is_none_or(|m| worst.get(&i.id).is_some_and(|s| *s >= m)))
                .collect();
            let (key, desc) = match fq.sort.strip_prefix('-') {
                Some(k) => (k, true),
                None => (fq.sort.as_str(), false),
            };
            let owner = (!fq.owner.is_empty()).then_some(fq.owner.as_str());
            let mut rows = listing::by_owner(e, rows, owner, fq.orphaned, key == "owner");
            let rank = |i: &Identity| worst.get(&i.id).copied();
            rows.sort_by(|((a, sa), oa), ((b, sb), ob)| {
                let o = match key {
                    "platform" => a.platform.as_str().cmp(b.platform.as_str()),
                    "kind" => a.kind.as_str().cmp(b.kind.as_str()),
                    "state" => sa.as_str().cmp(sb.as_str()),
                    "owner" => {
                        listing::owner_name(oa.as_ref()).cmp(&listing::owner_name(ob.as_ref()))
                    }
                    "risk" => rank(a).cmp(&rank(b)),
                    "last_used" => a.last_used.cmp(&b.last_used),
                    _ => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
                };
                let o = o.then_with(|| a.id.cmp(&b.id));
                if desc { o.reverse() } else { o }
            });
            let total = rows.len();
            let mut page: Vec<_> = rows.into_iter().skip(fq.offset).take(PAGE).collect();
            listing::fill_owners(e, &mut page);
            let page: Vec<Row> = page
                .into_iter()
                .map(|((i, s), o)| {
                    let risk = worst.get(&i.id).copied();
                    Row {
                        id: i.id.clone(),
                        id_q: q(&i.id),
                        name: i.name.clone(),
                        platform: i.platform.as_str(),
                        kind: i.kind.as_str(),
                        state: s.as_str(),
                        owner: listing::owner_name(o.as_ref()),
                        orphaned: o.as_ref().is_some_and(|o| o.orphan.is_some()),
                        risk: risk.map_or("", Severity::as_str),
                        last_used: ago(i.last_used, as_of),
                    }
                })
                .collect();
            Ok((page, total))
        })
        .await;
    let (rows, total) = match data {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return page_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(e) => return e.into_response(),
    };
    let columns = [
        ("Name", "name"),
        ("Platform", "platform"),
        ("Kind", "kind"),
        ("State", "state"),
        ("Owner", "owner"),
        ("Risk", "risk"),
        ("Last used", "last_used"),
    ]
    .into_iter()
    .map(|(label, key)| {
        let current = f.sort.trim_start_matches('-');
        let is = current == key || (current.is_empty() && key == "name");
        let desc = f.sort.starts_with('-');
        let next = if is && !desc {
            format!("-{key}")
        } else {
            key.to_owned()
        };
        Column {
            label,
            href: f.href(&next, 0),
            mark: match (is, desc) {
                (true, false) => " ▲",
                (true, true) => " ▼",
                _ => "",
            },
        }
    })
    .collect();
    let shown = rows.len();
    let page = InventoryPage {
        nav_user: Some(ui.caller.label()),
        nav: "identities",
        csrf: ui.csrf,
        platforms: options(Platform::ALL.iter().map(|p| p.as_str()), &f.platform),
        kinds: options(IdentityKind::ALL.iter().map(|k| k.as_str()), &f.kind),
        states: options(["active", "stale", "ephemeral", "deleted"], &f.state),
        risks: options(Severity::ALL.iter().rev().map(|s| s.as_str()), &f.risk),
        columns,
        rows,
        total,
        first: f.offset + 1,
        last: f.offset + shown,
        prev: (f.offset > 0).then(|| f.href(&f.sort, f.offset.saturating_sub(PAGE))),
        next: (f.offset + shown < total).then(|| f.href(&f.sort, f.offset + PAGE)),
        f,
    };
    render(&page)
}

// ---- one identity ----

#[derive(Deserialize)]
pub(crate) struct IdentityQuery {
    id: String,
}

struct OwnerView {
    owner: String,
    kind: &'static str,
    confidence: String,
    departed: bool,
    hops: Vec<String>,
}

struct CredView {
    id: String,
    kind: String,
    status: String,
    age: String,
    last_used: String,
}

struct FindingRow {
    severity: &'static str,
    status: &'static str,
    rule: String,
    summary: String,
    last_seen: String,
}

/// Events on an identity page, and the identities acting for it whose events are shown.
const RECENT_EVENTS: usize = 50;
const MAX_ACTING: usize = 20;

struct EventRow {
    time: String,
    /// The acting identity when it is not the page's (a session of the role).
    by: String,
    action: String,
    target: String,
    from: String,
    error: String,
}

#[derive(Template)]
#[template(path = "identity.html")]
struct IdentityPage {
    nav_user: Option<String>,
    nav: &'static str,
    csrf: String,
    id: String,
    id_q: String,
    name: String,
    kind: &'static str,
    state: &'static str,
    facts: Vec<(&'static str, String)>,
    owners: Vec<OwnerView>,
    orphan: Option<String>,
    credentials: Vec<CredView>,
    graph: String,
    reach_identities: usize,
    reach_resources: usize,
    truncated: bool,
    findings: Vec<FindingRow>,
    events: Vec<EventRow>,
}

pub(crate) async fn identity(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(iq): Query<IdentityQuery>,
) -> Response {
    let ui = match signed_in(&state, &headers).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    let stale_days = state.config.stale_after_days;
    let data = state
        .engine
        .call(move |e| -> Result<Option<IdentityPage>, String> {
            let i = match e.resolve(&iq.id) {
                keyward_engine::Resolve::Found(i) => i.clone(),
                _ => return Ok(None),
            };
            let as_of = now();
            let lc = LifecycleConfig {
                as_of,
                stale_after_days: stale_days,
            };
            let g = e.graph();
            let coverage = e.coverage();
            let info = e.owner_info(&i, &coverage);
            let owners = info
                .ownership
                .people
                .iter()
                .chain(&info.ownership.teams)
                .map(|c| OwnerView {
                    owner: c.owner.clone(),
                    kind: c.kind,
                    confidence: format!("{:.2}", c.confidence),
                    departed: c.departed,
                    hops: c
                        .chain
                        .iter()
                        .map(|h| {
                            let via = h
                                .source
                                .as_deref()
                                .map_or(String::new(), |s| format!(" ({s})"));
                            format!("{} {} {}{via}", h.edge.as_str(), h.node_kind, h.label)
                        })
                        .collect(),
                })
                .collect();
            let blast = g
                .find(&i.id)
                .map(|n| analysis::blast_radius(g, n, BlastOptions::default()));
            let graph = draw(&i, &info.ownership, blast.as_ref().map(|b| &b.root));
            let mut facts: Vec<(&'static str, String)> = vec![
                ("platform", i.platform.as_str().to_owned()),
                ("kind", i.kind.as_str().to_owned()),
            ];
            let mut opt = |k: &'static str, v: Option<&String>| {
                if let Some(v) = v {
                    facts.push((k, v.clone()));
                }
            };
            opt("arn", i.arn.as_ref());
            opt("account", i.account.as_ref());
            opt("cluster", i.cluster.as_ref());
            opt("namespace", i.namespace.as_ref());
            opt("subject", i.subject.as_ref());
            opt("issuer", i.issuer.as_ref());
            opt("parent", i.parent.as_ref());
            let fmt = |t: Option<Millis>| t.map(keyward_model::time::format);
            opt("created", fmt(i.created).as_ref());
            opt("last used", fmt(i.last_used).as_ref());
            opt("first seen", fmt(i.first_seen).as_ref());
            opt("deleted", fmt(i.deleted).as_ref());
            facts.push(("events", i.event_count.to_string()));
            facts.push(("evidence", i.evidence.label().to_owned()));
            facts.push((
                "sources",
                i.sources.iter().cloned().collect::<Vec<_>>().join(", "),
            ));
            if !i.created_by.is_empty() {
                facts.push((
                    "created by",
                    i.created_by.iter().cloned().collect::<Vec<_>>().join(", "),
                ));
            }
            if !i.chain.is_empty() {
                facts.push(("session chain", i.chain.join(" → ")));
            }
            let credentials = i
                .credentials
                .iter()
                .map(|c| CredView {
                    id: c.id.clone(),
                    kind: format!("{:?}", c.kind),
                    status: format!("{:?}", c.status),
                    age: c.created.map_or_else(
                        || "unknown".into(),
                        |t| format!("{} d", (as_of - t) / MS_PER_DAY),
                    ),
                    last_used: ago(c.last_used, as_of),
                })
                .collect();
            let fq = FindingQuery {
                identity: Some(i.id.clone()),
                ..FindingQuery::default()
            };
            let findings = e
                .findings(&fq)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|f| FindingRow {
                    severity: f.severity.as_str(),
                    status: f.status.as_str(),
                    rule: f.rule_id,
                    summary: f.summary,
                    last_seen: keyward_model::time::format(f.last_seen),
                })
                .collect();
            // Its own calls and those of what acts for it (a role's sessions, a user's
            // keys), most recently used first.
            let mut children: Vec<&Identity> = e
                .inventory()
                .iter()
                .filter(|x| x.parent.as_deref() == Some(i.id.as_str()))
                .collect();
            children.sort_by_key(|c| std::cmp::Reverse(c.last_used));
            let mut evs = Vec::new();
            for actor in std::iter::once(i.id.as_str())
                .chain(children.iter().take(MAX_ACTING).map(|c| c.id.as_str()))
            {
                evs.extend(
                    e.store()
                        .recent_events(actor, RECENT_EVENTS)
                        .map_err(|e| e.to_string())?,
                );
            }
            evs.sort_by_key(|ev| std::cmp::Reverse(ev.time));
            evs.truncate(RECENT_EVENTS);
            let events = evs
                .into_iter()
                .map(|ev| EventRow {
                    time: keyward_model::time::format(ev.time),
                    by: ev
                        .actor
                        .as_deref()
                        .filter(|a| *a != i.id)
                        .unwrap_or_default()
                        .to_owned(),
                    action: ev.action.into_owned(),
                    target: ev.target.map(|c| c.into_owned()).unwrap_or_default(),
                    from: ev.source_ip.map(|c| c.into_owned()).unwrap_or_default(),
                    error: ev.error_code.map(|c| c.into_owned()).unwrap_or_default(),
                })
                .collect();
            Ok(Some(IdentityPage {
                nav_user: None,
                nav: "identities",
                csrf: String::new(),
                id_q: q(&i.id),
                name: i.name.clone(),
                kind: i.kind.as_str(),
                state: i.lifecycle(lc).as_str(),
                facts,
                owners,
                orphan: info.orphan.as_ref().map(|o| o.as_str().to_owned()),
                credentials,
                graph,
                reach_identities: blast.as_ref().map_or(0, |b| b.identities),
                reach_resources: blast.as_ref().map_or(0, |b| b.resources),
                truncated: blast.as_ref().is_some_and(|b| b.truncated),
                findings,
                events,
                id: i.id,
            }))
        })
        .await;
    match data {
        Ok(Ok(Some(mut page))) => {
            page.nav_user = Some(ui.caller.label());
            page.csrf = ui.csrf;
            render(&page)
        }
        Ok(Ok(None)) => page_error(StatusCode::NOT_FOUND, "No such identity."),
        Ok(Err(e)) => page_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(e) => e.into_response(),
    }
}

// ---- the graph ----

const NODE_W: i64 = 190;
const NODE_H: i64 = 36;
const COL_GAP: i64 = 250;
const ROW_GAP: i64 = 52;
/// Nodes drawn per blast-radius level; the rest are summarized.
const MAX_PER_LEVEL: usize = 12;

struct GNode {
    col: i64,
    row: i64,
    label: String,
    kind: String,
    class: &'static str,
}

/// The ownership chains (leftwards, towards people and teams) and the blast radius
/// (rightwards, by distance) of one identity, as an SVG of boxes and labelled edges.
fn draw(i: &Identity, owners: &analysis::Ownership, reach: Option<&Reach>) -> String {
    let mut nodes = vec![GNode {
        col: 0,
        row: 0,
        label: i.name.clone(),
        kind: i.kind.as_str().to_owned(),
        class: "root",
    }];
    let mut edges: Vec<(usize, usize, String)> = Vec::new();
    // Ownership chains: one row per candidate, hop k at column -(k+1).
    for (r, c) in owners
        .people
        .iter()
        .chain(&owners.teams)
        .take(MAX_PER_LEVEL)
        .enumerate()
    {
        let mut prev = 0;
        for (k, h) in c.chain.iter().enumerate() {
            let last = k + 1 == c.chain.len();
            nodes.push(GNode {
                col: -(k as i64 + 1),
                row: r as i64,
                label: h.label.clone(),
                kind: h.node_kind.to_owned(),
                class: if last { "owner" } else { "hop" },
            });
            let idx = nodes.len() - 1;
            edges.push((prev, idx, h.edge.as_str().to_owned()));
            prev = idx;
        }
    }
    // Blast radius: breadth-first levels at columns 1, 2, …
    if let Some(root) = reach {
        let mut level: Vec<(usize, &Reach)> = vec![(0, root)];
        let mut col = 1;
        while !level.is_empty() && col <= 6 {
            let mut next = Vec::new();
            let mut row = 0i64;
            let mut hidden = 0usize;
            for (parent, r) in &level {
                for ch in &r.children {
                    if row as usize >= MAX_PER_LEVEL {
                        hidden += 1;
                        continue;
                    }
                    let class = if ch.actions.is_empty() {
                        "reach"
                    } else {
                        "resource"
                    };
                    let label = if ch.actions.is_empty() {
                        ch.label.clone()
                    } else {
                        format!("{} [{}]", ch.label, ch.actions.len())
                    };
                    nodes.push(GNode {
                        col,
                        row,
                        label,
                        kind: ch.node_kind.to_owned(),
                        class,
                    });
                    let idx = nodes.len() - 1;
                    edges.push((
                        *parent,
                        idx,
                        ch.via.map_or_else(String::new, |v| v.as_str().to_owned()),
                    ));
                    next.push((idx, ch));
                    row += 1;
                }
            }
            if hidden > 0 {
                nodes.push(GNode {
                    col,
                    row,
                    label: format!("+{hidden} more"),
                    kind: String::new(),
                    class: "more",
                });
            }
            level = next;
            col += 1;
        }
    }
    let min_col = nodes.iter().map(|n| n.col).min().unwrap_or(0);
    let max_col = nodes.iter().map(|n| n.col).max().unwrap_or(0);
    let rows = nodes.iter().map(|n| n.row).max().unwrap_or(0) + 1;
    let x = |col: i64| 10 + (col - min_col) * COL_GAP;
    let y = |row: i64| 10 + row * ROW_GAP;
    let width = x(max_col) + NODE_W + 10;
    let height = y(rows - 1) + NODE_H + 10;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"ownership chain and blast \
         radius of {}\">",
        esc(&i.id)
    );
    s.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
         markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 \
         L10,5 L0,10 z\" fill=\"#98a2b3\"/></marker></defs>",
    );
    for (a, b, label) in &edges {
        let (Some(na), Some(nb)) = (nodes.get(*a), nodes.get(*b)) else {
            continue;
        };
        // Edges run from the left box to the right one, whichever way they were walked.
        let (l, r) = if na.col <= nb.col { (na, nb) } else { (nb, na) };
        let (x1, y1) = (x(l.col) + NODE_W, y(l.row) + NODE_H / 2);
        let (x2, y2) = (x(r.col), y(r.row) + NODE_H / 2);
        let mid = (x1 + x2) / 2;
        let _ = write!(
            s,
            "<path class=\"edge\" d=\"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}\" \
             fill=\"none\" stroke=\"#98a2b3\" stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>\
             <text class=\"edge-label\" x=\"{mid}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            (y1 + y2) / 2 - 4,
            esc(label)
        );
    }
    for n in &nodes {
        let (fill, stroke) = match n.class {
            "root" => ("#1d2430", "#1d2430"),
            "owner" => ("#ecfdf3", "#12b76a"),
            "hop" => ("#f2f4f7", "#98a2b3"),
            "resource" => ("#fffaeb", "#f79009"),
            "more" => ("#ffffff", "#d0d5dd"),
            _ => ("#eff4ff", "#2f5bea"),
        };
        let text = if n.class == "root" {
            "#ffffff"
        } else {
            "#1d2430"
        };
        let label: String = n.label.chars().take(28).collect();
        let label = if n.label.chars().count() > 28 {
            format!("{label}…")
        } else {
            label
        };
        let _ = write!(
            s,
            "<g class=\"node {}\"><title>{}</title><rect x=\"{}\" y=\"{}\" width=\"{NODE_W}\" \
             height=\"{NODE_H}\" rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\"/><text x=\"{}\" \
             y=\"{}\" fill=\"{text}\">{}</text><text x=\"{}\" y=\"{}\" fill=\"{text}\" \
             opacity=\"0.7\" font-size=\"10\">{}</text></g>",
            n.class,
            esc(&format!("{} ({})", n.label, n.kind)),
            x(n.col),
            y(n.row),
            x(n.col) + 8,
            y(n.row) + 15,
            esc(&label),
            x(n.col) + 8,
            y(n.row) + 29,
            esc(&n.kind.replace('_', " ")),
        );
    }
    s.push_str("</svg>");
    s
}

// ---- findings queue ----

#[derive(Deserialize, Default, Clone)]
pub(crate) struct FindingsQuery {
    #[serde(default)]
    severity: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    identity: String,
    #[serde(default)]
    offset: usize,
    #[serde(default)]
    done: String,
}

impl FindingsQuery {
    fn href(&self, offset: usize) -> String {
        page_href(
            "/ui/findings",
            &[
                ("severity", &self.severity),
                ("status", &self.status),
                ("kind", &self.kind),
                ("identity", &self.identity),
            ],
            offset,
        )
    }
}

struct FindingView {
    id: String,
    severity: &'static str,
    kind: &'static str,
    status: &'static str,
    identity: String,
    identity_q: String,
    title: String,
    rule: String,
    summary: String,
    attack: Vec<(String, String)>,
    events: Vec<String>,
    count: u64,
    last_seen: String,
}

#[derive(Template)]
#[template(path = "findings.html")]
struct FindingsPage {
    nav_user: Option<String>,
    nav: &'static str,
    csrf: String,
    operator: bool,
    back: String,
    message: Option<String>,
    severities: Vec<(String, bool)>,
    statuses: Vec<(String, bool)>,
    kinds: Vec<(String, bool)>,
    identity: String,
    rows: Vec<FindingView>,
    total: usize,
    first: usize,
    last: usize,
    prev: Option<String>,
    next: Option<String>,
}

fn finding_view(f: Finding) -> FindingView {
    FindingView {
        severity: f.severity.as_str(),
        kind: f.kind.as_str(),
        status: f.status.as_str(),
        identity_q: f.identity.as_deref().map(q).unwrap_or_default(),
        identity: f.identity.unwrap_or_default(),
        title: f.title,
        rule: f.rule_id,
        summary: f.summary,
        attack: f
            .attack
            .into_iter()
            .map(|a| {
                let path = a.replace('.', "/");
                (a, path)
            })
            .collect(),
        count: f.count,
        events: f.events.into_iter().rev().take(3).collect(),
        last_seen: keyward_model::time::format(f.last_seen),
        id: f.id,
    }
}

/// Status choices of the queue's filter; the default is the work still to do.
const STATUS_CHOICES: [&str; 6] = [
    "open,acknowledged",
    "open",
    "acknowledged",
    "false-positive",
    "resolved",
    "all",
];

pub(crate) async fn findings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(f): Query<FindingsQuery>,
) -> Response {
    let ui = match signed_in(&state, &headers).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    let status = if f.status.is_empty() {
        "open,acknowledged"
    } else {
        f.status.as_str()
    };
    let parsed = (|| {
        let statuses = if status == "all" {
            Vec::new()
        } else {
            status
                .split(',')
                .map(|x| crate::api::parse_one(x, "status", Status::parse))
                .collect::<Result<Vec<_>, _>>()?
        };
        Ok::<_, crate::ApiError>((
            statuses,
            choice(&f.severity, "severity", Severity::parse)?,
            choice(&f.kind, "kind", Kind::parse)?,
        ))
    })();
    let (statuses, min_severity, kind) = match parsed {
        Ok(p) => p,
        Err(e) => return page_error(e.status, &e.message),
    };
    let fq = FindingQuery {
        since: None,
        min_severity,
        identity: (!f.identity.is_empty()).then(|| f.identity.clone()),
        kind,
        statuses,
    };
    let mut all = match state.engine.call(move |e| e.findings(&fq)).await {
        Ok(Ok(all)) => all,
        Ok(Err(e)) => return page_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => return e.into_response(),
    };
    // The queue: worst first, then the most recent.
    all.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.last_seen.cmp(&a.last_seen))
            .then(a.id.cmp(&b.id))
    });
    let total = all.len();
    let rows: Vec<FindingView> = all
        .into_iter()
        .skip(f.offset)
        .take(PAGE)
        .map(finding_view)
        .collect();
    let shown = rows.len();
    let message = match f.done.as_str() {
        "" => None,
        d => Some(format!("Finding marked {d}.")),
    };
    let page = FindingsPage {
        nav_user: Some(ui.caller.label()),
        nav: "findings",
        operator: ui.caller.role >= Role::Operator,
        back: f.href(f.offset),
        csrf: ui.csrf,
        message,
        severities: options(Severity::ALL.iter().rev().map(|s| s.as_str()), &f.severity),
        statuses: options(STATUS_CHOICES, status),
        kinds: options(["threat", "posture"], &f.kind),
        identity: f.identity.clone(),
        rows,
        total,
        first: f.offset + 1,
        last: f.offset + shown,
        prev: (f.offset > 0).then(|| f.href(f.offset.saturating_sub(PAGE))),
        next: (f.offset + shown < total).then(|| f.href(f.offset + PAGE)),
    };
    render(&page)
}

#[derive(Deserialize)]
pub(crate) struct StatusForm {
    #[serde(default)]
    csrf: String,
    status: String,
    #[serde(default)]
    back: String,
}

pub(crate) async fn set_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<StatusForm>,
) -> Response {
    let ui = match signed_in_form(&state, &headers, &form.csrf).await {
        Ok(ui) => ui,
        Err(r) => return r,
    };
    if ui.caller.role < Role::Operator {
        return page_error(
            StatusCode::FORBIDDEN,
            "Changing a finding's status needs the operator role.",
        );
    }
    let Some(status) = Status::parse(&form.status) else {
        return page_error(StatusCode::BAD_REQUEST, "unknown status");
    };
    // Decided before anything changes: only back to our own queue (no open redirect), and
    // only a location that can be a header (no CR, LF or other control characters).
    let back = if form.back.starts_with("/ui/findings")
        && form.back.bytes().all(|b| b.is_ascii_graphic())
    {
        form.back
    } else {
        "/ui/findings?".to_owned()
    };
    let actor = ui.caller.actor();
    let target = id.clone();
    let done = state
        .engine
        .write(move |e| {
            crate::api::findings::set_status_audited(e, &id, status, actor, Some("dashboard"))
                .map(|f| f.is_some())
                .map_err(|e| e.to_string())
        })
        .await;
    match done {
        Ok(Ok(true)) => {
            let sep = if back.contains('?') { "&" } else { "?" };
            Redirect::to(&format!("{back}{sep}done={}#f-{target}", status.as_str())).into_response()
        }
        Ok(Ok(false)) => page_error(StatusCode::NOT_FOUND, "No such finding."),
        Ok(Err(e)) => page_error(StatusCode::INTERNAL_SERVER_ERROR, &e),
        Err(e) => e.into_response(),
    }
}
