//! JWS compact tokens (RFC 7515) on ring: ES256 signing for Keyward's own issuer, and
//! verification of RS256, ES256, ES384 and EdDSA tokens against a JSON Web Key Set, with
//! the claims checks of RFC 7519 and the algorithm rules of RFC 8725.
//!
//! The algorithm is never taken from the token alone: `none` and the HMAC family are
//! refused outright, and the key the `kid` names must be of the type and curve the
//! token's `alg` requires, so a public key can never be used as an HMAC secret or an RSA
//! key for an EC algorithm.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The longest token accepted, in bytes: a header, claims and an RSA-4096 signature fit
/// in a fraction of it; anything longer is refused before it is decoded.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// How far clocks may disagree, in seconds, when `exp`, `nbf` and `iat` are checked.
pub const DEFAULT_LEEWAY_SECS: i64 = 60;

/// Why a token was refused. Messages fit an HTTP 401 answer: they never quote the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    #[error("the token is longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    #[error("the token is not a compact JWS (three base64url parts separated by dots)")]
    Malformed,
    #[error("the token's {0} is not base64url")]
    Base64(Part),
    #[error("the token's {0} is not a JSON object")]
    Json(Part),
    #[error("the token's header names a critical extension (`crit`) this verifier does not know")]
    Critical,
    #[error("the token's algorithm is not accepted (RS256, ES256, ES384 and EdDSA are)")]
    Algorithm,
    #[error("no key of the issuer matches the token's key id")]
    UnknownKey,
    #[error("the issuer's key does not fit the token's algorithm")]
    KeyMismatch,
    #[error("the issuer's key is malformed")]
    BadKey,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token's issuer is not the one expected")]
    Issuer,
    #[error("the token is not meant for this audience")]
    Audience,
    #[error("the token has no expiry (`exp`)")]
    MissingExpiry,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's claim `{0}` has the wrong type")]
    ClaimType(&'static str),
    #[error("the claims could not be serialized: {0}")]
    Serialize(String),
    #[error("signing failed")]
    Sign,
}

/// A part of a compact JWS, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Header,
    Payload,
    Signature,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Part::Header => "header",
            Part::Payload => "payload",
            Part::Signature => "signature",
        })
    }
}

/// base64url without padding (RFC 7515 §2).
pub fn b64url_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `None` when it is not.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// A JSON Web Key (RFC 7517) with the members this module reads; others are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `RSA`, `EC` or `OKP`. Defaulted so one odd key does not spoil a whole set.
    #[serde(default)]
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

/// A JSON Web Key Set: `{"keys": […]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    #[serde(default)]
    pub keys: Vec<Jwk>,
}

impl Jwk {
    /// The public JWK of a P-256 signing key, from ring's uncompressed point
    /// (`0x04 ‖ x ‖ y`, what `EcdsaKeyPair::public_key` gives).
    pub fn from_es256_public(kid: &str, public_key: &[u8]) -> Result<Jwk, JoseError> {
        let (x, y) = match public_key.split_first() {
            Some((4, xy)) if xy.len() == 64 => xy.split_at(32),
            _ => return Err(JoseError::BadKey),
        };
        Ok(Jwk {
            kty: "EC".into(),
            kid: Some(kid.into()),
            alg: Some("ES256".into()),
            use_: Some("sig".into()),
            crv: Some("P-256".into()),
            x: Some(b64url_encode(x)),
            y: Some(b64url_encode(y)),
            n: None,
            e: None,
        })
    }
}

#[derive(Serialize)]
struct SignHeader<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'static str,
}

