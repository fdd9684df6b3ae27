//! Rotation of an IAM user's access key without downtime, as a [`Plan`] the executor runs
//! like any other: create the new key → write it where the old one lives → verify the new
//! key authenticates as the user → promote each Secrets Manager version → deactivate the
//! old key → (after the grace period) delete it, by hand. A Secrets Manager secret follows
//! its own four-step protocol: the new value is written as `AWSPENDING` (createSecret,
//! setSecret), its key tested from what the secret holds (testSecret) and only then moved
//! to `AWSCURRENT` (finishSecret), so readers of `AWSCURRENT` never see an untested key. Pure: where the key lives is discovered by the connectors
//! (`AwsConnector::secrets_containing`, `KubeConnector::secrets_containing`) and handed in.
//!
//! **The new secret is never stored.** A plan, its step results, the evidence and the audit
//! log are durable and readable by every operator, so the secret access key must stay out
//! of all of them. The create step puts the new key into [`handoff`], a map in this
//! process's memory keyed by user and old key id; the write and verify steps take it from
//! there; the step results hold key *ids* and secret *version ids* only. What follows:
//! - a crash (or a failure) before the deactivate step leaves the old key Active: whatever
//!   was written already holds the new key, which is Active too, so nothing breaks;
//! - a re-run in another process finds no secret in memory: the write and verify steps fail
//!   with a message saying so, and `keyward respond undo PLAN` deletes the unused new key
//!   (after moving Secrets Manager back) so that a fresh `keyward rotate` can start over;
//! - IAM allows two keys per user: a user who already has two is refused by the create step
//!   (and by the CLI before planning), naming both keys, never guessing which may go.
//!
//! Undo: the old key re-activated, Secrets Manager's `AWSCURRENT` moved back to the version
//! before the promotion and `AWSPENDING` taken off the written version (the values are
//! Secrets Manager's own, never copied), the new key deleted.
//! A Kubernetes Secret has no versions: its previous data is kept in this process's memory
//! only ([`handoff`]), so an undo in the process that rotated puts it back, and an undo in
//! another process stops at that step (after re-activating the old key), leaving the new
//! key in place and working.

use keyward_model::time::Millis;
use serde::{Deserialize, Serialize};

use crate::action::{Action, shell_quote as q};
use crate::plan::{Plan, PlanStatus, Step};

/// Where a copy of an access key lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "store", rename_all = "snake_case")]
pub enum SecretLocation {
    /// An AWS Secrets Manager secret (name or ARN); written as a new `AWSCURRENT` version.
    Secretsmanager { secret_id: String },
    /// A Kubernetes Secret's data.
    Kubernetes { namespace: String, name: String },
    /// A Vault/OpenBao KV version 2 secret: `mount` (its first path segment, `secret`) and the
    /// secret's path under it (`app/creds`); written as a new version (check-and-set).
    Vault { mount: String, path: String },
}

impl SecretLocation {
    /// `secretsmanager:NAME` or `k8s:NS/NAME`, as `--also` takes it.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(name) = s.strip_prefix("secretsmanager:")
            && !name.is_empty()
        {
            return Ok(SecretLocation::Secretsmanager {
                secret_id: name.to_owned(),
            });
        }
        if let Some(rest) = s
            .strip_prefix("k8s:")
            .or_else(|| s.strip_prefix("kubernetes:"))
            && let Some((ns, name)) = rest.split_once('/')
            && !ns.is_empty()
            && !name.is_empty()
            && !name.contains('/')
        {
            return Ok(SecretLocation::Kubernetes {
                namespace: ns.to_owned(),
                name: name.to_owned(),
            });
        }
        if let Some(rest) = s.strip_prefix("vault:").or_else(|| s.strip_prefix("bao:"))
            && let Some((mount, path)) = rest.trim_start_matches('/').split_once('/')
            && !mount.is_empty()
            && !path.is_empty()
            && !path.ends_with('/')
            && path
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        {
            return Ok(SecretLocation::Vault {
                mount: mount.to_owned(),
                path: path.to_owned(),
            });
        }
        Err(format!(
            "`{s}` is not a secret location: use secretsmanager:NAME, k8s:NAMESPACE/NAME or vault:MOUNT/PATH"
        ))
    }

    /// `aws`, `kubernetes` or `vault`: the connector that writes it.
    pub fn platform(&self) -> &'static str {
        match self {
            SecretLocation::Secretsmanager { .. } => "aws",
            SecretLocation::Kubernetes { .. } => "kubernetes",
            SecretLocation::Vault { .. } => "vault",
        }
    }
}

