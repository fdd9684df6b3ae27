//! The audit log proves itself: a keyed MAC chain over its entries, the key files behind it,
//! the walk that finds the first broken entry, and signed checkpoints (anchors) kept outside
//! the data directory, which catch what no chain can: entries deleted from the tail.
//!
//! - **MAC**: BLAKE3 in keyed mode (32-byte key from [`KeyFiles::mac_key`]) over a domain
//!   tag, the previous entry's MAC, `seq`, `at` and every field, each optional field tagged
//!   present/absent and length-prefixed ([`mac`]). Someone who can write the database but
//!   not read the key cannot make an entry that verifies.
//! - **Legacy segment**: entries written before schema version 7 keep their unkeyed hash
//!   and verify the old way ([`legacy_hash`]); the first keyed entry chains from the last of
//!   them (see `schema/007_audit_chain.sql`).
//! - **Checkpoint**: `{seq, mac, at, public_key, signature}`, ed25519 over a domain tag and
//!   the other four fields, length-prefixed; one JSON line per checkpoint in an anchor
//!   file. The chain must still reach every anchored `seq` with the anchored MAC.
//!
//! The walk ([`Walk`]) is pure: rows in, the first break out; the SQLite store feeds it.

use std::cell::OnceCell;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use keyward_model::time::Millis;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use crate::{AuditEntry, Result, StoreError};

/// The MAC key's file name in the data directory.
pub const MAC_KEY_FILE: &str = "audit.key";
/// The checkpoint signing key's file name in the data directory (PKCS#8).
pub const SIGNING_KEY_FILE: &str = "audit-signing.key";
/// Environment variables that put the keys elsewhere.
pub const MAC_KEY_ENV: &str = "KEYWARD_AUDIT_KEY_FILE";
pub const SIGNING_KEY_ENV: &str = "KEYWARD_AUDIT_SIGNING_KEY_FILE";

/// Where the audit log's keys live. Both are created on first use (mode 0600).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFiles {
    /// 32 random bytes: the MAC key.
    pub mac_key: PathBuf,
    /// An ed25519 key pair (PKCS#8 v2) that signs checkpoints.
    pub signing_key: PathBuf,
}

impl KeyFiles {
    /// `<dir>/audit.key` and `<dir>/audit-signing.key`.
    pub fn in_dir(dir: &Path) -> Self {
        KeyFiles {
            mac_key: dir.join(MAC_KEY_FILE),
            signing_key: dir.join(SIGNING_KEY_FILE),
        }
    }

    /// [`KeyFiles::in_dir`], each overridden by its environment variable when set
    /// ([`MAC_KEY_ENV`], [`SIGNING_KEY_ENV`]).
    pub fn from_env(dir: &Path) -> Self {
        let over = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty());
        let d = Self::in_dir(dir);
        KeyFiles {
            mac_key: over(MAC_KEY_ENV).map_or(d.mac_key, PathBuf::from),
            signing_key: over(SIGNING_KEY_ENV).map_or(d.signing_key, PathBuf::from),
        }
    }
}

/// The MAC key. Its `Debug` never shows it.
#[derive(Clone)]
pub struct MacKey([u8; 32]);

impl MacKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        MacKey(bytes)
    }
}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey(…)")
    }
}

/// The audit keys of one store: from files, or made up in memory (an in-memory store).
#[derive(Debug)]
pub(crate) struct Keys {
    files: Option<KeyFiles>,
    mac: OnceCell<MacKey>,
    signing: OnceCell<Ed25519KeyPair>,
}

impl Keys {
    pub(crate) fn files(files: KeyFiles) -> Self {
        Keys {
            files: Some(files),
            mac: OnceCell::new(),
            signing: OnceCell::new(),
        }
    }

    pub(crate) fn ephemeral() -> Self {
        Keys {
            files: None,
            mac: OnceCell::new(),
            signing: OnceCell::new(),
        }
    }

