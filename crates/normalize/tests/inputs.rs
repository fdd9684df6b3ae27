//! The snapshot inputs that describe identities from outside the platforms' own APIs:
//! Terraform (plan, state, `.tf`), `CODEOWNERS`, a people directory and Lambda's
//! `list-functions`. Each fixture goes through `sniff` and `normalize_document` with its
//! path in the context, as the engine does, and the emitted objects are checked whole.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keyward_model::{Diagnostic, IdentityKind, Observation, SnapshotObject, SourceKind};
use keyward_normalize::{Context, Format, Layout, Output, Sink, normalize_document, sniff};
use serde_json::{Value, json};

#[derive(Default, Debug)]
struct Collect {
    objects: Vec<SnapshotObject>,
    observations: Vec<Observation>,
    rejects: Vec<Diagnostic>,
}

impl Sink for Collect {
    fn accept(&mut self, out: Output<'_>) {
        self.objects.extend(out.objects);
        self.observations.extend(out.observations);
    }
    fn reject(&mut self, diag: Diagnostic) {
        self.rejects.push(diag);
    }
}

impl Collect {
    /// Objects as `{"kind","id","scope","doc"}` JSON, for whole-value comparison.
    fn objects_json(&self) -> Vec<Value> {
        self.objects
            .iter()
            .map(|o| serde_json::to_value(o).unwrap())
            .collect()
    }
    fn reject_lines(&self) -> Vec<u64> {
        self.rejects.iter().map(|d| d.line).collect()
    }
}

/// Sniffs `bytes` as the file `path` (it must be `want`, as a document) and normalizes it.
fn run(path: &str, bytes: &str, want: Format) -> Collect {
    assert_eq!(
        sniff(bytes.as_bytes(), path),
        Some((Layout::Document, want)),
        "{path}"
    );
    let mut ctx = Context::default().with_path(path);
    let mut sink = Collect::default();
    normalize_document(want, bytes.as_bytes(), &mut ctx, &mut sink);
    // Nothing secret survives, whatever the format.
    let all = format!("{:?}", sink.objects);
    for secret in SECRETS {
        assert!(!all.contains(secret), "{path}: `{secret}` kept");
    }
    sink
}

/// Values that appear in the fixtures and must never be kept.
const SECRETS: [&str; 4] = [
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "BEXAMPLESMTPPASSWORDV4",
    "hunter2",
    "postgres://orders:",
];

// -----------------------------------------------------------------------------------------
// Terraform

const PLAN: &str = r#"{
  "format_version": "1.2",
  "terraform_version": "1.9.8",
  "planned_values": {
    "root_module": {
      "resources": [
        {
          "address": "aws_s3_bucket.artifacts",
          "mode": "managed",
          "type": "aws_s3_bucket",
          "name": "artifacts",
          "provider_name": "registry.terraform.io/hashicorp/aws",
          "schema_version": 0,
          "values": {"bucket": "acme-artifacts", "force_destroy": false},
          "sensitive_values": {}
        }
      ],
      "child_modules": [
        {
          "address": "module.iam",
          "resources": [
            {
              "address": "module.iam.aws_iam_role.deployer",
              "mode": "managed",
              "type": "aws_iam_role",
              "name": "deployer",
              "provider_name": "registry.terraform.io/hashicorp/aws",
              "schema_version": 0,
              "values": {
                "assume_role_policy": "{\"Statement\":[{\"Action\":\"sts:AssumeRoleWithWebIdentity\",\"Effect\":\"Allow\",\"Principal\":{\"Federated\":\"arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com\"}}],\"Version\":\"2012-10-17\"}",
                "description": "CI deploys",
                "force_detach_policies": false,
                "max_session_duration": 3600,
                "name": "deployer",
                "path": "/ci/",
                "permissions_boundary": null,
                "tags": {"team": "platform"},
                "tags_all": {"team": "platform"}
              },
              "sensitive_values": {"inline_policy": [], "managed_policy_arns": [], "tags": {}, "tags_all": {}}
            },
            {
              "address": "module.iam.aws_iam_access_key.ci[0]",
              "mode": "managed",
              "type": "aws_iam_access_key",
              "name": "ci",
              "index": 0,
              "provider_name": "registry.terraform.io/hashicorp/aws",
              "schema_version": 0,
              "values": {"pgp_key": null, "status": "Active", "user": "svc-ci"},
              "sensitive_values": {}
            },
            {
              "address": "module.iam.data.aws_iam_policy_document.trust",
              "mode": "data",
              "type": "aws_iam_policy_document",
              "name": "trust",
              "values": {"json": "{}"}
            }
          ],
          "child_modules": [
            {
              "address": "module.iam.module.oidc",
              "resources": [
                {
                  "address": "module.iam.module.oidc.aws_iam_openid_connect_provider.github",
                  "mode": "managed",
                  "type": "aws_iam_openid_connect_provider",
                  "name": "github",
                  "values": {
                    "client_id_list": ["sts.amazonaws.com"],
                    "url": "https://token.actions.githubusercontent.com"
                  }
                }
              ]
            }
          ]
        }
      ]
    }
  },
  "resource_changes": [
    {
      "address": "module.iam.aws_iam_role.deployer",
      "module_address": "module.iam",
      "mode": "managed",
      "type": "aws_iam_role",
      "name": "deployer",
      "change": {"actions": ["create"], "before": null, "after": {"name": "deployer"}, "after_unknown": {"arn": true, "id": true}}
    }
  ],
  "prior_state": {
    "format_version": "1.0",
    "terraform_version": "1.9.8",
    "values": {"root_module": {"resources": [
      {
        "address": "module.iam.aws_iam_access_key.old",
        "mode": "managed",
        "type": "aws_iam_access_key",
        "name": "old",
        "values": {"id": "AKIAEXAMPLEOLDKEY000", "secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "user": "svc-ci"}
      }
    ]}}
  },
  "configuration": {"provider_config": {"aws": {"name": "aws", "full_name": "registry.terraform.io/hashicorp/aws"}}}
}
"#;

