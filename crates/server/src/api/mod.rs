//! The JSON API's handlers, one module per resource; `crate::router` mounts them and
//! `crate::openapi` lists them.
//!
//! Every answer is a type of its module, deriving `Serialize` and `utoipa::ToSchema`, so the
//! document describes the bytes sent. Their fields are declared in alphabetical order, the
//! order the API has always sent (see [`schema`]).

pub(crate) mod access;
pub(crate) mod admin;
pub(crate) mod audit;
pub(crate) mod broker;
pub(crate) mod findings;
pub mod github;
pub(crate) mod govern;
pub(crate) mod health;
pub(crate) mod identities;
pub(crate) mod ingest;
pub(crate) mod respond;
pub(crate) mod schema;

use crate::error::ApiError;

/// The largest page a listing answers.
pub(crate) const MAX_PAGE: usize = 1_000;

/// A query value parsed by `parse`; 400 naming `what` when it does not parse.
pub(crate) fn parse_one<T>(
    v: &str,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, ApiError> {
    parse(v).ok_or_else(|| ApiError::bad_request(format!("unknown {what} `{v}`")))
}

pub(crate) fn parse_opt<T>(
    value: Option<&str>,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    value.map(|v| parse_one(v, what, parse)).transpose()
}