/// Signs `claims` as an ES256 compact JWS with the header
/// `{"alg":"ES256","kid":…,"typ":"JWT"}`. `key` must be an
/// `ECDSA_P256_SHA256_FIXED_SIGNING` key.
pub fn sign_es256(
    key: &EcdsaKeyPair,
    kid: &str,
    claims: &impl Serialize,
) -> Result<String, JoseError> {
    let header = serde_json::to_vec(&SignHeader {
        alg: "ES256",
        kid,
        typ: "JWT",
    })
    .map_err(|e| JoseError::Serialize(e.to_string()))?;
    let payload = serde_json::to_vec(claims).map_err(|e| JoseError::Serialize(e.to_string()))?;
    // base64 is 4/3 of the bytes; the signature is 64 bytes (86 characters), plus 2 dots.
    let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 96);
    URL_SAFE_NO_PAD.encode_string(&header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    // `SystemRandom` is a unit struct: making one costs nothing.
    let sig = key
        .sign(&SystemRandom::new(), token.as_bytes())
        .map_err(|_| JoseError::Sign)?;
    // An ASN.1 (DER) key would give a variable-length signature JOSE does not use.
    if sig.as_ref().len() != 64 {
        return Err(JoseError::Sign);
    }
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut token);
    Ok(token)
}

/// The JOSE header members this module reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// A token's header and claims, read without checking anything.
#[derive(Debug, Clone, PartialEq)]
pub struct Peeked {
    pub header: Header,
    pub claims: Map<String, Value>,
}

impl Peeked {
    /// The `iss` claim when it is a string.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }
}

/// A compact JWS split and decoded, not yet verified.
struct Parts<'t> {
    signing_input: &'t str,
    header: Header,
    claims: Map<String, Value>,
    signature: Vec<u8>,
}

fn split(token: &str) -> Result<Parts<'_>, JoseError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JoseError::TooLong);
    }
    let (signing_input, sig) = token.rsplit_once('.').ok_or(JoseError::Malformed)?;
    let (header, payload) = signing_input.split_once('.').ok_or(JoseError::Malformed)?;
    if payload.contains('.') || header.is_empty() || payload.is_empty() || sig.is_empty() {
        return Err(JoseError::Malformed);
    }
    let header = b64url_decode(header).ok_or(JoseError::Base64(Part::Header))?;
    let payload = b64url_decode(payload).ok_or(JoseError::Base64(Part::Payload))?;
    let signature = b64url_decode(sig).ok_or(JoseError::Base64(Part::Signature))?;
    let header: Header =
        serde_json::from_slice(&header).map_err(|_| JoseError::Json(Part::Header))?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&payload).map_err(|_| JoseError::Json(Part::Payload))?;
    Ok(Parts {
        signing_input,
        header,
        claims,
        signature,
    })
}

/// Reads a token's header and claims **without verifying anything**: only to learn
/// which issuer and key to verify it with. Bounded: over [`MAX_TOKEN_LEN`] bytes, not
/// three parts, bad base64url or a header or payload that is not a JSON object are refused.
pub fn peek(token: &str) -> Result<Peeked, JoseError> {
    let parts = split(token)?;
    Ok(Peeked {
        header: parts.header,
        claims: parts.claims,
    })
}

/// What a verified token must say.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The exact `iss`.
    pub issuer: &'a str,
    /// The token's `aud` must contain one of these. Empty: not checked (only for
    /// Keyward's own tokens, whose caller checks the audience itself).
    pub audiences: &'a [String],
    /// Now, in seconds since the epoch.
    pub now: i64,
    /// Clock skew allowed, in seconds.
    pub leeway: i64,
}

impl<'a> Expect<'a> {
    /// An expectation with the default leeway ([`DEFAULT_LEEWAY_SECS`]).
    pub fn new(issuer: &'a str, audiences: &'a [String], now: i64) -> Self {
        Expect {
            issuer,
            audiences,
            now,
            leeway: DEFAULT_LEEWAY_SECS,
        }
    }
}

/// A verified token's registered claims (times in seconds since the epoch), and all of
/// its claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub iss: String,
    pub sub: Option<String>,
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
    pub jti: Option<String>,
    pub all: Map<String, Value>,
}

