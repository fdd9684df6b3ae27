//! Breach rotation campaigns: every IAM user's access key rotated, highest risk first, as
//! one job with one item per user (the engine's `jobs` table stores both). Pure: the item's
//! recorded state and what the platforms show now go in, a decision comes out.
//!
//! An item's state is written **before** and after every platform change: `pending` →
//! `started` (its plan id and start time, before the plan touches anything) → `done`,
//! `failed` (with the reason and the commands that fix it by hand) or `skipped` (with the
//! reason, e.g. a user already holding two keys). A process killed at any moment leaves
//! items `started`; [`converge`] decides, from the live state alone, how each one ends
//! without rotating anything twice and without guessing: what it cannot tell apart is
//! `failed`, with the commands to finish by hand.

use keyward_model::time::Millis;
use serde::{Deserialize, Serialize};

use crate::action::shell_quote as q;
use crate::rotate::SecretLocation;

/// The job kind of a campaign and of its items.
pub const CAMPAIGN_KIND: &str = "rotation_campaign";
pub const ITEM_KIND: &str = "rotation_campaign_item";

/// A campaign's own document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    /// Started because of a breach (`--breach`): every key, now.
    pub breach: bool,
    pub actor: String,
    pub concurrency: usize,
    /// The IAM path prefix the users were listed under (`/` for all).
    pub path_prefix: String,
    pub total: usize,
    pub finished_at: Option<Millis>,
}

/// One user's rotation within a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub user: String,
    pub account: Option<String>,
    /// The key being replaced (the user's only key when the campaign began).
    pub old_key_id: String,
    /// Where the old key lived when the campaign began.
    pub locations: Vec<SecretLocation>,
    /// The inventory's risk score (R) of the user, 0 when unknown.
    pub risk: f64,
    /// When the first attempt started: a key created before it is not this campaign's.
    pub first_started: Option<Millis>,
    /// Every plan made for this item, oldest first.
    pub plans: Vec<String>,
    pub state: ItemState,
}

/// Where an item is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ItemState {
    Pending,
    /// Its plan is stored; platform changes may have happened.
    Started {
        plan: String,
        at: Millis,
    },
    Done {
        new_key_id: String,
        at: Millis,
    },
    Failed {
        reason: String,
        fix: Vec<String>,
    },
    Skipped {
        reason: String,
    },
}

impl ItemState {
    /// The job row's status column.
    pub fn as_str(&self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::Started { .. } => "started",
            ItemState::Done { .. } => "done",
            ItemState::Failed { .. } => "failed",
            ItemState::Skipped { .. } => "skipped",
        }
    }

    /// Done, failed or skipped: a resume leaves it alone.
    pub fn is_final(&self) -> bool {
        match self {
            ItemState::Pending | ItemState::Started { .. } => false,
            ItemState::Done { .. } | ItemState::Failed { .. } | ItemState::Skipped { .. } => true,
        }
    }
}

/// One of a user's access keys as IAM lists it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveKey {
    pub id: String,
    pub active: bool,
    pub created: Option<Millis>,
}

/// What the platforms show of an item now.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub keys: Vec<LiveKey>,
    /// Each of the item's locations and the access key ids it holds now (`None`: it could
    /// not be read, or is gone).
    pub held: Vec<(SecretLocation, Option<Vec<String>>)>,
}

/// What the item's earlier plans recorded.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// New key ids named by a create step's result in a plan not undone.
    pub new_keys: Vec<String>,
    /// A write step's result says it wrote (in a plan not undone).
    pub wrote: bool,
}

/// How a started item ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The old key is Inactive, the one new key Active and in every location.
    Done { new_key_id: String },
    /// Nothing changed on the platforms: rotate as planned.
    Rotate,
    /// A new key exists that no location holds (its secret died with the process): delete
    /// it, then rotate afresh.
    DeleteThenRotate { orphan: String },
    /// A new key was written to `from`: read its secret there, then finish the rotation with
    /// it (the remaining writes, verify, deactivate) without creating another key.
    Recover {
        new_key_id: String,
        from: SecretLocation,
    },
    /// Ambiguous: a person decides.
    Fail { reason: String, fix: Vec<String> },
}

/// Slack for IAM's creation dates, which have whole seconds.
const CLOCK_SLACK_MS: Millis = 2_000;

