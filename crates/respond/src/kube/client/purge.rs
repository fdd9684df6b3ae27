//! A retired service account deleted after its grace period ([`crate::purge`]): refused
//! while any binding names it or any pod runs as it (it is in use again), deleted by uid.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::Api;
use serde_json::{Value, json};

use super::common::{Sa, api, delete_exactly};
use super::{bindings, pods};
use crate::{ConnectorError, Verified};

pub(super) async fn apply(c: &kube::Client, sa: Sa<'_>) -> Result<Value, ConnectorError> {
    let accounts = Api::<ServiceAccount>::namespaced(c.clone(), sa.ns);
    let Some(account) = accounts
        .get_opt(sa.name)
        .await
        .map_err(|e| api("get serviceaccount", sa, e))?
    else {
        return Ok(json!({"existed": false}));
    };
    let bound: Vec<String> = bindings::naming(c, sa)
        .await?
        .iter()
        .map(|b| b.reference().to_string())
        .collect();
    if !bound.is_empty() {
        return Err(ConnectorError::Refused(format!(
            "{sa} is bound again ({}): it is in use, not deleted",
            bound.join(", ")
        )));
    }
    let running: Vec<String> = pods::running_as(c, sa)
        .await?
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    if !running.is_empty() {
        return Err(ConnectorError::Refused(format!(
            "pods run as {sa} ({}): it is in use, not deleted",
            running.join(", ")
        )));
    }
    accounts
        .delete(sa.name, &delete_exactly(&account.metadata, false))
        .await
        .map_err(|e| api("delete serviceaccount", sa, e))?;
    Ok(json!({"existed": true, "uid": account.metadata.uid}))
}

pub(super) async fn verify(c: &kube::Client, sa: Sa<'_>) -> Result<Verified, ConnectorError> {
    let gone = Api::<ServiceAccount>::namespaced(c.clone(), sa.ns)
        .get_opt(sa.name)
        .await
        .map_err(|e| api("get serviceaccount", sa, e))?
        .is_none();
    Ok(Verified {
        ok: gone,
        observed: if gone {
            format!("service account {sa} does not exist")
        } else {
            format!("service account {sa} still exists")
        },
    })
}