    /// The MAC key, read (or created) on first use. `keyed_entries` says whether the log
    /// already holds keyed entries: then a missing key file is an error, not a new key.
    pub(crate) fn mac(&self, keyed_entries: impl FnOnce() -> Result<bool>) -> Result<&MacKey> {
        if let Some(k) = self.mac.get() {
            return Ok(k);
        }
        let key = match &self.files {
            None => MacKey(random32()?),
            Some(f) => load_mac_key(&f.mac_key, keyed_entries)?,
        };
        Ok(self.mac.get_or_init(|| key))
    }

    /// The checkpoint signing key, read (or created) on first use.
    pub(crate) fn signing(&self) -> Result<&Ed25519KeyPair> {
        if let Some(k) = self.signing.get() {
            return Ok(k);
        }
        let key = match &self.files {
            None => {
                let pkcs8 = new_pkcs8(Path::new("(in memory)"))?;
                parse_pkcs8(Path::new("(in memory)"), &pkcs8)?
            }
            Some(f) => load_signing_key(&f.signing_key)?,
        };
        Ok(self.signing.get_or_init(|| key))
    }

    /// The public key checkpoints should carry, if the signing key exists already (a
    /// verification never creates one).
    pub(crate) fn public_key_if_any(&self) -> Result<Option<String>> {
        let exists = match &self.files {
            None => self.signing.get().is_some(),
            Some(f) => self.signing.get().is_some() || f.signing_key.exists(),
        };
        if !exists {
            return Ok(None);
        }
        Ok(Some(hex::encode(self.signing()?.public_key().as_ref())))
    }
}