#[test]
fn terraform_plan_walks_modules_and_parses_policies() {
    let out = run("plans/ci.plan.json", PLAN, Format::Terraform);
    assert!(out.rejects.is_empty(), "{:?}", out.rejects);
    assert_eq!(
        out.objects_json(),
        vec![
            json!({
                "kind": "tf_resource",
                "id": "plans/ci.plan.json#module.iam.aws_iam_role.deployer",
                "scope": null,
                "doc": {
                    "address": "module.iam.aws_iam_role.deployer",
                    "type": "aws_iam_role",
                    "name": "deployer",
                    "mode": "managed",
                    "file": "plans/ci.plan.json",
                    "line": null,
                    "values": {
                        "assume_role_policy": {
                            "Statement": [{
                                "Action": "sts:AssumeRoleWithWebIdentity",
                                "Effect": "Allow",
                                "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"}
                            }],
                            "Version": "2012-10-17"
                        },
                        "description": "CI deploys",
                        "force_detach_policies": false,
                        "max_session_duration": 3600,
                        "name": "deployer",
                        "path": "/ci/",
                        "permissions_boundary": null,
                        "tags": {"team": "platform"},
                        "tags_all": {"team": "platform"}
                    }
                }
            }),
            json!({
                "kind": "tf_resource",
                "id": "plans/ci.plan.json#module.iam.aws_iam_access_key.ci[0]",
                "scope": null,
                "doc": {
                    "address": "module.iam.aws_iam_access_key.ci[0]",
                    "type": "aws_iam_access_key",
                    "name": "ci",
                    "mode": "managed",
                    "file": "plans/ci.plan.json",
                    "line": null,
                    "values": {"pgp_key": null, "status": "Active", "user": "svc-ci"}
                }
            }),
            json!({
                "kind": "tf_resource",
                "id": "plans/ci.plan.json#module.iam.module.oidc.aws_iam_openid_connect_provider.github",
                "scope": null,
                "doc": {
                    "address": "module.iam.module.oidc.aws_iam_openid_connect_provider.github",
                    "type": "aws_iam_openid_connect_provider",
                    "name": "github",
                    "mode": "managed",
                    "file": "plans/ci.plan.json",
                    "line": null,
                    "values": {
                        "client_id_list": ["sts.amazonaws.com"],
                        "url": "https://token.actions.githubusercontent.com"
                    }
                }
            }),
        ]
    );
}

