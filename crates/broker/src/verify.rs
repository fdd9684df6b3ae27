//! Workload proofs checked: OIDC tokens (Kubernetes service accounts, GitHub Actions,
//! any OIDC issuer) against their trusted issuer's JWKS, Keyward's own tokens against its
//! keyring, and mTLS client certificates, each turned into a [`Workload`].
//!
//! Only configured issuers are trusted, matched by their exact `iss`. Their keys are
//! fetched over HTTPS (plain HTTP only to a loopback address), with a body cap and a
//! deadline, and cached; an unknown `kid` (the issuer rotated its keys) refetches them at
//! most once per [`REFETCH_EVERY_MS`] per issuer, so forged key ids cannot make the broker
//! hammer an issuer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, Uri, header};
use hyper_rustls::{ConfigBuilderExt as _, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keyward_model::ids;
use keyward_model::time::Millis;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::jose::{self, Claims, Expect, JoseError, JwkSet};
use crate::keys::Keyring;
use crate::{ProofKind, Workload};

/// An unknown `kid` refetches an issuer's keys at most this often.
pub const REFETCH_EVERY_MS: Millis = 30_000;
/// Cached keys are refreshed after this long (a removed key stops being trusted); when
/// the refresh fails, the cached keys are kept.
pub const MAX_KEYS_AGE_MS: Millis = 3_600_000;
/// After a failed fetch with nothing cached, the next attempt waits this long.
const FAILED_FETCH_BACKOFF_MS: Millis = 5_000;
/// A discovery document or JWKS larger than this is refused.
const MAX_BODY: usize = 256 * 1024;
/// Connecting, and then the whole exchange, each get this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// An issuer whose tokens prove a workload's identity (from `keyward.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// A name for messages and the configuration.
    pub name: String,
    /// `kubernetes`, `github_actions` or `oidc`.
    pub kind: ProofKind,
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// A token must be meant for one of these (`aud`); at least one is required.
    pub audiences: Vec<String>,
    /// Where its keys are; else from `{issuer}/.well-known/openid-configuration`.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// PEM roots to trust for its HTTPS (a cluster's CA); else the platform's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// A bearer token to fetch its discovery document and keys with (kube-apiserver
    /// serves them only to authenticated callers). Read at each fetch, so it may rotate.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// For `kubernetes`: the cluster's name in Keyward's ids (default: `name`).
    #[serde(default)]
    pub cluster: Option<String>,
}

/// What is wrong with a trusted issuer's configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("`audiences` is empty: tokens meant for anyone would be accepted")]
    NoAudiences,
    #[error("kind `{}` is not an issuer of tokens to verify", .0.as_str())]
    Kind(ProofKind),
    #[error("issuer `{0}` is configured twice")]
    Duplicate(String),
    #[error("{0}")]
    Url(FetchError),
    #[error("reading CA certificates from `{}`: {source}", path.display())]
    CaFile {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("`{}` holds no usable PEM certificate", .0.display())]
    NoCaCertificate(PathBuf),
    #[error("TLS: {0}")]
    Tls(rustls::Error),
}

/// Why an issuer's discovery document or keys could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("`{0}` is not an http(s) URL")]
    Url(String),
    #[error("`{0}`: plain http is allowed only to a loopback address")]
    Insecure(String),
    #[error("reading the bearer token file `{}`: {reason}", path.display())]
    BearerFile { path: PathBuf, reason: String },
    #[error("`{url}`: {reason}")]
    Transport { url: String, reason: String },
    #[error("`{url}` answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("`{url}` did not answer within {}s", FETCH_TIMEOUT.as_secs())]
    Timeout { url: String },
    #[error("`{url}`: the answer is larger than {MAX_BODY} bytes")]
    TooLarge { url: String },
    #[error("`{url}` did not answer a {what}: {reason}")]
    Json {
        url: String,
        what: &'static str,
        reason: String,
    },
    #[error("the discovery document names the issuer `{0}`, not the configured one")]
    IssuerMismatch(String),
    #[error("the last fetch failed moments ago; not retried yet")]
    Backoff,
}

/// What is wrong with a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("is not a DER X.509 certificate")]
    Parse,
    #[error("has expired")]
    Expired,
    #[error("is not valid yet")]
    NotYetValid,
    #[error("has a malformed `spiffe://` URI SAN")]
    SpiffeId,
    #[error("has more than one `spiffe://` URI SAN")]
    ManySpiffeIds,
    #[error("has neither a `spiffe://` URI SAN nor a subject common name")]
    NoIdentity,
}

