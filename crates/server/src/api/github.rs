//! The GitHub webhook receiver (`POST /api/webhooks/github`).
//!
//! GitHub cannot send a bearer token; it signs each body with the webhook's secret
//! (`X-Hub-Signature-256: sha256=<HMAC-SHA256 hex>`). The signature is checked in constant
//! time before anything else is read, and a server started without a secret refuses every
//! delivery. A verified delivery is written in the shape of GitHub's deliveries API
//! (`guid`, `delivered_at`, `event`, `action`, `request.headers`, `request.payload`) and
//! goes through the same pipeline as `keyward ingest` of such deliveries.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyward_normalize::{Format, github};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::api::ingest::IngestAnswer;
use crate::{ApiError, AppState, now};

/// The webhook secret. Its `Debug` never shows it.
#[derive(Clone)]
pub struct WebhookSecret(ring::hmac::Key);

impl WebhookSecret {
    pub fn new(secret: &[u8]) -> Self {
        WebhookSecret(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret))
    }

    /// `sha256=<hex>` of `body`, as GitHub sends it (for tests and tools).
    pub fn sign(&self, body: &[u8]) -> String {
        let tag = ring::hmac::sign(&self.0, body);
        format!("sha256={}", hex::encode(tag.as_ref()))
    }

    fn verify(&self, header: &str, body: &[u8]) -> bool {
        let Some(tag) = header
            .trim()
            .strip_prefix("sha256=")
            .and_then(|h| hex::decode(h).ok())
        else {
            return false;
        };
        ring::hmac::verify(&self.0, body, &tag).is_ok()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The delivery's JSON object: the body, or its `payload=` field when form-encoded.
fn payload(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let payload: Value = if form {
        let text = form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| ApiError::bad_request("a form-encoded delivery needs `payload=`"))?;
        serde_json::from_str(&text)
    } else {
        serde_json::from_slice(body)
    }
    .map_err(|e| ApiError::bad_request(format!("the payload is not JSON: {e}")))?;
    if !payload.is_object() {
        return Err(ApiError::bad_request("the payload is not a JSON object"));
    }
    Ok(payload)
}

/// Headers kept with a delivery (never the signature).
const KEPT_HEADERS: [&str; 6] = [
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "X-GitHub-Hook-ID",
    "X-GitHub-Hook-Installation-Target-Type",
    "X-GitHub-Hook-Installation-Target-ID",
    "User-Agent",
];

/// A delivery answered with 200: stored and checked, or a `ping` answered.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum Delivered {
    /// The same report as `/api/ingest`.
    Ingested(IngestAnswer),
    Pong(Pong),
}

/// The answer to GitHub's `ping` (sent when a webhook is created).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Pong {
    /// The payload's `hook_id`, as GitHub sent it (an integer), or `null`.
    hook_id: Option<Value>,
    pong: bool,
}

/// A delivery of an event type that neither creates nor uses an identity (202, not stored).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Ignored {
    /// The event type (`X-GitHub-Event`).
    ignored: String,
    /// The event types that are read.
    #[schema(value_type = Vec<String>)]
    read: [&'static str; github::EVENTS.len()],
    reason: &'static str,
}