const STATE: &str = r#"{
  "format_version": "1.0",
  "terraform_version": "1.9.8",
  "values": {
    "root_module": {
      "resources": [
        {
          "address": "aws_iam_user.terraform_runner",
          "mode": "managed",
          "type": "aws_iam_user",
          "name": "terraform_runner",
          "provider_name": "registry.terraform.io/hashicorp/aws",
          "schema_version": 0,
          "values": {
            "arn": "arn:aws:iam::111122223333:user/terraform-runner",
            "force_destroy": false,
            "id": "terraform-runner",
            "name": "terraform-runner",
            "path": "/",
            "permissions_boundary": "",
            "tags": {"team": "platform"},
            "tags_all": {"team": "platform"},
            "unique_id": "AIDAEXAMPLETFRUNNER01"
          },
          "sensitive_values": {"tags": {}, "tags_all": {}}
        },
        {
          "address": "aws_iam_access_key.terraform_runner",
          "mode": "managed",
          "type": "aws_iam_access_key",
          "name": "terraform_runner",
          "provider_name": "registry.terraform.io/hashicorp/aws",
          "schema_version": 0,
          "values": {
            "create_date": "2026-03-03T09:31:08Z",
            "encrypted_secret": null,
            "encrypted_ses_smtp_password_v4": null,
            "id": "AKIAEXAMPLETFRUNNER1",
            "key_fingerprint": null,
            "pgp_key": null,
            "secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "ses_smtp_password_v4": "BEXAMPLESMTPPASSWORDV4",
            "status": "Active",
            "user": "terraform-runner"
          },
          "sensitive_values": {}
        },
        {
          "address": "aws_iam_role.orders",
          "mode": "managed",
          "type": "aws_iam_role",
          "name": "orders",
          "values": {
            "arn": "arn:aws:iam::111122223333:role/lambda-orders-processor",
            "assume_role_policy": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"lambda.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}",
            "inline_policy": [{"name": "kms", "policy": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"kms:Decrypt\",\"Resource\":\"*\"}]}"}],
            "name": "lambda-orders-processor",
            "path": "/",
            "tags": {"team": "orders"}
          }
        },
        {
          "address": "aws_lambda_function.orders",
          "mode": "managed",
          "type": "aws_lambda_function",
          "name": "orders",
          "values": {
            "arn": "arn:aws:lambda:us-east-1:111122223333:function:orders-processor",
            "environment": [{"variables": {"DATABASE_URL": "postgres://orders:hunter2@db.internal/orders"}}],
            "function_name": "orders-processor",
            "handler": "app.handler",
            "role": "arn:aws:iam::111122223333:role/lambda-orders-processor",
            "runtime": "python3.12"
          }
        },
        {
          "address": "data.aws_caller_identity.current",
          "mode": "data",
          "type": "aws_caller_identity",
          "name": "current",
          "values": {"account_id": "111122223333"}
        }
      ]
    }
  }
}
"#;

#[test]
fn terraform_state_drops_secrets() {
    let out = run("state/prod.tfstate.json", STATE, Format::Terraform);
    assert!(out.rejects.is_empty(), "{:?}", out.rejects);
    let docs: Vec<&Value> = out.objects.iter().map(|o| &o.doc).collect();
    assert_eq!(
        docs.iter()
            .map(|d| d["address"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec![
            "aws_iam_user.terraform_runner",
            "aws_iam_access_key.terraform_runner",
            "aws_iam_role.orders",
            "aws_lambda_function.orders",
        ]
    );
    assert_eq!(
        docs[0]["values"],
        json!({
            "arn": "arn:aws:iam::111122223333:user/terraform-runner",
            "force_destroy": false,
            "id": "terraform-runner",
            "name": "terraform-runner",
            "path": "/",
            "permissions_boundary": "",
            "tags": {"team": "platform"},
            "tags_all": {"team": "platform"},
            "unique_id": "AIDAEXAMPLETFRUNNER01"
        })
    );
    assert_eq!(
        docs[1]["values"],
        json!({
            "create_date": "2026-03-03T09:31:08Z",
            "id": "AKIAEXAMPLETFRUNNER1",
            "key_fingerprint": null,
            "pgp_key": null,
            "status": "Active",
            "user": "terraform-runner"
        })
    );
    // Nested policy documents are parsed too.
    assert_eq!(
        docs[2]["values"]["inline_policy"][0]["policy"]["Statement"][0]["Action"],
        json!("kms:Decrypt")
    );
    assert_eq!(
        docs[2]["values"]["assume_role_policy"]["Statement"][0]["Principal"],
        json!({"Service": "lambda.amazonaws.com"})
    );
    assert_eq!(
        docs[3]["values"],
        json!({
            "arn": "arn:aws:lambda:us-east-1:111122223333:function:orders-processor",
            "function_name": "orders-processor",
            "handler": "app.handler",
            "role": "arn:aws:iam::111122223333:role/lambda-orders-processor",
            "runtime": "python3.12"
        })
    );
}

const HCL: &str = r#"# IAM for the CI runner and the reports exporter.
variable "environment" {
  type = string
}

resource "aws_iam_role" "reports_exporter" {
  name = "reports-exporter"
  path = "/app/"

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect    = "Allow"
        Action    = "sts:AssumeRole"
        Principal = { Service = "ecs-tasks.amazonaws.com" }
      },
    ]
  })

  tags = {
    team        = "platform"
    environment = var.environment
  }
}