/// Why a proof was refused, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Token(#[from] JoseError),
    #[error("the token's issuer is not trusted")]
    UnknownIssuer,
    #[error("the token lacks the claim `{0}`")]
    MissingClaim(&'static str),
    /// The issuer's keys are out of reach: not the workload's fault (an HTTP 503).
    #[error("the keys of issuer `{issuer}` could not be fetched: {source}")]
    Keys { issuer: String, source: FetchError },
    #[error("trusted issuer `{name}`: {source}")]
    Config { name: String, source: ConfigError },
    #[error("the client certificate {0}")]
    Certificate(#[from] CertificateError),
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Checks tokens against the trusted issuers, caching each issuer's keys.
pub struct Verifier {
    sources: Vec<Source>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.sources.iter().map(|s| &s.config.name))
            .finish()
    }
}

/// One trusted issuer, its HTTP client and its cached keys.
struct Source {
    config: TrustedIssuer,
    cluster: String,
    client: HttpClient,
    /// Read by every verification; written only under `fetch`.
    keys: RwLock<Option<Cached>>,
    fetch: tokio::sync::Mutex<FetchState>,
}

#[derive(Clone)]
struct Cached {
    jwks: Arc<JwkSet>,
    fetched_at: Millis,
}

#[derive(Default)]
struct FetchState {
    /// Discovered once, then reused.
    jwks_uri: Option<String>,
    last_attempt: Option<Millis>,
    last_failed: bool,
}

impl Verifier {
    /// A verifier for these issuers. Each needs at least one audience, a distinct
    /// `issuer` and a kind of `kubernetes`, `github_actions` or `oidc`.
    pub fn new(issuers: Vec<TrustedIssuer>) -> Result<Verifier, VerifyError> {
        let mut sources: Vec<Source> = Vec::with_capacity(issuers.len());
        for config in issuers {
            let fail = |source| VerifyError::Config {
                name: config.name.clone(),
                source,
            };
            if sources.iter().any(|s| s.config.issuer == config.issuer) {
                return Err(fail(ConfigError::Duplicate(config.issuer.clone())));
            }
            let client = check_config(&config).map_err(fail)?;
            sources.push(Source {
                cluster: config
                    .cluster
                    .clone()
                    .unwrap_or_else(|| config.name.clone()),
                config,
                client,
                keys: RwLock::new(None),
                fetch: tokio::sync::Mutex::new(FetchState::default()),
            });
        }
        Ok(Verifier { sources })
    }

    /// Verifies a workload's token: its issuer must be trusted, its signature verify
    /// with that issuer's keys, and its claims hold (`aud` one of the issuer's audiences).
    pub async fn verify(&self, token: &str, now: Millis) -> Result<Workload, VerifyError> {
        let peeked = jose::peek(token)?;
        let iss = peeked.issuer().ok_or(JoseError::Issuer)?;
        let source = self
            .sources
            .iter()
            .find(|s| s.config.issuer == iss)
            .ok_or(VerifyError::UnknownIssuer)?;
        let expect = Expect::new(
            &source.config.issuer,
            &source.config.audiences,
            now.div_euclid(1000),
        );
        let jwks = source.keys(now).await?;
        let claims = match jose::verify(token, &jwks, &expect) {
            Err(JoseError::UnknownKey) => match source.refetch(now, &jwks).await? {
                Some(fresh) => jose::verify(token, &fresh, &expect)?,
                None => return Err(JoseError::UnknownKey.into()),
            },
            checked => checked?,
        };
        source.workload(claims)
    }
}

fn check_config(config: &TrustedIssuer) -> Result<HttpClient, ConfigError> {
    match config.kind {
        ProofKind::Kubernetes | ProofKind::GithubActions | ProofKind::Oidc => {}
        ProofKind::Keyward | ProofKind::Mtls => return Err(ConfigError::Kind(config.kind)),
    }
    if config.audiences.iter().all(String::is_empty) {
        return Err(ConfigError::NoAudiences);
    }
    check_url(&config.issuer).map_err(ConfigError::Url)?;
    if let Some(uri) = &config.jwks_uri {
        check_url(uri).map_err(ConfigError::Url)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ConfigError::Tls)?;
    let tls = match &config.ca_file {
        Some(path) => builder
            .with_root_certificates(ca_roots(path)?)
            .with_no_client_auth(),
        None => match builder.clone().with_native_roots() {
            Ok(b) => b.with_no_client_auth(),
            // No platform roots: every HTTPS fetch will fail, and say why.
            Err(_) => builder
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        },
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

fn ca_roots(path: &std::path::Path) -> Result<rustls::RootCertStore, ConfigError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let read = |source| ConfigError::CaFile {
        path: path.to_owned(),
        source,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<_, _>>()
        .map_err(read)?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(ConfigError::NoCaCertificate(path.to_owned()));
    }
    Ok(roots)
}

/// An https URL, or an http one to a loopback address.
fn check_url(url: &str) -> Result<Uri, FetchError> {
    let uri: Uri = url.parse().map_err(|_| FetchError::Url(url.into()))?;
    let host = uri.host().ok_or_else(|| FetchError::Url(url.into()))?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") => {
            let ip = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || ip
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(uri)
            } else {
                Err(FetchError::Insecure(url.into()))
            }
        }
        _ => Err(FetchError::Url(url.into())),
    }
}

