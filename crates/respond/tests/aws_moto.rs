//! The AWS connector against a moto server, driven through `execute` and `undo` the way the
//! CLI will: issue 25's scenarios (contain a role whose session is in use, contain a user,
//! blast radius since a time, a web-identity subject denied in a trust policy, Keyward's own
//! principal refused, a failing step stopping the plan).
//!
//! The server comes from `KEYWARD_TEST_AWS_ENDPOINT` (`../shared/tools/aws/moto-up DIR PORT`
//! writes it to DIR/env); without it every test prints that it was skipped. Nothing here reads
//! the `AWS_*` variables: each client is built from an explicit configuration.
//!
//! Only the role scenario turns moto's authorization on (the attacker's session must really
//! be refused); `moto/mod.rs` says how the others keep out of its way. Moto limits worked
//! around: an `Inactive` key still authenticates (status is read with `ListAccessKeys`); a
//! trust policy must name the exact principal ARN (`:root` is not honoured); conditions in
//! identity policies are not evaluated; its authorization errors are not in IAM's error
//! shape (the test reads the status and body).

#![cfg(feature = "aws")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod moto;

use std::collections::BTreeSet;

use keyward_graph::Inventory;
use keyward_model::{Identity, IdentityKind, Platform};
use keyward_respond::aws::sdk::aws_sdk_sts as sts;
use keyward_respond::aws::static_config;
use keyward_respond::execute::{self, ExecuteError};
use keyward_respond::{Action, ConnectorError, IamPrincipal, PlanStatus};
use moto::*;
use serde_json::{Value, json};

