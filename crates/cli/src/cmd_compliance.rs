//! `keyward compliance report|trend`: scorecards of SOC 2, PCI DSS 4.0 and ISO/IEC
//! 27001:2022 from the estate ([`keyward_govern::compliance`]). Each report is audited
//! (`compliance.report`, its counts in the entry), which makes the audit log the trend:
//! tamper-evident, and `trend` reads it back.

use std::path::Path;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_govern::compliance::{self, Framework};
use keyward_store::AuditEntry;

use crate::Outcome;
use crate::output::{cli_actor, now_ms};

#[derive(clap::Subcommand)]
pub enum Command {
    /// One framework's controls, each with its status, the identities and findings that
    /// decide it, and evidence (finding ids, the audit chain's head, baseline approvals).
    /// Exit 1 when a control fails.
    Report {
        #[arg(long, value_parser = ["soc2", "pci-dss-4", "iso27001-2022"])]
        framework: String,
        #[arg(long, default_value = "table", value_parser = ["table", "json", "csv", "html"])]
        format: String,
        /// Judge as of this instant (RFC 3339; default now).
        #[arg(long, value_parser = crate::output::parse_instant)]
        as_of: Option<i64>,
    },
    /// The counts of every report run so far, oldest first (from the audit log).
    Trend {
        #[arg(long, value_parser = ["soc2", "pci-dss-4", "iso27001-2022"])]
        framework: Option<String>,
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
}

pub fn run(dir: &Path, cmd: Command) -> anyhow::Result<Outcome> {
    let mut engine =
        Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))?;
    match cmd {
        Command::Report {
            framework,
            format,
            as_of,
        } => {
            let framework = Framework::parse(&framework)
                .with_context(|| format!("unknown framework `{framework}`"))?;
            let now = as_of.unwrap_or_else(now_ms);
            let facts = engine.compliance_facts(now)?;
            let report = compliance::report(framework, &facts);
            {
                let _writing = crate::output::write_lock(&mut engine, dir)?;
                engine.audit(&AuditEntry {
                    at: now_ms(),
                    actor: cli_actor(),
                    action: keyward_engine::compliance::REPORTED.into(),
                    target: Some(framework.id().into()),
                    detail: Some(format!(
                        "{} pass, {} warn, {} fail",
                        report.pass, report.warn, report.fail
                    )),
                    before: None,
                    after: Some(
                        serde_json::json!({
                            "framework": framework.id(),
                            "as_of": now,
                            "pass": report.pass,
                            "warn": report.warn,
                            "fail": report.fail,
                        })
                        .to_string(),
                    ),
                })?;
            }
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&report)?),
                "csv" => print!("{}", compliance::csv(&report)),
                "html" => print!("{}", compliance::html(&report)),
                _ => print!("{}", compliance::table(&report)),
            }
            Ok(if report.fail > 0 {
                Outcome::Broken
            } else {
                Outcome::Clean
            })
        }
        Command::Trend { framework, format } => {
            let points = engine.compliance_trend(framework.as_deref())?;
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&points)?);
                return Ok(Outcome::Clean);
            }
            let mut t = crate::output::table();
            t.set_header(["at", "framework", "pass", "warn", "fail", "by"]);
            for p in &points {
                t.add_row([
                    keyward_model::time::format(p.at),
                    p.framework.clone(),
                    p.pass.to_string(),
                    p.warn.to_string(),
                    p.fail.to_string(),
                    p.by.clone(),
                ]);
            }
            println!("{t}");
            Ok(Outcome::Clean)
        }
    }
}
