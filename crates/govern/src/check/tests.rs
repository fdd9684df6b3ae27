//! One test per rule, bad and clean, on small snippets: each runs the check over files and
//! compares `rule line:column key` lines.

use super::*;

fn run_with(files: &[(&str, &str)], cfg: &Config) -> Report {
    let inputs: Vec<Input<'_>> = files
        .iter()
        .map(|(path, text)| Input {
            path,
            bytes: text.as_bytes(),
        })
        .collect();
    check(&inputs, cfg)
}

/// `RULE line[:column] key` per problem, and the errors.
fn check_files(files: &[(&str, &str)]) -> Vec<String> {
    let cfg = Config {
        allow_accounts: vec!["111111111111".into()],
        ..Config::default()
    };
    let report = run_with(files, &cfg);
    let mut out: Vec<String> = report
        .problems
        .iter()
        .map(|p| {
            let at = match p.column {
                Some(c) => format!("{}:{c}", p.line),
                None => p.line.to_string(),
            };
            format!("{} {at} {}", p.rule.id(), p.key)
        })
        .collect();
    out.extend(report.errors.iter().map(|e| format!("error {e}")));
    out
}

fn one(path: &str, text: &str) -> Vec<String> {
    check_files(&[(path, text)])
}

const TAGS: &str = "tags = { Owner = \"a\", Team = \"b\" }";

#[test]
fn wildcard_actions() {
    let doc = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "Admin", "Effect": "Allow", "Action": "*", "Resource": "*"},
  {"Effect": "Allow",
   "Action": ["s3:*", "s3:GetObject"],
   "Resource": "arn:aws:s3:::b/*"}
]}"#;
    assert_eq!(
        one("p.json", doc),
        [
            "KW-CHECK-001 2:49 statement:Admin/action:*",
            "KW-CHECK-001 4:15 statement#1/action:s3:*",
        ]
    );
    let clean =
        r#"{"Statement": {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}}"#;
    assert!(one("p.json", clean).is_empty());
    // A `Deny` of everything is fine.
    let deny = r#"{"Statement": {"Effect": "Deny", "Action": "*", "Resource": "*"}}"#;
    assert!(one("p.json", deny).is_empty());
}

#[test]
fn writes_on_every_resource() {
    let doc = r#"{"Statement": [{"Effect": "Allow",
  "Action": ["ec2:Describe*", "ec2:TerminateInstances", "s3:Put*"],
  "Resource": "*"}]}"#;
    assert_eq!(
        one("p.json", doc),
        ["KW-CHECK-002 3:15 statement#0/write-on-*"]
    );
    let scoped = r#"{"Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/*"}]}"#;
    assert!(one("p.json", scoped).is_empty());
}

#[test]
fn pass_role_anywhere() {
    let doc = r#"{"Statement": [
  {"Effect": "Allow", "Action": ["iam:PassRole", "lambda:CreateFunction"], "Resource": "*"}]}"#;
    assert_eq!(
        one("p.json", doc),
        [
            "KW-CHECK-003 2:34 statement#0/iam:PassRole",
            "KW-CHECK-002 2:88 statement#0/write-on-*",
        ]
    );
    let named = r#"{"Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::111111111111:role/app"}]}"#;
    assert!(one("p.json", named).is_empty());
}

#[test]
fn trusts_anyone_and_unknown_accounts() {
    let tf = format!(
        r#"
resource "aws_iam_role" "x" {{
  name = "x"
  {TAGS}
  assume_role_policy = jsonencode({{
    Statement = [{{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = {{ AWS = ["*", "arn:aws:iam::222222222222:root", "111111111111", var.other] }}
    }}]
  }})
}}
"#
    );
    assert_eq!(
        one("iam.tf", &tf),
        [
            "KW-CHECK-004 9:29 aws_iam_role.x/assume_role_policy/statement#0/principal:*",
            "KW-CHECK-005 9:47 aws_iam_role.x/assume_role_policy/statement#0/account:222222222222",
        ]
    );
    let own = tf.replace("\"*\", \"arn:aws:iam::222222222222:root\", ", "");
    assert!(one("iam.tf", &own).is_empty(), "{:?}", one("iam.tf", &own));
}

