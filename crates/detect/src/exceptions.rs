//! Exceptions as data: who a rule is not about, like Falco's exception lists.
//!
//! An exception names values of up to four fields; a match is excepted when every field
//! the exception names holds one of its values (fields AND, values OR):
//!
//! ```yaml
//! # in a rule file, under `exceptions:`; or in a file of its own, each entry naming its
//! # rule, loaded with `--rules` (and kept in the store by `keyward findings except --save`)
//! exceptions:
//!   - rule: kw-k8s-secret-dump          # in a file of its own only
//!     name: velero backs up every namespace
//!     identities: ["k8s:*/system:serviceaccount:velero:velero"]  # globs (`*`, `?`, `[…]`)
//!     namespaces: [velero]              # the Kubernetes namespace acted in
//!     accounts: ["111122223333"]        # the AWS account acted in
//!     networks: [10.0.0.0/8]            # the caller's address, CIDR
//!     note: approved in SEC-1234
//! ```
//!
//! `identities` matches the principal a finding is about (a role for its sessions) or the
//! acting session, key or user.

use globset::{Glob, GlobSet, GlobSetBuilder};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::view::View;

/// One exception as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    /// The rule it belongs to: required in a file of its own, implied in a rule file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A file of exceptions: `exceptions:` and its entries, each naming its rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub exceptions: Vec<Exception>,
}

/// Why an exception cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ExceptionError {
    #[error(
        "exception `{0}` names no identities, namespaces, accounts or networks: it would except everything"
    )]
    Empty(String),
    #[error("exception `{name}`: `{glob}` is not a glob: {source}")]
    Glob {
        name: String,
        glob: String,
        source: globset::Error,
    },
    #[error("exception `{name}`: `{network}` is not a network (CIDR, such as 10.0.0.0/8)")]
    Network { name: String, network: String },
}

/// An exception ready to match.
#[derive(Debug, Clone)]
pub struct Compiled {
    identities: Option<GlobSet>,
    namespaces: Vec<String>,
    accounts: Vec<String>,
    networks: Vec<IpNet>,
}

impl Compiled {
    pub fn new(e: &Exception) -> Result<Self, ExceptionError> {
        if e.identities.is_empty()
            && e.namespaces.is_empty()
            && e.accounts.is_empty()
            && e.networks.is_empty()
        {
            return Err(ExceptionError::Empty(e.name.clone()));
        }
        let identities = if e.identities.is_empty() {
            None
        } else {
            let mut b = GlobSetBuilder::new();
            for g in &e.identities {
                let glob = Glob::new(g).map_err(|source| ExceptionError::Glob {
                    name: e.name.clone(),
                    glob: g.clone(),
                    source,
                })?;
                b.add(glob);
            }
            Some(b.build().map_err(|source| ExceptionError::Glob {
                name: e.name.clone(),
                glob: e.identities.join(", "),
                source,
            })?)
        };
        let networks = e
            .networks
            .iter()
            .map(|n| {
                n.parse::<IpNet>()
                    .or_else(|_| n.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| ExceptionError::Network {
                        name: e.name.clone(),
                        network: n.clone(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Compiled {
            identities,
            namespaces: e.namespaces.clone(),
            accounts: e.accounts.clone(),
            networks,
        })
    }

    /// Whether a match on the event, about `principal`, is excepted.
    pub fn matches(&self, v: &View, principal: &str) -> bool {
        let e = v.event;
        let namespace = if self.namespaces.is_empty() {
            None
        } else {
            v.str_field("objectRef.namespace")
        };
        let actor = e.actor.as_deref();
        let identities = [Some(principal), actor];
        self.matches_subject(&Subject {
            identities: &identities,
            namespace: namespace.as_deref(),
            account: e.account.as_deref(),
            source_ip: e.source_ip.as_deref(),
        })
    }

    /// Whether a finding's match on `s` is excepted: every field the exception names holds
    /// one of its values (an identity: any one of the subject's).
    pub fn matches_subject(&self, s: &Subject<'_>) -> bool {
        if let Some(ids) = &self.identities
            && !s.identities.iter().flatten().any(|i| ids.is_match(i))
        {
            return false;
        }
        if !self.namespaces.is_empty()
            && !s
                .namespace
                .is_some_and(|ns| self.namespaces.iter().any(|x| x == ns))
        {
            return false;
        }
        if !self.accounts.is_empty()
            && !s
                .account
                .is_some_and(|a| self.accounts.iter().any(|x| x == a))
        {
            return false;
        }
        if !self.networks.is_empty() {
            let ip = s
                .source_ip
                .and_then(|ip| ip.parse::<std::net::IpAddr>().ok());
            if !ip.is_some_and(|ip| self.networks.iter().any(|n| n.contains(&ip))) {
                return false;
            }
        }
        true
    }
}

/// What an exception is matched against, for a rule judged outside the event stream (an
/// AI agent's action outside its purpose).
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    /// The identities the match is about: any one matching an `identities` glob will do.
    pub identities: &'a [Option<&'a str>],
    pub namespace: Option<&'a str>,
    pub account: Option<&'a str>,
    pub source_ip: Option<&'a str>,
}

/// The narrowest exception that would have kept a finding from being raised: its rule, on
/// its identity only.
pub fn narrowest(f: &crate::Finding) -> Option<Exception> {
    let identity = f.identity.clone()?;
    Some(Exception {
        rule: Some(f.rule_id.clone()),
        name: format!("{} is expected to do this", identity),
        identities: vec![globset_escape(&identity)],
        namespaces: Vec::new(),
        accounts: Vec::new(),
        networks: Vec::new(),
        note: Some(format!("from finding {}, a false positive", f.id)),
    })
}

/// `s` as a glob matching only itself.
fn globset_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '*' | '?' | '[' | ']' | '{' | '}' | '\\' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn escaped_identities_match_only_themselves() {
        let id = "k8s:prod/system:serviceaccount:a:b*[x]{y}?";
        let c = Compiled::new(&Exception {
            rule: None,
            name: "n".into(),
            identities: vec![globset_escape(id)],
            namespaces: vec![],
            accounts: vec![],
            networks: vec![],
            note: None,
        })
        .unwrap();
        let set = c.identities.unwrap();
        assert!(set.is_match(id));
        assert!(!set.is_match("k8s:prod/system:serviceaccount:a:bZ[x]{y}?"));
    }

    #[test]
    fn empty_bad_globs_and_bad_networks_are_refused() {
        let base = Exception {
            rule: None,
            name: "n".into(),
            identities: vec![],
            namespaces: vec![],
            accounts: vec![],
            networks: vec![],
            note: None,
        };
        assert!(matches!(
            Compiled::new(&base),
            Err(ExceptionError::Empty(_))
        ));
        let glob = Exception {
            identities: vec!["a[".into()],
            ..base.clone()
        };
        assert!(matches!(
            Compiled::new(&glob),
            Err(ExceptionError::Glob { .. })
        ));
        let net = Exception {
            networks: vec!["10.0.0.0/33".into()],
            ..base
        };
        assert!(matches!(
            Compiled::new(&net),
            Err(ExceptionError::Network { .. })
        ));
    }
}
