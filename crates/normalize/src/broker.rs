//! The credential broker's leases (`broker-leases`: one [`LeaseRecord`] per JSON line, as
//! `keyward serve` records them): each lease is an identity, created by the workload it was
//! issued to or by the lease whose token proved it, so `graph chain` walks from any issued
//! credential back to the workload and its owner, and a revoked or expired lease is gone.
//!
//! - AWS credentials are the STS session CloudTrail will report (the assumed-role ARN):
//!   `assumed` by their creator, with their temporary access key, so the actions taken
//!   with them join the lease.
//! - Everything else is a `broker_credential` on platform `keyward`.
//! - The workload is seen active at issuance.

use keyward_model::lease::{LeaseKind, LeaseRecord, LeaseState};
use keyward_model::{
    Credential, CredentialKind, CredentialStatus, IdentityKind, Observation, Platform, Reason,
    SourceKind, ids,
};

use crate::Output;

/// One lease line.
pub fn normalize_line(bytes: &[u8]) -> Result<Option<Output<'static>>, Reason> {
    crate::depth::check(bytes)?;
    let lease: LeaseRecord = serde_json::from_slice(bytes)
        .map_err(|e| Reason::from(format!("not a broker lease: {e}")))?;
    Ok(Some(Output {
        observations: observations(&lease),
        ..Output::default()
    }))
}

/// A document of lease lines.
pub fn normalize_document(doc: &[u8], sink: &mut dyn crate::Sink) {
    for (i, line) in doc.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        crate::emit(sink, normalize_line(line), i as u64 + 1, None);
    }
}

/// Leases already in memory (`keyward serve`'s ledger), each handed to the sink as the line
/// it would be in a `broker-leases` document: no JSON written and read back.
pub fn normalize_leases(leases: &[LeaseRecord], sink: &mut dyn crate::Sink) {
    for (i, l) in leases.iter().enumerate() {
        let out = Output {
            observations: observations(l),
            ..Output::default()
        };
        crate::emit(sink, Ok(Some(out)), i as u64 + 1, None);
    }
}

