//! `keyward policy validate [DIR] | test CASES… [--policies DIR] | init DIR | show |
//! builtin`: the Cedar policies that decide who may do what (`keyward_policy`). Validation
//! is strict against Keyward's schema and reports every problem with its file and line. A
//! directory's policies join the built-in roles unless `--without-builtin` (or
//! `policy.builtin: false` in keyward.yaml for the set in force).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use keyward_policy::cases::{self, Case};
use keyward_policy::load::ENTITIES_FILE;

use crate::Outcome;
use crate::policy::{Source, load_from, load_raw, source};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Parse and validate a policy directory (default: the one in force) against Keyward's
    /// schema; every problem with its file and line. Exit 1 when it does not validate.
    Validate {
        dir: Option<PathBuf>,
        /// The directory alone, without the built-in roles.
        #[arg(long, requires = "dir")]
        without_builtin: bool,
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
        /// The directory alone, without the built-in roles.
        #[arg(long, requires = "policies")]
        without_builtin: bool,
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Start a policy directory: example policies (added to the built-in roles), an
    /// entities file naming people and their roles, and the schema for reference. Point
    /// `policy.dir` in keyward.yaml (or KEYWARD_POLICIES) at it.
    Init { dir: PathBuf },
    /// Which policy set is in force, and each policy with where it is written.
    Show,
    /// The built-in policies (the viewer, operator and admin roles) as Cedar text.
    Builtin,
}

pub fn run(data_dir: &Path, cmd: Command) -> anyhow::Result<Outcome> {
    match cmd {
        Command::Validate {
            dir,
            without_builtin,
            format,
        } => validate(&chosen(data_dir, dir, without_builtin)?, &format),
        Command::Test {
            cases,
            policies,
            without_builtin,
            format,
        } => test(
            &chosen(data_dir, policies, without_builtin)?,
            &cases,
            &format,
        ),
        Command::Init { dir } => init(&dir),
        Command::Show => show(data_dir),
        Command::Builtin => {
            print!("{}", keyward_policy::DEFAULT_POLICIES);
            Ok(Outcome::Clean)
        }
    }
}

fn chosen(data_dir: &Path, dir: Option<PathBuf>, without_builtin: bool) -> anyhow::Result<Source> {
    Ok(match dir {
        Some(dir) => Source::Dir {
            dir,
            builtin: !without_builtin,
        },
        None => source(data_dir)?,
    })
}

fn validate(src: &Source, format: &str) -> anyhow::Result<Outcome> {
    let loaded = load_raw(src);
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

fn test(src: &Source, files: &[PathBuf], format: &str) -> anyhow::Result<Outcome> {
    let policies = load_from(src)?.policies;
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
    "uid": { "type": "Keyward::Team", "id": "platform" },
    "attrs": {},
    "parents": []
  },
  {
    "uid": { "type": "Keyward::Person", "id": "alice" },
    "attrs": {},
    "parents": [
      { "type": "Keyward::Role", "id": "admin" },
      { "type": "Keyward::Team", "id": "platform" }
    ]
  },
  {
    "uid": { "type": "Keyward::Person", "id": "bob" },
    "attrs": {},
    "parents": [ { "type": "Keyward::Role", "id": "operator" } ]
  }
]
"#;

const EXAMPLE_POLICIES: &str = r#"// Your policies: added to the built-in roles (`keyward policy builtin` prints them). A
// `forbid` always wins over a `permit`. Check with `keyward policy validate` and
// `keyward policy test`.

// An identity's owning team (from Keyward's ownership graph) may rotate its credentials.
@id("owners-rotate")
permit (
    principal,
    action == Keyward::Action::"rotate",
    resource is Keyward::Identity
)
when { resource has team && principal in resource.team };

// Production changes outside working hours (UTC) only from the corporate network.
@id("prod-changes-in-hours")
forbid (
    principal,
    action in [Keyward::Action::"execute", Keyward::Action::"retire", Keyward::Action::"grant"],
    resource
)
when { context.environment == "prod" && (context.hour < 7 || context.hour >= 19) }
unless { context.break_glass || context.source_ip.isInRange(ip("10.0.0.0/8")) };
"#;

fn init(dir: &Path) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating `{}`", dir.display()))?;
    let files = [
        ("local.cedar", EXAMPLE_POLICIES),
        (ENTITIES_FILE, EXAMPLE_ENTITIES),
        ("keyward.cedarschema", keyward_policy::SCHEMA),
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
        "\nedit {ENTITIES_FILE} to name your people, teams and roles (with it, a person it does not \
         name may do nothing), then `keyward policy validate {}` and point `policy.dir` in \
         keyward.yaml (or KEYWARD_POLICIES) at it. keyward.cedarschema is for reference: the \
         schema is built in.",
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
