//! Leases: their ids, how long they last, renewal, and a revocation's cascade (a revoked
//! lease revokes every lease issued under it). Pure: the server keeps them in the store
//! (`keyward_engine::broker`) and carries revocations to the platforms.

use keyward_model::lease::{LeaseKind, LeaseRecord, LeaseState};
use keyward_model::time::Millis;
use keyward_model::{IdentityKind, Platform};

use crate::{ProofKind, Workload};

/// How long a credential of one kind lasts: asked-for TTLs are capped at `max_ms`; renewals
/// never take a lease past `issued_at + max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl {
    pub default_ms: Millis,
    pub max_ms: Millis,
}

impl Ttl {
    /// The TTL to issue for an asked-for one (`None`: the default), within `[1 s, max]`.
    pub fn grant(&self, asked_ms: Option<Millis>) -> Millis {
        asked_ms
            .unwrap_or(self.default_ms)
            .clamp(1_000, self.max_ms.max(1_000))
    }
}

/// Why a lease cannot be renewed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error("lease {0} is {1}")]
    NotActive(String, &'static str),
    #[error("lease {0} cannot be renewed past its maximum lifetime")]
    AtMaximum(String),
}

/// A new lease id issued at `now`: `kwl-` and 32 hex digits, the first 12 the time in
/// milliseconds, the rest 10 random bytes. Ids issued later sort later, so the store's
/// indexes (the lease's row, its identity, its graph node) grow at their end instead of
/// rewriting a page at random for every lease; 80 random bits keep them unguessable.
pub fn new_id(now: Millis) -> Result<String, ring::error::Unspecified> {
    let bytes: [u8; 10] = ring::rand::generate(&ring::rand::SystemRandom::new())?.expose();
    let ms = u64::try_from(now).unwrap_or(0) & 0xffff_ffff_ffff;
    Ok(format!("kwl-{ms:012x}{}", hex::encode(bytes)))
}

/// What the inventory knows a workload as: its kind, platform and name.
pub fn workload_identity(w: &Workload) -> (IdentityKind, Platform, String) {
    let attr = |k: &str| w.attrs.get(k).cloned();
    match w.proof {
        ProofKind::Kubernetes => (
            IdentityKind::ServiceAccount,
            Platform::Kubernetes,
            attr("service_account").unwrap_or_else(|| w.subject.clone()),
        ),
        ProofKind::GithubActions => (
            IdentityKind::OidcSubject,
            Platform::Github,
            w.subject.clone(),
        ),
        ProofKind::Oidc => (IdentityKind::OidcSubject, Platform::Oidc, w.subject.clone()),
        // A lease's token names the workload it was first issued to.
        ProofKind::Keyward => match (attr("workload_kind"), attr("workload_platform")) {
            (Some(k), Some(p)) => (
                IdentityKind::parse(&k).unwrap_or(IdentityKind::Unknown),
                Platform::parse(&p).unwrap_or(Platform::Keyward),
                attr("workload_name").unwrap_or_else(|| w.subject.clone()),
            ),
            (Some(_) | None, _) => (IdentityKind::Unknown, Platform::Keyward, w.subject.clone()),
        },
        ProofKind::Mtls => (IdentityKind::Unknown, Platform::Keyward, w.subject.clone()),
    }
}

/// What is being issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub kind: LeaseKind,
    pub target: String,
    /// The credential's inventory key when the platform names it (an AWS session's ARN);
    /// else the lease's own.
    pub identity: Option<String>,
    pub reference: Option<String>,
    pub account: Option<String>,
    pub boundary: Option<String>,
    pub policies: Vec<String>,
    pub ttl_ms: Millis,
    pub max_ms: Millis,
}

/// A new active lease for `w`.
pub fn issue(id: String, w: &Workload, what: Issue, now: Millis) -> LeaseRecord {
    let (workload_kind, workload_platform, workload_name) = workload_identity(w);
    let created_by = match &w.lease {
        Some(parent) => LeaseRecord::lease_identity(parent),
        None => w.identity.clone(),
    };
    LeaseRecord {
        identity: what
            .identity
            .unwrap_or_else(|| LeaseRecord::lease_identity(&id)),
        lease_id: id,
        kind: what.kind,
        state: LeaseState::Active,
        parent: w.lease.clone(),
        workload: w.identity.clone(),
        workload_kind,
        workload_platform,
        workload_name,
        proof: w.proof.as_str().to_owned(),
        issuer: w.issuer.clone(),
        subject: w.subject.clone(),
        created_by,
        target: what.target,
        reference: what.reference,
        account: what.account,
        boundary: what.boundary,
        policies: what.policies,
        issued_at: now,
        expires_at: now.saturating_add(what.ttl_ms),
        max_expires_at: now.saturating_add(what.max_ms.max(what.ttl_ms)),
        renewals: 0,
        revoked_at: None,
        revoked_by: None,
        reason: None,
    }
}

/// Extends an active lease by `increment_ms` from now, never past its maximum.
pub fn renew(l: &mut LeaseRecord, increment_ms: Millis, now: Millis) -> Result<(), LeaseError> {
    match l.state_at(now) {
        LeaseState::Active => {}
        s @ (LeaseState::Revoked | LeaseState::Expired) => {
            return Err(LeaseError::NotActive(l.lease_id.clone(), s.as_str()));
        }
    }
    let until = now.saturating_add(increment_ms).min(l.max_expires_at);
    if until <= l.expires_at {
        return Err(LeaseError::AtMaximum(l.lease_id.clone()));
    }
    l.expires_at = until;
    l.renewals = l.renewals.saturating_add(1);
    Ok(())
}

