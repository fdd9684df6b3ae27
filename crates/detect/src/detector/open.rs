//! An open finding as the detector holds it (found by a keyed hash of its rule and
//! principal, its evidence and actors listed by hash), and what folds into its details.

use serde_json::Value;

use crate::finding::Finding;

/// Why a finding is expected, in its details.
const EXPECTED_WHY: &str = "the identity matched this rule in every week of its training window";

/// Notes in `details` why the finding is expected.
pub(super) fn mark_expected(details: &mut Value) {
    if let Value::Object(m) = details {
        m.insert("expected".into(), Value::String(EXPECTED_WHY.into()));
    }
}

/// Acting identities (sessions, keys) listed in a finding about their principal.
pub(super) const MAX_ACTORS: usize = 20;

/// A finding's merge key: the keyed hash ([`crate::keyed_hash`]) of its rule index and
/// principal (a role for all its sessions): one incident is one finding, whatever its
/// matches' subjects. A match finds its open finding
/// without reading the stored strings (rarely in cache) or allocating a key; two keys
/// agree by chance with probability 2⁻⁶⁴, and nobody without the process's key can aim
/// for it.
pub(super) type Key = u64;

pub(super) fn merge_key(idx: usize, principal: &str) -> Key {
    crate::keyed_hash(&(idx, principal))
}

/// A threat finding that later matches of the same rule and principal extend
/// (see [`Detector::emit`]), and whether it changed since the last
/// [`Detector::take_findings`]. The value of [`Detector`]'s map of open findings, keyed by
/// [`merge_key`].
///
/// A repeat match checks its event id and actor against those already listed. The lists'
/// strings are separate allocations, rarely in cache by the next match; their keyed hashes
/// ([`crate::keyed_hash`]) are kept here, side by side, and compared instead.
pub(super) struct OpenFinding {
    pub(super) finding: Finding,
    pub(super) changed: bool,
    /// Hashes of `finding.events`, in the same order (evidence is only ever added to an
    /// open finding through [`OpenFinding::add_evidence`], which keeps both in step).
    evidence: Vec<u64>,
    /// Hashes of the `actors` listed in `finding.details`, when it lists them.
    actors: Option<Vec<u64>>,
}

impl OpenFinding {
    pub(super) fn new(finding: Finding, changed: bool) -> Self {
        let evidence = finding.events.iter().map(crate::keyed_hash).collect();
        let actors = match finding.details.get("actors") {
            Some(Value::Array(list)) => Some(
                list.iter()
                    .map(|x| x.as_str().map_or(0, crate::keyed_hash))
                    .collect(),
            ),
            _ => None,
        };
        OpenFinding {
            finding,
            changed,
            evidence,
            actors,
        }
    }

    /// [`Finding::add_evidence`], by keyed hash.
    pub(super) fn add_evidence(&mut self, id: &str) {
        let f = &mut self.finding;
        let h = crate::keyed_hash(id);
        if self.evidence.contains(&h) {
            return;
        }
        // A full list drops its second entry (the first is kept: how it started).
        if f.events.len() >= crate::finding::MAX_EVIDENCE && self.evidence.len() > 1 {
            self.evidence.remove(1);
        }
        f.push_evidence(id);
        self.evidence.push(h);
    }

    /// Lists `actor` in the finding's `actors` when it keeps such a list, has room and
    /// does not hold it yet.
    pub(super) fn add_actor(&mut self, actor: &str) {
        let Some(hashes) = self.actors.as_mut() else {
            return;
        };
        if hashes.len() >= MAX_ACTORS {
            return;
        }
        // Compared by keyed hash: the listed strings are not read.
        let h = crate::keyed_hash(actor);
        if hashes.contains(&h) {
            return;
        }
        let Some(Value::Array(list)) = self.finding.details.get_mut("actors") else {
            return;
        };
        list.push(Value::String(actor.to_owned()));
        hashes.push(h);
    }
}

/// Adds the items of `facts`' lists missing from the same lists of `details`, each list
/// capped at [`MAX_ACTORS`] items.
pub(super) fn union_lists(details: &mut Value, facts: &Value) {
    let (Value::Object(into), Value::Object(from)) = (details, facts) else {
        return;
    };
    for (k, v) in from {
        let (Some(Value::Array(have)), Value::Array(more)) = (into.get_mut(k), v) else {
            continue;
        };
        for x in more {
            if have.len() >= MAX_ACTORS {
                break;
            }
            if !have.contains(x) {
                have.push(x.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::finding::MAX_EVIDENCE;
    use serde_json::json;

    /// The hashed lists of an open finding give exactly what the plain finding's own
    /// string comparisons give: ids once, the first and the newest kept, actors once.
    #[test]
    fn open_finding_lists_agree_with_the_finding() {
        let start = Finding {
            events: vec!["e0".into()],
            details: json!({"actors": ["a0"]}),
            ..Finding::blank()
        };
        let mut plain = start.clone();
        let mut active = OpenFinding::new(start, false);
        for n in 0..400u32 {
            // Repeats of recent ids, of the first, and of ids long since dropped.
            let id = format!("e{}", (n * 7) % 53);
            plain.add_evidence(&id);
            active.add_evidence(&id);
            assert_eq!(active.finding.events, plain.events, "after {id}");
            assert_eq!(active.evidence.len(), plain.events.len());
            let actor = format!("a{}", (n * 3) % 31);
            if let Some(Value::Array(list)) = plain.details.get_mut("actors")
                && list.len() < MAX_ACTORS
                && !list.iter().any(|x| x.as_str() == Some(actor.as_str()))
            {
                list.push(Value::String(actor.clone()));
            }
            active.add_actor(&actor);
            assert_eq!(active.finding.details, plain.details, "after {actor}");
        }
        assert_eq!(plain.events.len(), MAX_EVIDENCE);
        assert_eq!(
            plain.details["actors"].as_array().unwrap().len(),
            MAX_ACTORS
        );
        // Without an `actors` list, none is started.
        let mut bare = OpenFinding::new(
            Finding {
                details: json!({}),
                ..plain
            },
            false,
        );
        bare.add_actor("a1");
        assert_eq!(bare.finding.details, json!({}));
    }
}
