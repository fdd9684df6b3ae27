//! What Terraform declares, on small excerpts: one `check` per case, from Terraform text to
//! each identity's approved and ungoverned facts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Value, json};

use super::*;

const ACCT: &str = "111122223333";

fn account() -> Place {
    Place::Account {
        partition: "aws".into(),
        account: ACCT.into(),
    }
}

/// Each identity `files` define: its name, or why it is refused; and, placed at `place`,
/// its facts and the ungoverned ones' reasons.
fn check(files: &[(&str, &str)], place: fn() -> Place) -> Value {
    let input = TerraformInput {
        label: "infra".into(),
        files: files
            .iter()
            .map(|(p, t)| ((*p).to_owned(), t.as_bytes().to_vec()))
            .collect(),
    };
    let objects = read(&input).unwrap();
    let resources: Vec<Res<'_>> = objects.iter().filter_map(Res::of).collect();
    let mut out = serde_json::Map::new();
    for t in intents(&resources) {
        let v = match &t.refused {
            Some(why) => json!({"refused": why}),
            None => {
                let (facts, ungoverned) = t.facts(place());
                json!({"name": t.name, "facts": facts, "ungoverned": ungoverned})
            }
        };
        out.insert(t.res.address.to_owned(), v);
    }
    Value::Object(out)
}

#[test]
fn a_role_declared_across_resources_resolves_within_its_module() {
    let tf = r#"
resource "aws_iam_role" "app" {
  name = "app"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "ec2.amazonaws.com" } }]
  })
  managed_policy_arns  = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
  permissions_boundary = aws_iam_policy.boundary.arn
  inline_policy {
    name   = "logs"
    policy = "{}"
  }
}

resource "aws_iam_policy" "boundary" {
  name   = "boundary"
  path   = "/guard/"
  policy = "{}"
}

resource "aws_iam_policy" "s3" {
  name   = "s3-read"
  policy = "{}"
}

resource "aws_iam_role_policy_attachment" "s3" {
  role       = aws_iam_role.app.name
  policy_arn = aws_iam_policy.s3.arn
}

resource "aws_iam_role_policy" "extra" {
  name   = "extra"
  role   = "${aws_iam_role.app.id}"
  policy = data.aws_iam_policy_document.x.json
}
"#;
    let got = check(&[("infra/main.tf", tf)], account);
    assert_eq!(
        got["aws_iam_role.app"],
        json!({"name": "app", "ungoverned": {}, "facts": {
            "attached_policies": [
                "arn:aws:iam::111122223333:policy/s3-read",
                "arn:aws:iam::aws:policy/ReadOnlyAccess"
            ],
            "inline_policies": ["extra", "logs"],
            "permissions_boundary": "arn:aws:iam::111122223333:policy/guard/boundary",
            "trust_policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": "sts:AssumeRole", "Principal": {"Service": "ec2.amazonaws.com"}}]}
        }})
    );
}

#[test]
fn what_only_terraform_computes_is_ungoverned_with_why() {
    let tf = r#"
resource "aws_iam_role" "app" {
  name                 = "app"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  permissions_boundary = var.boundary
}

resource "aws_iam_role" "named_by_var" {
  name               = var.name
  assume_role_policy = "{}"
}

resource "aws_iam_role" "maybe" {
  count              = var.enabled ? 1 : 0
  name               = "maybe"
  assume_role_policy = "{}"
}

resource "aws_iam_role" "prefixed" {
  name_prefix        = "ci-"
  assume_role_policy = "{}"
}

resource "aws_iam_role_policy_attachment" "somewhere" {
  role       = var.role
  policy_arn = "arn:aws:iam::aws:policy/AdministratorAccess"
}

resource "aws_iam_role_policy" "templated" {
  name   = "${var.env}-logs"
  role   = aws_iam_role.app.name
  policy = "{}"
}
"#;
    let got = check(&[("main.tf", tf)], account);
    let app = &got["aws_iam_role.app"];
    assert_eq!(app["facts"], json!({}), "{app:#}");
    let why = |f: &str| app["ungoverned"][f].as_str().unwrap().to_owned();
    assert!(why("trust_policy").contains("data source"), "{app:#}");
    assert!(why("permissions_boundary").contains("`var.boundary` (main.tf:2) is a variable"));
    assert!(why("attached_policies").contains(
        "aws_iam_role_policy_attachment.somewhere (main.tf:24) may declare it for any role"
    ));
    assert!(why("inline_policies").contains("${var.env}-logs"));
    assert_eq!(
        got["aws_iam_role.named_by_var"]["refused"],
        json!("its name is not known: `var.name` (main.tf:8) is a variable")
    );
    assert_eq!(
        got["aws_iam_role.maybe"]["refused"],
        json!("`count` is `var.enabled ? 1 : 0`: how many Terraform makes is not known here")
    );
    assert_eq!(
        got["aws_iam_role.prefixed"]["refused"],
        json!("named by `name_prefix`: Terraform picks the name")
    );
}

