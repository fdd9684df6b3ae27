//! The identity graph: edges derived from identities, objects and IAM snapshots, and the
//! analyses over them (ownership chains, blast radius, containment, foreign trusts).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keyward_graph::analysis::{
    BlastOptions, Coverage, OrphanReason, blast_radius, foreign_trusts, orphan_reason, ownership,
};
use keyward_graph::derive::{self, Names};
use keyward_graph::iam::authz::Snapshot;
use keyward_graph::{EdgeKind, Graph, NodeKind, NodeSpec};
use keyward_model::{Identity, IdentityKind, Platform, SnapshotObject};
use keyward_testkit::iam::{ACCT, arn, doc};
use serde_json::json;

fn ident(id: &str, kind: IdentityKind, name: &str) -> Identity {
    Identity::new(id.into(), Platform::Aws, kind, name.into())
}

fn build(
    identities: &[Identity],
    objects: &[SnapshotObject],
    iam: Option<&serde_json::Value>,
) -> Graph {
    let names = Names::new(identities);
    let mut g = Graph::new();
    for i in identities {
        g.set_edges(&derive::identity_node(i), derive::identity_edges(i));
    }
    for o in objects {
        if o.kind == "person" && o.doc["status"] == "departed" {
            let n = g.ensure(&derive::object_node(o));
            g.set_gone(n, true);
        }
        if let Some(e) = derive::object_edges(o, &names) {
            g.set_edges(&derive::object_node(o), e);
        }
    }
    if let Some(iam) = iam {
        let snap = Snapshot::new(iam);
        g.set_edges(
            &derive::account_node(ACCT),
            derive::account_edges(ACCT, &snap, &names),
        );
    }
    g
}

fn obj(kind: &str, id: &str, scope: Option<&str>, doc: serde_json::Value) -> SnapshotObject {
    SnapshotObject {
        kind: kind.into(),
        id: id.into(),
        scope: scope.map(str::to_owned),
        doc,
    }
}

fn has(g: &Graph, from: &str, kind: EdgeKind, to: &str) -> bool {
    let Some(a) = g.find(from) else { return false };
    g.out_edges(a).any(|e| e.kind == kind && g.key(e.to) == to)
}

