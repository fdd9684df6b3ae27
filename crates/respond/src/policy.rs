//! Automatic response: a policy file maps triggers (rule ids, severity, the risk score's
//! tier) to what happens when a finding fires — `never` (the default), `approve` (a plan
//! is made and waits for an admin to execute it) or `auto` (made and executed at once by
//! `keyward serve` / `keyward watch`).
//!
//! ```yaml
//! policies:
//!   - name: contain-backdoor-keys
//!     when: { rules: [kw-aws-backdoor-access-key, "kw-k8s-*"], severity: high }
//!     execute: auto
//!   - name: risk-auto-remediation
//!     when: { risk_tier: automated_remediation }   # the risk score's R > 3.0 tier
//!     execute: approve
//! ```
//! The first policy whose every given condition holds decides; a finding no policy
//! matches gets no plan.

use serde::Deserialize;

/// What a matching policy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Nothing.
    #[default]
    Never,
    /// A plan is made and stored; a person executes it.
    Approve,
    /// A plan is made and executed as the finding fires.
    Auto,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Never => "never",
            Mode::Approve => "approve",
            Mode::Auto => "auto",
        }
    }
}

/// Conditions; every one given must hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Rule ids, `*` allowed (`kw-k8s-*`); any one of the finding's rules (folded ones
    /// included) may match.
    #[serde(default)]
    pub rules: Vec<String>,
    /// The least severity: info, low, medium, high, critical.
    #[serde(default)]
    pub severity: Option<String>,
    /// The risk score's tier (`alert` or `automated_remediation`): matches the risk
    /// finding (`kw-posture-risk`) of an identity at that tier or above.
    #[serde(default)]
    pub risk_tier: Option<String>,
}

/// One policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub name: String,
    pub when: Trigger,
    #[serde(default)]
    pub execute: Mode,
    /// Contain Kubernetes service accounts the blue-green way.
    #[serde(default)]
    pub blue_green: bool,
}

/// A response policy file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    #[serde(default)]
    pub policies: Vec<Policy>,
}

/// What a policy is matched against: one finding's facts.
pub struct FindingFacts<'a> {
    /// The finding's rule and the rules folded into it.
    pub rules: &'a [&'a str],
    /// `info` … `critical`.
    pub severity: &'a str,
}

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];
const RISK_RULE: &str = "kw-posture-risk";

fn rank(s: &str) -> Option<usize> {
    SEVERITIES.iter().position(|x| x.eq_ignore_ascii_case(s))
}

/// A rule-id glob (`kw-k8s-*`); a pattern that is not a glob matches only itself.
fn glob(pattern: &str, s: &str) -> bool {
    match globset::Glob::new(pattern) {
        Ok(g) => g.compile_matcher().is_match(s),
        Err(_) => pattern == s,
    }
}

impl PolicyFile {
    /// Parses and checks a policy file; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<Self, PolicyError> {
        let bad = |message: String| PolicyError::Invalid {
            path: path.to_owned(),
            message,
        };
        let opts = serde_saphyr::options! { strict_booleans: true };
        let file: PolicyFile =
            serde_saphyr::from_str_with_options(text, opts).map_err(|e| bad(e.to_string()))?;
        for p in &file.policies {
            if let Some(s) = &p.when.severity
                && rank(s).is_none()
            {
                return Err(bad(format!(
                    "policy {}: severity `{s}` is not one of {}",
                    p.name,
                    SEVERITIES.join(", ")
                )));
            }
            if let Some(t) = &p.when.risk_tier
                && !matches!(t.as_str(), "alert" | "automated_remediation")
            {
                return Err(bad(format!(
                    "policy {}: risk_tier `{t}` is not alert or automated_remediation",
                    p.name
                )));
            }
            let empty =
                p.when.rules.is_empty() && p.when.severity.is_none() && p.when.risk_tier.is_none();
            if empty {
                return Err(bad(format!(
                    "policy {}: `when` names no rule, severity or risk tier (it would match every finding)",
                    p.name
                )));
            }
        }
        Ok(file)
    }

    /// The first policy that matches, if any.
    pub fn matching(&self, f: &FindingFacts<'_>) -> Option<&Policy> {
        self.policies.iter().find(|p| p.matches(f))
    }
}

