//! Declarative playbooks: a trigger, conditions, and steps — connector actions made into
//! ordinary response plans, waits, approvals, webhook notifications, tag checks. Pure:
//! this module parses and checks a playbook, says whether a trigger or a condition holds
//! for a [`Subject`], and substitutes `${…}` variables; the engine runs them
//! (`keyward_engine::playbook`), persisting each run's state so a restart resumes it.
//!
//! ```yaml
//! name: payment-service-onboard
//! description: a new payment service gets a short-lived OpenBao token in its Secret
//! trigger:
//!   inventory: { source: terraform, type: aws_iam_role, tags: { service: payments } }
//! conditions:
//!   kind: [iam_role]
//! steps:
//!   - validate_tags: [owner, team, data_class]
//!   - vault_issue: { role: payments, ttl: 48h, into: "k8s:payments/${identity.name}-vault" }
//!   - notify: { url: "https://hooks.example/keyward", message: "issued for ${identity}" }
//! ```
//! Parsing is two stages: [`Playbook::parse`] reads the YAML (unknown fields refused, errors
//! with the file and line), then [`Playbook::check`] validates durations, globs, locations
//! and every `${…}` variable, so a bad playbook is refused when loaded, never mid-run.

mod duration;
pub mod run;
mod subject;

pub use duration::{format_duration, parse_duration};
pub use subject::{EventFacts, FindingFacts, Subject, SubjectMatch};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rotate::SecretLocation;

/// One playbook as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// Lowercase letters, digits and `-`; unique among loaded playbooks.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// What starts a run. Absent: only `keyward playbook run NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// What must hold of the subject for a triggered run to start (else no run).
    #[serde(default)]
    pub conditions: Conditions,
    pub steps: Vec<StepSpec>,
}

/// What starts a run (exactly one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// A normalized event matching every given field.
    Event(EventMatch),
    /// An open alert finding.
    Finding(FindingMatch),
    /// Every `every`, for each subject `for_each` selects (or once, with no subject).
    Schedule(Schedule),
    /// A new or changed identity (or Terraform resource) matching.
    Inventory(SubjectMatch),
}

impl Trigger {
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Event(_) => "event",
            Trigger::Finding(_) => "finding",
            Trigger::Schedule(_) => "schedule",
            Trigger::Inventory(_) => "inventory",
        }
    }
}

/// Globs over a normalized event's fields; every one given must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventMatch {
    /// The API call or verb: `CreateAccessKey` (or `iam.amazonaws.com:CreateAccessKey`, as
    /// events name it), `create`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The source format (`cloudtrail`, `k8s-audit`, `github`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The acting principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The identity the event is attributed to (canonical id or name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// What it acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Which findings start a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingMatch {
    /// Rule id globs; any of the finding's rules may match. Empty: any rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// The least severity (`info` … `critical`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// A glob over the finding's identity (canonical id or name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// A schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// `24h`, `7d`, `30m`.
    pub every: String,
    /// The first run's time (RFC 3339); default: one period after the subject is first seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// The subjects a run is started for at each period; absent: one run with no subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<SubjectMatch>,
}

/// What the subject must be for a triggered run to start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Tags that must be present and non-empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require_tags: Vec<String>,
    /// Identity kinds allowed (`iam_role`, `iam_user`, `service_account`…). Empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kind: Vec<String>,
    /// Field globs: `name`, `id`, `platform`, `source`, `tags.KEY`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub r#match: BTreeMap<String, String>,
    /// A credential (access key) older than this (`90d`) must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_older_than: Option<String>,
}

/// One step (a one-key map in YAML: `- wait: 10m`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StepSpec {
    /// The subject's tags must all be present and non-empty; else the run stops, naming
    /// the missing ones.
    ValidateTags(Vec<String>),
    /// An IAM user's access key rotated without downtime (`keyward rotate`).
    Rotate(TargetStep),
    /// The identity and every identity linked to it contained (`keyward disable`).
    Disable(TargetStep),
    /// The identity's last executed plan undone (`keyward enable`).
    Enable(TargetStep),
    /// A containment plan (`keyward respond plan`) for a finding or an identity.
    Contain(ContainStep),
    /// Self-healing: the identity's live state read through AWS and put back to its
    /// approved baseline (`keyward drift --revert`); nothing when it has no baseline or
    /// has not drifted.
    RevertDrift(TargetStep),
    /// A short-lived OpenBao/Vault token from a token role, written into a destination.
    VaultIssue(VaultTokenStep),
    /// The token in a destination replaced without downtime (issue → write → verify →
    /// revoke the old accessor).
    VaultRotate(VaultTokenStep),
    /// The tokens last written into these destinations revoked at once.
    VaultRevoke(VaultRevokeStep),
    /// The run sleeps (`24h`); the wake-up time is persisted.
    Wait(String),
    /// The run pauses until someone other than its starter approves it.
    Approval(ApprovalStep),
    /// A JSON summary POSTed to a webhook (never a secret).
    Notify(NotifyStep),
}