impl std::fmt::Display for SecretLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretLocation::Secretsmanager { secret_id } => write!(f, "secretsmanager:{secret_id}"),
            SecretLocation::Kubernetes { namespace, name } => write!(f, "k8s:{namespace}/{name}"),
            SecretLocation::Vault { mount, path } => write!(f, "vault:{mount}/{path}"),
        }
    }
}

/// What a rotation plan is made from.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub account: Option<&'a str>,
    pub user: &'a str,
    /// The key being replaced (Active, the user's only key).
    pub old_key_id: &'a str,
    /// Where the old key lives (discovered and declared), deduplicated here.
    pub locations: &'a [SecretLocation],
    /// Days between deactivating the old key and deleting it.
    pub grace_days: u32,
    pub now: Millis,
    pub actor: &'a str,
}

/// The rotation plan: create, one write per location, verify, deactivate; the old key's
/// deletion `grace_days` after the plan ran is [`crate::purge`]'s.
pub fn plan(req: &Request<'_>) -> Plan {
    let account = req.account.map(str::to_owned);
    let user = req.user.to_owned();
    let old = req.old_key_id.to_owned();
    let mut locations = req.locations.to_vec();
    locations.sort();
    locations.dedup();
    let mut actions = vec![(
        Action::CreateAccessKey {
            account: account.clone(),
            user: user.clone(),
            replaces: old.clone(),
        },
        "rotate: the new key (its secret is held in memory only)".to_owned(),
    )];
    for l in &locations {
        actions.push((
            Action::UpdateSecretValue {
                user: user.clone(),
                replaces: old.clone(),
                location: l.clone(),
            },
            "rotate: the old key lives here".to_owned(),
        ));
    }
    actions.push((
        Action::VerifyAccessKey {
            account: account.clone(),
            user: user.clone(),
            replaces: old.clone(),
        },
        "rotate: the new key works before the old one stops".to_owned(),
    ));
    // Secrets Manager's four steps: the new key was created (createSecret) and written as
    // AWSPENDING (setSecret); each pending version is tested and promoted (testSecret,
    // finishSecret) only after the key itself authenticated.
    for l in &locations {
        if let SecretLocation::Secretsmanager { secret_id } = l {
            actions.push((
                Action::PromoteSecretVersion {
                    user: user.clone(),
                    replaces: old.clone(),
                    secret_id: secret_id.clone(),
                },
                "rotate: the pending version is tested, then becomes AWSCURRENT".to_owned(),
            ));
        }
    }
    actions.push((
        Action::DeactivateAccessKey {
            account,
            user: user.clone(),
            key_id: old.clone(),
        },
        "rotate: the old key stops (deleted after the grace period)".to_owned(),
    ));
    let steps = actions
        .into_iter()
        .enumerate()
        .map(|(i, (action, why))| Step {
            n: i + 1,
            target: action.target(),
            why,
            precondition: action.precondition(),
            command: action.commands(),
            undo: action.undo_commands(),
            terraform: None,
            action,
            result: None,
            undo_result: None,
        })
        .collect();
    let mut notes = vec![format!(
        "{} days after this plan runs, `keyward lifecycle run --execute` deletes the old key if it is still Inactive and nothing used it (by hand: aws iam delete-access-key --user-name {} --access-key-id {})",
        req.grace_days,
        q(&user),
        q(&old),
    )];
    if locations.is_empty() {
        notes.push(format!(
            "key {old} was found in no connected secret store: whatever uses it will stop working when it is deactivated (declare locations with --also)"
        ));
    }
    for l in &locations {
        notes.push(format!("the key lives in {l}"));
    }
    notes.push(
        "the new secret access key is held in this process's memory only: never in the plan, its results, the evidence or the audit log".into(),
    );
    let identity = match req.account {
        Some(a) => format!("arn:aws:iam::{a}:user/{user}"),
        None => format!("user/{user}"),
    };
    let seed = format!("rotate\n{identity}\n{old}\n{}\n{}", req.now, req.actor);
    Plan {
        id: format!("rp-{}", &blake3::hash(seed.as_bytes()).to_hex()[..16]),
        created_at: req.now,
        created_by: req.actor.to_owned(),
        identity,
        identity_kind: "iam_user".into(),
        identity_name: user,
        finding: None,
        since: None,
        status: PlanStatus::Planned,
        workloads: Vec::new(),
        notes,
        steps,
        evidence: None,
        grace_days: Some(i64::from(req.grace_days)),
    }
}

