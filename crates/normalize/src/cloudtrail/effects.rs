//! What a successful call did to identities: sessions, keys, users and roles created,
//! assumed, re-keyed or deleted.
//!
//! `effects` reads what every family of calls needs once (a `Call`) and hands it to one
//! function per family: STS sessions (`assume_role`, `federation_token`,
//! `session_token`), IAM principals (`create_principal`, `trust_policy_update`,
//! `delete_principal`), access keys (`create_access_key`, `access_key_status`) and
//! console passwords (`login_profile`).

use super::*;

/// What a successful call did to identities: sessions, keys, users and roles created or
/// deleted.
pub(super) fn effects(rec: &Record, actor: Option<&str>, at: i64, obs: &mut Vec<Observation>) {
    let name = rec.event_name.get().unwrap_or_default();
    let call = Call {
        rec,
        name,
        req: rec.request_parameters.get(),
        resp: rec.response_elements.get(),
        account: rec
            .recipient_account_id
            .owned()
            .or_else(|| rec.user_identity.get().and_then(|u| u.account_id.owned())),
        actor,
        at,
    };
    match name {
        "AssumeRole" | "AssumeRoleWithWebIdentity" | "AssumeRoleWithSAML" => {
            assume_role(&call, obs);
        }
        "GetFederationToken" => federation_token(&call, obs),
        "GetSessionToken" => session_token(&call, obs),
        "CreateUser" | "CreateRole" => create_principal(&call, obs),
        "UpdateAssumeRolePolicy" => trust_policy_update(&call, obs),
        "CreateAccessKey" => create_access_key(&call, obs),
        "DeleteAccessKey" | "UpdateAccessKey" => access_key_status(&call, obs),
        "DeleteUser" | "DeleteRole" => delete_principal(&call, obs),
        "CreateLoginProfile" | "UpdateLoginProfile" | "DeleteLoginProfile" => {
            login_profile(&call, obs);
        }
        _ => {}
    }
}

/// One successful call, as every family of calls reads it.
struct Call<'r> {
    rec: &'r Record<'r>,
    /// `eventName`.
    name: &'r str,
    req: Option<&'r Request<'r>>,
    resp: Option<&'r Response<'r>>,
    /// The account the call acted in: `recipientAccountId`, else the caller's account.
    account: Option<String>,
    /// The caller's canonical id, from `super::actor`.
    actor: Option<&'r str>,
    /// `eventTime`, in milliseconds.
    at: i64,
}

impl Call<'_> {
    /// The canonical id of the IAM user `name` in the call's account.
    #[inline]
    fn user_id(&self, name: &str) -> Option<String> {
        self.account.as_deref().map(|a| ids::iam(a, "user", name))
    }

    /// The caller, when it is an IAM user (calls on "my own" keys and password name no user).
    #[inline]
    fn actor_user(&self) -> Option<String> {
        self.actor
            .filter(|a| a.contains(":user/"))
            .map(str::to_owned)
    }

    /// The IAM user a request names in `userName`, else the calling user.
    #[inline]
    fn named_or_calling_user(&self) -> Option<String> {
        self.req
            .and_then(|r| r.user_name.get())
            .and_then(|n| self.user_id(n))
            .or_else(|| self.actor_user())
    }

    /// The access key id of the temporary credentials an STS call returned.
    #[inline]
    fn issued_key(&self) -> Option<&str> {
        self.resp
            .and_then(|r| r.credentials.get())
            .and_then(|c| c.access_key_id.get())
    }
}

/// `AssumeRole`, `AssumeRoleWithWebIdentity`, `AssumeRoleWithSAML`: the role was used; the
/// web identity or SAML subject that assumed it, and the session and its temporary key.
fn assume_role(call: &Call, obs: &mut Vec<Observation>) {
    let Some(role_arn) = call.req.and_then(|r| r.role_arn.get()) else {
        return;
    };
    let Some(role_id) = ids::canonical_iam_arn(role_arn) else {
        return;
    };
    let role_name = role_arn.rsplit('/').next().unwrap_or(role_arn);
    let mut role = aws(role_id.clone(), IdentityKind::IamRole, role_name);
    role.used_at = Some(call.at);
    role.facts.arn = Some(role_arn.to_owned());
    role.facts.account = account_of(role_arn);
    obs.push(role);
    if call.name == "AssumeRoleWithWebIdentity" {
        web_identity_subject(call, &role_id, obs);
    }
    if call.name == "AssumeRoleWithSAML" {
        saml_subject(call, &role_id, obs);
    }
    assumed_session(call, role_id, obs);
}

