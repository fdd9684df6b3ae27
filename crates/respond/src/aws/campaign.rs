//! The AWS side of a breach rotation campaign ([`crate::campaign`]): every user and its keys
//! (with creation dates) listed once, every Secrets Manager secret read once into an index
//! of the key ids it holds (so that a campaign over a thousand users does not read every
//! secret a thousand times), and, on resume, a new key's secret read back from the secret
//! it was written to. Values are searched in memory and dropped; a secret access key leaves
//! this module only as a [`handoff::Secret`].

use std::collections::BTreeMap;

use aws_sdk_iam::types::StatusType;

use super::client::{AwsConnector, api};
use crate::ConnectorError;
use crate::campaign::LiveKey;
use crate::rotate::{self, handoff};

const CURRENT: &str = "AWSCURRENT";
const PENDING: &str = "AWSPENDING";

/// An IAM user and its access keys.
#[derive(Debug, Clone)]
pub struct UserKeys {
    pub user: String,
    pub arn: String,
    pub keys: Vec<LiveKey>,
}

/// Secrets Manager secret names by the access key ids their current value holds.
pub type SecretIndex = BTreeMap<String, Vec<String>>;

impl AwsConnector {
    /// Every IAM user under `path_prefix` (`/` for all) with its keys, sorted by name.
    pub async fn users_with_keys(
        &self,
        path_prefix: &str,
    ) -> Result<Vec<UserKeys>, ConnectorError> {
        let users = self
            .iam
            .list_users()
            .path_prefix(path_prefix)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ListUsers", path_prefix, e))?;
        let mut out = Vec::with_capacity(users.len());
        for u in &users {
            let name = u.user_name().to_owned();
            let keys = self.dated_keys(&name).await?;
            out.push(UserKeys {
                user: name,
                arn: u.arn().to_owned(),
                keys,
            });
        }
        out.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(out)
    }

    /// The user's access keys with their status and creation time.
    pub async fn dated_keys(&self, user: &str) -> Result<Vec<LiveKey>, ConnectorError> {
        let keys = self
            .iam
            .list_access_keys()
            .user_name(user)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ListAccessKeys", &format!("user/{user}"), e))?;
        Ok(keys
            .iter()
            .filter_map(|k| {
                Some(LiveKey {
                    id: k.access_key_id()?.to_owned(),
                    active: k.status() == Some(&StatusType::Active),
                    created: k.create_date().and_then(|d| d.to_millis().ok()),
                })
            })
            .collect())
    }

    /// Every secret's current value read once: key id → secret names (sorted). A secret that
    /// cannot be read is left out.
    pub async fn secret_index(&self) -> Result<SecretIndex, ConnectorError> {
        let pages = self
            .sm
            .list_secrets()
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| api("ListSecrets", "Secrets Manager", e))?;
        let mut index = SecretIndex::new();
        for e in pages.iter().flat_map(|p| p.secret_list()) {
            let Some(name) = e.name() else { continue };
            if let Ok(Some(value)) = self.current_string(name).await {
                for id in rotate::key_ids_in(&value) {
                    index.entry(id).or_default().push(name.to_owned());
                }
            }
        }
        for names in index.values_mut() {
            names.sort();
            names.dedup();
        }
        Ok(index)
    }

    /// The key ids a secret's current value holds, and its pending one's (a rotation
    /// killed between writing `AWSPENDING` and promoting it left the new key there);
    /// `None`: the secret is gone.
    pub async fn secret_key_ids(
        &self,
        secret: &str,
    ) -> Result<Option<Vec<String>>, ConnectorError> {
        let Some(current) = self.current_string(secret).await? else {
            return Ok(None);
        };
        let mut ids = rotate::key_ids_in(&current);
        if let Some(pending) = self.stage_string(secret, PENDING).await? {
            for id in rotate::key_ids_in(&pending) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        Ok(Some(ids))
    }

    /// The secret access key written next to `key_id` in a secret's current value (or its
    /// pending one).
    pub async fn secret_for_key(
        &self,
        secret: &str,
        key_id: &str,
    ) -> Result<Option<handoff::Secret>, ConnectorError> {
        for stage in [CURRENT, PENDING] {
            if let Some(value) = self.stage_string(secret, stage).await?
                && let Some(s) = rotate::secret_next_to(&[(String::new(), value)], key_id)
            {
                return Ok(Some(handoff::Secret::new(s)));
            }
        }
        Ok(None)
    }

    async fn current_string(&self, secret: &str) -> Result<Option<String>, ConnectorError> {
        self.stage_string(secret, CURRENT).await
    }

    /// The string staged `stage` (`None`: no such secret, or no version holds the stage).
    async fn stage_string(
        &self,
        secret: &str,
        stage: &str,
    ) -> Result<Option<String>, ConnectorError> {
        match self
            .sm
            .get_secret_value()
            .secret_id(secret)
            .version_stage(stage)
            .send()
            .await
        {
            Ok(out) => Ok(out.secret_string().map(str::to_owned)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(api("GetSecretValue", secret, e)),
        }
    }
}
