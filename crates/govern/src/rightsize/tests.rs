//! The CloudTrail → IAM action mapping, the refusals, and the report and plan of a role
//! granted more than it used.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keyward_graph::iam::Policy;
use keyward_graph::iam::authz::Sourced;
use keyward_respond::action::IamPrincipal;
use serde_json::json;

use super::*;

const ROLE: &str = "arn:aws:iam::111122223333:role/data-pipeline";
const NOW: Millis = 100 * DAY;

#[test]
fn cloudtrail_events_map_to_iam_actions() {
    let ok = |a: &str| iam_action(a, None).unwrap();
    assert_eq!(ok("s3.amazonaws.com:GetObject"), "s3:GetObject");
    assert_eq!(ok("s3.amazonaws.com:ListBuckets"), "s3:ListAllMyBuckets");
    assert_eq!(ok("s3.amazonaws.com:ListObjectsV2"), "s3:ListBucket");
    assert_eq!(
        ok("monitoring.amazonaws.com:PutMetricData"),
        "cloudwatch:PutMetricData"
    );
    assert_eq!(ok("email.amazonaws.com:SendEmail"), "ses:SendEmail");
    assert_eq!(
        ok("lambda.amazonaws.com:GetFunction20150331v2"),
        "lambda:GetFunction"
    );
    assert_eq!(
        ok("lambda.amazonaws.com:ListFunctions20150331"),
        "lambda:ListFunctions"
    );
    assert_eq!(ok("lambda.amazonaws.com:Invoke"), "lambda:InvokeFunction");
    assert_eq!(
        ok("ec2-instance-connect.amazonaws.com:SendSSHPublicKey"),
        "ec2-instance-connect:SendSSHPublicKey"
    );
    assert_eq!(ok("iam.amazonaws.com:GetRole"), "iam:GetRole");
    // A failure other than a refusal was still authorized.
    assert_eq!(
        iam_action("iam.amazonaws.com:GetRole", Some("NoSuchEntity")).unwrap(),
        "iam:GetRole"
    );
    let skip = |a: &str, e: Option<&str>| iam_action(a, e).unwrap_err();
    assert_eq!(
        skip("signin.amazonaws.com:ConsoleLogin", None),
        Skip::NotPolicyAuthorized
    );
    assert_eq!(
        skip("sts.amazonaws.com:AssumeRoleWithWebIdentity", None),
        Skip::NotPolicyAuthorized
    );
    assert_eq!(
        skip("sts.amazonaws.com:GetCallerIdentity", None),
        Skip::NotPolicyAuthorized
    );
    assert_eq!(
        skip("iam.amazonaws.com:CreateUser", Some("AccessDenied")),
        Skip::Denied
    );
    assert_eq!(
        skip(
            "ec2.amazonaws.com:RunInstances",
            Some("Client.UnauthorizedOperation")
        ),
        Skip::Denied
    );
    assert_eq!(skip("create pods/exec", None), Skip::NotAwsService);
    assert_eq!(skip("example.com:Thing", None), Skip::NotAwsService);
}

