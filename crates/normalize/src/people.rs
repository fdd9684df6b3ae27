//! People directory CSV (an HR or IdP export) → one `person` snapshot object per row, so
//! owners named by e-mail or in `CODEOWNERS` can be checked against who still works here.
//!
//! The header must name `email` and `status`; `name`, `team` and a GitHub login (`github`,
//! `github_login`, `github_username`) are read when present. Header names are
//! case-insensitive (spaces and dashes read as `_`), columns may come in any order and
//! extra columns are ignored. Each row becomes
//!
//! ```json
//! {"kind": "person", "id": "alice@acme.example", "scope": "people.csv",
//!  "doc": {"email": "alice@acme.example", "name": "Alice Smith", "team": "platform",
//!          "status": "active", "github": "alice-s"}}
//! ```
//!
//! `scope` is the directory's file name (`null` for bytes with no file behind them);
//! `email` (and the id) is trimmed and lower-cased; `name` and `team` are `null` when
//! absent or empty; `github` (without `@`) only when given.
//!
//! `status` is whatever vocabulary the HR system exports, mapped to `active` or `departed`
//! by [`DEFAULT_STATUSES`] (case, spaces and dashes ignored: `On Leave` is `on_leave`),
//! which `keyward ingest --person-status NAME=active|departed` extends or overrides
//! ([`Context::person_statuses`](crate::Context)). An empty status is `active` (an export
//! of current staff often has none). A status the map does not know does not cost the row:
//! the person is read as `active` and a warning says so. An e-mail without exactly one `@`
//! rejects the row with a diagnostic on its line.
//!
//! A directory also says who has *left* by who is absent from it: an owner whose e-mail is
//! of a domain the directory covers but who is not in it is departed (the graph's
//! derivation, `engine::topology`).

use keyward_model::{Diagnostic, Reason};
use std::collections::{BTreeMap, HashMap};

use keyward_model::SnapshotObject;
use serde_json::{Value, json};

use crate::{Context, Output, Sink};

/// What a directory status means for ownership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonStatus {
    /// Still here (on leave or suspended included: they come back).
    Active,
    /// Gone: what they own needs a new owner.
    Departed,
}

impl PersonStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PersonStatus::Active => "active",
            PersonStatus::Departed => "departed",
        }
    }

    pub fn parse(s: &str) -> Option<PersonStatus> {
        match s.trim().to_ascii_lowercase().as_str() {
            "active" => Some(PersonStatus::Active),
            "departed" => Some(PersonStatus::Departed),
            _ => None,
        }
    }
}

/// The statuses HR systems and identity providers export, and what each means (keys as
/// [`status_key`] spells them). `suspended` is active: a suspension (a leave, a disabled
/// badge during an inquiry) is not a departure, and reading it as one would call every
/// identity the person owns orphaned; map it with `--person-status suspended=departed`
/// where the HR system means "terminated, pending offboarding".
pub const DEFAULT_STATUSES: &[(&str, PersonStatus)] = &[
    ("active", PersonStatus::Active),
    ("employed", PersonStatus::Active),
    ("current", PersonStatus::Active),
    ("on_leave", PersonStatus::Active),
    ("leave", PersonStatus::Active),
    ("leave_of_absence", PersonStatus::Active),
    ("loa", PersonStatus::Active),
    ("parental_leave", PersonStatus::Active),
    ("sabbatical", PersonStatus::Active),
    ("suspended", PersonStatus::Active),
    ("contractor", PersonStatus::Active),
    ("contingent", PersonStatus::Active),
    ("intern", PersonStatus::Active),
    ("temporary", PersonStatus::Active),
    ("probation", PersonStatus::Active),
    ("pending", PersonStatus::Active),
    ("onboarding", PersonStatus::Active),
    ("provisioned", PersonStatus::Active),
    ("staged", PersonStatus::Active),
    ("enabled", PersonStatus::Active),
    ("recovery", PersonStatus::Active),
    ("password_expired", PersonStatus::Active),
    ("locked_out", PersonStatus::Active),
    ("departed", PersonStatus::Departed),
    ("terminated", PersonStatus::Departed),
    ("inactive", PersonStatus::Departed),
    ("left", PersonStatus::Departed),
    ("leaver", PersonStatus::Departed),
    ("offboarded", PersonStatus::Departed),
    ("offboarding", PersonStatus::Departed),
    ("disabled", PersonStatus::Departed),
    ("deactivated", PersonStatus::Departed),
    ("deprovisioned", PersonStatus::Departed),
    ("former", PersonStatus::Departed),
    ("resigned", PersonStatus::Departed),
    ("retired", PersonStatus::Departed),
    ("separated", PersonStatus::Departed),
    ("deleted", PersonStatus::Departed),
];

