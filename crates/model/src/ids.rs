//! Canonical identity ids (documented in `docs/identity-ids.md`) and the facts that can be
//! decoded from native ids.
//!
//! | identity | canonical id |
//! |---|---|
//! | IAM user / role / group | `arn:aws:iam::<account>:user/<name>` (ARN **without** its path) |
//! | STS assumed-role session | `arn:aws:sts::<account>:assumed-role/<role>/<session>` |
//! | STS federated user | `arn:aws:sts::<account>:federated-user/<name>` |
//! | account root | `arn:aws:iam::<account>:root` |
//! | access key | the key id, `AKIA…` / `ASIA…` |
//! | AWS service principal | `aws-service:<principal>` (e.g. `aws-service:lambda.amazonaws.com`) |
//! | OIDC / web-identity subject | `oidc:<issuer>#<sub>` |
//! | SAML subject | `saml:<provider>#<subject>` |
//! | IAM Identity Center user | `identitycenter:<identity-store-id>/<user-id>` |
//! | Kubernetes service account | `k8s:<cluster>/system:serviceaccount:<ns>:<name>` |
//! | other Kubernetes user | `k8s:<cluster>/user:<username>` |
//! | AI agent | `ai:agent/<gen_ai.agent.id>` (or `ai:agent/<service.name>/<gen_ai.agent.name>`) |
//! | AI agent session | `<agent id>/session/<gen_ai.conversation.id or mcp.session.id>` |
//!
//! IAM ids drop the path because CloudTrail's assumed-role ARNs do not carry it, and a role or
//! user name is unique within an account; the full ARN stays in the `arn` field.

/// The canonical id of an IAM principal (`user`, `role`, `group`) without its path.
pub fn iam(account: &str, kind: &str, name: &str) -> String {
    // `concat` allocates once at the exact length; ids are built for every event, and
    // `format!` costs several times as much.
    ["arn:aws:iam::", account, ":", kind, "/", name].concat()
}

pub fn account_root(account: &str) -> String {
    ["arn:aws:iam::", account, ":root"].concat()
}

pub fn aws_service(principal: &str) -> String {
    ["aws-service:", principal].concat()
}

pub fn oidc(issuer: &str, sub: &str) -> String {
    format!("oidc:{}#{sub}", issuer_key(issuer))
}

pub fn saml(provider: &str, subject: &str) -> String {
    ["saml:", provider, "#", subject].concat()
}

pub fn k8s_service_account(cluster: &str, namespace: &str, name: &str) -> String {
    [
        "k8s:",
        cluster,
        "/system:serviceaccount:",
        namespace,
        ":",
        name,
    ]
    .concat()
}

pub fn k8s_user(cluster: &str, username: &str) -> String {
    ["k8s:", cluster, "/user:", username].concat()
}

pub fn identity_center(store_id: &str, user_id: &str) -> String {
    ["identitycenter:", store_id, "/", user_id].concat()
}

/// An AI agent: its `gen_ai.agent.id`, or, when the telemetry names no id, its name
/// within the service that runs it (`<service.name>/<gen_ai.agent.name>`).
pub fn ai_agent(key: &str) -> String {
    ["ai:agent/", key].concat()
}

/// One conversation (or MCP session) of the agent `agent` (its canonical id).
pub fn ai_session(agent: &str, session: &str) -> String {
    [agent, "/session/", session].concat()
}

/// The issuer part of an OIDC id: the provider host and path, whether it was given as a
/// URL (`https://token.actions.githubusercontent.com`), a bare host, or an IAM OIDC provider
/// ARN (`arn:aws:iam::1234:oidc-provider/token.actions.githubusercontent.com`).
pub fn issuer_key(issuer: &str) -> &str {
    let s = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .unwrap_or(issuer);
    if s.starts_with("arn:")
        && let Some(pos) = s.find(":oidc-provider/")
    {
        return &s[pos + ":oidc-provider/".len()..];
    }
    s.trim_end_matches('/')
}

/// Parts of an ARN: `arn:partition:service:region:account:resource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    pub fn parse(s: &'a str) -> Option<Self> {
        let mut it = s.splitn(6, ':');
        if it.next()? != "arn" {
            return None;
        }
        Some(Arn {
            partition: it.next()?,
            service: it.next()?,
            region: it.next()?,
            account: it.next()?,
            resource: it.next()?,
        })
    }

    /// For `user/path/name` or `role/name`, the resource type and the last segment.
    pub fn type_and_name(&self) -> Option<(&'a str, &'a str)> {
        let (ty, rest) = self.resource.split_once('/')?;
        Some((ty, rest.rsplit('/').next().unwrap_or(rest)))
    }
}

/// Canonical id of an IAM principal ARN (user/role/group: path dropped; others verbatim).
pub fn canonical_iam_arn(arn: &str) -> Option<String> {
    let a = Arn::parse(arn)?;
    match a.type_and_name() {
        Some((ty @ ("user" | "role" | "group"), name)) if a.service == "iam" => {
            Some(iam(a.account, ty, name))
        }
        _ => Some(arn.to_owned()),
    }
}