resource "aws_iam_role_policy_attachment" "reports_exporter_ro" {
  role       = aws_iam_role.reports_exporter.name
  policy_arn = "arn:aws:iam::aws:policy/ReadOnlyAccess"
}

resource "aws_iam_user" "terraform_runner" {
  name = "terraform-runner"
}

resource "aws_iam_access_key" "terraform_runner" {
  user    = aws_iam_user.terraform_runner.name
  pgp_key = "keybase:acme_platform"
}

resource "kubernetes_service_account_v1" "jenkins_deploy" {
  metadata {
    name      = "jenkins-deploy-sa"
    namespace = "ci"
    annotations = {
      "eks.amazonaws.com/role-arn" = "arn:aws:iam::111122223333:role/${var.environment}-deployer"
    }
  }
  automount_service_account_token = true
}

resource "aws_s3_bucket" "reports" {
  bucket = "acme-reports-${var.environment}"
}

output "runner_secret" {
  value     = aws_iam_access_key.terraform_runner.encrypted_secret
  sensitive = true
}
"#;

#[test]
fn terraform_hcl_keeps_lines_references_and_literal_policies() {
    let out = run("infra/iam.tf", HCL, Format::Terraform);
    assert!(out.rejects.is_empty(), "{:?}", out.rejects);
    // `unresolved`: where the value is source text (a reference, a template).
    let tf =
        |address: &str, ty: &str, name: &str, line: u64, values: Value, unresolved: &[&str]| {
            let mut doc = json!({"address": address, "type": ty, "name": name, "mode": "managed",
                    "file": "infra/iam.tf", "line": line, "values": values});
            if !unresolved.is_empty() {
                doc["unresolved"] = json!(unresolved);
            }
            json!({
                "kind": "tf_resource",
                "id": format!("infra/iam.tf#{address}"),
                "scope": null,
                "doc": doc
            })
        };
    assert_eq!(
        out.objects_json(),
        vec![
            tf(
                "aws_iam_role.reports_exporter",
                "aws_iam_role",
                "reports_exporter",
                6,
                json!({
                    "name": "reports-exporter",
                    "path": "/app/",
                    "assume_role_policy": {
                        "Version": "2012-10-17",
                        "Statement": [{
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Principal": {"Service": "ecs-tasks.amazonaws.com"}
                        }]
                    },
                    "tags": {"team": "platform", "environment": "var.environment"}
                }),
                &["/tags/environment"]
            ),
            tf(
                "aws_iam_role_policy_attachment.reports_exporter_ro",
                "aws_iam_role_policy_attachment",
                "reports_exporter_ro",
                27,
                json!({
                    "role": "aws_iam_role.reports_exporter.name",
                    "policy_arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"
                }),
                &["/role"]
            ),
            tf(
                "aws_iam_user.terraform_runner",
                "aws_iam_user",
                "terraform_runner",
                32,
                json!({"name": "terraform-runner"}),
                &[]
            ),
            tf(
                "aws_iam_access_key.terraform_runner",
                "aws_iam_access_key",
                "terraform_runner",
                36,
                json!({
                    "user": "aws_iam_user.terraform_runner.name",
                    "pgp_key": "keybase:acme_platform"
                }),
                &["/user"]
            ),
            tf(
                "kubernetes_service_account_v1.jenkins_deploy",
                "kubernetes_service_account_v1",
                "jenkins_deploy",
                41,
                json!({
                    "metadata": [{
                        "name": "jenkins-deploy-sa",
                        "namespace": "ci",
                        "annotations": {
                            "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/${var.environment}-deployer"
                        }
                    }],
                    "automount_service_account_token": true
                }),
                &["/metadata/0/annotations/eks.amazonaws.com~1role-arn"]
            ),
        ]
    );
}