impl StepSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            StepSpec::ValidateTags(_) => "validate_tags",
            StepSpec::Rotate(_) => "rotate",
            StepSpec::Disable(_) => "disable",
            StepSpec::Enable(_) => "enable",
            StepSpec::Contain(_) => "contain",
            StepSpec::RevertDrift(_) => "revert_drift",
            StepSpec::VaultIssue(_) => "vault_issue",
            StepSpec::VaultRotate(_) => "vault_rotate",
            StepSpec::VaultRevoke(_) => "vault_revoke",
            StepSpec::Wait(_) => "wait",
            StepSpec::Approval(_) => "approval",
            StepSpec::Notify(_) => "notify",
        }
    }

    /// Whether the step becomes a response plan executed through the connectors.
    pub fn makes_plan(&self) -> bool {
        match self {
            StepSpec::Rotate(_)
            | StepSpec::Disable(_)
            | StepSpec::Enable(_)
            | StepSpec::Contain(_)
            | StepSpec::RevertDrift(_)
            | StepSpec::VaultIssue(_)
            | StepSpec::VaultRotate(_)
            | StepSpec::VaultRevoke(_) => true,
            StepSpec::ValidateTags(_)
            | StepSpec::Wait(_)
            | StepSpec::Approval(_)
            | StepSpec::Notify(_) => false,
        }
    }

    /// Every string of the step that `${…}` may appear in, mutably.
    fn strings_mut(&mut self) -> Vec<&mut String> {
        match self {
            StepSpec::ValidateTags(v) => v.iter_mut().collect(),
            StepSpec::Rotate(t)
            | StepSpec::Disable(t)
            | StepSpec::Enable(t)
            | StepSpec::RevertDrift(t) => t.identity.iter_mut().collect(),
            StepSpec::Contain(c) => c.target.iter_mut().chain(c.since.iter_mut()).collect(),
            StepSpec::VaultIssue(v) | StepSpec::VaultRotate(v) => {
                let mut out: Vec<&mut String> = vec![&mut v.role, &mut v.ttl, &mut v.into];
                out.extend(v.key.iter_mut());
                out.extend(v.policies.iter_mut());
                out.extend(v.meta.values_mut());
                out
            }
            StepSpec::VaultRevoke(r) => r.from.iter_mut().collect(),
            StepSpec::Wait(d) => vec![d],
            StepSpec::Approval(a) => a.reason.iter_mut().collect(),
            StepSpec::Notify(n) => std::iter::once(&mut n.url)
                .chain(n.message.iter_mut())
                .collect(),
        }
    }
}

/// A step on one identity: the run's subject unless `identity` names another.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// A containment plan's target: a finding id or an identity (default: the triggering
/// finding, else the subject).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Also revoke what it created after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Contain Kubernetes service accounts the blue-green way.
    #[serde(default)]
    pub blue_green: bool,
}

/// A token from a token role written into a destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultTokenStep {
    /// The token role (`auth/token/roles/ROLE`).
    pub role: String,
    /// The token's time to live (`48h`): longer than the rotation period.
    pub ttl: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
    /// `k8s:NAMESPACE/NAME` or `vault:MOUNT/PATH`.
    pub into: String,
    /// The entry that holds the token (default `VAULT_TOKEN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// The entry of a destination that holds a token when a step names none.
pub const DEFAULT_TOKEN_KEY: &str = "VAULT_TOKEN";

/// Tokens to revoke: the ones last written into these destinations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultRevokeStep {
    pub from: Vec<String>,
}

/// An approval gate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalStep {
    /// What the approver is asked (shown by `keyward playbook status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A webhook notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyStep {
    /// `http://` or `https://`.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Why a playbook was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    /// The YAML did not parse (the message names the line and column).
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    /// It parsed but is not a valid playbook.
    #[error("{path}: playbook `{name}`: {message}")]
    Invalid {
        path: String,
        name: String,
        message: String,
    },
}

/// Severities, least first.
pub const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

/// A severity's rank (0 = info), case-insensitive.
pub fn severity_rank(s: &str) -> Option<usize> {
    SEVERITIES.iter().position(|x| x.eq_ignore_ascii_case(s))
}

/// A glob over ids and names, case-insensitive, `*` crossing `/` and `:`.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    match globset::GlobBuilder::new(pattern)
        .case_insensitive(true)
        .literal_separator(false)
        .build()
    {
        Ok(g) => g.compile_matcher().is_match(s),
        Err(_) => pattern.eq_ignore_ascii_case(s),
    }
}