/// Scenario 1: a role whose session the attacker holds is contained — the session already
/// handed out is refused from the next call — and undone.
#[tokio::test]
async fn role_contained_its_live_session_refused_and_undone() {
    let Some(moto) = Moto::start(true).await else {
        return;
    };
    let (_, _, keyward) = moto.admin().await;
    let attacker = unique("attacker");
    let attacker_arn = moto.user(&attacker).await;
    let attacker_key = moto.key(&attacker).await;
    let role = unique("role");
    let role_arn = moto.role(&role, &trust_for(&attacker_arn)).await;
    moto.root
        .put_user_policy()
        .user_name(&attacker)
        .policy_name("assume")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": &role_arn}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    moto.root
        .put_role_policy()
        .role_name(&role)
        .policy_name("read")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iam:ListRoles", "iam:GetRole"], "Resource": "*"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    // The attacker's session, issued before containment.
    let sts_attacker = sts::Client::new(&static_config(
        &moto.endpoint,
        REGION,
        &attacker_key.id,
        &attacker_key.secret,
        None,
    ));
    let assumed = sts_attacker
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name("loot")
        .send()
        .await
        .unwrap();
    let c = assumed.credentials().unwrap();
    let session = moto.iam_as(&Key {
        id: c.access_key_id().to_owned(),
        secret: c.secret_access_key().to_owned(),
        token: Some(c.session_token().to_owned()),
    });

    let auth = AuthOn::new(&moto.endpoint);
    session
        .list_roles()
        .send()
        .await
        .expect("the session may list roles before containment");

    let inv = Inventory::new(vec![identity(IdentityKind::IamRole, &role_arn, &role)]);
    let mut plan = build(&inv, &role_arn, None);
    assert_eq!(
        action_names(&plan),
        vec![
            ("deny_all", role_arn.clone()),
            ("revoke_sessions", role_arn.clone())
        ]
    );
    let conns = connectors(keyward.clone());
    let mut rec = Mem::default();
    execute::execute(&mut plan, &conns, &mut rec, &clock)
        .await
        .unwrap();
    assert_eq!(plan.status, PlanStatus::Executed);
    assert_all_ok(&plan);
    assert_eq!(plan.evidence.as_deref(), Some("ev-1"));
    let snap = &rec.evidence[0]["targets"][format!("aws:{role_arn}")];
    assert_eq!(snap["kind"], "role");
    assert_eq!(
        snap["trust_policy"]["Statement"][0]["Principal"]["AWS"],
        attacker_arn
    );
    assert_eq!(snap["inline_policies"][0]["name"], "read");
    assert_eq!(
        snap["inline_policies"][0]["document"]["Statement"][0]["Action"][0],
        "iam:ListRoles"
    );

    // Moto's authorization layer answers 403 with `<ErrorResponse><Errors><Error>`, a shape
    // the SDK's IAM parser does not read a code from: the status and the body tell.
    let refused = session.list_roles().send().await.unwrap_err();
    let raw = refused.raw_response().expect("an HTTP answer");
    let body = String::from_utf8_lossy(raw.body().bytes().unwrap_or_default()).into_owned();
    assert_eq!(raw.status().as_u16(), 403, "{body}");
    assert!(
        body.contains("<Code>AccessDenied</Code>") && body.contains("assumed-role"),
        "{body}"
    );
    let p = IamPrincipal::Role(role.clone());
    let deny = moto_doc(&keyward, &p, "KeywardContainDenyAll").await;
    assert_eq!(deny, keyward_respond::aws::deny_all_document());
    let revoke = moto_doc(&keyward, &p, "KeywardRevokeOlderSessions").await;
    assert_eq!(
        revoke["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
            .as_str()
            .map(|t| t.len()),
        Some(20),
        "{revoke}"
    );

    execute::undo(&mut plan, &conns, &mut rec, &clock)
        .await
        .unwrap();
    assert_eq!(plan.status, PlanStatus::Undone);
    for s in &plan.steps {
        let u = s.undo_result.as_ref().unwrap();
        assert!(u.ok && u.message == "undone", "{}: {}", s.n, u.message);
    }
    session
        .list_roles()
        .send()
        .await
        .expect("after undo the session works again");

    // Revoking sessions alone stops the session issued before it. (Moto does not evaluate
    // conditions in identity policies, so it refuses sessions issued after `issued_before`
    // as well: the time bound itself cannot be checked here.)
    let revoke = Action::RevokeSessions {
        account: Some(ACCOUNT.into()),
        role: role.clone(),
        issued_before: now().div_euclid(1000) * 1000 + 1000,
    };
    let state = keyward.apply(&revoke).await.unwrap();
    assert_eq!(state["previous"], Value::Null);
    assert!(keyward.verify(&revoke).await.unwrap().ok);
    let refused = session.list_roles().send().await.unwrap_err();
    assert_eq!(
        refused.raw_response().map(|r| r.status().as_u16()),
        Some(403)
    );
    assert!(keyward.undo(&revoke, &state).await.unwrap().ok);

    drop(auth);
    assert_eq!(moto.inline(&p, "KeywardContainDenyAll").await, None);
    assert_eq!(moto.inline(&p, "KeywardRevokeOlderSessions").await, None);
    assert!(
        moto.inline(&p, "read").await.is_some(),
        "the role's own policy is kept"
    );
}

/// Scenario 2: a user with two keys and a console password.
#[tokio::test]
async fn user_contained_keys_inactive_password_gone_then_undone() {
    let Some(moto) = Moto::start(false).await else {
        return;
    };
    let (_, _, keyward) = moto.admin().await;
    let user = unique("user");
    let user_arn = moto.user(&user).await;
    let k1 = moto.key(&user).await;
    let k2 = moto.key(&user).await;
    moto.root
        .create_login_profile()
        .user_name(&user)
        .password("Correct-Horse-9!")
        .send()
        .await
        .unwrap();
    let mfa = moto
        .root
        .create_virtual_mfa_device()
        .virtual_mfa_device_name(&user)
        .send()
        .await
        .unwrap();
    let serial = mfa.virtual_mfa_device().unwrap().serial_number().to_owned();
    moto.root
        .enable_mfa_device()
        .user_name(&user)
        .serial_number(&serial)
        .authentication_code1("123456")
        .authentication_code2("654321")
        .send()
        .await
        .unwrap();

    let mut me = identity(IdentityKind::IamUser, &user_arn, &user);
    me.credentials = vec![access_key(&k1.id), access_key(&k2.id)];
    let inv = Inventory::new(vec![me]);
    let mut plan = build(&inv, &user_arn, None);
    let names: Vec<&str> = plan.steps.iter().map(|s| s.action.name()).collect();
    assert_eq!(
        names,
        [
            "deny_all",
            "deactivate_access_key",
            "deactivate_access_key",
            "delete_login_profile",
            "list_mfa_devices"
        ]
    );
    let conns = connectors(keyward);
    let mut rec = Mem::default();
    execute::execute(&mut plan, &conns, &mut rec, &clock)
        .await
        .unwrap();
    assert_eq!(plan.status, PlanStatus::Executed);
    assert_all_ok(&plan);

    // The forensic snapshot: the user's credentials as they were, and no secret.
    let evidence = rec.evidence[0].to_string();
    assert!(!evidence.contains(&k1.secret) && !evidence.contains(&k2.secret));
    assert!(!evidence.contains("Correct-Horse"));
    let snap = &rec.evidence[0]["targets"][format!("aws:{user_arn}")];
    assert_eq!(snap["login_profile"]["exists"], true);
    assert_eq!(snap["mfa_devices"][0]["serial"], serial.as_str());
    let keys: BTreeSet<(&str, &str)> = snap["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["id"].as_str().unwrap(), k["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([(k1.id.as_str(), "Active"), (k2.id.as_str(), "Active")])
    );

    assert_eq!(moto.status_of(&user, &k1).await, "Inactive");
    assert_eq!(moto.status_of(&user, &k2).await, "Inactive");
    let p = IamPrincipal::User(user.clone());
    assert!(moto.inline(&p, "KeywardContainDenyAll").await.is_some());
    let login = moto.root.get_login_profile().user_name(&user).send().await;
    assert!(
        login
            .unwrap_err()
            .into_service_error()
            .is_no_such_entity_exception()
    );
    let mfa_step = &plan.steps[4].result.as_ref().unwrap().state;
    assert_eq!(mfa_step["mfa_devices"][0]["serial"], serial.as_str());
    assert_eq!(
        plan.steps[3].result.as_ref().unwrap().state["existed"],
        true
    );

    execute::undo(&mut plan, &conns, &mut rec, &clock)
        .await
        .unwrap();
    assert_eq!(plan.status, PlanStatus::Undone);
    assert_eq!(moto.status_of(&user, &k1).await, "Active");
    assert_eq!(moto.status_of(&user, &k2).await, "Active");
    assert_eq!(moto.inline(&p, "KeywardContainDenyAll").await, None);
    let login_undo = plan.steps[3].undo_result.as_ref().unwrap();
    assert!(
        login_undo.ok
            && login_undo
                .message
                .starts_with("cannot be undone automatically"),
        "{}",
        login_undo.message
    );
    assert_eq!(
        plan.steps[4].undo_result.as_ref().unwrap().message,
        "nothing to undo"
    );
}

/// Scenario 3: what the compromised role's session created since `since` is revoked: a new
/// user (and its key) and a key it made on another user; what it created before is not.
#[tokio::test]
async fn blast_radius_revokes_what_the_session_created_since() {
    let Some(moto) = Moto::start(false).await else {
        return;
    };
    let (admin, _, keyward) = moto.admin().await;
    let role = unique("ci");
    let role_arn = moto
        .role(
            &role,
            &trust_for(&format!("arn:aws:iam::{ACCOUNT}:user/{admin}")),
        )
        .await;
    let fresh = unique("fresh");
    let fresh_arn = moto.user(&fresh).await;
    let fresh_key = moto.key(&fresh).await;
    let other = unique("other");
    let other_arn = moto.user(&other).await;
    let other_own = moto.key(&other).await;
    let planted = moto.key(&other).await;
    let old = unique("old");
    let old_arn = moto.user(&old).await;
    let old_key = moto.key(&old).await;

    let since = now() - 3_600_000;
    let session_id = format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/loot");
    let mut session = identity(IdentityKind::StsSession, &session_id, "loot");
    session.parent = Some(role_arn.clone());
    let mut new_user = identity(IdentityKind::IamUser, &fresh_arn, &fresh);
    new_user.created = Some(since + 60_000);
    new_user.created_by = BTreeSet::from([session_id.clone()]);
    new_user.credentials = vec![access_key(&fresh_key.id)];
    let mut planted_key = identity(IdentityKind::AccessKey, &planted.id, &planted.id);
    planted_key.parent = Some(other_arn.clone());
    planted_key.created = Some(since + 120_000);
    planted_key.created_by = BTreeSet::from([session_id.clone()]);
    let mut other_user = identity(IdentityKind::IamUser, &other_arn, &other);
    other_user.created = Some(since - 86_400_000);
    other_user.credentials = vec![access_key(&other_own.id), access_key(&planted.id)];
    let mut old_user = identity(IdentityKind::IamUser, &old_arn, &old);
    old_user.created = Some(since - 60_000);
    old_user.created_by = BTreeSet::from([session_id.clone()]);
    old_user.credentials = vec![access_key(&old_key.id)];
    let inv = Inventory::new(vec![
        identity(IdentityKind::IamRole, &role_arn, &role),
        session,
        new_user,
        planted_key,
        other_user,
        old_user,
    ]);

    let mut plan = build(&inv, &role_arn, Some(since));
    let fresh_target = format!("arn:aws:iam::{ACCOUNT}:user/{fresh}");
    assert_eq!(
        action_names(&plan),
        vec![
            ("deny_all", role_arn.clone()),
            ("revoke_sessions", role_arn.clone()),
            ("deny_all", fresh_target.clone()),
            ("deactivate_access_key", fresh_key.id.clone()),
            ("delete_login_profile", fresh_target.clone()),
            ("list_mfa_devices", fresh_target),
            ("deactivate_access_key", planted.id.clone()),
        ]
    );
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| s.target.contains(&old) || s.target == old_key.id),
        "created before since: not revoked"
    );

    let conns = connectors(keyward);
    let mut rec = Mem::default();
    execute::execute(&mut plan, &conns, &mut rec, &clock)
        .await
        .unwrap();
    assert_all_ok(&plan);
    assert_eq!(moto.status_of(&fresh, &fresh_key).await, "Inactive");
    assert_eq!(moto.status_of(&other, &planted).await, "Inactive");
    assert_eq!(moto.status_of(&other, &other_own).await, "Active");
    assert_eq!(moto.status_of(&old, &old_key).await, "Active");
    let fresh_p = IamPrincipal::User(fresh.clone());
    assert!(
        moto.inline(&fresh_p, "KeywardContainDenyAll")
            .await
            .is_some()
    );
    assert_eq!(
        moto.inline(&IamPrincipal::User(old.clone()), "KeywardContainDenyAll")
            .await,
        None
    );
    assert_eq!(
        plan.steps[4].result.as_ref().unwrap().state,
        json!({"existed": false}),
        "no console password: nothing to do"
    );

    execute::undo(&mut plan, &conns, &mut rec, &clock)
        .await
        .unwrap();
    assert_eq!(moto.status_of(&other, &planted).await, "Active");
    assert_eq!(moto.status_of(&fresh, &fresh_key).await, "Active");
    assert_eq!(moto.inline(&fresh_p, "KeywardContainDenyAll").await, None);
}

