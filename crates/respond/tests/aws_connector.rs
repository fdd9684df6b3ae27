//! The AWS connector's own contract, call by call against moto (`KEYWARD_TEST_AWS_ENDPOINT`;
//! skipped without it): idempotent apply, preconditions that refuse before any change, undo
//! that leaves what was there before the plan, the trust policy edited by someone else in
//! between, the forensic snapshot's contents, error messages, and `from_env`.

#![cfg(feature = "aws")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod moto;

use keyward_respond::aws::{AwsConnector, deny_all_document, revoke_sessions_document};
use keyward_respond::{Action, ConnectorError, IamPrincipal};
use moto::*;
use serde_json::{Value, json};

fn deny_all(p: IamPrincipal) -> Action {
    Action::DenyAll {
        account: None,
        principal: p,
    }
}

fn is_precondition<T: std::fmt::Debug>(r: &Result<T, ConnectorError>) -> bool {
    matches!(r, Err(ConnectorError::Precondition { .. }))
}

#[tokio::test]
async fn inline_policies_are_idempotent_and_undo_leaves_what_was_there() {
    let Some(moto) = Moto::start(false).await else {
        return;
    };
    let (_, _, keyward) = moto.admin().await;
    let role = unique("idem");
    moto.role(&role, &trust_for("arn:aws:iam::123456789012:user/nobody"))
        .await;
    let p = IamPrincipal::Role(role.clone());
    let action = deny_all(p.clone());

    let first = keyward.apply(&action).await.unwrap();
    assert_eq!(first["previous"], Value::Null);
    // Already there with Keyward's document: nothing changes, and undoing this second
    // application leaves the policy (it was there before).
    let second = keyward.apply(&action).await.unwrap();
    assert!(second["previous"].is_string());
    let left = keyward.undo(&action, &second).await.unwrap();
    assert!(left.ok, "{}", left.observed);
    assert!(moto.inline(&p, "KeywardContainDenyAll").await.is_some());
    let gone = keyward.undo(&action, &first).await.unwrap();
    assert!(
        gone.ok && gone.observed.contains("gone"),
        "{}",
        gone.observed
    );
    assert_eq!(moto.inline(&p, "KeywardContainDenyAll").await, None);
    let v = keyward.verify(&action).await.unwrap();
    assert!(
        !v.ok && v.observed.starts_with("no inline policy"),
        "{}",
        v.observed
    );

    // An older revocation Keyward wrote is replaced, and put back by undo.
    let older = Action::RevokeSessions {
        account: None,
        role: role.clone(),
        issued_before: 1_700_000_000_000,
    };
    let newer = Action::RevokeSessions {
        account: None,
        role: role.clone(),
        issued_before: 1_800_000_000_000,
    };
    let s_old = keyward.apply(&older).await.unwrap();
    let s_new = keyward.apply(&newer).await.unwrap();
    assert!(keyward.verify(&newer).await.unwrap().ok);
    assert!(keyward.undo(&newer, &s_new).await.unwrap().ok);
    assert!(
        keyward.verify(&older).await.unwrap().ok,
        "the older one is back"
    );
    assert!(keyward.undo(&older, &s_old).await.unwrap().ok);
    assert_eq!(moto.inline(&p, "KeywardRevokeOlderSessions").await, None);
    assert_ne!(
        revoke_sessions_document(1_700_000_000_000),
        revoke_sessions_document(1_800_000_000_000)
    );
}

