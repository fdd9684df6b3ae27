//! What to do about a posture finding: ordered steps, each with the exact commands for the
//! user's environment (real names, ARNs, key ids, namespaces, every one shell-quoted), and
//! the Terraform change where Terraform defines the identity.
//!
//! A posture control builds its remediation where it makes the finding (`posture/`, the
//! shared command builders in `posture/fix.rs`). It travels in the finding's
//! `details.remediation`, so the store, the API and `findings --format json` carry it as
//! they carry every detail; SARIF (`fixes`) and the dashboard read it back with
//! [`Remediation::of`]. A value Keyward does not know is never made up: the step says what
//! is unknown, and its command looks it up (`aws iam list-access-keys …`) or is left out.
//!
//! JSON shape (`details.remediation`):
//!
//! ```json
//! {"steps": [{"summary": "…", "commands": ["aws iam …"], "after_days": 30}],
//!  "terraform": "…"}
//! ```
//!
//! `after_days` is absent for a step to take now; `terraform` is absent when no Terraform
//! definition of the identity is known.

use serde::{Deserialize, Serialize};

use crate::Finding;

/// Days between disabling something and deleting it: long enough for whoever still needs
/// it to notice, and for the disable to be undone.
pub const GRACE_DAYS: u32 = 30;

/// The steps that fix one posture finding, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remediation {
    pub steps: Vec<Step>,
    /// The change to make in Terraform when Terraform defines the identity: a change made
    /// only with the commands is reverted by the next `terraform apply`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terraform: Option<String>,
}

/// One step: what it does and why, and the commands that do it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub summary: String,
    /// Shell commands, each one line, to run in order (empty: a step for a person, which
    /// the summary describes).
    pub commands: Vec<String>,
    /// Take this step only so many days after the first (a grace period before deleting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_days: Option<u32>,
}

impl Step {
    /// A step to take now.
    pub fn now(summary: impl Into<String>, commands: Vec<String>) -> Step {
        Step {
            summary: summary.into(),
            commands,
            after_days: None,
        }
    }

    /// A step to take after the grace period ([`GRACE_DAYS`]).
    pub fn later(summary: impl Into<String>, commands: Vec<String>) -> Step {
        Step {
            after_days: Some(GRACE_DAYS),
            ..Step::now(summary, commands)
        }
    }
}

impl Remediation {
    pub fn new(steps: Vec<Step>) -> Remediation {
        Remediation {
            steps,
            terraform: None,
        }
    }

    /// The remediation a finding carries (`details.remediation`), if it has one.
    pub fn of(f: &Finding) -> Option<Remediation> {
        let v = f.details.get("remediation")?;
        Remediation::deserialize(v).ok()
    }

    fn when(s: &Step) -> String {
        match s.after_days {
            Some(d) => format!("after {d} days: "),
            None => String::new(),
        }
    }

    /// Plain text: numbered steps, each command on a line of its own after `$ `.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (n, s) in self.steps.iter().enumerate() {
            out.push_str(&format!("{}. {}{}\n", n + 1, Self::when(s), s.summary));
            for c in &s.commands {
                out.push_str(&format!("   $ {c}\n"));
            }
        }
        if let Some(t) = &self.terraform {
            out.push_str(&format!("Terraform: {t}\n"));
        }
        out
    }

    /// Markdown: numbered steps, the commands of each in a fenced `sh` block whose fence is
    /// longer than any run of backticks in them (a name cannot end the block early).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for (n, s) in self.steps.iter().enumerate() {
            out.push_str(&format!(
                "{}. {}{}\n",
                n + 1,
                Self::when(s),
                escape_markdown(&s.summary)
            ));
            if s.commands.is_empty() {
                continue;
            }
            let body = s.commands.join("\n");
            let fence = "`".repeat(longest_run(&body, '`').max(2) + 1);
            out.push_str(&format!("\n   {fence}sh\n"));
            for line in body.lines() {
                out.push_str(&format!("   {line}\n"));
            }
            out.push_str(&format!("   {fence}\n\n"));
        }
        if let Some(t) = &self.terraform {
            out.push_str(&format!("\n**Terraform:** {}\n", escape_markdown(t)));
        }
        out
    }

    /// A POSIX shell script of the steps. Steps for after the grace period, and every line
    /// that is not a command, are comments: running the script takes only the steps that
    /// can be undone, and a name holding a newline cannot turn a comment into a command.
    pub fn script(&self, heading: &str) -> String {
        let mut out = String::from("#!/bin/sh\n");
        comment(&mut out, heading);
        comment(
            &mut out,
            "Review before running. Steps to take after a grace period are commented out.",
        );
        out.push_str("set -eu\n");
        for (n, s) in self.steps.iter().enumerate() {
            out.push('\n');
            comment(
                &mut out,
                &format!("{}. {}{}", n + 1, Self::when(s), s.summary),
            );
            for c in &s.commands {
                if s.after_days.is_some() {
                    comment(&mut out, c);
                } else {
                    out.push_str(c);
                    out.push('\n');
                }
            }
        }
        if let Some(t) = &self.terraform {
            out.push('\n');
            comment(&mut out, &format!("Terraform: {t}"));
        }
        out
    }
}

