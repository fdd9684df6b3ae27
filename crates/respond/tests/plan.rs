//! Plans from inventory facts alone (no platform): containment per credential type, the
//! blast radius since a time, protected identities, and the JSON contract
//! (`id`, `steps[]` with `action`, `target`, `command`, `undo`).

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use keyward_graph::{Graph, Inventory};
use keyward_model::{Identity, IdentityKind, Platform};
use keyward_respond::plan::{K8sStrategy, PlanError, Protected, Request, build};
use keyward_respond::{Action, IamPrincipal};

const ACCT: &str = "111122223333";
const NOW: i64 = 1_800_000_000_500;

fn ident(id: &str, kind: IdentityKind, name: &str) -> Identity {
    let mut i = Identity::new(id.into(), Platform::Aws, kind, name.into());
    i.account = Some(ACCT.into());
    i
}

fn role(name: &str) -> Identity {
    ident(
        &format!("arn:aws:iam::{ACCT}:role/{name}"),
        IdentityKind::IamRole,
        name,
    )
}

fn plan_for(
    inv: Vec<Identity>,
    id: &str,
    since: Option<i64>,
) -> Result<keyward_respond::Plan, PlanError> {
    let inv = Inventory::new(inv);
    let protected = Protected::new(&[]).unwrap();
    build(
        &inv,
        &Graph::new(),
        &Request {
            identity: id,
            finding: None,
            since,
            now: NOW,
            actor: "test",
            protected: &protected,
            k8s: K8sStrategy::Contain,
            events: &[],
        },
    )
}

#[test]
fn a_session_is_contained_by_its_roles_token_issue_time_deny() {
    let r = role("deploy");
    let mut s = ident(
        &format!("arn:aws:sts::{ACCT}:assumed-role/deploy/ci"),
        IdentityKind::StsSession,
        "deploy/ci",
    );
    s.parent = Some(r.id.clone());
    let p = plan_for(vec![r, s.clone()], &s.id, None).unwrap();
    assert_eq!(p.steps.len(), 1);
    match &p.steps[0].action {
        Action::RevokeSessions {
            role,
            issued_before,
            ..
        } => {
            assert_eq!(role, "deploy");
            // The next whole second: a session minted in the second containment starts is
            // denied too.
            assert_eq!(*issued_before, 1_800_000_001_000);
        }
        a => panic!("{a:?}"),
    }
    assert!(p.steps[0].command[0].contains("aws:TokenIssueTime"));
    assert!(
        p.steps[0].command[0].contains("2027-01-15T08:00:01Z"),
        "{}",
        p.steps[0].command[0]
    );
}

#[test]
fn a_web_identity_subject_is_denied_in_each_roles_trust() {
    let r = role("gha-deploy");
    let mut sub = ident(
        "oidc:token.actions.githubusercontent.com#repo:acme/api:ref:refs/heads/main",
        IdentityKind::OidcSubject,
        "repo:acme/api:ref:refs/heads/main",
    );
    sub.issuer = Some("https://token.actions.githubusercontent.com".into());
    sub.subject = Some("repo:acme/api:ref:refs/heads/main".into());
    sub.links.insert(r.id.clone());
    let p = plan_for(vec![r, sub.clone()], &sub.id, None).unwrap();
    let names: Vec<_> = p.steps.iter().map(|s| s.action.name()).collect();
    assert_eq!(names, ["deny_web_identity_subject", "revoke_sessions"]);
    match &p.steps[0].action {
        Action::DenyWebIdentitySubject {
            provider,
            subject,
            role,
            ..
        } => {
            assert_eq!(provider, "token.actions.githubusercontent.com");
            assert_eq!(subject, "repo:acme/api:ref:refs/heads/main");
            assert_eq!(role, "gha-deploy");
        }
        a => panic!("{a:?}"),
    }
}

#[test]
fn blast_radius_takes_what_was_created_after_since_only() {
    let attacker = role("web");
    let mut session = ident(
        &format!("arn:aws:sts::{ACCT}:assumed-role/web/i-0abc"),
        IdentityKind::StsSession,
        "web/i-0abc",
    );
    session.parent = Some(attacker.id.clone());
    let mut new_user = ident(
        &format!("arn:aws:iam::{ACCT}:user/backup-svc"),
        IdentityKind::IamUser,
        "backup-svc",
    );
    new_user.created_by.insert(session.id.clone());
    new_user.created = Some(NOW - 1_000);
    let mut old_user = ident(
        &format!("arn:aws:iam::{ACCT}:user/old"),
        IdentityKind::IamUser,
        "old",
    );
    old_user.created_by.insert(session.id.clone());
    old_user.created = Some(NOW - 10_000_000);
    let p = plan_for(
        vec![attacker.clone(), session, new_user, old_user],
        &attacker.id,
        Some(NOW - 60_000),
    )
    .unwrap();
    let targets: Vec<_> = p
        .steps
        .iter()
        .map(|s| (s.action.name(), s.target.as_str()))
        .collect();
    assert!(
        targets.contains(&("deny_all", "arn:aws:iam::111122223333:user/backup-svc")),
        "{targets:?}"
    );
    assert!(
        !targets.iter().any(|(_, t)| t.contains("user/old")),
        "{targets:?}"
    );
    assert!(p.steps.iter().any(|s| matches!(&s.action,
        Action::DenyAll { principal: IamPrincipal::Role(r), .. } if r == "web")));
}

