//! Who acted: every `userIdentity.type` becomes identity observations (session → role,
//! key → user or session, web identity → OIDC subject, `invokedBy` → service).

use super::*;

pub(super) fn aws(id: String, kind: IdentityKind, name: &str) -> Observation {
    Observation::new(id, Platform::Aws, kind, name, SourceKind::Cloudtrail)
}

/// Parses the Java-style dates CloudTrail puts in `responseElements`
/// (`Nov 10, 2026 8:15:02 AM`, `Nov 10, 2026, 8:15:02 AM`) as well as ISO 8601.
pub fn parse_time(s: &str) -> Option<i64> {
    if let Some(t) = time::parse(s) {
        return Some(t);
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let cleaned = s.replace(',', " ");
    let mut it = cleaned.split_whitespace();
    let mon = it.next()?;
    let month = MONTHS.iter().position(|m| *m == mon)? as i64 + 1;
    let day: i64 = it.next()?.parse().ok()?;
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (mut h, m, sec) = (
        hms.next()??,
        hms.next()??,
        hms.next().flatten().unwrap_or(0),
    );
    match it.next() {
        Some("PM") if h < 12 => h += 12,
        Some("AM") if h == 12 => h = 0,
        _ => {}
    }
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(
        time::days_from_civil(year, month, day) * time::MS_PER_DAY
            + ((h * 60 + m) * 60 + sec) * 1000,
    )
}

/// Parses a GitHub Actions OIDC `sub` claim: `repo:<org>/<repo>:ref:<ref>`,
/// `…:environment:<env>`, `…:pull_request`, and customised templates with further
/// `key:value` pairs (`job_workflow_ref`, `context`, …).
pub fn github_subject(sub: &str) -> Option<Value> {
    let rest = sub.strip_prefix("repo:")?;
    let mut parts = rest.split(':');
    let repository = parts.next()?;
    let (owner, _) = repository.split_once('/')?;
    let mut claims = serde_json::Map::new();
    claims.insert("repository".into(), json!(repository));
    claims.insert("owner".into(), json!(owner));
    while let Some(key) = parts.next() {
        match key {
            "pull_request" => {
                claims.insert("pull_request".into(), json!(true));
            }
            "ref" => {
                let r = parts.next().unwrap_or_default();
                if let Some(b) = r.strip_prefix("refs/heads/") {
                    claims.insert("branch".into(), json!(b));
                } else if let Some(t) = r.strip_prefix("refs/tags/") {
                    claims.insert("tag".into(), json!(t));
                }
                claims.insert("ref".into(), json!(r));
            }
            other => {
                let v = parts.next().unwrap_or_default();
                claims.insert(other.to_owned(), json!(v));
            }
        }
    }
    Some(Value::Object(claims))
}

/// Splits an EKS IRSA subject `system:serviceaccount:<ns>:<name>`.
pub fn irsa_subject(sub: &str) -> Option<(&str, &str)> {
    sub.strip_prefix("system:serviceaccount:")?.split_once(':')
}

/// An OIDC subject observation with its platform and parsed claims.
pub(super) fn oidc_subject(issuer: &str, sub: &str) -> Observation {
    let key = ids::issuer_key(issuer);
    let mut o = Observation::new(
        ids::oidc(issuer, sub),
        Platform::Oidc,
        IdentityKind::OidcSubject,
        sub,
        SourceKind::Cloudtrail,
    );
    o.facts.subject = Some(sub.to_owned());
    o.facts.issuer = Some(key.to_owned());
    if key.starts_with("token.actions.githubusercontent.com") {
        o.platform = Platform::Github;
        if let Some(claims) = github_subject(sub) {
            o.facts.details.insert("github".into(), claims);
        }
    } else if let Some((ns, sa)) = irsa_subject(sub) {
        o.platform = Platform::Kubernetes;
        o.facts.namespace = Some(ns.to_owned());
        o.facts.details.insert(
            "irsa".into(),
            json!({"namespace": ns, "service_account": sa}),
        );
    }
    o
}

pub(super) fn key_observation(key: &str, parent: &str, at: i64, used: bool) -> Option<Observation> {
    let kind = match ids::access_key_type(key)? {
        AccessKeyType::LongTerm => IdentityKind::AccessKey,
        AccessKeyType::Temporary => IdentityKind::TemporaryAccessKey,
    };
    let mut o = aws(key.to_owned(), kind, key);
    o.facts.account = ids::account_from_access_key(key);
    o.facts.parent = Some(parent.to_owned());
    if used {
        o.used_at = Some(at);
    } else {
        o.seen_at = Some(at);
    }
    Some(o)
}

pub(super) fn credential(id: &str, kind: CredentialKind, status: CredentialStatus) -> Credential {
    Credential {
        id: id.to_owned(),
        kind,
        status,
        created: None,
        last_used: None,
        last_used_region: None,
        last_used_service: None,
    }
}

pub(super) fn account_of(arn: &str) -> Option<String> {
    ids::Arn::parse(arn)
        .map(|a| a.account.to_owned())
        .filter(|a| !a.is_empty())
}

/// Observations for the caller; returns the caller's canonical id.
///
/// One function per `userIdentity.type`; `Unknown` (failed sign-ins, some service events)
/// and types we do not know name no principal we can trust.
pub(super) fn actor(rec: &Record, at: i64, obs: &mut Vec<Observation>) -> Option<String> {
    let ui = rec.user_identity.get()?;
    let caller = Caller {
        rec,
        ui,
        account: ui
            .account_id
            .owned()
            .or_else(|| ui.arn.get().and_then(account_of)),
        at,
    };
    let id = match ui.ty.get().unwrap_or("Unknown") {
        "IAMUser" => iam_user(&caller, obs)?,
        "AssumedRole" => assumed_role(&caller, obs)?,
        "FederatedUser" => federated_user(&caller, obs)?,
        "WebIdentityUser" => web_identity_user(&caller, obs)?,
        "SAMLUser" => saml_user(&caller, obs)?,
        "AWSService" => aws_service(&caller, obs)?,
        "AWSAccount" => aws_account(&caller, obs)?,
        "Root" => root(&caller, obs)?,
        "IdentityCenterUser" => identity_center_user(&caller, obs)?,
        _ => return None,
    };
    invoking_service(ui, &id, at, obs);
    Some(id)
}

/// The caller, as every `userIdentity.type` reads it.
struct Caller<'r> {
    rec: &'r Record<'r>,
    ui: &'r UserIdentity<'r>,
    /// `userIdentity.accountId`, else the account in `userIdentity.arn`.
    account: Option<String>,
    /// `eventTime`, in milliseconds.
    at: i64,
}