/// Scenario 4: one GitHub Actions subject denied in a role's trust policy; undo puts the
/// document back exactly as it was.
#[tokio::test]
async fn web_identity_subject_denied_in_the_trust_policy_and_restored() {
    let Some(moto) = Moto::start(false).await else {
        return;
    };
    let (_, _, keyward) = moto.admin().await;
    let host = format!("{}.oidc.example.com", unique("gh"));
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
    // Indented on purpose: undo must give back these exact bytes.
    let trust = serde_json::to_string_pretty(&json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {format!("{host}:aud"): "sts.amazonaws.com"},
                "StringLike": {format!("{host}:sub"): "repo:acme/*"}
            }
        }]
    }))
    .unwrap();
    let role = unique("deploy");
    let role_arn = moto.role(&role, &trust).await;
    let before = raw_trust(&moto, &role).await;

    let subject = "repo:acme/payments:ref:refs/heads/main";
    let mut sub = Identity::new(
        format!("oidc:{host}:{subject}"),
        Platform::Oidc,
        IdentityKind::OidcSubject,
        subject.to_owned(),
    );
    sub.issuer = Some(format!("https://{host}"));
    sub.subject = Some(subject.to_owned());
    sub.links = BTreeSet::from([role_arn.clone()]);
    let r = identity(IdentityKind::IamRole, &role_arn, &role);
    let inv = Inventory::new(vec![sub.clone(), r]);
    let mut plan = build(&inv, &sub.id, None);
    assert_eq!(
        action_names(&plan),
        vec![
            ("deny_web_identity_subject", role_arn.clone()),
            ("revoke_sessions", role_arn.clone())
        ]
    );
    let conns = connectors(keyward.clone());
    let mut rec = Mem::default();
    execute::execute(&mut plan, &conns, &mut rec, &clock)
        .await
        .unwrap();
    assert_all_ok(&plan);

    let doc = moto.root.get_role().role_name(&role).send().await.unwrap();
    let now_trust = decode_pct(doc.role().unwrap().assume_role_policy_document().unwrap());
    let now_trust: Value = serde_json::from_str(&now_trust).unwrap();
    let statements = now_trust["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2);
    let original: Value = serde_json::from_str(&trust).unwrap();
    assert_eq!(statements[0], original["Statement"][0], "kept as it was");
    assert_eq!(
        statements[1],
        json!({
            "Sid": "KeywardDenySubject",
            "Effect": "Deny",
            "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{host}")},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringLike": {format!("{host}:sub"): subject}}
        })
    );
    assert_eq!(
        statements[1]["Principal"]["Federated"],
        provider_arn.as_str()
    );

    // Applying again changes nothing (the statement is there).
    let state = keyward.apply(&plan.steps[0].action).await.unwrap();
    assert_eq!(state["applied_document"], Value::Null);

    execute::undo(&mut plan, &conns, &mut rec, &clock)
        .await
        .unwrap();
    assert_eq!(plan.status, PlanStatus::Undone);
    assert_eq!(
        raw_trust(&moto, &role).await,
        before,
        "the exact document is back"
    );
    assert_eq!(decode_pct(&before), trust);
}

