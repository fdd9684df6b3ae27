//! Key rotation end to end (issue 26's first slice): an IAM user's key, living in a Secrets
//! Manager secret (JSON) and a Kubernetes Secret (`AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY`), rotated through `execute` and taken back through `undo`, on
//! moto (`KEYWARD_TEST_AWS_ENDPOINT`) and a real API server (`KEYWARD_TEST_KUBE_URL`,
//! `_TOKEN`, `_CA`); without them each test says it was skipped.
//!
//! Moto limit: with authorization off (as here: `moto/mod.rs` keeps out of the one test that
//! turns it on) GetCallerIdentity accepts any key, so the new key is also checked by
//! `ListAccessKeys`; an `Inactive` key still authenticates, so status is read, not tried.

#![cfg(all(feature = "aws", feature = "kubernetes"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod kube_env;
mod moto;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use keyward_respond::aws::sdk::aws_sdk_secretsmanager as sm;
use keyward_respond::aws::sdk::aws_sdk_sts as sts;
use keyward_respond::aws::static_config;
use keyward_respond::execute::{Connectors, execute, undo};
use keyward_respond::rotate::{self, SecretLocation};
use keyward_respond::{Plan, PlanStatus};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use kube_env::kube_connector;
use moto::{ACCOUNT, Key, Mem, Moto, REGION, clock, now, recorded, unique};
use serde_json::{Value, json};

/// moto, the admin's connector, the cluster: everything a rotation test needs.
struct World {
    moto: Moto,
    sm: sm::Client,
    kube: Client,
    connectors: Connectors,
}

async fn world() -> Option<World> {
    let moto = Moto::start(false).await?;
    let k = kube_connector().await?;
    let (_, _, aws) = moto.admin().await;
    let sm = sm::Client::new(&static_config(
        &moto.endpoint,
        REGION,
        "testing",
        "testing",
        None,
    ));
    let kube = k.client().clone();
    Some(World {
        moto,
        sm,
        kube,
        connectors: Connectors {
            aws: Some(aws),
            kube: Some(k),
            ..Connectors::default()
        },
    })
}

impl World {
    async fn secret_json(&self, key: &Key) -> String {
        let name = unique("app-creds");
        let value = json!({
            "aws_access_key_id": key.id,
            "aws_secret_access_key": key.secret,
            "region": "eu-west-1",
        })
        .to_string();
        self.sm
            .create_secret()
            .name(&name)
            .secret_string(value)
            .send()
            .await
            .unwrap();
        name
    }

    /// How many versions hold `stage`.
    async fn stages(&self, name: &str, stage: &str) -> usize {
        let out = self
            .sm
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .unwrap();
        out.version_ids_to_stages().map_or(0, |m| {
            m.values().filter(|s| s.iter().any(|x| x == stage)).count()
        })
    }

    async fn staged(&self, name: &str, stage: &str) -> String {
        self.sm
            .get_secret_value()
            .secret_id(name)
            .version_stage(stage)
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_owned()
    }

    async fn current(&self, name: &str) -> String {
        self.sm
            .get_secret_value()
            .secret_id(name)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_owned()
    }

    async fn kube_secret(&self, ns: &str, key: &Key) -> String {
        let nss: Api<Namespace> = Api::all(self.kube.clone());
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
        let name = "aws-creds".to_owned();
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "stringData": {
                "AWS_ACCESS_KEY_ID": key.id,
                "AWS_SECRET_ACCESS_KEY": key.secret,
                "AWS_REGION": "eu-west-1",
            }
        }))
        .unwrap();
        Api::<Secret>::namespaced(self.kube.clone(), ns)
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        name
    }

    async fn kube_data(&self, ns: &str, name: &str) -> BTreeMap<String, String> {
        let s = Api::<Secret>::namespaced(self.kube.clone(), ns)
            .get(name)
            .await
            .unwrap();
        s.data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
            .collect()
    }

    async fn drop_namespace(&self, ns: &str) {
        let _ = Api::<Namespace>::all(self.kube.clone())
            .delete(ns, &DeleteParams::default())
            .await;
    }
}

