//! People directory CSV (an HR or IdP export) → one `person` snapshot object per row, so
//! owners named by e-mail or in `CODEOWNERS` can be checked against who still works here.
//!
//! The header must name `email` and `status`; `name` and `team` are read when present.
//! Header names are case-insensitive, columns may come in any order and extra columns are
//! ignored. Each row becomes
//!
//! ```json
//! {"kind": "person", "id": "alice@acme.example", "scope": null,
//!  "doc": {"email": "alice@acme.example", "name": "Alice Smith", "team": "platform",
//!          "status": "active"}}
//! ```
//!
//! `email` (and the id) is trimmed and lower-cased; `name` and `team` are `null` when
//! absent or empty. `status` is normalized to `active` (`active`, `employed`, `current`,
//! empty) or `departed` (`departed`, `terminated`, `inactive`, `left`, `offboarded`,
//! `disabled`); any other status, or an e-mail without exactly one `@`, rejects the row with
//! a diagnostic on its line.

use keyward_model::Reason;
use std::collections::HashMap;

use keyward_model::SnapshotObject;
use serde_json::{Value, json};

use crate::{Output, Sink};

pub fn normalize(doc: &[u8], sink: &mut dyn Sink) {
    let doc = doc.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(doc);
    crate::each_csv_row(
        doc,
        &["email", "status"],
        "a people directory",
        |h| h.trim().to_ascii_lowercase(),
        sink,
        |index, r| {
            person(index, r).map(|object| Output {
                objects: vec![object],
                ..Output::default()
            })
        },
    );
}

/// Normalizes a directory status to `active` or `departed`.
pub fn status(raw: &str) -> Option<&'static str> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "" | "active" | "employed" | "current" => Some("active"),
        "departed" | "terminated" | "inactive" | "left" | "offboarded" | "disabled" => {
            Some("departed")
        }
        _ => None,
    }
}

fn person(
    index: &HashMap<String, usize>,
    rec: &csv::StringRecord,
) -> Result<SnapshotObject, Reason> {
    let get = |col: &str| {
        index
            .get(col)
            .and_then(|&i| rec.get(i))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let raw_email = get("email").ok_or("empty `email`")?;
    let email = raw_email.to_lowercase();
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if !valid {
        return Err("`email` is not an e-mail address".into());
    }
    let raw_status = get("status").unwrap_or_default();
    let status =
        status(raw_status).ok_or(Reason::from("`status` is neither active nor departed"))?;
    let text = |v: Option<&str>| v.map_or(Value::Null, |s| Value::String(s.to_owned()));
    Ok(SnapshotObject {
        kind: "person".into(),
        id: email.clone(),
        scope: None,
        doc: json!({
            "email": email,
            "name": text(get("name")),
            "team": text(get("team")),
            "status": status,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests_support::Collect;

    #[test]
    fn columns_by_name_and_statuses() {
        let csv = "\u{feff}Status,EMAIL,Name,Team,Manager\n\
                   Active, Alice@Acme.example ,Alice Smith,platform,carol@acme.example\n\
                   terminated,bob@acme.example,Bob Jones,,\n\
                   on leave,dave@acme.example,Dave,orders,\n\
                   ,erin@acme.example,,,\n\
                   active,not-an-email,X,Y,\n";
        let mut sink = Collect::default();
        normalize(csv.as_bytes(), &mut sink);
        let docs: Vec<&Value> = sink.objects.iter().map(|o| &o.doc).collect();
        assert_eq!(
            docs,
            vec![
                &json!({"email": "alice@acme.example", "name": "Alice Smith", "team": "platform", "status": "active"}),
                &json!({"email": "bob@acme.example", "name": "Bob Jones", "team": null, "status": "departed"}),
                &json!({"email": "erin@acme.example", "name": null, "team": null, "status": "active"}),
            ]
        );
        assert_eq!(sink.objects[0].id, "alice@acme.example");
        assert_eq!(
            sink.diagnostics.iter().map(|d| d.line).collect::<Vec<_>>(),
            vec![4, 6]
        );
    }

    #[test]
    fn missing_columns_reject_the_file() {
        let mut sink = Collect::default();
        normalize(b"email,name\na@b.c,A\n", &mut sink);
        assert!(sink.objects.is_empty());
        assert_eq!(sink.diagnostics.len(), 1);
        assert!(sink.diagnostics[0].reason.to_string().contains("status"));
    }

    #[test]
    fn ragged_row_costs_only_itself() {
        let mut sink = Collect::default();
        normalize(
            b"email,status\na@b.c,active\nb@b.c\nc@b.c,left\n",
            &mut sink,
        );
        assert_eq!(sink.objects.len(), 2);
        assert_eq!(sink.diagnostics[0].line, 3);
    }
}