fn key_error(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::AuditKey {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn random32() -> Result<[u8; 32]> {
    let mut k = [0u8; 32];
    getrandom::fill(&mut k).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(k)
}

fn read_mac_key(path: &Path) -> Result<MacKey> {
    let bytes = std::fs::read(path).map_err(|e| key_error(path, e.to_string()))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(MacKey)
        .map_err(|_| key_error(path, format!("holds {} bytes, not 32", bytes.len())))
}

fn load_mac_key(path: &Path, keyed_entries: impl FnOnce() -> Result<bool>) -> Result<MacKey> {
    match std::fs::metadata(path) {
        Ok(_) => read_mac_key(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Entries made with a key that exists now: another process created it, then
            // wrote, since we looked (a key is always created before its first entry).
            if keyed_entries()? && !path.exists() {
                return Err(key_error(
                    path,
                    "is missing, but the audit log holds entries made with it: restore the \
                     key file (or point KEYWARD_AUDIT_KEY_FILE at it)",
                ));
            }
            create_exclusive(path, &random32()?)?;
            // Another process may have created it first: the file is the key.
            read_mac_key(path)
        }
        Err(e) => Err(key_error(path, e.to_string())),
    }
}

fn new_pkcs8(path: &Path) -> Result<Vec<u8>> {
    let rng = ring::rand::SystemRandom::new();
    Ed25519KeyPair::generate_pkcs8(&rng)
        .map(|d| d.as_ref().to_vec())
        .map_err(|_| key_error(path, "could not generate an ed25519 key"))
}

fn parse_pkcs8(path: &Path, bytes: &[u8]) -> Result<Ed25519KeyPair> {
    Ed25519KeyPair::from_pkcs8(bytes)
        .map_err(|e| key_error(path, format!("is not an ed25519 PKCS#8 key ({e})")))
}

fn load_signing_key(path: &Path) -> Result<Ed25519KeyPair> {
    match std::fs::read(path) {
        Ok(bytes) => parse_pkcs8(path, &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_exclusive(path, &new_pkcs8(path)?)?;
            let bytes = std::fs::read(path).map_err(|e| key_error(path, e.to_string()))?;
            parse_pkcs8(path, &bytes)
        }
        Err(e) => Err(key_error(path, e.to_string())),
    }
}

/// Writes `bytes` to a new file at `path`, mode 0600, whole or not at all: written to a
/// temporary file beside it, then hard-linked into place (which fails if `path` exists, so
/// two processes creating the key at once agree on one). `Ok` also when another process
/// created it first.
fn create_exclusive(path: &Path, bytes: &[u8]) -> Result<()> {
    let err = |e: std::io::Error| key_error(path, format!("cannot be created: {e}"));
    let tmp = path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        hex::encode(random32()?)
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let written = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(err(e)),
    }
}

const MAC_DOMAIN: &[u8] = b"keyward audit entry v7\0";

fn put_field(h: &mut blake3::Hasher, v: Option<&str>) {
    match v {
        None => {
            h.update(&[0]);
        }
        Some(s) => {
            h.update(&[1]);
            h.update(&(s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
    }
}

/// An entry's MAC: keyed BLAKE3 over the previous entry's MAC (`prev`), `seq` and every
/// field, hex.
pub fn mac(key: &MacKey, prev: &str, seq: i64, e: &AuditEntry) -> String {
    let mut h = blake3::Hasher::new_keyed(&key.0);
    h.update(MAC_DOMAIN);
    put_field(&mut h, Some(prev));
    h.update(&seq.to_le_bytes());
    h.update(&e.at.to_le_bytes());
    put_field(&mut h, Some(&e.actor));
    put_field(&mut h, Some(&e.action));
    put_field(&mut h, e.target.as_deref());
    put_field(&mut h, e.detail.as_deref());
    put_field(&mut h, e.before.as_deref());
    put_field(&mut h, e.after.as_deref());
    h.finalize().to_hex().to_string()
}

/// The unkeyed hash of schema version 4 (legacy entries): BLAKE3 over the previous hash and
/// the entry's fields, each length-prefixed, absent ones as empty.
pub fn legacy_hash(prev: &str, e: &AuditEntry) -> String {
    let mut h = blake3::Hasher::new();
    for part in [
        prev,
        &e.at.to_string(),
        &e.actor,
        &e.action,
        e.target.as_deref().unwrap_or(""),
        e.detail.as_deref().unwrap_or(""),
    ] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

/// A stored audit entry with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    pub entry: AuditEntry,
    /// The entry's MAC (hex); for a legacy entry, its unkeyed hash.
    pub mac: String,
    /// Written before schema version 7: hash-chained, not keyed.
    pub legacy: bool,
}

/// A row as the walk reads it.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub seq: i64,
    pub entry: AuditEntry,
    pub prev: Option<String>,
    pub mac: Option<String>,
    pub legacy_hash: Option<String>,
}

impl Row {
    pub fn into_record(self) -> AuditRecord {
        AuditRecord {
            legacy: self.mac.is_none(),
            mac: self.link().to_owned(),
            seq: self.seq,
            entry: self.entry,
        }
    }

    /// What the next entry chains from.
    pub fn link(&self) -> &str {
        self.mac
            .as_deref()
            .or(self.legacy_hash.as_deref())
            .unwrap_or("")
    }
}

/// Why an entry (or an anchor) breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The MAC does not match the entry: edited, or written without the key.
    MacMismatch,
    /// Entries from this seq up to `next` (excluded) are gone.
    Missing { next: i64 },
    /// The entry is genuine but was written as another seq: moved, or entries before it
    /// were deleted and the rest renumbered.
    OutOfOrder { written_as: i64 },
    /// Not part of the chain: the entry after it chains from the entry before it.
    Inserted,
    /// Genuine, but it does not chain from the entry before it (two chains spliced).
    Unlinked,
    /// A legacy entry whose unkeyed hash does not match.
    LegacyHashMismatch,
    /// A legacy (unkeyed) entry after the keyed chain began.
    LegacyAfterKeyed,
    /// An anchor names a seq the log no longer reaches: entries were deleted from the tail.
    Truncated { anchored: i64, head: i64 },
    /// The entry at an anchored seq has another MAC than the anchor: the log was rewritten.
    AnchorMismatch,
    /// An anchor's signature does not verify.
    BadSignature,
    /// An anchor was signed by another key than this store's signing key.
    ForeignKey,
}

impl Break {
    /// A stable, machine-readable name.
    pub fn name(&self) -> &'static str {
        match self {
            Break::MacMismatch => "mac-mismatch",
            Break::Missing { .. } => "missing",
            Break::OutOfOrder { .. } => "out-of-order",
            Break::Inserted => "inserted",
            Break::Unlinked => "unlinked",
            Break::LegacyHashMismatch => "legacy-hash-mismatch",
            Break::LegacyAfterKeyed => "legacy-after-keyed",
            Break::Truncated { .. } => "truncated",
            Break::AnchorMismatch => "anchor-mismatch",
            Break::BadSignature => "bad-signature",
            Break::ForeignKey => "foreign-key",
        }
    }
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Break::MacMismatch => {
                f.write_str("MAC mismatch: the entry was edited, or written without the key")
            }
            Break::Missing { next } => write!(
                f,
                "seq gap: this entry is missing and the log goes on at seq {next} (entries deleted)"
            ),
            Break::OutOfOrder { written_as } => write!(
                f,
                "out of order: the entry was written as seq {written_as} (moved, or entries \
                 before it deleted and the rest renumbered)"
            ),
            Break::Inserted => f.write_str(
                "inserted entry: it is not in the chain (the next entry chains from the one before it)",
            ),
            Break::Unlinked => f.write_str(
                "the entry does not chain from the one before it (chains forked or spliced)",
            ),
            Break::LegacyHashMismatch => f.write_str(
                "legacy (pre-key) hash mismatch: the entry was edited, or entries around it removed",
            ),
            Break::LegacyAfterKeyed => {
                f.write_str("a legacy (unkeyed) entry after the keyed chain began: inserted")
            }
            Break::Truncated { anchored, head } => write!(
                f,
                "truncated: the anchor holds seq {anchored} but the log ends at seq {head} \
                 (entries deleted from the tail)"
            ),
            Break::AnchorMismatch => f.write_str(
                "the entry's MAC differs from the anchored one: the log was rewritten",
            ),
            Break::BadSignature => f.write_str("the anchor's signature does not verify"),
            Break::ForeignKey => {
                f.write_str("the anchor was signed by another key than this store's")
            }
        }
    }
}