/// `AssumeRoleWithWebIdentity`: the OIDC subject (with its audience) that assumed the role.
fn web_identity_subject(call: &Call, role_id: &str, obs: &mut Vec<Observation>) {
    let resp = call.resp;
    let (Some(sub), Some(provider)) = (
        resp.and_then(|r| r.subject_from_web_identity_token.get()),
        resp.and_then(|r| r.provider.get()).or_else(|| {
            call.rec
                .user_identity
                .get()
                .and_then(|u| u.identity_provider.get())
        }),
    ) else {
        return;
    };
    let mut o = oidc_subject(provider, sub);
    o.seen_at = Some(call.at);
    o.facts.links.push(role_id.to_owned());
    if let Some(aud) = resp.and_then(|r| r.audience.get()) {
        o.facts.details.insert("audience".into(), json!(aud));
    }
    obs.push(o);
}

/// `AssumeRoleWithSAML`: the SAML subject (the caller) that assumed the role.
fn saml_subject(call: &Call, role_id: &str, obs: &mut Vec<Observation>) {
    let Some(a) = call.actor else {
        return;
    };
    let mut o = aws(
        a.to_owned(),
        IdentityKind::SamlSubject,
        a.rsplit('#').next().unwrap_or(a),
    );
    o.seen_at = Some(call.at);
    o.facts.links.push(role_id.to_owned());
    obs.push(o);
}

