//! Policy documents as IAM hands them back: URL-encoded JSON text (the SDK does not decode
//! it), trust policies whose `Statement` is an object or a list, and the edits Keyward makes
//! to them. Pure: the connector in `client.rs` does the calls.

use serde_json::Value;

/// A policy document's text as IAM returned it, decoded: IAM URL-encodes documents
/// (RFC 3986, `%7B%22Version…`); some servers (moto, older IAM paths) return the JSON as is.
pub(crate) fn decode(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim_start();
    if trimmed.starts_with('{') || !raw.contains('%') {
        return Ok(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape at byte {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the decoded document is not UTF-8".to_owned())
}

/// The decoded document parsed as JSON.
pub(crate) fn parse(raw: &str) -> Result<Value, String> {
    let text = decode(raw)?;
    serde_json::from_str(&text).map_err(|e| format!("the policy document is not JSON: {e}"))
}

/// The document's statements, whether `Statement` is one object or a list.
pub(crate) fn statements(doc: &Value) -> Vec<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    }
}

/// The document with `stmt` appended to its statements (a single statement becomes a
/// list); every other key and statement is kept as it was.
pub(crate) fn with_statement(doc: &Value, stmt: Value) -> Result<Value, String> {
    let mut out = doc.clone();
    let obj = out
        .as_object_mut()
        .ok_or("the policy document is not a JSON object")?;
    let mut list = match obj.remove("Statement") {
        Some(Value::Array(list)) => list,
        Some(one @ Value::Object(_)) => vec![one],
        None => Vec::new(),
        Some(_) => {
            return Err("the policy document's Statement is neither a list nor an object".into());
        }
    };
    list.push(stmt);
    obj.insert("Statement".into(), Value::Array(list));
    Ok(out)
}

/// The document without any statement equal to `stmt` (the list form is kept).
pub(crate) fn without_statement(doc: &Value, stmt: &Value) -> Value {
    let mut out = doc.clone();
    if let Some(Value::Array(list)) = out.get_mut("Statement") {
        list.retain(|s| s != stmt);
    }
    out
}

/// Whether some `Allow` statement of a trust policy names the OIDC provider (by its host
/// and path, `token.actions.githubusercontent.com`) as a federated principal.
pub(crate) fn trusts_provider(doc: &Value, provider: &str) -> bool {
    let suffix = format!(":oidc-provider/{provider}");
    statements(doc).into_iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && match s.pointer("/Principal/Federated") {
                Some(Value::String(f)) => f.ends_with(&suffix),
                Some(Value::Array(fs)) => fs
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|f| f.ends_with(&suffix)),
                _ => false,
            }
    })
}

/// Whether the document carries a statement with this `Sid` (one Keyward wrote).
pub(crate) fn has_sid(doc: &Value, sid: &str) -> bool {
    statements(doc)
        .into_iter()
        .any(|s| s.get("Sid").and_then(Value::as_str) == Some(sid))
}

/// The account of an IAM ARN (`arn:aws:iam::123456789012:role/x` → `123456789012`).
pub(crate) fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn decodes_url_encoded_and_plain_documents() {
        let plain = r#"{"Version":"2012-10-17","Statement":[]}"#;
        assert_eq!(decode(plain).as_deref(), Ok(plain));
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(decode(encoded).as_deref(), Ok(plain));
        // A `+` stays a `+` (IAM encodes spaces as %20).
        assert_eq!(
            decode("%7B%22a%22%3A%22x+y%20z%22%7D").as_deref(),
            Ok(r#"{"a":"x+y z"}"#)
        );
        assert!(decode("%7B%2").is_err());
        assert!(decode("%7B%ZZ").is_err());
        assert_eq!(
            parse(encoded).ok(),
            Some(json!({"Version": "2012-10-17", "Statement": []}))
        );
        assert!(parse("%7Bnot json").is_err());
    }

    #[test]
    fn a_single_statement_becomes_a_list_and_the_rest_is_kept() {
        let doc = json!({
            "Version": "2012-10-17",
            "Id": "kept",
            "Statement": {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        });
        let deny = json!({"Sid": "KeywardDenySubject", "Effect": "Deny"});
        let out = with_statement(&doc, deny.clone()).ok();
        assert_eq!(
            out,
            Some(json!({
                "Version": "2012-10-17",
                "Id": "kept",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
                    {"Sid": "KeywardDenySubject", "Effect": "Deny"}
                ]
            }))
        );
        let back = out.map(|d| without_statement(&d, &deny));
        assert_eq!(
            back.as_ref().map(|d| statements(d).len()),
            Some(1),
            "{back:?}"
        );
        assert!(with_statement(&json!([]), deny.clone()).is_err());
        assert!(with_statement(&json!({"Statement": "x"}), deny).is_err());
    }

    #[test]
    fn trust_in_a_provider_is_an_allow_naming_it() {
        let gh = "token.actions.githubusercontent.com";
        let doc = json!({"Statement": [
            {"Effect": "Allow", "Principal": {"Federated": format!("arn:aws:iam::1:oidc-provider/{gh}")}, "Action": "sts:AssumeRoleWithWebIdentity"}
        ]});
        assert!(trusts_provider(&doc, gh));
        assert!(!trusts_provider(&doc, "oidc.eks.amazonaws.com/id/X"));
        let list = json!({"Statement": {"Effect": "Allow", "Principal": {"Federated": ["x", format!("arn:aws:iam::1:oidc-provider/{gh}")]}}});
        assert!(trusts_provider(&list, gh));
        let deny = json!({"Statement": [{"Effect": "Deny", "Principal": {"Federated": format!("arn:aws:iam::1:oidc-provider/{gh}")}}]});
        assert!(!trusts_provider(&deny, gh));
    }

    #[test]
    fn sids_and_accounts() {
        let doc = json!({"Statement": [{"Sid": "KeywardContainment"}]});
        assert!(has_sid(&doc, "KeywardContainment"));
        assert!(!has_sid(&doc, "Other"));
        assert_eq!(
            arn_account("arn:aws:iam::123456789012:role/x"),
            Some("123456789012")
        );
        assert_eq!(arn_account("arn:aws:iam:::role/x"), None);
        assert_eq!(arn_account("role/x"), None);
    }
}