/// Decides how an unfinished item converges, from the live state and the item's record.
pub fn converge(item: &Item, live: &Live, rec: &Recorded) -> Decision {
    let user = item.user.as_str();
    let old_id = item.old_key_id.as_str();
    let fail = |reason: String| Decision::Fail {
        fix: fix_commands(user, old_id),
        reason,
    };
    let Some(old) = live.keys.iter().find(|k| k.id == old_id) else {
        return fail(format!(
            "the original key {old_id} of {user} is gone: something else deleted it"
        ));
    };
    let others: Vec<&LiveKey> = live.keys.iter().filter(|k| k.id != old_id).collect();
    let unreadable: Vec<String> = live
        .held
        .iter()
        .filter(|(_, h)| h.is_none())
        .map(|(l, _)| l.to_string())
        .collect();
    if !unreadable.is_empty() {
        return fail(format!(
            "cannot read {} to see which key it holds",
            unreadable.join(", ")
        ));
    }
    let holds = |l: &(SecretLocation, Option<Vec<String>>), id: &str| {
        l.1.as_ref().is_some_and(|ids| ids.iter().any(|k| k == id))
    };
    let [new] = others.as_slice() else {
        if others.is_empty() {
            if !old.active {
                return fail(format!(
                    "{old_id} of {user} is Inactive and no new key exists: the user has no working key"
                ));
            }
            if rec.wrote || live.held.iter().any(|l| !holds(l, old_id)) {
                return fail(format!(
                    "a location of {user} no longer holds {old_id}, and no new key exists"
                ));
            }
            return Decision::Rotate;
        }
        let ids: Vec<&str> = others.iter().map(|k| k.id.as_str()).collect();
        return fail(format!(
            "{user} has keys {} besides {old_id}: which one is the rotation's cannot be told",
            ids.join(", ")
        ));
    };
    let ours_by_record = rec.new_keys.contains(&new.id);
    let after_start = match (new.created, item.first_started) {
        (Some(c), Some(s)) => c + CLOCK_SLACK_MS >= s,
        _ => false,
    };
    if !ours_by_record && !after_start {
        return fail(format!(
            "key {} of {user} was not created by this campaign (created before it started)",
            new.id
        ));
    }
    if rec.new_keys.iter().any(|k| *k != new.id) && !ours_by_record {
        return fail(format!(
            "key {} of {user} is not the one the plan recorded ({})",
            new.id,
            rec.new_keys.join(", ")
        ));
    }
    let neither: Vec<String> = live
        .held
        .iter()
        .filter(|l| !holds(l, &new.id) && !holds(l, old_id))
        .map(|(l, _)| l.to_string())
        .collect();
    if !neither.is_empty() {
        return fail(format!(
            "{} holds neither {old_id} nor the new key {}",
            neither.join(", "),
            new.id
        ));
    }
    let with_new: Vec<&SecretLocation> = live
        .held
        .iter()
        .filter(|l| holds(l, &new.id))
        .map(|(l, _)| l)
        .collect();
    if !old.active {
        if new.active && with_new.len() == live.held.len() {
            return Decision::Done {
                new_key_id: new.id.clone(),
            };
        }
        return fail(format!(
            "{old_id} of {user} is Inactive but the new key {} is {} and {} of {} locations hold it",
            new.id,
            if new.active { "Active" } else { "Inactive" },
            with_new.len(),
            live.held.len()
        ));
    }
    if !new.active {
        return fail(format!(
            "the new key {} of {user} is Inactive while {old_id} is still Active",
            new.id
        ));
    }
    match with_new.first() {
        Some(from) => Decision::Recover {
            new_key_id: new.id.clone(),
            from: (*from).clone(),
        },
        None if rec.wrote => fail(format!(
            "a write of the new key {} was recorded but no location holds it",
            new.id
        )),
        None => Decision::DeleteThenRotate {
            orphan: new.id.clone(),
        },
    }
}

/// What a person runs to look and finish an item by hand.
pub fn fix_commands(user: &str, old: &str) -> Vec<String> {
    vec![
        format!("aws iam list-access-keys --user-name {}", q(user)),
        format!(
            "# keep one new Active key and write it where {old} lives; delete any other new key: aws iam delete-access-key --user-name {} --access-key-id ID",
            q(user)
        ),
        format!(
            "aws iam update-access-key --user-name {} --access-key-id {} --status Inactive  # once every location holds the new key",
            q(user),
            q(old)
        ),
        format!(
            "keyward rotate {}  # or rotate afresh when only {old} is left",
            q(user)
        ),
    ]
}

