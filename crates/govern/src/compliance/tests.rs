use super::*;

const DAY: i64 = 86_400_000;
const NOW: i64 = 1_800_000_000_000;

fn finding(id: &str, rule: &str, identity: &str) -> OpenFinding {
    OpenFinding {
        id: id.into(),
        rule_id: rule.into(),
        severity: "high".into(),
        identity: Some(identity.into()),
        summary: format!("{rule} on {identity}"),
    }
}

fn healthy() -> Facts {
    Facts {
        now: NOW,
        identities: 12,
        events: 500,
        latest_event: Some(NOW - DAY),
        findings: Vec::new(),
        audit_intact: true,
        audit_entries: 40,
        audit_head: Some((40, "ab12".into())),
        baselines: 5,
        latest_baseline: Some((NOW - 10 * DAY, "cli:alice".into())),
    }
}

fn status(r: &Report, id: &str) -> Status {
    r.controls
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.status)
        .unwrap_or_else(|| panic!("no control {id}"))
}

#[test]
fn a_clean_estate_passes_every_control_with_evidence() {
    for f in Framework::ALL {
        let r = report(f, &healthy());
        assert_eq!(r.fail + r.warn, 0, "{f:?}: {:#?}", r.controls);
        for c in &r.controls {
            assert!(!c.evidence.is_empty(), "{f:?} {}: no evidence", c.id);
        }
    }
}

#[test]
fn an_admin_wildcard_fails_least_privilege_and_names_the_identity() {
    let mut facts = healthy();
    facts.findings.push(finding(
        "kwf-1",
        "kw-posture-admin-wildcard",
        "arn:aws:iam::1:role/ci",
    ));
    let r = report(Framework::Soc2, &facts);
    assert_eq!(status(&r, "CC6.1"), Status::Fail);
    assert_eq!(status(&r, "CC6.2"), Status::Pass);
    let c = r.controls.iter().find(|c| c.id == "CC6.1").unwrap();
    assert_eq!(c.identities, ["arn:aws:iam::1:role/ci"]);
    assert_eq!(c.findings, ["kwf-1"]);
    assert!(
        c.evidence
            .iter()
            .any(|e| e.command == "keyward findings show kwf-1")
    );
}

#[test]
fn pci_rotation_warns_at_day_75_and_fails_when_overdue() {
    let mut facts = healthy();
    facts
        .findings
        .push(finding("kwf-2", "kw-posture-rotation-due", "AKIA1"));
    let r = report(Framework::PciDss4, &facts);
    assert_eq!(status(&r, "8.3.9"), Status::Warn);
    facts
        .findings
        .push(finding("kwf-3", "kw-posture-rotation-overdue", "AKIA2"));
    let r = report(Framework::PciDss4, &facts);
    assert_eq!(status(&r, "8.3.9"), Status::Fail);
    assert_eq!(
        r.controls
            .iter()
            .find(|c| c.id == "8.3.9")
            .unwrap()
            .findings
            .len(),
        2
    );
}

#[test]
fn no_recent_review_or_a_broken_audit_chain_fails_what_needs_them() {
    let mut facts = healthy();
    facts.latest_baseline = Some((NOW - 200 * DAY, "cli:bob".into()));
    facts.audit_intact = false;
    let r = report(Framework::PciDss4, &facts);
    assert_eq!(status(&r, "7.2.4"), Status::Fail);
    assert_eq!(status(&r, "10.3.2"), Status::Fail);
    assert_eq!(status(&r, "8.3.9"), Status::Pass);
    let soc = report(Framework::Soc2, &facts);
    assert_eq!(
        status(&soc, "CC6.3"),
        Status::Fail,
        "reviewed within 90 days"
    );
    assert_eq!(status(&soc, "CC7.2"), Status::Fail);
}

#[test]
fn csv_and_html_escape_what_they_carry() {
    let mut facts = healthy();
    facts.findings.push(OpenFinding {
        id: "kwf-4".into(),
        rule_id: "kw-posture-orphaned".into(),
        severity: "medium".into(),
        identity: Some("=cmd|' /C calc'!A0".into()),
        summary: "<script>alert(1)</script>, \"quoted\"".into(),
    });
    let r = report(Framework::Iso27001, &facts);
    let page = html(&r);
    assert!(!page.contains("<script>"), "{page}");
    let sheet = csv(&r);
    assert!(sheet.contains("'=cmd"), "{sheet}");
    assert_eq!(sheet.lines().count(), r.controls.len() + 1);
    assert!(table(&r).contains("A.5.16  fail"));
}

#[test]
fn an_agent_outside_its_purpose_fails_least_privilege_in_every_framework() {
    let mut facts = healthy();
    facts.findings.push(finding(
        "kwf-agent",
        "kw-ai-agent-outside-purpose",
        "ai:session/asst_finops_01/conv_1",
    ));
    for (f, id) in [
        (Framework::Soc2, "CC6.1"),
        (Framework::PciDss4, "7.2.5"),
        (Framework::Iso27001, "A.5.15"),
    ] {
        let r = report(f, &facts);
        assert_eq!(status(&r, id), Status::Fail, "{f:?} {id}");
        assert_eq!(r.fail, 1, "{f:?}: only least privilege fails");
    }
}
