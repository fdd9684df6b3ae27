//! IAM policy documents: identity policies (wildcard actions, writes on every resource,
//! `iam:PassRole` anywhere) and trust policies (anyone, accounts off the allow-list, GitHub
//! Actions OIDC without a narrow `sub`). Reads standalone `.json` documents, and the
//! documents Terraform resources hold (see `terraform.rs`).
//!
//! Statements are read with `keyward_graph::iam::Policy` (one statement at a time, so each
//! problem names its statement); action patterns match as IAM matches them
//! (`action_glob`).

use keyward_graph::iam::policy::{AllowPattern, TrustedPrincipals, action_glob};
use keyward_graph::iam::{Policy, PolicyError};
use serde_json::{Value, json};

use super::locate::{Pos, Text};
use super::{Config, Input, InputError, Problem, Report, Rule, Severity};

/// The OIDC provider of GitHub Actions, and the claim a trust must pin.
const GITHUB_OIDC: &str = "token.actions.githubusercontent.com";
const GITHUB_SUB: &str = "token.actions.githubusercontent.com:sub";

/// Verbs that change or administer what they act on (action names are `VerbNoun`).
const WRITE_VERBS: [&str; 44] = [
    "Add",
    "Admin",
    "Associate",
    "Attach",
    "Authorize",
    "Cancel",
    "Change",
    "Copy",
    "Create",
    "Deactivate",
    "Delete",
    "Deregister",
    "Detach",
    "Disable",
    "Disassociate",
    "Enable",
    "Execute",
    "Grant",
    "Import",
    "Invoke",
    "Modify",
    "Pass",
    "Publish",
    "Put",
    "Reboot",
    "Register",
    "Release",
    "Remove",
    "Replace",
    "Reset",
    "Restore",
    "Revoke",
    "Rotate",
    "Run",
    "Send",
    "Set",
    "Start",
    "Stop",
    "Tag",
    "Terminate",
    "Untag",
    "Update",
    "Upload",
    "Write",
];

/// Where a policy document is: its file, its text, the position its search starts from and
/// the line it ends before, and the key prefix of its problems.
pub(crate) struct Site<'t, 'a> {
    pub file: &'t str,
    pub text: &'t Text<'a>,
    pub from: u64,
    pub until: Option<u64>,
    /// Needles that lead from `from` to the document (`["assume_role_policy"]`).
    pub lead: Vec<String>,
    /// `aws_iam_role.ci/assume_role_policy`, or empty for a standalone document.
    pub key: String,
}

/// A standalone `.json` file: a policy document is checked; other JSON is skipped (returns
/// whether the file was checked).
pub(crate) fn check_file(input: Input<'_>, cfg: &Config, report: &mut Report) -> bool {
    let doc = match serde_json::from_slice::<Value>(input.bytes) {
        Ok(v) => v,
        Err(e) => {
            report.errors.push(InputError {
                file: input.path.to_owned(),
                line: (e.line() as u64).max(1),
                reason: format!("invalid JSON: {e}"),
            });
            return true;
        }
    };
    if doc.get("Statement").is_none() {
        report.skipped.push((
            input.path.to_owned(),
            "JSON that is not a policy document".into(),
        ));
        return false;
    }
    let text = Text::new(input.bytes);
    let site = Site {
        file: input.path,
        text: &text,
        from: 1,
        until: None,
        lead: Vec::new(),
        key: String::new(),
    };
    if let Err(e) = check_document(&doc, &site, cfg, &mut report.problems) {
        report.errors.push(e);
    }
    true
}

/// One statement's name in keys: its `Sid`, else its index.
fn statement_name(st: &Value, index: usize) -> String {
    match st
        .get("Sid")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(sid) => format!("statement:{sid}"),
        None => format!("statement#{index}"),
    }
}

/// Checks a policy document (identity or trust; each statement by what it has). A
/// document `Policy` cannot read is an error naming its line.
pub(crate) fn check_document(
    doc: &Value,
    site: &Site<'_, '_>,
    cfg: &Config,
    out: &mut Vec<Problem>,
) -> Result<(), InputError> {
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    for (i, st) in statements.into_iter().enumerate() {
        let mut needles: Vec<&str> = site.lead.iter().map(String::as_str).collect();
        needles.push("Statement");
        needles.extend(std::iter::repeat_n("Effect", i + 1));
        let policy = Policy::parse(&json!({ "Statement": st })).map_err(|e| InputError {
            file: site.file.to_owned(),
            line: site.text.find(site.from, site.until, &needles).line,
            reason: match e {
                PolicyError::Statement { problem, .. } => {
                    format!("policy statement {i}: {problem}")
                }
                other => format!("policy statement {i}: {other}"),
            },
        })?;
        let at = Statement {
            site,
            needles,
            key: format!("{}{}", prefix(&site.key), statement_name(st, i)),
        };
        if st.get("Effect").and_then(Value::as_str) == Some("Allow")
            && st.get("NotAction").is_some()
        {
            out.push(
                at.problem(
                    Rule::WildcardAction,
                    Severity::High,
                    "not-action",
                    &["NotAction"],
                    "`Allow` with `NotAction`: every action but those listed, present and future"
                        .into(),
                ),
            );
        }
        for p in policy.allow_patterns() {
            identity(&p, &at, out);
        }
        for t in policy.trusted() {
            trust(&t, &at, cfg, out);
        }
    }
    Ok(())
}

