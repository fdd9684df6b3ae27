//! Least privilege from observed use (`keyward rightsize`): what an IAM role or user
//! actually called over a window of CloudTrail, against what its policies grant today, and
//! the smaller policy that would do (Repokid's idea). Pure: the engine hands in the calls
//! it stored and the policies of the last authorization-details snapshot.
//!
//! Safety first: a window the logs do not cover, or one with no calls at all, is refused
//! ([`Refusal`]) — no log read must never read as "nothing used". Data events (S3 objects,
//! Lambda invocations, DynamoDB items) are only in CloudTrail when a trail asks for them,
//! so a granted data-event action is kept unless the identity's calls show them logged.
//! The proposal never grants more than today: a resource is narrowed to the ARNs the calls
//! named when every call named one, else it keeps the granting statements' resources.

pub mod map;
pub mod plan;
pub mod render;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use keyward_graph::iam::authz::Sourced;
use keyward_graph::iam::policy::action_glob;
use keyward_model::time::Millis;
use serde::Serialize;
use serde_json::{Value, json};

pub use map::{Skip, iam_action};

const DAY: Millis = 86_400_000;

/// The inline policy the proposal is put as.
pub const POLICY_NAME: &str = "KeywardRightsized";

/// One stored CloudTrail call by the identity, inside the window.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// `eventSource:eventName`, as the engine stores it.
    pub action: &'a str,
    /// What the call named (`roleArn`, a user name), if anything.
    pub target: Option<&'a str>,
    pub error_code: Option<&'a str>,
}

/// What a rightsizing is computed from.
pub struct Input<'a> {
    /// The identity's canonical id (its ARN).
    pub identity: &'a str,
    pub days: u32,
    /// The end of the window (the newest stored event: reports run over ingested history).
    pub now: Millis,
    /// How far the account's CloudTrail reaches (first and last sighting), if at all.
    pub coverage: Option<(Millis, Millis)>,
    pub calls: &'a [Call<'a>],
    /// The identity's policies as the last snapshot resolved them.
    pub grants: &'a [Sourced],
    /// Managed policies referenced but absent from the snapshot.
    pub unresolved: &'a [String],
}

/// Why no proposal is made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no CloudTrail covers the account of `{identity}`: nothing says what it used")]
    NoLogs { identity: String },
    #[error(
        "the CloudTrail read covers {covered} of the {days} days asked for `{identity}`: ingest more history or ask for fewer days (--days {covered})"
    )]
    ThinWindow {
        identity: String,
        days: u32,
        covered: u32,
    },
    #[error(
        "the CloudTrail read for the account of `{identity}` stops {days_short} days before the window ends: its recent use is unknown"
    )]
    StaleLogs { identity: String, days_short: u32 },
    #[error(
        "no calls by `{identity}` in the last {days} days: refusing to propose removing everything"
    )]
    NoCalls { identity: String, days: u32 },
    #[error("no policies of `{identity}` in the IAM snapshot: nothing to compare with")]
    NoPolicies { identity: String },
}

/// One action the identity used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Used {
    pub action: String,
    pub calls: u64,
    /// What the proposal grants it on: the ARNs its calls named when every call named one
    /// (`narrowed`), else the granting statements' resources.
    pub resources: Vec<String>,
    pub narrowed: bool,
}

/// One granted action pattern no observed call needed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Unused {
    /// Where it is granted (`inline:<name>`, `managed:<arn>`, `group:<g>/…`).
    pub source: String,
    pub action: String,
}

/// A granted action kept although no call used it, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kept {
    pub action: String,
    pub why: String,
}

/// The outcome: use, the difference with today's grants, and the proposal.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub identity: String,
    pub days: u32,
    pub from: Millis,
    pub to: Millis,
    /// Calls read and counted.
    pub calls: u64,
    /// Calls not counted, by [`Skip::as_str`].
    pub skipped: BTreeMap<String, u64>,
    /// Used actions by service.
    pub used: BTreeMap<String, Vec<Used>>,
    pub kept: Vec<Kept>,
    pub unused: Vec<Unused>,
    /// Services granted with no call to them.
    pub unused_services: Vec<String>,
    /// Action patterns granted today (all sources) and actions in the proposal.
    pub granted_patterns: usize,
    pub proposed_actions: usize,
    /// The least-privilege policy document.
    pub proposal: Value,
    /// The identity's own policies the proposal replaces (`inline:<name>`, `managed:<arn>`).
    pub replaces: Vec<String>,
    /// Policies it does not touch (a group's: shared with others), said, not changed.
    pub untouched: Vec<String>,
    /// What stops `--execute` (the proposal would lose something); empty when it may run.
    pub blockers: Vec<String>,
    pub notes: Vec<String>,
}

