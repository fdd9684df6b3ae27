//! Dynamic secrets and their leases: a secret read from a dynamic-secrets engine
//! (`database/creds/ROLE`, `aws/creds/ROLE`, …) comes with a lease the broker renews while the
//! workload needs it and revokes when it is done (Vault then drops the database role or the
//! IAM user it created). The secret's values go to the caller only: [`DynamicSecret`]'s
//! `Debug` shows their keys, never a message carries them.

use serde_json::{Map, Value, json};

use super::client::{VaultConnector, api, precondition};
use super::http::HttpError;
use crate::ConnectorError;

/// A secret with a lease. `Debug` shows `data`'s keys, not its values.
#[derive(Clone, PartialEq)]
pub struct DynamicSecret {
    /// `database/creds/app/AbC…` (an id, not a secret: revoking needs a token allowed to).
    pub lease_id: String,
    pub lease_duration_secs: u64,
    pub renewable: bool,
    /// What the engine issued (`username`, `password`, `access_key`, …).
    pub data: Map<String, Value>,
}

impl std::fmt::Debug for DynamicSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicSecret")
            .field("lease_id", &self.lease_id)
            .field("lease_duration_secs", &self.lease_duration_secs)
            .field("renewable", &self.renewable)
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A lease as Vault reports it: after a renewal, `lease_duration_secs` is the new duration;
/// from a lookup, the seconds left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    pub lease_id: String,
    pub lease_duration_secs: u64,
    pub renewable: bool,
}

fn u64_at(doc: &Value, key: &str) -> u64 {
    doc.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn bool_at(doc: &Value, key: &str) -> bool {
    doc.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn no_answer(call: &str, target: &str) -> ConnectorError {
    ConnectorError::Api {
        call: call.to_owned(),
        target: target.to_owned(),
        message: "no answer body".into(),
    }
}

/// Vault's answer to a lookup, a renewal or a revocation of a lease it does not know (expired,
/// revoked, never issued): 400 `invalid lease` or `lease not found`.
fn unknown_lease(e: &HttpError) -> bool {
    match e {
        HttpError::Status {
            status: 400,
            errors,
        } => errors
            .iter()
            .any(|m| m.contains("invalid lease") || m.contains("lease not found")),
        HttpError::Status { .. } | HttpError::Transport(_) => false,
    }
}

impl VaultConnector {
    /// Reads a dynamic secret (`GET PATH`, e.g. `database/creds/ROLE`). A path that answers
    /// without a lease (a static secret) is refused, since nothing could revoke it.
    pub async fn dynamic_secret(&self, path: &str) -> Result<DynamicSecret, ConnectorError> {
        let doc = self
            .http
            .get(path)
            .await
            .map_err(|e| api("read", path, e))?
            .ok_or_else(|| precondition(path, "nothing at this path"))?;
        let lease_id = doc
            .get("lease_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if lease_id.is_empty() {
            return Err(precondition(
                path,
                "the answer has no lease: not a dynamic secret",
            ));
        }
        Ok(DynamicSecret {
            lease_id: lease_id.to_owned(),
            lease_duration_secs: u64_at(&doc, "lease_duration"),
            renewable: bool_at(&doc, "renewable"),
            data: doc
                .get("data")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        })
    }

    /// Renews a lease by `increment_secs` (`PUT sys/leases/renew`); Vault may grant less
    /// (the role's maximum TTL), which the answer says.
    pub async fn renew_lease(
        &self,
        lease_id: &str,
        increment_secs: u64,
    ) -> Result<LeaseInfo, ConnectorError> {
        let doc = self
            .http
            .put(
                "sys/leases/renew",
                &json!({"lease_id": lease_id, "increment": increment_secs}),
            )
            .await
            .map_err(|e| api("sys/leases/renew", lease_id, e))?
            .ok_or_else(|| no_answer("sys/leases/renew", lease_id))?;
        Ok(LeaseInfo {
            lease_id: doc
                .get("lease_id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(lease_id)
                .to_owned(),
            lease_duration_secs: u64_at(&doc, "lease_duration"),
            renewable: bool_at(&doc, "renewable"),
        })
    }

    /// Revokes a lease now (`PUT sys/leases/revoke`): Vault deletes what it issued under it
    /// before answering. A lease Vault no longer knows counts as revoked.
    pub async fn revoke_lease(&self, lease_id: &str) -> Result<(), ConnectorError> {
        match self
            .http
            .put("sys/leases/revoke", &json!({"lease_id": lease_id}))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if unknown_lease(&e) => Ok(()),
            Err(e) => Err(api("sys/leases/revoke", lease_id, e)),
        }
    }

    /// A lease's state (`PUT sys/leases/lookup`), `None` once it is revoked or expired.
    pub async fn lookup_lease(&self, lease_id: &str) -> Result<Option<LeaseInfo>, ConnectorError> {
        let doc = match self
            .http
            .put("sys/leases/lookup", &json!({"lease_id": lease_id}))
            .await
        {
            Ok(Some(doc)) => doc,
            Ok(None) => return Ok(None),
            Err(e) if unknown_lease(&e) => return Ok(None),
            Err(e) => return Err(api("sys/leases/lookup", lease_id, e)),
        };
        let data = doc.get("data").cloned().unwrap_or_default();
        Ok(Some(LeaseInfo {
            lease_id: data
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or(lease_id)
                .to_owned(),
            lease_duration_secs: u64_at(&data, "ttl"),
            renewable: bool_at(&data, "renewable"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_keys_not_the_values() {
        let mut data = Map::new();
        data.insert("username".into(), json!("v-app-1"));
        data.insert("password".into(), json!("hunter2-secret"));
        let s = DynamicSecret {
            lease_id: "database/creds/app/x".into(),
            lease_duration_secs: 300,
            renewable: true,
            data,
        };
        let shown = format!("{s:?}");
        assert!(shown.contains("password") && shown.contains("database/creds/app/x"));
        assert!(!shown.contains("hunter2") && !shown.contains("v-app-1"));
    }

    #[test]
    fn an_unknown_lease_is_told_by_its_400() {
        let e = |status, m: &str| HttpError::Status {
            status,
            errors: vec![m.into()],
        };
        assert!(unknown_lease(&e(400, "invalid lease")));
        assert!(unknown_lease(&e(400, "lease not found")));
        assert!(!unknown_lease(&e(403, "permission denied")));
        assert!(!unknown_lease(&e(400, "missing lease ID")));
        assert!(!unknown_lease(&HttpError::Transport("timeout".into())));
    }
}