fn same_origin(a: &Uri, b: &Uri) -> bool {
    a.scheme() == b.scheme() && a.host() == b.host() && a.port_u16() == b.port_u16()
}

/// An error and its sources, one line (hyper's own messages are terse).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        text.push_str(": ");
        text.push_str(&s.to_string());
        next = s.source();
    }
    text
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl Source {
    fn cached(&self) -> Option<Cached> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn store(&self, jwks: JwkSet, now: Millis) -> Arc<JwkSet> {
        let jwks = Arc::new(jwks);
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Some(Cached {
            jwks: Arc::clone(&jwks),
            fetched_at: now,
        });
        jwks
    }

    fn keys_error(&self, source: FetchError) -> VerifyError {
        VerifyError::Keys {
            issuer: self.config.name.clone(),
            source,
        }
    }

    /// The issuer's keys: cached, else (or when old) fetched.
    async fn keys(&self, now: Millis) -> Result<Arc<JwkSet>, VerifyError> {
        let fresh = |c: &Cached| now.saturating_sub(c.fetched_at) < MAX_KEYS_AGE_MS;
        if let Some(c) = self.cached().filter(fresh) {
            return Ok(c.jwks);
        }
        let mut state = self.fetch.lock().await;
        // Another verification may have fetched while this one waited.
        let cached = self.cached();
        if let Some(c) = cached.clone().filter(fresh) {
            return Ok(c.jwks);
        }
        // Stale keys and a refresh tried moments ago: no verification waits on another.
        if let Some(c) = &cached
            && state
                .last_attempt
                .is_some_and(|t| now.saturating_sub(t) < REFETCH_EVERY_MS)
        {
            return Ok(Arc::clone(&c.jwks));
        }
        if cached.is_none()
            && state.last_failed
            && state
                .last_attempt
                .is_some_and(|t| now.saturating_sub(t) < FAILED_FETCH_BACKOFF_MS)
        {
            return Err(self.keys_error(FetchError::Backoff));
        }
        match self.fetch_keys(&mut state, now).await {
            Ok(jwks) => Ok(self.store(jwks, now)),
            // Old keys beat none while the issuer is unreachable.
            Err(e) => cached.map(|c| c.jwks).ok_or_else(|| self.keys_error(e)),
        }
    }

    /// Fresh keys after an unknown `kid`; `None` when the last fetch was too recent.
    async fn refetch(
        &self,
        now: Millis,
        seen: &Arc<JwkSet>,
    ) -> Result<Option<Arc<JwkSet>>, VerifyError> {
        let mut state = self.fetch.lock().await;
        if let Some(c) = self.cached().filter(|c| !Arc::ptr_eq(&c.jwks, seen)) {
            return Ok(Some(c.jwks));
        }
        if state
            .last_attempt
            .is_some_and(|t| now.saturating_sub(t) < REFETCH_EVERY_MS)
        {
            return Ok(None);
        }
        let jwks = self
            .fetch_keys(&mut state, now)
            .await
            .map_err(|e| self.keys_error(e))?;
        Ok(Some(self.store(jwks, now)))
    }

    async fn fetch_keys(&self, state: &mut FetchState, now: Millis) -> Result<JwkSet, FetchError> {
        state.last_attempt = Some(now);
        state.last_failed = true;
        let issuer = check_url(&self.config.issuer)?;
        let jwks_uri = match (&self.config.jwks_uri, &state.jwks_uri) {
            (Some(uri), _) | (None, Some(uri)) => uri.clone(),
            (None, None) => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.config.issuer.trim_end_matches('/')
                );
                let body = self.get(&url, true).await?;
                let doc: Discovery =
                    serde_json::from_slice(&body).map_err(|e| FetchError::Json {
                        url: url.clone(),
                        what: "discovery document",
                        reason: e.to_string(),
                    })?;
                if doc.issuer != self.config.issuer {
                    return Err(FetchError::IssuerMismatch(doc.issuer));
                }
                check_url(&doc.jwks_uri)?;
                state.jwks_uri = Some(doc.jwks_uri.clone());
                doc.jwks_uri
            }
        };
        // The bearer token goes only where it was meant to: the issuer itself, or a
        // JWKS URL the configuration names.
        let bearer = self.config.jwks_uri.is_some() || same_origin(&check_url(&jwks_uri)?, &issuer);
        let body = self.get(&jwks_uri, bearer).await?;
        let jwks: JwkSet = serde_json::from_slice(&body).map_err(|e| FetchError::Json {
            url: jwks_uri.clone(),
            what: "JWKS",
            reason: e.to_string(),
        })?;
        state.last_failed = false;
        Ok(jwks)
    }

    /// GET `url`'s body, capped and within the deadline.
    async fn get(&self, url: &str, with_bearer: bool) -> Result<Bytes, FetchError> {
        let uri = check_url(url)?;
        // kube-apiserver answers 406 to a JWKS request that does not accept
        // `application/jwk-set+json` (RFC 7517 §8.5.1).
        let accept = "application/json, application/jwk-set+json";
        let mut req = Request::get(uri).header(header::ACCEPT, accept);
        if let (true, Some(path)) = (with_bearer, &self.config.bearer_token_file) {
            let bearer_error = |reason: String| FetchError::BearerFile {
                path: path.clone(),
                reason,
            };
            let token = std::fs::read_to_string(path).map_err(|e| bearer_error(e.to_string()))?;
            let mut value = header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .map_err(|_| bearer_error("not a header value".into()))?;
            value.set_sensitive(true);
            req = req.header(header::AUTHORIZATION, value);
        }
        let transport = |reason: String| FetchError::Transport {
            url: url.into(),
            reason,
        };
        let req = req
            .body(Empty::new())
            .map_err(|e| transport(e.to_string()))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| transport(chain(&e)))?;
            let status = resp.status();
            if !status.is_success() {
                return Err(FetchError::Status {
                    url: url.into(),
                    status: status.as_u16(),
                });
            }
            let body = Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        FetchError::TooLarge { url: url.into() }
                    } else {
                        transport(chain(&*e))
                    }
                })?;
            Ok(body.to_bytes())
        };
        tokio::time::timeout(FETCH_TIMEOUT, exchange)
            .await
            .map_err(|_| FetchError::Timeout { url: url.into() })?
    }

    fn workload(&self, claims: Claims) -> Result<Workload, VerifyError> {
        let sub = claims.sub.clone().ok_or(VerifyError::MissingClaim("sub"))?;
        let audience = claims
            .aud
            .iter()
            .find(|a| self.config.audiences.contains(a))
            .cloned()
            .ok_or(JoseError::Audience)?;
        let mut attrs = BTreeMap::new();
        let identity = match self.config.kind {
            ProofKind::Kubernetes => {
                let sa = service_account(&claims.all)?;
                let identity = ids::k8s_service_account(&self.cluster, &sa.namespace, &sa.name);
                attrs.insert("namespace".into(), sa.namespace);
                attrs.insert("service_account".into(), sa.name);
                if let Some(uid) = sa.uid {
                    attrs.insert("service_account_uid".into(), uid);
                }
                if let Some(pod) = sa.pod {
                    attrs.insert("pod".into(), pod);
                }
                attrs.insert("cluster".into(), self.cluster.clone());
                identity
            }
            ProofKind::GithubActions => {
                copy_strings(&claims.all, GITHUB_CLAIMS, &mut attrs);
                ids::oidc(&claims.iss, &sub)
            }
            ProofKind::Oidc => {
                copy_strings(&claims.all, &["email", "azp", "client_id"], &mut attrs);
                ids::oidc(&claims.iss, &sub)
            }
            // Refused by `Verifier::new`.
            ProofKind::Keyward | ProofKind::Mtls => {
                return Err(VerifyError::Config {
                    name: self.config.name.clone(),
                    source: ConfigError::Kind(self.config.kind),
                });
            }
        };
        attrs.insert("audience".into(), audience);
        Ok(Workload {
            proof: self.config.kind,
            issuer: claims.iss,
            subject: sub,
            identity,
            attrs,
            expires_at: claims.exp.saturating_mul(1000),
            lease: None,
        })
    }
}