#[tokio::test]
async fn preconditions_refuse_before_any_change() {
    let Some(moto) = Moto::start(false).await else {
        return;
    };
    let (_, _, keyward) = moto.admin().await;

    // A policy of Keyward's name that Keyward did not write.
    let user = unique("foreign");
    moto.user(&user).await;
    let foreign = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]});
    moto.root
        .put_user_policy()
        .user_name(&user)
        .policy_name("KeywardContainDenyAll")
        .policy_document(foreign.to_string())
        .send()
        .await
        .unwrap();
    let p = IamPrincipal::User(user.clone());
    let r = keyward.apply(&deny_all(p.clone())).await;
    assert!(is_precondition(&r), "{r:?}");
    assert!(r.unwrap_err().to_string().contains("did not write"));
    assert!(moto.inline(&p, "KeywardContainDenyAll").await.is_some());

    // Principals and keys that are not there.
    let nobody = unique("nobody");
    let r = keyward
        .apply(&deny_all(IamPrincipal::Role(nobody.clone())))
        .await;
    assert!(is_precondition(&r), "{r:?}");
    let r = keyward
        .apply(&Action::DeactivateAccessKey {
            account: None,
            user: nobody.clone(),
            key_id: "AKIANOSUCHKEY0000000".into(),
        })
        .await;
    assert!(is_precondition(&r), "{r:?}");
    let r = keyward
        .snapshot(&deny_all(IamPrincipal::User(nobody)))
        .await;
    assert!(is_precondition(&r), "{r:?}");

    // Another platform's action is not the AWS connector's.
    let k8s = Action::RestartPods {
        cluster: None,
        namespace: "default".into(),
        service_account: "app".into(),
    };
    assert!(is_precondition(&keyward.apply(&k8s).await));
    assert!(is_precondition(&keyward.verify(&k8s).await));
    assert!(is_precondition(&keyward.snapshot(&k8s).await));
    assert!(is_precondition(&keyward.undo(&k8s, &Value::Null).await));

    // A trust policy that does not trust the provider is not edited.
    let role = unique("svc");
    let trust = trust_for("arn:aws:iam::123456789012:user/nobody");
    moto.role(&role, &trust).await;
    let before = raw_trust(&moto, &role).await;
    let r = keyward
        .apply(&Action::DenyWebIdentitySubject {
            account: None,
            role: role.clone(),
            provider: "token.actions.githubusercontent.com".into(),
            subject: "repo:acme/x:ref:refs/heads/main".into(),
        })
        .await;
    assert!(is_precondition(&r), "{r:?}");
    assert_eq!(raw_trust(&moto, &role).await, before);
}

#[tokio::test]
async fn keys_and_passwords_already_in_the_wanted_state() {
    let Some(moto) = Moto::start(false).await else {
        return;
    };
    let (_, _, keyward) = moto.admin().await;
    let user = unique("idle");
    moto.user(&user).await;
    let key = moto.key(&user).await;
    moto.root
        .update_access_key()
        .user_name(&user)
        .access_key_id(&key.id)
        .status(iam::types::StatusType::Inactive)
        .send()
        .await
        .unwrap();
    let deactivate = Action::DeactivateAccessKey {
        account: None,
        user: user.clone(),
        key_id: key.id.clone(),
    };
    let state = keyward.apply(&deactivate).await.unwrap();
    assert_eq!(state, json!({"previous_status": "Inactive"}));
    assert!(keyward.verify(&deactivate).await.unwrap().ok);
    let undone = keyward.undo(&deactivate, &state).await.unwrap();
    assert!(undone.ok, "{}", undone.observed);
    assert_eq!(
        moto.status_of(&user, &key).await,
        "Inactive",
        "it was Inactive before the plan"
    );

    let login = Action::DeleteLoginProfile {
        account: None,
        user: user.clone(),
    };
    assert_eq!(
        keyward.apply(&login).await.unwrap(),
        json!({"existed": false})
    );
    assert!(keyward.verify(&login).await.unwrap().ok);
    assert!(is_precondition(&keyward.undo(&login, &Value::Null).await));
}

