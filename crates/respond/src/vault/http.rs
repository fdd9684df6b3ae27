//! The few Vault/OpenBao HTTP calls the connector makes, over hyper 1 + rustls on ring.
//! A call returns the answer's JSON (`None` for 204 and for 404, which Vault answers for a
//! path that holds nothing, a LIST included) or an [`HttpError`] with Vault's own error
//! strings. The token travels in `X-Vault-Token` only; it is never part of a message.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::rotate::handoff::Secret;

/// The longest one call may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read (a LIST of many accessors is the biggest).
const MAX_BODY: usize = 64 << 20;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum HttpError {
    /// Vault answered with an error status.
    #[error("{status}: {}", if errors.is_empty() { "no error message".to_owned() } else { errors.join("; ") })]
    Status { status: u16, errors: Vec<String> },
    /// No answer (connection, TLS, timeout) or an answer that is not JSON.
    #[error("{0}")]
    Transport(String),
}

impl HttpError {
    pub(super) fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            HttpError::Transport(_) => None,
        }
    }
}

/// A client for one Vault server, as one token (and namespace).
#[derive(Clone)]
pub(super) struct Http {
    client: Client<Https, Full<Bytes>>,
    /// `https://vault:8200` (no trailing slash).
    addr: String,
    token: Secret,
    namespace: Option<String>,
}

/// The TLS roots: the PEM bundle of `VAULT_CACERT` when given, else the platform's.
pub(super) fn connector(ca_cert: Option<&std::path::Path>) -> Result<Https, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = match ca_cert {
        Some(path) => {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject as _;
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("reading CA bundle `{}`: {e}", path.display()))?;
            for c in certs {
                let c = c.map_err(|e| format!("reading CA bundle `{}`: {e}", path.display()))?;
                roots
                    .add(c)
                    .map_err(|e| format!("CA bundle `{}`: {e}", path.display()))?;
            }
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS configuration: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
        None => hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| format!("loading the platform's CA certificates: {e}"))?,
    };
    Ok(builder.https_or_http().enable_http1().build())
}

impl Http {
    pub(super) fn new(
        connector: Https,
        addr: &str,
        token: Secret,
        namespace: Option<String>,
    ) -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build(connector),
            addr: addr.trim_end_matches('/').to_owned(),
            token,
            namespace,
        }
    }

    pub(super) fn addr(&self) -> &str {
        &self.addr
    }

    /// The same server and namespace, as another token (a token being verified).
    pub(super) fn as_token(&self, token: Secret) -> Http {
        Http {
            token,
            ..self.clone()
        }
    }

    pub(super) async fn get(&self, path: &str) -> Result<Option<Value>, HttpError> {
        self.call(Method::GET, path, None).await
    }

    /// `LIST` (as `GET ?list=true`): the `data.keys`, empty when there are none.
    pub(super) async fn list(&self, path: &str) -> Result<Vec<String>, HttpError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let doc = self
            .call(Method::GET, &format!("{path}{sep}list=true"), None)
            .await?;
        Ok(doc
            .as_ref()
            .and_then(|d| d.pointer("/data/keys"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    pub(super) async fn post(&self, path: &str, body: &Value) -> Result<Option<Value>, HttpError> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub(super) async fn put(&self, path: &str, body: &Value) -> Result<Option<Value>, HttpError> {
        self.call(Method::PUT, path, Some(body)).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, HttpError> {
        let uri = format!("{}/v1/{}", self.addr, path.trim_start_matches('/'));
        let mut req = Request::builder()
            .method(method)
            .uri(&uri)
            .header("X-Vault-Request", "true")
            .header("X-Vault-Token", self.token.expose());
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        let bytes = match body {
            Some(b) => {
                req = req.header("Content-Type", "application/json");
                Bytes::from(serde_json::to_vec(b).map_err(|e| HttpError::Transport(e.to_string()))?)
            }
            None => Bytes::new(),
        };
        let req = req
            .body(Full::new(bytes))
            .map_err(|e| HttpError::Transport(format!("bad request for `{path}`: {e}")))?;
        let resp = tokio::time::timeout(TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| HttpError::Transport(format!("no answer within {TIMEOUT:?}")))?
            .map_err(|e| HttpError::Transport(describe(&e)))?;
        let status = resp.status();
        let body =
            tokio::time::timeout(TIMEOUT, Limited::new(resp.into_body(), MAX_BODY).collect())
                .await
                .map_err(|_| HttpError::Transport(format!("answer not read within {TIMEOUT:?}")))?
                .map_err(|e| HttpError::Transport(format!("reading the answer: {e}")))?
                .to_bytes();
        if status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let doc: Option<Value> = if body.is_empty() {
            None
        } else {
            serde_json::from_slice(&body).ok()
        };
        if status.is_success() {
            return match doc {
                Some(d) => Ok(Some(d)),
                None if body.is_empty() => Ok(None),
                None => Err(HttpError::Transport(format!(
                    "the answer ({status}) is not JSON"
                ))),
            };
        }
        let errors: Vec<String> = doc
            .as_ref()
            .and_then(|d| d.get("errors"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|s| s.chars().take(300).collect())
                    .collect()
            })
            .unwrap_or_default();
        if status == StatusCode::NOT_FOUND && errors.is_empty() {
            return Ok(None);
        }
        Err(HttpError::Status {
            status: status.as_u16(),
            errors,
        })
    }
}

/// A transport error with its causes (hyper's own message is only "client error").
fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}
