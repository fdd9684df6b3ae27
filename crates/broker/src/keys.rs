//! Keyward's own OIDC issuer: its P-256 signing keys, kept in one JSON file (mode 0600,
//! replaced atomically on every change), rotated with an overlap, and published as a
//! JWKS with an OpenID discovery document.
//!
//! Rotation keeps every issued token verifiable: the retired key stays in the JWKS until
//! `retired_at + overlap`, and the overlap must be at least the longest token lifetime.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyward_model::time::Millis;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};

use crate::jose::{self, Jwk, JwkSet};

/// Why the keyring could not be read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
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
    #[error("`{}` is not a keyring: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    #[error(
        "`{}` holds private keys but others may read it (mode {mode:o}): `chmod 600` it",
        path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("generating a signing key failed")]
    Generate,
    #[error(transparent)]
    Sign(#[from] jose::JoseError),
}

/// One key as the file holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    /// PKCS#8 DER, base64 (standard alphabet).
    pkcs8: String,
    created_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired_at: Option<Millis>,
    /// When a retired key leaves the JWKS (`retired_at + overlap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    published_until: Option<Millis>,
}

#[derive(Debug, Serialize, Deserialize)]
struct KeyFile {
    version: u32,
    keys: Vec<StoredKey>,
}

const FILE_VERSION: u32 = 1;

/// How long a key retired outside [`Keyring::rotate`] stays published: a day.
const LONGEST_OVERLAP_MS: Millis = 24 * 3_600_000;

/// A key in memory: what the file holds and the parsed key pair.
struct Key {
    stored: StoredKey,
    pair: EcdsaKeyPair,
}

impl Key {
    fn generate(now: Millis) -> Result<Key, KeyError> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| KeyError::Generate)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng)
            .map_err(|_| KeyError::Generate)?;
        Ok(Key {
            stored: StoredKey {
                kid: kid_of(pair.public_key().as_ref()),
                pkcs8: STANDARD.encode(doc.as_ref()),
                created_at: now,
                retired_at: None,
                published_until: None,
            },
            pair,
        })
    }

    fn load(stored: StoredKey, path: &Path) -> Result<Key, KeyError> {
        let format = |reason: &str| KeyError::Format {
            path: path.to_owned(),
            reason: format!("key `{}`: {reason}", stored.kid),
        };
        let der = STANDARD
            .decode(&stored.pkcs8)
            .map_err(|_| format("`pkcs8` is not base64"))?;
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
                .map_err(|_| format("`pkcs8` is not a P-256 PKCS#8 key"))?;
        if kid_of(pair.public_key().as_ref()) != stored.kid {
            return Err(format("the kid is not its public key's"));
        }
        Ok(Key { stored, pair })
    }

    fn jwk(&self) -> Option<Jwk> {
        Jwk::from_es256_public(&self.stored.kid, self.pair.public_key().as_ref()).ok()
    }
}

/// A key id from the public key: base64url of the first 16 bytes of its BLAKE3 hash.
fn kid_of(public_key: &[u8]) -> String {
    let hash = blake3::hash(public_key);
    jose::b64url_encode(hash.as_bytes().get(..16).unwrap_or_default())
}