/// A status as the map keys it: trimmed, lower-case, spaces and dashes as `_`.
pub fn status_key(raw: &str) -> String {
    raw.trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// What a directory status means: `overrides` first, then [`DEFAULT_STATUSES`]; an empty
/// status is active; `None` for a status neither knows.
pub fn status(raw: &str, overrides: &BTreeMap<String, PersonStatus>) -> Option<PersonStatus> {
    let key = status_key(raw);
    if key.is_empty() {
        return Some(PersonStatus::Active);
    }
    overrides.get(&key).copied().or_else(|| {
        DEFAULT_STATUSES
            .iter()
            .find(|(k, _)| *k == key)
            .map(|&(_, s)| s)
    })
}

/// Header names as the reader looks them up: `GitHub Login` is `github_login`.
fn column(h: &str) -> String {
    status_key(h)
}

pub fn normalize(doc: &[u8], ctx: &Context, sink: &mut dyn Sink) {
    let doc = doc.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(doc);
    let file = ctx
        .path
        .as_deref()
        .map(|p| p.rsplit(['/', '\\']).next().unwrap_or(p).to_owned());
    crate::each_csv_row(
        doc,
        &["email", "status"],
        "a people directory",
        column,
        sink,
        |index, r| {
            let line = r.position().map_or(0, csv::Position::line);
            person(index, r, ctx, file.as_deref(), line)
        },
    );
}

/// A status shown in a warning: only words of a vocabulary (letters, spaces, `-`, `_`;
/// no digits, so a key or token pasted into the column is never echoed).
fn shown(raw: &str) -> Option<&str> {
    let raw = raw.trim();
    (raw.len() <= 32
        && raw
            .chars()
            .all(|c| c.is_ascii_alphabetic() || matches!(c, ' ' | '-' | '_')))
    .then_some(raw)
}

fn person(
    index: &HashMap<String, usize>,
    rec: &csv::StringRecord,
    ctx: &Context,
    file: Option<&str>,
    line: u64,
) -> Result<Output<'static>, Reason> {
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
    let mut warnings = Vec::new();
    let status = status(raw_status, &ctx.person_statuses).unwrap_or_else(|| {
        let what = shown(raw_status).map_or_else(
            || "`status` is not a known status".to_owned(),
            |s| format!("`status` `{s}` is not a known status"),
        );
        warnings.push(Diagnostic {
            line,
            record: None,
            reason: format!(
                "{what}: read as active (`--person-status {}=departed` if it means gone)",
                shown(raw_status).map_or("STATUS".to_owned(), status_key)
            )
            .into(),
        });
        PersonStatus::Active
    });
    let text = |v: Option<&str>| v.map_or(Value::Null, |s| Value::String(s.to_owned()));
    let mut doc = json!({
        "email": email,
        "name": text(get("name")),
        "team": text(get("team")),
        "status": status.as_str(),
    });
    let github = ["github", "github_login", "github_username", "github_user"]
        .iter()
        .find_map(|c| get(c))
        .map(|g| g.trim_start_matches('@'))
        .filter(|g| !g.is_empty() && !g.contains('/'));
    if let (Some(g), Some(o)) = (github, doc.as_object_mut()) {
        o.insert("github".into(), json!(g));
    }
    Ok(Output {
        objects: vec![SnapshotObject {
            kind: "person".into(),
            id: email.clone(),
            scope: file.map(str::to_owned),
            doc,
        }],
        warnings,
        ..Output::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests_support::Collect;

    fn read(csv: &str, ctx: &Context) -> Collect {
        let mut sink = Collect::default();
        normalize(csv.as_bytes(), ctx, &mut sink);
        sink
    }

    fn statuses(sink: &Collect) -> Vec<(&str, &str)> {
        sink.objects
            .iter()
            .map(|o| (o.id.as_str(), o.doc["status"].as_str().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn columns_by_name_and_statuses() {
        let csv = "\u{feff}Status,EMAIL,Name,Team,Manager\n\
                   Active, Alice@Acme.example ,Alice Smith,platform,carol@acme.example\n\
                   terminated,bob@acme.example,Bob Jones,,\n\
                   ,erin@acme.example,,,\n\
                   active,not-an-email,X,Y,\n";
        let sink = read(csv, &Context::default().with_path("hr/people.csv"));
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
        // The directory's file name: what an absent owner's evidence names.
        assert_eq!(sink.objects[0].scope.as_deref(), Some("people.csv"));
        assert_eq!(
            sink.diagnostics.iter().map(|d| d.line).collect::<Vec<_>>(),
            vec![5]
        );
    }

    /// Regression: an HR export of current staff (`active`, `on_leave`) was rejected row
    /// by row (`on_leave` was "neither active nor departed").
    #[test]
    fn an_hr_vocabulary_is_read() {
        let csv = "email,status\n\
                   a@acme.example,Active\n\
                   b@acme.example,On Leave\n\
                   c@acme.example,on_leave\n\
                   d@acme.example,SUSPENDED\n\
                   e@acme.example,Contractor\n\
                   f@acme.example,Terminated\n\
                   g@acme.example,deprovisioned\n\
                   h@acme.example,inactive\n";
        let sink = read(csv, &Context::default());
        assert!(sink.diagnostics.is_empty(), "{:?}", sink.diagnostics);
        assert!(sink.warnings.is_empty(), "{:?}", sink.warnings);
        assert_eq!(
            statuses(&sink),
            vec![
                ("a@acme.example", "active"),
                ("b@acme.example", "active"),
                ("c@acme.example", "active"),
                ("d@acme.example", "active"),
                ("e@acme.example", "active"),
                ("f@acme.example", "departed"),
                ("g@acme.example", "departed"),
                ("h@acme.example", "departed"),
            ]
        );
    }

    #[test]
    fn an_unknown_status_is_a_warning_not_a_rejection() {
        let csv = "email,status\na@acme.example,garden leave\nb@acme.example,AKIA0EXAMPLE7KEY\n";
        let sink = read(csv, &Context::default());
        assert!(sink.diagnostics.is_empty());
        assert_eq!(
            statuses(&sink),
            vec![("a@acme.example", "active"), ("b@acme.example", "active")]
        );
        let w: Vec<(u64, String)> = sink
            .warnings
            .iter()
            .map(|d| (d.line, d.reason.to_string()))
            .collect();
        assert_eq!(w[0].0, 2);
        assert!(w[0].1.contains("`garden leave`"), "{}", w[0].1);
        assert!(w[0].1.contains("--person-status garden_leave=departed"));
        // A value that is not a word of a vocabulary is not echoed.
        assert_eq!(w[1].0, 3);
        assert!(!w[1].1.contains("AKIA"), "{}", w[1].1);
    }

    #[test]
    fn the_status_map_is_configurable() {
        let mut ctx = Context::default();
        ctx.person_statuses
            .insert("suspended".into(), PersonStatus::Departed);
        ctx.person_statuses
            .insert("garden_leave".into(), PersonStatus::Departed);
        let sink = read(
            "email,status\na@x.example,Suspended\nb@x.example,Garden-Leave\nc@x.example,active\n",
            &ctx,
        );
        assert!(sink.warnings.is_empty());
        assert_eq!(
            statuses(&sink),
            vec![
                ("a@x.example", "departed"),
                ("b@x.example", "departed"),
                ("c@x.example", "active")
            ]
        );
    }

    #[test]
    fn a_github_login_column_is_kept() {
        let sink = read(
            "Email,Status,GitHub Login\na@x.example,active,@Alice-S\nb@x.example,active,\n",
            &Context::default(),
        );
        assert_eq!(sink.objects[0].doc["github"], json!("Alice-S"));
        assert!(sink.objects[1].doc.get("github").is_none());
        let sink = read(
            "email,status,github\na@x.example,active,alice\n",
            &Context::default(),
        );
        assert_eq!(sink.objects[0].doc["github"], json!("alice"));
    }

    #[test]
    fn missing_columns_reject_the_file() {
        let sink = read("email,name\na@b.c,A\n", &Context::default());
        assert!(sink.objects.is_empty());
        assert_eq!(sink.diagnostics.len(), 1);
        assert!(sink.diagnostics[0].reason.to_string().contains("status"));
    }

    #[test]
    fn ragged_row_costs_only_itself() {
        let sink = read(
            "email,status\na@b.c,active\nb@b.c\nc@b.c,left\n",
            &Context::default(),
        );
        assert_eq!(sink.objects.len(), 2);
        assert_eq!(sink.diagnostics[0].line, 3);
    }
}