/// The algorithms accepted, each with the key type and curve it requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rs256,
    Es256,
    Es384,
    EdDsa,
}

impl Alg {
    fn parse(alg: &str) -> Result<Alg, JoseError> {
        match alg {
            "RS256" => Ok(Alg::Rs256),
            "ES256" => Ok(Alg::Es256),
            "ES384" => Ok(Alg::Es384),
            "EdDSA" => Ok(Alg::EdDsa),
            // `none`, HS*, PS*, RS384/512, ES512 and anything unknown.
            _ => Err(JoseError::Algorithm),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
        }
    }
}

/// Verifies a token's signature with the key its `kid` names in `jwks` (the only key
/// when it names none), then its claims against `expect`.
pub fn verify(token: &str, jwks: &JwkSet, expect: &Expect<'_>) -> Result<Claims, JoseError> {
    let parts = split(token)?;
    if parts.header.crit.is_some() {
        return Err(JoseError::Critical);
    }
    let alg = Alg::parse(&parts.header.alg)?;
    let key = select_key(jwks, parts.header.kid.as_deref())?;
    verify_signature(alg, key, parts.signing_input.as_bytes(), &parts.signature)?;
    check_claims(parts.claims, expect)
}

fn select_key<'k>(jwks: &'k JwkSet, kid: Option<&str>) -> Result<&'k Jwk, JoseError> {
    match kid {
        Some(kid) => jwks
            .keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .ok_or(JoseError::UnknownKey),
        None => match jwks.keys.as_slice() {
            [only] => Ok(only),
            _ => Err(JoseError::UnknownKey),
        },
    }
}

fn component(v: Option<&String>) -> Result<Vec<u8>, JoseError> {
    v.and_then(|s| b64url_decode(s)).ok_or(JoseError::BadKey)
}

/// An EC point `0x04 ‖ x ‖ y` from a JWK whose coordinates are `len` bytes each.
fn ec_point(key: &Jwk, len: usize) -> Result<Vec<u8>, JoseError> {
    let (x, y) = (component(key.x.as_ref())?, component(key.y.as_ref())?);
    if x.len() != len || y.len() != len {
        return Err(JoseError::BadKey);
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(point)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

fn verify_signature(alg: Alg, key: &Jwk, msg: &[u8], sig: &[u8]) -> Result<(), JoseError> {
    if key.use_.as_deref().is_some_and(|u| u != "sig")
        || key.alg.as_deref().is_some_and(|a| a != alg.name())
    {
        return Err(JoseError::KeyMismatch);
    }
    let (kty, crv) = (key.kty.as_str(), key.crv.as_deref());
    let checked = match alg {
        Alg::Rs256 => {
            if kty != "RSA" {
                return Err(JoseError::KeyMismatch);
            }
            let (n, e) = (component(key.n.as_ref())?, component(key.e.as_ref())?);
            // RFC 7518 forbids leading zeros; some issuers write one anyway.
            signature::RsaPublicKeyComponents {
                n: strip_leading_zeros(&n),
                e: strip_leading_zeros(&e),
            }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, sig)
        }
        Alg::Es256 => {
            if kty != "EC" || crv != Some("P-256") {
                return Err(JoseError::KeyMismatch);
            }
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, ec_point(key, 32)?)
                .verify(msg, sig)
        }
        Alg::Es384 => {
            if kty != "EC" || crv != Some("P-384") {
                return Err(JoseError::KeyMismatch);
            }
            UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, ec_point(key, 48)?)
                .verify(msg, sig)
        }
        Alg::EdDsa => {
            if kty != "OKP" || crv != Some("Ed25519") {
                return Err(JoseError::KeyMismatch);
            }
            let x = component(key.x.as_ref())?;
            if x.len() != 32 {
                return Err(JoseError::BadKey);
            }
            UnparsedPublicKey::new(&signature::ED25519, x).verify(msg, sig)
        }
    };
    checked.map_err(|_| JoseError::Signature)
}

