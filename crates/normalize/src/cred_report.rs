//! IAM credential report CSV → users and the account root with their passwords, access
//! keys and signing certificates (by slot: the report does not give key ids).
//!
//! Columns are found by header name, so a report with columns in another order, or extra
//! ones, still reads. `N/A`, `not_supported` and `no_information` mean "no value".

use keyward_model::Reason;
use std::collections::HashMap;

use keyward_model::{
    Credential, CredentialKind, CredentialStatus, IdentityKind, Observation, Platform, SourceKind,
    ids, time,
};

use crate::{Output, Sink};

/// The 22 documented columns, in AWS's order.
pub const COLUMNS: [&str; 22] = [
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
];

fn value(v: &str) -> Option<&str> {
    match v.trim() {
        "" | "N/A" | "not_supported" | "no_information" => None,
        s => Some(s),
    }
}

pub fn normalize(doc: &[u8], sink: &mut dyn Sink) {
    crate::each_csv_row(
        doc,
        &["user", "arn"],
        "a credential report",
        |h| h.trim_start_matches('\u{feff}').to_owned(),
        sink,
        |index, rec| row_output(&Row { index, rec }),
    );
}

/// One report row, read by column name.
struct Row<'r> {
    index: &'r HashMap<String, usize>,
    rec: &'r csv::StringRecord,
}

impl<'r> Row<'r> {
    fn get(&self, col: &str) -> Option<&'r str> {
        self.index
            .get(col)
            .and_then(|&i| self.rec.get(i))
            .and_then(value)
    }
}

fn ts(row: &Row, col: &str) -> Result<Option<i64>, Reason> {
    match row.get(col) {
        None => Ok(None),
        Some(v) => time::parse(v)
            .map(Some)
            .ok_or_else(|| Reason::from(format!("column `{col}` is not a timestamp"))),
    }
}

fn flag(row: &Row, col: &str) -> Option<bool> {
    match row.get(col)? {
        "true" | "TRUE" | "True" => Some(true),
        "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn row_output(row: &Row) -> Result<Output<'static>, Reason> {
    let user = row.get("user").ok_or("empty `user`")?;
    let arn = row.get("arn").ok_or("empty `arn`")?;
    let parsed = ids::Arn::parse(arn).ok_or(Reason::Invalid {
        field: "arn",
        expected: "an ARN",
    })?;
    let mut o = if user == "<root_account>" {
        Observation::new(
            ids::account_root(parsed.account),
            Platform::Aws,
            IdentityKind::AccountRoot,
            "root",
            SourceKind::IamCredentialReport,
        )
    } else {
        let id = ids::canonical_iam_arn(arn).ok_or(Reason::Invalid {
            field: "arn",
            expected: "an ARN",
        })?;
        Observation::new(
            id,
            Platform::Aws,
            IdentityKind::IamUser,
            user,
            SourceKind::IamCredentialReport,
        )
    };
    o.facts.arn = Some(arn.to_owned());
    o.facts.account = Some(parsed.account.to_owned());
    o.facts.created = ts(row, "user_creation_time")?;
    let mut last_used: Option<i64> = None;
    let mut bump = |t: Option<i64>| last_used = last_used.max(t);
    match flag(row, "password_enabled") {
        Some(enabled) => {
            let used = ts(row, "password_last_used")?;
            bump(used);
            o.facts.credentials.push(Credential {
                id: "password".into(),
                kind: CredentialKind::Password,
                status: if enabled {
                    CredentialStatus::Active
                } else {
                    CredentialStatus::Deleted
                },
                created: ts(row, "password_last_changed")?,
                last_used: used,
                last_used_region: None,
                last_used_service: None,
            });
        }
        None => {
            // Root: `not_supported`, yet its last use is reported.
            bump(ts(row, "password_last_used")?);
        }
    }
    if let Some(mfa) = flag(row, "mfa_active") {
        o.facts
            .details
            .insert("mfa_active".into(), serde_json::json!(mfa));
    }
    for n in 1..=2 {
        let active = flag(row, &format!("access_key_{n}_active"));
        let rotated = ts(row, &format!("access_key_{n}_last_rotated"))?;
        let used = ts(row, &format!("access_key_{n}_last_used_date"))?;
        if active == Some(true) || rotated.is_some() {
            bump(used);
            o.facts.credentials.push(Credential {
                id: format!("access_key_{n}"),
                kind: CredentialKind::AccessKey,
                status: if active == Some(true) {
                    CredentialStatus::Active
                } else {
                    CredentialStatus::Inactive
                },
                created: rotated,
                last_used: used,
                last_used_region: row
                    .get(&format!("access_key_{n}_last_used_region"))
                    .map(str::to_owned),
                last_used_service: row
                    .get(&format!("access_key_{n}_last_used_service"))
                    .map(str::to_owned),
            });
        }
        let cert_active = flag(row, &format!("cert_{n}_active"));
        let cert_rotated = ts(row, &format!("cert_{n}_last_rotated"))?;
        if cert_active == Some(true) || cert_rotated.is_some() {
            o.facts.credentials.push(Credential {
                id: format!("cert_{n}"),
                kind: CredentialKind::SigningCertificate,
                status: if cert_active == Some(true) {
                    CredentialStatus::Active
                } else {
                    CredentialStatus::Inactive
                },
                created: cert_rotated,
                last_used: None,
                last_used_region: None,
                last_used_service: None,
            });
        }
    }
    o.facts.last_used = last_used;
    if let Some(t) = last_used {
        // Kept apart from `last_used`, which observed events move: what the platform said.
        o.facts.details.insert(
            "reported_last_used".into(),
            serde_json::json!(time::format(t)),
        );
    }
    Ok(Output {
        event: None,
        observations: vec![o],
        ..Output::default()
    })
}
