//! Self-healing on moto (`KEYWARD_TEST_AWS_ENDPOINT`; skipped without it): a role and a user
//! whose controls were loosened after their baseline was approved — an admin policy
//! attached, an inline policy added, the trust policy opened, the boundary removed, a group
//! joined, a key created — are put back by the revert plan, verified from the API, and the
//! plan's undo puts the drifted state back.

#![cfg(feature = "aws")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod moto;

use keyward_respond::IamPrincipal;
use keyward_respond::PlanStatus;
use keyward_respond::execute::{execute, undo};
use keyward_respond::restore::{self, items};
use moto::{ACCOUNT, Mem, Moto, clock, connectors, now, trust_for, unique};
use serde_json::{Value, json};

async fn managed_policy(m: &Moto, name: &str) -> String {
    let doc = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]});
    m.root
        .create_policy()
        .policy_name(name)
        .policy_document(doc.to_string())
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_loosened_role_and_user_are_reverted_to_their_baseline_and_undo_restores_the_drift() {
    let Some(m) = Moto::start(false).await else {
        return;
    };
    let (_, _, aws) = m.admin().await;
    let boundary = managed_policy(&m, &unique("boundary")).await;
    let readonly = managed_policy(&m, &unique("readonly")).await;
    // Moto loads no AWS-managed policies: a customer-managed one stands in for the admin's.
    let admin = managed_policy(&m, &unique("everything")).await;

    // The approved state.
    let role = unique("app");
    m.role(
        &role,
        &trust_for(&format!("arn:aws:iam::{ACCOUNT}:user/deployer")),
    )
    .await;
    m.root
        .attach_role_policy()
        .role_name(&role)
        .policy_arn(&readonly)
        .send()
        .await
        .unwrap();
    m.root
        .put_role_permissions_boundary()
        .role_name(&role)
        .permissions_boundary(&boundary)
        .send()
        .await
        .unwrap();
    let user = unique("ci");
    m.user(&user).await;
    let group = unique("deployers");
    let admins = unique("admins");
    for g in [&group, &admins] {
        m.root.create_group().group_name(g).send().await.unwrap();
    }
    m.root
        .add_user_to_group()
        .user_name(&user)
        .group_name(&group)
        .send()
        .await
        .unwrap();
    let rp = IamPrincipal::Role(role.clone());
    let up = IamPrincipal::User(user.clone());
    let role_baseline = aws.governed_facts(&rp).await.unwrap();
    let user_baseline = aws.governed_facts(&up).await.unwrap();
    assert_eq!(
        items(&role_baseline["attached_policies"]),
        vec![readonly.clone()]
    );
    assert_eq!(role_baseline["permissions_boundary"], boundary.as_str());

    // An admin turns the controls off.
    m.root
        .attach_role_policy()
        .role_name(&role)
        .policy_arn(&admin)
        .send()
        .await
        .unwrap();
    m.root
        .detach_role_policy()
        .role_name(&role)
        .policy_arn(&readonly)
        .send()
        .await
        .unwrap();
    m.root
        .put_role_policy()
        .role_name(&role)
        .policy_name("backdoor")
        .policy_document(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}).to_string())
        .send()
        .await
        .unwrap();
    let open_trust = trust_for("*");
    m.root
        .update_assume_role_policy()
        .role_name(&role)
        .policy_document(&open_trust)
        .send()
        .await
        .unwrap();
    m.root
        .delete_role_permissions_boundary()
        .role_name(&role)
        .send()
        .await
        .unwrap();
    m.root
        .add_user_to_group()
        .user_name(&user)
        .group_name(&admins)
        .send()
        .await
        .unwrap();
    let extra = m.key(&user).await;
    let drifted_role = aws.governed_facts(&rp).await.unwrap();

    let c = connectors(aws);
    let aws = c.aws.as_ref().unwrap();
    for (p, baseline, identity) in [
        (
            &rp,
            &role_baseline,
            format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
        ),
        (
            &up,
            &user_baseline,
            format!("arn:aws:iam::{ACCOUNT}:user/{user}"),
        ),
    ] {
        let live = aws.governed_facts(p).await.unwrap();
        let mut plan = restore::plan(&restore::Request {
            account: Some(ACCOUNT),
            identity: &identity,
            principal: p.clone(),
            approved: baseline,
            live: &live,
            why: "test",
            now: now(),
            actor: "test",
        })
        .expect("drift found");
        let mut mem = Mem::default();
        execute(&mut plan, &c, &mut mem, &clock).await.unwrap();
        assert_eq!(plan.status, PlanStatus::Executed, "{plan:#?}");
        let now_facts = aws.governed_facts(p).await.unwrap();
        assert_eq!(&now_facts, baseline, "{} is back to its baseline", p.name());
        // Nothing drifted any more: no plan.
        assert!(
            restore::plan(&restore::Request {
                account: Some(ACCOUNT),
                identity: &identity,
                principal: p.clone(),
                approved: baseline,
                live: &now_facts,
                why: "test",
                now: now(),
                actor: "test",
            })
            .is_none()
        );
        if let IamPrincipal::Role(_) = p {
            // Undo puts the drifted state back, the backdoor's document included.
            undo(&mut plan, &c, &mut mem, &clock).await.unwrap();
            assert_eq!(plan.status, PlanStatus::Undone);
            let back = aws.governed_facts(p).await.unwrap();
            assert_eq!(back, drifted_role);
            let doc: Value =
                serde_json::from_str(&moto::decode_pct(&m.inline(p, "backdoor").await.unwrap()))
                    .unwrap();
            assert_eq!(doc["Statement"][0]["Action"], "*");
        } else {
            let statuses = m.key_statuses(&user).await;
            assert!(statuses.contains(&(extra.id.clone(), "Inactive".into())));
        }
    }
}