fn check_glob(p: &str) -> Result<(), String> {
    globset::GlobBuilder::new(p)
        .build()
        .map(|_| ())
        .map_err(|e| format!("bad glob `{p}`: {e}"))
}

/// The variables a step may use: `${identity}` (the subject's canonical id),
/// `${identity.id|name|kind|platform|account}`, `${identity.tags.KEY}`, `${trigger.kind}`,
/// `${trigger.finding|rule|severity|event|action|actor|target|time}`, `${run}`.
pub const VARIABLES: [&str; 16] = [
    "identity",
    "identity.id",
    "identity.name",
    "identity.kind",
    "identity.platform",
    "identity.account",
    "trigger.kind",
    "trigger.finding",
    "trigger.rule",
    "trigger.severity",
    "trigger.event",
    "trigger.action",
    "trigger.actor",
    "trigger.target",
    "trigger.time",
    "run",
];

fn known_variable(v: &str) -> bool {
    VARIABLES.contains(&v)
        || v.strip_prefix("identity.tags.")
            .is_some_and(|t| !t.is_empty())
}

/// The `${…}` names in `s`, or why it is malformed (an unclosed `${`).
pub fn variables(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        let after = rest.get(i + 2..).unwrap_or_default();
        let Some(j) = after.find('}') else {
            return Err(format!("unclosed `${{` in `{s}`"));
        };
        out.push(after.get(..j).unwrap_or_default());
        rest = after.get(j + 1..).unwrap_or_default();
    }
    Ok(out)
}

/// `s` with every `${name}` replaced by `lookup(name)`; a name it does not know is an error.
pub fn substitute(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(rest.get(..i).unwrap_or_default());
        let after = rest.get(i + 2..).unwrap_or_default();
        let Some(j) = after.find('}') else {
            return Err(format!("unclosed `${{` in `{s}`"));
        };
        let name = after.get(..j).unwrap_or_default();
        let value = lookup(name).ok_or_else(|| format!("`${{{name}}}` has no value here"))?;
        out.push_str(&value);
        rest = after.get(j + 1..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(out)
}

impl Playbook {
    /// Parses and checks one playbook file; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<Playbook, PlaybookError> {
        let opts = serde_saphyr::options! { strict_booleans: true };
        let p: Playbook =
            serde_saphyr::from_str_with_options(text, opts).map_err(|e| PlaybookError::Syntax {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        p.check().map_err(|message| PlaybookError::Invalid {
            path: path.to_owned(),
            name: p.name.clone(),
            message,
        })?;
        Ok(p)
    }

    /// The validation pass: names, durations, globs, severities, locations, variables.
    pub fn check(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return Err("`name` must be 1 to 64 lowercase letters, digits and `-`".into());
        }
        if self.steps.is_empty() {
            return Err("`steps` is empty".into());
        }
        match &self.trigger {
            None => {}
            Some(Trigger::Event(m)) => {
                let globs = [&m.action, &m.source, &m.actor, &m.identity, &m.target];
                if globs.iter().all(|g| g.is_none()) {
                    return Err(
                        "the event trigger names no field (it would match every event)".into(),
                    );
                }
                for g in globs.into_iter().flatten() {
                    check_glob(g)?;
                }
            }
            Some(Trigger::Finding(m)) => {
                for r in &m.rules {
                    check_glob(r)?;
                }
                if let Some(i) = &m.identity {
                    check_glob(i)?;
                }
                if let Some(s) = &m.severity
                    && severity_rank(s).is_none()
                {
                    return Err(format!(
                        "severity `{s}` is not one of {}",
                        SEVERITIES.join(", ")
                    ));
                }
            }
            Some(Trigger::Schedule(s)) => {
                let every = parse_duration(&s.every)?;
                if every < 60_000 {
                    return Err(format!("schedule every `{}`: at least 1m", s.every));
                }
                if let Some(start) = &s.start {
                    keyward_model::time::parse(start).ok_or_else(|| {
                        format!("schedule start `{start}` is not an RFC 3339 time")
                    })?;
                }
                if let Some(m) = &s.for_each {
                    m.check()?;
                }
            }
            Some(Trigger::Inventory(m)) => {
                m.check()?;
                if m.is_empty() {
                    return Err(
                        "the inventory trigger names nothing to match (it would match every identity)"
                            .into(),
                    );
                }
            }
        }
        for (k, g) in &self.conditions.r#match {
            if !(matches!(k.as_str(), "name" | "id" | "platform" | "source" | "kind")
                || k.strip_prefix("tags.").is_some_and(|t| !t.is_empty()))
            {
                return Err(format!(
                    "condition match on `{k}`: use name, id, kind, platform, source or tags.KEY"
                ));
            }
            check_glob(g)?;
        }
        if let Some(d) = &self.conditions.credential_older_than {
            parse_duration(d)?;
        }
        let mut copy = self.steps.clone();
        for (i, step) in copy.iter_mut().enumerate() {
            let n = i + 1;
            let kind = step.kind();
            let at = |m: String| format!("step {n} ({kind}): {m}");
            for s in step.strings_mut() {
                for v in variables(s).map_err(&at)? {
                    if !known_variable(v) {
                        return Err(at(format!(
                            "unknown variable `${{{v}}}` (known: {}, identity.tags.KEY)",
                            VARIABLES.join(", ")
                        )));
                    }
                }
            }
            check_step(step).map_err(at)?;
        }
        Ok(())
    }

    /// Whether the subject meets the playbook's conditions; `Err` names the first that
    /// does not hold.
    pub fn conditions_hold(
        &self,
        s: &Subject,
        now: keyward_model::time::Millis,
    ) -> Result<(), String> {
        let c = &self.conditions;
        if let Some(missing) = s.missing_tags(&c.require_tags) {
            return Err(format!("missing tags: {missing}"));
        }
        if !c.kind.is_empty() && !c.kind.iter().any(|k| k.eq_ignore_ascii_case(&s.kind)) {
            return Err(format!(
                "kind {} is not one of {}",
                s.kind,
                c.kind.join(", ")
            ));
        }
        for (field, g) in &c.r#match {
            let v = s.field(field).unwrap_or_default();
            if !glob_match(g, &v) {
                return Err(format!("{field} `{v}` does not match `{g}`"));
            }
        }
        if let Some(d) = &c.credential_older_than {
            let age = parse_duration(d)?;
            if !s.credential_created.iter().any(|t| now - t > age) {
                return Err(format!("no credential older than {d}"));
            }
        }
        Ok(())
    }
}

