//! `keyward check`: the pull-request check. Terraform (`.tf`, `.tf.json`, `terraform show
//! -json`), IAM policy documents and Kubernetes manifests in; problems out, each with a
//! stable rule id, a severity, a message and where it is (file, line, column when known).
//!
//! Pure: the caller reads the files and prints the [`Report`] (text, [`json`], [`sarif`]).
//! Parsing is `keyward-normalize`'s (Terraform resources, Kubernetes objects); policy and
//! RBAC semantics are `keyward-graph`'s. A problem's fingerprint is its rule, its file and a
//! stable key of the offending construct (a resource address, a statement's `Sid`, an
//! object's kind and name) — never its line, so moving code does not make it new.

mod kubernetes;
mod locate;
mod policy;
mod terraform;

pub mod json;
pub mod sarif;

use std::collections::BTreeSet;

use serde::Serialize;

/// One file handed to the check: its path as reported (relative to the repository root,
/// `/`-separated) and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub path: &'a str,
    pub bytes: &'a [u8],
}

/// What the check allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// AWS accounts a trust policy may name (`--allow-account`).
    pub allow_accounts: Vec<String>,
    /// Tag keys every IAM role and user needs, compared case-insensitively
    /// (`--require-tag`; default `owner` and `team`).
    pub require_tags: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            allow_accounts: Vec::new(),
            require_tags: vec!["owner".into(), "team".into()],
        }
    }
}

/// How bad a problem is: SARIF's `error`, `warning`, `note`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    High,
    Medium,
    Low,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

/// The check's rules. Ids are stable: a rule is never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    WildcardAction,
    WildcardResourceWrite,
    PassRoleAnywhere,
    TrustsAnyone,
    TrustsUnknownAccount,
    GithubOidcWithoutSub,
    GithubOidcWildcardSub,
    AccessKey,
    MissingTags,
    ClusterAdminBinding,
    WildcardRbacRole,
    TokenAutomount,
}