fn grants() -> Vec<Sourced> {
    let managed = Policy::parse(&json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["glue:GetJob", "glue:StartJobRun", "glue:GetJobRun"],
         "Resource": "arn:aws:glue:us-east-1:111122223333:job/orders-etl"},
        {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::lake/*"},
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"},
    ]}))
    .unwrap();
    let inline = Policy::parse(&json!({"Statement": [
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
    ]}))
    .unwrap();
    vec![
        Sourced {
            source: "managed:arn:aws:iam::111122223333:policy/pipeline".into(),
            policy: managed,
        },
        Sourced {
            source: "inline:debug".into(),
            policy: inline,
        },
    ]
}

fn input<'a>(calls: &'a [Call<'a>], grants: &'a [Sourced]) -> Input<'a> {
    Input {
        identity: ROLE,
        days: 90,
        now: NOW,
        coverage: Some((NOW - 95 * DAY, NOW)),
        calls,
        grants,
        unresolved: &[],
    }
}

fn call(action: &'static str) -> Call<'static> {
    Call {
        action,
        target: None,
        error_code: None,
    }
}

#[test]
fn a_role_granted_more_than_it_used_gets_a_smaller_policy() {
    let target = "arn:aws:iam::444455556666:role/deploy";
    let calls = [
        call("glue.amazonaws.com:GetJob"),
        call("glue.amazonaws.com:GetJob"),
        call("glue.amazonaws.com:StartJobRun"),
        call("s3.amazonaws.com:ListBuckets"),
        Call {
            action: "sts.amazonaws.com:AssumeRole",
            target: Some(target),
            error_code: None,
        },
        call("signin.amazonaws.com:ConsoleLogin"),
        Call {
            action: "iam.amazonaws.com:CreateUser",
            target: None,
            error_code: Some("AccessDenied"),
        },
    ];
    let g = grants();
    let r = rightsize(&input(&calls, &g)).unwrap();
    assert_eq!(r.calls, 5);
    assert_eq!(r.skipped.get("denied"), Some(&1));
    assert_eq!(r.skipped.get("not_policy_authorized"), Some(&1));
    let unused: Vec<&str> = r.unused.iter().map(|u| u.action.as_str()).collect();
    assert_eq!(unused, ["ec2:*", "glue:GetJobRun"]);
    assert_eq!(r.unused_services, ["ec2"]);
    // S3 object access is a data event nobody logged: kept, on the granted resources.
    let kept: Vec<&str> = r.kept.iter().map(|k| k.action.as_str()).collect();
    assert_eq!(kept, ["s3:GetObject", "s3:PutObject"]);
    assert_eq!(
        r.proposal,
        json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "Glue", "Effect": "Allow", "Action": ["glue:GetJob", "glue:StartJobRun"],
             "Resource": "arn:aws:glue:us-east-1:111122223333:job/orders-etl"},
            {"Sid": "S3", "Effect": "Allow", "Action": ["s3:ListAllMyBuckets"], "Resource": "*"},
            {"Sid": "S32", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": "arn:aws:s3:::lake/*"},
            // Every call named the role: narrowed from `*`.
            {"Sid": "Sts", "Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": target},
        ]})
    );
    assert_eq!(r.granted_patterns, 8);
    assert_eq!(r.proposed_actions, 6);
    assert_eq!(
        r.replaces,
        [
            "inline:debug",
            "managed:arn:aws:iam::111122223333:policy/pipeline"
        ]
    );
    assert!(r.blockers.is_empty(), "{:?}", r.blockers);

    let p = plan::plan(&plan::Request {
        report: &r,
        principal: IamPrincipal::Role("data-pipeline".into()),
        account: Some("111122223333"),
        now: NOW,
        actor: "cli:test",
    })
    .unwrap();
    let changes: Vec<&str> = p
        .steps
        .iter()
        .map(|s| match &s.action {
            keyward_respond::action::Action::RestoreBaseline { change, .. } => change.name(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        changes,
        ["put_inline_policy", "delete_inline_policy", "detach_policy"]
    );
    assert!(
        p.steps[0].command[1]
            .contains("put-role-policy --role-name data-pipeline --policy-name KeywardRightsized")
    );

    let tf = render::terraform(&r, true, "data-pipeline");
    assert!(
        tf.contains("resource \"aws_iam_role_policy\" \"data_pipeline_rightsized\""),
        "{tf}"
    );
    assert!(
        tf.contains(
            "#   - aws_iam_role_policy_attachment of arn:aws:iam::111122223333:policy/pipeline"
        ),
        "{tf}"
    );
    assert!(tf.contains("#   - aws_iam_role_policy \"debug\""), "{tf}");
}

#[test]
fn data_events_in_the_logs_are_judged_like_the_rest() {
    let calls = [
        call("s3.amazonaws.com:GetObject"),
        call("glue.amazonaws.com:GetJob"),
    ];
    let g = grants();
    let r = rightsize(&input(&calls, &g)).unwrap();
    assert!(r.kept.is_empty());
    assert!(r.unused.iter().any(|u| u.action == "s3:PutObject"));
}

#[test]
fn a_thin_or_empty_window_is_refused() {
    let g = grants();
    let calls = [call("glue.amazonaws.com:GetJob")];
    let mut thin = input(&calls, &g);
    thin.coverage = Some((NOW - 10 * DAY - 1, NOW));
    let err = rightsize(&thin).unwrap_err();
    assert_eq!(
        err,
        Refusal::ThinWindow {
            identity: ROLE.into(),
            days: 90,
            covered: 10
        }
    );
    assert!(err.to_string().contains("--days 10"), "{err}");
    let mut stale = input(&calls, &g);
    stale.coverage = Some((NOW - 95 * DAY, NOW - 30 * DAY));
    assert_eq!(
        rightsize(&stale).unwrap_err(),
        Refusal::StaleLogs {
            identity: ROLE.into(),
            days_short: 30
        }
    );
    let mut none = input(&calls, &g);
    none.coverage = None;
    assert!(matches!(rightsize(&none), Err(Refusal::NoLogs { .. })));
    // Only calls that say nothing about need: never "remove everything".
    let quiet = [call("signin.amazonaws.com:ConsoleLogin")];
    assert!(matches!(
        rightsize(&input(&quiet, &g)),
        Err(Refusal::NoCalls { .. })
    ));
    assert!(matches!(
        rightsize(&input(&[], &g)),
        Err(Refusal::NoCalls { .. })
    ));
}

#[test]
fn a_use_granted_only_under_a_condition_blocks_execution() {
    let g = vec![Sourced {
        source: "inline:mfa".into(),
        policy: Policy::parse(
            &json!({"Statement": [{"Effect": "Allow", "Action": "glue:*",
            "Resource": "*", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]}),
        )
        .unwrap(),
    }];
    let calls = [call("glue.amazonaws.com:GetJob")];
    let r = rightsize(&input(&calls, &g)).unwrap();
    assert_eq!(r.blockers.len(), 1);
    let err = plan::plan(&plan::Request {
        report: &r,
        principal: IamPrincipal::Role("x".into()),
        account: None,
        now: NOW,
        actor: "t",
    })
    .unwrap_err();
    assert!(matches!(err, plan::PlanError::Blocked(_)));
}