#[tokio::test]
async fn a_trust_policy_changed_after_containment_keeps_the_change_on_undo() {
    let Some(moto) = Moto::start(false).await else {
        return;
    };
    let (_, _, keyward) = moto.admin().await;
    let host = format!("{}.oidc.example.com", unique("idp"));
    let provider = moto
        .root
        .create_open_id_connect_provider()
        .url(format!("https://{host}"))
        .client_id_list("sts.amazonaws.com")
        .thumbprint_list("6938fd4d98bab03faadb97b34396831e3780aea1")
        .send()
        .await
        .unwrap();
    let provider_arn = provider.open_id_connect_provider_arn().unwrap().to_owned();
    // One statement, not a list: IAM accepts both.
    let allow = json!({
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity"
    });
    let role = unique("web");
    moto.role(
        &role,
        &json!({"Version": "2012-10-17", "Statement": allow}).to_string(),
    )
    .await;
    let action = Action::DenyWebIdentitySubject {
        account: None,
        role: role.clone(),
        provider: host.clone(),
        subject: "repo:acme/web:ref:refs/heads/main".into(),
    };
    let state = keyward.apply(&action).await.unwrap();
    assert!(keyward.verify(&action).await.unwrap().ok);

    // Someone adds a statement while the role is contained.
    let mut changed: Value =
        serde_json::from_str(&decode_pct(&raw_trust(&moto, &role).await)).unwrap();
    let extra = json!({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"});
    changed["Statement"]
        .as_array_mut()
        .unwrap()
        .push(extra.clone());
    moto.root
        .update_assume_role_policy()
        .role_name(&role)
        .policy_document(changed.to_string())
        .send()
        .await
        .unwrap();

    let undone = keyward.undo(&action, &state).await.unwrap();
    assert!(
        undone.ok && undone.observed.contains("changed since"),
        "{}",
        undone.observed
    );
    let after: Value = serde_json::from_str(&decode_pct(&raw_trust(&moto, &role).await)).unwrap();
    assert_eq!(after["Statement"], json!([allow, extra]));
    assert!(!keyward.verify(&action).await.unwrap().ok);
}

#[tokio::test]
async fn the_snapshot_holds_policies_groups_profiles_and_no_secret() {
    let Some(moto) = Moto::start(false).await else {
        return;
    };
    let (_, _, keyward) = moto.admin().await;
    let managed_doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]});
    let managed = moto
        .root
        .create_policy()
        .policy_name(unique("read"))
        .policy_document(managed_doc.to_string())
        .send()
        .await
        .unwrap();
    let managed_arn = managed.policy().unwrap().arn().unwrap().to_owned();

    let user = unique("snap");
    moto.user(&user).await;
    let key = moto.key(&user).await;
    let group = unique("devs");
    moto.root
        .create_group()
        .group_name(&group)
        .send()
        .await
        .unwrap();
    moto.root
        .add_user_to_group()
        .group_name(&group)
        .user_name(&user)
        .send()
        .await
        .unwrap();
    moto.root
        .attach_user_policy()
        .user_name(&user)
        .policy_arn(&managed_arn)
        .send()
        .await
        .unwrap();
    moto.root
        .tag_user()
        .user_name(&user)
        .tags(
            iam::types::Tag::builder()
                .key("team")
                .value("payments")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let snap = keyward
        .snapshot(&Action::DeactivateAccessKey {
            account: None,
            user: user.clone(),
            key_id: key.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(snap["kind"], "user");
    assert_eq!(snap["key"], key.id.as_str());
    assert_eq!(snap["groups"][0]["name"], group.as_str());
    assert_eq!(snap["tags"], json!({"team": "payments"}));
    assert_eq!(snap["attached_policies"][0]["arn"], managed_arn.as_str());
    assert_eq!(snap["attached_policies"][0]["document"], managed_doc);
    assert_eq!(snap["access_keys"][0]["id"], key.id.as_str());
    assert_eq!(snap["access_keys"][0]["status"], "Active");
    assert_eq!(snap["login_profile"], json!({"exists": false}));
    assert!(!snap.to_string().contains(&key.secret), "no secret");

    let role = unique("ec2");
    moto.role(&role, &trust_for("arn:aws:iam::123456789012:user/nobody"))
        .await;
    moto.root
        .attach_role_policy()
        .role_name(&role)
        .policy_arn(&managed_arn)
        .send()
        .await
        .unwrap();
    let profile = unique("prof");
    moto.root
        .create_instance_profile()
        .instance_profile_name(&profile)
        .send()
        .await
        .unwrap();
    moto.root
        .add_role_to_instance_profile()
        .instance_profile_name(&profile)
        .role_name(&role)
        .send()
        .await
        .unwrap();
    let snap = keyward
        .snapshot(&deny_all(IamPrincipal::Role(role.clone())))
        .await
        .unwrap();
    assert_eq!(snap["kind"], "role");
    assert_eq!(snap["instance_profiles"][0]["name"], profile.as_str());
    assert_eq!(snap["attached_policies"][0]["document"], managed_doc);
    assert_eq!(
        snap["trust_policy"]["Statement"][0]["Action"],
        "sts:AssumeRole"
    );
    assert!(snap["created"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(snap["inline_policies"], json!([]));
    assert_ne!(deny_all_document(), Value::Null);
}

/// A call that never gets an answer: the message names the call and the target, and not
/// the credentials.
#[tokio::test]
async fn errors_name_the_call_and_target_and_no_credential() {
    let secret = "s3cr3t-never-printed";
    let closed = AwsConnector::with_static_credentials(
        "http://127.0.0.1:9",
        REGION,
        "AKIAEXAMPLEKEY000000",
        secret,
    )
    .await;
    let err = closed
        .apply(&deny_all(IamPrincipal::Role("web".into())))
        .await
        .unwrap_err();
    let text = err.to_string();
    match &err {
        ConnectorError::Api { call, target, .. } => {
            assert_eq!((call.as_str(), target.as_str()), ("GetRole", "role/web"));
        }
        other => panic!("{other:?}"),
    }
    assert!(!text.contains(secret), "{text}");
    assert!(text.starts_with("GetRole on role/web: "), "{text}");
}

/// `from_env` is checked in a child process with its own environment (this process's
/// environment is not touched): `AWS_ENDPOINT_URL` and the keys are honoured, and with no
/// credentials anywhere the connector is reported unavailable. Instance metadata stays off or
/// on loopback: no test reaches for 169.254.169.254.
#[tokio::test]
async fn from_env_reads_the_environment() {
    if let Ok(mode) = std::env::var("KEYWARD_TEST_FROM_ENV_CHILD") {
        let c = AwsConnector::from_env().await;
        match mode.as_str() {
            "none" | "imds" => assert!(
                matches!(c, Err(ConnectorError::Unavailable("aws", _))),
                "{c:?}"
            ),
            want => {
                let arn = c.unwrap().caller().await.unwrap();
                assert!(arn.ends_with(&format!(":user/{want}")), "{arn}");
            }
        }
        return;
    }
    let child = |mode: &str, vars: &[(&str, &str)]| {
        let empty = std::env::temp_dir().join("keyward-no-aws-config");
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "from_env_reads_the_environment",
            "--test-threads=1",
        ])
        .env_clear()
        .env("KEYWARD_TEST_FROM_ENV_CHILD", mode)
        .env("AWS_CONFIG_FILE", &empty)
        .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
        .env("AWS_EC2_METADATA_DISABLED", "true");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "child {mode}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    child("none", &[]);
    // Instance metadata tried (on a closed loopback port): its client is the connector's.
    child(
        "imds",
        &[
            ("AWS_EC2_METADATA_DISABLED", "false"),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9"),
        ],
    );
    let Some(moto) = Moto::start(false).await else {
        return;
    };
    let (admin, key, _) = moto.admin().await;
    child(
        &admin,
        &[
            ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", key.id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", key.secret.as_str()),
        ],
    );
}
