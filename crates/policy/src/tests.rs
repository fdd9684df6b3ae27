//! Decisions per action and role, and how policy files fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;
use crate::load::{builtin, from_sources};

fn token(role: &str) -> Principal {
    Principal::Token {
        id: format!("t-{role}"),
        role: role.into(),
        name: "ci".into(),
    }
}

fn decide(p: &Policies, who: &Principal, action: Act, s: &Situation) -> Decision {
    p.decide(&Ask {
        principal: who,
        action,
        resource: &Resource::Estate,
        situation: s,
    })
}

#[test]
fn each_built_in_role_may_do_what_it_did_before_and_no_more() {
    let p = builtin().unwrap().policies;
    let s = Situation::default();
    // (action, weakest role allowed) — the roles' old order: viewer < operator < admin.
    let table = [
        (Act::View, "viewer"),
        (Act::Triage, "operator"),
        (Act::Ingest, "operator"),
        (Act::Plan, "operator"),
        (Act::Execute, "admin"),
        (Act::Approve, "admin"),
        (Act::Grant, "admin"),
        (Act::Rotate, "admin"),
        (Act::Retire, "admin"),
        (Act::Manage, "admin"),
    ];
    // `issue` is the broker's, for workloads only (below).
    assert_eq!(table.len() + 1, Act::ALL.len());
    for (act, weakest) in table {
        let need = entities::ROLES.iter().position(|r| *r == weakest).unwrap();
        for (i, role) in entities::ROLES.iter().enumerate() {
            let d = decide(&p, &token(role), act, &s);
            assert_eq!(d.allowed, i >= need, "{role} {act:?}: {d:?}");
            assert!(d.errors.is_empty(), "{d:?}");
            if d.allowed {
                assert!(!d.policies.is_empty(), "an allow names its policy");
            }
        }
    }
    let d = decide(&p, &token("viewer"), Act::View, &s);
    assert_eq!(d.policies, ["viewer-reads"]);
    // A token of a role nobody defined can do nothing.
    assert!(!decide(&p, &token("auditor"), Act::View, &s).allowed);
}

#[test]
fn nobody_approves_their_own_request() {
    let p = builtin().unwrap().policies;
    let alice = Principal::Person {
        name: "alice".into(),
    };
    let mut s = Situation {
        requester: Some("cli:alice".into()),
        ..Situation::default()
    };
    let d = decide(&p, &alice, Act::Approve, &s);
    assert!(!d.allowed);
    assert_eq!(d.policies, ["no-self-approval"]);
    assert!(
        d.denial(&Ask {
            principal: &alice,
            action: Act::Approve,
            resource: &Resource::Estate,
            situation: &s
        })
        .contains("forbidden by no-self-approval")
    );
    s.requester = Some("cli:bob".into());
    let d = decide(&p, &alice, Act::Approve, &s);
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.policies, ["admin-acts"]);
    // A token's own request, approved by that token.
    let admin = token("admin");
    s.requester = Some(admin.actor());
    assert!(!decide(&p, &admin, Act::Approve, &s).allowed);
}

#[test]
fn operators_break_the_glass_but_do_not_grant_otherwise() {
    let p = builtin().unwrap().policies;
    let op = token("operator");
    let mut s = Situation::default();
    assert!(!decide(&p, &op, Act::Grant, &s).allowed);
    s.break_glass = true;
    let d = decide(&p, &op, Act::Grant, &s);
    assert!(d.allowed);
    assert_eq!(d.policies, ["operator-breaks-glass"]);
    assert!(!decide(&p, &token("viewer"), Act::Grant, &s).allowed);
}

#[test]
fn a_person_at_the_command_line_is_an_admin_only_without_an_entities_file() {
    let alice = Principal::Person {
        name: "alice".into(),
    };
    let s = Situation::default();
    let p = builtin().unwrap().policies;
    assert!(decide(&p, &alice, Act::Execute, &s).allowed);
    let files = [("default.cedar".to_owned(), DEFAULT_POLICIES.to_owned())];
    let ents = r#"[
        {"uid": {"type": "Keyward::Person", "id": "bob"}, "attrs": {},
         "parents": [{"type": "Keyward::Role", "id": "operator"}]}
    ]"#;
    let p = from_sources(&files, Some(("entities.json".into(), ents.into())))
        .unwrap()
        .policies;
    assert!(!decide(&p, &alice, Act::View, &s).allowed, "unknown person");
    let bob = Principal::Person { name: "bob".into() };
    assert!(decide(&p, &bob, Act::Plan, &s).allowed);
    assert!(!decide(&p, &bob, Act::Execute, &s).allowed);
}

