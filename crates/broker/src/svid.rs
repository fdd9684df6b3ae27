//! X.509 SVIDs from the broker's CA: a P-256 CA for one SPIFFE trust domain, kept as two PEM
//! files (created on first use, reopened afterwards), and leaf certificates whose only URI SAN
//! is the workload's SPIFFE id (`spiffe://<trust-domain>/<path>`), as the X509-SVID
//! specification has them.
//!
//! A workload that sends a PKCS#10 request keeps its key; for one that does not, the broker
//! generates a P-256 key and hands it back once, in the [`Svid`] (never logged: `Debug`
//! hides it). Only the public key of a request is used: its subject and extensions are the
//! broker's to decide.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyward_model::time::Millis;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use ring::rand::{SecureRandom as _, SystemRandom};
use x509_parser::extensions::GeneralName;

/// A leaf's lifetime when the caller names none.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// How long a new CA is valid.
const CA_VALIDITY_MS: Millis = 365 * keyward_model::time::MS_PER_DAY;
/// How far `notBefore` is set back, for clocks a little behind ours.
const BACKDATE_MS: Millis = 60_000;
/// The SPIFFE id's longest form (bytes), per the SPIFFE ID specification.
const MAX_ID_LEN: usize = 2048;
/// A trust domain's longest form (bytes).
const MAX_TRUST_DOMAIN_LEN: usize = 255;

/// Why a CA could not be opened or an SVID issued. Messages name files and ids, never a key.
#[derive(Debug, thiserror::Error)]
pub enum SvidError {
    #[error("invalid trust domain `{domain}`: {reason}")]
    InvalidTrustDomain {
        domain: String,
        reason: &'static str,
    },
    #[error("invalid SPIFFE id `{id}`: {reason}")]
    InvalidSpiffeId { id: String, reason: &'static str },
    #[error("`{id}` is not in trust domain `{trust_domain}`")]
    ForeignTrustDomain { id: String, trust_domain: String },
    #[error("reading `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// One of the two files exists without the other: nothing is overwritten.
    #[error("`{}` exists but `{}` does not: restore the missing file, or remove the other to create a new CA", present.display(), missing.display())]
    HalfCa { present: PathBuf, missing: PathBuf },
    /// The files hold something that is not this trust domain's CA.
    #[error("the CA in `{}` is not usable: {reason}", path.display())]
    BadCa { path: PathBuf, reason: String },
    #[error("the certificate signing request is not usable: {0}")]
    BadCsr(String),
    #[error("the time-to-live must be positive")]
    ZeroTtl,
    #[error("the CA expired at {0}")]
    CaExpired(String),
    /// Key generation or signing failed (rcgen or ring).
    #[error("{0} failed")]
    Crypto(&'static str),
}

/// A SPIFFE id split into its trust domain and path (`/ns/prod/sa/api`, empty for the
/// trust domain's own id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpiffeId<'a> {
    pub trust_domain: &'a str,
    pub path: &'a str,
}

/// Checks a trust domain name: lowercase letters, digits, `.`, `-` and `_`.
pub fn check_trust_domain(domain: &str) -> Result<(), SvidError> {
    let bad = |reason| SvidError::InvalidTrustDomain {
        domain: domain.to_owned(),
        reason,
    };
    if domain.is_empty() {
        return Err(bad("it is empty"));
    }
    if domain.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(bad("it is longer than 255 bytes"));
    }
    if !domain
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'_'))
    {
        return Err(bad(
            "only lowercase letters, digits, `.`, `-` and `_` are allowed",
        ));
    }
    Ok(())
}