/// Revokes every lease of `tree` (a lease and those issued under it, as
/// `keyward_engine`'s `lease_tree` gives them) that is still active or merely expired;
/// returns the ones that changed.
pub fn cascade(tree: Vec<LeaseRecord>, by: &str, reason: &str, now: Millis) -> Vec<LeaseRecord> {
    tree.into_iter()
        .filter(|l| l.state != LeaseState::Revoked)
        .map(|mut l| {
            l.state = LeaseState::Revoked;
            l.revoked_at = Some(now);
            l.revoked_by = Some(by.to_owned());
            l.reason = Some(reason.to_owned());
            l
        })
        .collect()
}

/// The state leases past their expiry are recorded in by the sweep.
pub fn expire(l: &mut LeaseRecord, now: Millis) -> bool {
    if l.state == LeaseState::Active && now >= l.expires_at {
        l.state = LeaseState::Expired;
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lease_ids_sort_by_issue_time_and_differ_within_a_millisecond() {
        let t = 1_765_000_000_000;
        let (a, b, later) = (
            new_id(t).unwrap(),
            new_id(t).unwrap(),
            new_id(t + 1).unwrap(),
        );
        for id in [&a, &b, &later] {
            assert_eq!(id.len(), 4 + 32, "{id}");
            assert!(id.starts_with("kwl-"), "{id}");
            assert!(id[4..].bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
        }
        assert_ne!(a, b);
        assert!(later > a && later > b, "{a} {b} {later}");
        assert_eq!(&a[4..16], &format!("{t:012x}"));
    }

    fn sa() -> Workload {
        Workload {
            proof: ProofKind::Kubernetes,
            issuer: "https://k8s".into(),
            subject: "system:serviceaccount:pay:api".into(),
            identity: "k8s:prod:sa:pay:api".into(),
            attrs: [("service_account".to_owned(), "api".to_owned())].into(),
            expires_at: 10_000_000,
            lease: None,
        }
    }

    fn what(ttl: Millis) -> Issue {
        Issue {
            kind: LeaseKind::Jwt,
            target: "vault".into(),
            identity: None,
            reference: Some("j1".into()),
            account: None,
            boundary: None,
            policies: vec!["p".into()],
            ttl_ms: ttl,
            max_ms: 3_600_000,
        }
    }

    #[test]
    fn a_lease_is_created_by_its_workload_or_its_parent_lease() {
        let l = issue("kwl-1".into(), &sa(), what(60_000), 1_000);
        assert_eq!(l.created_by, "k8s:prod:sa:pay:api");
        assert_eq!(l.identity, "keyward:lease/kwl-1");
        assert_eq!(l.workload_kind, IdentityKind::ServiceAccount);
        assert_eq!(l.workload_name, "api");
        assert_eq!(l.expires_at, 61_000);
        let mut child = sa();
        child.proof = ProofKind::Keyward;
        child.lease = Some("kwl-1".into());
        child
            .attrs
            .insert("workload_kind".into(), "service_account".into());
        child
            .attrs
            .insert("workload_platform".into(), "kubernetes".into());
        child.attrs.insert("workload_name".into(), "api".into());
        let c = issue("kwl-2".into(), &child, what(60_000), 2_000);
        assert_eq!(c.parent.as_deref(), Some("kwl-1"));
        assert_eq!(c.created_by, "keyward:lease/kwl-1");
        assert_eq!(c.workload, "k8s:prod:sa:pay:api");
        assert_eq!(c.workload_kind, IdentityKind::ServiceAccount);
    }

    #[test]
    fn renewal_stops_at_the_maximum_and_not_after_revocation() {
        let mut l = issue("kwl-1".into(), &sa(), what(60_000), 0);
        renew(&mut l, 600_000, 30_000).unwrap();
        assert_eq!(l.expires_at, 630_000);
        renew(&mut l, 10_000_000, 40_000).unwrap();
        assert_eq!(l.expires_at, 3_600_000);
        assert!(matches!(
            renew(&mut l, 60_000, 50_000),
            Err(LeaseError::AtMaximum(_))
        ));
        let mut r = cascade(vec![l], "token:t", "test", 60_000);
        let r = r.first_mut().unwrap();
        assert!(matches!(
            renew(r, 60_000, 70_000),
            Err(LeaseError::NotActive(_, "revoked"))
        ));
        let mut e = issue("kwl-2".into(), &sa(), what(1_000), 0);
        assert!(matches!(
            renew(&mut e, 60_000, 5_000),
            Err(LeaseError::NotActive(_, "expired"))
        ));
        assert!(expire(&mut e, 5_000));
        assert!(!expire(&mut e, 6_000));
    }

    #[test]
    fn a_cascade_revokes_what_is_not_revoked_yet() {
        let a = issue("kwl-a".into(), &sa(), what(60_000), 0);
        let b = cascade(
            vec![issue("kwl-b".into(), &sa(), what(60_000), 0)],
            "x",
            "y",
            1,
        )
        .remove(0);
        let out = cascade(vec![a, b], "token:t", "compromised", 5);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].lease_id, "kwl-a");
        assert_eq!(out[0].revoked_by.as_deref(), Some("token:t"));
    }

    #[test]
    fn ttl_is_clamped() {
        let t = Ttl {
            default_ms: 600_000,
            max_ms: 3_600_000,
        };
        assert_eq!(t.grant(None), 600_000);
        assert_eq!(t.grant(Some(10)), 1_000);
        assert_eq!(t.grant(Some(99_999_999)), 3_600_000);
    }
}