/// Field and variable names that hold a secret access key (compared lowercased, `-` as `_`).
const SECRET_NAMES: [&str; 4] = [
    "aws_secret_access_key",
    "secret_access_key",
    "secretaccesskey",
    "aws_secret_key",
];

fn is_secret_name(name: &str) -> bool {
    let n = name
        .trim()
        .trim_matches('"')
        .to_ascii_lowercase()
        .replace('-', "_");
    let n = n.strip_prefix("export ").unwrap_or(&n).trim();
    SECRET_NAMES.contains(&n)
}

/// The secret access key written next to `key_id` in a document: a JSON object's field, or
/// a `NAME=VALUE` / `NAME = VALUE` / `NAME: VALUE` line (env files, INI credentials, YAML),
/// whose name is a secret-key name. `None` when the document does not hold `key_id`.
pub fn old_secret_in(doc: &str, key_id: &str) -> Option<String> {
    if !doc.contains(key_id) {
        return None;
    }
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(doc) {
        return m.iter().find_map(|(k, v)| {
            v.as_str()
                .filter(|s| is_secret_name(k) && !s.is_empty())
                .map(str::to_owned)
        });
    }
    doc.lines().find_map(|line| {
        let (name, value) = line.split_once('=').or_else(|| line.split_once(':'))?;
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        (is_secret_name(name) && !value.is_empty()).then(|| value.to_owned())
    })
}

/// The secret access key of `key_id` in a location's values (a secret's string, or a
/// Kubernetes Secret's data entries): next to the id in the same value, or in a sibling
/// entry named like a secret key. `None` when no value holds `key_id`.
pub fn secret_next_to(values: &[(String, String)], key_id: &str) -> Option<String> {
    if !values.iter().any(|(_, v)| v.contains(key_id)) {
        return None;
    }
    values
        .iter()
        .find_map(|(_, v)| old_secret_in(v, key_id))
        .or_else(|| {
            values
                .iter()
                .find(|(k, v)| is_secret_name(k) && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_owned())
        })
}

/// The access key ids (`AKIA…` / `ASIA…`: 20 upper-case letters or digits, whole words) a
/// text holds, in order of appearance, each once.
pub fn key_ids_in(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
        let id = word.len() == 20
            && (word.starts_with("AKIA") || word.starts_with("ASIA"))
            && word
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if id && !out.iter().any(|x| x == word) {
            out.push(word.to_owned());
        }
    }
    out
}

/// The access key ids a secret's entries hold, sorted, each once.
pub fn key_ids_of(entries: &[(String, String)]) -> Vec<String> {
    let mut ids: Vec<String> = entries.iter().flat_map(|(_, v)| key_ids_in(v)).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Why a value could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("does not hold key {0}")]
    NoKey(String),
    #[error("holds key {0} but no secret access key next to it")]
    NoSecret(String),
}