fn plan_for(user: &str, old: &str, locations: &[SecretLocation]) -> Plan {
    rotate::plan(&rotate::Request {
        account: Some(ACCOUNT),
        user,
        old_key_id: old,
        locations,
        grace_days: 7,
        now: now(),
        actor: "test",
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_in_secrets_manager_and_kubernetes_is_rotated_verified_and_undone() {
    let Some(w) = world().await else { return };
    let user = unique("rot");
    let arn = w.moto.user(&user).await;
    let old = w.moto.key(&user).await;
    let secret_name = w.secret_json(&old).await;
    let ns = unique("rot");
    let kube_name = w.kube_secret(&ns, &old).await;

    // Discovery, by the key id.
    let aws = w.connectors.aws.as_ref().unwrap();
    assert_eq!(
        aws.secrets_containing(&old.id).await.unwrap(),
        std::slice::from_ref(&secret_name)
    );
    let k = w.connectors.kube.as_ref().unwrap();
    assert_eq!(
        k.secrets_containing(&old.id, &[]).await.unwrap(),
        [(ns.clone(), kube_name.clone())]
    );

    let locations = [
        SecretLocation::Secretsmanager {
            secret_id: secret_name.clone(),
        },
        SecretLocation::Kubernetes {
            namespace: ns.clone(),
            name: kube_name.clone(),
        },
    ];
    let before_sm = w.current(&secret_name).await;
    let before_kube = w.kube_data(&ns, &kube_name).await;
    let mut plan = plan_for(&user, &old.id, &locations);
    let mut mem = Mem::default();
    execute(&mut plan, &w.connectors, &mut mem, &clock)
        .await
        .unwrap();
    assert_eq!(plan.status, PlanStatus::Executed);
    let new_id = plan.steps[0].result.as_ref().unwrap().state["new_key_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Secrets Manager's four steps: written as AWSPENDING, tested, promoted; after the
    // rotation no version is left pending and the old value is AWSPREVIOUS.
    let names: Vec<&str> = plan.steps.iter().map(|s| s.action.name()).collect();
    assert_eq!(
        names,
        [
            "create_access_key",
            "update_secret_value",
            "update_secret_value",
            "verify_access_key",
            "promote_secret_version",
            "deactivate_access_key",
        ]
    );
    let promoted = &plan.steps[4].result.as_ref().unwrap().state;
    assert_eq!(promoted["tested_key_id"], new_id.as_str());
    assert_eq!(w.stages(&secret_name, "AWSPENDING").await, 0);
    assert_eq!(w.staged(&secret_name, "AWSPREVIOUS").await, before_sm);

    // Both locations hold the new key, the rest of each value as it was.
    let doc: Value = serde_json::from_str(&w.current(&secret_name).await).unwrap();
    assert_eq!(doc["aws_access_key_id"], new_id.as_str());
    assert_eq!(doc["region"], "eu-west-1");
    let new_secret = doc["aws_secret_access_key"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old.secret);
    let data = w.kube_data(&ns, &kube_name).await;
    assert_eq!(data["AWS_ACCESS_KEY_ID"], new_id);
    assert_eq!(data["AWS_SECRET_ACCESS_KEY"], new_secret);
    assert_eq!(data["AWS_REGION"], "eu-west-1");

    // The new key works; the old one is Inactive.
    let sts_new = sts::Client::new(&static_config(
        &w.moto.endpoint,
        REGION,
        &new_id,
        &new_secret,
        None,
    ));
    let caller = sts_new.get_caller_identity().send().await.unwrap();
    assert_eq!(caller.arn(), Some(arn.as_str()));
    let statuses = w.moto.key_statuses(&user).await;
    assert!(statuses.contains(&(old.id.clone(), "Inactive".into())));
    assert!(statuses.contains(&(new_id.clone(), "Active".into())));

    // Neither secret reached the plan, its results or the evidence.
    let all = recorded(&mem, &plan);
    assert!(!all.contains(&new_secret), "the new secret was recorded");
    assert!(!all.contains(&old.secret), "the old secret was recorded");
    assert!(all.contains(&new_id));

    // Undo: old key Active, Secrets Manager and the Secret as before, new key gone.
    undo(&mut plan, &w.connectors, &mut mem, &clock)
        .await
        .unwrap();
    assert_eq!(plan.status, PlanStatus::Undone);
    assert_eq!(
        w.moto.key_statuses(&user).await,
        [(old.id.clone(), "Active".into())]
    );
    assert_eq!(w.current(&secret_name).await, before_sm);
    assert_eq!(w.kube_data(&ns, &kube_name).await, before_kube);
    let all = recorded(&mem, &plan);
    assert!(!all.contains(&new_secret) && !all.contains(&old.secret));
    w.drop_namespace(&ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_with_two_keys_is_refused_before_anything_changes() {
    let Some(w) = world().await else { return };
    let user = unique("rot2");
    w.moto.user(&user).await;
    let old = w.moto.key(&user).await;
    let other = w.moto.key(&user).await;
    let secret_name = w.secret_json(&old).await;
    let before = w.current(&secret_name).await;
    let locations = [SecretLocation::Secretsmanager {
        secret_id: secret_name.clone(),
    }];
    let mut plan = plan_for(&user, &old.id, &locations);
    let mut mem = Mem::default();
    let err = execute(&mut plan, &w.connectors, &mut mem, &clock)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("already has two access keys"), "{err}");
    assert!(err.contains(&other.id), "{err}");
    assert_eq!(plan.status, PlanStatus::Failed);
    assert!(plan.steps[1..].iter().all(|s| s.result.is_none()));
    assert_eq!(w.current(&secret_name).await, before);
    let mut statuses = w.moto.key_statuses(&user).await;
    statuses.sort();
    let mut expected = vec![
        (old.id.clone(), "Active".to_owned()),
        (other.id.clone(), "Active".to_owned()),
    ];
    expected.sort();
    assert_eq!(statuses, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_without_the_secret_in_memory_fails_safely_and_undo_deletes_the_new_key() {
    let Some(w) = world().await else { return };
    let user = unique("rot3");
    w.moto.user(&user).await;
    let old = w.moto.key(&user).await;
    let secret_name = w.secret_json(&old).await;
    let before = w.current(&secret_name).await;
    let locations = [SecretLocation::Secretsmanager {
        secret_id: secret_name.clone(),
    }];
    let mut plan = plan_for(&user, &old.id, &locations);
    // As if the process that created the key died after recording step 1: its secret went
    // with it.
    let mut mem = Mem::default();
    let create = plan.steps[0].action.clone();
    let one = Plan {
        steps: vec![plan.steps[0].clone()],
        ..plan.clone()
    };
    let mut one = one;
    execute(&mut one, &w.connectors, &mut mem, &clock)
        .await
        .unwrap();
    plan.steps[0] = one.steps[0].clone();
    plan.evidence = one.evidence.clone();
    plan.status = PlanStatus::Failed;
    if let keyward_respond::Action::CreateAccessKey { user, replaces, .. } = &create {
        rotate::handoff::forget(user, replaces);
    }
    let err = execute(&mut plan, &w.connectors, &mut mem, &clock)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not in this process's memory"), "{err}");
    assert_eq!(w.current(&secret_name).await, before);
    assert_eq!(w.moto.status_of(&user, &old).await, "Active");
    undo(&mut plan, &w.connectors, &mut mem, &clock)
        .await
        .unwrap();
    assert_eq!(
        w.moto.key_statuses(&user).await,
        [(old.id.clone(), "Active".into())]
    );
}

/// testSecret: a pending version whose key authenticates as someone else is never promoted;
/// readers of `AWSCURRENT` keep the old key, and undo takes the pending stage off.
#[tokio::test(flavor = "multi_thread")]
async fn a_pending_version_that_fails_its_test_is_not_promoted() {
    let Some(w) = world().await else { return };
    let user = unique("rot");
    w.moto.user(&user).await;
    let old = w.moto.key(&user).await;
    let other = unique("other");
    w.moto.user(&other).await;
    let stranger = w.moto.key(&other).await;
    let secret_name = w.secret_json(&old).await;
    let before = w.current(&secret_name).await;
    // What a broken writer (or an attacker) staged: another user's key.
    let pending = json!({
        "aws_access_key_id": stranger.id,
        "aws_secret_access_key": stranger.secret,
        "region": "eu-west-1",
    })
    .to_string();
    w.sm.put_secret_value()
        .secret_id(&secret_name)
        .secret_string(pending)
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    let promote = keyward_respond::Action::PromoteSecretVersion {
        user: user.clone(),
        replaces: old.id.clone(),
        secret_id: secret_name.clone(),
    };
    let aws = w.connectors.aws.as_ref().unwrap();
    let err = aws.apply(&promote).await.unwrap_err().to_string();
    assert!(err.contains("not promoted"), "{err}");
    assert!(!err.contains(&stranger.secret), "{err}");
    assert_eq!(w.current(&secret_name).await, before);
    assert_eq!(w.stages(&secret_name, "AWSPENDING").await, 1);
}

/// A rotation killed after Secrets Manager's promotion but before the old key was
/// deactivated: a fresh plan in the same process (the new key still in memory, as a
/// campaign's resume puts it back) finds the new key already current, writes nothing twice,
/// and finishes — one new key, the old one Inactive.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_stopped_after_the_promotion_is_finished_by_a_fresh_plan() {
    let Some(w) = world().await else { return };
    let user = unique("rot");
    w.moto.user(&user).await;
    let old = w.moto.key(&user).await;
    let secret_name = w.secret_json(&old).await;
    let locations = [SecretLocation::Secretsmanager {
        secret_id: secret_name.clone(),
    }];
    let mut first = plan_for(&user, &old.id, &locations);
    let deactivate = first.steps.pop().unwrap();
    assert_eq!(deactivate.action.name(), "deactivate_access_key");
    let mut mem = Mem::default();
    execute(&mut first, &w.connectors, &mut mem, &clock)
        .await
        .unwrap();
    let new_id = first.steps[0].result.as_ref().unwrap().state["new_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(w.current(&secret_name).await.contains(&new_id));

    let mut again = plan_for(&user, &old.id, &locations);
    execute(&mut again, &w.connectors, &mut mem, &clock)
        .await
        .unwrap();
    assert_eq!(again.status, PlanStatus::Executed, "{again:#?}");
    let write = &again.steps[1].result.as_ref().unwrap().state;
    assert_eq!(write["stage"], "AWSCURRENT");
    let statuses = w.moto.key_statuses(&user).await;
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert!(statuses.contains(&(old.id.clone(), "Inactive".into())));
    assert!(statuses.contains(&(new_id.clone(), "Active".into())));
    assert!(w.current(&secret_name).await.contains(&new_id));
}
