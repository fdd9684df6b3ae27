//! The Kubernetes side of a breach rotation campaign ([`crate::campaign`]): every Secret
//! read once into an index of the access key ids its data holds, a Secret's key ids now,
//! and, on resume, a new key's secret read back from the Secret it was written to. Data is
//! decoded in memory and dropped; a secret access key leaves this module only as a
//! [`handoff::Secret`].

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};

use super::KubeConnector;
use crate::ConnectorError;
use crate::rotate::{self, handoff};

/// `(namespace, name)` of the Secrets by the access key ids their data holds.
pub type KubeSecretIndex = BTreeMap<String, Vec<(String, String)>>;

fn texts(s: &Secret) -> Vec<(String, String)> {
    s.data
        .iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), String::from_utf8(v.0.clone()).ok()?)))
        .collect()
}

fn api(call: &str, target: &str, e: &kube::Error) -> ConnectorError {
    ConnectorError::Api {
        call: call.to_owned(),
        target: target.to_owned(),
        message: e.to_string(),
    }
}

impl KubeConnector {
    /// Every Secret in `namespaces` (all when empty) read once: key id → Secrets (sorted).
    pub async fn secret_index(
        &self,
        namespaces: &[String],
    ) -> Result<KubeSecretIndex, ConnectorError> {
        let lists = if namespaces.is_empty() {
            vec![Api::<Secret>::all(self.client().clone())]
        } else {
            namespaces
                .iter()
                .map(|ns| Api::<Secret>::namespaced(self.client().clone(), ns))
                .collect()
        };
        let mut index = KubeSecretIndex::new();
        for list in lists {
            let secrets = list
                .list(&ListParams::default())
                .await
                .map_err(|e| api("list secrets", "the cluster", &e))?;
            for s in &secrets.items {
                let (Some(ns), Some(name)) = (&s.metadata.namespace, &s.metadata.name) else {
                    continue;
                };
                for id in rotate::key_ids_of(&texts(s)) {
                    index
                        .entry(id)
                        .or_default()
                        .push((ns.clone(), name.clone()));
                }
            }
        }
        for v in index.values_mut() {
            v.sort();
            v.dedup();
        }
        Ok(index)
    }

    async fn secret_texts(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<Vec<(String, String)>>, ConnectorError> {
        let got = Api::<Secret>::namespaced(self.client().clone(), ns)
            .get_opt(name)
            .await
            .map_err(|e| api("get secret", &format!("{ns}/{name}"), &e))?;
        Ok(got.as_ref().map(texts))
    }

    /// The key ids a Secret's data holds now (`None`: the Secret is gone).
    pub async fn secret_key_ids(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<Vec<String>>, ConnectorError> {
        Ok(self
            .secret_texts(ns, name)
            .await?
            .map(|t| rotate::key_ids_of(&t)))
    }

    /// The secret access key stored with `key_id` in a Secret's data.
    pub async fn secret_for_key(
        &self,
        ns: &str,
        name: &str,
        key_id: &str,
    ) -> Result<Option<handoff::Secret>, ConnectorError> {
        Ok(self
            .secret_texts(ns, name)
            .await?
            .and_then(|t| rotate::secret_next_to(&t, key_id))
            .map(handoff::Secret::new))
    }
}
