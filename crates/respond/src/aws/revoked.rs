//! One AWS session ended before its expiry. STS has no call that revokes a session; IAM
//! evaluates a role's policies on every call its sessions make, so a deny naming the one
//! session (`aws:userid`, `<role id>:<session name>`) ends it at once and leaves the role's
//! other sessions alone. The broker keeps these denies in one inline policy on the role,
//! [`REVOKED_SESSIONS_POLICY`]; each lasts until the session's own expiry
//! (`aws:CurrentTime`), and a revocation drops the statements whose session has expired.

use keyward_model::time::Millis;
use serde_json::{Value, json};

use super::rfc3339;

/// The role's inline policy that holds the denies of revoked sessions.
pub const REVOKED_SESSIONS_POLICY: &str = "KeywardRevokedSessions";
/// IAM's limit on a role's inline policies, in characters (all of them together; this
/// policy is held to it alone).
pub const ROLE_INLINE_MAX_CHARS: usize = 10_240;

/// The statement denying everything to the session `user_id` (`AROA…:<session name>`)
/// until `until`.
fn deny(user_id: &str, until: Millis) -> Value {
    json!({
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {
            "StringEquals": {"aws:userid": user_id},
            "DateLessThan": {"aws:CurrentTime": rfc3339(until)},
        }
    })
}

/// When a statement of ours stops mattering (`None`: not one of ours, kept as it is).
fn lapses(statement: &Value) -> Option<Millis> {
    let c = statement.get("Condition")?;
    c.get("StringEquals")?.get("aws:userid")?.as_str()?;
    keyward_model::time::parse(c.get("DateLessThan")?.get("aws:CurrentTime")?.as_str()?)
}

/// The policy document after denying `user_id` until `until`: `existing` (the policy as
/// IAM has it, if any) without our statements that lapsed by `now` or name the same
/// session, and the new deny. Errors: an existing document that is not a policy, or a
/// result over [`ROLE_INLINE_MAX_CHARS`].
pub fn revoked_sessions_document(
    existing: Option<&str>,
    user_id: &str,
    until: Millis,
    now: Millis,
) -> Result<String, String> {
    let mut statements: Vec<Value> = match existing {
        None => Vec::new(),
        Some(doc) => {
            let v: Value = serde_json::from_str(doc)
                .map_err(|e| format!("{REVOKED_SESSIONS_POLICY} is not JSON: {e}"))?;
            let list = super::document::statements(&v);
            if list.is_empty() {
                return Err(format!("{REVOKED_SESSIONS_POLICY} has no statements"));
            }
            list.into_iter().cloned().collect()
        }
    };
    statements.retain(|s| {
        let same = s.pointer("/Condition/StringEquals/aws:userid") == Some(&json!(user_id));
        !same && lapses(s).is_none_or(|t| t > now)
    });
    statements.push(deny(user_id, until));
    let doc = keyward_model::json::sorted(&json!({
        "Version": "2012-10-17",
        "Statement": statements,
    }));
    let chars = doc.chars().count();
    if chars > ROLE_INLINE_MAX_CHARS {
        return Err(format!(
            "{REVOKED_SESSIONS_POLICY} would have {chars} characters (IAM takes at most \
             {ROLE_INLINE_MAX_CHARS} for a role's inline policies): {} sessions are revoked \
             and not yet expired",
            statements.len()
        ));
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Millis = 3_600_000;
    const NOW: Millis = 1_765_000_000_000;

    fn denied(doc: &str) -> Vec<(String, String)> {
        let v: Value = serde_json::from_str(doc).unwrap();
        v["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                assert_eq!((&s["Effect"], &s["Action"]), (&json!("Deny"), &json!("*")));
                let c = &s["Condition"];
                (
                    c["StringEquals"]["aws:userid"].as_str().unwrap().to_owned(),
                    c["DateLessThan"]["aws:CurrentTime"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_session_is_denied_until_its_expiry_and_lapsed_denies_are_dropped() {
        let one = revoked_sessions_document(None, "AROA1:kwl-a", NOW + HOUR, NOW).unwrap();
        assert_eq!(
            denied(&one),
            [("AROA1:kwl-a".to_owned(), rfc3339(NOW + HOUR))]
        );
        // A second session joins the first; the same one again is not doubled.
        let two =
            revoked_sessions_document(Some(&one), "AROA1:kwl-b", NOW + 2 * HOUR, NOW).unwrap();
        let again = revoked_sessions_document(Some(&two), "AROA1:kwl-b", NOW + 2 * HOUR, NOW);
        assert_eq!(denied(&again.unwrap()).len(), 2);
        // Once the first has expired, the next revocation drops its deny.
        let later = NOW + HOUR + 1_000;
        let three =
            revoked_sessions_document(Some(&two), "AROA1:kwl-c", later + HOUR, later).unwrap();
        let users: Vec<String> = denied(&three).into_iter().map(|(u, _)| u).collect();
        assert_eq!(users, ["AROA1:kwl-b", "AROA1:kwl-c"]);
    }

    #[test]
    fn statements_not_ours_are_kept_and_a_broken_or_full_policy_is_refused() {
        let theirs = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"s3:*","Resource":"*"}}"#;
        let doc = revoked_sessions_document(Some(theirs), "AROA1:kwl-a", NOW + HOUR, NOW);
        let v: Value = serde_json::from_str(&doc.unwrap()).unwrap();
        assert_eq!(v["Statement"][0]["Action"], "s3:*");
        assert_eq!(v["Statement"].as_array().unwrap().len(), 2);
        for bad in ["not json", r#"{"Version":"2012-10-17"}"#] {
            let e = revoked_sessions_document(Some(bad), "AROA1:kwl-a", NOW + HOUR, NOW);
            assert!(e.unwrap_err().starts_with(REVOKED_SESSIONS_POLICY));
        }
        let mut doc = None;
        let mut n = 0;
        let full = loop {
            let user = format!("AROAEXAMPLEROLEID1234:kwl-{n:032x}");
            match revoked_sessions_document(doc.as_deref(), &user, NOW + HOUR, NOW) {
                Ok(d) => doc = Some(d),
                Err(e) => break e,
            }
            n += 1;
        };
        assert_eq!(n, 48, "sessions that fit");
        assert!(full.contains("IAM takes at most 10240"), "{full}");
    }
}