/// The first broken entry and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub seq: i64,
    pub why: Break,
}

impl serde::Serialize for Broken {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("Broken", 3)?;
        st.serialize_field("seq", &self.seq)?;
        st.serialize_field("kind", self.why.name())?;
        st.serialize_field("reason", &self.why.to_string())?;
        st.end()
    }
}

/// The newest entry that verified.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Head {
    pub seq: i64,
    pub mac: String,
    /// RFC 3339.
    pub at: String,
}

/// What `keyward audit verify` and `GET /api/audit/verify` report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// The chain is intact, and reaches every anchor with its MAC.
    pub ok: bool,
    /// Entries that verified (all of them when `ok`).
    pub entries: u64,
    /// How many of them are legacy (unkeyed) entries.
    pub legacy_entries: u64,
    /// The last entry that verified.
    pub head: Option<Head>,
    /// Anchored checkpoints checked.
    pub anchors: usize,
    pub broken: Option<Broken>,
}

/// How far from its place an entry is looked for under another seq.
const REORDER_WINDOW: i64 = 64;

/// The walk over the log in seq order: feed each row with the next one.
#[derive(Debug)]
pub(crate) struct Walk<'k> {
    key: &'k MacKey,
    last: Option<Row>,
    keyed_seen: bool,
    pub entries: u64,
    pub legacy: u64,
}

impl<'k> Walk<'k> {
    pub fn new(key: &'k MacKey) -> Self {
        Walk {
            key,
            last: None,
            keyed_seen: false,
            entries: 0,
            legacy: 0,
        }
    }

