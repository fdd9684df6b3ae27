//! The Vault/OpenBao side of a breach rotation campaign ([`crate::campaign`]): every KV v2
//! secret read once (the same bounded walk as a single rotation's search, `kv::walk`) into an
//! index of the access key ids its current data holds, a secret's key ids now, and, on
//! resume, a new key's secret read back from the secret it was written to. Values are
//! searched in memory and dropped; a secret access key leaves this module only as a
//! [`handoff::Secret`].

use std::collections::BTreeMap;

use super::client::VaultConnector;
use super::kv;
use crate::ConnectorError;
use crate::rotate::{self, SecretLocation, handoff};

/// `SecretLocation::Vault` secrets by the access key ids their current data holds.
pub type VaultSecretIndex = BTreeMap<String, Vec<SecretLocation>>;

impl VaultConnector {
    /// Every secret under `mounts` (every KV v2 mount `sys/mounts` lists when empty) read
    /// once: key id → secrets (sorted). The second value says what could not be searched.
    pub async fn secret_index(
        &self,
        mounts: &[String],
    ) -> Result<(VaultSecretIndex, Vec<String>), ConnectorError> {
        let mut index = VaultSecretIndex::new();
        let notes = kv::walk(&self.http, mounts, |mount, path, data| {
            for id in rotate::key_ids_of(&kv::texts(data)) {
                index.entry(id).or_default().push(SecretLocation::Vault {
                    mount: mount.to_owned(),
                    path: path.to_owned(),
                });
            }
        })
        .await?;
        for v in index.values_mut() {
            v.sort();
            v.dedup();
        }
        Ok((index, notes))
    }

    /// The string fields of a secret's current version (`None`: gone, or deleted).
    async fn secret_texts(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Option<Vec<(String, String)>>, ConnectorError> {
        Ok(kv::read(&self.http, mount, path, None)
            .await?
            .map(|r| kv::texts(&r.data)))
    }

    /// The key ids a secret's current version holds (`None`: the secret is gone, or its
    /// current version deleted).
    pub async fn secret_key_ids(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Option<Vec<String>>, ConnectorError> {
        Ok(self
            .secret_texts(mount, path)
            .await?
            .map(|t| rotate::key_ids_of(&t)))
    }

    /// The secret access key stored with `key_id` in a secret's current version.
    pub async fn secret_for_key(
        &self,
        mount: &str,
        path: &str,
        key_id: &str,
    ) -> Result<Option<handoff::Secret>, ConnectorError> {
        Ok(self
            .secret_texts(mount, path)
            .await?
            .and_then(|t| rotate::secret_next_to(&t, key_id))
            .map(handoff::Secret::new))
    }
}
