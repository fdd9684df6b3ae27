//! The caller memo's key: which part of a record decides its caller observations, which
//! calls are always normalized in full, and the fields rules get from the typed parse.

use super::*;

/// Calls that create, delete or re-key identities: always normalized in full.
pub(super) const EFFECTS: [&str; 16] = [
    "AssumeRole",
    "AssumeRoleWithWebIdentity",
    "AssumeRoleWithSAML",
    "GetFederationToken",
    "GetSessionToken",
    "CreateUser",
    "CreateRole",
    "UpdateAssumeRolePolicy",
    "CreateAccessKey",
    "DeleteAccessKey",
    "UpdateAccessKey",
    "DeleteUser",
    "DeleteRole",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "DeleteLoginProfile",
];

/// Everything in `userIdentity` that [`actor`] reads: two records with the same signature
/// yield the same caller observations. Returns `false` when there is no caller.
pub(super) fn caller_signature(rec: &Record, out: &mut String) -> bool {
    out.clear();
    let Some(ui) = rec.user_identity.get() else {
        return false;
    };
    for f in [
        &ui.ty.text,
        &ui.principal_id,
        &ui.arn.text,
        &ui.account_id,
        &ui.access_key_id,
        &ui.user_name,
        &ui.invoked_by,
        &ui.identity_provider,
        &ui.credential_id,
    ] {
        out.push_str(f.get().unwrap_or_default());
        out.push('\u{1f}');
    }
    if let Some(sc) = ui.session_context.get() {
        if let Some(i) = sc.session_issuer.get() {
            for f in [&i.ty.text, &i.principal_id, &i.arn, &i.user_name] {
                out.push_str(f.get().unwrap_or_default());
                out.push('\u{1f}');
            }
        }
        out.push_str(sc.source_identity.get().unwrap_or_default());
        out.push('\u{1f}');
        if let Some(w) = sc.web_id_federation_data.get() {
            out.push_str(w.federated_provider.get().unwrap_or_default());
            for (k, v) in w.attributes.get().into_iter().flatten() {
                let _ = write!(out, "\u{1e}{k}={}", v.get().unwrap_or_default());
            }
        }
    }
    if let Some(o) = ui.on_behalf_of.get() {
        out.push_str(o.user_id.get().unwrap_or_default());
        out.push_str(o.identity_store_arn.get().unwrap_or_default());
    }
    true
}

/// The identity fields every CloudTrail rule set probes, from the typed record: rules then
/// need not skim the raw record for them. Only answers exact by JSON type are given, and
/// only below objects the parser read (a non-object `userIdentity` leaves them unknown).
pub(super) fn known<'a>(rec: &Record<'a>, out: &mut keyward_model::ReadFields<'a>) {
    let Some(ui) = rec.user_identity.get() else {
        return;
    };
    for (path, field) in [("userIdentity.type", &ui.ty), ("userIdentity.arn", &ui.arn)] {
        if let Some(v) = field.exact() {
            out.set(path, v);
        }
    }
    if let Some(v) = ui
        .session_context
        .get()
        .and_then(|c| c.session_issuer.get())
        .and_then(|i| i.ty.exact())
    {
        out.set("userIdentity.sessionContext.sessionIssuer.type", v);
    }
}