impl Rule {
    pub const ALL: [Rule; 12] = [
        Rule::WildcardAction,
        Rule::WildcardResourceWrite,
        Rule::PassRoleAnywhere,
        Rule::TrustsAnyone,
        Rule::TrustsUnknownAccount,
        Rule::GithubOidcWithoutSub,
        Rule::GithubOidcWildcardSub,
        Rule::AccessKey,
        Rule::MissingTags,
        Rule::ClusterAdminBinding,
        Rule::WildcardRbacRole,
        Rule::TokenAutomount,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::WildcardAction => "KW-CHECK-001",
            Rule::WildcardResourceWrite => "KW-CHECK-002",
            Rule::PassRoleAnywhere => "KW-CHECK-003",
            Rule::TrustsAnyone => "KW-CHECK-004",
            Rule::TrustsUnknownAccount => "KW-CHECK-005",
            Rule::GithubOidcWithoutSub => "KW-CHECK-006",
            Rule::GithubOidcWildcardSub => "KW-CHECK-007",
            Rule::AccessKey => "KW-CHECK-008",
            Rule::MissingTags => "KW-CHECK-009",
            Rule::ClusterAdminBinding => "KW-CHECK-010",
            Rule::WildcardRbacRole => "KW-CHECK-011",
            Rule::TokenAutomount => "KW-CHECK-012",
        }
    }

    /// A short name (SARIF's `shortDescription`).
    pub fn title(self) -> &'static str {
        match self {
            Rule::WildcardAction => "IAM policy allows wildcard actions",
            Rule::WildcardResourceWrite => "IAM policy allows write actions on every resource",
            Rule::PassRoleAnywhere => "IAM policy allows iam:PassRole on every role",
            Rule::TrustsAnyone => "Trust policy trusts any principal",
            Rule::TrustsUnknownAccount => "Trust policy trusts an account not on the allow-list",
            Rule::GithubOidcWithoutSub => "GitHub Actions OIDC trust without a `sub` condition",
            Rule::GithubOidcWildcardSub => "GitHub Actions OIDC trust with a wildcard `sub`",
            Rule::AccessKey => "Long-lived IAM access key",
            Rule::MissingTags => "IAM role or user without owner tags",
            Rule::ClusterAdminBinding => "Binding to cluster-admin",
            Rule::WildcardRbacRole => "RBAC role with wildcard verbs, resources or API groups",
            Rule::TokenAutomount => "Service-account token mounted but no role bound",
        }
    }

    /// What it means and what to do (SARIF's `help`).
    pub fn help(self) -> &'static str {
        match self {
            Rule::WildcardAction => {
                "An `Allow` of `*` or `service:*` (or with `NotAction`) grants every action, \
                 present and future, of every (or one) service. List the actions the \
                 workload calls."
            }
            Rule::WildcardResourceWrite => {
                "Write or administrative actions (Create*, Delete*, Put*, Update*, Attach*, …) \
                 allowed on `Resource: \"*\"` reach every resource of the account. Name the \
                 resources' ARNs."
            }
            Rule::PassRoleAnywhere => {
                "`iam:PassRole` on `*` lets the holder hand any role — an administrator's \
                 included — to a service it controls: a privilege escalation. Name the roles."
            }
            Rule::TrustsAnyone => {
                "A trust (or resource) policy whose principal is `*` lets any AWS principal, \
                 in any account, assume the role unless a condition narrows it. Name the \
                 principals."
            }
            Rule::TrustsUnknownAccount => {
                "The trust policy names an AWS account that is not on the allow-list \
                 (`--allow-account`). Approve the account or remove it."
            }
            Rule::GithubOidcWithoutSub => {
                "A role trusting GitHub Actions' OIDC provider without a condition on \
                 `token.actions.githubusercontent.com:sub` can be assumed by a workflow of \
                 any repository on GitHub. Add a `sub` condition naming the repository."
            }
            Rule::GithubOidcWildcardSub => {
                "A `sub` condition of `*`, `repo:*` or `repo:org/*` admits workflows of every \
                 repository (of the organization). Name one repository (`repo:org/app:*`), \
                 better its branch or environment."
            }
            Rule::AccessKey => {
                "`aws_iam_access_key` makes a long-lived secret (and puts it in the Terraform \
                 state). Use a role with federated or workload identity instead."
            }
            Rule::MissingTags => {
                "IAM roles and users need tags naming who owns them (by default `owner` and \
                 `team`, case-insensitive; `--require-tag`), so a finding has someone to go \
                 to. Tags set by an expression are not judged."
            }
            Rule::ClusterAdminBinding => {
                "A RoleBinding or ClusterRoleBinding to the `cluster-admin` ClusterRole gives \
                 its subjects every permission (in the namespace, or in the whole cluster). \
                 Bind a role with the permissions needed."
            }
            Rule::WildcardRbacRole => {
                "A Role or ClusterRole rule with `*` in verbs, resources or apiGroups grants \
                 what exists today and whatever is added later. List them."
            }
            Rule::TokenAutomount => {
                "A ServiceAccount, or a pod (or workload) running as one, that mounts its \
                 API token although no binding in the checked manifests grants that account \
                 a role: the token is not needed. Set `automountServiceAccountToken: false`."
            }
        }
    }

    /// The severity most of its problems have (SARIF's `defaultConfiguration.level`).
    pub fn severity(self) -> Severity {
        match self {
            Rule::WildcardAction
            | Rule::PassRoleAnywhere
            | Rule::TrustsAnyone
            | Rule::TrustsUnknownAccount
            | Rule::GithubOidcWithoutSub
            | Rule::GithubOidcWildcardSub
            | Rule::ClusterAdminBinding => Severity::High,
            Rule::WildcardResourceWrite | Rule::AccessKey | Rule::WildcardRbacRole => {
                Severity::Medium
            }
            Rule::MissingTags | Rule::TokenAutomount => Severity::Low,
        }
    }

    /// The rule with this id, if there is one.
    pub fn by_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub rule: Rule,
    pub severity: Severity,
    pub message: String,
    pub file: String,
    /// 1-based.
    pub line: u64,
    /// 1-based, in characters, when known.
    pub column: Option<u64>,
    /// What is offending, stably: `aws_iam_role.ci/assume_role_policy/statement:GitHub`.
    pub key: String,
    /// In the baseline (`--baseline`): known, not failing.
    pub baselined: bool,
}