/// Campaign order: highest risk first, then by user name (stable, for a reproducible run).
pub fn order(items: &mut [Item]) {
    items.sort_by(|a, b| b.risk.total_cmp(&a.risk).then_with(|| a.user.cmp(&b.user)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sm(name: &str) -> SecretLocation {
        SecretLocation::Secretsmanager {
            secret_id: name.into(),
        }
    }

    fn item(locations: &[SecretLocation]) -> Item {
        Item {
            user: "app".into(),
            account: None,
            old_key_id: "AKIAOLD".into(),
            locations: locations.to_vec(),
            risk: 0.0,
            first_started: Some(10_000),
            plans: vec!["rp-1".into()],
            state: ItemState::Started {
                plan: "rp-1".into(),
                at: 10_000,
            },
        }
    }

    fn key(id: &str, active: bool, created: Millis) -> LiveKey {
        LiveKey {
            id: id.into(),
            active,
            created: Some(created),
        }
    }

    fn held(v: &[(&str, &[&str])]) -> Vec<(SecretLocation, Option<Vec<String>>)> {
        v.iter()
            .map(|(l, ids)| (sm(l), Some(ids.iter().map(|s| (*s).to_owned()).collect())))
            .collect()
    }

    fn check(live: Live, rec: Recorded) -> Decision {
        converge(&item(&[sm("a"), sm("b")]), &live, &rec)
    }

    #[test]
    fn killed_before_create_rotates_as_planned() {
        let live = Live {
            keys: vec![key("AKIAOLD", true, 0)],
            held: held(&[("a", &["AKIAOLD"]), ("b", &["AKIAOLD"])]),
        };
        assert_eq!(check(live, Recorded::default()), Decision::Rotate);
    }

    #[test]
    fn killed_between_create_and_record_deletes_the_orphan() {
        let live = Live {
            keys: vec![key("AKIAOLD", true, 0), key("AKIANEW", true, 11_000)],
            held: held(&[("a", &["AKIAOLD"]), ("b", &["AKIAOLD"])]),
        };
        assert_eq!(
            check(live, Recorded::default()),
            Decision::DeleteThenRotate {
                orphan: "AKIANEW".into()
            }
        );
    }

    #[test]
    fn killed_after_a_write_recovers_the_secret_there() {
        let live = Live {
            keys: vec![key("AKIAOLD", true, 0), key("AKIANEW", true, 11_000)],
            held: held(&[("a", &["AKIANEW"]), ("b", &["AKIAOLD"])]),
        };
        let rec = Recorded {
            new_keys: vec!["AKIANEW".into()],
            wrote: true,
        };
        assert_eq!(
            check(live, rec),
            Decision::Recover {
                new_key_id: "AKIANEW".into(),
                from: sm("a")
            }
        );
    }

    #[test]
    fn killed_after_deactivate_is_done() {
        let live = Live {
            keys: vec![key("AKIAOLD", false, 0), key("AKIANEW", true, 11_000)],
            held: held(&[("a", &["AKIANEW"]), ("b", &["AKIANEW"])]),
        };
        assert_eq!(
            check(live, Recorded::default()),
            Decision::Done {
                new_key_id: "AKIANEW".into()
            }
        );
    }

    #[test]
    fn ambiguity_fails_with_the_fix() {
        // A key older than the campaign: someone else's.
        let live = Live {
            keys: vec![key("AKIAOLD", true, 0), key("AKIAOTHER", true, 1_000)],
            held: held(&[("a", &["AKIAOLD"]), ("b", &["AKIAOLD"])]),
        };
        let Decision::Fail { reason, fix } = check(live, Recorded::default()) else {
            panic!("not a failure")
        };
        assert!(reason.contains("not created by this campaign"), "{reason}");
        assert!(fix.iter().any(|c| c.contains("list-access-keys")));
        // A location holding neither key.
        let live = Live {
            keys: vec![key("AKIAOLD", true, 0), key("AKIANEW", true, 11_000)],
            held: held(&[("a", &["AKIANEW"]), ("b", &["AKIAELSE"])]),
        };
        assert!(matches!(
            check(live, Recorded::default()),
            Decision::Fail { .. }
        ));
        // Old key gone.
        let live = Live {
            keys: vec![key("AKIANEW", true, 11_000)],
            held: held(&[("a", &["AKIANEW"]), ("b", &["AKIANEW"])]),
        };
        assert!(matches!(
            check(live, Recorded::default()),
            Decision::Fail { .. }
        ));
        // A recorded write that no location shows.
        let live = Live {
            keys: vec![key("AKIAOLD", true, 0), key("AKIANEW", true, 11_000)],
            held: held(&[("a", &["AKIAOLD"]), ("b", &["AKIAOLD"])]),
        };
        let rec = Recorded {
            new_keys: vec!["AKIANEW".into()],
            wrote: true,
        };
        assert!(matches!(check(live, rec), Decision::Fail { .. }));
    }

    #[test]
    fn a_user_without_locations_deletes_an_unrecorded_key() {
        let i = item(&[]);
        let live = Live {
            keys: vec![key("AKIAOLD", true, 0), key("AKIANEW", true, 11_000)],
            held: Vec::new(),
        };
        assert_eq!(
            converge(&i, &live, &Recorded::default()),
            Decision::DeleteThenRotate {
                orphan: "AKIANEW".into()
            }
        );
    }

    #[test]
    fn highest_risk_first() {
        let mut v: Vec<Item> = [("b", 1.0), ("a", 1.0), ("c", 9.5)]
            .iter()
            .map(|(u, r)| Item {
                user: (*u).into(),
                risk: *r,
                ..item(&[])
            })
            .collect();
        order(&mut v);
        let users: Vec<&str> = v.iter().map(|i| i.user.as_str()).collect();
        assert_eq!(users, ["c", "a", "b"]);
    }
}