#[test]
fn github_oidc_trust() {
    let role = |condition: &str| {
        format!(
            r#"{{"Statement": [{{"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
  "Principal": {{"Federated": "arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com"}},
  "Condition": {{"StringEquals": {{"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}{condition}}}}}]}}"#
        )
    };
    assert_eq!(
        one("trust.json", &role("")),
        ["KW-CHECK-006 2:71 statement#0/github-oidc"]
    );
    let wide =
        role(r#", "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/*"}"#);
    assert_eq!(
        one("trust.json", &wide),
        ["KW-CHECK-007 3:158 statement#0/github-sub:repo:acme/*"]
    );
    let narrow = role(
        r#", "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/app:ref:refs/heads/main"}"#,
    );
    assert!(one("trust.json", &narrow).is_empty());
}

#[test]
fn access_keys_and_tags() {
    let tf = format!(
        r#"resource "aws_iam_user" "ci" {{
  name = "ci"
  tags = {{ owner = "platform" }}
}}

resource "aws_iam_access_key" "ci" {{
  user = aws_iam_user.ci.name
}}

resource "aws_iam_role" "ok" {{
  name = "ok"
  {TAGS}
  assume_role_policy = "{{}}"
}}

resource "aws_iam_role" "computed" {{
  name = "c"
  tags = var.tags
}}
"#
    );
    assert_eq!(
        one("main.tf", &tf),
        [
            "KW-CHECK-009 1 aws_iam_user.ci/tags",
            "KW-CHECK-008 6 aws_iam_access_key.ci/access-key"
        ]
    );
    let custom = Config {
        require_tags: vec!["cost-center".into()],
        ..Config::default()
    };
    let report = run_with(&[("main.tf", &tf)], &custom);
    assert_eq!(
        report
            .problems
            .iter()
            .filter(|p| p.rule == Rule::MissingTags)
            .count(),
        2
    );
}

#[test]
fn terraform_json_shapes() {
    let tf_json = r#"{
  "resource": {
    "aws_iam_policy": {
      "admin": {
        "policy": "{\"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\"}]}"
      }
    },
    "aws_iam_access_key": {"k": {"user": "u"}}
  }
}"#;
    assert_eq!(
        one("main.tf.json", tf_json),
        [
            "KW-CHECK-001 5:40 aws_iam_policy.admin/policy/statement#0/action:*",
            "KW-CHECK-008 8 aws_iam_access_key.k/access-key",
        ]
    );
    let plan = r#"{"format_version": "1.2", "planned_values": {"root_module": {"resources": [
 {"address": "aws_iam_user.u", "mode": "managed", "type": "aws_iam_user", "name": "u",
  "values": {"name": "u", "tags": null, "tags_all": {"Owner": "x", "Team": "y"}}},
 {"address": "aws_iam_access_key.k", "mode": "managed", "type": "aws_iam_access_key", "name": "k",
  "values": {"user": "u"}}]}}}"#;
    assert_eq!(
        one("plan.json", plan),
        ["KW-CHECK-008 4 aws_iam_access_key.k/access-key"]
    );
}

#[test]
fn kubernetes_rules() {
    let yaml = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: ci-admin
subjects:
- kind: ServiceAccount
  name: deployer
  namespace: ci
roleRef:
  kind: ClusterRole
  name: cluster-admin
  apiGroup: rbac.authorization.k8s.io
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: everything
  namespace: ci
rules:
- apiGroups: [""]
  resources: ["*"]
  verbs: ["get"]
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: deployer
  namespace: ci
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: idle
  namespace: ci
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: quiet
  namespace: ci
automountServiceAccountToken: false
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: ci
spec:
  serviceAccountName: idle
  containers: [{name: web, image: nginx}]
"#;
    assert_eq!(
        one("k8s/rbac.yaml", yaml),
        [
            "KW-CHECK-010 11:9 ClusterRoleBinding/ci-admin/cluster-admin",
            "KW-CHECK-011 21:16 Role/ci/everything/wildcard",
            "KW-CHECK-012 33:9 ServiceAccount/ci/idle/automount",
            "KW-CHECK-012 46:9 Pod/ci/web/automount",
        ]
    );
    // A binding in another file counts.
    let binding = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b, namespace: ci}\nsubjects: [{kind: ServiceAccount, name: idle}]\nroleRef: {kind: Role, name: r}\n";
    let both = check_files(&[("a.yaml", yaml), ("b.yaml", binding)]);
    assert!(!both.iter().any(|p| p.contains("KW-CHECK-012")), "{both:?}");
}

#[test]
fn broken_inputs_name_file_and_line() {
    assert_eq!(
        one("p.json", "{\n \"Statement\": [\n  oops\n"),
        ["error p.json:3: invalid JSON: expected value at line 3 column 3"]
    );
    assert_eq!(
        one("main.tf", "resource \"aws_iam_user\" \"u\" {\n  name = \n"),
        [
            "error main.tf:2: invalid HCL: invalid expression; expected `\"`, `[`, `{`, `-`, `!`, `(`, `_`, `<`, letter or digit"
        ]
    );
    let bad_statement = r#"{"Statement": [{"Effect": "Maybe", "Action": "*"}]}"#;
    assert_eq!(
        one("p.json", bad_statement),
        [
            "error p.json:1: policy statement 0: `Effect` is Some(\"Maybe\"), expected `Allow` or `Deny`"
        ]
    );
    let yaml = "kind: Role\nmetadata:\n  name: [\n";
    assert!(
        one("r.yaml", yaml)[0].starts_with("error r.yaml:1: invalid YAML"),
        "{:?}",
        one("r.yaml", yaml)
    );
}

#[test]
fn unknown_files_and_templates_are_skipped() {
    let report = run_with(
        &[
            ("package.json", "{\"name\": \"x\"}"),
            ("README.md", "# hi"),
            (
                "chart/templates/sa.yaml",
                "kind: ServiceAccount\nmetadata:\n  name: {{ .Values.name }}\n",
            ),
        ],
        &Config::default(),
    );
    assert_eq!(report.files, 0);
    assert!(report.problems.is_empty() && report.errors.is_empty());
    assert_eq!(report.skipped.len(), 3);
}

#[test]
fn fingerprints_ignore_lines_and_baselines_match() {
    let before =
        r#"{"Statement": [{"Sid": "A", "Effect": "Allow", "Action": "*", "Resource": "*"}]}"#;
    let after = format!("\n\n{before}");
    let a = run_with(&[("p.json", before)], &Config::default());
    let mut b = run_with(&[("p.json", &after)], &Config::default());
    assert_ne!(a.problems[0].line, b.problems[0].line);
    assert_eq!(a.problems[0].fingerprint(), b.problems[0].fingerprint());
    let doc = serde_json::to_vec(&json::document(&a, "0")).unwrap_or_default();
    let known = json::baseline(&doc).unwrap_or_default();
    b.apply_baseline(&known);
    assert_eq!(b.failing().count(), 0);
    let sarif = serde_json::to_vec(&sarif::log(&a, "0", false)).unwrap_or_default();
    assert_eq!(json::baseline(&sarif).unwrap_or_default(), known);
    assert!(json::baseline(b"{}").is_err());
}