/// A NumericDate (RFC 7519 §2): seconds, possibly fractional (truncated here).
fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, JoseError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or(JoseError::ClaimType(name)),
        Some(_) => Err(JoseError::ClaimType(name)),
    }
}

fn string_claim(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, JoseError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JoseError::ClaimType(name)),
    }
}

/// `aud`: a string or an array of strings (RFC 7519 §4.1.3).
fn audiences(claims: &Map<String, Value>) -> Result<Vec<String>, JoseError> {
    match claims.get("aud") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(JoseError::ClaimType("aud"))
            })
            .collect(),
        Some(_) => Err(JoseError::ClaimType("aud")),
    }
}

fn check_claims(all: Map<String, Value>, expect: &Expect<'_>) -> Result<Claims, JoseError> {
    let iss = string_claim(&all, "iss")?.ok_or(JoseError::Issuer)?;
    if iss != expect.issuer {
        return Err(JoseError::Issuer);
    }
    let aud = audiences(&all)?;
    if !expect.audiences.is_empty() && !aud.iter().any(|a| expect.audiences.contains(a)) {
        return Err(JoseError::Audience);
    }
    let exp = numeric_date(&all, "exp")?.ok_or(JoseError::MissingExpiry)?;
    if exp <= expect.now.saturating_sub(expect.leeway) {
        return Err(JoseError::Expired);
    }
    let nbf = numeric_date(&all, "nbf")?;
    let iat = numeric_date(&all, "iat")?;
    let latest = expect.now.saturating_add(expect.leeway);
    if nbf.is_some_and(|t| t > latest) || iat.is_some_and(|t| t > latest) {
        return Err(JoseError::NotYetValid);
    }
    Ok(Claims {
        iss,
        sub: string_claim(&all, "sub")?,
        aud,
        exp,
        iat,
        nbf,
        jti: string_claim(&all, "jti")?,
        all,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use ring::signature::{KeyPair as _, RsaKeyPair};
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;
    const ISS: &str = "https://issuer.example";

    fn es256() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            doc.as_ref(),
            &rng,
        )
        .unwrap()
    }

    fn claims() -> Value {
        json!({"iss": ISS, "sub": "system:serviceaccount:default:api", "aud": ["keyward"],
               "exp": NOW + 600, "iat": NOW, "nbf": NOW, "jti": "j1"})
    }

    fn aud() -> Vec<String> {
        vec!["keyward".into()]
    }

    /// A compact JWS with any header, signed by `sign` over the signing input.
    fn token_with(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let input = format!(
            "{}.{}",
            b64url_encode(header.to_string().as_bytes()),
            b64url_encode(claims.to_string().as_bytes())
        );
        let sig = sign(input.as_bytes());
        format!("{input}.{}", b64url_encode(&sig))
    }

    fn rsa() -> (RsaKeyPair, Jwk) {
        let der = include_bytes!("../tests/data/rsa2048.pk8");
        let key = RsaKeyPair::from_pkcs8(der).unwrap();
        let parts = signature::RsaPublicKeyComponents::<Vec<u8>>::from(key.public_key());
        let jwk = Jwk {
            kty: "RSA".into(),
            kid: Some("rsa1".into()),
            alg: Some("RS256".into()),
            use_: Some("sig".into()),
            n: Some(b64url_encode(&parts.n)),
            e: Some(b64url_encode(&parts.e)),
            ..Jwk::default()
        };
        (key, jwk)
    }

    fn rs256_sign(key: &RsaKeyPair, msg: &[u8]) -> Vec<u8> {
        let mut sig = vec![0; key.public().modulus_len()];
        key.sign(
            &signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            msg,
            &mut sig,
        )
        .unwrap();
        sig
    }

    #[test]
    fn es256_round_trip() {
        let key = es256();
        let jwk = Jwk::from_es256_public("k1", key.public_key().as_ref()).unwrap();
        let jwks = JwkSet { keys: vec![jwk] };
        let token = sign_es256(&key, "k1", &claims()).unwrap();
        let peeked = peek(&token).unwrap();
        assert_eq!(peeked.header.alg, "ES256");
        assert_eq!(peeked.header.kid.as_deref(), Some("k1"));
        assert_eq!(peeked.header.typ.as_deref(), Some("JWT"));
        assert_eq!(peeked.issuer(), Some(ISS));
        let aud = aud();
        let c = verify(&token, &jwks, &Expect::new(ISS, &aud, NOW)).unwrap();
        assert_eq!(c.iss, ISS);
        assert_eq!(c.sub.as_deref(), Some("system:serviceaccount:default:api"));
        assert_eq!(c.aud, aud);
        assert_eq!((c.exp, c.iat, c.nbf), (NOW + 600, Some(NOW), Some(NOW)));
        assert_eq!(c.jti.as_deref(), Some("j1"));
        // The JWKS serializes as RFC 7517 says (`use`, no empty members).
        let text = serde_json::to_string(&jwks).unwrap();
        assert!(
            text.contains(r#""use":"sig""#) && !text.contains("null"),
            "{text}"
        );
    }

    #[test]
    fn rs256_verifies_with_the_modulus_and_exponent() {
        let (key, jwk) = rsa();
        let header = json!({"alg": "RS256", "kid": "rsa1", "typ": "JWT"});
        let token = token_with(&header, &claims(), |m| rs256_sign(&key, m));
        let aud = aud();
        let mut jwks = JwkSet {
            keys: vec![jwk.clone()],
        };
        assert!(verify(&token, &jwks, &Expect::new(ISS, &aud, NOW)).is_ok());
        // A leading zero on the modulus (against RFC 7518, but seen) still verifies.
        let mut n = b64url_decode(jwk.n.as_deref().unwrap()).unwrap();
        n.insert(0, 0);
        jwks.keys[0].n = Some(b64url_encode(&n));
        assert!(verify(&token, &jwks, &Expect::new(ISS, &aud, NOW)).is_ok());
    }

    #[test]
    fn tampered_payload_and_signature_are_refused() {
        let key = es256();
        let jwks = JwkSet {
            keys: vec![Jwk::from_es256_public("k1", key.public_key().as_ref()).unwrap()],
        };
        let aud = aud();
        let expect = Expect::new(ISS, &aud, NOW);
        let token = sign_es256(&key, "k1", &claims()).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let (header, _) = input.split_once('.').unwrap();

        let mut forged = claims();
        forged["sub"] = json!("system:serviceaccount:kube-system:admin");
        let payload = b64url_encode(forged.to_string().as_bytes());
        let tampered = format!("{header}.{payload}.{sig}");
        assert_eq!(verify(&tampered, &jwks, &expect), Err(JoseError::Signature));

        let mut bytes = b64url_decode(sig).unwrap();
        bytes[10] ^= 1;
        let tampered = format!("{input}.{}", b64url_encode(&bytes));
        assert_eq!(verify(&tampered, &jwks, &expect), Err(JoseError::Signature));
    }

    #[test]
    fn algorithm_confusion_is_refused() {
        let (rsa_key, rsa_jwk) = rsa();
        let ec = es256();
        let ec_jwk = Jwk::from_es256_public("ec1", ec.public_key().as_ref()).unwrap();
        let aud = aud();
        let expect = Expect::new(ISS, &aud, NOW);
        let both = JwkSet {
            keys: vec![rsa_jwk.clone(), ec_jwk.clone()],
        };
        // `none`, with or without a signature.
        let none = json!({"alg": "none", "kid": "rsa1"});
        let t = token_with(&none, &claims(), |_| b"x".to_vec());
        assert_eq!(verify(&t, &both, &expect), Err(JoseError::Algorithm));
        // HS256 keyed with the RSA key's public modulus (the classic confusion).
        let hs = json!({"alg": "HS256", "kid": "rsa1"});
        let secret = b64url_decode(rsa_jwk.n.as_deref().unwrap()).unwrap();
        let t = token_with(&hs, &claims(), |m| {
            ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret), m)
                .as_ref()
                .to_vec()
        });
        assert_eq!(verify(&t, &both, &expect), Err(JoseError::Algorithm));
        // RS256 naming the EC key, ES256 naming the RSA key.
        let t = token_with(&json!({"alg": "RS256", "kid": "ec1"}), &claims(), |m| {
            rs256_sign(&rsa_key, m)
        });
        assert_eq!(verify(&t, &both, &expect), Err(JoseError::KeyMismatch));
        let t = sign_es256(&ec, "rsa1", &claims()).unwrap();
        assert_eq!(verify(&t, &both, &expect), Err(JoseError::KeyMismatch));
        // ES384 naming a P-256 key.
        let t = token_with(&json!({"alg": "ES384", "kid": "ec1"}), &claims(), |_| {
            vec![0; 96]
        });
        assert_eq!(verify(&t, &both, &expect), Err(JoseError::KeyMismatch));
        // A key whose `alg` says otherwise.
        let mut wrong = ec_jwk;
        wrong.alg = Some("ES384".into());
        let t = sign_es256(&ec, "ec1", &claims()).unwrap();
        let set = JwkSet { keys: vec![wrong] };
        assert_eq!(verify(&t, &set, &expect), Err(JoseError::KeyMismatch));
        // An unknown `crit` extension.
        let t = token_with(
            &json!({"alg": "RS256", "kid": "rsa1", "crit": ["exp"], "exp": 1}),
            &claims(),
            |m| rs256_sign(&rsa_key, m),
        );
        assert_eq!(verify(&t, &both, &expect), Err(JoseError::Critical));
    }

    #[test]
    fn eddsa_and_es384_verify() {
        let rng = SystemRandom::new();
        let doc = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let ed = signature::Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let ed_jwk = Jwk {
            kty: "OKP".into(),
            kid: Some("ed".into()),
            crv: Some("Ed25519".into()),
            x: Some(b64url_encode(ed.public_key().as_ref())),
            ..Jwk::default()
        };
        let alg = &signature::ECDSA_P384_SHA384_FIXED_SIGNING;
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let p384 = EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).unwrap();
        let point = p384.public_key().as_ref();
        let p384_jwk = Jwk {
            kty: "EC".into(),
            kid: Some("p384".into()),
            crv: Some("P-384".into()),
            x: Some(b64url_encode(&point[1..49])),
            y: Some(b64url_encode(&point[49..])),
            ..Jwk::default()
        };
        let jwks = JwkSet {
            keys: vec![ed_jwk, p384_jwk],
        };
        let aud = aud();
        let expect = Expect::new(ISS, &aud, NOW);
        let t = token_with(&json!({"alg": "EdDSA", "kid": "ed"}), &claims(), |m| {
            ed.sign(m).as_ref().to_vec()
        });
        assert!(verify(&t, &jwks, &expect).is_ok());
        let t = token_with(&json!({"alg": "ES384", "kid": "p384"}), &claims(), |m| {
            p384.sign(&rng, m).unwrap().as_ref().to_vec()
        });
        assert!(verify(&t, &jwks, &expect).is_ok());
        // Without a kid, a set of two keys names none.
        let t = token_with(&json!({"alg": "EdDSA"}), &claims(), |m| {
            ed.sign(m).as_ref().to_vec()
        });
        assert_eq!(verify(&t, &jwks, &expect), Err(JoseError::UnknownKey));
    }

    #[test]
    fn claims_are_checked() {
        let key = es256();
        let jwks = JwkSet {
            keys: vec![Jwk::from_es256_public("k1", key.public_key().as_ref()).unwrap()],
        };
        let aud = aud();
        let check = |edit: &dyn Fn(&mut Value), expect: Expect<'_>| {
            let mut c = claims();
            edit(&mut c);
            verify(&sign_es256(&key, "k1", &c).unwrap(), &jwks, &expect).map(|c| c.aud)
        };
        let expect = Expect::new(ISS, &aud, NOW);
        let expired = |c: &mut Value| c["exp"] = json!(NOW - 61);
        assert_eq!(check(&expired, expect), Err(JoseError::Expired));
        // Within the leeway.
        assert!(check(&|c| c["exp"] = json!(NOW - 59), expect).is_ok());
        let no_exp = |c: &mut Value| drop(c.as_object_mut().unwrap().remove("exp"));
        assert_eq!(check(&no_exp, expect), Err(JoseError::MissingExpiry));
        let early = |c: &mut Value| c["nbf"] = json!(NOW + 120);
        assert_eq!(check(&early, expect), Err(JoseError::NotYetValid));
        let issued_later = |c: &mut Value| c["iat"] = json!(NOW + 120);
        assert_eq!(check(&issued_later, expect), Err(JoseError::NotYetValid));
        let other_iss = |c: &mut Value| c["iss"] = json!("https://issuer.example/");
        assert_eq!(check(&other_iss, expect), Err(JoseError::Issuer));
        let other_aud = |c: &mut Value| c["aud"] = json!("vault");
        assert_eq!(check(&other_aud, expect), Err(JoseError::Audience));
        let no_aud = |c: &mut Value| drop(c.as_object_mut().unwrap().remove("aud"));
        assert_eq!(check(&no_aud, expect), Err(JoseError::Audience));
        let bad_aud = |c: &mut Value| c["aud"] = json!(["keyward", 3]);
        assert_eq!(check(&bad_aud, expect), Err(JoseError::ClaimType("aud")));
        let string_exp = |c: &mut Value| c["exp"] = json!("soon");
        assert_eq!(check(&string_exp, expect), Err(JoseError::ClaimType("exp")));
        // A string `aud` is one audience; fractional dates are seconds.
        let one = |c: &mut Value| {
            c["aud"] = json!("keyward");
            c["exp"] = json!(NOW as f64 + 10.5);
        };
        assert_eq!(check(&one, expect), Ok(aud.clone()));
        // No audiences expected: none checked.
        let own = Expect::new(ISS, &[], NOW);
        assert_eq!(check(&other_aud, own), Ok(vec!["vault".to_string()]));
    }

    #[test]
    fn peek_is_bounded() {
        let key = es256();
        let token = sign_es256(&key, "k1", &claims()).unwrap();
        assert!(peek(&token).is_ok());
        let long = format!("{token}{}", "A".repeat(MAX_TOKEN_LEN));
        assert_eq!(peek(&long), Err(JoseError::TooLong));
        assert_eq!(peek("a.b"), Err(JoseError::Malformed));
        assert_eq!(peek(&format!("{token}.x")), Err(JoseError::Malformed));
        assert_eq!(peek("..x"), Err(JoseError::Malformed));
        assert_eq!(peek("a*.b.c"), Err(JoseError::Base64(Part::Header)));
        let arr = b64url_encode(b"[1]");
        let obj = b64url_encode(br#"{"alg":"ES256"}"#);
        assert_eq!(
            peek(&format!("{arr}.{obj}.AA")),
            Err(JoseError::Json(Part::Header))
        );
        assert_eq!(
            peek(&format!("{obj}.{arr}.AA")),
            Err(JoseError::Json(Part::Payload))
        );
        // Messages never quote the token.
        let err = verify(&token, &JwkSet::default(), &Expect::new(ISS, &[], NOW)).unwrap_err();
        assert!(!err.to_string().contains(&token[..20]), "{err}");
    }
}