impl Problem {
    /// Rule, file and key, hashed: what `--baseline` and GitHub code scanning match on.
    pub fn fingerprint(&self) -> String {
        let mut h = blake3::Hasher::new();
        for part in [self.rule.id(), &self.file, &self.key] {
            h.update(part.as_bytes());
            h.update(b"\0");
        }
        h.finalize().to_hex().chars().take(32).collect()
    }
}

/// A file the check could not read: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// What kind of input a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Terraform,
    Policy,
    Kubernetes,
}

/// What a check run found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Files checked (skipped ones excluded).
    pub files: usize,
    pub problems: Vec<Problem>,
    pub errors: Vec<InputError>,
    /// Files left out, with why (not an input kind the check reads, a Helm template).
    pub skipped: Vec<(String, String)>,
}

impl Report {
    /// Marks the problems whose fingerprints `known` holds (from a previous report).
    pub fn apply_baseline(&mut self, known: &BTreeSet<String>) {
        for p in &mut self.problems {
            p.baselined = known.contains(&p.fingerprint());
        }
    }

    /// Problems that fail the check: those not in the baseline.
    pub fn failing(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| !p.baselined)
    }
}

/// The input kind of a file, from its name and (for `.json`) its first bytes; `None` when
/// the check does not read it.
pub fn kind_of(path: &str, bytes: &[u8]) -> Option<Kind> {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".tf") || lower.ends_with(".tf.json") {
        return Some(Kind::Terraform);
    }
    if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        return Some(Kind::Kubernetes);
    }
    if !lower.ends_with(".json") {
        return None;
    }
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    if [
        &b"\"format_version\""[..],
        b"\"terraform_version\"",
        b"\"planned_values\"",
    ]
    .iter()
    .any(|n| has(n))
    {
        Some(Kind::Terraform)
    } else if has(b"\"apiVersion\"") {
        Some(Kind::Kubernetes)
    } else {
        // Policies, and JSON the check does not know: told apart once parsed.
        Some(Kind::Policy)
    }
}

/// Checks every input: each by its [`kind_of`] (others are skipped). Kubernetes objects are
/// judged together, so a binding in one file counts for a service account in another.
pub fn check(inputs: &[Input<'_>], cfg: &Config) -> Report {
    let mut report = Report::default();
    let mut manifests = Vec::new();
    for input in inputs {
        match kind_of(input.path, input.bytes) {
            Some(kind) => check_one(kind, *input, cfg, &mut report, &mut manifests),
            None => report
                .skipped
                .push((input.path.to_owned(), "not an input kind".into())),
        }
    }
    kubernetes::judge(&manifests, &mut report.problems);
    report.problems.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.rule, &a.key)
            .cmp(&(&b.file, b.line, b.column, b.rule, &b.key))
    });
    report
}

/// Checks one input as the given kind (what the fuzz target calls).
pub fn check_as(kind: Kind, input: Input<'_>, cfg: &Config) -> Report {
    let mut report = Report::default();
    let mut manifests = Vec::new();
    check_one(kind, input, cfg, &mut report, &mut manifests);
    kubernetes::judge(&manifests, &mut report.problems);
    report
}

fn check_one<'a>(
    kind: Kind,
    input: Input<'a>,
    cfg: &Config,
    report: &mut Report,
    manifests: &mut Vec<kubernetes::Manifest<'a>>,
) {
    let counted = match kind {
        Kind::Terraform => {
            terraform::check(input, cfg, report);
            true
        }
        Kind::Policy => policy::check_file(input, cfg, report),
        Kind::Kubernetes => match kubernetes::read(input, report) {
            Some(m) => {
                manifests.push(m);
                true
            }
            None => false,
        },
    };
    if counted {
        report.files += 1;
    }
}

#[cfg(test)]
mod tests;
