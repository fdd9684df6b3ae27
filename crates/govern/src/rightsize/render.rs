//! The Terraform form of a rightsizing: the `aws_iam_role_policy` (or `aws_iam_user_policy`)
//! to add, and a comment block naming what it replaces — the attachments and inline
//! policies to remove from the configuration. Text only; nothing is applied.

use std::fmt::Write as _;

use keyward_model::time;

use super::{POLICY_NAME, Report};

/// A Terraform resource name from an identity name (`[a-z0-9_]`, not starting with a digit).
fn tf_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.chars().next().is_none_or(|c| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The HCL: a comment block with the difference, then the resource. `role` says whether the
/// identity is a role (else a user); `name` is its IAM name.
pub fn terraform(report: &Report, role: bool, name: &str) -> String {
    let (kind, attr, attach) = if role {
        (
            "aws_iam_role_policy",
            "role",
            "aws_iam_role_policy_attachment",
        )
    } else {
        (
            "aws_iam_user_policy",
            "user",
            "aws_iam_user_policy_attachment",
        )
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# keyward rightsize {}: {} actions proposed, {} granted patterns today,\n# from the calls of {} to {} ({} days).",
        report.identity,
        report.proposed_actions,
        report.granted_patterns,
        time::format(report.from),
        time::format(report.to),
        report.days
    );
    if !report.replaces.is_empty() {
        out.push_str("#\n# Remove from the configuration (this policy replaces them):\n");
        for r in &report.replaces {
            match r.split_once(':') {
                Some(("managed", arn)) => {
                    let _ = writeln!(out, "#   - {attach} of {arn}");
                }
                Some(("inline", n)) if n == POLICY_NAME => {}
                Some(("inline", n)) => {
                    let _ = writeln!(out, "#   - {kind} \"{n}\"");
                }
                _ => {
                    let _ = writeln!(out, "#   - {r}");
                }
            }
        }
    }
    if !report.unused.is_empty() {
        out.push_str("#\n# Granted but unused:\n");
        for u in &report.unused {
            let _ = writeln!(out, "#   - {} ({})", u.action, u.source);
        }
    }
    for note in report
        .kept
        .iter()
        .map(|k| format!("kept {}: {}", k.action, k.why))
    {
        let _ = writeln!(out, "# {note}");
    }
    for b in &report.blockers {
        let _ = writeln!(out, "# REVIEW: {b}");
    }
    let doc = serde_json::to_string_pretty(&report.proposal).unwrap_or_default();
    let _ = write!(
        out,
        "\nresource \"{kind}\" \"{}_rightsized\" {{\n  name   = \"{POLICY_NAME}\"\n  {attr:<6} = \"{}\"\n  policy = <<-EOT\n",
        tf_name(name),
        name.replace('\\', "\\\\").replace('"', "\\\"")
    );
    for line in doc.lines() {
        let _ = writeln!(
            out,
            "    {}",
            line.replace("${", "$${").replace("%{", "%%{")
        );
    }
    out.push_str("  EOT\n}\n");
    out
}