#[test]
fn terraform_hcl_syntax_error_is_one_diagnostic_on_its_line() {
    let broken = HCL.replacen("  path = \"/app/\"", "  path = = \"/app/\"", 1);
    let out = run("infra/iam.tf", &broken, Format::Terraform);
    assert!(out.objects.is_empty());
    assert_eq!(out.reject_lines(), vec![8], "{:?}", out.rejects);
    assert!(out.rejects[0].reason.to_string().starts_with("invalid HCL"));
}

#[test]
fn terraform_broken_json_is_one_diagnostic_on_its_line() {
    let broken = STATE.replacen("\"force_destroy\": false,", "\"force_destroy\": fals,", 1);
    let out = run("state/prod.tfstate.json", &broken, Format::Terraform);
    assert!(out.objects.is_empty());
    assert_eq!(out.reject_lines(), vec![16], "{:?}", out.rejects);
}

// -----------------------------------------------------------------------------------------
// CODEOWNERS

const CODEOWNERS: &str = "\
# Platform owns the whole Terraform tree by default.
*                       @acme/platform

# IAM changes need security too.
/iam/                   @acme/platform @acme/security
*.tf                    @acme/platform alice@acme.example

/orders/                @acme/orders bob@acme.example
/orders/generated/
/legacy/                platform team
";

#[test]
fn codeowners_rules_and_a_bad_line() {
    let out = run(
        "repos/infra/.github/CODEOWNERS",
        CODEOWNERS,
        Format::Codeowners,
    );
    assert_eq!(out.reject_lines(), vec![10]);
    // The reason names the problem, not the value (dead letters echo no values).
    assert!(
        out.rejects[0]
            .reason
            .to_string()
            .contains("an owner is not"),
        "{:?}",
        out.rejects
    );
    assert!(!out.rejects[0].reason.to_string().contains("platform"));
    let rule = |pattern: &str, owners: &[&str], line: u64| json!({"pattern": pattern, "owners": owners, "line": line});
    assert_eq!(
        out.objects_json(),
        vec![json!({
            "kind": "codeowners",
            "id": "repos/infra",
            "scope": null,
            "doc": {
                "file": "repos/infra/.github/CODEOWNERS",
                "root": "repos/infra",
                "rules": [
                    rule("*", &["@acme/platform"], 2),
                    rule("/iam/", &["@acme/platform", "@acme/security"], 5),
                    rule("*.tf", &["@acme/platform", "alice@acme.example"], 6),
                    rule("/orders/", &["@acme/orders", "bob@acme.example"], 8),
                    rule("/orders/generated/", &[], 9),
                ]
            }
        })]
    );
    // The graph crate reads the rules back and asks who owns a file.
    let rules: Vec<keyward_normalize::codeowners::Rule> =
        serde_json::from_value(out.objects[0].doc["rules"].clone()).unwrap();
    let owners =
        |p: &str| keyward_normalize::codeowners::owners_for(&rules, p).map(<[String]>::to_vec);
    assert_eq!(
        owners("iam/roles.tf"),
        Some(vec!["@acme/platform".into(), "alice@acme.example".into()])
    );
    assert_eq!(
        owners("iam/README.md"),
        Some(vec!["@acme/platform".into(), "@acme/security".into()])
    );
    assert_eq!(owners("orders/generated/x.json"), Some(vec![]));
    assert_eq!(
        owners("legacy/old.sh"),
        Some(vec!["@acme/platform".into()]),
        "the rejected `/legacy/` line does not count"
    );
}

// -----------------------------------------------------------------------------------------
// People directory

const PEOPLE: &str = "\
email,name,team,status,start_date
alice@acme.example,Alice Martin,platform,active,2021-04-01
Bob@Acme.example,Bob Chen,platform,Terminated,2019-09-15
carol@acme.example,Carol Diaz,orders,,2023-01-09
dave.acme.example,Dave Kim,orders,active,2022-06-20
\"erin@acme.example\",\"Erin O'Neil, PhD\",security,on-leave,2020-02-03
frank@acme.example,Frank Ito,security,offboarded,2018-11-30
";

