//! The Vault/OpenBao side of a rotation campaign: the KV v2 index read once at discovery
//! (key id → `vault:MOUNT/PATH` secrets), and on resume the key ids a Vault location holds
//! now and the secret next to a new key id. Without a Vault connector (not configured, or a
//! keyward built without the `vault` feature) KV is not searched, which a note says, and a
//! Vault location reads as unknown on resume (never as holding a key).

use std::collections::BTreeMap;

use keyward_respond::execute::Connectors;
use keyward_respond::rotate::{SecretLocation, handoff};

/// Vault locations by the access key ids their current data holds; empty when Vault was
/// not searched.
#[derive(Default)]
pub(super) struct Index(BTreeMap<String, Vec<SecretLocation>>);

impl Index {
    /// The Vault secrets holding `key_id`.
    pub(super) fn locations(&self, key_id: &str) -> impl Iterator<Item = SecretLocation> + '_ {
        self.0.get(key_id).into_iter().flatten().cloned()
    }
}

fn not_searched(c: &Connectors) -> String {
    format!(
        "note: Vault/OpenBao KV not searched ({}): keys living there will stop working",
        c.why_missing("vault")
    )
}

/// Every KV v2 secret under `mounts` (every KV v2 mount when empty) read once; what could
/// not be searched is said on stderr, like the other notes of discovery.
#[cfg(feature = "vault")]
pub(super) async fn index(c: &Connectors, mounts: &[String]) -> anyhow::Result<Index> {
    use anyhow::Context as _;
    let Some(v) = &c.vault else {
        eprintln!("{}", not_searched(c));
        return Ok(Index::default());
    };
    let (index, notes) = v.secret_index(mounts).await.with_context(|| {
        format!(
            "searching Vault/OpenBao KV at `{}` for access keys (name the mounts to search with --vault-mount)",
            v.addr()
        )
    })?;
    for n in notes {
        eprintln!("note: {n}");
    }
    Ok(Index(index))
}

#[cfg(not(feature = "vault"))]
pub(super) async fn index(c: &Connectors, _: &[String]) -> anyhow::Result<Index> {
    eprintln!("{}", not_searched(c));
    Ok(Index::default())
}

/// The key ids a Vault secret holds now; `None` when it cannot be read (no connector, an
/// error, or gone), so that the item is left to a person rather than guessed.
#[cfg(feature = "vault")]
pub(super) async fn key_ids(c: &Connectors, mount: &str, path: &str) -> Option<Vec<String>> {
    let v = c.vault.as_ref()?;
    v.secret_key_ids(mount, path).await.ok().flatten()
}

#[cfg(not(feature = "vault"))]
pub(super) async fn key_ids(_: &Connectors, _: &str, _: &str) -> Option<Vec<String>> {
    None
}

/// The secret access key stored with `key_id` in a Vault secret (a resume recovering a new
/// key written there before the process was killed).
#[cfg(feature = "vault")]
pub(super) async fn secret_for_key(
    c: &Connectors,
    mount: &str,
    path: &str,
    key_id: &str,
) -> Result<Option<handoff::Secret>, String> {
    let Some(v) = &c.vault else {
        return Err(unavailable(c, mount, path));
    };
    v.secret_for_key(mount, path, key_id)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "vault"))]
pub(super) async fn secret_for_key(
    c: &Connectors,
    mount: &str,
    path: &str,
    _: &str,
) -> Result<Option<handoff::Secret>, String> {
    Err(unavailable(c, mount, path))
}

fn unavailable(c: &Connectors, mount: &str, path: &str) -> String {
    format!(
        "vault:{mount}/{path} cannot be read: the Vault connector is not available ({})",
        c.why_missing("vault")
    )
}