/// `text` as `# ` comment lines, one per line of it.
fn comment(out: &mut String, text: &str) {
    for line in text.split(['\n', '\r']) {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in s.chars() {
        run = if ch == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Markdown's inline specials escaped, so names and ARNs in a summary show as written.
fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(
            ch,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '!'
        ) {
            out.push('\\');
        }
        out.push(if ch == '\n' || ch == '\r' { ' ' } else { ch });
    }
    out
}

/// `s` as one POSIX shell word: left bare when it holds only characters no shell treats
/// specially, otherwise single-quoted (a `'` inside becomes `'\''`), so whatever a name
/// holds, it stays one argument.
pub(crate) fn shell_quote(s: &str) -> String {
    let bare = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'_' | b'.' | b'/' | b':' | b'@' | b',' | b'+')
        });
    if bare {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn shell_quote_keeps_a_hostile_name_one_word() {
        assert_eq!(shell_quote("deployer"), "deployer");
        assert_eq!(
            shell_quote("arn:aws:iam::1:role/a"),
            "arn:aws:iam::1:role/a"
        );
        assert_eq!(shell_quote("x'; rm -rf /"), r"'x'\''; rm -rf /'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(id)"), "'$(id)'");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("k=v"), "'k=v'");
    }

    fn sample() -> Remediation {
        Remediation {
            steps: vec![
                Step::now(
                    "Disable `x`",
                    vec!["aws iam a --user-name 'x\nrm -rf /'".into()],
                ),
                Step::later(
                    "Delete it",
                    vec!["aws iam delete-user --user-name x".into()],
                ),
            ],
            terraform: Some("aws_iam_user.x (main.tf:3): remove it".into()),
        }
    }

    #[test]
    fn a_script_runs_only_what_can_be_undone() {
        let s = sample().script("kwf-1: heading\nrm -rf /");
        let commands: Vec<&str> = s
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        assert_eq!(
            commands,
            ["set -eu", "aws iam a --user-name 'x", "rm -rf /'"],
            "the later step is commented out, the heading cannot escape its comment: {s}"
        );
        assert!(s.contains("# aws iam delete-user --user-name x\n"), "{s}");
    }

    #[test]
    fn markdown_fences_outlast_backticks_in_commands() {
        let r = Remediation::new(vec![Step::now("q", vec!["echo '```'".into()])]);
        let md = r.markdown();
        assert!(md.contains("````sh"), "{md}");
        assert!(sample().markdown().contains("Disable \\`x\\`"));
    }

    #[test]
    fn round_trips_through_details() {
        let mut f = Finding::blank();
        f.details = serde_json::json!({"remediation": sample()});
        assert_eq!(Remediation::of(&f), Some(sample()));
        let v = serde_json::to_value(sample()).unwrap();
        assert!(v["steps"][0].get("after_days").is_none());
        assert_eq!(v["steps"][1]["after_days"], 30);
    }
}
