//! Terraform → the identity-bearing resources it defines, as `tf_resource` snapshot objects,
//! so later analysis can tie live identities back to the code that declares them.
//!
//! Reads three shapes, told apart by content:
//! - `terraform show -json` of a plan (`planned_values.root_module`) or of state
//!   (`values.root_module`), child modules included, with real attribute values;
//! - `.tf` files (HCL, parsed with `hcl-edit` so each resource keeps its line and each
//!   reference its source text);
//! - `.tf.json` files (Terraform's JSON configuration syntax).
//!
//! One object per resource of a type in [`RESOURCE_TYPES`] (others are ignored):
//!
//! ```json
//! {"kind": "tf_resource", "id": "<path>#<address>", "scope": null,
//!  "doc": {"address": "module.iam.aws_iam_role.deployer", "type": "aws_iam_role",
//!          "name": "deployer", "mode": "managed", "file": "<path>", "line": 12,
//!          "values": {…}}}
//! ```
//!
//! `path` is [`Context::path`] (`-` when absent); `line` is the 1-based line of the
//! `resource` block in a `.tf` file, `null` otherwise. In `values`, references and other
//! non-literal expressions are kept as their source text (`aws_iam_role.x.name`), nested
//! blocks as arrays of objects (as in state), and policy documents (`assume_role_policy`,
//! `policy`, at any depth) are parsed into objects when they are JSON or a literal
//! `jsonencode({…})`.
//!
//! `unresolved` (present only when there are some) lists, as JSON pointers into `values`,
//! where a `.tf` file has a non-literal expression (a reference, a call, a template, a
//! heredoc with interpolations) or a `.tf.json` file a `${…}` string: there the value is
//! source text, not what Terraform will apply. `terraform show -json` values are resolved
//! (a plan's unknown values are absent), so it has none.
//!
//! Secrets are never kept: an access key's secret and SMTP password (plain or encrypted),
//! and a Lambda function's whole `environment`, are dropped from every shape.

use hcl::edit::Span;
use hcl::edit::expr::{Expression, Object, ObjectKey};
use hcl::edit::structure::{Body, Structure};
use keyward_model::{Diagnostic, SnapshotObject};
use serde_json::{Map, Value, json};

use crate::{Context, LineCounter, Output, Sink, json_error};

/// The resource types kept; every other type is skipped.
pub const RESOURCE_TYPES: [&str; 28] = [
    "aws_iam_role",
    "aws_iam_user",
    "aws_iam_access_key",
    "aws_iam_openid_connect_provider",
    "aws_iam_policy",
    "aws_iam_role_policy",
    "aws_iam_user_policy",
    "aws_iam_group_policy",
    "aws_iam_group",
    "aws_iam_group_membership",
    "aws_iam_user_group_membership",
    "aws_iam_role_policy_attachment",
    "aws_iam_user_policy_attachment",
    "aws_iam_group_policy_attachment",
    "aws_iam_policy_attachment",
    "aws_iam_role_policy_attachments_exclusive",
    "aws_iam_user_policy_attachments_exclusive",
    "aws_iam_role_policies_exclusive",
    "aws_iam_user_policies_exclusive",
    "aws_iam_instance_profile",
    "aws_iam_service_linked_role",
    "aws_lambda_function",
    "kubernetes_service_account",
    "kubernetes_service_account_v1",
    "kubernetes_role_binding",
    "kubernetes_role_binding_v1",
    "kubernetes_cluster_role_binding",
    "kubernetes_cluster_role_binding_v1",
];

/// Attributes holding IAM policy documents, parsed from JSON text into objects.
const POLICY_ATTRIBUTES: [&str; 2] = ["assume_role_policy", "policy"];