/// Parses a SPIFFE id per the SPIFFE ID specification: scheme `spiffe://`, a valid trust
/// domain, then path segments of letters, digits, `.`, `-` and `_`, none empty, `.` or `..`.
/// A query, fragment, port or user info cannot pass (their characters are not allowed).
pub fn parse_spiffe_id(id: &str) -> Result<SpiffeId<'_>, SvidError> {
    let bad = |reason| SvidError::InvalidSpiffeId {
        id: id.to_owned(),
        reason,
    };
    if id.len() > MAX_ID_LEN {
        return Err(bad("it is longer than 2048 bytes"));
    }
    let rest = id
        .strip_prefix("spiffe://")
        .ok_or_else(|| bad("the scheme must be `spiffe://`"))?;
    let (trust_domain, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if trust_domain.is_empty() {
        return Err(bad("the trust domain is missing"));
    }
    if check_trust_domain(trust_domain).is_err() {
        return Err(bad(
            "the trust domain may hold only lowercase letters, digits, `.`, `-` and `_` (no port, user info, query or fragment)",
        ));
    }
    if !path.is_empty() {
        for segment in path.split('/').skip(1) {
            match segment {
                "" => return Err(bad("a path segment is empty (`//` or a trailing `/`)")),
                "." | ".." => return Err(bad("a path segment is `.` or `..`")),
                s if !s
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_')) =>
                {
                    return Err(bad(
                        "a path segment may hold only letters, digits, `.`, `-` and `_` (no query or fragment)",
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(SpiffeId { trust_domain, path })
}

/// An issued SVID. `Debug` shows everything but the private key.
#[derive(Clone, PartialEq, Eq)]
pub struct Svid {
    pub spiffe_id: String,
    /// The leaf certificate (PEM).
    pub cert_pem: String,
    /// The key the broker generated (PKCS#8 PEM); `None` when the workload sent a request.
    pub key_pem: Option<String>,
    /// The trust bundle: the CA certificate (PEM).
    pub bundle_pem: String,
    /// The serial number, lowercase hex.
    pub serial_hex: String,
    /// The leaf's `notAfter` (whole seconds).
    pub not_after: Millis,
}

impl std::fmt::Debug for Svid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Svid")
            .field("spiffe_id", &self.spiffe_id)
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &self.key_pem.as_ref().map(|_| "‹redacted›"))
            .field("bundle_pem", &self.bundle_pem)
            .field("serial_hex", &self.serial_hex)
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// The broker's CA for one trust domain. `Debug` shows the trust domain and expiry only.
pub struct Ca {
    trust_domain: String,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    not_after: Millis,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("trust_domain", &self.trust_domain)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// Reopens the CA kept in `cert_path` and `key_path`, or creates it there when neither
    /// file exists (self-signed P-256, CA with path length 0, URI SAN `spiffe://<domain>`,
    /// valid a year from `now`; the key written with mode 0600). A CA for another trust
    /// domain, or a key that is not the certificate's, is refused.
    pub fn open(
        cert_path: &Path,
        key_path: &Path,
        trust_domain: &str,
        now: Millis,
    ) -> Result<Ca, SvidError> {
        check_trust_domain(trust_domain)?;
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => Ca::read(cert_path, key_path, trust_domain),
            (false, false) => Ca::create(cert_path, key_path, trust_domain, now),
            (true, false) => Err(SvidError::HalfCa {
                present: cert_path.to_owned(),
                missing: key_path.to_owned(),
            }),
            (false, true) => Err(SvidError::HalfCa {
                present: key_path.to_owned(),
                missing: cert_path.to_owned(),
            }),
        }
    }

    fn read(cert_path: &Path, key_path: &Path, trust_domain: &str) -> Result<Ca, SvidError> {
        let cert_pem = fs::read_to_string(cert_path).map_err(|source| SvidError::Read {
            path: cert_path.to_owned(),
            source,
        })?;
        let key_pem = fs::read_to_string(key_path).map_err(|source| SvidError::Read {
            path: key_path.to_owned(),
            source,
        })?;
        let bad = |path: &Path, reason: String| SvidError::BadCa {
            path: path.to_owned(),
            reason,
        };
        // rcgen's own message says only what kind of key it could not read.
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|_| bad(key_path, "not a PKCS#8 PEM private key".into()))?;
        let der = pem_der(&cert_pem).map_err(|reason| bad(cert_path, reason))?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| bad(cert_path, format!("not an X.509 certificate: {e}")))?;
        if !cert.is_ca() {
            return Err(bad(cert_path, "the certificate is not a CA".into()));
        }
        let expected = format!("spiffe://{trust_domain}");
        let uris = uri_sans(&cert).map_err(|reason| bad(cert_path, reason))?;
        if uris != [expected.as_str()] {
            return Err(bad(
                cert_path,
                format!("its URI SAN is not `{expected}` (found {uris:?})"),
            ));
        }
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(bad(
                key_path,
                format!("the key is not the one of `{}`", cert_path.display()),
            ));
        }
        let not_after = cert.validity().not_after.timestamp() * 1000;
        let issuer =
            Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| bad(cert_path, e.to_string()))?;
        Ok(Ca {
            trust_domain: trust_domain.to_owned(),
            cert_pem,
            issuer,
            not_after,
        })
    }

    fn create(
        cert_path: &Path,
        key_path: &Path,
        trust_domain: &str,
        now: Millis,
    ) -> Result<Ca, SvidError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|_| SvidError::Crypto("generating the CA key"))?;
        let not_after = whole_seconds(now.saturating_add(CA_VALIDITY_MS));
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Keyward");
        dn.push(
            DnType::CommonName,
            format!("Keyward broker CA {trust_domain}"),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.subject_alt_names = vec![uri_san(&format!("spiffe://{trust_domain}"))?];
        params.serial_number = Some(random_serial()?);
        set_validity(&mut params, now.saturating_sub(BACKDATE_MS), not_after)?;
        let cert = params
            .self_signed(&key)
            .map_err(|_| SvidError::Crypto("signing the CA certificate"))?;
        let cert_pem = cert.pem();
        // The key first: a certificate without its key is refused on the next open, and
        // this order leaves no certificate whose key was never written.
        let written = |path: &Path, source| SvidError::Write {
            path: path.to_owned(),
            source,
        };
        crate::write_atomically(key_path, key.serialize_pem().as_bytes(), 0o600)
            .map_err(|e| written(key_path, e))?;
        crate::write_atomically(cert_path, cert_pem.as_bytes(), 0o644)
            .map_err(|e| written(cert_path, e))?;
        Ok(Ca {
            trust_domain: trust_domain.to_owned(),
            cert_pem,
            issuer: Issuer::new(params, key),
            not_after,
        })
    }

    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// When the CA expires; no leaf outlives it.
    pub fn not_after(&self) -> Millis {
        self.not_after
    }

    /// The trust bundle: the CA certificate (PEM).
    pub fn bundle_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues an X509-SVID for `spiffe_id` (which must be in this CA's trust domain and have
    /// a path), valid from a minute before `now` for `ttl` ([`DEFAULT_TTL`] when `None`),
    /// never past the CA's own expiry. With `csr_pem` (PKCS#10) the leaf certifies that
    /// request's key; without it a P-256 key is generated and returned in the [`Svid`].
    pub fn issue(
        &self,
        spiffe_id: &str,
        csr_pem: Option<&str>,
        ttl: Option<Duration>,
        now: Millis,
    ) -> Result<Svid, SvidError> {
        let id = parse_spiffe_id(spiffe_id)?;
        if id.trust_domain != self.trust_domain {
            return Err(SvidError::ForeignTrustDomain {
                id: spiffe_id.to_owned(),
                trust_domain: self.trust_domain.clone(),
            });
        }
        if id.path.is_empty() {
            return Err(SvidError::InvalidSpiffeId {
                id: spiffe_id.to_owned(),
                reason: "a workload's id needs a path (`spiffe://<trust-domain>/<path>`)",
            });
        }
        let ttl = ttl.unwrap_or(DEFAULT_TTL);
        if ttl.is_zero() {
            return Err(SvidError::ZeroTtl);
        }
        let ttl_ms = Millis::try_from(ttl.as_millis()).unwrap_or(Millis::MAX);
        let not_after = whole_seconds(now.saturating_add(ttl_ms).min(self.not_after));
        if not_after <= now {
            return Err(SvidError::CaExpired(keyward_model::time::format(
                self.not_after,
            )));
        }
        let serial = random_serial()?;
        let serial_hex = hex::encode(serial.to_bytes());
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Keyward");
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.subject_alt_names = vec![uri_san(spiffe_id)?];
        params.serial_number = Some(serial);
        set_validity(&mut params, now.saturating_sub(BACKDATE_MS), not_after)?;
        params.use_authority_key_identifier_extension = true;
        let (cert, key_pem) = match csr_pem {
            Some(csr) => {
                let csr = CertificateSigningRequestParams::from_pem(csr)
                    .map_err(|e| SvidError::BadCsr(e.to_string()))?;
                let cert = params
                    .signed_by(&csr.public_key, &self.issuer)
                    .map_err(|_| SvidError::Crypto("signing the SVID"))?;
                (cert, None)
            }
            None => {
                let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
                    .map_err(|_| SvidError::Crypto("generating the SVID key"))?;
                let cert = params
                    .signed_by(&key, &self.issuer)
                    .map_err(|_| SvidError::Crypto("signing the SVID"))?;
                (cert, Some(key.serialize_pem()))
            }
        };
        Ok(Svid {
            spiffe_id: spiffe_id.to_owned(),
            cert_pem: cert.pem(),
            key_pem,
            bundle_pem: self.cert_pem.clone(),
            serial_hex,
            not_after,
        })
    }
}