#[test]
fn people_directory_rows() {
    let out = run("hr/people.csv", PEOPLE, Format::PeopleDirectory);
    assert_eq!(out.reject_lines(), vec![5], "{:?}", out.rejects);
    // Field and reason, never the value: a token pasted into a column must not come back.
    assert_eq!(out.rejects[0].reason, "`email` is not an e-mail address");
    assert!(
        out.rejects
            .iter()
            .all(|r| !r.reason.to_string().contains("dave"))
    );
    let person = |email: &str, name: &str, team: &str, status: &str| {
        json!({"kind": "person", "id": email, "scope": "people.csv",
               "doc": {"email": email, "name": name, "team": team, "status": status}})
    };
    assert_eq!(
        out.objects_json(),
        vec![
            person("alice@acme.example", "Alice Martin", "platform", "active"),
            person("bob@acme.example", "Bob Chen", "platform", "departed"),
            person("carol@acme.example", "Carol Diaz", "orders", "active"),
            // An HR vocabulary's status: on leave is still here.
            person(
                "erin@acme.example",
                "Erin O'Neil, PhD",
                "security",
                "active"
            ),
            person("frank@acme.example", "Frank Ito", "security", "departed"),
        ]
    );
}

// -----------------------------------------------------------------------------------------
// Lambda

const FUNCTIONS: &str = r#"{
    "Functions": [
        {
            "FunctionName": "orders-processor",
            "FunctionArn": "arn:aws:lambda:us-east-1:111122223333:function:orders-processor",
            "Runtime": "python3.12",
            "Role": "arn:aws:iam::111122223333:role/lambda-orders-processor",
            "Handler": "app.handler",
            "CodeSize": 48213,
            "Description": "Processes order events",
            "Timeout": 30,
            "MemorySize": 512,
            "LastModified": "2026-10-02T14:11:09.000+0000",
            "CodeSha256": "kP2c7dyR7ZyRq0ZpXcE0wPq8a5v6e3Yc1bq3hY2f9xQ=",
            "Version": "$LATEST",
            "Environment": {
                "Variables": {
                    "DATABASE_URL": "postgres://orders:hunter2@db.internal/orders",
                    "KMS_KEY_ID": "alias/orders"
                }
            },
            "TracingConfig": {"Mode": "PassThrough"},
            "RevisionId": "4c2d6e1a-8f0b-4b7e-9a57-3f1c2d9e8b10",
            "PackageType": "Zip",
            "Architectures": ["arm64"],
            "EphemeralStorage": {"Size": 512},
            "LoggingConfig": {"LogFormat": "Text", "LogGroup": "/aws/lambda/orders-processor"}
        },
        {
            "FunctionName": "half-deleted",
            "Runtime": "nodejs20.x",
            "Role": "arn:aws:iam::111122223333:role/half-deleted"
        },
        {
            "FunctionName": "reports-export",
            "FunctionArn": "arn:aws:lambda:us-east-1:111122223333:function:reports-export",
            "Runtime": "provided.al2023",
            "Role": "arn:aws:iam::111122223333:role/app/reports-exporter",
            "Handler": "bootstrap",
            "CodeSize": 7340032,
            "Description": "",
            "Timeout": 900,
            "MemorySize": 1024,
            "LastModified": "2026-11-11T14:20:41.000+0000",
            "CodeSha256": "0q8tq2vR0u1Jm8mKQnF0b2b5m7Hk3nU4yq7o9d6Lx1s=",
            "Version": "$LATEST",
            "TracingConfig": {"Mode": "Active"},
            "RevisionId": "b7f3e8a2-1c4d-4e5f-8a9b-0c1d2e3f4a5b",
            "PackageType": "Zip",
            "Architectures": ["x86_64"],
            "EphemeralStorage": {"Size": 512},
            "LoggingConfig": {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN", "LogGroup": "/aws/lambda/reports-export"}
        }
    ],
    "NextMarker": "eyJNYXJrZXIiOiBudWxsfQ=="
}
"#;