/// Attributes that hold secrets, by resource type: dropped before anything is kept.
fn secret_attributes(ty: &str) -> &'static [&'static str] {
    match ty {
        "aws_iam_access_key" => &[
            "secret",
            "ses_smtp_password_v4",
            "encrypted_secret",
            "encrypted_ses_smtp_password_v4",
        ],
        "aws_lambda_function" => &["environment"],
        _ => &[],
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

pub fn normalize(doc: &[u8], ctx: &Context, sink: &mut dyn Sink) {
    let path = ctx.path.as_deref().unwrap_or("-");
    let doc = doc.strip_prefix(BOM).unwrap_or(doc);
    // Both parsers recurse per level of nesting: measured first (see `crate::depth`).
    if crate::sniff::trim_start(doc).starts_with(b"{") {
        if !crate::reject_too_deep(doc, sink) {
            json_document(doc, path, sink);
        }
    } else if let Some(at) = crate::depth::hcl_too_deep_at(doc) {
        sink.reject(Diagnostic {
            line: crate::depth::line_at(doc, at),
            record: None,
            reason: crate::TOO_DEEP.into(),
        });
    } else {
        hcl_document(doc, path, sink);
    }
}

/// One resource, ready to be emitted.
struct Resource<'a> {
    address: String,
    ty: &'a str,
    name: &'a str,
    line: Option<u64>,
    values: Map<String, Value>,
    /// JSON pointers into `values` of non-literal expressions.
    unresolved: Vec<String>,
}

fn emit(sink: &mut dyn Sink, path: &str, r: Resource<'_>) {
    let mut values = r.values;
    let mut unresolved = r.unresolved;
    for key in secret_attributes(r.ty) {
        values.remove(*key);
        let under = pointer(&[(*key).to_owned()]);
        unresolved.retain(|p| p != &under && !p.starts_with(&format!("{under}/")));
    }
    parse_policies(&mut values);
    let mut doc = json!({
        "address": r.address,
        "type": r.ty,
        "name": r.name,
        "mode": "managed",
        "file": path,
        "line": r.line,
        "values": Value::Object(values),
    });
    if let (false, Value::Object(d)) = (unresolved.is_empty(), &mut doc) {
        d.insert("unresolved".into(), json!(unresolved));
    }
    sink.accept(Output {
        objects: vec![SnapshotObject {
            kind: "tf_resource".into(),
            id: format!("{path}#{}", r.address),
            scope: None,
            doc,
        }],
        ..Output::default()
    });
}

/// Replaces policy documents held as JSON text (anywhere in `values`) by the parsed object.
fn parse_policies(values: &mut Map<String, Value>) {
    for (key, v) in values.iter_mut() {
        match v {
            Value::String(text) if POLICY_ATTRIBUTES.contains(&key.as_str()) => {
                if let Ok(obj @ Value::Object(_)) = serde_json::from_str::<Value>(text.trim()) {
                    *v = obj;
                }
            }
            Value::Object(inner) => parse_policies(inner),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        parse_policies(inner);
                    }
                }
            }
            _ => {}
        }
    }
}

fn wanted(ty: &str) -> bool {
    RESOURCE_TYPES.contains(&ty)
}