fn uri_san(uri: &str) -> Result<SanType, SvidError> {
    let s = uri.try_into().map_err(|_| SvidError::InvalidSpiffeId {
        id: uri.to_owned(),
        reason: "not an IA5 string",
    })?;
    Ok(SanType::URI(s))
}

/// 16 random bytes, the top bit cleared so the DER integer is positive.
fn random_serial() -> Result<SerialNumber, SvidError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SvidError::Crypto("drawing a serial number"))?;
    if let Some(b) = bytes.first_mut() {
        *b = (*b & 0x7f) | 0x40;
    }
    Ok(SerialNumber::from_slice(&bytes))
}

/// X.509 times have whole seconds.
fn whole_seconds(ms: Millis) -> Millis {
    ms.div_euclid(1000) * 1000
}

/// Sets a certificate's validity. rcgen's times are the `time` crate's, reached through
/// `rcgen::date_time_ymd` (it is not a dependency of ours); X.509 times end at 9999-12-31.
fn set_validity(
    params: &mut CertificateParams,
    not_before: Millis,
    not_after: Millis,
) -> Result<(), SvidError> {
    const LAST_X509_SECOND: u64 = 253_402_300_799;
    let secs = |ms: Millis| {
        u64::try_from(ms.div_euclid(1000))
            .ok()
            .filter(|s| *s <= LAST_X509_SECOND)
            .ok_or(SvidError::Crypto("converting a validity time"))
    };
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(secs(not_before)?);
    params.not_after = epoch + Duration::from_secs(secs(not_after)?);
    Ok(())
}

