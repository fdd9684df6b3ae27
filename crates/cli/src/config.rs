//! `keyward.yaml`: the policies a team sets once instead of passing flags every time —
//! retirement (unused days, grace period, what is exempt), rotation (schedules, grace
//! period, where keys live that no connected store can show) and AI agents' declared
//! purposes (what each may do, judged after every ingest). Read from `--config FILE`
//! (or `KEYWARD_CONFIG`), else `./keyward.yaml`, else `keyward.yaml` in the data directory;
//! none is fine (the defaults apply). A flag given on the command line wins over the file.
//! Unknown keys are errors (a typo must not silently fall back to a default), reported with
//! the file and line.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use keyward_respond::rotate::SecretLocation;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub lifecycle: Lifecycle,
    #[serde(default)]
    pub rotation: Rotation,
    #[serde(default)]
    pub policy: PolicySection,
    #[serde(default)]
    pub agents: Agents,
    /// The credential broker of `keyward serve` (`/broker/…`); off without this section.
    #[serde(default)]
    pub broker: Option<crate::broker_config::BrokerSection>,
    /// Where it was read from (none: defaults).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// Who may do what (`keyward policy`): a directory of Cedar policies.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// `.cedar` files and an optional `entities.json`; relative to this file.
    pub dir: Option<PathBuf>,
    /// Whether the built-in roles stay in force beside the directory's policies (default
    /// true; false: the directory is the whole set — start it from `keyward policy builtin`).
    pub builtin: Option<bool>,
}

/// AI agents' declared purposes: an agent acting outside its purpose is a finding
/// (`kw-ai-agent-outside-purpose`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agents {
    /// Purposes by name.
    #[serde(default)]
    pub purposes: std::collections::BTreeMap<String, PurposeSection>,
    /// Which agent has which purpose; the first that matches wins.
    #[serde(default)]
    pub assign: Vec<Assignment>,
}

/// One purpose: the action categories it allows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeSection {
    pub description: Option<String>,
    /// `<service>:<class>`: the service as CloudTrail's `eventSource` names it, without
    /// `.amazonaws.com` (`ce`, `lambda`, `*`), the class one of `read`, `write`, `delete`,
    /// `permissions`, `*`.
    pub allow: Vec<String>,
}

/// An agent (its `gen_ai.agent.id` or name; a glob: `*`, `?`, `[…]`, `{a,b}`) and its purpose.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub agent: String,
    pub purpose: String,
}

/// Retirement (`keyward lifecycle`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lifecycle {
    /// Unused for at least this many days → disabled (default 30).
    pub unused_days: Option<i64>,
    /// Days between disabling and deleting (default 30).
    pub grace_days: Option<i64>,
    /// Whether identities whose workload is gone (a deleted Lambda function's role, a service
    /// account nothing runs as) are retired (default true).
    pub workload_gone: Option<bool>,
    /// Globs over ids, names and ARNs never retired (`*-terraform`, `arn:aws:iam::*:role/ops-*`).
    #[serde(default)]
    pub exempt: Vec<String>,
}

/// Rotation (`keyward rotate`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// Days between deactivating an old key and deleting it (default 7).
    pub grace_days: Option<u32>,
    /// Rotation period of high-privilege identities, days (default 30).
    pub high_privilege_days: Option<u32>,
    /// Rotation period of the others, days (default 90).
    pub standard_days: Option<u32>,
    /// Where keys live that discovery cannot see (a store with no connector here).
    #[serde(default)]
    pub locations: Vec<Declared>,
}

/// Declared locations of one user's key (or of one key).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declared {
    /// The IAM user name whose active key lives there.
    pub user: Option<String>,
    /// Or the access key id.
    pub key: Option<String>,
    /// `secretsmanager:NAME`, `k8s:NAMESPACE/NAME`, `vault:MOUNT/PATH`.
    pub at: Vec<String>,
}