/// A granted action pattern with its statement's resources.
struct Grant<'p> {
    source: &'p str,
    action: &'p str,
    resources: Vec<String>,
    conditional: bool,
}

fn grants(sources: &[Sourced]) -> Vec<Grant<'_>> {
    let mut out = Vec::new();
    for s in sources
        .iter()
        .filter(|s| !s.source.starts_with("boundary:"))
    {
        for pat in s.policy.allow_patterns() {
            let resources = pat
                .resources
                .map_or_else(|| vec!["*".to_owned()], <[String]>::to_vec);
            for action in pat.actions {
                out.push(Grant {
                    source: &s.source,
                    action,
                    resources: resources.clone(),
                    conditional: !pat.condition_keys.is_empty(),
                });
            }
        }
    }
    out
}

/// The resources granting statements give `action` (`*` absorbs the rest).
fn granted_resources(grants: &[Grant<'_>], action: &str) -> Option<Vec<String>> {
    let set: BTreeSet<&str> = grants
        .iter()
        .filter(|g| action_glob(g.action, action))
        .flat_map(|g| g.resources.iter().map(String::as_str))
        .collect();
    if set.is_empty() {
        None
    } else if set.contains("*") {
        Some(vec!["*".to_owned()])
    } else {
        Some(set.into_iter().map(str::to_owned).collect())
    }
}

/// Whether the account's logs cover the whole window, from its start to within a day of
/// its end.
pub fn check_window(input: &Input<'_>) -> Result<(), Refusal> {
    let identity = input.identity.to_owned();
    let Some((first, last)) = input.coverage else {
        return Err(Refusal::NoLogs { identity });
    };
    // Another account's logs may run on: this one's must reach the window's end too.
    if last < input.now - DAY {
        let days_short = u32::try_from((input.now - last) / DAY).unwrap_or(u32::MAX);
        return Err(Refusal::StaleLogs {
            identity,
            days_short,
        });
    }
    let start = input.now - Millis::from(input.days) * DAY;
    if first > start {
        let covered = u32::try_from((input.now - first).max(0) / DAY).unwrap_or(u32::MAX);
        return Err(Refusal::ThinWindow {
            identity,
            days: input.days,
            covered,
        });
    }
    Ok(())
}

/// Rightsizes one identity.
pub fn rightsize(input: &Input<'_>) -> Result<Report, Refusal> {
    check_window(input)?;
    if input.grants.is_empty() && input.unresolved.is_empty() {
        return Err(Refusal::NoPolicies {
            identity: input.identity.to_owned(),
        });
    }
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    // action → (calls, ARNs named, calls naming none)
    let mut seen: BTreeMap<String, (u64, BTreeSet<String>, u64)> = BTreeMap::new();
    for c in input.calls {
        match iam_action(c.action, c.error_code) {
            Ok(a) => {
                let e = seen.entry(a).or_default();
                e.0 += 1;
                match c.target.filter(|t| t.starts_with("arn:")) {
                    Some(t) => {
                        e.1.insert(t.to_owned());
                    }
                    None => e.2 += 1,
                }
            }
            Err(skip) => *skipped.entry(skip.as_str().to_owned()).or_default() += 1,
        }
    }
    if seen.is_empty() {
        return Err(Refusal::NoCalls {
            identity: input.identity.to_owned(),
            days: input.days,
        });
    }
    let grants = grants(input.grants);
    let mut notes = Vec::new();
    let mut blockers = Vec::new();
    // (action, resources) of the proposal.
    let mut proposed: Vec<(String, Vec<String>)> = Vec::new();
    let mut used: BTreeMap<String, Vec<Used>> = BTreeMap::new();
    for (action, (calls, arns, unnamed)) in &seen {
        let narrowed = *unnamed == 0 && !arns.is_empty();
        let granted = granted_resources(&grants, action);
        let resources = match (&granted, narrowed) {
            (_, true) => arns.iter().cloned().collect(),
            (Some(r), false) => r.clone(),
            (None, false) => {
                notes.push(format!(
                    "{action} was used but no policy Keyward read grants it (an unresolved managed policy, a resource policy or a NotAction statement): proposed on `*`"
                ));
                vec!["*".to_owned()]
            }
        };
        if granted.is_some()
            && grants
                .iter()
                .filter(|g| action_glob(g.action, action))
                .all(|g| g.conditional)
        {
            blockers.push(format!(
                "{action} is granted only under a condition the proposal does not carry over"
            ));
        }
        used.entry(map::service(action).to_owned())
            .or_default()
            .push(Used {
                action: action.clone(),
                calls: *calls,
                resources: resources.clone(),
                narrowed,
            });
        proposed.push((action.clone(), resources));
    }
    let data_logged: BTreeSet<&str> = seen
        .keys()
        .filter(|a| map::is_data_event(a))
        .map(|a| map::service(a))
        .collect();
    let mut kept = Vec::new();
    for d in map::DATA_EVENT_ACTIONS {
        if seen.contains_key(d) || data_logged.contains(map::service(d)) {
            continue;
        }
        if let Some(resources) = granted_resources(&grants, d) {
            kept.push(Kept {
                action: d.to_owned(),
                why: format!(
                    "a data event: no {} data events of this identity were in the logs read, so its use is unknown",
                    map::service(d)
                ),
            });
            proposed.push((d.to_owned(), resources));
        }
    }
    let needed: Vec<&str> = proposed.iter().map(|(a, _)| a.as_str()).collect();
    let mut unused: Vec<Unused> = grants
        .iter()
        .filter(|g| !needed.iter().any(|a| action_glob(g.action, a)))
        .map(|g| Unused {
            source: g.source.to_owned(),
            action: g.action.to_owned(),
        })
        .collect();
    unused.sort();
    unused.dedup();
    let mut unused_services: Vec<String> = grants
        .iter()
        .map(|g| map::service(g.action))
        .filter(|s| !needed.iter().any(|a| action_glob(s, map::service(a))))
        .map(str::to_owned)
        .collect();
    unused_services.sort();
    unused_services.dedup();
    let (replaces, untouched): (Vec<String>, Vec<String>) = input
        .grants
        .iter()
        .map(|s| s.source.clone())
        .chain(input.unresolved.iter().map(|a| format!("managed:{a}")))
        .filter(|s| !s.starts_with("boundary:"))
        .partition(|s| !s.starts_with("group:"));
    if !untouched.is_empty() {
        notes.push(
            "group policies are shared with the group's other members: they are reported, never changed"
                .into(),
        );
    }
    if !input.unresolved.is_empty() {
        notes.push(format!(
            "managed policies not in the snapshot (what they grant is unknown, they are replaced all the same): {}",
            input.unresolved.join(", ")
        ));
    }
    let mut replaces = replaces;
    replaces.sort();
    replaces.dedup();
    let proposed_actions = proposed.len();
    Ok(Report {
        identity: input.identity.to_owned(),
        days: input.days,
        from: input.now - Millis::from(input.days) * DAY,
        to: input.now,
        calls: seen.values().map(|v| v.0).sum(),
        skipped,
        used,
        kept,
        unused,
        unused_services,
        granted_patterns: grants.len(),
        proposed_actions,
        proposal: document(&proposed),
        replaces,
        untouched,
        blockers,
        notes,
    })
}

/// The policy document: one statement per service and resource list, actions sorted.
fn document(proposed: &[(String, Vec<String>)]) -> Value {
    let mut groups: BTreeMap<(&str, &[String]), BTreeSet<&str>> = BTreeMap::new();
    for (action, resources) in proposed {
        groups
            .entry((map::service(action), resources.as_slice()))
            .or_default()
            .insert(action);
    }
    let mut per_service: BTreeMap<&str, usize> = BTreeMap::new();
    let statements: Vec<Value> = groups
        .into_iter()
        .map(|((service, resources), actions)| {
            let n = per_service.entry(service).or_default();
            *n += 1;
            let mut sid: String = service
                .split(|c: char| !c.is_ascii_alphanumeric())
                .map(|w| {
                    let mut cs = w.chars();
                    cs.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + cs.as_str())
                        .unwrap_or_default()
                })
                .collect();
            if *n > 1 {
                sid.push_str(&n.to_string());
            }
            let resource = match resources {
                [one] => json!(one),
                many => json!(many),
            };
            json!({
                "Sid": sid,
                "Effect": "Allow",
                "Action": actions.into_iter().collect::<Vec<_>>(),
                "Resource": resource,
            })
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}
