//! What a successful call did to identities: sessions, keys, users and roles created,
//! assumed, re-keyed or deleted.

use super::*;

/// What a successful call did to identities: sessions, keys, users and roles created or
/// deleted.
pub(super) fn effects(rec: &Record, actor: Option<&str>, at: i64, obs: &mut Vec<Observation>) {
    let name = rec.event_name.get().unwrap_or_default();
    let req = rec.request_parameters.get();
    let resp = rec.response_elements.get();
    let account = rec
        .recipient_account_id
        .owned()
        .or_else(|| rec.user_identity.get().and_then(|u| u.account_id.owned()));
    let user_id = |name: &str| account.as_deref().map(|a| ids::iam(a, "user", name));
    let actor_user = || actor.filter(|a| a.contains(":user/")).map(str::to_owned);
    match name {
        "AssumeRole" | "AssumeRoleWithWebIdentity" | "AssumeRoleWithSAML" => {
            let Some(role_arn) = req.and_then(|r| r.role_arn.get()) else {
                return;
            };
            let Some(role_id) = ids::canonical_iam_arn(role_arn) else {
                return;
            };
            let role_name = role_arn.rsplit('/').next().unwrap_or(role_arn);
            let mut role = aws(role_id.clone(), IdentityKind::IamRole, role_name);
            role.used_at = Some(at);
            role.facts.arn = Some(role_arn.to_owned());
            role.facts.account = account_of(role_arn);
            obs.push(role);
            let session_arn = resp
                .and_then(|r| r.assumed_role_user.get())
                .and_then(|u| u.arn.get());
            if name == "AssumeRoleWithWebIdentity"
                && let (Some(sub), Some(provider)) = (
                    resp.and_then(|r| r.subject_from_web_identity_token.get()),
                    resp.and_then(|r| r.provider.get()).or_else(|| {
                        rec.user_identity
                            .get()
                            .and_then(|u| u.identity_provider.get())
                    }),
                )
            {
                let mut o = oidc_subject(provider, sub);
                o.seen_at = Some(at);
                o.facts.links.push(role_id.clone());
                if let Some(aud) = resp.and_then(|r| r.audience.get()) {
                    o.facts.details.insert("audience".into(), json!(aud));
                }
                obs.push(o);
            }
            if name == "AssumeRoleWithSAML"
                && let Some(a) = actor
            {
                let mut o = aws(
                    a.to_owned(),
                    IdentityKind::SamlSubject,
                    a.rsplit('#').next().unwrap_or(a),
                );
                o.seen_at = Some(at);
                o.facts.links.push(role_id.clone());
                obs.push(o);
            }
            let Some(session_arn) = session_arn else {
                return;
            };
            let Some((acct, _, session)) = ids::split_assumed_role(session_arn) else {
                return;
            };
            let mut s = aws(session_arn.to_owned(), IdentityKind::StsSession, session);
            s.seen_at = Some(at);
            s.facts.created = Some(at);
            s.facts.arn = Some(session_arn.to_owned());
            s.facts.account = Some(acct.to_owned());
            s.facts.parent = Some(role_id);
            s.facts.assumed_by = actor.map(str::to_owned);
            s.facts.source_identity = req
                .and_then(|r| r.source_identity.owned())
                .or_else(|| resp.and_then(|r| r.source_identity.owned()));
            if let Some(key) = resp
                .and_then(|r| r.credentials.get())
                .and_then(|c| c.access_key_id.get())
                && let Some(mut k) = key_observation(key, session_arn, at, false)
            {
                k.facts.created = Some(at);
                obs.push(k);
            }
            obs.push(s);
        }
        "GetFederationToken" => {
            let Some(arn) = resp
                .and_then(|r| r.federated_user.get())
                .and_then(|f| f.arn.get())
            else {
                return;
            };
            let mut f = aws(
                arn.to_owned(),
                IdentityKind::FederatedUser,
                arn.rsplit('/').next().unwrap_or(arn),
            );
            f.seen_at = Some(at);
            f.facts.created = Some(at);
            f.facts.arn = Some(arn.to_owned());
            f.facts.account = account_of(arn);
            f.facts.parent = actor.map(str::to_owned);
            f.facts.assumed_by = actor.map(str::to_owned);
            if let Some(key) = resp
                .and_then(|r| r.credentials.get())
                .and_then(|c| c.access_key_id.get())
                && let Some(mut k) = key_observation(key, arn, at, false)
            {
                k.facts.created = Some(at);
                obs.push(k);
            }
            obs.push(f);
        }
        "GetSessionToken" => {
            if let (Some(a), Some(key)) = (
                actor,
                resp.and_then(|r| r.credentials.get())
                    .and_then(|c| c.access_key_id.get()),
            ) && let Some(mut k) = key_observation(key, a, at, false)
            {
                k.facts.created = Some(at);
                k.facts.created_by = Some(a.to_owned());
                obs.push(k);
            }
        }
        "CreateUser" | "CreateRole" => {
            let Some(p) = resp.and_then(|r| {
                if name == "CreateUser" {
                    r.user.get()
                } else {
                    r.role.get()
                }
            }) else {
                return;
            };
            let (kind, ty) = if name == "CreateUser" {
                (IdentityKind::IamUser, "user")
            } else {
                (IdentityKind::IamRole, "role")
            };
            let Some(pname) = p.user_name.get().or(p.role_name.get()) else {
                return;
            };
            let arn = p.arn.get();
            let Some(id) = arn
                .and_then(ids::canonical_iam_arn)
                .or_else(|| account.as_deref().map(|a| ids::iam(a, ty, pname)))
            else {
                return;
            };
            let mut o = aws(id, kind, pname);
            o.seen_at = Some(at);
            o.facts.created = p.create_date.get().and_then(parse_time).or(Some(at));
            o.facts.arn = arn.map(str::to_owned);
            o.facts.account = arn.and_then(account_of).or_else(|| account.clone());
            o.facts.native_id = p.user_id.owned().or_else(|| p.role_id.owned());
            o.facts.created_by = actor.map(str::to_owned);
            if let Some(doc) = req.and_then(|r| r.assume_role_policy_document.get()) {
                o.facts
                    .details
                    .insert("trust_policy".into(), policy_json(doc));
            }
            obs.push(o);
        }
        "UpdateAssumeRolePolicy" => {
            if let (Some(role), Some(doc)) = (
                req.and_then(|r| r.role_name.get()),
                req.and_then(|r| r.policy_document.get()),
            ) && let Some(a) = account.as_deref()
            {
                let mut o = aws(ids::iam(a, "role", role), IdentityKind::IamRole, role);
                o.seen_at = Some(at);
                o.facts.account = Some(a.to_owned());
                o.facts
                    .details
                    .insert("trust_policy".into(), policy_json(doc));
                obs.push(o);
            }
        }
        "CreateAccessKey" => {
            let Some(k) = resp.and_then(|r| r.access_key.get()) else {
                return;
            };
            let Some(key) = k.access_key_id.get() else {
                return;
            };
            let owner = k.user_name.get().and_then(user_id).or_else(actor_user);
            let Some(owner) = owner else { return };
            let created = k.create_date.get().and_then(parse_time).or(Some(at));
            let mut c = credential(key, CredentialKind::AccessKey, CredentialStatus::Active);
            c.created = created;
            if let Some(mut ko) = key_observation(key, &owner, at, false) {
                ko.facts.created = created;
                ko.facts.created_by = actor.map(str::to_owned);
                ko.facts.credentials.push(c.clone());
                obs.push(ko);
            }
            let uname = owner.rsplit('/').next().unwrap_or(&owner).to_owned();
            let mut u = aws(owner, IdentityKind::IamUser, &uname);
            u.seen_at = Some(at);
            u.facts.account = account.clone();
            u.facts.credentials.push(c);
            obs.push(u);
        }
        "DeleteAccessKey" | "UpdateAccessKey" => {
            let Some(key) = req.and_then(|r| r.access_key_id.get()) else {
                return;
            };
            let status = if name == "DeleteAccessKey" {
                CredentialStatus::Deleted
            } else {
                match req.and_then(|r| r.status.get()) {
                    Some("Active") => CredentialStatus::Active,
                    Some("Inactive") => CredentialStatus::Inactive,
                    _ => return,
                }
            };
            let owner = req
                .and_then(|r| r.user_name.get())
                .and_then(user_id)
                .or_else(actor_user);
            if let Some(owner) = &owner {
                let uname = owner.rsplit('/').next().unwrap_or(owner);
                let mut u = aws(owner.clone(), IdentityKind::IamUser, uname);
                u.seen_at = Some(at);
                u.facts.account = account.clone();
                u.facts.credential_status.push((key.to_owned(), status));
                obs.push(u);
            }
            if let Some(mut k) =
                key_observation(key, owner.as_deref().unwrap_or_default(), at, false)
            {
                if owner.is_none() {
                    k.facts.parent = None;
                }
                k.facts.credential_status.push((key.to_owned(), status));
                if status == CredentialStatus::Deleted {
                    k.facts.deleted = Some(at);
                }
                obs.push(k);
            }
        }
        "DeleteUser" | "DeleteRole" => {
            let (kind, ty, n) = if name == "DeleteUser" {
                (
                    IdentityKind::IamUser,
                    "user",
                    req.and_then(|r| r.user_name.get()),
                )
            } else {
                (
                    IdentityKind::IamRole,
                    "role",
                    req.and_then(|r| r.role_name.get()),
                )
            };
            if let (Some(n), Some(a)) = (n, account.as_deref()) {
                let mut o = aws(ids::iam(a, ty, n), kind, n);
                o.seen_at = Some(at);
                o.facts.account = Some(a.to_owned());
                o.facts.deleted = Some(at);
                obs.push(o);
            }
        }
        "CreateLoginProfile" | "UpdateLoginProfile" | "DeleteLoginProfile" => {
            let Some(owner) = req
                .and_then(|r| r.user_name.get())
                .and_then(user_id)
                .or_else(actor_user)
            else {
                return;
            };
            let uname = owner.rsplit('/').next().unwrap_or(&owner).to_owned();
            let mut u = aws(owner, IdentityKind::IamUser, &uname);
            u.seen_at = Some(at);
            u.facts.account = account.clone();
            if name == "DeleteLoginProfile" {
                u.facts
                    .credential_status
                    .push(("password".into(), CredentialStatus::Deleted));
            } else {
                let mut c = credential(
                    "password",
                    CredentialKind::Password,
                    CredentialStatus::Active,
                );
                c.created = Some(at);
                u.facts.credentials.push(c);
                u.facts.created_by = actor
                    .filter(|a| !a.ends_with(&format!("user/{uname}")))
                    .map(str::to_owned);
            }
            obs.push(u);
        }
        _ => {}
    }
}

/// A policy document from a request parameter: JSON text, possibly URL-encoded.
pub fn policy_json(doc: &str) -> Value {
    if let Ok(v) = serde_json::from_str(doc) {
        return v;
    }
    let decoded = percent_encoding::percent_decode_str(doc).decode_utf8_lossy();
    serde_json::from_str(&decoded).unwrap_or_else(|_| Value::String(doc.to_owned()))
}