/// `IAMUser`: the user, its long-term key (as a credential with where it was last used)
/// and the key itself.
fn iam_user(c: &Caller, obs: &mut Vec<Observation>) -> Option<String> {
    let (ui, at) = (c.ui, c.at);
    let arn = ui.arn.get();
    let acct = c.account.clone()?;
    let name = ui
        .user_name
        .get()
        .or_else(|| arn.and_then(|a| a.rsplit('/').next()))?;
    let id = arn
        .and_then(ids::canonical_iam_arn)
        .unwrap_or_else(|| ids::iam(&acct, "user", name));
    let mut u = aws(id.clone(), IdentityKind::IamUser, name);
    u.used_at = Some(at);
    u.facts.arn = arn.map(str::to_owned);
    u.facts.account = Some(acct);
    u.facts.native_id = ui.principal_id.owned();
    if let Some(key) = ui.access_key_id.get() {
        if ids::access_key_type(key) == Some(AccessKeyType::LongTerm) {
            let mut k = credential(key, CredentialKind::AccessKey, CredentialStatus::Unknown);
            k.last_used = Some(at);
            k.last_used_region = c.rec.aws_region.get().map(str::to_owned);
            k.last_used_service = c
                .rec
                .event_source
                .get()
                .map(|s| ids::service_name(s).to_owned());
            u.facts.credentials.push(k);
        }
        obs.extend(key_observation(key, &id, at, true));
    }
    obs.push(u);
    Some(id)
}