#[test]
fn a_policy_of_the_configuration_needs_the_account() {
    let tf = r#"
resource "aws_iam_user" "ci" { name = "ci" }
resource "aws_iam_policy" "p" {
  name   = "deploy"
  policy = "{}"
}
resource "aws_iam_user_policy_attachment" "a" {
  user       = aws_iam_user.ci.name
  policy_arn = aws_iam_policy.p.arn
}
"#;
    let got = check(&[("main.tf", tf)], || Place::Unknown);
    assert_eq!(
        got["aws_iam_user.ci"]["ungoverned"]["attached_policies"],
        json!("aws_iam_policy.p's ARN needs the account: pass --account")
    );
    let got = check(&[("main.tf", tf)], account);
    assert_eq!(
        got["aws_iam_user.ci"]["facts"]["attached_policies"],
        json!(["arn:aws:iam::111122223333:policy/deploy"])
    );
}

#[test]
fn a_users_groups_from_either_membership_and_keys_only_from_state() {
    let tf = r#"
resource "aws_iam_user" "ci" { name = "ci" }
resource "aws_iam_user_group_membership" "ci" {
  user   = aws_iam_user.ci.name
  groups = ["builders", aws_iam_group.deployers.name]
}
resource "aws_iam_group" "deployers" { name = "deployers" }
resource "aws_iam_group_membership" "admins" {
  name  = "admins"
  group = "admins"
  users = [aws_iam_user.ci.name]
}
resource "aws_iam_access_key" "ci" { user = aws_iam_user.ci.name }
resource "aws_iam_user" "human" { name = "alice" }
"#;
    let got = check(&[("main.tf", tf)], account);
    let ci = &got["aws_iam_user.ci"];
    assert_eq!(
        ci["facts"]["groups"],
        json!(["admins", "builders", "deployers"])
    );
    assert_eq!(ci["facts"]["attached_policies"], json!([]));
    assert_eq!(ci["facts"]["inline_policies"], json!([]));
    assert!(
        ci["ungoverned"]["active_keys"]
            .as_str()
            .unwrap()
            .contains("known only after apply"),
        "{ci:#}"
    );
    assert!(
        got["aws_iam_user.human"]["ungoverned"]["active_keys"]
            .as_str()
            .unwrap()
            .starts_with("Terraform declares no access key")
    );

    let state = json!({"format_version": "1.0", "values": {"root_module": {"resources": [
        {"address": "aws_iam_user.ci", "mode": "managed", "type": "aws_iam_user", "name": "ci",
         "values": {"name": "ci", "arn": "arn:aws:iam::111122223333:user/ci", "permissions_boundary": null}},
        {"address": "aws_iam_access_key.old", "mode": "managed", "type": "aws_iam_access_key", "name": "old",
         "values": {"user": "ci", "id": "AKIAOLD0000000000000", "status": "Inactive"}},
        {"address": "aws_iam_access_key.new", "mode": "managed", "type": "aws_iam_access_key", "name": "new",
         "values": {"user": "ci", "id": "AKIANEW0000000000000", "status": "Active", "secret": "s3cr3t"}}
    ]}}});
    let got = check(&[("state.json", &state.to_string())], account);
    let ci = &got["aws_iam_user.ci"];
    assert_eq!(ci["facts"]["active_keys"], json!(["AKIANEW0000000000000"]));
    assert!(ci["facts"].get("permissions_boundary").is_none(), "{ci:#}");
}