impl Config {
    /// The file named, or the first default that exists, or the defaults.
    pub fn load(named: Option<&Path>, data_dir: &Path) -> anyhow::Result<Config> {
        let path = match named {
            Some(p) => p.to_path_buf(),
            None => match [PathBuf::from("keyward.yaml"), data_dir.join("keyward.yaml")]
                .into_iter()
                .find(|p| p.is_file())
            {
                Some(p) => p,
                None => return Ok(Config::default()),
            },
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the configuration `{}`", path.display()))?;
        let mut c = Config::parse(&text)
            .with_context(|| format!("in the configuration `{}`", path.display()))?;
        c.path = Some(path);
        Ok(c)
    }

    /// Parses and checks the text.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let opts = serde_saphyr::options! { strict_booleans: true };
        let c: Config = serde_saphyr::from_str_with_options(text, opts)?;
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> anyhow::Result<()> {
        let l = &self.lifecycle;
        if l.unused_days.is_some_and(|d| d < 1) {
            anyhow::bail!("lifecycle.unused_days must be at least 1");
        }
        if l.grace_days.is_some_and(|d| d < 0) {
            anyhow::bail!("lifecycle.grace_days must not be negative");
        }
        keyward_respond::plan::Protected::new(&l.exempt)
            .map_err(|e| anyhow::anyhow!("lifecycle.exempt: {e}"))?;
        let r = &self.rotation;
        for (name, v) in [
            ("high_privilege_days", r.high_privilege_days),
            ("standard_days", r.standard_days),
        ] {
            if v.is_some_and(|d| d < 6) {
                anyhow::bail!("rotation.{name} must be at least 6 days");
            }
        }
        for (i, d) in r.locations.iter().enumerate() {
            if d.user.is_some() == d.key.is_some() {
                anyhow::bail!("rotation.locations[{i}]: name exactly one of `user` and `key`");
            }
            if d.at.is_empty() {
                anyhow::bail!("rotation.locations[{i}]: `at` is empty");
            }
            for a in &d.at {
                SecretLocation::parse(a)
                    .map_err(|e| anyhow::anyhow!("rotation.locations[{i}]: {e}"))?;
            }
        }
        self.intents()?;
        if let Some(b) = &self.broker {
            b.check().map_err(|e| anyhow::anyhow!("broker: {e}"))?;
        }
        Ok(())
    }

    /// The agents' purposes, checked.
    pub fn intents(&self) -> anyhow::Result<keyward_detect::intent::Intents> {
        use keyward_detect::intent::{Intents, Purpose};
        let purposes = self
            .agents
            .purposes
            .iter()
            .map(|(name, p)| Purpose::new(name, p.description.clone(), &p.allow))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("agents.purposes: {e}"))?;
        let assign = self
            .agents
            .assign
            .iter()
            .map(|a| (a.agent.clone(), a.purpose.clone()))
            .collect();
        Intents::new(purposes, assign).map_err(|e| anyhow::anyhow!("agents.assign: {e}"))
    }

    /// `policy.dir`, relative to the file's own directory.
    pub fn policy_dir(&self) -> Option<PathBuf> {
        let d = self.policy.dir.as_ref()?;
        Some(match self.path.as_deref().and_then(Path::parent) {
            Some(base) if d.is_relative() => base.join(d),
            Some(_) | None => d.clone(),
        })
    }

    /// The locations declared for this user or key.
    pub fn declared_locations(&self, user: &str, key_id: &str) -> Vec<SecretLocation> {
        self.rotation
            .locations
            .iter()
            .filter(|d| d.user.as_deref() == Some(user) || d.key.as_deref() == Some(key_id))
            .flat_map(|d| d.at.iter().filter_map(|a| SecretLocation::parse(a).ok()))
            .collect()
    }

    /// Days between deactivating an old key and deleting it.
    pub fn rotation_grace(&self, flag: Option<u32>) -> u32 {
        flag.or(self.rotation.grace_days).unwrap_or(7)
    }

    /// Where the settings came from, for a line of output.
    pub fn source(&self) -> String {
        match &self.path {
            Some(p) => format!("configuration {}", p.display()),
            None => "no configuration file (defaults)".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_parses() {
        let text = include_str!("../../../examples/keyward.yaml");
        let c = Config::parse(text).expect("the example parses");
        assert_eq!(c.lifecycle.unused_days, Some(30));
        assert!(!c.rotation.locations.is_empty());
        let intents = c.intents().expect("the example's purposes are valid");
        assert!(
            intents
                .purpose_of("ai:agent/asst_finops_01", "finops-agent")
                .is_some()
        );
    }

    #[test]
    fn a_typo_is_an_error_with_its_line() {
        let e = Config::parse("lifecycle:\n  unused_day: 10\n").unwrap_err();
        let text = format!("{e:#}");
        assert!(text.contains("unused_day"), "{text}");
        assert!(text.contains("line 2") || text.contains("2:"), "{text}");
    }

    #[test]
    fn bad_values_are_refused() {
        for (yaml, says) in [
            ("lifecycle: {unused_days: 0}", "unused_days"),
            ("lifecycle: {exempt: ['a[']}", "exempt"),
            ("rotation: {standard_days: 2}", "standard_days"),
            (
                "rotation: {locations: [{user: a, at: ['s3:x']}]}",
                "not a secret location",
            ),
            (
                "rotation: {locations: [{user: a, key: b, at: ['k8s:a/b']}]}",
                "exactly one",
            ),
            (
                "agents: {purposes: {costs: {allow: ['ce:reads']}}}",
                "`ce:reads` is not a category",
            ),
            (
                "agents: {purposes: {costs: {allow: ['ce:read']}}, assign: [{agent: a, purpose: other}]}",
                "undeclared purpose `other`",
            ),
        ] {
            let e = format!("{:#}", Config::parse(yaml).unwrap_err());
            assert!(e.contains(says), "{yaml}: {e}");
        }
    }

    #[test]
    fn declared_locations_match_by_user_or_key() {
        let c = Config::parse(
            "rotation:\n  locations:\n    - user: ci\n      at: [k8s:ci/aws]\n    - key: AKIAKEY\n      at: [vault:secret/app]\n",
        )
        .expect("parses");
        assert_eq!(c.declared_locations("ci", "AKIAOTHER").len(), 1);
        assert_eq!(c.declared_locations("other", "AKIAKEY").len(), 1);
        assert!(c.declared_locations("other", "AKIAOTHER").is_empty());
    }
}