/// The claims GitHub documents for Actions OIDC tokens that policies may test.
const GITHUB_CLAIMS: &[&str] = &[
    "repository",
    "repository_owner",
    "ref",
    "environment",
    "workflow",
    "job_workflow_ref",
    "event_name",
    "actor",
];

fn copy_strings(claims: &Map<String, Value>, names: &[&str], attrs: &mut BTreeMap<String, String>) {
    for name in names {
        if let Some(v) = claims.get(*name).and_then(Value::as_str) {
            attrs.insert((*name).to_owned(), v.to_owned());
        }
    }
}

/// A Kubernetes service account as its token names it.
struct ServiceAccount {
    namespace: String,
    name: String,
    uid: Option<String>,
    pod: Option<String>,
}

/// Projected tokens nest `kubernetes.io: {namespace, serviceaccount: {name, uid},
/// pod: {name}}`; legacy secret tokens have flat `kubernetes.io/serviceaccount/…` claims.
fn service_account(claims: &Map<String, Value>) -> Result<ServiceAccount, VerifyError> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    if let Some(k) = claims.get("kubernetes.io").and_then(Value::as_object) {
        let sa = k.get("serviceaccount");
        return Ok(ServiceAccount {
            namespace: text(k.get("namespace"))
                .ok_or(VerifyError::MissingClaim("kubernetes.io.namespace"))?,
            name: text(sa.and_then(|s| s.get("name"))).ok_or(VerifyError::MissingClaim(
                "kubernetes.io.serviceaccount.name",
            ))?,
            uid: text(sa.and_then(|s| s.get("uid"))),
            pod: text(k.get("pod").and_then(|p| p.get("name"))),
        });
    }
    Ok(ServiceAccount {
        namespace: text(claims.get("kubernetes.io/serviceaccount/namespace"))
            .ok_or(VerifyError::MissingClaim("kubernetes.io.namespace"))?,
        name: text(claims.get("kubernetes.io/serviceaccount/service-account.name")).ok_or(
            VerifyError::MissingClaim("kubernetes.io.serviceaccount.name"),
        )?,
        uid: text(claims.get("kubernetes.io/serviceaccount/service-account.uid")),
        pod: None,
    })
}