#[test]
fn a_plan_leaves_what_apply_will_compute_ungoverned() {
    // `planned_values` omits unknown values: the new policy's ARN here.
    let plan = json!({"format_version": "1.2", "planned_values": {"root_module": {"child_modules": [
        {"address": "module.app", "resources": [
            {"address": "module.app.aws_iam_role.r", "mode": "managed", "type": "aws_iam_role", "name": "r",
             "values": {"name": "app", "assume_role_policy": "{\"Version\":\"2012-10-17\",\"Statement\":[]}",
                        "managed_policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]}},
            {"address": "module.app.aws_iam_role_policy_attachment.a", "mode": "managed",
             "type": "aws_iam_role_policy_attachment", "name": "a", "values": {"role": "app"}}
        ]}
    ]}}});
    let got = check(&[("plan.json", &plan.to_string())], account);
    let r = &got["module.app.aws_iam_role.r"];
    assert_eq!(
        r["facts"]["trust_policy"],
        json!({"Version": "2012-10-17", "Statement": []})
    );
    assert_eq!(
        r["ungoverned"]["attached_policies"],
        json!("module.app.aws_iam_role_policy_attachment.a (plan.json) has no known `policy_arn`")
    );
}

#[test]
fn references_stay_in_their_module() {
    let a =
        "resource \"aws_iam_role\" \"this\" {\n  name = \"a\"\n  assume_role_policy = \"{}\"\n}\n";
    let b = "resource \"aws_iam_role_policy_attachment\" \"x\" {\n  role = aws_iam_role.this.name\n  policy_arn = \"arn:aws:iam::aws:policy/ReadOnlyAccess\"\n}\n";
    let got = check(&[("mod_a/main.tf", a), ("mod_b/main.tf", b)], account);
    assert_eq!(
        got["aws_iam_role.this"]["ungoverned"]["attached_policies"],
        json!(
            "aws_iam_role_policy_attachment.x (mod_b/main.tf:1) may declare it for any role: `aws_iam_role.this.name` (mod_b/main.tf:1) names a resource its module does not define"
        )
    );
}

#[test]
fn a_service_account_is_bound_in_its_cluster() {
    let tf = r#"
resource "kubernetes_service_account_v1" "api" {
  metadata {
    name      = "orders-api"
    namespace = "orders"
  }
}
resource "kubernetes_role_binding_v1" "read" {
  metadata {
    name      = "orders-read"
    namespace = "orders"
  }
  role_ref {
    kind = "Role"
    name = "reader"
  }
  subject {
    kind      = "ServiceAccount"
    name      = kubernetes_service_account_v1.api.metadata[0].name
    namespace = "orders"
  }
}
resource "kubernetes_cluster_role_binding_v1" "view" {
  metadata { name = "view-all" }
  subject {
    kind      = "ServiceAccount"
    name      = "orders-api"
    namespace = "orders"
  }
  subject {
    kind = "Group"
    name = "devs"
  }
}
"#;
    let got = check(&[("k8s.tf", tf)], || Place::Cluster("prod".into()));
    assert_eq!(
        got["kubernetes_service_account_v1.api"]["facts"],
        json!({"bindings": [
            "k8s-obj:prod/ClusterRoleBinding//view-all",
            "k8s-obj:prod/RoleBinding/orders/orders-read"
        ]})
    );
}

#[test]
fn unreadable_terraform_names_its_file_and_line() {
    let input = TerraformInput {
        label: "x".into(),
        files: vec![(
            "infra/bad.tf".into(),
            b"resource \"aws_iam_role\" \"r\" {\n  name = \n".to_vec(),
        )],
    };
    let e = read(&input).unwrap_err().to_string();
    assert!(e.starts_with("`infra/bad.tf` line "), "{e}");
}