/// What one lease says: the workload acted, and the credential exists (or is gone).
pub fn observations(l: &LeaseRecord) -> Vec<Observation> {
    let src = SourceKind::BrokerLeases;
    let mut workload = Observation::new(
        l.workload.clone(),
        l.workload_platform,
        l.workload_kind,
        l.workload_name.clone(),
        src,
    );
    workload.used_at = Some(l.issued_at);
    if l.workload_kind == IdentityKind::ServiceAccount
        && let Some(rest) = l.workload.strip_prefix("k8s:")
        && let Some((cluster, sa)) = rest.split_once("/system:serviceaccount:")
        && let Some((ns, _)) = sa.split_once(':')
    {
        // `ids::k8s_service_account`: `k8s:<cluster>/system:serviceaccount:<ns>:<name>`.
        workload.facts.cluster = Some(cluster.to_owned());
        workload.facts.namespace = Some(ns.to_owned());
    }
    if l.workload_kind == IdentityKind::OidcSubject {
        workload.facts.subject = Some(l.subject.clone());
        workload.facts.issuer = Some(ids::issuer_key(&l.issuer).to_owned());
    }
    let gone = match l.state {
        LeaseState::Active => None,
        LeaseState::Revoked => Some(l.revoked_at.unwrap_or(l.expires_at)),
        LeaseState::Expired => Some(l.expires_at),
    };
    let detail = serde_json::json!({
        "lease_id": l.lease_id,
        "kind": l.kind.as_str(),
        "state": l.state.as_str(),
        "parent": l.parent,
        "workload": l.workload,
        "proof": l.proof,
        "target": l.target,
        "reference": l.reference,
        "boundary": l.boundary,
        "policies": l.policies,
        "issued_at": l.issued_at,
        "expires_at": l.expires_at,
        "renewals": l.renewals,
        "revoked_at": l.revoked_at,
        "revoked_by": l.revoked_by,
    });
    let mut out = vec![workload];
    match l.kind {
        LeaseKind::Aws => {
            let name = l.identity.rsplit('/').next().unwrap_or(&l.lease_id);
            let mut s = Observation::new(
                l.identity.clone(),
                Platform::Aws,
                IdentityKind::StsSession,
                name,
                src,
            );
            s.seen_at = Some(l.issued_at);
            s.facts.created = Some(l.issued_at);
            s.facts.deleted = gone;
            s.facts.account = l.account.clone();
            s.facts.parent = Some(l.target.clone());
            s.facts.assumed_by = Some(l.created_by.clone());
            s.facts.details.insert("broker_lease".into(), detail);
            if let Some(key) = &l.reference {
                s.facts.credentials.push(Credential {
                    id: key.clone(),
                    kind: CredentialKind::TemporaryAccessKey,
                    status: if gone.is_some() {
                        CredentialStatus::Deleted
                    } else {
                        CredentialStatus::Active
                    },
                    created: Some(l.issued_at),
                    last_used: None,
                    last_used_region: None,
                    last_used_service: None,
                });
            }
            out.push(s);
        }
        LeaseKind::Jwt | LeaseKind::Svid | LeaseKind::Secret => {
            let name = format!("{} {}", l.kind.as_str(), l.target);
            let mut c = Observation::new(
                l.identity.clone(),
                Platform::Keyward,
                IdentityKind::BrokerCredential,
                name,
                src,
            );
            c.seen_at = Some(l.issued_at);
            c.facts.created = Some(l.issued_at);
            c.facts.deleted = gone;
            c.facts.created_by = Some(l.created_by.clone());
            c.facts.subject = Some(l.subject.clone());
            c.facts.details.insert("broker_lease".into(), detail);
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn jwt() -> serde_json::Value {
        serde_json::json!({
            "lease_id": "kwl-1", "kind": "jwt", "state": "active",
            "workload": "k8s:prod/system:serviceaccount:pay:api", "workload_kind": "service_account",
            "workload_platform": "kubernetes", "workload_name": "api", "proof": "kubernetes",
            "issuer": "https://k8s", "subject": "system:serviceaccount:pay:api",
            "created_by": "k8s:prod/system:serviceaccount:pay:api", "target": "vault",
            "identity": "keyward:lease/kwl-1", "reference": "kwl-1",
            "issued_at": 1000, "expires_at": 901_000, "max_expires_at": 3_601_000
        })
    }

    #[test]
    fn a_lease_is_an_identity_its_workload_created() {
        let out = normalize_line(jwt().to_string().as_bytes())
            .unwrap()
            .unwrap();
        let [w, c] = &out.observations[..] else {
            panic!("{:?}", out.observations)
        };
        assert_eq!(w.kind, IdentityKind::ServiceAccount);
        assert_eq!(w.used_at, Some(1000));
        assert_eq!(w.facts.cluster.as_deref(), Some("prod"));
        assert_eq!(w.facts.namespace.as_deref(), Some("pay"));
        assert_eq!(c.id, "keyward:lease/kwl-1");
        assert_eq!(c.kind, IdentityKind::BrokerCredential);
        assert_eq!(c.platform, Platform::Keyward);
        assert_eq!(
            c.facts.created_by.as_deref(),
            Some("k8s:prod/system:serviceaccount:pay:api")
        );
        assert_eq!(c.facts.deleted, None);
        assert_eq!(c.facts.details["broker_lease"]["target"], "vault");
    }

    #[test]
    fn an_aws_lease_is_the_session_cloudtrail_names_and_a_revoked_one_is_gone() {
        let mut l = jwt();
        l["kind"] = "aws".into();
        l["state"] = "revoked".into();
        l["revoked_at"] = 5000.into();
        l["parent"] = "kwl-0".into();
        l["created_by"] = "keyward:lease/kwl-0".into();
        l["target"] = "arn:aws:iam::111122223333:role/reader".into();
        l["identity"] = "arn:aws:sts::111122223333:assumed-role/reader/kwl-1".into();
        l["reference"] = "ASIAEXAMPLE".into();
        l["account"] = "111122223333".into();
        let out = normalize_line(l.to_string().as_bytes()).unwrap().unwrap();
        let s = &out.observations[1];
        assert_eq!(s.kind, IdentityKind::StsSession);
        assert_eq!(s.name, "kwl-1");
        assert_eq!(s.facts.assumed_by.as_deref(), Some("keyward:lease/kwl-0"));
        assert_eq!(
            s.facts.parent.as_deref(),
            Some("arn:aws:iam::111122223333:role/reader")
        );
        assert_eq!(s.facts.deleted, Some(5000));
        assert_eq!(s.facts.credentials[0].id, "ASIAEXAMPLE");
        assert_eq!(s.facts.credentials[0].status, CredentialStatus::Deleted);
    }

    #[test]
    fn a_bad_line_is_rejected_with_its_line_and_the_rest_is_kept() {
        struct Sink(Vec<u64>, usize);
        impl crate::Sink for Sink {
            fn accept(&mut self, _: Output<'_>) {
                self.1 += 1;
            }
            fn reject(&mut self, d: keyward_model::Diagnostic) {
                self.0.push(d.line);
            }
        }
        let doc = format!("{}\n{{\"lease_id\": 3}}\n\n{}\n", jwt(), jwt());
        let mut sink = Sink(Vec::new(), 0);
        normalize_document(doc.as_bytes(), &mut sink);
        assert_eq!(sink.0, [2]);
        assert_eq!(sink.1, 2);
    }
}