/// The values of one location (a secret's string, or a Kubernetes Secret's data entries)
/// with the old key id and the old secret replaced by the new ones everywhere, the rest of
/// each value byte for byte as it was. The old secret is the one found next to the old id
/// (in the same value, or in a sibling entry named like a secret key).
pub fn rewrite(
    values: &[(String, String)],
    old_id: &str,
    new_id: &str,
    new_secret: &str,
) -> Result<Vec<(String, String)>, RewriteError> {
    if !values.iter().any(|(_, v)| v.contains(old_id)) {
        return Err(RewriteError::NoKey(old_id.to_owned()));
    }
    let old_secret =
        secret_next_to(values, old_id).ok_or_else(|| RewriteError::NoSecret(old_id.to_owned()))?;
    Ok(values
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.replace(old_id, new_id).replace(&old_secret, new_secret),
            )
        })
        .collect())
}

/// The new keys, between the step that creates one and the steps that write and verify it,
/// in this process's memory only (see the module doc); and a Kubernetes Secret's data before
/// it was rewritten, for an undo in the same process.
pub mod handoff {
    use std::collections::{BTreeMap, HashMap};
    use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

    /// A secret access key: printed as `‹redacted›`, never serialized.
    #[derive(Clone, PartialEq, Eq)]
    pub struct Secret(String);

    impl Secret {
        pub fn new(s: String) -> Self {
            Secret(s)
        }
        pub fn expose(&self) -> &str {
            &self.0
        }
    }

    impl std::fmt::Debug for Secret {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("‹redacted›")
        }
    }

    /// A key created by a rotation.
    #[derive(Debug, Clone)]
    pub struct NewKey {
        pub id: String,
        pub secret: Secret,
    }

    type Data = BTreeMap<String, Vec<u8>>;

    /// A Vault/OpenBao token issued by a plan: its accessor (public) and the token.
    #[derive(Debug, Clone)]
    pub struct NewToken {
        pub accessor: String,
        pub token: Secret,
    }

    #[derive(Default)]
    struct Held {
        /// `destination#key` → the token issued for it.
        tokens: HashMap<String, NewToken>,
        /// `(user, old key id)` → the key that replaces it.
        keys: HashMap<(String, String), NewKey>,
        /// `(namespace/name, new key id)` → the Secret's data before the write.
        previous: HashMap<(String, String), Data>,
    }

    fn held() -> MutexGuard<'static, Held> {
        static HELD: OnceLock<Mutex<Held>> = OnceLock::new();
        HELD.get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn put(user: &str, old: &str, key: NewKey) {
        held().keys.insert((user.to_owned(), old.to_owned()), key);
    }

    pub fn get(user: &str, old: &str) -> Option<NewKey> {
        held().keys.get(&(user.to_owned(), old.to_owned())).cloned()
    }

    pub fn forget(user: &str, old: &str) {
        held().keys.remove(&(user.to_owned(), old.to_owned()));
    }

    /// The token issued for `dest` (a destination and its entry, `k8s:ns/name#key`).
    pub fn put_token(dest: &str, token: NewToken) {
        held().tokens.insert(dest.to_owned(), token);
    }

    pub fn get_token(dest: &str) -> Option<NewToken> {
        held().tokens.get(dest).cloned()
    }

    pub fn forget_token(dest: &str) {
        held().tokens.remove(dest);
    }

    pub fn keep_previous(secret: &str, new_id: &str, data: Data) {
        held()
            .previous
            .insert((secret.to_owned(), new_id.to_owned()), data);
    }

    pub fn take_previous(secret: &str, new_id: &str) -> Option<Data> {
        held()
            .previous
            .remove(&(secret.to_owned(), new_id.to_owned()))
    }
}