/// Scenario 5: a plan with a step on Keyward's own principal is refused before anything runs.
#[tokio::test]
async fn a_step_on_keywards_own_principal_is_refused_before_any_change() {
    let Some(moto) = Moto::start(false).await else {
        return;
    };
    let (admin, admin_key, keyward) = moto.admin().await;
    let bystander = unique("bystander");
    moto.user(&bystander).await;
    let conns = connectors(keyward);
    let first = Action::DenyAll {
        account: Some(ACCOUNT.into()),
        principal: IamPrincipal::User(bystander.clone()),
    };
    let on_self = [
        Action::DenyAll {
            account: Some(ACCOUNT.into()),
            principal: IamPrincipal::User(admin.clone()),
        },
        // Without the account, and by the key it signs with.
        Action::DenyAll {
            account: None,
            principal: IamPrincipal::User(admin.clone()),
        },
        Action::DeactivateAccessKey {
            account: None,
            user: admin.clone(),
            key_id: admin_key.id.clone(),
        },
    ];
    for last in on_self {
        let mut plan = plan_of(&bystander, vec![first.clone(), last.clone()]);
        let mut rec = Mem::default();
        let err = execute::execute(&mut plan, &conns, &mut rec, &clock)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ExecuteError::Connector(ConnectorError::Refused(_))),
            "{last:?}: {err}"
        );
        assert_eq!(plan.status, PlanStatus::Planned);
        assert!(plan.evidence.is_none() && rec.evidence.is_empty() && rec.records.is_empty());
        assert!(plan.steps.iter().all(|s| s.result.is_none()));
    }
    assert_eq!(
        moto.inline(&IamPrincipal::User(bystander), "KeywardContainDenyAll")
            .await,
        None
    );
    assert_eq!(moto.status_of(&admin, &admin_key).await, "Active");

    // The connector itself will not deactivate the key it signs with.
    let direct = conns
        .aws
        .as_ref()
        .unwrap()
        .apply(&Action::DeactivateAccessKey {
            account: None,
            user: admin.clone(),
            key_id: admin_key.id.clone(),
        })
        .await;
    assert!(
        matches!(direct, Err(ConnectorError::Refused(_))),
        "{direct:?}"
    );
    assert_eq!(moto.status_of(&admin, &admin_key).await, "Active");
}