/// One switch reaches GitHub too: the deploy keys of the subject's repository, and a
/// deploy key itself, become the `gh api` calls that delete them (no GitHub connector).
#[test]
fn github_deploy_keys_are_commands_to_run() {
    let r = role("gha-deploy");
    let mut sub = ident(
        "oidc:token.actions.githubusercontent.com#repo:acme/api:ref:refs/heads/main",
        IdentityKind::OidcSubject,
        "repo:acme/api:ref:refs/heads/main",
    );
    sub.issuer = Some("https://token.actions.githubusercontent.com".into());
    sub.subject = Some("repo:acme/api:ref:refs/heads/main".into());
    sub.links.insert(r.id.clone());
    let key = |repo: &str, id: &str| {
        let mut k = ident(
            &format!("github:deploy-key/{repo}/{id}"),
            IdentityKind::DeployKey,
            "ci deploy",
        );
        k.native_id = Some(id.into());
        k.details.insert(
            "deploy_key".into(),
            serde_json::json!({"repository": repo, "read_only": false}),
        );
        k
    };
    let mine = key("acme/api", "101");
    let other = key("acme/web", "202");
    let p = plan_for(vec![r, sub.clone(), mine.clone(), other], &sub.id, None).unwrap();
    let names: Vec<_> = p.steps.iter().map(|s| s.action.name()).collect();
    assert_eq!(
        names,
        ["review", "deny_web_identity_subject", "revoke_sessions"]
    );
    assert_eq!(
        p.steps[0].command[0],
        "gh api -X DELETE repos/acme/api/keys/101  # Keyward has no GitHub connector: run it by hand; adding the public key again undoes it"
    );
    let p = plan_for(vec![mine.clone()], &mine.id, None).unwrap();
    assert_eq!(p.steps.len(), 1);
    assert!(p.steps[0].command[0].starts_with("gh api -X DELETE repos/acme/api/keys/101"));
}

#[test]
fn protected_identities_and_unsupported_kinds_are_refused() {
    let bg = role("break-glass-admin");
    let err = plan_for(vec![bg.clone()], &bg.id, None).unwrap_err();
    assert!(matches!(err, PlanError::Protected { .. }), "{err}");
    let gh = ident("github:user/octocat", IdentityKind::GithubUser, "octocat");
    let err = plan_for(vec![gh.clone()], &gh.id, None).unwrap_err();
    assert!(matches!(err, PlanError::Unsupported { .. }), "{err}");
}

#[test]
fn the_json_contract_and_hostile_names_quoted() {
    let mut u = ident(
        &format!("arn:aws:iam::{ACCT}:user/x'; rm -rf ~"),
        IdentityKind::IamUser,
        "x'; rm -rf ~",
    );
    u.credentials.push(keyward_model::Credential {
        id: "AKIAEXAMPLEKEY000001".into(),
        kind: keyward_model::CredentialKind::AccessKey,
        status: keyward_model::CredentialStatus::Active,
        created: None,
        last_used: None,
        last_used_region: None,
        last_used_service: None,
    });
    let p = plan_for(vec![u.clone()], &u.id, None).unwrap();
    let v = serde_json::to_value(&p).unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("rp-"));
    for s in v["steps"].as_array().unwrap() {
        for k in ["action", "target", "command", "undo"] {
            assert!(s.get(k).is_some(), "{k} in {s}");
        }
    }
    let deactivate = p
        .steps
        .iter()
        .find(|s| s.action.name() == "deactivate_access_key")
        .unwrap();
    assert!(
        deactivate.command[0].contains(r"--user-name 'x'\''; rm -rf ~'"),
        "{}",
        deactivate.command[0]
    );
    // A plan reads back as it was written.
    let back: keyward_respond::Plan = serde_json::from_value(v).unwrap();
    assert_eq!(back, p);
}

#[test]
fn a_review_step_survives_the_stores_round_trip() {
    let mut p = plan_for(
        vec![role("web")],
        &format!("arn:aws:iam::{ACCT}:role/web"),
        None,
    )
    .unwrap();
    p.steps.push(keyward_respond::Step::new(
        Action::Review {
            what: "PutRolePolicy on role web (event e1)".into(),
            inspect: "aws iam list-role-policies --role-name web".into(),
        },
        "blast radius",
    ));
    let text = serde_json::to_string(&p).unwrap();
    let back: keyward_respond::Plan = serde_json::from_str(&text).unwrap();
    assert_eq!(back, p);
    let last = back.steps.last().unwrap();
    assert_eq!(last.command, ["aws iam list-role-policies --role-name web"]);
}