#[test]
fn policies_use_teams_time_network_and_environment() {
    let files = [
        ("default.cedar".to_owned(), DEFAULT_POLICIES.to_owned()),
        (
            "teams.cedar".to_owned(),
            r#"
@id("owners-rotate")
permit (principal, action == Keyward::Action::"rotate", resource is Keyward::Identity)
when { resource has team && principal in resource.team };

@id("no-prod-execution-off-hours")
forbid (principal, action == Keyward::Action::"execute", resource)
when { context.environment == "prod" && (context.hour < 8 || context.hour >= 18) }
unless { context.source_ip.isInRange(ip("10.0.0.0/8")) };
"#
            .to_owned(),
        ),
    ];
    let ents = r#"[
        {"uid": {"type": "Keyward::Team", "id": "payments"}, "attrs": {}, "parents": []},
        {"uid": {"type": "Keyward::Person", "id": "carol"}, "attrs": {},
         "parents": [{"type": "Keyward::Team", "id": "payments"}]},
        {"uid": {"type": "Keyward::Person", "id": "root"}, "attrs": {},
         "parents": [{"type": "Keyward::Role", "id": "admin"}]}
    ]"#;
    let p = from_sources(&files, Some(("entities.json".into(), ents.into())))
        .unwrap()
        .policies;
    let carol = Principal::Person {
        name: "carol".into(),
    };
    let owned = |team: &str| {
        Resource::Identity(Target {
            id: "arn:aws:iam::111122223333:user/pay".into(),
            kind: "iam_user".into(),
            platform: "aws".into(),
            name: "pay".into(),
            account: Some("111122223333".into()),
            team: Some(team.into()),
            ..Target::default()
        })
    };
    let s = Situation::default();
    let ask = |who: &Principal, action: Act, resource: &Resource, s: &Situation| {
        p.decide(&Ask {
            principal: who,
            action,
            resource,
            situation: s,
        })
    };
    let d = ask(&carol, Act::Rotate, &owned("payments"), &s);
    assert!(d.allowed && d.policies == ["owners-rotate"], "{d:?}");
    assert!(!ask(&carol, Act::Rotate, &owned("search"), &s).allowed);
    assert!(!ask(&carol, Act::Retire, &owned("payments"), &s).allowed);
    let root = Principal::Person {
        name: "root".into(),
    };
    // 2026-12-06T03:00:00Z, from outside 10/8, in prod: forbidden.
    let mut night = Situation {
        now: keyward_model::time::parse("2026-12-06T03:00:00Z").unwrap(),
        environment: Some("prod".into()),
        source_ip: Some("203.0.113.9".parse().unwrap()),
        ..Situation::default()
    };
    let d = ask(&root, Act::Execute, &owned("payments"), &night);
    assert!(!d.allowed);
    assert_eq!(d.policies, ["no-prod-execution-off-hours"]);
    night.source_ip = Some("10.1.2.3".parse().unwrap());
    assert!(ask(&root, Act::Execute, &owned("payments"), &night).allowed);
    night.now = keyward_model::time::parse("2026-12-07T10:00:00Z").unwrap();
    night.source_ip = Some("203.0.113.9".parse().unwrap());
    assert!(ask(&root, Act::Execute, &owned("payments"), &night).allowed);
}