    /// Checks `row`, given the row after it; the break if it is the first broken entry.
    pub fn check(&mut self, row: Row, next: Option<&Row>) -> Option<Broken> {
        let expected = self.last.as_ref().map_or(1, |l| l.seq + 1);
        let prev_link = self.last.as_ref().map_or("", Row::link);
        let broken = |why| Some(Broken { seq: row.seq, why });
        if row.seq > expected {
            return Some(Broken {
                seq: expected,
                why: Break::Missing { next: row.seq },
            });
        }
        if row.seq < expected {
            // Only a first row numbered below 1 gets here (seq is the primary key).
            return Some(Broken {
                seq: row.seq,
                why: Break::OutOfOrder {
                    written_as: expected,
                },
            });
        }
        match (&row.mac, &row.prev, &row.legacy_hash) {
            (Some(stored), Some(prev), _) => {
                if mac(self.key, prev, row.seq, &row.entry) != *stored {
                    let written_as = (row.seq - REORDER_WINDOW..=row.seq + REORDER_WINDOW)
                        .filter(|&s| s >= 1 && s != row.seq)
                        .find(|&s| mac(self.key, prev, s, &row.entry) == *stored);
                    if let Some(written_as) = written_as {
                        return broken(Break::OutOfOrder { written_as });
                    }
                    if next.is_some_and(|n| n.prev.as_deref() == Some(prev_link)) {
                        return broken(Break::Inserted);
                    }
                    return broken(Break::MacMismatch);
                }
                if prev != prev_link {
                    return broken(Break::Unlinked);
                }
                self.keyed_seen = true;
            }
            (None, None, Some(stored)) => {
                if self.keyed_seen {
                    return broken(Break::LegacyAfterKeyed);
                }
                let covered = row.entry.before.is_none() && row.entry.after.is_none();
                if !covered || legacy_hash(prev_link, &row.entry) != *stored {
                    return broken(Break::LegacyHashMismatch);
                }
                self.legacy += 1;
            }
            _ => return broken(Break::MacMismatch),
        }
        self.entries += 1;
        self.last = Some(row);
        None
    }

    /// The last entry that verified.
    pub fn head(&self) -> Option<Head> {
        self.last.as_ref().map(|r| Head {
            seq: r.seq,
            mac: r.link().to_owned(),
            at: keyward_model::time::format(r.entry.at),
        })
    }
}

/// A signed statement that the log's entry `seq` had MAC `mac` at `at`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub seq: i64,
    pub mac: String,
    /// When the checkpoint was made (RFC 3339).
    pub at: String,
    /// The ed25519 public key, hex.
    pub public_key: String,
    /// ed25519 over the other fields, hex.
    pub signature: String,
}

const CHECKPOINT_DOMAIN: &[u8] = b"keyward audit checkpoint v1\0";

fn checkpoint_message(seq: i64, mac: &str, at: &str, public_key: &str) -> Vec<u8> {
    let mut m = CHECKPOINT_DOMAIN.to_vec();
    m.extend_from_slice(&seq.to_le_bytes());
    for part in [mac, at, public_key] {
        m.extend_from_slice(&(part.len() as u64).to_le_bytes());
        m.extend_from_slice(part.as_bytes());
    }
    m
}

impl Checkpoint {
    pub(crate) fn sign(key: &Ed25519KeyPair, seq: i64, mac: &str, at: Millis) -> Self {
        let at = keyward_model::time::format(at);
        let public_key = hex::encode(key.public_key().as_ref());
        let sig = key.sign(&checkpoint_message(seq, mac, &at, &public_key));
        Checkpoint {
            seq,
            mac: mac.to_owned(),
            at,
            public_key,
            signature: hex::encode(sig.as_ref()),
        }
    }

    /// The signature verifies with the checkpoint's own public key.
    pub fn signature_valid(&self) -> bool {
        let (Some(pk), Some(sig)) = (
            hex::decode(&self.public_key).ok(),
            hex::decode(&self.signature).ok(),
        ) else {
            return false;
        };
        let msg = checkpoint_message(self.seq, &self.mac, &self.at, &self.public_key);
        UnparsedPublicKey::new(&ED25519, pk)
            .verify(&msg, &sig)
            .is_ok()
    }
}

/// Checks one anchor against a chain that verified up to `head_seq`; `mac_at` reads the
/// stored MAC of a seq; `ours` is this store's public key, when it has one.
pub(crate) fn check_anchor(
    cp: &Checkpoint,
    head_seq: i64,
    ours: Option<&str>,
    mac_at: impl FnOnce(i64) -> Result<Option<String>>,
) -> Result<Option<Broken>> {
    let broken = |why| Ok(Some(Broken { seq: cp.seq, why }));
    if !cp.signature_valid() {
        return broken(Break::BadSignature);
    }
    if ours.is_some_and(|k| k != cp.public_key) {
        return broken(Break::ForeignKey);
    }
    if cp.seq > head_seq {
        return Ok(Some(Broken {
            seq: head_seq + 1,
            why: Break::Truncated {
                anchored: cp.seq,
                head: head_seq,
            },
        }));
    }
    if cp.seq < 1 {
        return Ok(None);
    }
    match mac_at(cp.seq)? {
        Some(m) if m == cp.mac => Ok(None),
        _ => broken(Break::AnchorMismatch),
    }
}