/// The issuer's signing keys: one current key and the retired keys still published.
pub struct Keyring {
    path: PathBuf,
    current: Key,
    /// Oldest first.
    retired: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private keys.
        f.debug_struct("Keyring")
            .field("path", &self.path)
            .field("current", &self.current.stored.kid)
            .field(
                "retired",
                &self
                    .retired
                    .iter()
                    .map(|k| k.stored.kid.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Keyring {
    /// Opens the keyring at `path`, creating it (mode 0600) with a first key when it does
    /// not exist. A file that group or others may read is refused.
    pub fn open(path: &Path, now: Millis) -> Result<Keyring, KeyError> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let ring = Keyring {
                    path: path.to_owned(),
                    current: Key::generate(now)?,
                    retired: Vec::new(),
                };
                ring.save()?;
                return Ok(ring);
            }
            Err(source) => {
                return Err(KeyError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        check_private(path)?;
        let file: KeyFile = serde_json::from_slice(&text).map_err(|e| KeyError::Format {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if file.version != FILE_VERSION {
            return Err(KeyError::Format {
                path: path.to_owned(),
                reason: format!("version {} (this build reads {FILE_VERSION})", file.version),
            });
        }
        let (mut current, mut retired, mut dirty) = (None, Vec::new(), false);
        for stored in file.keys {
            let key = Key::load(stored, path)?;
            if key.stored.retired_at.is_some() {
                retired.push(key);
            } else if let Some(mut older) = current.replace(key) {
                // Two current keys (an edited file): the later one signs, the other
                // retires, published for as long as the longest overlap could need.
                older.stored.retired_at = Some(now);
                older.stored.published_until = Some(now.saturating_add(LONGEST_OVERLAP_MS));
                retired.push(older);
                dirty = true;
            }
        }
        let current = match current {
            Some(k) => k,
            None => {
                dirty = true;
                Key::generate(now)?
            }
        };
        let ring = Keyring {
            path: path.to_owned(),
            current,
            retired,
        };
        if dirty {
            ring.save()?;
        }
        Ok(ring)
    }

    /// The key that signs now: its kid and key pair.
    pub fn current(&self) -> (&str, &EcdsaKeyPair) {
        (&self.current.stored.kid, &self.current.pair)
    }

    /// `claims` signed by the current key (ES256).
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, KeyError> {
        let (kid, key) = self.current();
        Ok(jose::sign_es256(key, kid, claims)?)
    }

    /// A new current key; the old one retires and stays published until
    /// `now + overlap_ms` (at least the longest lifetime of a token it signed).
    pub fn rotate(&mut self, now: Millis, overlap_ms: Millis) -> Result<(), KeyError> {
        let mut old = std::mem::replace(&mut self.current, Key::generate(now)?);
        old.stored.retired_at = Some(now);
        old.stored.published_until = Some(now.saturating_add(overlap_ms));
        self.retired.push(old);
        self.save()
    }

    /// Rotates when the current key is `every_ms` old, and prunes; whether it rotated.
    pub fn rotate_if_due(
        &mut self,
        now: Millis,
        every_ms: Millis,
        overlap_ms: Millis,
    ) -> Result<bool, KeyError> {
        self.prune(now)?;
        if now.saturating_sub(self.current.stored.created_at) < every_ms {
            return Ok(false);
        }
        self.rotate(now, overlap_ms)?;
        Ok(true)
    }

    /// Drops the retired keys whose overlap has passed; how many.
    pub fn prune(&mut self, now: Millis) -> Result<usize, KeyError> {
        let before = self.retired.len();
        self.retired
            .retain(|k| k.stored.published_until.is_some_and(|t| now < t));
        let dropped = before - self.retired.len();
        if dropped > 0 {
            self.save()?;
        }
        Ok(dropped)
    }

    /// Every published key: the current one and the retired ones not yet pruned.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: std::iter::once(&self.current)
                .chain(self.retired.iter().rev())
                .filter_map(Key::jwk)
                .collect(),
        }
    }

    /// The OpenID discovery document for `issuer`, served at
    /// `{issuer}/.well-known/openid-configuration`. `issuer` is written as given: the
    /// tokens' `iss` and the URL relying parties configure must be that same string
    /// (go-oidc, hence OpenBao's `jwt` auth, compares them exactly).
    pub fn discovery(&self, issuer: &str) -> serde_json::Value {
        serde_json::json!({
            "issuer": issuer,
            "jwks_uri": format!("{}/jwks", issuer.trim_end_matches('/')),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti"],
        })
    }

    /// Writes the file atomically, 0600 (`crate::write_atomically`).
    fn save(&self) -> Result<(), KeyError> {
        let file = KeyFile {
            version: FILE_VERSION,
            keys: std::iter::once(&self.current)
                .chain(&self.retired)
                .map(|k| k.stored.clone())
                .collect(),
        };
        let write = |source| KeyError::Write {
            path: self.path.clone(),
            source,
        };
        let text = serde_json::to_vec_pretty(&file).map_err(|e| write(e.into()))?;
        crate::write_atomically(&self.path, &text, 0o600).map_err(write)?;
        Ok(())
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::jose::Expect;
    use serde_json::json;

    const T0: Millis = 1_800_000_000_000;
    const HOUR: Millis = 3_600_000;
    const ISS: &str = "https://keyward.example/broker";

    fn token(ring: &Keyring, now: Millis) -> String {
        let s = now / 1000;
        ring.sign(
            &json!({"iss": ISS, "sub": "lease:1", "aud": "keyward", "iat": s, "exp": s + 3600}),
        )
        .unwrap()
    }

    fn verifies(ring: &Keyring, token: &str, now: Millis) -> Result<(), jose::JoseError> {
        jose::verify(token, &ring.jwks(), &Expect::new(ISS, &[], now / 1000)).map(drop)
    }

    #[test]
    fn created_private_and_reopened_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker-keys.json");
        let ring = Keyring::open(&path, T0).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Keyring::open(&path, T0 + HOUR).unwrap();
        assert_eq!(again.current().0, ring.current().0);
        assert_eq!(again.jwks(), ring.jwks());
        assert_eq!(ring.current().0.len(), 22);
        // A token one signed, the other verifies.
        verifies(&again, &token(&ring, T0), T0).unwrap();
        // No temporary file is left behind; the Debug form shows no key material.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        let pkcs8 = text.split("\"pkcs8\": \"").nth(1).unwrap();
        assert!(!format!("{ring:?}").contains(&pkcs8[..20]));
    }

    #[cfg(unix)]
    #[test]
    fn a_readable_file_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker-keys.json");
        Keyring::open(&path, T0).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Keyring::open(&path, T0).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn rotation_overlaps_then_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker-keys.json");
        let mut ring = Keyring::open(&path, T0).unwrap();
        let old_kid = ring.current().0.to_owned();
        let before = token(&ring, T0);

        assert!(!ring.rotate_if_due(T0 + HOUR, 24 * HOUR, 2 * HOUR).unwrap());
        assert!(
            ring.rotate_if_due(T0 + 24 * HOUR, 24 * HOUR, 2 * HOUR)
                .unwrap()
        );
        let t1 = T0 + 24 * HOUR;
        assert_ne!(ring.current().0, old_kid);
        let kids: Vec<_> = ring.jwks().keys.into_iter().filter_map(|k| k.kid).collect();
        assert_eq!(kids, [ring.current().0.to_owned(), old_kid.clone()]);

        // Reopened, the retired key is still there; a token it signed still verifies
        // (its own lifetime permitting).
        let mut ring = Keyring::open(&path, t1).unwrap();
        let fresh = token(&ring, T0);
        verifies(&ring, &before, T0 + 30 * 60_000).unwrap();
        verifies(&ring, &fresh, T0).unwrap();

        assert_eq!(ring.prune(t1 + 2 * HOUR - 1).unwrap(), 0);
        assert_eq!(ring.jwks().keys.len(), 2);
        assert_eq!(ring.prune(t1 + 2 * HOUR).unwrap(), 1);
        assert_eq!(ring.jwks().keys.len(), 1);
        assert_eq!(
            verifies(&ring, &before, T0),
            Err(jose::JoseError::UnknownKey)
        );
        // Pruning was saved.
        let ring = Keyring::open(&path, t1 + 3 * HOUR).unwrap();
        assert_eq!(ring.jwks().keys.len(), 1);
    }

    #[test]
    fn discovery_names_the_issuer_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open(&dir.path().join("k.json"), T0).unwrap();
        let d = ring.discovery(ISS);
        assert_eq!(d["issuer"], ISS);
        assert_eq!(d["jwks_uri"], format!("{ISS}/jwks"));
        assert_eq!(d["id_token_signing_alg_values_supported"], json!(["ES256"]));
        assert_eq!(d["response_types_supported"], json!(["id_token"]));
        assert_eq!(d["subject_types_supported"], json!(["public"]));
    }
}
