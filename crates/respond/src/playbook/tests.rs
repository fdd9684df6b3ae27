use super::*;

const SEED: &str = r#"
name: payment-service-onboard
description: a new payment service gets a short-lived token
trigger:
  inventory: { source: terraform, type: aws_iam_role, tags: { service: payments } }
steps:
  - validate_tags: [owner, team, data_class]
  - vault_issue: { role: payments, ttl: 48h, into: "k8s:payments/${identity.name}-vault" }
  - wait: 10m
  - approval: { reason: "check ${identity}" }
  - notify: { url: "http://127.0.0.1:1/hook", message: "issued for ${identity.tags.team}" }
"#;

#[test]
fn the_seed_parses_and_checks() {
    let p = Playbook::parse("seed.yaml", SEED).unwrap();
    assert_eq!(p.steps.len(), 5);
    assert_eq!(p.trigger.as_ref().map(Trigger::kind), Some("inventory"));
    assert!(matches!(&p.steps[0], StepSpec::ValidateTags(t) if t.len() == 3));
}

fn refused(text: &str) -> String {
    Playbook::parse("p.yaml", text).unwrap_err().to_string()
}

#[test]
fn unknown_fields_are_refused_with_their_line() {
    let e = refused("name: a\nsteps:\n  - wait: 1m\nbogus: 1\n");
    assert!(e.starts_with("p.yaml: "), "{e}");
    assert!(e.contains("bogus"), "{e}");
    assert!(e.contains("line 4"), "{e}");
    let e = refused("name: a\nsteps:\n  - wait: 1m\n  - rotate: { who: x }\n");
    assert!(e.contains("who"), "{e}");
}

#[test]
fn bad_values_are_refused_at_load_time() {
    let e = refused("name: a\nsteps:\n  - wait: soon\n");
    assert!(
        e.contains("step 1 (wait)") && e.contains("not a duration"),
        "{e}"
    );
    let e = refused("name: a\nsteps:\n  - notify: { url: \"x ${identity.nmae}\" }\n");
    assert!(e.contains("unknown variable `${identity.nmae}`"), "{e}");
    let e = refused("name: A b\nsteps:\n  - wait: 1m\n");
    assert!(e.contains("`name`"), "{e}");
    let e = refused("name: a\ntrigger: { finding: { severity: urgent } }\nsteps:\n  - wait: 1m\n");
    assert!(e.contains("severity `urgent`"), "{e}");
    let e =
        refused("name: a\nsteps:\n  - vault_issue: { role: r, ttl: 1h, into: \"s3:bucket\" }\n");
    assert!(e.contains("not a secret location"), "{e}");
    let e = refused("name: a\ntrigger: { inventory: {} }\nsteps:\n  - wait: 1m\n");
    assert!(e.contains("names nothing"), "{e}");
    let e = refused("name: a\nsteps:\n  - wait: \"${identity\"\n");
    assert!(e.contains("unclosed"), "{e}");
}

#[test]
fn variables_are_substituted() {
    let p = Playbook::parse("seed.yaml", SEED).unwrap();
    let s = Subject {
        id: "role/payments-api".into(),
        name: "payments-api".into(),
        tags: [("team".to_owned(), "payments".to_owned())].into(),
        ..Subject::default()
    };
    let lookup = |v: &str| match v {
        "identity" => Some(s.id.clone()),
        _ => v.strip_prefix("identity.").and_then(|f| s.field(f)),
    };
    let StepSpec::VaultIssue(v) = resolve_step(&p.steps[1], &lookup).unwrap() else {
        panic!("not vault_issue")
    };
    assert_eq!(v.into, "k8s:payments/payments-api-vault");
    let StepSpec::Notify(n) = resolve_step(&p.steps[4], &lookup).unwrap() else {
        panic!("not notify")
    };
    assert_eq!(n.message.as_deref(), Some("issued for payments"));
    let missing = StepSpec::Notify(NotifyStep {
        url: "http://x/".into(),
        message: Some("${identity.tags.owner}".into()),
    });
    assert!(resolve_step(&missing, &lookup).is_err());
}

#[test]
fn terraform_roles_are_subjects_and_match() {
    let doc = serde_json::json!({
        "type": "aws_iam_role", "address": "aws_iam_role.payments_api", "file": "pay.tf", "line": 1,
        "values": {"name": "payments-api", "tags": {"service": "payments", "team": "payments"}}
    });
    let s = Subject::from_terraform(&doc).unwrap();
    assert_eq!(s.id, "role/payments-api");
    assert_eq!(s.kind, "iam_role");
    assert_eq!(
        s.missing_tags(&["team".into(), "owner".into(), "data_class".into()])
            .as_deref(),
        Some("owner, data_class")
    );
    let p = Playbook::parse("seed.yaml", SEED).unwrap();
    let Some(Trigger::Inventory(m)) = &p.trigger else {
        panic!()
    };
    assert!(m.matches(&s));
    let mut other = s.clone();
    other.tags.insert("service".into(), "billing".into());
    assert!(!m.matches(&other));
    let reference = serde_json::json!({"type": "aws_iam_role", "values": {"name": "var.name"}});
    assert!(Subject::from_terraform(&reference).is_none());
}

#[test]
fn findings_match_by_rule_severity_and_identity() {
    let m = FindingMatch {
        rules: vec!["kw-aws-*".into()],
        severity: Some("high".into()),
        identity: Some("payments-*".into()),
    };
    let mut f = FindingFacts {
        id: "kwf-1".into(),
        rules: vec!["kw-aws-stop-logging".into()],
        severity: "critical".into(),
        identities: vec!["arn:aws:iam::111122223333:role/payments-api".into()],
        first_seen: 0,
    };
    assert!(m.matches(&f));
    f.severity = "medium".into();
    assert!(!m.matches(&f));
}

#[test]
fn run_ids_are_stable() {
    assert_eq!(run::Run::id_for("a", "k"), run::Run::id_for("a", "k"));
    assert_ne!(run::Run::id_for("a", "k"), run::Run::id_for("a", "k2"));
    assert_ne!(run::Run::id_for("ab", ""), run::Run::id_for("a", "b"));
}

#[test]
fn the_built_in_and_example_playbooks_are_valid() {
    for (name, text) in BUILTIN {
        Playbook::parse(name, text).unwrap();
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/playbooks");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        Playbook::parse(&path.display().to_string(), &text).unwrap();
        n += 1;
    }
    assert!(n >= 5);
}