/// Appends `cp` as one JSON line to the anchor file `path` (created if needed) and syncs it.
pub fn append_checkpoint(path: &Path, cp: &Checkpoint) -> Result<()> {
    let err = |reason: String| StoreError::AnchorFile {
        path: path.display().to_string(),
        line: None,
        reason,
    };
    let mut line = serde_json::to_vec(cp).map_err(|e| err(e.to_string()))?;
    line.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| err(e.to_string()))?;
    f.write_all(&line).map_err(|e| err(e.to_string()))?;
    f.sync_data().map_err(|e| err(e.to_string()))
}

/// Every checkpoint of an anchor file, in file order (blank lines skipped).
pub fn read_checkpoints(path: &Path) -> Result<Vec<Checkpoint>> {
    let err = |line, reason: String| StoreError::AnchorFile {
        path: path.display().to_string(),
        line,
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(None, e.to_string()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| err(Some(i + 1), format!("not a checkpoint: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn entry(action: &str) -> AuditEntry {
        AuditEntry {
            at: 1_000,
            actor: "cli".into(),
            action: action.into(),
            ..AuditEntry::default()
        }
    }

    #[test]
    fn a_key_another_process_made_while_we_looked_is_read_and_a_lost_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        // Another process creates the key and writes with it between our look and our
        // question about the log.
        let theirs = load_mac_key(&path, || {
            create_exclusive(&path, &[9; 32])?;
            Ok(true)
        });
        assert_eq!(theirs.unwrap().0, [9; 32]);
        std::fs::remove_file(&path).unwrap();
        let lost = load_mac_key(&path, || Ok(true)).err().unwrap().to_string();
        assert!(
            lost.contains("is missing, but the audit log holds"),
            "{lost}"
        );
        let fresh = load_mac_key(&path, || Ok(false)).unwrap();
        assert_ne!(fresh.0, [9; 32]);
        assert_eq!(read_mac_key(&path).unwrap().0, fresh.0);
    }

    #[test]
    fn the_mac_covers_every_field_and_tells_absent_from_empty() {
        let k = MacKey([7; 32]);
        let base = mac(&k, "", 1, &entry("a"));
        let variants = [
            mac(&k, "x", 1, &entry("a")),
            mac(&k, "", 2, &entry("a")),
            mac(&k, "", 1, &entry("b")),
            mac(&MacKey([8; 32]), "", 1, &entry("a")),
            mac(
                &k,
                "",
                1,
                &AuditEntry {
                    target: Some(String::new()),
                    ..entry("a")
                },
            ),
            mac(
                &k,
                "",
                1,
                &AuditEntry {
                    before: Some("x".into()),
                    ..entry("a")
                },
            ),
            mac(
                &k,
                "",
                1,
                &AuditEntry {
                    after: Some("x".into()),
                    ..entry("a")
                },
            ),
        ];
        for v in variants {
            assert_ne!(v, base);
        }
    }

    #[test]
    fn checkpoints_verify_and_edits_do_not() {
        let pkcs8 = new_pkcs8(Path::new("t")).unwrap();
        let key = parse_pkcs8(Path::new("t"), &pkcs8).unwrap();
        let cp = Checkpoint::sign(&key, 5, "abc", 1_700_000_000_000);
        assert!(cp.signature_valid());
        for bad in [
            Checkpoint {
                seq: 4,
                ..cp.clone()
            },
            Checkpoint {
                mac: "abd".into(),
                ..cp.clone()
            },
            Checkpoint {
                at: "2020-01-01T00:00:00Z".into(),
                ..cp.clone()
            },
            Checkpoint {
                signature: "00".into(),
                ..cp.clone()
            },
        ] {
            assert!(!bad.signature_valid(), "{bad:?}");
        }
    }
}
