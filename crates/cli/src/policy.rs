//! The command line's authorisation: which policy set applies, who is at the keyboard, and
//! a decision for every state-changing command (audited `policy.decide` with the policy ids
//! that decided it). `keyward policy validate|test|init` live in `cmd_policy`.
//!
//! The policy set: the built-in roles, and the directory first found of `KEYWARD_POLICIES`,
//! `policy.dir` in `keyward.yaml` (relative to the file) and `DATA_DIR/policies` (the
//! built-in roles leave with `policy.builtin: false`). Without an `entities.json`, the
//! person at the command line is an admin (they hold the data directory); with one, only
//! what it says.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_policy::load::{self, Loaded};
use keyward_policy::{Act, Ask, Decision, Principal, Resource, Situation, Surface};

use crate::output::{cli_actor, now_ms};

/// `--config` as given (for `policy.dir`) and the data directory, set once by `main`.
static CONFIG: OnceLock<(Option<PathBuf>, PathBuf)> = OnceLock::new();

pub fn configure(config: Option<PathBuf>, data_dir: PathBuf) {
    let _ = CONFIG.set((config, data_dir));
}

/// Where the policy set comes from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A directory's policies, after the built-in roles when `builtin`.
    Dir {
        dir: PathBuf,
        builtin: bool,
    },
    Builtin,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Dir { dir, builtin: true } => {
                write!(f, "the built-in roles and {}", dir.display())
            }
            Source::Dir {
                dir,
                builtin: false,
            } => write!(f, "{}", dir.display()),
            Source::Builtin => f.write_str("the built-in roles"),
        }
    }
}

/// The policy set in force for `data_dir`.
pub fn source(data_dir: &Path) -> anyhow::Result<Source> {
    let named = CONFIG.get().and_then(|(c, _)| c.clone());
    let config = crate::config::Config::load(named.as_deref(), data_dir)?;
    let builtin = config.policy.builtin.unwrap_or(true);
    if let Some(d) = std::env::var_os("KEYWARD_POLICIES").filter(|d| !d.is_empty()) {
        return Ok(Source::Dir {
            dir: PathBuf::from(d),
            builtin,
        });
    }
    if let Some(dir) = config.policy_dir() {
        return Ok(Source::Dir { dir, builtin });
    }
    let own = data_dir.join("policies");
    Ok(if own.is_dir() {
        Source::Dir { dir: own, builtin }
    } else {
        Source::Builtin
    })
}

/// Loads the set from `source`: every problem, with file and line, on failure.
pub fn load_raw(source: &Source) -> Result<Loaded, keyward_policy::PolicyError> {
    match source {
        Source::Dir { dir, builtin } => load::from_dir(dir, *builtin),
        Source::Builtin => load::builtin(),
    }
}

/// [`load_raw`] for a command that needs the set.
pub fn load_from(source: &Source) -> anyhow::Result<Loaded> {
    load_raw(source).with_context(|| format!("the policies of {source} do not load"))
}

/// The set in force, loaded and validated once per process (`lifecycle run` asks once per
/// identity).
static IN_FORCE: OnceLock<(Source, keyward_policy::Policies)> = OnceLock::new();

fn in_force(data_dir: &Path) -> anyhow::Result<&'static (Source, keyward_policy::Policies)> {
    if let Some(loaded) = IN_FORCE.get() {
        return Ok(loaded);
    }
    let src = source(data_dir)?;
    let policies = load_from(&src)?.policies;
    Ok(IN_FORCE.get_or_init(|| (src, policies)))
}

/// The person at the keyboard.
pub fn me() -> Principal {
    Principal::from_cli_actor(&cli_actor())
}

/// A command-line situation at `now`: from 127.0.0.1, surface `cli`.
pub fn here() -> Situation {
    Situation {
        now: now_ms(),
        surface: Surface::Cli,
        ..Situation::default()
    }
}

/// [`require`] on the identity `id` (its facts from the inventory), with `situation`
/// adding the case's own (break-glass, requester, length).
pub fn require_on(
    engine: &mut Engine,
    action: Act,
    id: &str,
    situation: impl FnOnce(&mut Situation),
) -> anyhow::Result<Decision> {
    let mut s = here();
    let resource = engine.policy_resource(id, &mut s)?;
    situation(&mut s);
    require(engine, action, &resource, &s)
}

/// Asks the policy whether the person at the keyboard may do `action` on `resource`;
/// audits the decision; an error saying who decided when it is a deny.
pub fn require(
    engine: &mut Engine,
    action: Act,
    resource: &Resource,
    situation: &Situation,
) -> anyhow::Result<Decision> {
    let data_dir = CONFIG
        .get()
        .map_or_else(|| PathBuf::from("."), |(_, d)| d.clone());
    let data_dir = data_dir.as_path();
    let (src, policies) = in_force(data_dir)?;
    let principal = me();
    let ask = Ask {
        principal: &principal,
        action,
        resource,
        situation,
    };
    let decision = policies.decide(&ask);
    engine.audit(&keyward_engine::authz::decision_entry(&decision, &ask))?;
    if !decision.allowed {
        anyhow::bail!(
            "refused by policy: {} (policies: {src})",
            decision.denial(&ask)
        );
    }
    Ok(decision)
}