#[test]
fn lambda_functions_without_environment_and_their_roles() {
    let out = run(
        "aws/111122223333/lambda-functions.json",
        FUNCTIONS,
        Format::LambdaFunctions,
    );
    assert_eq!(out.reject_lines(), vec![29], "{:?}", out.rejects);
    assert!(out.rejects[0].reason.to_string().contains("`FunctionArn`"));
    let all: Value = serde_json::from_str(FUNCTIONS).unwrap();
    let mut first = all["Functions"][0].clone();
    first.as_object_mut().unwrap().remove("Environment");
    assert_eq!(
        out.objects_json(),
        vec![
            json!({"kind": "lambda_function",
                   "id": "arn:aws:lambda:us-east-1:111122223333:function:orders-processor",
                   "scope": "111122223333", "doc": first}),
            json!({"kind": "lambda_function",
                   "id": "arn:aws:lambda:us-east-1:111122223333:function:reports-export",
                   "scope": "111122223333", "doc": all["Functions"][2]}),
        ]
    );
    let roles: Vec<(&str, &str, Option<&str>, IdentityKind, SourceKind)> = out
        .observations
        .iter()
        .map(|o| {
            (
                o.id.as_str(),
                o.name.as_str(),
                o.facts.arn.as_deref(),
                o.kind,
                o.source,
            )
        })
        .collect();
    assert_eq!(
        roles,
        vec![
            (
                "arn:aws:iam::111122223333:role/lambda-orders-processor",
                "lambda-orders-processor",
                Some("arn:aws:iam::111122223333:role/lambda-orders-processor"),
                IdentityKind::IamRole,
                SourceKind::LambdaFunctions
            ),
            (
                "arn:aws:iam::111122223333:role/reports-exporter",
                "reports-exporter",
                Some("arn:aws:iam::111122223333:role/app/reports-exporter"),
                IdentityKind::IamRole,
                SourceKind::LambdaFunctions
            ),
        ]
    );
    assert!(
        out.observations
            .iter()
            .all(|o| o.facts.account.as_deref() == Some("111122223333"))
    );
}

#[test]
fn new_sources_are_snapshots() {
    for s in [
        SourceKind::Terraform,
        SourceKind::Codeowners,
        SourceKind::PeopleDirectory,
        SourceKind::LambdaFunctions,
    ] {
        assert!(!s.is_log());
        assert_eq!(
            serde_json::to_value(s).unwrap(),
            json!(s.as_str()),
            "serde and as_str agree"
        );
    }
}

// -----------------------------------------------------------------------------------------
// The example estate: the new files agree with the IAM snapshot and with each other.

fn estate_file(rel: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/estate");
    std::fs::read_to_string(root.join(rel)).unwrap()
}