/// Verifies a token Keyward's own issuer signed, against its keyring (no network). The
/// audience is not checked: the caller knows which one it needs.
pub fn verify_own(
    token: &str,
    keyring: &Keyring,
    issuer: &str,
    now: Millis,
) -> Result<Claims, VerifyError> {
    let expect = Expect::new(issuer, &[], now.div_euclid(1000));
    Ok(jose::verify(token, &keyring.jwks(), &expect)?)
}

/// The workload an mTLS client certificate names (its chain already validated by
/// rustls): the SPIFFE id of its `spiffe://` URI SAN, else its subject common name.
pub fn workload_from_certificate(der: &[u8], now: Millis) -> Result<Workload, VerifyError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| CertificateError::Parse)?;
    let validity = cert.validity();
    let not_after = validity.not_after.timestamp().saturating_mul(1000);
    if not_after <= now {
        return Err(CertificateError::Expired.into());
    }
    if validity.not_before.timestamp().saturating_mul(1000) > now {
        return Err(CertificateError::NotYetValid.into());
    }
    let sans = cert
        .subject_alternative_name()
        .map_err(|_| CertificateError::Parse)?;
    let mut spiffe = sans
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri)
                if uri.len() >= 9
                    && uri
                        .get(..9)
                        .is_some_and(|s| s.eq_ignore_ascii_case("spiffe://")) =>
            {
                Some(*uri)
            }
            _ => None,
        });
    let first = spiffe.next();
    if spiffe.next().is_some() {
        return Err(CertificateError::ManySpiffeIds.into());
    }
    let issuer = cert.issuer().to_string();
    let mut attrs = BTreeMap::new();
    let (subject, identity) = match first {
        Some(id) => {
            let rest = id.get(9..).unwrap_or_default();
            let (domain, path) = rest.split_once('/').unwrap_or((rest, ""));
            let domain_ok = !domain.is_empty()
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
            if !domain_ok || id.get(..9) != Some("spiffe://") {
                return Err(CertificateError::SpiffeId.into());
            }
            attrs.insert("trust_domain".into(), domain.to_owned());
            attrs.insert("path".into(), format!("/{path}"));
            (id.to_owned(), id.to_owned())
        }
        None => {
            let cn = cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .filter(|cn| !cn.is_empty())
                .ok_or(CertificateError::NoIdentity)?;
            (cn.to_owned(), format!("mtls:{cn}"))
        }
    };
    Ok(Workload {
        proof: ProofKind::Mtls,
        issuer,
        subject,
        identity,
        attrs,
        expires_at: not_after,
        lease: None,
    })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    use serde_json::json;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::jose::Jwk;

    const T: Millis = 1_800_000_000_000;

    /// A local OIDC issuer: discovery at the usual path, keys at `/keys`.
    struct LocalIssuer {
        url: String,
        jwks: Arc<Mutex<JwkSet>>,
        discovery_hits: Arc<AtomicUsize>,
        jwks_hits: Arc<AtomicUsize>,
        authorization: Arc<Mutex<Option<String>>>,
        /// When set, the JWKS answers 500.
        failing: Arc<std::sync::atomic::AtomicBool>,
    }

    async fn local_issuer(jwks: JwkSet) -> LocalIssuer {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", tcp.local_addr().unwrap());
        let issuer = LocalIssuer {
            url: url.clone(),
            jwks: Arc::new(Mutex::new(jwks)),
            discovery_hits: Arc::default(),
            jwks_hits: Arc::default(),
            authorization: Arc::default(),
            failing: Arc::default(),
        };
        let failing = Arc::clone(&issuer.failing);
        let (jwks, dh, jh, auth) = (
            Arc::clone(&issuer.jwks),
            Arc::clone(&issuer.discovery_hits),
            Arc::clone(&issuer.jwks_hits),
            Arc::clone(&issuer.authorization),
        );
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = tcp.accept().await.unwrap();
                let mut head = Vec::new();
                let mut buf = [0; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = sock.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    head.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
                *auth.lock().unwrap() = head
                    .lines()
                    .find_map(|l| l.strip_prefix("authorization: "))
                    .map(str::to_owned);
                let (status, body) = match path.as_str() {
                    "/.well-known/openid-configuration" => {
                        dh.fetch_add(1, Ordering::SeqCst);
                        let doc = json!({"issuer": url, "jwks_uri": format!("{url}/keys")});
                        ("200 OK", doc.to_string())
                    }
                    "/keys" if failing.load(Ordering::SeqCst) => {
                        jh.fetch_add(1, Ordering::SeqCst);
                        ("500 Internal Server Error", String::new())
                    }
                    "/keys" => {
                        jh.fetch_add(1, Ordering::SeqCst);
                        let set = serde_json::to_string(&*jwks.lock().unwrap()).unwrap();
                        ("200 OK", set)
                    }
                    _ => ("404 Not Found", String::new()),
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        issuer
    }

    fn key() -> (EcdsaKeyPair, Jwk, String) {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng).unwrap();
        let kid = jose::b64url_encode(&pair.public_key().as_ref()[1..9]);
        let jwk = Jwk::from_es256_public(&kid, pair.public_key().as_ref()).unwrap();
        (pair, jwk, kid)
    }

    fn trusted(kind: ProofKind, issuer: &str) -> TrustedIssuer {
        TrustedIssuer {
            name: "test".into(),
            kind,
            issuer: issuer.into(),
            audiences: vec!["keyward".into()],
            jwks_uri: None,
            ca_file: None,
            bearer_token_file: None,
            cluster: None,
        }
    }

    fn token(key: &(EcdsaKeyPair, Jwk, String), claims: Value) -> String {
        jose::sign_es256(&key.0, &key.2, &claims).unwrap()
    }

    fn claims(iss: &str) -> Value {
        let s = T / 1000;
        json!({"iss": iss, "sub": "user-1", "aud": ["keyward"], "iat": s, "exp": s + 600,
               "email": "ci@example.com", "azp": "ci"})
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_at_most_once_per_30s() {
        let a = key();
        let issuer = local_issuer(JwkSet {
            keys: vec![a.1.clone()],
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let bearer = dir.path().join("token");
        std::fs::write(&bearer, "s3cret\n").unwrap();
        let mut config = trusted(ProofKind::Oidc, &issuer.url);
        config.bearer_token_file = Some(bearer);
        let verifier = Verifier::new(vec![config]).unwrap();

        let w = verifier
            .verify(&token(&a, claims(&issuer.url)), T)
            .await
            .unwrap();
        assert_eq!(w.proof, ProofKind::Oidc);
        assert_eq!(w.identity, ids::oidc(&issuer.url, "user-1"));
        assert_eq!(
            (w.subject.as_str(), w.issuer.as_str()),
            ("user-1", issuer.url.as_str())
        );
        assert_eq!(w.expires_at, T + 600_000);
        assert_eq!(w.attrs["audience"], "keyward");
        assert_eq!(w.attrs["email"], "ci@example.com");
        assert_eq!(w.attrs["azp"], "ci");
        assert_eq!(w.lease, None);
        let hits = |i: &LocalIssuer| {
            (
                i.discovery_hits.load(Ordering::SeqCst),
                i.jwks_hits.load(Ordering::SeqCst),
            )
        };
        assert_eq!(hits(&issuer), (1, 1));
        assert_eq!(
            issuer.authorization.lock().unwrap().as_deref(),
            Some("Bearer s3cret")
        );

        // The issuer rotates: a token from its new key, just after the first fetch,
        // is refused without a fetch; 30 s later one refetch finds the key.
        let b = key();
        issuer.jwks.lock().unwrap().keys.push(b.1.clone());
        let tb = token(&b, claims(&issuer.url));
        let err = verifier.verify(&tb, T + 1_000).await.unwrap_err();
        assert!(
            matches!(err, VerifyError::Token(JoseError::UnknownKey)),
            "{err}"
        );
        assert_eq!(hits(&issuer), (1, 1));
        verifier.verify(&tb, T + 31_000).await.unwrap();
        assert_eq!(hits(&issuer), (1, 2));
        // Forged key ids do not make it fetch again.
        let c = key();
        for i in 0..5 {
            let err = verifier
                .verify(&token(&c, claims(&issuer.url)), T + 32_000 + i)
                .await
                .unwrap_err();
            assert!(
                matches!(err, VerifyError::Token(JoseError::UnknownKey)),
                "{err}"
            );
        }
        assert_eq!(hits(&issuer), (1, 2));
        // Known keys keep verifying without a fetch.
        verifier
            .verify(&token(&a, claims(&issuer.url)), T + 33_000)
            .await
            .unwrap();
        assert_eq!(hits(&issuer), (1, 2));

        // An hour on, the keys are refreshed; the issuer failing, the old keys serve, and
        // the next verifications do not wait on another attempt.
        issuer.failing.store(true, Ordering::SeqCst);
        let later = T + 31_000 + MAX_KEYS_AGE_MS;
        let mut c = claims(&issuer.url);
        c["exp"] = json!(later / 1000 + 600);
        let t = token(&a, c);
        for i in 0..3 {
            verifier.verify(&t, later + i).await.unwrap();
        }
        assert_eq!(hits(&issuer), (1, 3));
    }

    #[tokio::test]
    async fn unknown_issuer_and_wrong_audience_are_refused() {
        let a = key();
        let issuer = local_issuer(JwkSet {
            keys: vec![a.1.clone()],
        })
        .await;
        let verifier = Verifier::new(vec![trusted(ProofKind::Oidc, &issuer.url)]).unwrap();
        // An issuer is matched exactly: not even a trailing slash.
        for iss in ["https://accounts.example", &format!("{}/", issuer.url)] {
            let err = verifier
                .verify(&token(&a, claims(iss)), T)
                .await
                .unwrap_err();
            assert!(matches!(err, VerifyError::UnknownIssuer), "{err}");
        }
        assert_eq!(issuer.jwks_hits.load(Ordering::SeqCst), 0);
        let mut other = claims(&issuer.url);
        other["aud"] = json!("vault");
        let err = verifier.verify(&token(&a, other), T).await.unwrap_err();
        assert!(
            matches!(err, VerifyError::Token(JoseError::Audience)),
            "{err}"
        );
        let mut no_sub = claims(&issuer.url);
        no_sub.as_object_mut().unwrap().remove("sub");
        let err = verifier.verify(&token(&a, no_sub), T).await.unwrap_err();
        assert!(matches!(err, VerifyError::MissingClaim("sub")), "{err}");
    }

    #[tokio::test]
    async fn kubernetes_and_github_claims_become_attributes() {
        let a = key();
        let issuer = local_issuer(JwkSet {
            keys: vec![a.1.clone()],
        })
        .await;
        let mut k8s = trusted(ProofKind::Kubernetes, &issuer.url);
        k8s.cluster = Some("prod-eks".into());
        let verifier = Verifier::new(vec![k8s]).unwrap();
        let mut c = claims(&issuer.url);
        c["sub"] = json!("system:serviceaccount:payments:api");
        c["kubernetes.io"] = json!({"namespace": "payments",
            "serviceaccount": {"name": "api", "uid": "u-1"}, "pod": {"name": "api-7f9", "uid": "p-1"}});
        let w = verifier.verify(&token(&a, c), T).await.unwrap();
        assert_eq!(
            w.identity,
            ids::k8s_service_account("prod-eks", "payments", "api")
        );
        let attrs: Vec<_> = w.attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            attrs,
            [
                "audience=keyward",
                "cluster=prod-eks",
                "namespace=payments",
                "pod=api-7f9",
                "service_account=api",
                "service_account_uid=u-1"
            ]
        );
        // Legacy secret tokens' flat claims.
        let flat = json!({"kubernetes.io/serviceaccount/namespace": "ops",
            "kubernetes.io/serviceaccount/service-account.name": "deployer"});
        let sa = service_account(flat.as_object().unwrap()).unwrap();
        assert_eq!(
            (sa.namespace.as_str(), sa.name.as_str(), sa.pod),
            ("ops", "deployer", None)
        );
        assert!(service_account(&Map::new()).is_err());

        let gh_url = format!("{}/gh", issuer.url);
        let mut gh = trusted(ProofKind::GithubActions, &gh_url);
        gh.jwks_uri = Some(format!("{}/keys", issuer.url));
        let verifier = Verifier::new(vec![gh]).unwrap();
        let mut c = claims(&gh_url);
        c["sub"] = json!("repo:acme/api:environment:prod");
        c["repository"] = json!("acme/api");
        c["ref"] = json!("refs/heads/main");
        c["environment"] = json!("prod");
        c["run_id"] = json!("42");
        let w = verifier.verify(&token(&a, c), T).await.unwrap();
        assert_eq!(
            w.identity,
            ids::oidc(&gh_url, "repo:acme/api:environment:prod")
        );
        assert_eq!(w.attrs["repository"], "acme/api");
        assert_eq!(w.attrs["ref"], "refs/heads/main");
        assert_eq!(w.attrs["environment"], "prod");
        assert!(!w.attrs.contains_key("run_id") && !w.attrs.contains_key("email"));
        // The configured JWKS URL was used: no discovery.
        assert_eq!(issuer.discovery_hits.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn bad_configurations_are_refused() {
        let refused = |edit: &dyn Fn(&mut TrustedIssuer)| {
            let mut t = trusted(ProofKind::Oidc, "https://accounts.example");
            edit(&mut t);
            match Verifier::new(vec![t]) {
                Err(VerifyError::Config { source, .. }) => source.to_string(),
                other => format!("accepted: {other:?}"),
            }
        };
        assert!(refused(&|t| t.audiences.clear()).contains("audiences"));
        assert!(refused(&|t| t.audiences = vec![String::new()]).contains("audiences"));
        assert!(refused(&|t| t.kind = ProofKind::Keyward).contains("keyward"));
        assert!(refused(&|t| t.kind = ProofKind::Mtls).contains("mtls"));
        assert!(refused(&|t| t.issuer = "http://accounts.example".into()).contains("loopback"));
        assert!(refused(&|t| t.jwks_uri = Some("ftp://x/keys".into())).contains("URL"));
        assert!(refused(&|t| t.ca_file = Some("/nonexistent/ca.pem".into())).contains("ca.pem"));
        let t = trusted(ProofKind::Oidc, "https://accounts.example");
        let err = Verifier::new(vec![t.clone(), t]).unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
        // Loopback over plain http is fine.
        Verifier::new(vec![trusted(ProofKind::Oidc, "http://[::1]:8080")]).unwrap();
        // From YAML-like JSON, unknown fields refused.
        let parsed: Result<TrustedIssuer, _> = serde_json::from_value(json!({"name": "gh",
            "kind": "github_actions", "issuer": "https://token.actions.githubusercontent.com",
            "audiences": ["keyward"], "audience": "typo"}));
        assert!(parsed.is_err());
    }

    #[tokio::test]
    async fn an_unreachable_issuer_is_a_fetch_error() {
        let a = key();
        // A port nothing listens on (bound, then dropped).
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", tcp.local_addr().unwrap());
        drop(tcp);
        let verifier = Verifier::new(vec![trusted(ProofKind::Oidc, &url)]).unwrap();
        let err = verifier
            .verify(&token(&a, claims(&url)), T)
            .await
            .unwrap_err();
        assert!(matches!(err, VerifyError::Keys { .. }), "{err}");
        let err = verifier
            .verify(&token(&a, claims(&url)), T + 1)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                VerifyError::Keys {
                    source: FetchError::Backoff,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn own_tokens_verify_against_the_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open(&dir.path().join("keys.json"), T).unwrap();
        let iss = "https://keyward.example/broker";
        let t = ring
            .sign(&json!({"iss": iss, "sub": "lease:1", "exp": T / 1000 + 60}))
            .unwrap();
        let c = verify_own(&t, &ring, iss, T).unwrap();
        assert_eq!(c.sub.as_deref(), Some("lease:1"));
        assert!(verify_own(&t, &ring, "https://other.example", T).is_err());
        assert!(verify_own(&t, &ring, iss, T + 200_000).is_err());
    }

    #[test]
    fn certificates_name_a_spiffe_id_or_a_common_name() {
        let make = |uris: &[&str], cn: Option<&str>| {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name = rcgen::DistinguishedName::new();
            if let Some(cn) = cn {
                params
                    .distinguished_name
                    .push(rcgen::DnType::CommonName, cn);
            }
            for uri in uris {
                params
                    .subject_alt_names
                    .push(rcgen::SanType::URI((*uri).try_into().unwrap()));
            }
            let key = rcgen::KeyPair::generate().unwrap();
            params.self_signed(&key).unwrap().der().to_vec()
        };
        let id = "spiffe://prod.example/ns/payments/sa/api";
        let w =
            workload_from_certificate(&make(&[id, "https://x.example"], Some("api")), T).unwrap();
        assert_eq!(
            (w.proof, w.identity.as_str(), w.subject.as_str()),
            (ProofKind::Mtls, id, id)
        );
        assert_eq!(w.attrs["trust_domain"], "prod.example");
        assert_eq!(w.attrs["path"], "/ns/payments/sa/api");
        assert!(w.expires_at > T);

        let w = workload_from_certificate(&make(&[], Some("billing-batch")), T).unwrap();
        assert_eq!(
            (w.identity.as_str(), w.subject.as_str()),
            ("mtls:billing-batch", "billing-batch")
        );
        assert!(w.attrs.is_empty());

        let err = |der: &[u8]| match workload_from_certificate(der, T) {
            Err(VerifyError::Certificate(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err(&make(&[id, "spiffe://b.example/x"], None)),
            CertificateError::ManySpiffeIds
        );
        assert_eq!(
            err(&make(&["spiffe://Prod.example/x"], None)),
            CertificateError::SpiffeId
        );
        assert_eq!(err(&make(&[], None)), CertificateError::NoIdentity);
        assert_eq!(err(b"not a certificate"), CertificateError::Parse);
        let der = make(&[id], None);
        assert!(matches!(
            workload_from_certificate(&der, i64::MAX / 2),
            Err(VerifyError::Certificate(CertificateError::Expired))
        ));
    }
}
