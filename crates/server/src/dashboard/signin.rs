//! Sign-in with an API token, sign-out, and the audit of both.

use super::*;

#[derive(Template)]
#[template(path = "login.html")]
pub(super) struct LoginPage {
    nav_user: Option<String>,
    nav: &'static str,
    csrf: String,
    error: Option<String>,
}

/// The sign-in page, with an error to show after a failed attempt.
pub(super) fn login_page(error: Option<String>) -> Response {
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
    let caller = state.engine.call(move |e| auth::verify(e, &check)).await;
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
    let (id, _) = match session::insert(&state, auth::hash(&token)).await {
        Ok(s) => s,
        Err(e) => return page_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
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
        session::remove(&state, &id).await;
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
pub(super) fn client_origin(headers: &HeaderMap) -> String {
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
pub(super) async fn audited(state: &AppState, audit: AuditEntry) -> Result<(), Response> {
    match state.engine.call(move |e| e.audit(&audit)).await {
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
    session::remove(&state, &ui.session).await;
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
