//! `keyward policy validate [DIR] | test CASES… [--policies DIR] | init DIR | show`: the
//! Cedar policies that decide who may do what (`keyward_policy`). Validation is strict
//! against Keyward's schema and reports every problem with its file and line.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use keyward_policy::cases::{self, Case};
use keyward_policy::load::ENTITIES_FILE;

use crate::Outcome;
use crate::policy::{Source, load_from, source};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Parse and validate a policy directory (default: the one in force) against Keyward's
    /// schema; every problem with its file and line. Exit 1 when it does not validate.
    Validate {
        dir: Option<PathBuf>,
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Check expected decisions (YAML: name, principal, action, resource, context, expect,
    /// by) against a policy set. Exit 1 when one fails.
    Test {
        #[arg(required = true)]
        cases: Vec<PathBuf>,
        /// The policy directory (default: the one in force).
        #[arg(long, value_name = "DIR")]
        policies: Option<PathBuf>,
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Write the built-in policies, the schema and an example entities file to DIR, to
    /// start your own (point `policy.dir` in keyward.yaml or KEYWARD_POLICIES at it).
    Init { dir: PathBuf },
    /// Which policy set is in force, and its policies.
    Show,
}

pub fn run(data_dir: &Path, cmd: Command) -> anyhow::Result<Outcome> {
    match cmd {
        Command::Validate { dir, format } => validate(data_dir, dir, &format),
        Command::Test {
            cases,
            policies,
            format,
        } => test(data_dir, &cases, policies, &format),
        Command::Init { dir } => init(&dir),
        Command::Show => show(data_dir),
    }
}

fn chosen(data_dir: &Path, dir: Option<PathBuf>) -> anyhow::Result<Source> {
    Ok(match dir {
        Some(d) => Source::Dir(d),
        None => source(data_dir)?,
    })
}

fn validate(data_dir: &Path, dir: Option<PathBuf>, format: &str) -> anyhow::Result<Outcome> {
    let src = chosen(data_dir, dir)?;
    let loaded = match &src {
        Source::Dir(d) => keyward_policy::load::from_dir(d),
        Source::Builtin => keyward_policy::load::builtin(),
    };
    match (loaded, format) {
        (Ok(l), "json") => {
            let out = serde_json::json!({
                "source": src.to_string(),
                "valid": true,
                "policies": l.policies.ids().iter().map(|id| serde_json::json!({
                    "id": id, "at": l.policies.origin(id).map(ToString::to_string),
                })).collect::<Vec<_>>(),
                "warnings": l.warnings,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(Outcome::Clean)
        }
        (Ok(l), _) => {
            for w in &l.warnings {
                println!("warning: {w}");
            }
            println!(
                "{src}: {} policies valid against Keyward's schema (strict)",
                l.policies.ids().len()
            );
            Ok(Outcome::Clean)
        }
        (Err(e), "json") => {
            let out = serde_json::json!({
                "source": src.to_string(), "valid": false, "problems": e.problems,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(Outcome::Broken)
        }
        (Err(e), _) => {
            for p in &e.problems {
                println!("error: {p}");
            }
            println!(
                "{src}: {} problems; nothing is enforced from it",
                e.problems.len()
            );
            Ok(Outcome::Broken)
        }
    }
}

fn read_cases(path: &Path) -> anyhow::Result<Vec<Case>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading `{}`", path.display()))?;
    let opts = serde_saphyr::options! { strict_booleans: true };
    serde_saphyr::from_str_with_options(&text, opts)
        .with_context(|| format!("in the test cases `{}`", path.display()))
}

fn test(
    data_dir: &Path,
    files: &[PathBuf],
    dir: Option<PathBuf>,
    format: &str,
) -> anyhow::Result<Outcome> {
    let src = chosen(data_dir, dir)?;
    let policies = load_from(&src)?.policies;
    let mut all = Vec::new();
    for f in files {
        let cs = read_cases(f)?;
        all.extend(cases::run(&policies, &cs));
    }
    let failed = all.iter().filter(|o| !o.passed).count();
    if format == "json" {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "source": src.to_string(), "cases": all, "failed": failed,
            }))?
        );
    } else {
        for o in &all {
            let by = o
                .decision
                .as_ref()
                .map(|d| format!("{} by [{}]", d.word(), d.policies.join(", ")))
                .unwrap_or_default();
            match &o.problem {
                None => println!("ok    {}  ({by})", o.name),
                Some(p) => println!("FAIL  {}: {p}", o.name),
            }
        }
        println!(
            "\n{} cases against {src}: {} passed, {failed} failed",
            all.len(),
            all.len() - failed
        );
    }
    Ok(if failed == 0 {
        Outcome::Clean
    } else {
        Outcome::Broken
    })
}

const EXAMPLE_ENTITIES: &str = r#"[
  {
    "uid": { "type": "Keyward::Person", "id": "alice" },
    "attrs": {},
    "parents": [ { "type": "Keyward::Role", "id": "admin" } ]
  },
  {
    "uid": { "type": "Keyward::Person", "id": "bob" },
    "attrs": {},
    "parents": [ { "type": "Keyward::Role", "id": "operator" } ]
  }
]
"#;

fn init(dir: &Path) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
    let files = [
        ("roles.cedar", keyward_policy::DEFAULT_POLICIES),
        ("keyward.cedarschema", keyward_policy::SCHEMA),
        (ENTITIES_FILE, EXAMPLE_ENTITIES),
    ];
    for (name, _) in &files {
        let p = dir.join(name);
        if p.exists() {
            anyhow::bail!("`{}` exists: nothing was written", p.display());
        }
    }
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing `{}`", p.display()))?;
        println!("wrote {}", p.display());
    }
    println!(
        "\nedit {ENTITIES_FILE} to name your people (with it, a person it does not name may do \
         nothing), then `keyward policy validate {}` and point `policy.dir` in keyward.yaml \
         (or KEYWARD_POLICIES) at it",
        dir.display()
    );
    Ok(Outcome::Clean)
}

fn show(data_dir: &Path) -> anyhow::Result<Outcome> {
    let src = source(data_dir)?;
    let loaded = load_from(&src)?;
    println!("policies in force: {src}");
    for id in loaded.policies.ids() {
        let at = loaded
            .policies
            .origin(id)
            .map(ToString::to_string)
            .unwrap_or_default();
        println!("  {id:<32} {at}");
    }
    Ok(Outcome::Clean)
}