#[test]
fn bad_policy_files_say_where() {
    let files = [
        (
            "a.cedar".to_owned(),
            "// one\n@id(\"x\")\npermit (principal, action, resource);\n\npermit (principal, action == Keyward::Action::\"fly\", resource);\n".to_owned(),
        ),
        (
            "b.cedar".to_owned(),
            "@id(\"x\")\npermit (principal, action, resource);\n".to_owned(),
        ),
        ("c.cedar".to_owned(), "\n\npermit (principal, action resource);\n".to_owned()),
        (
            "d.cedar".to_owned(),
            "permit (principal == ?principal, action, resource);\n".to_owned(),
        ),
    ];
    let e = from_sources(&files, None).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("b.cedar:1: the policy id `x` is also used at a.cedar:2"),
        "{text}"
    );
    assert!(text.contains("c.cedar:3:"), "{text}");
    assert!(text.contains("d.cedar:1: templates"), "{text}");
    // Validation: an action the schema does not have, on its own line, with its own id.
    assert!(
        e.problems
            .iter()
            .any(|p| p.file == "a.cedar" && p.line == Some(5) && p.message.contains("a.cedar:5")),
        "{text}"
    );
    let bad_entities = from_sources(
        &[("default.cedar".to_owned(), DEFAULT_POLICIES.to_owned())],
        Some((
            "entities.json".into(),
            r#"[{"uid": {"type": "Keyward::Robot", "id": "r"}, "attrs": {}, "parents": []}]"#
                .into(),
        )),
    )
    .unwrap_err();
    assert_eq!(bad_entities.problems[0].file, "entities.json");
}

#[test]
fn cases_report_what_failed() {
    let p = builtin().unwrap().policies;
    let cases: Vec<cases::Case> = serde_json::from_value(serde_json::json!([
        {"name": "viewer reads", "principal": {"token": "t", "role": "viewer"}, "action": "view", "expect": "allow", "by": ["viewer-reads"]},
        {"name": "wrong", "principal": {"token": "t", "role": "viewer"}, "action": "execute", "expect": "allow"},
        {"name": "no role", "principal": {"token": "t"}, "action": "view", "expect": "allow"},
        {"name": "self", "principal": {"person": "a"}, "action": "approve", "context": {"requester": "cli:a"}, "expect": "deny", "by": ["no-self-approval"]},
    ]))
    .unwrap();
    let out = cases::run(&p, &cases);
    assert_eq!(
        out.iter().map(|o| o.passed).collect::<Vec<_>>(),
        [true, false, false, true]
    );
    assert!(
        out[1]
            .problem
            .as_deref()
            .unwrap()
            .contains("expected Allow, Cedar said deny")
    );
    assert!(out[2].problem.as_deref().unwrap().contains("`role`"));
}

fn workload(ns: &str, sa: &str) -> Principal {
    Principal::Workload(Box::new(Workload {
        identity: format!("k8s:prod:sa:{ns}:{sa}"),
        proof: "kubernetes".into(),
        issuer: "https://oidc.example".into(),
        subject: format!("system:serviceaccount:{ns}:{sa}"),
        cluster: Some("prod".into()),
        namespace: Some(ns.into()),
        attrs: [("service_account".to_owned(), sa.to_owned())].into(),
    }))
}

fn issue(p: &Policies, who: &Principal, kind: &str, secs: i64) -> Decision {
    p.decide(&Ask {
        principal: who,
        action: Act::Issue,
        resource: &Resource::Credential {
            kind: kind.into(),
            target: "https://vault.example".into(),
        },
        situation: &Situation {
            surface: Surface::Broker,
            duration: Some(secs * 1000),
            ..Situation::default()
        },
    })
}

#[test]
fn workloads_get_only_what_a_policy_permits() {
    // Nothing is issued under the built-in roles; no role may issue.
    let p = builtin().unwrap().policies;
    let d = issue(&p, &workload("payments", "api"), "jwt", 600);
    assert!(!d.allowed && d.errors.is_empty(), "{d:?}");
    assert!(!decide(&p, &token("admin"), Act::Issue, &Situation::default()).allowed);

    let text = r#"
@id("payments-jwt")
permit (
    principal in Keyward::Namespace::"prod/payments",
    action == Keyward::Action::"issue",
    resource
)
when { resource.kind == "jwt" && context.duration_secs <= 3600
       && principal has service_account && principal.service_account == "api" };
"#;
    let p = from_sources(&[("broker.cedar".into(), text.into())], None)
        .unwrap()
        .policies;
    let d = issue(&p, &workload("payments", "api"), "jwt", 600);
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.policies, ["payments-jwt"]);
    assert!(!issue(&p, &workload("payments", "api"), "jwt", 7200).allowed);
    assert!(!issue(&p, &workload("payments", "api"), "aws", 600).allowed);
    assert!(!issue(&p, &workload("payments", "worker"), "jwt", 600).allowed);
    assert!(!issue(&p, &workload("billing", "api"), "jwt", 600).allowed);
}

