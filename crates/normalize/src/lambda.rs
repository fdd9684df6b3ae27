//! `aws lambda list-functions` (`{"Functions":[…], "NextMarker"?}`) or
//! `aws lambda get-function-configuration` (one function object) → one `lambda_function`
//! snapshot object per function, and its execution role as an IAM role observation so the
//! role shows in the inventory.
//!
//! ```json
//! {"kind": "lambda_function", "id": "<FunctionArn>", "scope": "<account>",
//!  "doc": {…the function object as the CLI printed it, without `Environment`…}}
//! ```
//!
//! `Environment` is removed because its variables routinely hold secrets. A function
//! without a `FunctionArn`, or whose `FunctionArn` or `Role` is not an ARN of the right
//! kind, is rejected on its own line; the others still count.

use keyward_model::Reason;
use keyward_model::{
    Diagnostic, IdentityKind, Observation, Platform, SnapshotObject, SourceKind, ids,
};
use serde_json::Value;

use crate::{LineCounter, Output, Sink, json_error, sniff::trim_start};

pub fn normalize(doc: &[u8], sink: &mut dyn Sink) {
    let found = crate::each_list_element(
        doc,
        &["Functions"],
        "`Functions` (or one function)",
        sink,
        |_, v| function_output(v),
    );
    if found == Some(0) {
        // `get-function-configuration`: the document is the function.
        let d = trim_start(doc);
        let line = LineCounter::new(doc).line_of(d);
        let result = serde_json::from_slice::<Value>(d)
            .map_err(json_error)
            .and_then(function_output);
        match result {
            Ok(out) => sink.accept(out),
            Err(reason) => sink.reject(Diagnostic {
                line,
                record: None,
                reason,
            }),
        }
    }
}

fn function_output(v: Value) -> Result<Output<'static>, Reason> {
    let Value::Object(mut f) = v else {
        return Err("a function must be a JSON object".into());
    };
    let arn = f
        .get("FunctionArn")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(Reason::Missing("FunctionArn".into()))?
        .to_owned();
    let account = match ids::Arn::parse(&arn) {
        Some(a) if a.service == "lambda" && !a.account.is_empty() => a.account.to_owned(),
        _ => {
            return Err("`FunctionArn` is not a Lambda function ARN".into());
        }
    };
    let mut out = Output::default();
    if let Some(role) = f
        .get("Role")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        out.observations.push(role_observation(role)?);
    }
    f.remove("Environment");
    out.objects.push(SnapshotObject {
        kind: "lambda_function".into(),
        id: arn,
        scope: Some(account),
        doc: Value::Object(f),
    });
    Ok(out)
}

/// The execution role, as `iam_authz` reports roles (canonical id without the path).
fn role_observation(role: &str) -> Result<Observation, Reason> {
    let not_role = || "`Role` is not an IAM role ARN".into();
    let parsed = ids::Arn::parse(role).ok_or_else(not_role)?;
    let name = match parsed.type_and_name() {
        Some(("role", name)) if parsed.service == "iam" && !name.is_empty() => name,
        _ => return Err(not_role()),
    };
    let id = ids::canonical_iam_arn(role).ok_or_else(not_role)?;
    let mut o = Observation::new(
        id,
        Platform::Aws,
        IdentityKind::IamRole,
        name,
        SourceKind::LambdaFunctions,
    );
    o.facts.arn = Some(role.to_owned());
    o.facts.account = Some(parsed.account.to_owned());
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests_support::Collect;
    use serde_json::json;

    #[test]
    fn list_with_a_bad_element() {
        let doc = r#"{
    "Functions": [
        {
            "FunctionName": "orders-processor",
            "FunctionArn": "arn:aws:lambda:us-east-1:111122223333:function:orders-processor",
            "Role": "arn:aws:iam::111122223333:role/service-role/lambda-orders-processor",
            "Environment": {"Variables": {"DB_PASSWORD": "hunter2"}}
        },
        {
            "FunctionName": "no-arn"
        },
        {
            "FunctionName": "bad-role",
            "FunctionArn": "arn:aws:lambda:us-east-1:111122223333:function:bad-role",
            "Role": "lambda-role"
        }
    ],
    "NextMarker": "abc"
}"#;
        let mut sink = Collect::default();
        normalize(doc.as_bytes(), &mut sink);
        assert_eq!(sink.objects.len(), 1);
        let f = &sink.objects[0];
        assert_eq!(f.scope.as_deref(), Some("111122223333"));
        assert_eq!(f.doc.get("Environment"), None);
        assert_eq!(f.doc["FunctionName"], json!("orders-processor"));
        let o = &sink.observations[0];
        assert_eq!(
            o.id,
            "arn:aws:iam::111122223333:role/lambda-orders-processor"
        );
        assert_eq!(o.name, "lambda-orders-processor");
        assert_eq!(
            sink.diagnostics
                .iter()
                .map(|d| (d.line, d.record))
                .collect::<Vec<_>>(),
            vec![(9, Some(1)), (12, Some(2))]
        );
    }

    #[test]
    fn single_function_configuration() {
        let doc = br#"{"FunctionName":"f","FunctionArn":"arn:aws:lambda:eu-west-1:444455556666:function:f"}"#;
        let mut sink = Collect::default();
        normalize(doc, &mut sink);
        assert!(sink.diagnostics.is_empty());
        assert_eq!(
            sink.objects[0].id,
            "arn:aws:lambda:eu-west-1:444455556666:function:f"
        );
        assert!(sink.observations.is_empty());
    }
}