/// A step's own checks, on its text before substitution (a value holding `${…}` is
/// checked once substituted, at run time).
fn check_step(step: &StepSpec) -> Result<(), String> {
    let literal = |s: &str| !s.contains("${");
    match step {
        StepSpec::ValidateTags(tags) if tags.is_empty() => Err("names no tag".into()),
        StepSpec::ValidateTags(_)
        | StepSpec::Rotate(_)
        | StepSpec::Disable(_)
        | StepSpec::Enable(_)
        | StepSpec::RevertDrift(_)
        | StepSpec::Approval(_) => Ok(()),
        StepSpec::Contain(c) => match &c.since {
            Some(s) if literal(s) && keyward_model::time::parse(s).is_none() => {
                Err(format!("since `{s}` is not an RFC 3339 time"))
            }
            _ => Ok(()),
        },
        StepSpec::VaultIssue(v) | StepSpec::VaultRotate(v) => {
            if literal(&v.ttl) {
                parse_duration(&v.ttl)?;
            }
            if v.role.is_empty() {
                return Err("`role` is empty".into());
            }
            if literal(&v.into) {
                SecretLocation::parse(&v.into)?;
            }
            Ok(())
        }
        StepSpec::VaultRevoke(r) => {
            if r.from.is_empty() {
                return Err("`from` names no destination".into());
            }
            for l in r.from.iter().filter(|l| literal(l)) {
                SecretLocation::parse(l)?;
            }
            Ok(())
        }
        StepSpec::Wait(d) => {
            if literal(d) {
                parse_duration(d)?;
            }
            Ok(())
        }
        StepSpec::Notify(n) => {
            if !(n.url.starts_with("http://") || n.url.starts_with("https://")) {
                return Err(format!("url `{}` is not http:// or https://", n.url));
            }
            Ok(())
        }
    }
}

/// `step` with every `${…}` replaced through `lookup`.
pub fn resolve_step(
    step: &StepSpec,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<StepSpec, String> {
    let mut out = step.clone();
    for s in out.strings_mut() {
        *s = substitute(s, lookup)?;
    }
    check_step(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests;

/// The playbooks built into the binary, `(file name, text)`: the seed workflow. A playbook
/// of the same name in the playbooks directory replaces one.
pub const BUILTIN: [(&str, &str); 4] = [
    (
        "seed-service-onboard.yaml",
        include_str!("../../../../examples/playbooks/seed-service-onboard.yaml"),
    ),
    (
        "seed-service-rotate.yaml",
        include_str!("../../../../examples/playbooks/seed-service-rotate.yaml"),
    ),
    (
        "seed-service-revoke.yaml",
        include_str!("../../../../examples/playbooks/seed-service-revoke.yaml"),
    ),
    (
        "self-heal-drift.yaml",
        include_str!("../../../../examples/playbooks/self-heal-drift.yaml"),
    ),
];
