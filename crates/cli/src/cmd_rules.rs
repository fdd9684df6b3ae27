//! `keyward rules list|test|draft`: the detection rules (built-in, and any `--rules`
//! paths), their examples, and new rules drafted from events that were missed.

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
    /// Drafts a Keyward rule from a missed incident's event: selects its action (plus any
    /// `--match` fields), carries the event as its first example, and checks that the draft
    /// loads and fires on it. Prints the rule, or writes it with `-o`.
    Draft {
        /// A file holding the event: a CloudTrail file (`.json`, `.json.gz`, `{"Records":[…]}`),
        /// JSON lines, or a Kubernetes audit log.
        file: PathBuf,
        /// The event's `eventID` (CloudTrail) or `auditID` (Kubernetes); may be omitted
        /// when the file holds a single event.
        #[arg(long = "event-id")]
        event_id: Option<String>,
        /// A further field (dotted path, e.g. `userIdentity.arn`) the rule must match.
        #[arg(long = "match", value_name = "FIELD")]
        fields: Vec<String>,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        title: Option<String>,
        /// info, low, medium, high, critical.
        #[arg(long, default_value = "medium", value_parser = crate::output::parse_severity)]
        severity: keyward_detect::Severity,
        /// ATT&CK technique ids.
        #[arg(long, value_delimiter = ',')]
        attack: Vec<String>,
        /// Write the rule here (refuses to overwrite) instead of printing it.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

/// The records of an event file: a CloudTrail document's `Records`, a JSON array, one JSON
/// object, or JSON lines. Each with its position (record index or line number).
fn records(bytes: &[u8]) -> anyhow::Result<Vec<(usize, serde_json::Value)>> {
    use serde_json::Value;
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        return Ok(match v {
            Value::Object(mut o) => match o.remove("Records").or_else(|| o.remove("items")) {
                Some(Value::Array(a)) => {
                    a.into_iter().enumerate().map(|(i, r)| (i + 1, r)).collect()
                }
                Some(other) => {
                    o.insert("Records".into(), other);
                    vec![(1, Value::Object(o))]
                }
                None => vec![(1, Value::Object(o))],
            },
            Value::Array(a) => a.into_iter().enumerate().map(|(i, r)| (i + 1, r)).collect(),
            _ => anyhow::bail!("not an event file: a JSON scalar"),
        });
    }
    let mut out = Vec::new();
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v = serde_json::from_slice(line)
            .map_err(|e| anyhow::anyhow!("line {}: not JSON: {e}", n + 1))?;
        out.push((n + 1, v));
    }
    Ok(out)
}

struct DraftArgs {
    file: PathBuf,
    event_id: Option<String>,
    draft: keyward_detect::draft::Draft,
    output: Option<PathBuf>,
}

fn draft(a: DraftArgs) -> anyhow::Result<Outcome> {
    use anyhow::Context;
    use keyward_model::SourceKind;
    let shown = a.file.display().to_string();
    let raw = std::fs::read(&a.file).with_context(|| format!("cannot read {shown}"))?;
    let bytes =
        keyward_sources::decompress(raw).with_context(|| format!("{shown}: not valid gzip"))?;
    let all = records(&bytes).with_context(|| shown.clone())?;
    let id_of = |v: &serde_json::Value| {
        v.get("eventID")
            .or_else(|| v.get("auditID"))
            .and_then(|x| x.as_str())
            .map(str::to_owned)
    };
    let (at, record) = match &a.event_id {
        Some(want) => all
            .into_iter()
            .find(|(_, v)| id_of(v).as_deref() == Some(want.as_str()))
            .ok_or_else(|| anyhow::anyhow!("{shown}: no event with id `{want}`"))?,
        None => {
            let n = all.len();
            let mut it = all.into_iter();
            match (it.next(), n) {
                (Some(one), 1) => one,
                _ => anyhow::bail!("{shown} holds {n} events: name one with --event-id"),
            }
        }
    };
    let source = if record.get("auditID").is_some() && record.get("verb").is_some() {
        SourceKind::K8sAudit
    } else {
        SourceKind::Cloudtrail
    };
    let mut d = a.draft;
    d.origin = format!("{shown} (record {at})");
    let bytes = serde_json::to_vec(&record)?;
    let text = keyward_detect::draft::draft(source, &bytes, &d)
        .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    // The draft must load and fire on the incident before it is handed over.
    let mut c = Catalog::default();
    c.add_text("draft", &text);
    if let Some(p) = c.problems.first() {
        anyhow::bail!("the drafted rule does not load: {}", p.reason);
    }
    let outcomes = testing::run(&c, None);
    if let Some(o) = outcomes.iter().find(|o| !o.passed) {
        anyhow::bail!("the drafted rule does not fire on its event: {}", o.message);
    }
    match &a.output {
        Some(p) => {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)
                .with_context(|| format!("cannot create {}", p.display()))?;
            f.write_all(text.as_bytes())?;
            eprintln!(
                "wrote {}; it fires on its event. Add negative examples, then `keyward rules test --rules {}`",
                p.display(),
                p.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(Outcome::Clean)
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
                let mut p = table();
                p.set_header(["posture control", "title"]);
                for control in keyward_detect::posture::CONTROLS {
                    p.add_row([control.id, control.title]);
                }
                println!("{p}");
                println!(
                    "{} posture controls, judged from the inventory and the graph after every ingest",
                    keyward_detect::posture::CONTROLS.len()
                );
            }
            Ok(if c.problems.is_empty() {
                Outcome::Clean
            } else {
                Outcome::Rejected
            })
        }
        Command::Draft {
            file,
            event_id,
            fields,
            id,
            title,
            severity,
            attack,
            output,
        } => draft(DraftArgs {
            file,
            event_id,
            draft: keyward_detect::draft::Draft {
                id: id.unwrap_or_default(),
                title: title.unwrap_or_default(),
                severity,
                attack,
                fields,
                origin: String::new(),
            },
            output,
        }),
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