fn prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}/")
    }
}

/// One statement of a document at its site: how to find it, and its key.
struct Statement<'s, 't, 'a> {
    site: &'s Site<'t, 'a>,
    needles: Vec<&'s str>,
    key: String,
}

impl Statement<'_, '_, '_> {
    /// A problem at the statement, pointed at `then` found inside it.
    fn problem(
        &self,
        rule: Rule,
        severity: Severity,
        detail: &str,
        then: &[&str],
        message: String,
    ) -> Problem {
        let mut needles = self.needles.clone();
        needles.extend_from_slice(then);
        let Pos { line, column } = self
            .site
            .text
            .find(self.site.from, self.site.until, &needles);
        Problem {
            rule,
            severity,
            message,
            file: self.site.file.to_owned(),
            line,
            column,
            key: format!("{}/{detail}", self.key),
            baselined: false,
        }
    }
}

/// `*`, `**`, `*:*`: every action (or resource).
fn everything(p: &str) -> bool {
    p == "*:*" || (!p.is_empty() && p.bytes().all(|b| b == b'*'))
}

/// `service:*`: every action of one service.
fn whole_service(p: &str) -> Option<&str> {
    p.strip_suffix(":*")
        .filter(|s| !s.is_empty() && !s.contains('*'))
}

/// Whether an action pattern may name a write or administrative action: its verb starts
/// with a write verb, or its literal start could begin one (`*Object`, `P*`).
fn is_write(pattern: &str) -> bool {
    let verb = pattern.split_once(':').map_or(pattern, |(_, v)| v);
    let literal = verb.split(['*', '?']).next().unwrap_or_default();
    WRITE_VERBS.iter().any(|w| {
        let (w, v) = (w.to_ascii_lowercase(), verb.to_ascii_lowercase());
        v.starts_with(&w)
            || (literal.len() < verb.len() && w.starts_with(&literal.to_ascii_lowercase()))
    })
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

fn identity(p: &AllowPattern<'_>, at: &Statement<'_, '_, '_>, out: &mut Vec<Problem>) {
    // 001: `*` and `service:*`.
    let mut wild = Vec::new();
    for a in p.actions {
        let severity = if everything(a) {
            Severity::High
        } else if let Some(service) = whole_service(a) {
            if matches!(
                service.to_ascii_lowercase().as_str(),
                "iam" | "sts" | "organizations"
            ) {
                Severity::High
            } else {
                Severity::Medium
            }
        } else {
            continue;
        };
        wild.push(a.as_str());
        out.push(at.problem(
            Rule::WildcardAction,
            severity,
            &format!("action:{a}"),
            &[&quoted(a)],
            format!(
                "`Allow` of `{a}`: every action{}",
                if everything(a) { "" } else { " of the service" }
            ),
        ));
    }
    let Some(resources) = p.resources else {
        return;
    };
    if !resources.iter().any(|r| everything(r)) {
        return;
    }
    let rest: Vec<&str> = p
        .actions
        .iter()
        .map(String::as_str)
        .filter(|a| !wild.contains(a))
        .collect();
    // 003: `iam:PassRole` on `*`.
    let pass: Vec<&str> = rest
        .iter()
        .copied()
        .filter(|a| action_glob(a, "iam:PassRole"))
        .collect();
    if let Some(first) = pass.first() {
        out.push(at.problem(
            Rule::PassRoleAnywhere,
            Severity::High,
            "iam:PassRole",
            &[&quoted(first)],
            format!("`{first}` on `Resource: \"*\"`: any role can be passed to a service"),
        ));
    }
    // 002: write actions on `*`.
    let writes: Vec<&str> = rest
        .into_iter()
        .filter(|a| !pass.contains(a) && is_write(a))
        .collect();
    if !writes.is_empty() {
        out.push(at.problem(
            Rule::WildcardResourceWrite,
            Severity::Medium,
            "write-on-*",
            &["Resource", "\"*\""],
            format!(
                "write actions on `Resource: \"*\"`: {}",
                writes.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
}

/// The account a trusted AWS principal names: a 12-digit id or an ARN's account field.
/// Expressions (Terraform references) name none.
fn account_of(principal: &str) -> Option<&str> {
    let id = if principal.starts_with("arn:") {
        principal.split(':').nth(4)?
    } else {
        principal
    };
    (id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// A `sub` value that admits more than one repository: `*`, `repo:*`, `repo:org/*`,
/// `repo:org/app-*:…`.
fn wide_sub(v: &str) -> bool {
    let v = v.trim();
    if v.starts_with('*') {
        return true;
    }
    let Some(rest) = v.strip_prefix("repo:") else {
        return false;
    };
    let repo = rest.split(':').next().unwrap_or_default();
    match repo.split_once('/') {
        Some((owner, name)) => owner.contains('*') || name.contains('*') || name.is_empty(),
        None => true,
    }
}

fn trust(
    t: &TrustedPrincipals<'_>,
    at: &Statement<'_, '_, '_>,
    cfg: &Config,
    out: &mut Vec<Problem>,
) {
    if t.any {
        let (severity, how) = if t.conditions.is_empty() {
            (Severity::High, "with no condition".to_owned())
        } else {
            let keys: Vec<&str> = t.conditions.iter().map(|c| c.1).collect();
            (
                Severity::Medium,
                format!("narrowed only by conditions on {}", keys.join(", ")),
            )
        };
        out.push(at.problem(
            Rule::TrustsAnyone,
            severity,
            "principal:*",
            &["Principal", "*"],
            format!("trusts any principal (`*`), {how}"),
        ));
    }
    for aws in t.aws {
        let Some(account) = account_of(aws) else {
            continue;
        };
        if cfg.allow_accounts.iter().any(|a| a == account) {
            continue;
        }
        out.push(at.problem(
            Rule::TrustsUnknownAccount,
            Severity::High,
            &format!("account:{account}"),
            &["Principal", account],
            format!(
                "trusts `{aws}`: account {account} is not on the allow-list (`--allow-account`)"
            ),
        ));
    }
    let github = t.federated.iter().any(|f| f.contains(GITHUB_OIDC))
        || t.conditions.iter().any(|c| c.1.starts_with(GITHUB_OIDC));
    if !github {
        return;
    }
    let subs: Vec<&String> = t
        .conditions
        .iter()
        .filter(|c| c.1.eq_ignore_ascii_case(GITHUB_SUB))
        .flat_map(|c| c.2.iter())
        .collect();
    if subs.is_empty() {
        out.push(
            at.problem(
                Rule::GithubOidcWithoutSub,
                Severity::High,
                "github-oidc",
                &[GITHUB_OIDC],
                "trusts GitHub Actions OIDC with no `token.actions.githubusercontent.com:sub` \
             condition: any repository's workflow can assume it"
                    .into(),
            ),
        );
    }
    for sub in subs.into_iter().filter(|s| wide_sub(s)) {
        out.push(at.problem(
            Rule::GithubOidcWildcardSub,
            Severity::High,
            &format!("github-sub:{sub}"),
            &[GITHUB_SUB, sub],
            format!("trusts GitHub Actions OIDC for `sub` `{sub}`: more than one repository"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_verbs() {
        assert!(is_write("s3:PutObject"));
        assert!(is_write("ec2:*Instances"));
        assert!(is_write("s3:P*"));
        assert!(!is_write("s3:GetObject"));
        assert!(!is_write("s3:List*"));
        assert!(!is_write("s3:Describe*"));
    }

    #[test]
    fn github_subs() {
        for wide in [
            "*",
            "repo:*",
            "repo:org/*",
            "repo:org/*:ref:refs/heads/main",
            "repo:org/app-*:*",
            "repo:org",
        ] {
            assert!(wide_sub(wide), "{wide}");
        }
        for narrow in [
            "repo:org/app:*",
            "repo:org/app:ref:refs/heads/main",
            "repo:org/app:environment:prod",
        ] {
            assert!(!wide_sub(narrow), "{narrow}");
        }
    }

    #[test]
    fn accounts() {
        assert_eq!(account_of("123456789012"), Some("123456789012"));
        assert_eq!(
            account_of("arn:aws:iam::123456789012:root"),
            Some("123456789012")
        );
        assert_eq!(account_of("arn:aws:iam::${var.account}:root"), None);
        assert_eq!(account_of("aws_iam_role.x.arn"), None);
    }
}