/// `AssumedRole`: the role (from the session issuer), the session, the web identity that
/// federated into it, if any, and the session's temporary key.
fn assumed_role(c: &Caller, obs: &mut Vec<Observation>) -> Option<String> {
    let (ui, at) = (c.ui, c.at);
    let sc = ui.session_context.get();
    let arn = ui.arn.get()?;
    let (acct, role_name, session) = ids::split_assumed_role(arn)?;
    let issuer = sc.and_then(|s| s.session_issuer.get());
    let role_arn = issuer.and_then(|i| i.arn.get());
    let role_id = role_arn
        .and_then(ids::canonical_iam_arn)
        .unwrap_or_else(|| ids::iam(acct, "role", role_name));
    let mut role = aws(role_id.clone(), IdentityKind::IamRole, role_name);
    role.used_at = Some(at);
    role.facts.arn = role_arn.map(str::to_owned);
    role.facts.account = Some(acct.to_owned());
    role.facts.native_id = issuer.and_then(|i| i.principal_id.owned());
    let mut s = aws(arn.to_owned(), IdentityKind::StsSession, session);
    s.used_at = Some(at);
    s.facts.arn = Some(arn.to_owned());
    s.facts.account = Some(acct.to_owned());
    s.facts.parent = Some(role_id.clone());
    s.facts.source_identity = sc.and_then(|c| c.source_identity.owned());
    if let Some(web) = sc.and_then(|c| c.web_id_federation_data.get())
        && let Some(provider) = web.federated_provider.get()
    {
        web_federation(web, provider, &role_id, at, &mut s, obs);
    }
    if let Some(key) = ui.access_key_id.get() {
        obs.extend(key_observation(key, arn, at, true));
    }
    obs.push(role);
    obs.push(s);
    Some(arn.to_owned())
}

/// An `AssumedRole` session's `webIdFederationData`: its provider and claims on the session
/// `s`, and the OIDC subject (with the claims a GitHub subject does not carry in `sub`)
/// that assumed the role `role_id`.
fn web_federation(
    web: &WebIdFederation,
    provider: &str,
    role_id: &str,
    at: i64,
    s: &mut Observation,
    obs: &mut Vec<Observation>,
) {
    let key = ids::issuer_key(provider);
    let mut claims = serde_json::Map::new();
    let mut subject = None;
    for (k, v) in web.attributes.get().into_iter().flatten() {
        let claim = k
            .strip_prefix(key)
            .and_then(|c| c.strip_prefix(':'))
            .unwrap_or(k);
        if let Some(v) = v.get() {
            if claim == "sub" {
                subject = Some(v.to_owned());
            }
            claims.insert(claim.to_owned(), json!(v));
        }
    }
    s.facts.details.insert(
        "federation".into(),
        json!({"provider": provider, "claims": Value::Object(claims.clone())}),
    );
    if let Some(sub) = subject {
        let mut o = oidc_subject(provider, &sub);
        o.used_at = Some(at);
        o.facts.links.push(role_id.to_owned());
        if let Some(Value::Object(gh)) = o.facts.details.get_mut("github") {
            for (k, v) in &claims {
                if k != "sub" && k != "aud" {
                    gh.insert(k.clone(), v.clone());
                }
            }
        }
        s.facts.assumed_by = Some(o.id.clone());
        obs.push(o);
    }
}

/// `FederatedUser`: the federated user, the IAM user that issued it (its parent), and its
/// temporary key.
fn federated_user(c: &Caller, obs: &mut Vec<Observation>) -> Option<String> {
    let (ui, at) = (c.ui, c.at);
    let arn = ui.arn.get()?;
    let name = arn.rsplit('/').next().unwrap_or(arn);
    let mut f = aws(arn.to_owned(), IdentityKind::FederatedUser, name);
    f.used_at = Some(at);
    f.facts.arn = Some(arn.to_owned());
    f.facts.account = c.account.clone();
    if let Some(issuer_arn) = ui
        .session_context
        .get()
        .and_then(|c| c.session_issuer.get())
        .and_then(|i| i.arn.get())
        && let Some(uid) = ids::canonical_iam_arn(issuer_arn)
    {
        let mut u = aws(
            uid.clone(),
            IdentityKind::IamUser,
            issuer_arn.rsplit('/').next().unwrap_or(issuer_arn),
        );
        u.used_at = Some(at);
        u.facts.arn = Some(issuer_arn.to_owned());
        u.facts.account = c.account.clone();
        obs.push(u);
        f.facts.parent = Some(uid);
    }
    if let Some(key) = ui.access_key_id.get() {
        obs.extend(key_observation(key, arn, at, true));
    }
    obs.push(f);
    Some(arn.to_owned())
}

