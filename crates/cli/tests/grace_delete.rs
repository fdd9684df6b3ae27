//! Deletion after the grace period, through the binary on moto (`KEYWARD_TEST_AWS_ENDPOINT`
//! with the `AWS_*` variables of `moto-up`'s env file; skipped without them), with the
//! policies read from a `keyward.yaml` (`--config`):
//! - a retired user (password, group, attached and inline policies, an inactive key) is not
//!   deleted while its grace period runs, and is deleted with all of it once it is over;
//! - a retired user someone re-enabled by hand (the deny-all policy removed) is refused;
//! - a rotation's old key is deleted once its grace period is over, the new key kept.

#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::moto::{ACCT, DAY, Moto, call};
use common::{keyward, text};
use serde_json::{Value, json};

impl Moto {
    fn exists(&self, user: &str) -> bool {
        self.rt
            .block_on(self.iam.get_user().user_name(user).send())
            .is_ok()
    }
}

fn run(data: &Path, args: &[&str]) -> String {
    let out = keyward(data, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn a_retired_user_is_deleted_after_its_grace_period_and_one_re_enabled_by_hand_is_not() {
    let Some(m) = Moto::from_env() else { return };
    let tag = m.now.to_string();
    let (gone, kept, busy, exempt) = (
        format!("old-etl-{tag}"),
        format!("old-report-{tag}"),
        format!("busy-{tag}"),
        format!("break-in-case-{tag}"),
    );
    let keys: Vec<String> = [&gone, &kept, &busy, &exempt]
        .iter()
        .map(|u| m.user_with_key(u))
        .collect();
    // What IAM makes a person remove before DeleteUser: a password, a group, policies.
    m.rt.block_on(async {
        let group = format!("etl-{tag}");
        m.iam.create_group().group_name(&group).send().await.unwrap();
        m.iam
            .add_user_to_group()
            .group_name(&group)
            .user_name(&gone)
            .send()
            .await
            .unwrap();
        m.iam
            .create_login_profile()
            .user_name(&gone)
            .password("Old-password-123!")
            .send()
            .await
            .unwrap();
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        let policy = m
            .iam
            .create_policy()
            .policy_name(format!("etl-read-{tag}"))
            .policy_document(doc)
            .send()
            .await
            .unwrap();
        m.iam
            .attach_user_policy()
            .user_name(&gone)
            .policy_arn(policy.policy().unwrap().arn().unwrap())
            .send()
            .await
            .unwrap();
        m.iam
            .put_user_policy()
            .user_name(&gone)
            .policy_name("etl-inline")
            .policy_document(doc)
            .send()
            .await
            .unwrap();
    });

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let trail = dir.path().join("trail.json");
    let now = m.now;
    let doc = json!({"Records": [
        call(&gone, &keys[0], now - 100 * DAY, "1"),
        call(&kept, &keys[1], now - 100 * DAY, "2"),
        call(&busy, &keys[2], now - DAY / 24, "3"),
        call(&exempt, &keys[3], now - 100 * DAY, "4"),
    ]});
    std::fs::write(&trail, doc.to_string()).unwrap();
    // The policies from a file: a 10-day grace period, one unused user exempt.
    let config = dir.path().join("keyward.yaml");
    std::fs::write(
        &config,
        "lifecycle:\n  unused_days: 30\n  grace_days: 10\n  exempt: [\"break-in-case-*\"]\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    run(&data, &["ingest", trail.to_str().unwrap()]);
    let planned: Value = serde_json::from_str(&run(
        &data,
        &["--config", cfg, "lifecycle", "plan", "--format", "json"],
    ))
    .unwrap();
    let shown = planned.to_string();
    assert_eq!(planned["retire"].as_array().unwrap().len(), 2, "{shown}");
    assert!(
        shown.contains(&format!(
            "\"identity\":\"arn:aws:iam::{ACCT}:user/{exempt}\",\"why\":\"exempt (lifecycle.exempt break-in-case-*)\""
        )),
        "{shown}"
    );
    run(
        &data,
        &["--config", cfg, "lifecycle", "run", "--execute", "--yes"],
    );
    assert_eq!(m.keys(&gone)[0].1, "Inactive");
    assert_eq!(m.keys(&kept)[0].1, "Inactive");
    assert_eq!(
        m.keys(&exempt)[0].1,
        "Active",
        "exempt by the configuration"
    );

    // Within the grace period: nothing is due for deletion.
    let at = |days: i64| keyward_model::time::format(now + days * DAY);
    let soon: Value = serde_json::from_str(&run(
        &data,
        &[
            "--config",
            cfg,
            "lifecycle",
            "plan",
            "--as-of",
            &at(5),
            "--format",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(soon["delete"], json!([]), "{soon}");
    assert_eq!(soon["grace_running"].as_array().unwrap().len(), 2, "{soon}");

    // Someone gives `kept` back by hand (the deny-all policy removed, its key active).
    m.rt.block_on(async {
        m.iam
            .delete_user_policy()
            .user_name(&kept)
            .policy_name("KeywardContainDenyAll")
            .send()
            .await
            .unwrap();
    });

    let later = at(40);
    let due: Value = serde_json::from_str(&run(
        &data,
        &[
            "--config",
            cfg,
            "lifecycle",
            "plan",
            "--as-of",
            &later,
            "--format",
            "json",
        ],
    ))
    .unwrap();
    let shown = due.to_string();
    assert_eq!(due["delete"].as_array().unwrap().len(), 2, "{shown}");

    let out = keyward(
        &data,
        &[
            "--config",
            cfg,
            "lifecycle",
            "run",
            "--execute",
            "--yes",
            "--as-of",
            &later,
        ],
    );
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "one deletion was refused: {said}");
    assert!(!m.exists(&gone), "the retired user is deleted: {said}");
    assert!(
        m.exists(&kept),
        "the user re-enabled by hand is kept: {said}"
    );
    assert!(said.contains("re-enabled"), "{said}");
    assert!(m.exists(&busy));

    // The deletion is made once: a second run has nothing left to delete.
    let again: Value = serde_json::from_str(&run(
        &data,
        &[
            "--config",
            cfg,
            "lifecycle",
            "plan",
            "--as-of",
            &later,
            "--format",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(again["delete"], json!([]), "{again}");
    // Audited, with the snapshot taken before.
    let audit = run(&data, &["audit", "export"]);
    assert_eq!(audit.matches("lifecycle.delete_plan").count(), 2, "{audit}");
    let snapshots = audit
        .lines()
        .filter(|l| l.contains("respond.evidence"))
        .count();
    assert_eq!(snapshots, 4, "two retirements, two deletions: {audit}");
}

#[test]
fn a_rotation_s_old_key_is_deleted_after_its_grace_period() {
    let Some(m) = Moto::from_env() else { return };
    let user = format!("ci-deployer-{}", m.now);
    let old = m.user_with_key(&user);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("keyward.yaml");
    std::fs::write(&config, "rotation:\n  grace_days: 3\n").unwrap();
    let cfg = config.to_str().unwrap();
    run(
        &data,
        &["--config", cfg, "rotate", &user, "--execute", "--yes"],
    );
    let keys = m.keys(&user);
    assert_eq!(keys.len(), 2, "{keys:?}");
    let new = keys.iter().find(|(id, _)| *id != old).unwrap().0.clone();
    assert!(keys.contains(&(old.clone(), "Inactive".into())), "{keys:?}");

    let at = |days: i64| keyward_model::time::format(m.now + days * DAY);
    let early: Value = serde_json::from_str(&run(
        &data,
        &["lifecycle", "plan", "--as-of", &at(2), "--format", "json"],
    ))
    .unwrap();
    assert_eq!(
        early["delete"],
        json!([]),
        "3 days from the config: {early}"
    );

    run(
        &data,
        &["lifecycle", "run", "--execute", "--yes", "--as-of", &at(4)],
    );
    assert_eq!(
        m.keys(&user),
        [(new, "Active".to_owned())],
        "only the old key is deleted"
    );
}