/// A JSON pointer (RFC 6901) from its reference tokens.
fn pointer(tokens: &[String]) -> String {
    tokens
        .iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// Where a `.tf.json` value holds an interpolation (`${…}`) or directive (`%{…}`).
fn templates(v: &Value, path: &mut Vec<String>, out: &mut Vec<String>, depth: usize) {
    match v {
        Value::String(s) if s.contains("${") || s.contains("%{") => out.push(pointer(path)),
        Value::Object(m) if depth < MAX_DEPTH => {
            for (k, x) in m {
                path.push(k.clone());
                templates(x, path, out, depth + 1);
                path.pop();
            }
        }
        Value::Array(a) if depth < MAX_DEPTH => {
            for (i, x) in a.iter().enumerate() {
                path.push(i.to_string());
                templates(x, path, out, depth + 1);
                path.pop();
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// JSON: `terraform show -json` and `.tf.json`

fn json_document(doc: &[u8], path: &str, sink: &mut dyn Sink) {
    let root = match serde_json::from_slice::<Value>(doc) {
        Ok(Value::Object(root)) => root,
        Ok(_) => {
            sink.reject(Diagnostic {
                line: 1,
                record: None,
                reason: "expected a JSON object (`terraform show -json` output or `.tf.json`)"
                    .into(),
            });
            return;
        }
        Err(e) => {
            sink.reject(Diagnostic {
                line: (e.line() as u64).max(1),
                record: None,
                reason: json_error(e),
            });
            return;
        }
    };
    let show = [
        "format_version",
        "terraform_version",
        "values",
        "planned_values",
    ]
    .iter()
    .any(|k| root.contains_key(*k));
    if show {
        // A plan shows the state after apply in `planned_values`; state in `values`.
        let module = root
            .get("planned_values")
            .or_else(|| root.get("values"))
            .and_then(|v| v.get("root_module"));
        if let Some(m) = module {
            walk_module(m, path, sink, 0);
        }
    } else if let Some(Value::Object(types)) = root.get("resource") {
        tf_json_resources(types, path, sink);
    }
}

/// Modules nest as deep as the configuration does; this bounds a hostile input.
const MAX_MODULE_DEPTH: usize = 64;

fn walk_module(module: &Value, path: &str, sink: &mut dyn Sink, depth: usize) {
    for (idx, r) in module
        .get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let mode = r.get("mode").and_then(Value::as_str).unwrap_or("managed");
        let Some(ty) = r.get("type").and_then(Value::as_str) else {
            sink.reject(Diagnostic {
                line: 1,
                record: Some(idx as u64),
                reason: "resource without `type`".into(),
            });
            continue;
        };
        if mode != "managed" || !wanted(ty) {
            continue;
        }
        let (Some(name), Some(address)) = (
            r.get("name").and_then(Value::as_str),
            r.get("address").and_then(Value::as_str),
        ) else {
            sink.reject(Diagnostic {
                line: 1,
                record: Some(idx as u64),
                reason: format!("`{ty}` resource without `name` or `address`").into(),
            });
            continue;
        };
        let values = match r.get("values") {
            Some(Value::Object(v)) => v.clone(),
            _ => Map::new(),
        };
        emit(
            sink,
            path,
            Resource {
                address: address.to_owned(),
                ty,
                name,
                line: None,
                values,
                unresolved: Vec::new(),
            },
        );
    }
    if depth >= MAX_MODULE_DEPTH {
        return;
    }
    for child in module
        .get("child_modules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        walk_module(child, path, sink, depth + 1);
    }
}

/// `"resource": {"TYPE": {"NAME": {…} | [{…}, …]}}` of the JSON configuration syntax.
fn tf_json_resources(types: &Map<String, Value>, path: &str, sink: &mut dyn Sink) {
    for (ty, named) in types {
        if !wanted(ty) {
            continue;
        }
        let Value::Object(named) = named else {
            sink.reject(Diagnostic {
                line: 1,
                record: None,
                reason: format!("`resource.{ty}` is not an object").into(),
            });
            continue;
        };
        for (name, body) in named {
            let values = match body {
                Value::Object(v) => v.clone(),
                // Several bodies for one resource: Terraform merges them.
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(Value::as_object)
                    .flat_map(|m| m.clone())
                    .collect(),
                _ => {
                    sink.reject(Diagnostic {
                        line: 1,
                        record: None,
                        reason: format!("`resource.{ty}.{name}` is not an object").into(),
                    });
                    continue;
                }
            };
            let mut unresolved = Vec::new();
            for (k, v) in &values {
                templates(v, &mut vec![k.clone()], &mut unresolved, 0);
            }
            emit(
                sink,
                path,
                Resource {
                    address: format!("{ty}.{name}"),
                    ty,
                    name,
                    line: None,
                    values,
                    unresolved,
                },
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// HCL: `.tf`

fn hcl_document(doc: &[u8], path: &str, sink: &mut dyn Sink) {
    let text = match std::str::from_utf8(doc) {
        Ok(t) => t,
        Err(e) => {
            let line = doc
                .get(..e.valid_up_to())
                .unwrap_or_default()
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64
                + 1;
            sink.reject(Diagnostic {
                line,
                record: None,
                reason: "not UTF-8 text".into(),
            });
            return;
        }
    };
    let body = match hcl::edit::parser::parse_body(text) {
        Ok(b) => b,
        Err(e) => {
            sink.reject(Diagnostic {
                line: (e.location().line() as u64).max(1),
                record: None,
                reason: format!(
                    "invalid HCL: {}",
                    e.message().chars().take(160).collect::<String>()
                )
                .into(),
            });
            return;
        }
    };
    let mut lines = LineCounter::new(text.as_bytes());
    for block in body.iter().filter_map(Structure::as_block) {
        if block.ident.as_str() != "resource" {
            continue;
        }
        let line = block
            .span()
            .and_then(|s| text.as_bytes().get(s.start..))
            .map(|rest| lines.line_of(rest));
        let (Some(ty), Some(name), None) = (
            block.labels.first(),
            block.labels.get(1),
            block.labels.get(2),
        ) else {
            sink.reject(Diagnostic {
                line: line.unwrap_or(1),
                record: None,
                reason: "`resource` block without exactly two labels (type and name)".into(),
            });
            continue;
        };
        let (ty, name) = (ty.as_str(), name.as_str());
        if !wanted(ty) {
            continue;
        }
        let mut at = Where::default();
        let values = body_json(&block.body, text, 0, &mut at);
        emit(
            sink,
            path,
            Resource {
                address: format!("{ty}.{name}"),
                ty,
                name,
                line,
                values,
                unresolved: at.unresolved,
            },
        );
    }
}

/// Nesting bound for blocks and expressions (the parser accepts any depth).
const MAX_DEPTH: usize = 64;

/// Where the conversion is in `values`, and where it met non-literal expressions.
#[derive(Default)]
struct Where {
    path: Vec<String>,
    unresolved: Vec<String>,
}

impl Where {
    fn here(&mut self) {
        self.unresolved.push(pointer(&self.path));
    }

    fn under<T>(&mut self, token: String, f: impl FnOnce(&mut Where) -> T) -> T {
        self.path.push(token);
        let out = f(self);
        self.path.pop();
        out
    }
}

/// A block body as JSON: attributes by key, nested blocks as arrays of objects under their
/// type (as `terraform show -json` has them).
fn body_json(body: &Body, src: &str, depth: usize, at: &mut Where) -> Map<String, Value> {
    let mut out = Map::new();
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => {
                let key = a.key.as_str().to_owned();
                let v = at.under(key.clone(), |at| expr_json(&a.value, src, depth, at));
                out.insert(key, v);
            }
            Structure::Block(b) => {
                let ident = b.ident.as_str().to_owned();
                let slot = out
                    .entry(ident.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(items) = slot else {
                    // An attribute and a block of the same name: the attribute stays.
                    continue;
                };
                let nested = if depth >= MAX_DEPTH {
                    Value::Object(Map::new())
                } else {
                    at.under(ident, |at| {
                        at.under(items.len().to_string(), |at| {
                            Value::Object(body_json(&b.body, src, depth + 1, at))
                        })
                    })
                };
                items.push(nested);
            }
        }
    }
    out
}

/// The source text of an expression (references, calls, conditionals, …).
fn source_text(e: &Expression, src: &str) -> String {
    e.span()
        .and_then(|r| src.get(r))
        .map(|s| s.trim().to_owned())
        .or_else(|| hcl::format::to_string(&hcl::Expression::from(e.clone())).ok())
        .unwrap_or_default()
}

fn expr_json(e: &Expression, src: &str, depth: usize, at: &mut Where) -> Value {
    if depth >= MAX_DEPTH {
        at.here();
        return Value::String(source_text(e, src));
    }
    match e {
        Expression::Null(_) => Value::Null,
        Expression::Bool(b) => Value::Bool(*b.value()),
        Expression::Number(n) => {
            let n = n.value();
            n.as_u64()
                .map(Value::from)
                .or_else(|| n.as_i64().map(Value::from))
                .or_else(|| {
                    n.as_f64()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                })
                .unwrap_or(Value::Null)
        }
        Expression::String(s) => Value::String(s.value().clone()),
        Expression::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| at.under(i.to_string(), |at| expr_json(x, src, depth + 1, at)))
                .collect(),
        ),
        Expression::Object(o) => object_json(o, src, depth, at),
        Expression::StringTemplate(_) => {
            at.here();
            // `"${var.env}-deployer"`: the template between its quotes.
            let text = source_text(e, src);
            let inner = text
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .unwrap_or(&text);
            Value::String(inner.to_owned())
        }
        Expression::HeredocTemplate(_) => {
            let text = match hcl::Expression::from(e.clone()) {
                hcl::Expression::TemplateExpr(t) => t.to_string(),
                _ => source_text(e, src),
            };
            if text.contains("${") || text.contains("%{") {
                at.here();
            }
            Value::String(text)
        }
        Expression::FuncCall(f)
            if f.name.namespace.is_empty() && f.name.name.as_str() == "jsonencode" =>
        {
            let mut args = f.args.iter();
            match (args.next(), args.next()) {
                (Some(Expression::Object(o)), None) => object_json(o, src, depth, at),
                _ => {
                    at.here();
                    Value::String(source_text(e, src))
                }
            }
        }
        _ => {
            at.here();
            Value::String(source_text(e, src))
        }
    }
}

fn object_json(o: &Object, src: &str, depth: usize, at: &mut Where) -> Value {
    let mut out = Map::new();
    for (k, v) in o.iter() {
        let (key, literal) = match k {
            ObjectKey::Ident(i) => (i.as_str().to_owned(), true),
            ObjectKey::Expression(Expression::String(s)) => (s.value().clone(), true),
            ObjectKey::Expression(other) => (source_text(other, src), false),
        };
        let value = at.under(key.clone(), |at| {
            if !literal {
                at.here();
            }
            expr_json(v.expr(), src, depth + 1, at)
        });
        out.insert(key, value);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests_support::Collect;

    fn run(doc: &str, path: Option<&str>) -> Collect {
        let ctx = Context {
            path: path.map(str::to_owned),
            ..Context::default()
        };
        let mut sink = Collect::default();
        normalize(doc.as_bytes(), &ctx, &mut sink);
        sink
    }

    #[test]
    fn hcl_references_templates_and_jsonencode() {
        let tf = r#"
variable "env" {}

resource "aws_iam_role" "deployer" {
  name = "${var.env}-deployer"
  path = "/ci/"
  max_session_duration = 3600
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRoleWithWebIdentity"
      Principal = { Federated = aws_iam_openid_connect_provider.github.arn }
    }]
  })
  tags = { team = "platform" }
}

resource "aws_s3_bucket" "ignored" {
  bucket = "x"
}

resource "aws_iam_role_policy" "inline" {
  role   = aws_iam_role.deployer.id
  policy = data.aws_iam_policy_document.p.json
}
"#;
        let out = run(tf, Some("infra/iam.tf"));
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        assert_eq!(out.objects.len(), 2);
        let role = &out.objects[0];
        assert_eq!(role.id, "infra/iam.tf#aws_iam_role.deployer");
        assert_eq!(role.doc["line"], json!(4));
        assert_eq!(role.doc["file"], json!("infra/iam.tf"));
        let v = &role.doc["values"];
        assert_eq!(v["name"], json!("${var.env}-deployer"));
        assert_eq!(v["max_session_duration"], json!(3600));
        assert_eq!(
            v["assume_role_policy"]["Statement"][0]["Principal"]["Federated"],
            json!("aws_iam_openid_connect_provider.github.arn")
        );
        assert_eq!(v["tags"], json!({"team": "platform"}));
        let inline = &out.objects[1].doc;
        assert_eq!(inline["line"], json!(23));
        assert_eq!(inline["values"]["role"], json!("aws_iam_role.deployer.id"));
        assert_eq!(
            inline["values"]["policy"],
            json!("data.aws_iam_policy_document.p.json")
        );
    }

    #[test]
    fn heredoc_policy_is_parsed_and_secrets_dropped() {
        let tf = "resource \"aws_iam_user_policy\" \"p\" {\n  user = \"bob\"\n  policy = <<-EOF\n    {\"Version\": \"2012-10-17\", \"Statement\": []}\n  EOF\n}\n\
resource \"aws_lambda_function\" \"f\" {\n  function_name = \"f\"\n  environment {\n    variables = { DB_PASSWORD = \"hunter2\" }\n  }\n}\n";
        let out = run(tf, None);
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        assert_eq!(out.objects[0].id, "-#aws_iam_user_policy.p");
        assert_eq!(
            out.objects[0].doc["values"]["policy"],
            json!({"Version": "2012-10-17", "Statement": []})
        );
        assert_eq!(out.objects[1].doc["values"], json!({"function_name": "f"}));
        assert!(!format!("{:?}", out.objects).contains("hunter2"));
    }

    #[test]
    fn hcl_syntax_error_names_its_line() {
        let out = run(
            "resource \"aws_iam_user\" \"u\" {\n  name = \"u\"\n  tags = {\n",
            None,
        );
        assert!(out.objects.is_empty());
        assert_eq!(out.diagnostics.len(), 1);
        assert!(out.diagnostics[0].line >= 3, "{:?}", out.diagnostics);
        assert!(
            out.diagnostics[0]
                .reason
                .to_string()
                .starts_with("invalid HCL")
        );
    }

    #[test]
    fn nested_blocks_are_arrays() {
        let tf = "resource \"kubernetes_service_account_v1\" \"sa\" {\n  metadata {\n    name = \"ci\"\n    namespace = \"ci\"\n  }\n  automount_service_account_token = false\n}\n";
        let out = run(tf, Some("k8s.tf"));
        assert_eq!(
            out.objects[0].doc["values"],
            json!({"metadata": [{"name": "ci", "namespace": "ci"}],
                   "automount_service_account_token": false})
        );
    }

    #[test]
    fn tf_json_syntax() {
        let doc = r#"{"resource": {"aws_iam_access_key": {"k": {"user": "${aws_iam_user.u.name}", "secret": "x"}},
                      "aws_instance": {"i": {}}}}"#;
        let out = run(doc, Some("main.tf.json"));
        assert_eq!(out.objects.len(), 1);
        assert_eq!(out.objects[0].id, "main.tf.json#aws_iam_access_key.k");
        assert_eq!(
            out.objects[0].doc["values"],
            json!({"user": "${aws_iam_user.u.name}"})
        );
    }

    #[test]
    fn unresolved_expressions_are_pointed_at() {
        let tf = r#"
resource "aws_iam_role" "r" {
  name = "app"
  assume_role_policy = jsonencode({
    Statement = [{ Principal = { AWS = var.trusted }, Action = "sts:AssumeRole" }]
  })
  managed_policy_arns = ["arn:aws:iam::aws:policy/ReadOnlyAccess", aws_iam_policy.p.arn]
  inline_policy {
    name   = "literal"
    policy = "{}"
  }
  inline_policy {
    name   = "${var.env}-x"
    policy = data.aws_iam_policy_document.d.json
  }
}
"#;
        let out = run(tf, Some("main.tf"));
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        assert_eq!(
            out.objects[0].doc["unresolved"],
            json!([
                "/assume_role_policy/Statement/0/Principal/AWS",
                "/managed_policy_arns/1",
                "/inline_policy/1/name",
                "/inline_policy/1/policy"
            ])
        );
        let json_cfg = r#"{"resource": {"aws_iam_user_policy_attachment": {"a": {"user": "${aws_iam_user.u.name}", "policy_arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}}}}"#;
        let out = run(json_cfg, Some("main.tf.json"));
        assert_eq!(out.objects[0].doc["unresolved"], json!(["/user"]));
        let literal = "resource \"aws_iam_user\" \"u\" {\n  name = \"bob\"\n}\n";
        assert!(
            run(literal, None).objects[0]
                .doc
                .get("unresolved")
                .is_none()
        );
    }

    #[test]
    fn broken_json_names_its_line() {
        let out = run(
            "{\n  \"format_version\": \"1.2\",\n  \"values\": {\n    oops\n",
            None,
        );
        assert_eq!(out.diagnostics.len(), 1);
        assert_eq!(out.diagnostics[0].line, 4);
    }
}
