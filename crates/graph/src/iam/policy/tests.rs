//! Tests of policy parsing and evaluation: conditions, wildcards, boundaries, trust.

use super::*;
use serde_json::json;

fn p(v: Value) -> Policy {
    Policy::parse(&v).unwrap()
}

fn req<'a>(action: &'a str, resource: &'a str, ctx: &'a Context) -> Request<'a> {
    Request {
        action,
        resource,
        principal: None,
        context: ctx,
    }
}

#[test]
fn globs() {
    assert!(glob("iam:*", "iam:PassRole", true));
    assert!(glob("iam:Pass*", "IAM:passrole", true));
    assert!(!glob("iam:Pass*", "iam:GetRole", true));
    assert!(glob(
        "arn:aws:s3:::bucket/*/x?",
        "arn:aws:s3:::bucket/a/b/xy",
        false
    ));
    assert!(!glob(
        "arn:aws:iam::*:role/App*",
        "arn:aws:iam::1:role/app",
        false
    ));
    assert!(glob("*", "", false));
    assert!(!glob("a", "", false));
}

#[test]
fn deny_wins_and_not_action() {
    let admin = p(json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}));
    let no_iam = p(json!({"Statement": {"Effect": "Deny", "Action": "iam:*", "Resource": "*"}}));
    let ctx = Context::default();
    let out = evaluate(&[&admin, &no_iam], None, &req("iam:CreateUser", "*", &ctx));
    assert_eq!(
        (out.decision, out.denied_by),
        (Decision::ExplicitDeny, vec![(1, 0)])
    );
    assert_eq!(
        evaluate(
            &[&admin, &no_iam],
            None,
            &req("s3:GetObject", "arn:aws:s3:::b/k", &ctx)
        )
        .decision,
        Decision::Allow
    );
    let all_but_iam = p(
        json!({"Statement": [{"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}]}),
    );
    assert_eq!(
        evaluate(&[&all_but_iam], None, &req("iam:PassRole", "*", &ctx)).decision,
        Decision::ImplicitDeny
    );
    assert_eq!(
        evaluate(&[&all_but_iam], None, &req("ec2:RunInstances", "*", &ctx)).decision,
        Decision::Allow
    );
    let not_resource = p(
        json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret/*"}]}),
    );
    assert_eq!(
        evaluate(
            &[&not_resource],
            None,
            &req("s3:GetObject", "arn:aws:s3:::secret/k", &ctx)
        )
        .decision,
        Decision::ImplicitDeny
    );
    assert_eq!(
        evaluate(
            &[&not_resource],
            None,
            &req("s3:GetObject", "arn:aws:s3:::open/k", &ctx)
        )
        .decision,
        Decision::Allow
    );
}

#[test]
fn boundary_intersects() {
    let admin = p(json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}));
    let boundary = p(
        json!({"Statement": [{"Effect": "Allow", "Action": ["s3:*", "logs:*"], "Resource": "*"}]}),
    );
    let ctx = Context::default();
    assert_eq!(
        evaluate(
            &[&admin],
            Some(&boundary),
            &req("iam:CreateUser", "*", &ctx)
        )
        .decision,
        Decision::ImplicitDeny
    );
    assert_eq!(
        evaluate(&[&admin], Some(&boundary), &req("s3:ListBucket", "*", &ctx)).decision,
        Decision::Allow
    );
    let none = Policy::default();
    assert_eq!(
        evaluate(&[&none], Some(&boundary), &req("s3:ListBucket", "*", &ctx)).decision,
        Decision::ImplicitDeny,
        "a boundary grants nothing by itself"
    );
}

#[test]
fn undecided_conditions_are_reported() {
    let pol = p(
        json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
        "Condition": {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}, "StringEquals": {"aws:RequestedRegion": "eu-west-1"}}}]}),
    );
    let open = Context::default();
    let out = evaluate(&[&pol], None, &req("s3:GetObject", "*", &open));
    assert_eq!(
        out.decision,
        Decision::ConditionalAllow(BTreeSet::from([
            "aws:RequestedRegion".into(),
            "aws:SourceIp".into()
        ]))
    );
    let mut ctx = Context::default();
    ctx.set("aws:SourceIp", ["203.0.113.9"])
        .set("aws:requestedregion", ["eu-west-1"]);
    assert_eq!(
        evaluate(&[&pol], None, &req("s3:GetObject", "*", &ctx)).decision,
        Decision::Allow
    );
    ctx.set("aws:SourceIp", ["198.51.100.1"]);
    assert_eq!(
        evaluate(&[&pol], None, &req("s3:GetObject", "*", &ctx)).decision,
        Decision::ImplicitDeny
    );
    ctx.set("aws:SourceIp", ["2001:db8::1"]);
    assert_eq!(
        evaluate(&[&pol], None, &req("s3:GetObject", "*", &ctx)).decision,
        Decision::Allow
    );
    // A deny that may apply makes the allow conditional.
    let admin = p(json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}));
    let deny_outside = p(
        json!({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-abc"}}}]}),
    );
    assert_eq!(
        evaluate(
            &[&admin, &deny_outside],
            None,
            &req("ec2:RunInstances", "*", &open)
        )
        .decision,
        Decision::ConditionalAllow(BTreeSet::from(["aws:PrincipalOrgID".into()]))
    );
    let mut org = Context::default();
    org.set("aws:PrincipalOrgID", ["o-abc"]);
    assert_eq!(
        evaluate(
            &[&admin, &deny_outside],
            None,
            &req("ec2:RunInstances", "*", &org)
        )
        .decision,
        Decision::Allow
    );
}

#[test]
fn closed_context_and_operators() {
    let mut ctx = Context {
        closed: true,
        ..Context::default()
    };
    let c = |op: &str, key: &str, vals: Value| Condition {
        operator: op.into(),
        key: key.into(),
        values: strings(&vals),
    };
    assert_eq!(
        condition(
            &c("StringEquals", "aws:PrincipalTag/team", json!("x")),
            &ctx
        ),
        Tri::False
    );
    assert_eq!(
        condition(
            &c("StringNotEquals", "aws:PrincipalTag/team", json!("x")),
            &ctx
        ),
        Tri::True
    );
    assert_eq!(
        condition(
            &c("StringEqualsIfExists", "aws:PrincipalTag/team", json!("x")),
            &ctx
        ),
        Tri::True
    );
    assert_eq!(
        condition(&c("Null", "aws:TokenIssueTime", json!("true")), &ctx),
        Tri::True
    );
    ctx.set("aws:TokenIssueTime", ["2026-11-10T08:00:00Z"])
        .set("aws:MultiFactorAuthPresent", ["true"])
        .set("aws:TagKeys", ["env", "team"]);
    assert_eq!(
        condition(
            &c(
                "DateGreaterThan",
                "aws:TokenIssueTime",
                json!("2026-11-01T00:00:00Z")
            ),
            &ctx
        ),
        Tri::True
    );
    assert_eq!(
        condition(&c("Bool", "aws:MultiFactorAuthPresent", json!(true)), &ctx),
        Tri::True
    );
    assert_eq!(
        condition(
            &c(
                "ForAllValues:StringEquals",
                "aws:TagKeys",
                json!(["env", "team", "owner"])
            ),
            &ctx
        ),
        Tri::True
    );
    assert_eq!(
        condition(
            &c("ForAllValues:StringEquals", "aws:TagKeys", json!(["env"])),
            &ctx
        ),
        Tri::False
    );
    assert_eq!(
        condition(
            &c("ForAnyValue:StringLike", "aws:TagKeys", json!("te*")),
            &ctx
        ),
        Tri::True
    );
    assert_eq!(
        condition(&c("NumericLessThan", "s3:max-keys", json!("10")), &ctx),
        Tri::False
    );
    ctx.set("aws:username", ["alice"])
        .set("aws:PrincipalArn", ["arn:aws:iam::1:user/alice"]);
    assert_eq!(
        condition(
            &c(
                "ArnLike",
                "aws:PrincipalArn",
                json!("arn:aws:iam::1:user/${aws:username}")
            ),
            &ctx
        ),
        Tri::True
    );
    assert_eq!(
        condition(&c("StringLikeSomething", "aws:username", json!("x")), &ctx),
        Tri::unknown("aws:username"),
        "an unknown operator is undecided, not ignored"
    );
}

#[test]
fn github_oidc_trust() {
    let trust = p(
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                      "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/payments-api:*"}}}]}),
    );
    let gh = PrincipalRef::Federated("https://token.actions.githubusercontent.com".into());
    let role = "arn:aws:iam::111122223333:role/github-actions-deploy";
    let mut ctx = Context::default();
    ctx.set(
        "token.actions.githubusercontent.com:aud",
        ["sts.amazonaws.com"],
    )
    .set(
        "token.actions.githubusercontent.com:sub",
        ["repo:acme/payments-api:ref:refs/heads/main"],
    );
    assert_eq!(
        evaluate_trust(&trust, role, &gh, "sts:AssumeRoleWithWebIdentity", &ctx).decision,
        Decision::Allow
    );
    ctx.set(
        "token.actions.githubusercontent.com:sub",
        ["repo:evil/fork:ref:refs/heads/main"],
    );
    assert_eq!(
        evaluate_trust(&trust, role, &gh, "sts:AssumeRoleWithWebIdentity", &ctx).decision,
        Decision::ImplicitDeny
    );
    let other =
        PrincipalRef::Federated("arn:aws:iam::111122223333:oidc-provider/gitlab.com".into());
    assert_eq!(
        evaluate_trust(
            &trust,
            role,
            &other,
            "sts:AssumeRoleWithWebIdentity",
            &Context::default()
        )
        .decision,
        Decision::ImplicitDeny
    );
    assert_eq!(
        evaluate_trust(&trust, role, &gh, "sts:AssumeRole", &ctx).decision,
        Decision::ImplicitDeny
    );
}

#[test]
fn account_and_wildcard_trust() {
    let trust = p(json!({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:root"}, "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/app/ci"}, "Action": "sts:AssumeRole"},
        {"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]}, "Action": "sts:AssumeRole"}]}));
    let role = "arn:aws:iam::111122223333:role/x";
    let ctx = Context::default();
    let aws = |account: &str, arn: &str| PrincipalRef::Aws {
        account: account.into(),
        arn: arn.into(),
    };
    assert!(
        evaluate_trust(
            &trust,
            role,
            &aws("444455556666", "arn:aws:iam::444455556666:user/bob"),
            "sts:AssumeRole",
            &ctx
        )
        .decision
        .allowed()
    );
    assert!(
        evaluate_trust(
            &trust,
            role,
            &aws("111122223333", "arn:aws:iam::111122223333:role/ci"),
            "sts:AssumeRole",
            &ctx
        )
        .decision
        .allowed(),
        "the path in a trusted ARN is not part of the identity"
    );
    assert!(
        !evaluate_trust(
            &trust,
            role,
            &aws("999988887777", "arn:aws:iam::999988887777:root"),
            "sts:AssumeRole",
            &ctx
        )
        .decision
        .allowed()
    );
    assert!(
        evaluate_trust(
            &trust,
            role,
            &PrincipalRef::Service("ec2.amazonaws.com".into()),
            "sts:AssumeRole",
            &ctx
        )
        .decision
        .allowed()
    );
    let anyone = p(
        json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}}),
    );
    assert!(
        evaluate_trust(
            &anyone,
            role,
            &aws("999988887777", "arn:aws:iam::999988887777:root"),
            "sts:AssumeRole",
            &ctx
        )
        .decision
        .allowed()
    );
}

#[test]
fn malformed_policies_are_errors() {
    assert!(Policy::parse(&json!({})).is_err());
    assert!(
        Policy::parse(&json!({"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}))
            .is_err()
    );
    assert!(Policy::parse(&json!({"Statement": [{"Effect": "Allow", "Resource": "*"}]})).is_err());
    assert!(Policy::parse(&json!({"Statement": [{"Effect": "Allow", "Action": "*", "Principal": {"Martian": "x"}}]})).is_err());
}

/// The messages users see (in `graph` output's policy errors) read as they always did.
#[test]
fn policy_error_messages() {
    let message = |doc: Value| Policy::parse(&doc).unwrap_err().to_string();
    assert_eq!(message(json!({})), "missing `Statement`");
    assert_eq!(
        message(json!({"Statement": 1})),
        "`Statement` must be an object or a list"
    );
    assert_eq!(
        message(json!({"Statement": [{"Effect": "Maybe", "Action": "*"}]})),
        "statement 0: `Effect` is Some(\"Maybe\"), expected `Allow` or `Deny`"
    );
    assert_eq!(
        message(json!({"Statement": [{"Action": "*"}]})),
        "statement 0: `Effect` is None, expected `Allow` or `Deny`"
    );
    assert_eq!(
        message(json!({"Statement": [{"Effect": "Allow", "Action": "*", "Principal": 1}]})),
        "statement 0: `Principal` must be `\"*\"` or an object"
    );
    assert_eq!(
        message(json!({"Statement": [{"Effect": "Allow", "Action": "*"},
                                     {"Effect": "Deny", "Action": "*", "Condition": {"StringEquals": 1}}]})),
        "statement 1: condition `StringEquals` must map keys to values"
    );
}

#[test]
fn time_keys_are_decided_at_analysis_time() {
    // 2026-11-15T00:00:00Z.
    let now = 1_794_700_800_000;
    let mut ctx = Context::default();
    ctx.at(now);
    let cond = |op: &str, key: &str, value: &str| {
        p(
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
            "Condition": {op: {key: value}}}]}),
        )
    };
    let decide = |pol: &Policy| evaluate(&[pol], None, &req("s3:GetObject", "*", &ctx)).decision;
    let cases = [
        (
            "DateLessThan",
            "aws:CurrentTime",
            "2020-01-01T00:00:00Z",
            Decision::ImplicitDeny,
        ),
        (
            "DateGreaterThan",
            "aws:CurrentTime",
            "2020-01-01T00:00:00Z",
            Decision::Allow,
        ),
        (
            "DateLessThanEquals",
            "aws:CurrentTime",
            "2030-01-01",
            Decision::Allow,
        ),
        (
            "NumericLessThan",
            "aws:EpochTime",
            "1577836800",
            Decision::ImplicitDeny,
        ),
        (
            "NumericGreaterThan",
            "aws:EpochTime",
            "1577836800",
            Decision::Allow,
        ),
        (
            "DateLessThan",
            "aws:EpochTime",
            "2020-01-01T00:00:00Z",
            Decision::ImplicitDeny,
        ),
        // A usable token was issued within the last 36 hours.
        (
            "DateLessThan",
            "aws:TokenIssueTime",
            "2020-01-01T00:00:01Z",
            Decision::ImplicitDeny,
        ),
        (
            "DateGreaterThan",
            "aws:TokenIssueTime",
            "2026-11-01T00:00:00Z",
            Decision::Allow,
        ),
    ];
    for (op, key, value, want) in cases {
        assert_eq!(decide(&cond(op, key, value)), want, "{op} {key} {value}");
    }
    // Within the token's possible ages, or an operator that does not order: open.
    let open = [
        (
            "DateGreaterThan",
            "aws:TokenIssueTime",
            "2026-11-14T12:00:00Z",
        ),
        ("DateEquals", "aws:TokenIssueTime", "2026-11-14T12:00:00Z"),
    ];
    for (op, key, value) in open {
        assert_eq!(
            decide(&cond(op, key, value)),
            Decision::ConditionalAllow(BTreeSet::from([key.to_owned()])),
            "{op} {key}"
        );
    }
    // Without an analysis time, every time key is open.
    let none = Context::default();
    let pol = cond("DateLessThan", "aws:CurrentTime", "2020-01-01T00:00:00Z");
    assert!(matches!(
        evaluate(&[&pol], None, &req("s3:GetObject", "*", &none)).decision,
        Decision::ConditionalAllow(_)
    ));
}