/// An assumed-role ARN `arn:aws:sts::<acct>:assumed-role/<role>/<session>` split into
/// (account, role name, session name).
pub fn split_assumed_role(arn: &str) -> Option<(&str, &str, &str)> {
    let a = Arn::parse(arn)?;
    let rest = a.resource.strip_prefix("assumed-role/")?;
    let (role, session) = rest.split_once('/')?;
    Some((a.account, role, session))
}

/// Whether the key is long-term (`AKIA`), temporary (`ASIA`), or not an access key id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKeyType {
    LongTerm,
    Temporary,
}

pub fn access_key_type(key_id: &str) -> Option<AccessKeyType> {
    if key_id.len() != 20 {
        return None;
    }
    match key_id.get(..4)? {
        "AKIA" => Some(AccessKeyType::LongTerm),
        "ASIA" => Some(AccessKeyType::Temporary),
        _ => None,
    }
}

/// Decodes the AWS account id embedded in an access key id (keys issued since 2019: the
/// 16 characters after the 4-letter prefix are base32; the first 6 decoded bytes, masked
/// with `0x7fffffffff80` and shifted right by 7, are the account number).
pub fn account_from_access_key(key_id: &str) -> Option<String> {
    access_key_type(key_id)?;
    let body = key_id.get(4..)?.as_bytes();
    let mut acc: u128 = 0;
    for &c in body {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u128::from(v);
    }
    // 16 chars * 5 bits = 80 bits = 10 bytes; the first 6 bytes are the top 48 bits.
    let first6 = (acc >> 32) as u64;
    let account = (first6 & 0x7fff_ffff_ff80) >> 7;
    Some(format!("{account:012}"))
}

/// A CloudTrail `eventSource` without its `.amazonaws.com` suffix(es): `s3.amazonaws.com`
/// → `s3` (as `trim_end_matches`, without its general substring search).
pub fn service_name(event_source: &str) -> &str {
    let mut s = event_source;
    while let Some(rest) = s.strip_suffix(".amazonaws.com") {
        s = rest;
    }
    s
}

/// The principal an identity acts for — whose baseline it feeds and whom its findings are
/// about: an assumed-role session's role, otherwise the identity itself.
pub fn principal(actor: &str) -> std::borrow::Cow<'_, str> {
    if let Some(rest) = actor.strip_prefix("arn:aws:sts::")
        && let Some((account, path)) = rest.split_once(':')
        && let Some(role) = path.strip_prefix("assumed-role/")
    {
        let role = role.split('/').next().unwrap_or(role);
        return iam(account, "role", role).into();
    }
    actor.into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn service_names() {
        assert_eq!(super::service_name("s3.amazonaws.com"), "s3");
        assert_eq!(
            super::service_name("signin.amazonaws.com.amazonaws.com"),
            "signin"
        );
        assert_eq!(super::service_name("custom.example"), "custom.example");
    }

    use super::*;

    #[test]
    fn decodes_account_from_key() {
        // Published example from AWS security research (Aidan Steele / Tal Be'ery).
        assert_eq!(
            account_from_access_key("ASIAY34FZKBOKMUTVV7A").as_deref(),
            Some("609629065308")
        );
        assert_eq!(account_from_access_key("AKIA1234"), None);
        assert_eq!(account_from_access_key("AROAY34FZKBOKMUTVV7A"), None);
        assert_eq!(account_from_access_key("ASIAY34FZKBOKMUTVV71"), None);
    }

    #[test]
    fn iam_ids_drop_path() {
        assert_eq!(
            canonical_iam_arn("arn:aws:iam::111122223333:role/service-role/app/my-role").as_deref(),
            Some("arn:aws:iam::111122223333:role/my-role")
        );
        assert_eq!(
            canonical_iam_arn("arn:aws:iam::111122223333:root").as_deref(),
            Some("arn:aws:iam::111122223333:root")
        );
        assert_eq!(
            split_assumed_role("arn:aws:sts::1:assumed-role/r/i-0abc/x"),
            Some(("1", "r", "i-0abc/x"))
        );
    }

    #[test]
    fn issuer_forms_agree() {
        let a = oidc(
            "https://token.actions.githubusercontent.com",
            "repo:a/b:ref:refs/heads/main",
        );
        let b = oidc(
            "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com",
            "repo:a/b:ref:refs/heads/main",
        );
        assert_eq!(a, b);
        assert_eq!(
            a,
            "oidc:token.actions.githubusercontent.com#repo:a/b:ref:refs/heads/main"
        );
    }

    #[test]
    fn principals() {
        assert_eq!(
            principal("arn:aws:sts::111122223333:assumed-role/deploy/gh-123"),
            "arn:aws:iam::111122223333:role/deploy"
        );
        assert_eq!(principal("AKIAEXAMPLE"), "AKIAEXAMPLE");
    }
}