#[test]
fn estate_terraform_matches_the_iam_snapshot() {
    let authz: Value = serde_json::from_str(&estate_file(
        "aws/111122223333/iam-authorization-details.json",
    ))
    .unwrap();
    let out = run(
        "examples/estate/terraform/iam.tf",
        &estate_file("terraform/iam.tf"),
        Format::Terraform,
    );
    assert!(out.rejects.is_empty(), "{:?}", out.rejects);
    assert_eq!(out.objects.len(), 17);
    let mut roles = 0;
    for o in &out.objects {
        let (doc, values) = (&o.doc, &o.doc["values"]);
        assert!(doc["line"].as_u64().unwrap() > 1);
        match doc["type"].as_str().unwrap() {
            "aws_iam_role" => {
                roles += 1;
                let live = authz["RoleDetailList"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["RoleName"] == values["name"])
                    .unwrap_or_else(|| panic!("{} not in the snapshot", values["name"]));
                assert_eq!(
                    values["assume_role_policy"], live["AssumeRolePolicyDocument"],
                    "{}",
                    o.id
                );
                assert_eq!(values.get("path").unwrap_or(&json!("/")), &live["Path"]);
                for tag in live["Tags"].as_array().unwrap() {
                    assert_eq!(values["tags"][tag["Key"].as_str().unwrap()], tag["Value"]);
                }
            }
            "aws_iam_policy" => {
                let live = authz["Policies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["PolicyName"] == values["name"])
                    .unwrap();
                let default = live["PolicyVersionList"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|v| v["IsDefaultVersion"] == json!(true))
                    .unwrap();
                assert_eq!(values["policy"], default["Document"], "{}", o.id);
            }
            _ => {}
        }
    }
    assert_eq!(roles, 5);
    let sa = out
        .objects
        .iter()
        .find(|o| o.doc["type"] == "kubernetes_service_account_v1")
        .unwrap();
    assert_eq!(
        sa.doc["values"]["metadata"][0]["annotations"]["eks.amazonaws.com/role-arn"],
        json!("aws_iam_role.irsa_orders_api.arn")
    );
}

#[test]
fn estate_owners_and_people_agree() {
    let people = run(
        "examples/estate/people.csv",
        &estate_file("people.csv"),
        Format::PeopleDirectory,
    );
    assert!(people.rejects.is_empty(), "{:?}", people.rejects);
    let status = |email: &str| {
        people
            .objects
            .iter()
            .find(|o| o.id == email)
            .map(|o| o.doc["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status("bob@acme.example").as_deref(), Some("departed"));
    assert_eq!(status("alice@acme.example").as_deref(), Some("active"));

    let owners = run(
        "examples/estate/terraform/CODEOWNERS",
        &estate_file("terraform/CODEOWNERS"),
        Format::Codeowners,
    );
    assert!(owners.rejects.is_empty(), "{:?}", owners.rejects);
    let o = &owners.objects[0];
    assert_eq!(o.id, "examples/estate/terraform");
    let rules: Vec<keyward_normalize::codeowners::Rule> =
        serde_json::from_value(o.doc["rules"].clone()).unwrap();
    assert_eq!(
        keyward_normalize::codeowners::owners_for(&rules, "iam.tf"),
        Some(
            &[
                "@acme/platform".to_owned(),
                "@acme/security".to_owned(),
                "bob@acme.example".to_owned()
            ][..]
        )
    );
    // Every owner named by e-mail is in the directory.
    for owner in rules.iter().flat_map(|r| &r.owners) {
        if !owner.starts_with('@') {
            assert!(status(owner).is_some(), "{owner} not in people.csv");
        }
    }
}

#[test]
fn estate_lambda_roles_are_snapshot_roles() {
    let authz: Value = serde_json::from_str(&estate_file(
        "aws/111122223333/iam-authorization-details.json",
    ))
    .unwrap();
    let out = run(
        "examples/estate/aws/111122223333/lambda-functions.json",
        &estate_file("aws/111122223333/lambda-functions.json"),
        Format::LambdaFunctions,
    );
    assert!(out.rejects.is_empty(), "{:?}", out.rejects);
    assert_eq!(out.objects.len(), 2);
    for o in &out.observations {
        assert!(
            authz["RoleDetailList"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["Arn"].as_str() == o.facts.arn.as_deref()),
            "{}",
            o.id
        );
    }
}

// -----------------------------------------------------------------------------------------
// Damaged inputs: the fixtures with random edits never panic, and every diagnostic names a
// line inside the document.

mod damaged {
    use proptest::prelude::*;

    use super::*;

    fn edited(base: &str, edits: &[(usize, u8, bool)]) -> Vec<u8> {
        let mut b = base.as_bytes().to_vec();
        for &(pos, byte, insert) in edits {
            let at = pos % (b.len() + 1);
            if insert || at == b.len() {
                b.insert(at, byte);
            } else {
                b[at] = byte;
            }
        }
        b
    }

    fn check(format: Format, path: &str, bytes: &[u8]) {
        let mut ctx = Context::default().with_path(path);
        let mut sink = Collect::default();
        normalize_document(format, bytes, &mut ctx, &mut sink);
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        for d in &sink.rejects {
            assert!(d.line >= 1 && d.line <= lines, "{d:?} in {lines} lines");
            assert!(!d.reason.to_string().is_empty());
        }
    }

    fn edits() -> impl Strategy<Value = Vec<(usize, u8, bool)>> {
        proptest::collection::vec(
            (
                any::<usize>(),
                prop_oneof![
                    Just(b'"'),
                    Just(b'{'),
                    Just(b'}'),
                    Just(b'\n'),
                    Just(b','),
                    Just(b'@'),
                    Just(b'*'),
                    any::<u8>()
                ],
                any::<bool>(),
            ),
            1..6,
        )
    }

    proptest! {
        #[test]
        fn terraform(e in edits(), which in 0..3usize) {
            let base = [PLAN, STATE, HCL][which];
            check(Format::Terraform, "x/main.tf", &edited(base, &e));
        }

        #[test]
        fn codeowners(e in edits()) {
            check(Format::Codeowners, "r/CODEOWNERS", &edited(CODEOWNERS, &e));
        }

        #[test]
        fn people(e in edits()) {
            check(Format::PeopleDirectory, "p.csv", &edited(PEOPLE, &e));
        }

        #[test]
        fn lambda(e in edits()) {
            check(Format::LambdaFunctions, "f.json", &edited(FUNCTIONS, &e));
        }

        #[test]
        fn matcher(pattern in "[a-z/*?.\\\\]{0,16}", path in "[a-z/.]{0,24}") {
            let rules = vec![keyward_normalize::codeowners::Rule {
                pattern: pattern.clone(),
                owners: vec!["@o".into()],
                line: 1,
            }];
            let m = keyward_normalize::codeowners::matches(&pattern, &path);
            prop_assert_eq!(keyward_normalize::codeowners::owners_for(&rules, &path).is_some(), m);
        }
    }
}
