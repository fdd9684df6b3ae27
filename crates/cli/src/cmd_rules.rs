//! `keyward rules list|test`: the detection rules (built-in, and any `--rules` paths).

use std::path::PathBuf;

use keyward_detect::{Catalog, Settings, testing};

use crate::Outcome;
use crate::output::table;

/// Rules and check settings shared by `ingest`, `watch`, `rules` and `findings`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct DetectArgs {
    /// Extra rule files or directories: Keyward rules or unmodified Sigma rules
    /// (comma-separated in the environment variable).
    #[arg(
        long = "rules",
        value_name = "PATH",
        env = "KEYWARD_RULES",
        value_delimiter = ','
    )]
    pub rules: Vec<PathBuf>,
    /// Accounts approved to assume roles across accounts (besides the estate's own).
    #[arg(
        long = "allow-account",
        value_name = "ACCOUNT",
        env = "KEYWARD_ALLOWED_ACCOUNTS",
        value_delimiter = ','
    )]
    pub allow_account: Vec<String>,
}

impl DetectArgs {
    /// The built-in rules plus `--rules`; rule files that do not load are reported on
    /// stderr with their reason and skipped.
    pub fn catalog(&self) -> Catalog {
        let mut c = Catalog::builtin();
        for p in &self.rules {
            c.add_path(p);
        }
        for p in &c.problems {
            eprintln!("rule not loaded: {}: {}", p.path, p.reason);
        }
        c
    }

    pub fn settings(&self) -> Settings {
        Settings {
            allowed_accounts: self.allow_account.iter().cloned().collect(),
        }
    }
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Every rule: id, severity, ATT&CK, source, form and origin.
    List {
        #[command(flatten)]
        detect: DetectArgs,
        /// `table` or `json`.
        #[arg(long, default_value = "table")]
        format: String,
        /// Include rules whose source Keyward does not read yet.
        #[arg(long)]
        all: bool,
    },
    /// Runs the examples and negative examples of Keyward rules.
    Test {
        #[command(flatten)]
        detect: DetectArgs,
        /// Only this rule.
        id: Option<String>,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<Outcome> {
    match cmd {
        Command::List {
            detect,
            format,
            all,
        } => {
            let c = detect.catalog();
            let rules: Vec<_> = c
                .rules
                .iter()
                .filter(|r| !r.internal && (all || r.logsource.source.is_some()))
                .collect();
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&rules)?);
            } else {
                let mut t = table();
                t.set_header(["id", "severity", "attack", "source", "form", "title"]);
                for r in &rules {
                    let source = match r.logsource.source {
                        Some(_) => r.logsource.label.clone(),
                        None => format!("{} (not read yet)", r.logsource.label),
                    };
                    t.add_row([
                        r.id.clone(),
                        r.severity.to_string(),
                        r.attack.join(" "),
                        source,
                        format!("{:?}", r.form).to_lowercase(),
                        r.title.clone(),
                    ]);
                }
                println!("{t}");
                let dormant = c
                    .rules
                    .iter()
                    .filter(|r| r.logsource.source.is_none())
                    .count();
                println!(
                    "{} rules ({} active; {dormant} for sources Keyward does not read yet{}); {} files not loaded",
                    c.rules.iter().filter(|r| !r.internal).count(),
                    rules
                        .iter()
                        .filter(|r| r.logsource.source.is_some())
                        .count(),
                    if all { "" } else { ", shown with --all" },
                    c.problems.len()
                );
            }
            Ok(if c.problems.is_empty() {
                Outcome::Clean
            } else {
                Outcome::Rejected
            })
        }
        Command::Test { detect, id } => {
            let c = detect.catalog();
            if let Some(id) = &id
                && !c.files.contains_key(id)
            {
                anyhow::bail!("no Keyward rule `{id}` (Sigma rules carry no examples)");
            }
            let outcomes = testing::run(&c, id.as_deref());
            let failed = outcomes.iter().filter(|o| !o.passed).count();
            for o in &outcomes {
                let mark = if o.passed { "ok  " } else { "FAIL" };
                println!("{mark} {} {}: {}", o.rule, o.example, o.message);
            }
            println!(
                "{} examples, {} passed, {failed} failed",
                outcomes.len(),
                outcomes.len() - failed
            );
            Ok(if failed == 0 && c.problems.is_empty() {
                Outcome::Clean
            } else {
                Outcome::Rejected
            })
        }
    }
}