impl Policy {
    fn matches(&self, f: &FindingFacts<'_>) -> bool {
        let w = &self.when;
        let rules_ok = w.rules.is_empty()
            || w.rules
                .iter()
                .any(|pat| f.rules.iter().any(|r| glob(pat, r)));
        let sev = rank(f.severity);
        let severity_ok = match (&w.severity, sev) {
            (None, _) => true,
            (Some(min), Some(have)) => rank(min).is_some_and(|m| have >= m),
            (Some(_), None) => false,
        };
        // The risk finding is `critical` at the automated-remediation tier, `high` at alert.
        let risk_ok = match w.risk_tier.as_deref() {
            None => true,
            Some(tier) => {
                let least = if tier == "automated_remediation" {
                    "critical"
                } else {
                    "high"
                };
                f.rules.contains(&RISK_RULE) && sev >= rank(least)
            }
        };
        rules_ok && severity_ok && risk_ok
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn facts<'a>(rules: &'a [&'a str], severity: &'a str) -> FindingFacts<'a> {
        FindingFacts { rules, severity }
    }

    #[test]
    fn first_matching_policy_decides() {
        let f = PolicyFile::parse(
            "p.yml",
            "policies:\n  - name: keys\n    when: {rules: [kw-aws-backdoor-*], severity: high}\n    execute: auto\n  - name: risk\n    when: {risk_tier: automated_remediation}\n    execute: approve\n",
        )
        .unwrap();
        let p = f
            .matching(&facts(&["kw-aws-backdoor-access-key"], "high"))
            .unwrap();
        assert_eq!((p.name.as_str(), p.execute), ("keys", Mode::Auto));
        assert!(
            f.matching(&facts(&["kw-aws-backdoor-access-key"], "medium"))
                .is_none()
        );
        assert!(
            f.matching(&facts(&["kw-aws-create-user"], "critical"))
                .is_none()
        );
        let p = f
            .matching(&facts(&["kw-posture-risk"], "critical"))
            .unwrap();
        assert_eq!(p.execute, Mode::Approve);
        assert!(f.matching(&facts(&["kw-posture-risk"], "high")).is_none());
    }

    #[test]
    fn default_is_never_and_bad_files_say_why() {
        let f = PolicyFile::parse(
            "p.yml",
            "policies:\n  - name: x\n    when: {severity: low}\n",
        )
        .unwrap();
        assert_eq!(f.policies[0].execute, Mode::Never);
        let e = PolicyFile::parse("p.yml", "policies:\n  - name: x\n    when: {}\n").unwrap_err();
        assert!(
            e.to_string().contains("matches") || e.to_string().contains("every finding"),
            "{e}"
        );
        let e = PolicyFile::parse(
            "p.yml",
            "policies:\n  - name: x\n    when: {severity: urgent}\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("p.yml: policy x: severity `urgent`"),
            "{e}"
        );
        let e = PolicyFile::parse(
            "p.yml",
            "policies:\n  - name: x\n    when: {rules: [a]}\n    execute: always\n",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("p.yml:"), "{e}");
    }

    #[test]
    fn the_example_policy_parses() {
        let text = include_str!("../../../examples/respond/policy.yml");
        let f = PolicyFile::parse("examples/respond/policy.yml", text).unwrap();
        assert_eq!(f.policies.len(), 2);
        assert_eq!(f.policies[0].execute, Mode::Auto);
    }

    #[test]
    fn globs() {
        assert!(glob("kw-*", "kw-aws-x"));
        assert!(glob("*-x", "kw-aws-x"));
        assert!(glob("kw-*-x", "kw-aws-x"));
        assert!(!glob("kw-*-y", "kw-aws-x"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
    }
}