/// Scenario 6: a step that fails stops the plan; what ran before is recorded and stays in
/// effect, what comes after does not run; the failed plan can be undone.
#[tokio::test]
async fn a_failing_step_stops_the_plan() {
    let Some(moto) = Moto::start(false).await else {
        return;
    };
    let (_, _, keyward) = moto.admin().await;
    let user = unique("victim");
    moto.user(&user).await;
    let key = moto.key(&user).await;
    let account = Some(ACCOUNT.to_owned());
    let mut plan = plan_of(
        &user,
        vec![
            Action::DenyAll {
                account: account.clone(),
                principal: IamPrincipal::User(user.clone()),
            },
            Action::DeactivateAccessKey {
                account: account.clone(),
                user: user.clone(),
                key_id: "AKIADOESNOTEXIST0000".into(),
            },
            Action::DeactivateAccessKey {
                account,
                user: user.clone(),
                key_id: key.id.clone(),
            },
        ],
    );
    let conns = connectors(keyward);
    let mut rec = Mem::default();
    let err = execute::execute(&mut plan, &conns, &mut rec, &clock)
        .await
        .unwrap_err();
    match &err {
        ExecuteError::Step { n, message, .. } => {
            assert_eq!(*n, 2);
            assert!(
                message.contains("has no access key AKIADOESNOTEXIST0000"),
                "{message}"
            );
        }
        other => panic!("{other}"),
    }
    assert_eq!(plan.status, PlanStatus::Failed);
    assert!(plan.steps[0].result.as_ref().unwrap().ok);
    assert!(!plan.steps[1].result.as_ref().unwrap().ok);
    assert!(plan.steps[2].result.is_none(), "not run");
    assert_eq!(moto.status_of(&user, &key).await, "Active");
    let p = IamPrincipal::User(user.clone());
    assert!(moto.inline(&p, "KeywardContainDenyAll").await.is_some());
    // Recorded as it went: step 1 done before step 2 started, then the failure.
    let steps: Vec<(usize, Option<bool>, PlanStatus)> = rec
        .records
        .iter()
        .map(|(n, _, p)| {
            (
                *n,
                p.steps
                    .get(n.wrapping_sub(1))
                    .and_then(|s| s.result.as_ref())
                    .map(|r| r.ok),
                p.status,
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            (0, None, PlanStatus::Executing),
            (1, Some(true), PlanStatus::Executing),
            (2, Some(false), PlanStatus::Failed)
        ]
    );

    execute::undo(&mut plan, &conns, &mut rec, &clock)
        .await
        .unwrap();
    assert_eq!(plan.status, PlanStatus::Undone);
    assert_eq!(moto.inline(&p, "KeywardContainDenyAll").await, None);
    assert!(plan.steps[1].undo_result.is_none() && plan.steps[2].undo_result.is_none());
}