#[test]
fn a_question_asked_again_reuses_its_request_and_a_changed_one_is_built_afresh() {
    let text = r#"
@id("short-jwt")
permit (principal, action == Keyward::Action::"issue", resource)
when { resource.kind == "jwt" && context.duration_secs <= 600 && context.hour < 12 };
"#;
    let p = from_sources(&[("broker.cedar".into(), text.into())], None)
        .unwrap()
        .policies;
    let who = workload("payments", "api");
    let what = Resource::Credential {
        kind: "jwt".into(),
        target: "bench".into(),
    };
    let at = |now: i64, secs: i64| Situation {
        now,
        surface: Surface::Broker,
        duration: Some(secs * 1000),
        ..Situation::default()
    };
    let ask = |s: &Situation| {
        let ask = Ask {
            principal: &who,
            action: Act::Issue,
            resource: &what,
            situation: s,
        };
        (entities::request(&p, &ask).unwrap(), p.decide(&ask))
    };
    // 09:00:00.100 and 09:00:00.900: the same second, the same request.
    let nine = 9 * 3_600_000;
    let (first, d) = ask(&at(nine + 100, 600));
    let (again, d2) = ask(&at(nine + 900, 600));
    assert!(std::sync::Arc::ptr_eq(&first, &again));
    assert!(d.allowed && d2.allowed, "{d:?}");
    // Decided once: the second ask is answered with the first's decision, kept with it.
    assert_eq!(first.decision.get(), Some(&d));
    assert_eq!(d, d2);
    // A longer TTL, a later hour, another workload: asked afresh, and decided on it.
    for (s, who2) in [
        (at(nine + 900, 900), who.clone()),
        (at(13 * 3_600_000, 600), who.clone()),
        (at(nine + 900, 600), workload("billing", "api")),
    ] {
        let ask = Ask {
            principal: &who2,
            action: Act::Issue,
            resource: &what,
            situation: &s,
        };
        let built = entities::request(&p, &ask).unwrap();
        assert!(!std::sync::Arc::ptr_eq(&first, &built));
        let d = p.decide(&ask);
        assert_eq!(
            d.allowed,
            who2 != who && s.duration == Some(600_000),
            "{d:?}"
        );
    }
    // A copy of the policies shares what was built; the same policies loaded again do not.
    let copy = p.clone();
    let (s, reload) = (
        at(nine + 100, 600),
        from_sources(&[("broker.cedar".into(), text.into())], None)
            .unwrap()
            .policies,
    );
    let ask = Ask {
        principal: &who,
        action: Act::Issue,
        resource: &what,
        situation: &s,
    };
    assert!(std::sync::Arc::ptr_eq(
        &first,
        &entities::request(&copy, &ask).unwrap()
    ));
    assert!(!std::sync::Arc::ptr_eq(
        &first,
        &entities::request(&reload, &ask).unwrap()
    ));
}

#[test]
fn a_namespaced_identity_conforms_to_the_schema() {
    // A namespace's entity once carried a `name` the schema does not declare: every question
    // about a namespaced identity was denied with a schema error.
    let p = builtin().unwrap().policies;
    let target = Target {
        id: "k8s:prod:sa:payments:api".into(),
        kind: "service_account".into(),
        platform: "kubernetes".into(),
        name: "api".into(),
        cluster: Some("prod".into()),
        namespace: Some("payments".into()),
        ..Target::default()
    };
    let d = p.decide(&Ask {
        principal: &token("admin"),
        action: Act::Retire,
        resource: &Resource::Identity(target),
        situation: &Situation::default(),
    });
    assert!(d.allowed && d.errors.is_empty(), "{d:?}");
}