#[utoipa::path(
    post,
    path = "/api/webhooks/github",
    tag = "ingest",
    operation_id = "github_webhook",
    summary = "GitHub webhook receiver",
    description = "GitHub deliveries (organization, repository or App webhooks). No bearer token: \
                   the body must be signed with the webhook's secret (`X-Hub-Signature-256`), \
                   checked before anything else is read. Deliveries of identity-related events are \
                   stored and checked like `/api/ingest`; `ping` is answered; other event types \
                   are acknowledged with 202 and not stored.",
    params(
        ("X-Hub-Signature-256" = String, Header, description = "`sha256=` and the hex HMAC-SHA256 of the body with the webhook secret"),
        ("X-GitHub-Event" = String, Header, description = "The event type, e.g. `deploy_key`, `installation`, `ping`"),
        ("X-GitHub-Delivery" = String, Header, description = "The delivery's GUID"),
    ),
    request_body(
        description = "The event payload: JSON, or form-encoded with the JSON in `payload=`.",
        content(("application/json"), ("application/x-www-form-urlencoded"))
    ),
    responses(
        (status = 200, description = "Stored and checked (the same report as `/api/ingest`), or for \
         `ping`: `{\"pong\": true, \"hook_id\": …}`", body = Delivered),
        (status = 202, description = "An event type that neither creates nor uses an identity: \
         `ignored`, `reason`, `read` (the types that are read)", body = Ignored),
        (status = 400, description = "A missing event or delivery header, a payload that is not a \
         JSON object, or a delivery whose record was rejected (then the report, with \
         `accepted: 0`)", body = crate::api::ingest::IngestRefused),
        (status = 401, description = "Missing `X-Hub-Signature-256`, or it does not match the body \
         and the configured secret", body = crate::error::ErrorBody),
        (status = 404, description = "The server was started without a GitHub webhook secret", body = crate::error::ErrorBody),
        (status = 413, description = "The body is larger than the body limit", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let start = Instant::now();
    let Some(secret) = state.config.github_secret.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "the GitHub webhook is not configured: start `keyward serve` with \
             --github-webhook-secret-file or KEYWARD_GITHUB_WEBHOOK_SECRET",
        ));
    };
    let _permit = crate::api::ingest::acquire(&state.webhook_permits).await?;
    let body = crate::api::ingest::read_body(&state, &headers, body).await?;
    let signature = header_str(&headers, "x-hub-signature-256").ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing X-Hub-Signature-256 (set the webhook's secret on GitHub)",
        )
    })?;
    if !secret.verify(signature, &body) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "X-Hub-Signature-256 does not match the body and the configured secret",
        ));
    }
    let event = header_str(&headers, "x-github-event")
        .ok_or_else(|| ApiError::bad_request("missing X-GitHub-Event"))?
        .to_owned();
    let guid = header_str(&headers, "x-github-delivery")
        .ok_or_else(|| ApiError::bad_request("missing X-GitHub-Delivery"))?
        .to_owned();
    let payload = payload(&headers, &body)?;
    if event == "ping" {
        let pong = Pong {
            hook_id: payload.get("hook_id").cloned(),
            pong: true,
        };
        return Ok((StatusCode::OK, Json(Delivered::Pong(pong))).into_response());
    }
    if !github::EVENTS.contains(&event.as_str()) {
        let ignored = Ignored {
            ignored: event,
            read: github::EVENTS,
            reason: "this event type neither creates nor uses an identity",
        };
        return Ok((StatusCode::ACCEPTED, Json(ignored)).into_response());
    }
    let mut kept = serde_json::Map::new();
    for h in KEPT_HEADERS {
        if let Some(v) = header_str(&headers, h) {
            kept.insert(h.to_owned(), json!(v));
        }
    }
    let hook = header_str(&headers, "x-github-hook-id")
        .unwrap_or("unknown")
        .to_owned();
    let delivery = json!({
        "guid": guid,
        "delivered_at": keyward_model::time::format(now()),
        "event": event,
        "action": payload.get("action"),
        "request": {"headers": kept, "payload": payload},
    });
    // Serialized once, as the event's stored record; read from the tree itself.
    let raw = serde_json::to_vec(&delivery).map_err(ApiError::internal)?;
    let label = format!("api:github:hook-{hook}");
    let origin = crate::api::ingest::Origin {
        actor: format!("github:hook-{hook}"),
        action: "ingest.github",
        target: Some(format!("delivery {guid}")),
        detail: Some(format!("event {event}")),
    };
    let ingest = move |e: &mut keyward_engine::Engine| {
        let format = Some(Format::GithubWebhook);
        let opts = keyward_engine::IngestOptions::default();
        e.ingest_records(&label, &raw, format, &opts, now(), |_, sink| {
            github::normalize_webhook(&delivery, raw.clone(), sink);
        })
    };
    let (status, Json(answer)) = crate::api::ingest::run(&state, origin, ingest, start).await?;
    Ok((status, Json(Delivered::Ingested(answer))).into_response())
}