/// The DER of the first `CERTIFICATE` block of a PEM text.
fn pem_der(pem: &str) -> Result<Vec<u8>, String> {
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| format!("not PEM: {e}"))?;
    if block.label != "CERTIFICATE" {
        return Err(format!("a PEM `{}` block, not a CERTIFICATE", block.label));
    }
    Ok(block.contents)
}

/// The URI SANs of a certificate.
fn uri_sans<'a>(
    cert: &'a x509_parser::certificate::X509Certificate<'_>,
) -> Result<Vec<&'a str>, String> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("its subject alternative names do not parse: {e}"))?;
    Ok(san
        .map(|s| {
            s.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(u) => Some(*u),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, UnixTime};
    use rustls::server::WebPkiClientVerifier;
    use x509_parser::parse_x509_certificate;

    use super::*;

    const TD: &str = "prod.example.org";

    fn now() -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as Millis)
    }

    fn ca_in(dir: &Path, now: Millis) -> Ca {
        Ca::open(
            &dir.join("broker-ca.pem"),
            &dir.join("broker-ca.key"),
            TD,
            now,
        )
        .unwrap()
    }

    fn der(pem: &str) -> Vec<u8> {
        pem_der(pem).unwrap()
    }

    /// The leaf chains to the bundle, checked by webpki (as a client certificate, at `now`).
    fn chains(svid: &Svid, now: Millis) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(der(&svid.bundle_pem)))
            .unwrap();
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let at = UnixTime::since_unix_epoch(Duration::from_millis(now as u64));
        verifier
            .verify_client_cert(&CertificateDer::from(der(&svid.cert_pem)), &[], at)
            .map(|_| ())
    }

    /// What a leaf says, read back with x509-parser.
    fn check_leaf(svid: &Svid, now: Millis, ttl_ms: Millis) {
        let d = der(&svid.cert_pem);
        let (_, cert) = parse_x509_certificate(&d).unwrap();
        assert_eq!(uri_sans(&cert).unwrap(), vec![svid.spiffe_id.as_str()]);
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert_eq!(san.value.general_names.len(), 1, "exactly one SAN");
        assert!(!cert.is_ca());
        let bc = cert.basic_constraints().unwrap().unwrap();
        assert!(!bc.value.ca);
        let eku = cert.extended_key_usage().unwrap().unwrap();
        assert!(eku.value.server_auth && eku.value.client_auth);
        let ku = cert.key_usage().unwrap().unwrap();
        assert!(ku.value.digital_signature() && !ku.value.key_cert_sign());
        let v = cert.validity();
        assert_eq!(
            v.not_before.timestamp(),
            (now - BACKDATE_MS).div_euclid(1000)
        );
        assert_eq!(v.not_after.timestamp() * 1000, svid.not_after);
        assert_eq!(svid.not_after, whole_seconds(now + ttl_ms));
        assert_eq!(hex::encode(cert.raw_serial()), svid.serial_hex);
        assert_eq!(svid.serial_hex.len(), 32);
        // The signature, with the CA's key.
        let ca_der = der(&svid.bundle_pem);
        let (_, ca) = parse_x509_certificate(&ca_der).unwrap();
        cert.verify_signature(Some(ca.public_key())).unwrap();
        assert_eq!(cert.issuer(), ca.subject());
    }

    #[test]
    fn issues_with_a_generated_key() {
        let dir = tempfile::tempdir().unwrap();
        let now = now();
        let ca = ca_in(dir.path(), now);
        let id = format!("spiffe://{TD}/ns/payments/sa/api");
        let svid = ca.issue(&id, None, None, now).unwrap();
        check_leaf(&svid, now, 3_600_000);
        chains(&svid, now).unwrap();
        let key = svid.key_pem.as_deref().unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        // The key returned is the certificate's.
        let kp = KeyPair::from_pem(key).unwrap();
        let d = der(&svid.cert_pem);
        let (_, cert) = parse_x509_certificate(&d).unwrap();
        assert_eq!(
            cert.public_key().subject_public_key.data.as_ref(),
            kp.public_key_raw()
        );
        let shown = format!("{svid:?}");
        assert!(!shown.contains("PRIVATE KEY") && shown.contains("‹redacted›"));
        // Not valid after its notAfter.
        assert!(chains(&svid, svid.not_after + 1000).is_err());
    }

    #[test]
    fn issues_for_a_csr_and_keeps_the_workloads_key() {
        let dir = tempfile::tempdir().unwrap();
        let now = now();
        let ca = ca_in(dir.path(), now);
        let workload_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut req = CertificateParams::default();
        // What the request asks for beyond its key is ignored.
        req.subject_alt_names = vec![SanType::URI("spiffe://evil.example/x".try_into().unwrap())];
        let csr = req.serialize_request(&workload_key).unwrap().pem().unwrap();
        let id = format!("spiffe://{TD}/ci/deploy");
        let svid = ca
            .issue(&id, Some(&csr), Some(Duration::from_secs(600)), now)
            .unwrap();
        assert!(svid.key_pem.is_none());
        check_leaf(&svid, now, 600_000);
        chains(&svid, now).unwrap();
        let d = der(&svid.cert_pem);
        let (_, cert) = parse_x509_certificate(&d).unwrap();
        assert_eq!(
            cert.public_key().subject_public_key.data.as_ref(),
            workload_key.public_key_raw()
        );
        assert!(matches!(
            ca.issue(&id, Some("not a csr"), None, now),
            Err(SvidError::BadCsr(_))
        ));
    }

    #[test]
    fn the_ca_is_a_constrained_ca_of_its_trust_domain() {
        let dir = tempfile::tempdir().unwrap();
        let now = now();
        let ca = ca_in(dir.path(), now);
        let d = der(ca.bundle_pem());
        let (_, cert) = parse_x509_certificate(&d).unwrap();
        let bc = cert.basic_constraints().unwrap().unwrap();
        assert!(bc.value.ca);
        assert_eq!(bc.value.path_len_constraint, Some(0));
        let ku = cert.key_usage().unwrap().unwrap();
        assert!(ku.value.key_cert_sign() && ku.value.crl_sign());
        assert_eq!(uri_sans(&cert).unwrap(), vec![format!("spiffe://{TD}")]);
        assert_eq!(
            cert.validity().not_after.timestamp() * 1000,
            whole_seconds(now + CA_VALIDITY_MS)
        );
        cert.verify_signature(None).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(dir.path().join("broker-ca.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{ca:?}").contains("PRIVATE"));
        // A leaf asked for past the CA's expiry ends with it.
        let svid = ca
            .issue(
                &format!("spiffe://{TD}/long"),
                None,
                Some(Duration::from_secs(2 * 365 * 86_400)),
                now,
            )
            .unwrap();
        assert_eq!(svid.not_after, ca.not_after());
        assert!(matches!(
            ca.issue(&format!("spiffe://{TD}/late"), None, None, ca.not_after()),
            Err(SvidError::CaExpired(_))
        ));
        assert!(matches!(
            ca.issue(&format!("spiffe://{TD}/x"), None, Some(Duration::ZERO), now),
            Err(SvidError::ZeroTtl)
        ));
    }

    #[test]
    fn reopened_from_its_files_it_is_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let now = now();
        let first = ca_in(dir.path(), now);
        let again = ca_in(dir.path(), now + 5_000);
        assert_eq!(first.bundle_pem(), again.bundle_pem());
        assert_eq!(first.not_after(), again.not_after());
        // What the reopened CA signs chains to the first one's bundle.
        let mut svid = again
            .issue(&format!("spiffe://{TD}/after-restart"), None, None, now)
            .unwrap();
        svid.bundle_pem = first.bundle_pem().to_owned();
        chains(&svid, now).unwrap();
        // No leftover temporary files.
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["broker-ca.key", "broker-ca.pem"]);
    }

    #[test]
    fn files_of_another_trust_domain_or_half_a_ca_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("ca.pem"), dir.path().join("ca.key"));
        let now = now();
        Ca::open(&cert, &key, TD, now).unwrap();
        assert!(matches!(
            Ca::open(&cert, &key, "other.example", now),
            Err(SvidError::BadCa { .. })
        ));
        // A key that is not the certificate's.
        let other = tempfile::tempdir().unwrap();
        let (cert2, key2) = (other.path().join("ca.pem"), other.path().join("ca.key"));
        Ca::open(&cert2, &key2, TD, now).unwrap();
        assert!(matches!(
            Ca::open(&cert, &key2, TD, now),
            Err(SvidError::BadCa { .. })
        ));
        fs::remove_file(&key).unwrap();
        assert!(matches!(
            Ca::open(&cert, &key, TD, now),
            Err(SvidError::HalfCa { .. })
        ));
        assert!(matches!(
            Ca::open(&cert, &key, "Prod.Example", now),
            Err(SvidError::InvalidTrustDomain { .. })
        ));
    }

    #[test]
    fn foreign_or_malformed_spiffe_ids_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let now = now();
        let ca = ca_in(dir.path(), now);
        assert!(matches!(
            ca.issue("spiffe://other.example/api", None, None, now),
            Err(SvidError::ForeignTrustDomain { .. })
        ));
        for bad in [
            format!("spiffe://{TD}"),
            format!("spiffe://{TD}/"),
            format!("spiffe://{TD}/a//b"),
            format!("spiffe://{TD}/a/./b"),
            format!("spiffe://{TD}/a/.."),
            format!("spiffe://{TD}/a?x=1"),
            format!("spiffe://{TD}/a#frag"),
            format!("spiffe://{TD}:443/a"),
            format!("spiffe://user@{TD}/a"),
            format!("spiffe://{TD}/a b"),
            format!("SPIFFE://{TD}/a"),
            format!("https://{TD}/a"),
            "spiffe:///a".to_owned(),
            format!("spiffe://{}/a", TD.to_uppercase()),
            format!("spiffe://{TD}/{}", "a".repeat(2100)),
        ] {
            assert!(
                matches!(
                    ca.issue(&bad, None, None, now),
                    Err(SvidError::InvalidSpiffeId { .. })
                ),
                "{bad} accepted"
            );
        }
        assert_eq!(
            parse_spiffe_id("spiffe://td_1.example-x/Ns/a.b-c_D").unwrap(),
            SpiffeId {
                trust_domain: "td_1.example-x",
                path: "/Ns/a.b-c_D"
            }
        );
    }
}
