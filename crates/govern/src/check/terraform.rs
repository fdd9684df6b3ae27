//! Terraform: `.tf`, `.tf.json` and `terraform show -json`, read by
//! `keyward_normalize::terraform` into `tf_resource` records. Checked: the policy documents
//! of IAM resources (see `policy.rs`), `aws_iam_access_key`, owner tags on roles and users,
//! and Kubernetes bindings to `cluster-admin`.
//!
//! A value Terraform computes (a reference, a call: the record's `unresolved` pointers) is
//! not judged: a policy held as `data.aws_iam_policy_document.x.json`, tags set as
//! `var.tags`. `data "aws_iam_policy_document"` blocks are not read (the parser keeps
//! resources only).

use keyward_model::Diagnostic;
use keyward_normalize::{Context, Output, Sink};
use serde_json::Value;

use super::locate::Text;
use super::policy::{Site, check_document};
use super::{Config, Input, InputError, Problem, Report, Rule, Severity};

/// The parser's records and rejections.
#[derive(Default)]
struct Collect {
    resources: Vec<Value>,
    rejected: Vec<Diagnostic>,
}

impl Sink for Collect {
    fn accept(&mut self, out: Output<'_>) {
        self.resources
            .extend(out.objects.into_iter().map(|o| o.doc));
    }
    fn reject(&mut self, d: Diagnostic) {
        self.rejected.push(d);
    }
}

/// One resource with where it is: from its line to before the next resource's.
struct Resource<'v> {
    doc: &'v Value,
    address: &'v str,
    ty: &'v str,
    values: &'v Value,
    line: u64,
    until: Option<u64>,
}

impl Resource<'_> {
    fn unresolved(&self, pointer: &str) -> bool {
        self.doc
            .get("unresolved")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|p| p == pointer || p.starts_with(&format!("{pointer}/")))
    }

    fn problem(&self, file: &str, rule: Rule, detail: &str, message: String) -> Problem {
        Problem {
            rule,
            severity: rule.severity(),
            message,
            file: file.to_owned(),
            line: self.line,
            column: None,
            key: format!("{}/{detail}", self.address),
            baselined: false,
        }
    }
}

pub(crate) fn check(input: Input<'_>, cfg: &Config, report: &mut Report) {
    let mut sink = Collect::default();
    let ctx = Context::default().with_path(input.path);
    keyward_normalize::terraform::normalize(input.bytes, &ctx, &mut sink);
    for d in sink.rejected {
        report.errors.push(InputError {
            file: input.path.to_owned(),
            line: d.line.max(1),
            reason: d.reason.to_string(),
        });
    }
    let text = Text::new(input.bytes);
    let mut resources: Vec<Resource<'_>> = sink
        .resources
        .iter()
        .filter_map(|doc| {
            let address = doc.get("address")?.as_str()?;
            let ty = doc.get("type")?.as_str()?;
            let name = doc.get("name").and_then(Value::as_str).unwrap_or_default();
            // `.tf` gives the block's line; JSON shapes are found by their address (plans)
            // or their type and name (`.tf.json`).
            let line = doc
                .get("line")
                .and_then(Value::as_u64)
                .or_else(|| text.line_of(&format!("\"{address}\"")))
                .unwrap_or_else(|| {
                    text.find(1, None, &[&format!("\"{ty}\""), &format!("\"{name}\"")])
                        .line
                });
            Some(Resource {
                doc,
                address,
                ty,
                values: doc.get("values")?,
                line,
                until: None,
            })
        })
        .collect();
    let mut starts: Vec<u64> = resources.iter().map(|r| r.line).collect();
    starts.sort_unstable();
    for r in &mut resources {
        r.until = starts.iter().copied().find(|s| *s > r.line);
    }
    for r in &resources {
        resource(r, input.path, &text, cfg, report);
    }
}