/// The equivalent commands of a write (the secret is never in them).
pub(crate) fn commands(action: &Action, location: &SecretLocation) -> Vec<String> {
    let Action::UpdateSecretValue { replaces, .. } = action else {
        return Vec::new();
    };
    match location {
        SecretLocation::Secretsmanager { secret_id } => vec![
            format!(
                "aws secretsmanager get-secret-value --secret-id {} --version-stage AWSCURRENT --query SecretString --output text > value",
                q(secret_id)
            ),
            format!("# in value: replace {replaces} and its secret access key with the new key"),
            format!(
                "aws secretsmanager put-secret-value --secret-id {} --secret-string file://value --version-stages AWSPENDING && rm value  # promoted to AWSCURRENT once tested",
                q(secret_id)
            ),
        ],
        SecretLocation::Kubernetes { namespace, name } => vec![format!(
            "kubectl -n {} edit secret {}  # replace {replaces} and its secret access key (base64) with the new key",
            q(namespace),
            q(name)
        )],
        SecretLocation::Vault { mount, path } => vec![
            format!(
                "vault kv get -mount={} -format=json {} | jq .data > value.json  # note .data.metadata.version: VERSION",
                q(mount),
                q(path)
            ),
            format!(
                "# in value.json's .data: replace {replaces} and its secret access key with the new key"
            ),
            format!(
                "jq .data value.json | vault kv put -mount={} -cas=VERSION {} - && rm value.json",
                q(mount),
                q(path)
            ),
        ],
    }
}

/// The equivalent undo commands of a write.
pub(crate) fn undo_commands(action: &Action, location: &SecretLocation) -> Vec<String> {
    let Action::UpdateSecretValue { replaces, .. } = action else {
        return Vec::new();
    };
    match location {
        SecretLocation::Secretsmanager { secret_id } => vec![format!(
            "aws secretsmanager update-secret-version-stage --secret-id {} --version-stage AWSPENDING --remove-from-version-id WRITTEN  # the version id is in the step's result",
            q(secret_id)
        )],
        SecretLocation::Kubernetes { namespace, name } => vec![format!(
            "kubectl -n {} edit secret {}  # put {replaces} and its secret back: Keyward keeps no copy outside the rotating process's memory",
            q(namespace),
            q(name)
        )],
        SecretLocation::Vault { mount, path } => vec![format!(
            "vault kv rollback -mount={} -version=PREVIOUS {}  # PREVIOUS is in the step's result: Vault keeps the version, Keyward no copy",
            q(mount),
            q(path)
        )],
    }
}