/// The estate of the framework's example: a Jenkins deploy service account bound to a
/// Role, run by a deployment labelled with its team, and people in a directory.
fn jenkins() -> (Vec<Identity>, Vec<SnapshotObject>) {
    let sa_id = "k8s:prod/system:serviceaccount:ci:jenkins-deploy-sa";
    let mut sa = ident(sa_id, IdentityKind::ServiceAccount, "jenkins-deploy-sa");
    sa.platform = Platform::Kubernetes;
    sa.namespace = Some("ci".into());
    sa.cluster = Some("prod".into());
    let objects = vec![
        obj(
            "k8s:RoleBinding",
            "prod/ci/jenkins-deploy",
            Some("prod"),
            json!({"kind": "RoleBinding", "metadata": {"name": "jenkins-deploy", "namespace": "ci"},
                   "roleRef": {"kind": "Role", "name": "deployer"},
                   "subjects": [{"kind": "ServiceAccount", "name": "jenkins-deploy-sa"}]}),
        ),
        obj(
            "k8s:Role",
            "prod/ci/deployer",
            Some("prod"),
            json!({"kind": "Role", "metadata": {"name": "deployer", "namespace": "ci"},
                   "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "update", "patch"]},
                             {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
        ),
        obj(
            "k8s:Deployment",
            "prod/ci/jenkins",
            Some("prod"),
            json!({"kind": "Deployment", "metadata": {"name": "jenkins", "namespace": "ci",
                     "labels": {"team": "platform", "owner": "alice@acme.example"}},
                   "spec": {"template": {"spec": {"serviceAccountName": "jenkins-deploy-sa"}}}}),
        ),
        obj(
            "person",
            "alice@acme.example",
            None,
            json!({"email": "alice@acme.example", "name": "Alice", "team": "platform", "status": "active"}),
        ),
    ];
    (vec![sa], objects)
}

#[test]
fn jenkins_chain_to_team_and_person() {
    let (ids, objects) = jenkins();
    let g = build(&ids, &objects, None);
    let sa = "k8s:prod/system:serviceaccount:ci:jenkins-deploy-sa";
    assert!(has(
        &g,
        sa,
        EdgeKind::BoundTo,
        "k8s-obj:prod/RoleBinding/ci/jenkins-deploy"
    ));
    assert!(has(
        &g,
        "k8s-obj:prod/RoleBinding/ci/jenkins-deploy",
        EdgeKind::BoundTo,
        "k8s-obj:prod/Role/ci/deployer"
    ));
    assert!(has(
        &g,
        "k8s-obj:prod/Role/ci/deployer",
        EdgeKind::Can,
        "k8s-res:prod/ci/core/secrets"
    ));
    assert!(has(
        &g,
        "k8s-obj:prod/Deployment/ci/jenkins",
        EdgeKind::RunsAs,
        sa
    ));
    let own = ownership(&g, g.find(sa).unwrap());
    assert_eq!(own.owner.as_deref(), Some("alice@acme.example"));
    assert_eq!(own.team.as_deref(), Some("platform"));
    let alice = own.primary().unwrap();
    assert_eq!(alice.team.as_deref(), Some("platform"));
    // SA ← runs_as ← deployment ← owns(label owner) ← alice
    let hops: Vec<(EdgeKind, bool)> = alice.chain.iter().map(|h| (h.edge, h.reversed)).collect();
    assert_eq!(hops, vec![(EdgeKind::RunsAs, true), (EdgeKind::Owns, true)]);
    assert_eq!(alice.chain[1].source.as_deref(), Some("label owner"));
    assert!(
        (alice.confidence - 0.86).abs() < 0.01,
        "{}",
        alice.confidence
    );
}

#[test]
fn departed_owner_makes_an_orphan() {
    let (ids, mut objects) = jenkins();
    objects[3].doc["status"] = json!("departed");
    // Without the team label, only the departed person remains.
    objects[2].doc["metadata"]["labels"] = json!({"owner": "alice@acme.example"});
    let g = build(&ids, &objects, None);
    let sa = g
        .find("k8s:prod/system:serviceaccount:ci:jenkins-deploy-sa")
        .unwrap();
    let own = ownership(&g, sa);
    assert!(own.primary().unwrap().departed);
    let cov = Coverage::of(&g);
    assert_eq!(
        orphan_reason(
            &g,
            sa,
            IdentityKind::ServiceAccount,
            Some("prod"),
            &own,
            &cov,
            false
        ),
        Some(OrphanReason::OwnerDeparted)
    );
}

#[test]
fn service_account_without_workload_is_an_orphan_when_workloads_are_known() {
    let (mut ids, objects) = jenkins();
    let mut idle = ident(
        "k8s:prod/system:serviceaccount:ci:old-builder",
        IdentityKind::ServiceAccount,
        "old-builder",
    );
    idle.namespace = Some("ci".into());
    ids.push(idle);
    let g = build(&ids, &objects, None);
    let cov = Coverage::of(&g);
    let n = g
        .find("k8s:prod/system:serviceaccount:ci:old-builder")
        .unwrap();
    let own = ownership(&g, n);
    assert_eq!(
        orphan_reason(
            &g,
            n,
            IdentityKind::ServiceAccount,
            Some("prod"),
            &own,
            &cov,
            false
        ),
        Some(OrphanReason::NoWorkload)
    );
    // Seen acting but owned by nobody (a shadow account): still no workload.
    assert_eq!(
        orphan_reason(
            &g,
            n,
            IdentityKind::ServiceAccount,
            Some("prod"),
            &own,
            &cov,
            true
        ),
        Some(OrphanReason::NoWorkload)
    );
    // The same in a cluster whose workloads were never listed: unknown, so not an orphan
    // for that reason.
    assert_eq!(
        orphan_reason(
            &g,
            n,
            IdentityKind::ServiceAccount,
            Some("dev"),
            &own,
            &cov,
            false
        ),
        Some(OrphanReason::Unreferenced)
    );
}

fn iam_estate() -> serde_json::Value {
    let trust_account = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{ACCT}:root")}, "Action": "sts:AssumeRole"}]});
    let trust_partner = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": "x1"}}}]});
    let trust_github = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::{ACCT}:oidc-provider/token.actions.githubusercontent.com")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/infra:*"}}}]});
    let trust_lambda = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let role = |name: &str, trust: &serde_json::Value, policy: serde_json::Value| {
        json!({"RoleName": name, "Arn": arn("role", name), "AssumeRolePolicyDocument": trust,
               "RolePolicyList": [{"PolicyName": "p", "PolicyDocument": policy}],
               "AttachedManagedPolicies": []})
    };
    json!({
        "UserDetailList": [{
            "UserName": "ci-bot", "Arn": arn("user", "ci-bot"), "GroupList": ["deployers"],
            "UserPolicyList": [], "AttachedManagedPolicies": []
        }],
        "GroupDetailList": [{
            "GroupName": "deployers", "Arn": arn("group", "deployers"),
            "GroupPolicyList": [{"PolicyName": "assume", "PolicyDocument": doc(json!([
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": arn("role", "deployer")}
            ]))}],
            "AttachedManagedPolicies": []
        }],
        "RoleDetailList": [
            role("deployer", &trust_account, doc(json!([
                {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::artifacts/*"},
                {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::artifacts/*"},
                {"Effect": "Allow", "Action": "iam:CreateAccessKey", "Resource": arn("user", "ci-bot")}
            ]))),
            role("partner-audit", &trust_partner, doc(json!([
                {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}
            ]))),
            role("gh-infra", &trust_github, doc(json!([
                {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-*"}
            ]))),
            role("old-fn", &trust_lambda, doc(json!([
                {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}
            ])))
        ],
        "Policies": []
    })
}

#[test]
fn iam_snapshot_edges_evaluate_policies_and_trust() {
    let mut subj = ident(
        "oidc:token.actions.githubusercontent.com#repo:acme/infra:ref:refs/heads/main",
        IdentityKind::OidcSubject,
        "repo:acme/infra:ref:refs/heads/main",
    );
    subj.issuer = Some("https://token.actions.githubusercontent.com".into());
    subj.subject = Some("repo:acme/infra:ref:refs/heads/main".into());
    let g = build(&[subj.clone()], &[], Some(&iam_estate()));
    let user = arn("user", "ci-bot");
    let deployer = arn("role", "deployer");
    assert!(has(
        &g,
        &user,
        EdgeKind::MemberOf,
        &arn("group", "deployers")
    ));
    // Group-inherited permission + trust of the account: ci-bot can assume deployer.
    assert!(has(&g, &user, EdgeKind::CanAssume, &deployer));
    // Explicit deny removes PutObject; GetObject stays.
    let d = g.find(&deployer).unwrap();
    let s3 = g
        .out_edges(d)
        .find(|e| g.key(e.to) == "resource:arn:aws:s3:::artifacts/*")
        .unwrap();
    assert_eq!(s3.detail.unwrap().actions, vec!["s3:GetObject"]);
    // The OIDC subject seen in CloudTrail matches the trust's pattern.
    assert!(has(
        &g,
        &subj.id,
        EdgeKind::CanAssume,
        &arn("role", "gh-infra")
    ));
    assert!(has(&g, "github:acme/infra", EdgeKind::RunsAs, &subj.id));
    // Cross-account trust, unless allow-listed.
    let foreign = foreign_trusts(&g, &[]);
    assert_eq!(foreign.len(), 1);
    assert_eq!(foreign[0].trusted_account, "999988887777");
    assert_eq!(
        foreign[0].conditions,
        vec!["StringEquals sts:ExternalId x1"]
    );
    assert!(foreign_trusts(&g, &["999988887777".into()]).is_empty());
}

#[test]
fn blast_radius_follows_assumption_and_escalation() {
    let g = build(&[], &[], Some(&iam_estate()));
    let user = g.find(&arn("user", "ci-bot")).unwrap();
    let b = blast_radius(&g, user, BlastOptions::default());
    let deployer = b
        .root
        .children
        .iter()
        .find(|c| c.node == arn("role", "deployer"))
        .expect("deployer reachable");
    assert_eq!(deployer.via, Some(EdgeKind::CanAssume));
    let bucket = deployer
        .children
        .iter()
        .find(|c| c.node == "resource:arn:aws:s3:::artifacts/*")
        .unwrap();
    assert_eq!(bucket.actions, vec!["s3:GetObject"]);
    assert!(b.resources >= 1 && b.identities >= 1);
}

#[test]
fn containment_lists_only_what_was_created_since() {
    let mut g = Graph::new();
    let user = NodeSpec::new("u", NodeKind::Identity(IdentityKind::IamUser), "u");
    let k_old = NodeSpec::new("AKIAOLD", NodeKind::Identity(IdentityKind::AccessKey), "");
    let k_new = NodeSpec::new("AKIANEW", NodeKind::Identity(IdentityKind::AccessKey), "");
    let backdoor = NodeSpec::new("b", NodeKind::Identity(IdentityKind::IamUser), "b");
    let bkey = NodeSpec::new("AKIAB", NodeKind::Identity(IdentityKind::AccessKey), "");
    g.observe(EdgeKind::Created, &user, &k_old, 100, Some("e1"));
    g.observe(EdgeKind::Created, &user, &k_new, 500, Some("e2"));
    g.observe(EdgeKind::Created, &user, &backdoor, 510, Some("e3"));
    g.observe(EdgeKind::Created, &backdoor, &bkey, 520, Some("e4"));
    let b = blast_radius(
        &g,
        g.find("u").unwrap(),
        BlastOptions {
            since: Some(400),
            ..BlastOptions::default()
        },
    );
    let mut got: Vec<&str> = b.root.children.iter().map(|c| c.node.as_str()).collect();
    got.sort();
    assert_eq!(got, vec!["AKIANEW", "b"]);
    let bd = b.root.children.iter().find(|c| c.node == "b").unwrap();
    assert_eq!(bd.children[0].node, "AKIAB");
    assert_eq!(b.identities, 3);
}

#[test]
fn lambda_role_without_function_is_an_orphan() {
    let mut live = ident(&arn("role", "live-fn"), IdentityKind::IamRole, "live-fn");
    live.account = Some(ACCT.into());
    let fns = vec![obj(
        "lambda_function",
        "arn:aws:lambda:us-east-1:111122223333:function:live",
        Some(ACCT),
        json!({"FunctionName": "live", "FunctionArn": "arn:aws:lambda:us-east-1:111122223333:function:live",
               "Role": "arn:aws:iam::111122223333:role/service/live-fn"}),
    )];
    let g = build(&[live], &fns, Some(&iam_estate()));
    let cov = Coverage::of(&g);
    let old = g.find(&arn("role", "old-fn")).unwrap();
    let own = ownership(&g, old);
    assert_eq!(
        orphan_reason(
            &g,
            old,
            IdentityKind::IamRole,
            Some(ACCT),
            &own,
            &cov,
            false
        ),
        Some(OrphanReason::FunctionDeleted)
    );
    // The path in the function's role ARN is dropped: it is the same role.
    assert!(has(
        &g,
        "lambda:arn:aws:lambda:us-east-1:111122223333:function:live",
        EdgeKind::RunsAs,
        &arn("role", "live-fn")
    ));
}

#[test]
fn iac_definition_and_codeowners_give_the_owner() {
    let mut role = ident(&arn("role", "deployer"), IdentityKind::IamRole, "deployer");
    role.account = Some(ACCT.into());
    let tf = obj(
        "tf_resource",
        "infra/iam.tf#aws_iam_role.deployer",
        None,
        json!({"address": "aws_iam_role.deployer", "type": "aws_iam_role", "name": "deployer",
               "file": "infra/iam.tf", "line": 12, "values": {"name": "deployer"}}),
    );
    let co = obj(
        "codeowners",
        "infra",
        None,
        json!({"file": "infra/CODEOWNERS", "root": "infra", "rules": [
            {"pattern": "*", "owners": ["@acme/everyone"], "line": 1},
            {"pattern": "*.tf", "owners": ["@acme/platform", "bob@acme.example"], "line": 2}
        ]}),
    );
    let names = Names::new([&role]);
    let mut g = Graph::new();
    g.set_edges(&derive::identity_node(&role), derive::identity_edges(&role));
    g.set_edges(
        &derive::object_node(&tf),
        derive::object_edges(&tf, &names).unwrap(),
    );
    let files = ["file:infra/iam.tf"];
    // A tiny stand-in for the CODEOWNERS matcher: `*` and `*.tf` only.
    let m = |p: &str, path: &str| p == "*" || (p == "*.tf" && path.ends_with(".tf"));
    g.set_edges(
        &derive::object_node(&co),
        derive::codeowners_edges(&co, &files, m),
    );
    let own = ownership(&g, g.find(&role.id).unwrap());
    assert_eq!(own.owner.as_deref(), Some("bob@acme.example"));
    assert_eq!(own.team.as_deref(), Some("@acme/platform"));
    let bob = own.primary().unwrap();
    let path: Vec<&str> = bob.chain.iter().map(|h| h.node.as_str()).collect();
    assert_eq!(
        path,
        vec![
            "tf:infra/iam.tf#aws_iam_role.deployer",
            "file:infra/iam.tf",
            "person:bob@acme.example"
        ]
    );
    assert_eq!(bob.chain[2].source.as_deref(), Some("infra/CODEOWNERS:2"));
}

#[test]
fn sessions_and_keys_inherit_ownership() {
    let mut user = ident(&arn("user", "deploy"), IdentityKind::IamUser, "deploy");
    user.tags
        .insert("Owner".into(), "carol@acme.example".into());
    let mut key = ident("AKIAEXAMPLE1", IdentityKind::AccessKey, "AKIAEXAMPLE1");
    key.parent = Some(user.id.clone());
    let g = build(&[user, key], &[], None);
    let own = ownership(&g, g.find("AKIAEXAMPLE1").unwrap());
    assert_eq!(own.owner.as_deref(), Some("carol@acme.example"));
    assert_eq!(own.primary().unwrap().chain.len(), 2);
}

#[test]
fn corpus_iam_fixture_builds_a_graph() {
    let Some(corpora) = keyward_testkit::corpora() else {
        eprintln!("skipped: ../shared/corpora not found");
        return;
    };
    let raw = std::fs::read(corpora.join("aws-iam-authz-small/small-authz-details.json")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let snap = Snapshot::new(&v);
    let names = Names::default();
    let edges = derive::account_edges("123456789012", &snap, &names);
    let mut g = Graph::new();
    g.set_edges(&derive::account_node("123456789012"), edges);
    // Every user in a group has its member_of edge; every role a trust edge.
    for u in v["UserDetailList"].as_array().unwrap() {
        let id = keyward_model::ids::canonical_iam_arn(u["Arn"].as_str().unwrap()).unwrap();
        for grp in u["GroupList"].as_array().unwrap() {
            assert!(g.find(&id).is_some_and(|n| g.out_edges(n).any(|e| {
                e.kind == EdgeKind::MemberOf
                    && g.key(e.to)
                        .ends_with(&format!("group/{}", grp.as_str().unwrap()))
            })));
        }
    }
    for r in v["RoleDetailList"].as_array().unwrap() {
        let id = keyward_model::ids::canonical_iam_arn(r["Arn"].as_str().unwrap()).unwrap();
        let n = g.find(&id).expect("role node");
        assert!(g.in_edges(n).any(|e| e.kind == EdgeKind::CanAssume), "{id}");
    }
    assert!(g.edges().any(|e| e.kind == EdgeKind::Can));
}

#[test]
fn trust_conditions_are_evaluated_per_principal() {
    // Trusts the account, but only CI roles by ARN pattern; the caller also needs
    // sts:AssumeRole in its own policies.
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{ACCT}:root")}, "Action": "sts:AssumeRole",
        "Condition": {"ArnLike": {"aws:PrincipalArn": format!("arn:aws:iam::{ACCT}:role/ci-*")}}}]});
    let assume_all = doc(json!([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]));
    let role = |name: &str, trust: serde_json::Value, policy: serde_json::Value| {
        json!({"RoleName": name, "Arn": arn("role", name), "AssumeRolePolicyDocument": trust,
               "RolePolicyList": [{"PolicyName": "p", "PolicyDocument": policy}],
               "AttachedManagedPolicies": []})
    };
    let lambda_trust = json!({"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let iam = json!({
        "UserDetailList": [], "GroupDetailList": [], "Policies": [],
        "RoleDetailList": [
            role("deploy", trust, doc(json!([{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]))),
            role("ci-runner", lambda_trust.clone(), assume_all.clone()),
            role("web-app", lambda_trust.clone(), assume_all.clone()),
            // Matches the pattern but may not call AssumeRole.
            role("ci-reader", lambda_trust, doc(json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]))),
        ]
    });
    let g = build(&[], &[], Some(&iam));
    let deploy = arn("role", "deploy");
    assert!(has(
        &g,
        &arn("role", "ci-runner"),
        EdgeKind::CanAssume,
        &deploy
    ));
    assert!(!has(
        &g,
        &arn("role", "web-app"),
        EdgeKind::CanAssume,
        &deploy
    ));
    assert!(!has(
        &g,
        &arn("role", "ci-reader"),
        EdgeKind::CanAssume,
        &deploy
    ));
    // Decided, so nothing is left open on the edge.
    let n = g.find(&arn("role", "ci-runner")).unwrap();
    let e = g
        .out_edges(n)
        .find(|e| e.kind == EdgeKind::CanAssume && g.key(e.to) == deploy)
        .unwrap();
    assert!(e.detail.unwrap().conditions.is_empty());
}

#[test]
fn oidc_trust_is_evaluated_with_the_subject_and_open_keys_are_reported() {
    let subject = |sub: &str| {
        let mut s = ident(
            &format!("oidc:token.actions.githubusercontent.com#{sub}"),
            IdentityKind::OidcSubject,
            sub,
        );
        s.issuer = Some("https://token.actions.githubusercontent.com".into());
        s.subject = Some(sub.into());
        s
    };
    let main = subject("repo:acme/infra:ref:refs/heads/main");
    let other = subject("repo:evil/fork:ref:refs/heads/main");
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": format!("arn:aws:iam::{ACCT}:oidc-provider/token.actions.githubusercontent.com")},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                      "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/*"}}}]});
    let iam = json!({"UserDetailList": [], "GroupDetailList": [], "Policies": [],
        "RoleDetailList": [{"RoleName": "gh", "Arn": arn("role", "gh"), "AssumeRolePolicyDocument": trust,
            "RolePolicyList": [], "AttachedManagedPolicies": []}]});
    let g = build(&[main.clone(), other.clone()], &[], Some(&iam));
    let gh = arn("role", "gh");
    assert!(has(&g, &main.id, EdgeKind::CanAssume, &gh));
    assert!(!has(&g, &other.id, EdgeKind::CanAssume, &gh));
    let n = g.find(&main.id).unwrap();
    let e = g.out_edges(n).find(|e| g.key(e.to) == gh).unwrap();
    // `aud` is not in CloudTrail's record of the subject: undecided, and said so.
    assert_eq!(
        e.detail.unwrap().conditions,
        vec!["token.actions.githubusercontent.com:aud"]
    );
    // The pattern itself is a node too: any other repository of acme.
    assert!(has(
        &g,
        "oidc:token.actions.githubusercontent.com#repo:acme/*",
        EdgeKind::CanAssume,
        &gh
    ));
}

#[test]
fn terraform_role_bindings_link_to_the_live_binding() {
    let rb = obj(
        "k8s:RoleBinding",
        "prod/ci/deployers",
        Some("prod"),
        json!({"kind": "RoleBinding", "metadata": {"name": "deployers", "namespace": "ci"},
               "roleRef": {"kind": "Role", "name": "deployer"}, "subjects": []}),
    );
    let tf = obj(
        "tf_resource",
        "k8s.tf#kubernetes_role_binding_v1.deployers",
        None,
        json!({"address": "kubernetes_role_binding_v1.deployers", "type": "kubernetes_role_binding_v1",
               "name": "deployers", "file": "k8s.tf", "line": 3,
               "values": {"metadata": [{"name": "deployers", "namespace": "ci"}]}}),
    );
    let mut names = Names::default();
    assert!(names.add_object(&rb));
    assert!(!names.add_object(&rb));
    let mut g = Graph::new();
    g.set_edges(
        &derive::object_node(&rb),
        derive::object_edges(&rb, &names).unwrap(),
    );
    g.set_edges(
        &derive::object_node(&tf),
        derive::object_edges(&tf, &names).unwrap(),
    );
    assert!(has(
        &g,
        "k8s-obj:prod/RoleBinding/ci/deployers",
        EdgeKind::DefinedIn,
        "tf:k8s.tf#kubernetes_role_binding_v1.deployers"
    ));
}

#[test]
fn listing_cache_inherits_through_sessions_and_keys() {
    let mut role = ident(&arn("role", "deploy"), IdentityKind::IamRole, "deploy");
    role.tags.insert("team".into(), "platform".into());
    role.tags.insert("owner".into(), "dana@acme.example".into());
    let session_id = format!("arn:aws:sts::{ACCT}:assumed-role/deploy/s1");
    let mut session = ident(&session_id, IdentityKind::StsSession, "s1");
    session.parent = Some(role.id.clone());
    let mut key = ident("ASIAEXAMPLE0000001", IdentityKind::TemporaryAccessKey, "k");
    key.parent = Some(session_id.clone());
    let g = build(&[role.clone(), session, key], &[], None);
    let mut cache = keyward_graph::analysis::OwnershipCache::default();
    let k = g.find("ASIAEXAMPLE0000001").unwrap();
    let cached = cache.get(&g, k);
    let full = ownership(&g, k);
    assert_eq!(cached.owner, full.owner);
    assert_eq!(cached.team, full.team);
    assert_eq!(cached.owner.as_deref(), Some("dana@acme.example"));
    // key ← has_credential ← session → session_of → role ← owns ← dana
    let hops: Vec<EdgeKind> = cached.people[0].chain.iter().map(|h| h.edge).collect();
    assert_eq!(
        hops,
        vec![EdgeKind::HasCredential, EdgeKind::SessionOf, EdgeKind::Owns]
    );
    assert!((cached.confidence - full.confidence).abs() < 0.011);
}

#[test]
fn containment_ignores_keys_whose_creation_is_unknown() {
    // An old key first seen in this week's logs was not created this week.
    let user = ident(&arn("user", "ci"), IdentityKind::IamUser, "ci");
    let mut old = ident("AKIAOLDKEY0000000001", IdentityKind::AccessKey, "old");
    old.parent = Some(user.id.clone());
    old.first_seen = Some(500);
    let mut new = ident("AKIANEWKEY0000000001", IdentityKind::AccessKey, "new");
    new.parent = Some(user.id.clone());
    new.created = Some(600);
    let g = build(&[user.clone(), old, new], &[], None);
    let b = blast_radius(
        &g,
        g.find(&user.id).unwrap(),
        BlastOptions {
            since: Some(400),
            ..BlastOptions::default()
        },
    );
    let got: Vec<&str> = b.root.children.iter().map(|c| c.node.as_str()).collect();
    assert_eq!(got, vec!["AKIANEWKEY0000000001"]);
}

#[test]
fn principals_that_may_assume_any_role_reach_open_roles_through_one_group() {
    let trust_account = json!({"Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{ACCT}:root")}, "Action": "sts:AssumeRole"}]});
    let role = |name: &str, policy: serde_json::Value| {
        json!({"RoleName": name, "Arn": arn("role", name), "AssumeRolePolicyDocument": trust_account.clone(),
               "RolePolicyList": [{"PolicyName": "p", "PolicyDocument": policy}],
               "AttachedManagedPolicies": []})
    };
    let read = doc(json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]));
    let user = |name: &str, policy: serde_json::Value| {
        json!({"UserName": name, "Arn": arn("user", name), "GroupList": [],
               "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": policy}], "AttachedManagedPolicies": []})
    };
    let iam = json!({
        "GroupDetailList": [], "Policies": [],
        "UserDetailList": [
            // May assume any role: reaches them through the group.
            user("ops", doc(json!([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]))),
            // Same, but a deny narrows it: evaluated role by role.
            user("contractor", doc(json!([
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"},
                {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": arn("role", "r2")}]))),
        ],
        "RoleDetailList": [role("r1", read.clone()), role("r2", read)],
    });
    let g = build(&[], &[], Some(&iam));
    let group = format!("aws-roles-trusting:{ACCT}");
    let ops = arn("user", "ops");
    let contractor = arn("user", "contractor");
    assert!(has(&g, &ops, EdgeKind::CanAssume, &group));
    assert!(!has(&g, &ops, EdgeKind::CanAssume, &arn("role", "r1")));
    assert!(has(&g, &group, EdgeKind::CanAssume, &arn("role", "r1")));
    assert!(has(&g, &group, EdgeKind::CanAssume, &arn("role", "r2")));
    assert!(!has(&g, &contractor, EdgeKind::CanAssume, &group));
    assert!(has(
        &g,
        &contractor,
        EdgeKind::CanAssume,
        &arn("role", "r1")
    ));
    assert!(!has(
        &g,
        &contractor,
        EdgeKind::CanAssume,
        &arn("role", "r2")
    ));
    // The blast radius of ops still reaches the group, both roles and what they can do.
    let b = blast_radius(&g, g.find(&ops).unwrap(), BlastOptions::default());
    fn all<'a>(r: &'a keyward_graph::analysis::Reach, out: &mut Vec<&'a str>) {
        out.push(&r.node);
        for c in &r.children {
            all(c, out);
        }
    }
    let mut reached = Vec::new();
    all(&b.root, &mut reached);
    for n in [group.clone(), arn("role", "r1"), arn("role", "r2")] {
        assert!(
            reached.contains(&n.as_str()),
            "{n} not reached: {reached:?}"
        );
    }
    assert!(reached.contains(&format!("resource:*@{ACCT}").as_str()));
    // And a group node is not a foreign trust.
    assert!(foreign_trusts(&g, &[]).is_empty());
}

#[test]
fn wide_escalation_sets_share_one_group_node() {
    let lambda_trust = json!({"Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let mut roles: Vec<serde_json::Value> = (0..20)
        .map(|i| {
            json!({"RoleName": format!("fn{i}"), "Arn": arn("role", &format!("fn{i}")),
                   "AssumeRolePolicyDocument": lambda_trust.clone(), "RolePolicyList": [],
                   "AttachedManagedPolicies": []})
        })
        .collect();
    // One more, not passable: it trusts another service.
    roles.push(json!({"RoleName": "ec2", "Arn": arn("role", "ec2"),
        "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
        "RolePolicyList": [], "AttachedManagedPolicies": []}));
    let deployer = |name: &str| {
        json!({"UserName": name, "Arn": arn("user", name), "GroupList": [], "AttachedManagedPolicies": [],
               "UserPolicyList": [{"PolicyName": "p", "PolicyDocument": doc(json!([{"Effect": "Allow",
                 "Action": ["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"], "Resource": "*"}]))}]})
    };
    let iam = json!({"GroupDetailList": [], "Policies": [],
        "UserDetailList": [deployer("d1"), deployer("d2")], "RoleDetailList": roles});
    let g = build(&[], &[], Some(&iam));
    let groups: Vec<String> = ["d1", "d2"]
        .iter()
        .map(|u| {
            let n = g.find(&arn("user", u)).unwrap();
            let e: Vec<_> = g
                .out_edges(n)
                .filter(|e| e.kind == EdgeKind::Can && g.key(e.to).starts_with("aws-escalation:"))
                .collect();
            assert_eq!(e.len(), 1, "{u}: one edge to the set");
            // No direct edge to each role.
            assert!(!has(
                &g,
                &arn("user", u),
                EdgeKind::Can,
                &arn("role", "fn3")
            ));
            g.key(e[0].to).to_owned()
        })
        .collect();
    // Both deployers share the same set.
    assert_eq!(groups[0], groups[1]);
    let set = g.find(&groups[0]).unwrap();
    let mut targets: Vec<&str> = g.out_edges(set).map(|e| g.key(e.to)).collect();
    targets.sort();
    assert_eq!(targets.len(), 20);
    assert!(!targets.contains(&arn("role", "ec2").as_str()));
}

#[test]
fn an_scp_deny_removes_what_the_blast_radius_reaches() {
    use keyward_graph::iam::org::Organization;
    let doc = json!({"UserDetailList": [{"UserName": "etl",
        "Arn": format!("arn:aws:iam::{ACCT}:user/etl"),
        "UserPolicyList": [{"PolicyName": "data", "PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "kms:Decrypt"], "Resource": "*"}]}}]}]});
    let deny_kms = json!({"Statement": [{"Effect": "Deny", "Action": "kms:*", "Resource": "*"}]});
    let policies = [
        json!({"PolicySummary": {"Id": "p-nokms0001", "Name": "NoKMS",
        "Type": "SERVICE_CONTROL_POLICY"}, "Content": deny_kms.to_string()}),
    ];
    let targets = [
        json!({"PolicyId": "p-nokms0001", "TargetId": ACCT, "Type": "ACCOUNT"}),
        json!({"PolicyId": "p-FullAWSAccess", "TargetId": ACCT, "Type": "ACCOUNT"}),
    ];
    let (org, errors) = Organization::new(&policies, &targets, &[]);
    assert!(errors.is_empty(), "{errors:?}");
    let actions = |snap: &Snapshot| -> Vec<String> {
        derive::account_edges(ACCT, snap, &Names::default())
            .into_iter()
            .filter(|e| e.kind == EdgeKind::Can)
            .flat_map(|e| e.detail.map(|d| d.actions).unwrap_or_default())
            .collect()
    };
    let mut snap = Snapshot::new(&doc);
    assert_eq!(actions(&snap), ["kms:Decrypt", "s3:GetObject"]);
    snap.org = org.guardrails(ACCT).map(std::sync::Arc::new);
    assert_eq!(actions(&snap), ["s3:GetObject"]);
}