/// `WebIdentityUser`: the OIDC subject.
fn web_identity_user(c: &Caller, obs: &mut Vec<Observation>) -> Option<String> {
    let provider = c.ui.identity_provider.get()?;
    let sub = c.ui.user_name.get()?;
    let mut o = oidc_subject(provider, sub);
    o.used_at = Some(c.at);
    let id = o.id.clone();
    obs.push(o);
    Some(id)
}

/// `SAMLUser`: the SAML subject of its identity provider.
fn saml_user(c: &Caller, obs: &mut Vec<Observation>) -> Option<String> {
    let provider = c.ui.identity_provider.get()?;
    let sub = c.ui.user_name.get()?;
    let mut o = aws(ids::saml(provider, sub), IdentityKind::SamlSubject, sub);
    o.used_at = Some(c.at);
    o.facts.subject = Some(sub.to_owned());
    o.facts.issuer = Some(provider.to_owned());
    o.facts.account = c.account.clone();
    let id = o.id.clone();
    obs.push(o);
    Some(id)
}

/// `AWSService`: the service in `invokedBy`.
fn aws_service(c: &Caller, obs: &mut Vec<Observation>) -> Option<String> {
    let principal = c.ui.invoked_by.get()?;
    let mut o = aws(
        ids::aws_service(principal),
        IdentityKind::AwsService,
        principal,
    );
    o.used_at = Some(c.at);
    let id = o.id.clone();
    obs.push(o);
    Some(id)
}

/// `AWSAccount`: another account, as a whole.
fn aws_account(c: &Caller, obs: &mut Vec<Observation>) -> Option<String> {
    let acct = c.account.clone()?;
    let mut o = aws(
        ids::account_root(&acct),
        IdentityKind::ExternalAccount,
        &acct,
    );
    o.used_at = Some(c.at);
    o.facts.account = Some(acct);
    let id = o.id.clone();
    obs.push(o);
    Some(id)
}

/// `Root`: the account's root user and its key.
fn root(c: &Caller, obs: &mut Vec<Observation>) -> Option<String> {
    let acct = c.account.clone()?;
    let mut o = aws(ids::account_root(&acct), IdentityKind::AccountRoot, "root");
    o.used_at = Some(c.at);
    o.facts.account = Some(acct);
    o.facts.arn = c.ui.arn.owned();
    if let Some(key) = c.ui.access_key_id.get() {
        obs.extend(key_observation(key, &o.id, c.at, true));
    }
    let id = o.id.clone();
    obs.push(o);
    Some(id)
}

/// `IdentityCenterUser`: the user of its identity store, with the temporary credential it
/// signed in with.
fn identity_center_user(c: &Caller, obs: &mut Vec<Observation>) -> Option<String> {
    let on_behalf = c.ui.on_behalf_of.get()?;
    let user = on_behalf.user_id.get()?;
    let store = on_behalf
        .identity_store_arn
        .get()
        .map(|a| a.rsplit('/').next().unwrap_or(a))
        .unwrap_or("unknown");
    let mut o = aws(
        ids::identity_center(store, user),
        IdentityKind::IdentityCenterUser,
        user,
    );
    o.used_at = Some(c.at);
    o.facts.account = c.account.clone();
    o.facts.issuer = on_behalf.identity_store_arn.owned();
    if let Some(cred) = c.ui.credential_id.get() {
        let mut k = credential(
            cred,
            CredentialKind::TemporaryAccessKey,
            CredentialStatus::Unknown,
        );
        k.last_used = Some(c.at);
        o.facts.credentials.push(k);
    }
    let id = o.id.clone();
    obs.push(o);
    Some(id)
}

/// The service that made the call on the caller's behalf (`invokedBy`), linked to the
/// caller `id`; an `AWSService` caller is that service already.
#[inline]
fn invoking_service(ui: &UserIdentity, id: &str, at: i64, obs: &mut Vec<Observation>) {
    if let Some(principal) = ui.invoked_by.get()
        && ui.ty.get() != Some("AWSService")
    {
        let mut o = aws(
            ids::aws_service(principal),
            IdentityKind::AwsService,
            principal,
        );
        o.used_at = Some(at);
        o.facts.links.push(id.to_owned());
        obs.push(o);
    }
}
