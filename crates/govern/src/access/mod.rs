//! Time-bound access: what may be granted to whom, for how long, and how a grant, a
//! break-glass review and a privileged request move between states. Pure: a grant is a
//! response plan ([`keyward_respond::Plan`]) that the connectors apply and undo; the engine
//! stores each document as a job and audits every change.
//!
//! - [`grant`]: the [`Grant`] and its [`GrantState`]s, the plan that applies it.
//! - [`subject`]: who receives access ([`Grantee`]) and what ([`Entitlement`]).
//! - [`review`]: the post-incident review a break-glass grant opens.
//! - [`request`]: the privileged path — a request approved by someone else becomes a grant.

pub mod grant;
pub mod request;
pub mod review;
pub mod subject;

use keyward_model::time::Millis;
use keyward_respond::playbook::{format_duration, parse_duration};

pub use grant::{End, Grant, GrantAsk, GrantState};
pub use request::{Request, RequestState};
pub use review::{Review, ReviewState};
pub use subject::{Entitlement, Grantee};

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;

/// The longest a standard or approved grant may last.
pub const MAX_GRANT: Millis = 7 * 24 * HOUR;
/// The longest a break-glass grant may last: it is self-granted, so it is short.
pub const MAX_BREAK_GLASS: Millis = 4 * HOUR;
/// The shortest grant (shorter ones would expire before anyone could use them).
pub const MIN_GRANT: Millis = MINUTE;

/// Which path a grant takes: it sets the duration cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Granted by an operator (`keyward access grant`), or approved from a request.
    Standard,
    /// Self-granted in an emergency (`--break-glass`).
    BreakGlass,
}

impl Path {
    pub fn cap(self) -> Millis {
        match self {
            Path::Standard => MAX_GRANT,
            Path::BreakGlass => MAX_BREAK_GLASS,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Path::Standard => "a grant",
            Path::BreakGlass => "break-glass access",
        }
    }
}

/// Why access could not be granted, approved or ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("{0}")]
    BadDuration(String),
    #[error("`--for {asked}` is longer than {path} may last ({cap} at most)")]
    TooLong {
        asked: String,
        path: &'static str,
        cap: String,
    },
    #[error("`--for {0}` is shorter than a minute")]
    TooShort(String),
    #[error(
        "`{0}` is not an identity access can be granted to (an IAM user or role: its ARN, `user/NAME`, `role/NAME`; a service account: `NAMESPACE/serviceaccount/NAME`, `system:serviceaccount:NAMESPACE:NAME`)"
    )]
    BadGrantee(String),
    #[error("`{0}` is not a role (use `NAME`, `role/NAME` or `clusterrole/NAME`)")]
    BadRole(String),
    #[error("{what} cannot be granted to `{grantee}`: {why}")]
    Mismatch {
        what: String,
        grantee: String,
        why: &'static str,
    },
    #[error(
        "name exactly one of a managed policy (`policy`), an IAM group (`group`) or a Kubernetes role (`role`)"
    )]
    NoEntitlement,
    #[error("a reason is required (`--reason`)")]
    NoReason,
    #[error("{what} `{id}` is {state}: it cannot be {verb}")]
    Transition {
        what: &'static str,
        id: String,
        state: &'static str,
        verb: &'static str,
    },
    #[error("`{actor}` made request `{id}`: it must be approved by someone else")]
    SelfApproval { id: String, actor: String },
    #[error("`{actor}` broke the glass for grant `{id}`: its review is closed by someone else")]
    SelfReview { id: String, actor: String },
    #[error("no request `{0}` (see `keyward access list`)")]
    NoRequest(String),
    #[error("review notes are required (`--notes`)")]
    NoNotes,
}

/// A `--for` value as milliseconds, within the path's cap.
pub fn duration(text: &str, path: Path) -> Result<Millis, AccessError> {
    let ms = parse_duration(text).map_err(AccessError::BadDuration)?;
    if ms < MIN_GRANT {
        return Err(AccessError::TooShort(text.to_owned()));
    }
    if ms > path.cap() {
        return Err(AccessError::TooLong {
            asked: text.to_owned(),
            path: path.name(),
            cap: format_duration(path.cap()),
        });
    }
    Ok(ms)
}

/// A content-derived id: `prefix-` and 16 hex digits of the seed's BLAKE3 hash.
pub(crate) fn id(prefix: &str, seed: &str) -> String {
    let hex = blake3::hash(seed.as_bytes()).to_hex();
    format!("{prefix}-{}", hex.get(..16).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_capped_by_path() {
        assert_eq!(duration("2h", Path::Standard), Ok(2 * HOUR));
        assert_eq!(duration("1d", Path::Standard), Ok(24 * HOUR));
        assert_eq!(duration("30m", Path::BreakGlass), Ok(30 * MINUTE));
        assert_eq!(duration("4h", Path::BreakGlass), Ok(4 * HOUR));
        let e = duration("5h", Path::BreakGlass).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`--for 5h` is longer than break-glass access may last (4h at most)"
        );
        assert!(matches!(
            duration("8d", Path::Standard),
            Err(AccessError::TooLong { .. })
        ));
        assert!(matches!(
            duration("30s", Path::Standard),
            Err(AccessError::TooShort(_))
        ));
        assert!(matches!(
            duration("soon", Path::Standard),
            Err(AccessError::BadDuration(_))
        ));
    }
}
