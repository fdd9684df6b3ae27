//! An identity's lifecycle state as the data can tell it: `stale` only where something
//! could have seen it used over the stale window (its platform's own last-use record, or an
//! activity log spanning the window), `unknown` otherwise.

use keyward_detect::posture::Activity;
use keyward_model::time::Millis;
use keyward_model::{Identity, IdentityKind, Lifecycle, LifecycleConfig, SourceKind};
use rustc_hash::FxHashMap;

const DAY: Millis = 86_400_000;

/// Lifecycle states as of one time, judged against how far the activity logs reach.
pub struct Lifecycles {
    spans: LogSpans,
    lc: LifecycleConfig,
}

impl Lifecycles {
    /// States judged against `spans` (a view's: the spans of the logs its identity is in).
    pub(crate) fn with_spans(spans: LogSpans, lc: LifecycleConfig) -> Self {
        Lifecycles { spans, lc }
    }

    pub(crate) fn new<'i>(
        identities: impl Iterator<Item = &'i Identity>,
        lc: LifecycleConfig,
    ) -> Self {
        Lifecycles {
            spans: LogSpans::of(identities),
            lc,
        }
    }

    /// `i`'s state: [`Identity::lifecycle`], with `stale` made `unknown` when nothing
    /// covers the window.
    pub fn of(&self, i: &Identity) -> Lifecycle {
        match i.lifecycle(self.lc) {
            Lifecycle::Stale if self.spans.activity(i, self.lc) == Activity::Unknown => {
                Lifecycle::Unknown
            }
            s => s,
        }
    }
}

/// How far each activity log reaches: per AWS account (CloudTrail) and per cluster (audit
/// log), the first and last sighting of the identities it shows.
#[derive(Default, Clone)]
pub(crate) struct LogSpans {
    spans: FxHashMap<(SourceKind, String), (Millis, Millis)>,
}

impl LogSpans {
    pub(crate) fn of<'i>(identities: impl Iterator<Item = &'i Identity>) -> LogSpans {
        let mut out = LogSpans::default();
        for i in identities {
            out.add(i, |_, _| {});
        }
        out
    }

    /// Widens the spans of the logs that show `i`; `changed` is told each span that moved.
    pub(crate) fn add(&mut self, i: &Identity, mut changed: impl FnMut(SourceKind, &str)) {
        let (Some(first), Some(last)) = (i.first_seen, i.last_seen) else {
            return;
        };
        let logs = [
            (SourceKind::Cloudtrail, i.account.as_ref()),
            (SourceKind::K8sAudit, i.cluster.as_ref()),
        ];
        for (kind, scope) in logs {
            let Some(scope) = scope.filter(|_| i.sources.contains(kind.as_str())) else {
                continue;
            };
            let key = (kind, scope.clone());
            let was = self.spans.get(&key).copied();
            let now = was.map_or((first, last), |(a, b)| (a.min(first), b.max(last)));
            if was != Some(now) {
                self.spans.insert(key, now);
                changed(kind, scope);
            }
        }
    }

    /// Every span: (log, scope, first, last).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SourceKind, &str, Millis, Millis)> {
        self.spans
            .iter()
            .map(|((k, s), (a, b))| (*k, s.as_str(), *a, *b))
    }

    /// One span, as the store keeps it.
    pub(crate) fn insert(&mut self, kind: SourceKind, scope: &str, span: (Millis, Millis)) {
        self.spans.insert((kind, scope.to_owned()), span);
    }

    /// How far the `kind` log of `scope` (an account, a cluster) reaches: its first and
    /// last sighting, if any.
    pub(crate) fn span(&self, kind: SourceKind, scope: &str) -> Option<(Millis, Millis)> {
        self.spans.get(&(kind, scope.to_owned())).copied()
    }

    /// Whether `i`'s use over the stale window of `lc` is known: the platform records
    /// last use itself (credential report, `RoleLastUsed`), or its log spans the window
    /// (from its start to within a day of its end).
    pub(crate) fn activity(&self, i: &Identity, lc: LifecycleConfig) -> Activity {
        let tracked = match i.kind {
            IdentityKind::IamUser => Some(SourceKind::IamCredentialReport),
            IdentityKind::IamRole => Some(SourceKind::IamAuthorizationDetails),
            _ => None,
        };
        if tracked.is_some_and(|t| i.sources.contains(t.as_str())) {
            return Activity::Covered;
        }
        let log = log_of(i);
        let start = lc.as_of - lc.stale_after_days * DAY;
        let spans = log
            .1
            .and_then(|scope| self.spans.get(&(log.0, scope.clone())));
        match spans {
            Some(&(first, last)) if first <= start && last >= lc.as_of - DAY => Activity::Covered,
            _ => Activity::Unknown,
        }
    }
}

/// The log whose span says whether `i` can be called stale: its cluster's audit log for a
/// service account, else its account's CloudTrail.
pub(crate) fn log_of(i: &Identity) -> (SourceKind, Option<&String>) {
    if i.kind == IdentityKind::ServiceAccount {
        (SourceKind::K8sAudit, i.cluster.as_ref())
    } else {
        (SourceKind::Cloudtrail, i.account.as_ref())
    }
}