fn resource(r: &Resource<'_>, file: &str, text: &Text<'_>, cfg: &Config, report: &mut Report) {
    let mut policy = |pointer: &str, lead: Vec<String>| {
        let Some(doc @ Value::Object(_)) = r.values.pointer(pointer) else {
            return;
        };
        let site = Site {
            file,
            text,
            from: r.line,
            until: r.until,
            lead,
            key: format!("{}{pointer}", r.address),
        };
        // A document that does not read (a computed `Statement`, or one Terraform would
        // reject) is Terraform's to report.
        check_document(doc, &site, cfg, &mut report.problems).ok();
    };
    match r.ty {
        "aws_iam_policy"
        | "aws_iam_role_policy"
        | "aws_iam_user_policy"
        | "aws_iam_group_policy" => {
            policy("/policy", vec!["policy".into()]);
        }
        "aws_iam_role" => {
            policy("/assume_role_policy", vec!["assume_role_policy".into()]);
            let inline = r
                .values
                .get("inline_policy")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            for i in 0..inline {
                let lead = std::iter::repeat_n("inline_policy".to_owned(), i + 1).collect();
                policy(&format!("/inline_policy/{i}/policy"), lead);
            }
            tags(r, file, cfg, report);
        }
        "aws_iam_user" => tags(r, file, cfg, report),
        "aws_iam_access_key" => report.problems.push(r.problem(
            file,
            Rule::AccessKey,
            "access-key",
            format!("`{}` makes a long-lived access key", r.address),
        )),
        "kubernetes_cluster_role_binding"
        | "kubernetes_cluster_role_binding_v1"
        | "kubernetes_role_binding"
        | "kubernetes_role_binding_v1" => {
            let role = r.values.pointer("/role_ref/0");
            let name = role.and_then(|x| x.get("name")).and_then(Value::as_str);
            let kind = role.and_then(|x| x.get("kind")).and_then(Value::as_str);
            if name == Some("cluster-admin") && kind.is_none_or(|k| k == "ClusterRole") {
                let mut p = r.problem(
                    file,
                    Rule::ClusterAdminBinding,
                    "cluster-admin",
                    format!("`{}` binds the cluster-admin ClusterRole", r.address),
                );
                let at = text.find(r.line, r.until, &["role_ref", "cluster-admin"]);
                (p.line, p.column) = (at.line, at.column);
                if !r.ty.starts_with("kubernetes_cluster_") {
                    p.severity = Severity::Medium;
                }
                report.problems.push(p);
            }
        }
        _ => {}
    }
}

/// 009: the required tag keys a role or user lacks (`tags_all` of a plan includes the
/// provider's default tags; tags set by an expression are not judged).
fn tags(r: &Resource<'_>, file: &str, cfg: &Config, report: &mut Report) {
    let (pointer, tags) = match (r.values.get("tags_all"), r.values.get("tags")) {
        (Some(Value::Object(t)), _) => ("/tags_all", Some(t)),
        (_, Some(Value::Object(t))) => ("/tags", Some(t)),
        (_, Some(Value::Null) | None) => ("/tags", None),
        (_, Some(_)) => return,
    };
    // A computed key (`(var.k) = …`) could be any of them.
    let computed_key = |k: &String| k.contains('.') || k.contains('(');
    if r.unresolved(pointer) && tags.into_iter().flatten().any(|(k, _)| computed_key(k)) {
        return;
    }
    let missing: Vec<&str> = cfg
        .require_tags
        .iter()
        .map(String::as_str)
        .filter(|want| {
            !tags
                .into_iter()
                .flatten()
                .any(|(k, _)| k.eq_ignore_ascii_case(want))
        })
        .collect();
    if missing.is_empty() {
        return;
    }
    report.problems.push(r.problem(
        file,
        Rule::MissingTags,
        "tags",
        format!(
            "`{}` has no {} tag",
            r.address,
            missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(" or ")
        ),
    ));
}