/// The session an `AssumeRole*` call created, under the role `role_id`, and its temporary key.
fn assumed_session(call: &Call, role_id: String, obs: &mut Vec<Observation>) {
    let (req, resp, at) = (call.req, call.resp, call.at);
    let Some(session_arn) = resp
        .and_then(|r| r.assumed_role_user.get())
        .and_then(|u| u.arn.get())
    else {
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
    s.facts.assumed_by = call.actor.map(str::to_owned);
    s.facts.source_identity = req
        .and_then(|r| r.source_identity.owned())
        .or_else(|| resp.and_then(|r| r.source_identity.owned()));
    if let Some(key) = call.issued_key()
        && let Some(mut k) = key_observation(key, session_arn, at, false)
    {
        k.facts.created = Some(at);
        obs.push(k);
    }
    obs.push(s);
}

/// `GetFederationToken`: a federated user under the caller, and its temporary key.
fn federation_token(call: &Call, obs: &mut Vec<Observation>) {
    let (actor, at) = (call.actor, call.at);
    let Some(arn) = call
        .resp
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
    if let Some(key) = call.issued_key()
        && let Some(mut k) = key_observation(key, arn, at, false)
    {
        k.facts.created = Some(at);
        obs.push(k);
    }
    obs.push(f);
}

/// `GetSessionToken`: a temporary key under the caller.
fn session_token(call: &Call, obs: &mut Vec<Observation>) {
    if let (Some(a), Some(key)) = (call.actor, call.issued_key())
        && let Some(mut k) = key_observation(key, a, call.at, false)
    {
        k.facts.created = Some(call.at);
        k.facts.created_by = Some(a.to_owned());
        obs.push(k);
    }
}

/// `CreateUser`, `CreateRole`: the new principal, with a role's trust policy.
fn create_principal(call: &Call, obs: &mut Vec<Observation>) {
    let user = call.name == "CreateUser";
    let Some(p) = call
        .resp
        .and_then(|r| if user { r.user.get() } else { r.role.get() })
    else {
        return;
    };
    let (kind, ty) = if user {
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
        .or_else(|| call.account.as_deref().map(|a| ids::iam(a, ty, pname)))
    else {
        return;
    };
    let mut o = aws(id, kind, pname);
    o.seen_at = Some(call.at);
    o.facts.created = p.create_date.get().and_then(parse_time).or(Some(call.at));
    o.facts.arn = arn.map(str::to_owned);
    o.facts.account = arn.and_then(account_of).or_else(|| call.account.clone());
    o.facts.native_id = p.user_id.owned().or_else(|| p.role_id.owned());
    o.facts.created_by = call.actor.map(str::to_owned);
    if let Some(doc) = call.req.and_then(|r| r.assume_role_policy_document.get()) {
        o.facts
            .details
            .insert("trust_policy".into(), policy_json(doc));
    }
    obs.push(o);
}

/// `UpdateAssumeRolePolicy`: the role's new trust policy.
fn trust_policy_update(call: &Call, obs: &mut Vec<Observation>) {
    let req = call.req;
    if let (Some(role), Some(doc)) = (
        req.and_then(|r| r.role_name.get()),
        req.and_then(|r| r.policy_document.get()),
    ) && let Some(a) = call.account.as_deref()
    {
        let mut o = aws(ids::iam(a, "role", role), IdentityKind::IamRole, role);
        o.seen_at = Some(call.at);
        o.facts.account = Some(a.to_owned());
        o.facts
            .details
            .insert("trust_policy".into(), policy_json(doc));
        obs.push(o);
    }
}

/// `CreateAccessKey`: the new long-term key, on the key itself and on its user.
fn create_access_key(call: &Call, obs: &mut Vec<Observation>) {
    let at = call.at;
    let Some(k) = call.resp.and_then(|r| r.access_key.get()) else {
        return;
    };
    let Some(key) = k.access_key_id.get() else {
        return;
    };
    let owner = k
        .user_name
        .get()
        .and_then(|n| call.user_id(n))
        .or_else(|| call.actor_user());
    let Some(owner) = owner else { return };
    let created = k.create_date.get().and_then(parse_time).or(Some(at));
    let mut c = credential(key, CredentialKind::AccessKey, CredentialStatus::Active);
    c.created = created;
    if let Some(mut ko) = key_observation(key, &owner, at, false) {
        ko.facts.created = created;
        ko.facts.created_by = call.actor.map(str::to_owned);
        ko.facts.credentials.push(c.clone());
        obs.push(ko);
    }
    let uname = owner.rsplit('/').next().unwrap_or(&owner).to_owned();
    let mut u = aws(owner, IdentityKind::IamUser, &uname);
    u.seen_at = Some(at);
    u.facts.account = call.account.clone();
    u.facts.credentials.push(c);
    obs.push(u);
}

/// `DeleteAccessKey`, `UpdateAccessKey`: a key deleted, activated or deactivated, on its
/// user (when known) and on the key.
fn access_key_status(call: &Call, obs: &mut Vec<Observation>) {
    let (req, at) = (call.req, call.at);
    let Some(key) = req.and_then(|r| r.access_key_id.get()) else {
        return;
    };
    let status = if call.name == "DeleteAccessKey" {
        CredentialStatus::Deleted
    } else {
        match req.and_then(|r| r.status.get()) {
            Some("Active") => CredentialStatus::Active,
            Some("Inactive") => CredentialStatus::Inactive,
            _ => return,
        }
    };
    let owner = call.named_or_calling_user();
    if let Some(owner) = &owner {
        let uname = owner.rsplit('/').next().unwrap_or(owner);
        let mut u = aws(owner.clone(), IdentityKind::IamUser, uname);
        u.seen_at = Some(at);
        u.facts.account = call.account.clone();
        u.facts.credential_status.push((key.to_owned(), status));
        obs.push(u);
    }
    if let Some(mut k) = key_observation(key, owner.as_deref().unwrap_or_default(), at, false) {
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

/// `DeleteUser`, `DeleteRole`: the principal is gone.
fn delete_principal(call: &Call, obs: &mut Vec<Observation>) {
    let req = call.req;
    let (kind, ty, n) = if call.name == "DeleteUser" {
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
    if let (Some(n), Some(a)) = (n, call.account.as_deref()) {
        let mut o = aws(ids::iam(a, ty, n), kind, n);
        o.seen_at = Some(call.at);
        o.facts.account = Some(a.to_owned());
        o.facts.deleted = Some(call.at);
        obs.push(o);
    }
}

/// `CreateLoginProfile`, `UpdateLoginProfile`, `DeleteLoginProfile`: the user's console
/// password set (by someone other than the user, when so) or deleted.
fn login_profile(call: &Call, obs: &mut Vec<Observation>) {
    let Some(owner) = call.named_or_calling_user() else {
        return;
    };
    let uname = owner.rsplit('/').next().unwrap_or(&owner).to_owned();
    let mut u = aws(owner, IdentityKind::IamUser, &uname);
    u.seen_at = Some(call.at);
    u.facts.account = call.account.clone();
    if call.name == "DeleteLoginProfile" {
        u.facts
            .credential_status
            .push(("password".into(), CredentialStatus::Deleted));
    } else {
        let mut c = credential(
            "password",
            CredentialKind::Password,
            CredentialStatus::Active,
        );
        c.created = Some(call.at);
        u.facts.credentials.push(c);
        u.facts.created_by = call
            .actor
            .filter(|a| !a.ends_with(&format!("user/{uname}")))
            .map(str::to_owned);
    }
    obs.push(u);
}

/// A policy document from a request parameter: JSON text, possibly URL-encoded.
pub fn policy_json(doc: &str) -> Value {
    if let Ok(v) = serde_json::from_str(doc) {
        return v;
    }
    let decoded = percent_encoding::percent_decode_str(doc).decode_utf8_lossy();
    serde_json::from_str(&decoded).unwrap_or_else(|_| Value::String(doc.to_owned()))
}