/// The message of a write or verify step run without the new key in memory.
pub fn lost_secret(user: &str, old: &str) -> String {
    format!(
        "the new key replacing {old} of {user} is not in this process's memory (it is never stored): undo this plan (`keyward respond undo PLAN`, which deletes the unused new key) and rotate again"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
    }

    #[test]
    fn a_json_secret_keeps_its_other_fields() {
        let doc = r#"{"aws_access_key_id": "AKIAOLD", "aws_secret_access_key": "oldsecret/x+y", "region": "eu-west-1"}"#;
        let out = rewrite(&pairs(&[("", doc)]), "AKIAOLD", "AKIANEW", "newsecret").unwrap();
        assert_eq!(
            out[0].1,
            r#"{"aws_access_key_id": "AKIANEW", "aws_secret_access_key": "newsecret", "region": "eu-west-1"}"#
        );
    }

    #[test]
    fn env_lines_and_kubernetes_entries_are_rewritten() {
        let env = "REGION=x\nexport AWS_ACCESS_KEY_ID=AKIAOLD\nAWS_SECRET_ACCESS_KEY='s3cr3t'\n";
        let out = rewrite(&pairs(&[("", env)]), "AKIAOLD", "AKIANEW", "n3w").unwrap();
        assert_eq!(
            out[0].1,
            "REGION=x\nexport AWS_ACCESS_KEY_ID=AKIANEW\nAWS_SECRET_ACCESS_KEY='n3w'\n"
        );
        let data = pairs(&[
            ("AWS_ACCESS_KEY_ID", "AKIAOLD"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("OTHER", "kept"),
        ]);
        let out = rewrite(&data, "AKIAOLD", "AKIANEW", "n3w").unwrap();
        assert_eq!(
            out,
            pairs(&[
                ("AWS_ACCESS_KEY_ID", "AKIANEW"),
                ("AWS_SECRET_ACCESS_KEY", "n3w"),
                ("OTHER", "kept"),
            ])
        );
    }

    #[test]
    fn a_key_without_its_secret_is_refused() {
        let out = rewrite(&pairs(&[("id", "AKIAOLD")]), "AKIAOLD", "AKIANEW", "n");
        assert_eq!(out, Err(RewriteError::NoSecret("AKIAOLD".into())));
        let out = rewrite(&pairs(&[("id", "AKIAOTHER")]), "AKIAOLD", "AKIANEW", "n");
        assert_eq!(out, Err(RewriteError::NoKey("AKIAOLD".into())));
    }

    #[test]
    fn key_ids_are_found_whole() {
        let doc = r#"{"id":"AKIAIOSFODNN7EXAMPLE","old":"XAKIAIOSFODNN7EXAMPLE","short":"AKIA123","again":"AKIAIOSFODNN7EXAMPLE","b":"AKIAZZZZZZZZZZZZZZZZ"}"#;
        assert_eq!(
            key_ids_in(doc),
            ["AKIAIOSFODNN7EXAMPLE", "AKIAZZZZZZZZZZZZZZZZ"]
        );
        assert!(key_ids_in("AKIAIOSFODNN7EXAMPLEX").is_empty());
        assert!(key_ids_in("ünïcödé AKIA").is_empty());
    }

    #[test]
    fn key_ids_are_found_in_any_text() {
        let doc = r#"{"id":"AKIAABCDEFGHIJKLMNOP","x":"AKIAABCDEFGHIJKLMNOPQ","y":"ASIA0123456789ABCDEF"}"#;
        assert_eq!(
            key_ids_in(doc),
            ["AKIAABCDEFGHIJKLMNOP", "ASIA0123456789ABCDEF"]
        );
        assert!(key_ids_in("AKIA short, A, akiaabcdefghijklmnop").is_empty());
        let env = "AWS_ACCESS_KEY_ID=AKIAABCDEFGHIJKLMNOP\nAWS_SECRET_ACCESS_KEY=s3\n";
        assert_eq!(
            secret_next_to(&pairs(&[("", env)]), "AKIAABCDEFGHIJKLMNOP").as_deref(),
            Some("s3")
        );
    }

    #[test]
    fn locations_parse() {
        assert_eq!(
            SecretLocation::parse("k8s:prod/aws-creds"),
            Ok(SecretLocation::Kubernetes {
                namespace: "prod".into(),
                name: "aws-creds".into()
            })
        );
        assert!(SecretLocation::parse("secretsmanager:").is_err());
        assert!(SecretLocation::parse("k8s:prod").is_err());
        assert!(SecretLocation::parse("vault:x").is_err());
        assert!(SecretLocation::parse("vault:secret/").is_err());
        assert!(SecretLocation::parse("vault:secret/a/../b").is_err());
        let v = SecretLocation::parse("vault:secret/app/creds").unwrap();
        assert_eq!(
            v,
            SecretLocation::Vault {
                mount: "secret".into(),
                path: "app/creds".into()
            }
        );
        assert_eq!(v.to_string(), "vault:secret/app/creds");
        assert_eq!(v.platform(), "vault");
    }

    #[test]
    fn the_plan_creates_writes_verifies_then_deactivates() {
        let locations = [
            SecretLocation::Kubernetes {
                namespace: "ns".into(),
                name: "creds".into(),
            },
            SecretLocation::Secretsmanager {
                secret_id: "app/creds".into(),
            },
        ];
        let p = plan(&Request {
            account: Some("123456789012"),
            user: "app",
            old_key_id: "AKIAOLD",
            locations: &locations,
            grace_days: 7,
            now: 0,
            actor: "cli:test",
        });
        let names: Vec<&str> = p.steps.iter().map(|s| s.action.name()).collect();
        assert_eq!(
            names,
            [
                "create_access_key",
                "update_secret_value",
                "update_secret_value",
                "verify_access_key",
                "promote_secret_version",
                "deactivate_access_key",
            ]
        );
        assert_eq!(p.grace_days, Some(7), "the old key's deletion waits 7 days");
        assert!(
            p.notes[0].contains("7 days after this plan runs"),
            "{}",
            p.notes[0]
        );
        // Stored and read back: the form the store keeps.
        let doc = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Plan>(&doc).unwrap(), p);
    }
}
