//! AWS CloudTrail records → events and identity observations.
//!
//! Reads every shape CloudTrail is delivered in: S3 files `{"Records":[…]}` (one line),
//! bare arrays, JSON lines, and `lookup-events` / CloudTrail Lake exports where each event is
//! a JSON string under `CloudTrailEvent`. Discovery happens here: every `userIdentity.type`
//! becomes an identity, STS calls reveal sessions, their temporary keys and who assumed
//! them, web-identity calls reveal OIDC subjects (GitHub Actions, EKS IRSA), and IAM calls
//! reveal created, deleted and re-keyed identities.

use std::borrow::Cow;
use std::collections::BTreeMap;

use keyward_model::ids::{self, AccessKeyType};
use keyward_model::{
    Credential, CredentialKind, CredentialStatus, Diagnostic, Event, IdentityKind, Observation,
    Platform, SourceKind, time,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::lenient::{JStr, JsonKind, LStr, Obj};
use crate::scan::{Bail, R, Scalar, Scan};
use std::fmt::Write as _;
use std::sync::Arc;

use crate::{LineCounter, Memo, Output, Sink, Touch, json_error, sniff::trim_start};

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct Record<'a> {
    #[serde(rename = "eventID")]
    event_id: LStr<'a>,
    event_time: LStr<'a>,
    event_source: LStr<'a>,
    event_name: LStr<'a>,
    aws_region: LStr<'a>,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: LStr<'a>,
    user_agent: LStr<'a>,
    error_code: LStr<'a>,
    recipient_account_id: LStr<'a>,
    #[serde(rename = "sharedEventID")]
    shared_event_id: LStr<'a>,
    user_identity: Obj<UserIdentity<'a>>,
    request_parameters: Obj<Request<'a>>,
    response_elements: Obj<Response<'a>>,
    /// `lookup-events` and CloudTrail Lake wrap the record as a JSON string.
    #[serde(rename = "CloudTrailEvent", alias = "eventJson", alias = "eventjson")]
    wrapped: LStr<'a>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct UserIdentity<'a> {
    #[serde(rename = "type")]
    ty: JStr<'a>,
    principal_id: LStr<'a>,
    arn: JStr<'a>,
    account_id: LStr<'a>,
    access_key_id: LStr<'a>,
    user_name: LStr<'a>,
    invoked_by: LStr<'a>,
    identity_provider: LStr<'a>,
    credential_id: LStr<'a>,
    session_context: Obj<SessionContext<'a>>,
    on_behalf_of: Obj<OnBehalfOf<'a>>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct SessionContext<'a> {
    session_issuer: Obj<Issuer<'a>>,
    web_id_federation_data: Obj<WebIdFederation<'a>>,
    source_identity: LStr<'a>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct Issuer<'a> {
    #[serde(rename = "type")]
    ty: JStr<'a>,
    principal_id: LStr<'a>,
    arn: LStr<'a>,
    user_name: LStr<'a>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct WebIdFederation<'a> {
    federated_provider: LStr<'a>,
    attributes: Obj<BTreeMap<String, LStr<'a>>>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct OnBehalfOf<'a> {
    user_id: LStr<'a>,
    identity_store_arn: LStr<'a>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct Request<'a> {
    role_arn: LStr<'a>,
    role_session_name: LStr<'a>,
    source_identity: LStr<'a>,
    user_name: LStr<'a>,
    role_name: LStr<'a>,
    access_key_id: LStr<'a>,
    status: LStr<'a>,
    name: LStr<'a>,
    assume_role_policy_document: LStr<'a>,
    policy_document: LStr<'a>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct Response<'a> {
    credentials: Obj<Creds<'a>>,
    assumed_role_user: Obj<AssumedRoleUser<'a>>,
    subject_from_web_identity_token: LStr<'a>,
    provider: LStr<'a>,
    audience: LStr<'a>,
    source_identity: LStr<'a>,
    access_key: Obj<AccessKey<'a>>,
    user: Obj<Principal<'a>>,
    role: Obj<Principal<'a>>,
    federated_user: Obj<FederatedUser<'a>>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct Creds<'a> {
    access_key_id: LStr<'a>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct AssumedRoleUser<'a> {
    arn: LStr<'a>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct AccessKey<'a> {
    access_key_id: LStr<'a>,
    user_name: LStr<'a>,
    status: LStr<'a>,
    create_date: LStr<'a>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct Principal<'a> {
    user_name: LStr<'a>,
    role_name: LStr<'a>,
    arn: LStr<'a>,
    user_id: LStr<'a>,
    role_id: LStr<'a>,
    create_date: LStr<'a>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default, rename_all = "camelCase", bound(deserialize = "'de: 'a"))]
struct FederatedUser<'a> {
    arn: LStr<'a>,
}

/// The fast path (see [`crate::scan`]): reads the record whose first byte is at `start` of
/// `text` into `rec` (a fresh default) and returns the index just past it. `None` when the
/// serde path must decide: anything the scanner leaves to it, a duplicate field (serde
/// rejects the record), or a record wrapped in `CloudTrailEvent`. The record is filled in
/// place: it is large, and moving it by value was a tenth of this path's time.
fn fast<'a>(text: &'a str, start: usize, rec: &mut Record<'a>) -> Option<usize> {
    let mut sc = Scan::new(text, start);
    record_fast(&mut sc, rec).ok()?;
    rec.wrapped.0.is_none().then_some(sc.pos)
}

/// Bytes of a records array checked as UTF-8 at a time, just ahead of the records read
/// from them: the block is still in cache when they are parsed. (Checking the whole array
/// first would read a file's worth of bytes from memory twice.)
const UTF8_BLOCK: usize = 256 * 1024;

/// The part of a records array checked as UTF-8 (`text`, `None` when it is not), from
/// `from` to `end`, checked `block` bytes at a time ([`UTF8_BLOCK`] but in tests and fuzzing).
struct Checked<'a> {
    from: usize,
    end: usize,
    text: Option<&'a str>,
    block: usize,
}

impl<'a> Checked<'a> {
    /// Checks `array[from..]` up to a block's length, or up to `min_end` when that is
    /// further; the end is moved back to a character boundary.
    fn new(array: &'a [u8], from: usize, min_end: usize, block: usize) -> Self {
        let mut end = from.saturating_add(block).max(min_end).min(array.len());
        // Back off continuation bytes (at most three) so no character is cut.
        while end > from && array.get(end).is_some_and(|b| b & 0xC0 == 0x80) {
            end -= 1;
        }
        let text = array
            .get(from..end)
            .and_then(|b| std::str::from_utf8(b).ok());
        Checked {
            from,
            end,
            text,
            block,
        }
    }

    /// The fast path on the record at `start`, in the block holding it (a new one from
    /// `start` when the current one ends before).
    fn fast(&mut self, array: &'a [u8], start: usize, rec: &mut Record<'a>) -> Option<usize> {
        if start < self.from || start >= self.end {
            *self = Checked::new(array, start, 0, self.block);
        }
        let t = self.text?;
        fast(t, start - self.from, rec).map(|end| self.from + end)
    }

    /// The fast path failed on the record `array[start..end]` (as the splitter found it):
    /// when the record runs past the checked block, checks from its start and tries again.
    fn again(
        &mut self,
        array: &'a [u8],
        start: usize,
        end: usize,
        rec: &mut Record<'a>,
    ) -> Option<usize> {
        if start >= self.from && end <= self.end {
            return None;
        }
        *self = Checked::new(array, start, end, self.block);
        *rec = Record::default();
        self.fast(array, start, rec).filter(|&e| e == end)
    }
}

/// Marks field `bit` of an object seen; a second sighting is the serde path's to reject.
fn once(seen: &mut u32, bit: u32) -> R<()> {
    if *seen & (1 << bit) != 0 {
        return Err(Bail);
    }
    *seen |= 1 << bit;
    Ok(())
}

/// Stores a field's value, once (see [`once`]).
fn put<T>(seen: &mut u32, bit: u32, slot: &mut T, value: R<T>) -> R<()> {
    once(seen, bit)?;
    *slot = value?;
    Ok(())
}

/// A string field as [`JStr`] deserializes it.
fn jstr<'a>(sc: &mut Scan<'a>, depth: usize) -> R<JStr<'a>> {
    Ok(match sc.scalar(depth)? {
        Scalar::Str(s) => JStr {
            text: LStr(Some(s)),
            json: Some(JsonKind::String),
        },
        Scalar::Bool(b) => JStr {
            text: LStr(Some(Cow::Borrowed(if b { "true" } else { "false" }))),
            json: Some(JsonKind::Other),
        },
        Scalar::Null | Scalar::Container => JStr {
            text: LStr(None),
            json: Some(JsonKind::Other),
        },
    })
}

fn lstr<'a>(sc: &mut Scan<'a>, depth: usize) -> R<LStr<'a>> {
    jstr(sc, depth).map(|j| j.text)
}

/// An object field as [`Obj`] deserializes it, stored once (see [`once`]): `walk` reads
/// an object (the scanner at its `{`) into the field's value; any other value but a number
/// is skipped and leaves the field absent (the slot is fresh).
fn put_obj<'a, T: Default>(
    seen: &mut u32,
    bit: u32,
    sc: &mut Scan<'a>,
    depth: usize,
    slot: &mut Obj<T>,
    walk: impl FnOnce(&mut Scan<'a>, usize, &mut T) -> R<()>,
) -> R<()> {
    once(seen, bit)?;
    match sc.peek() {
        Some(b'{') if depth < crate::scan::MAX_DEPTH => {
            walk(sc, depth + 1, slot.0.insert(T::default()))
        }
        Some(b'-' | b'0'..=b'9') | None => Err(Bail),
        Some(_) => sc.skip(depth),
    }
}

fn record_fast<'a>(sc: &mut Scan<'a>, r: &mut Record<'a>) -> R<()> {
    let mut seen = 0;
    let d = 1;
    sc.ws();
    sc.object(|sc, key| {
        match key {
            "eventID" => put(&mut seen, 0, &mut r.event_id, lstr(sc, d))?,
            "eventTime" => put(&mut seen, 1, &mut r.event_time, lstr(sc, d))?,
            "eventSource" => put(&mut seen, 2, &mut r.event_source, lstr(sc, d))?,
            "eventName" => put(&mut seen, 3, &mut r.event_name, lstr(sc, d))?,
            "awsRegion" => put(&mut seen, 4, &mut r.aws_region, lstr(sc, d))?,
            "sourceIPAddress" => put(&mut seen, 5, &mut r.source_ip_address, lstr(sc, d))?,
            "userAgent" => put(&mut seen, 6, &mut r.user_agent, lstr(sc, d))?,
            "errorCode" => put(&mut seen, 7, &mut r.error_code, lstr(sc, d))?,
            "recipientAccountId" => put(&mut seen, 8, &mut r.recipient_account_id, lstr(sc, d))?,
            "sharedEventID" => put(&mut seen, 9, &mut r.shared_event_id, lstr(sc, d))?,
            "userIdentity" => put_obj(&mut seen, 10, sc, d, &mut r.user_identity, user_identity)?,
            "requestParameters" => {
                put_obj(&mut seen, 11, sc, d, &mut r.request_parameters, request)?
            }
            "responseElements" => {
                put_obj(&mut seen, 12, sc, d, &mut r.response_elements, response)?
            }
            "CloudTrailEvent" | "eventJson" | "eventjson" => {
                put(&mut seen, 13, &mut r.wrapped, lstr(sc, d))?
            }
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

fn user_identity<'a>(sc: &mut Scan<'a>, d: usize, u: &mut UserIdentity<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "type" => put(&mut seen, 0, &mut u.ty, jstr(sc, d))?,
            "principalId" => put(&mut seen, 1, &mut u.principal_id, lstr(sc, d))?,
            "arn" => put(&mut seen, 2, &mut u.arn, jstr(sc, d))?,
            "accountId" => put(&mut seen, 3, &mut u.account_id, lstr(sc, d))?,
            "accessKeyId" => put(&mut seen, 4, &mut u.access_key_id, lstr(sc, d))?,
            "userName" => put(&mut seen, 5, &mut u.user_name, lstr(sc, d))?,
            "invokedBy" => put(&mut seen, 6, &mut u.invoked_by, lstr(sc, d))?,
            "identityProvider" => put(&mut seen, 7, &mut u.identity_provider, lstr(sc, d))?,
            "credentialId" => put(&mut seen, 8, &mut u.credential_id, lstr(sc, d))?,
            "sessionContext" => {
                put_obj(&mut seen, 9, sc, d, &mut u.session_context, session_context)?
            }
            "onBehalfOf" => put_obj(&mut seen, 10, sc, d, &mut u.on_behalf_of, on_behalf_of)?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

fn session_context<'a>(sc: &mut Scan<'a>, d: usize, c: &mut SessionContext<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "sessionIssuer" => put_obj(&mut seen, 0, sc, d, &mut c.session_issuer, issuer)?,
            "webIdFederationData" => put_obj(
                &mut seen,
                1,
                sc,
                d,
                &mut c.web_id_federation_data,
                web_id_federation,
            )?,
            "sourceIdentity" => put(&mut seen, 2, &mut c.source_identity, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

fn issuer<'a>(sc: &mut Scan<'a>, d: usize, i: &mut Issuer<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "type" => put(&mut seen, 0, &mut i.ty, jstr(sc, d))?,
            "principalId" => put(&mut seen, 1, &mut i.principal_id, lstr(sc, d))?,
            "arn" => put(&mut seen, 2, &mut i.arn, lstr(sc, d))?,
            "userName" => put(&mut seen, 3, &mut i.user_name, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

fn web_id_federation<'a>(sc: &mut Scan<'a>, d: usize, w: &mut WebIdFederation<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "federatedProvider" => put(&mut seen, 0, &mut w.federated_provider, lstr(sc, d))?,
            // A map: a repeated key keeps its last value, as `BTreeMap` does.
            "attributes" => put_obj(&mut seen, 1, sc, d, &mut w.attributes, |sc, d, m| {
                sc.object(|sc, k| {
                    m.insert(k.to_owned(), lstr(sc, d)?);
                    Ok(())
                })
            })?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

fn on_behalf_of<'a>(sc: &mut Scan<'a>, d: usize, o: &mut OnBehalfOf<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "userId" => put(&mut seen, 0, &mut o.user_id, lstr(sc, d))?,
            "identityStoreArn" => put(&mut seen, 1, &mut o.identity_store_arn, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

fn request<'a>(sc: &mut Scan<'a>, d: usize, q: &mut Request<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "roleArn" => put(&mut seen, 0, &mut q.role_arn, lstr(sc, d))?,
            "roleSessionName" => put(&mut seen, 1, &mut q.role_session_name, lstr(sc, d))?,
            "sourceIdentity" => put(&mut seen, 2, &mut q.source_identity, lstr(sc, d))?,
            "userName" => put(&mut seen, 3, &mut q.user_name, lstr(sc, d))?,
            "roleName" => put(&mut seen, 4, &mut q.role_name, lstr(sc, d))?,
            "accessKeyId" => put(&mut seen, 5, &mut q.access_key_id, lstr(sc, d))?,
            "status" => put(&mut seen, 6, &mut q.status, lstr(sc, d))?,
            "name" => put(&mut seen, 7, &mut q.name, lstr(sc, d))?,
            "assumeRolePolicyDocument" => put(
                &mut seen,
                8,
                &mut q.assume_role_policy_document,
                lstr(sc, d),
            )?,
            "policyDocument" => put(&mut seen, 9, &mut q.policy_document, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

fn response<'a>(sc: &mut Scan<'a>, d: usize, p: &mut Response<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "credentials" => put_obj(&mut seen, 0, sc, d, &mut p.credentials, creds)?,
            "assumedRoleUser" => put_obj(
                &mut seen,
                1,
                sc,
                d,
                &mut p.assumed_role_user,
                assumed_role_user,
            )?,
            "subjectFromWebIdentityToken" => put(
                &mut seen,
                2,
                &mut p.subject_from_web_identity_token,
                lstr(sc, d),
            )?,
            "provider" => put(&mut seen, 3, &mut p.provider, lstr(sc, d))?,
            "audience" => put(&mut seen, 4, &mut p.audience, lstr(sc, d))?,
            "sourceIdentity" => put(&mut seen, 5, &mut p.source_identity, lstr(sc, d))?,
            "accessKey" => put_obj(&mut seen, 6, sc, d, &mut p.access_key, access_key)?,
            "user" => put_obj(&mut seen, 7, sc, d, &mut p.user, principal)?,
            "role" => put_obj(&mut seen, 8, sc, d, &mut p.role, principal)?,
            "federatedUser" => put_obj(&mut seen, 9, sc, d, &mut p.federated_user, federated_user)?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

fn creds<'a>(sc: &mut Scan<'a>, d: usize, c: &mut Creds<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "accessKeyId" => put(&mut seen, 0, &mut c.access_key_id, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

fn assumed_role_user<'a>(sc: &mut Scan<'a>, d: usize, a: &mut AssumedRoleUser<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "arn" => put(&mut seen, 0, &mut a.arn, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

fn access_key<'a>(sc: &mut Scan<'a>, d: usize, k: &mut AccessKey<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "accessKeyId" => put(&mut seen, 0, &mut k.access_key_id, lstr(sc, d))?,
            "userName" => put(&mut seen, 1, &mut k.user_name, lstr(sc, d))?,
            "status" => put(&mut seen, 2, &mut k.status, lstr(sc, d))?,
            "createDate" => put(&mut seen, 3, &mut k.create_date, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

fn principal<'a>(sc: &mut Scan<'a>, d: usize, p: &mut Principal<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "userName" => put(&mut seen, 0, &mut p.user_name, lstr(sc, d))?,
            "roleName" => put(&mut seen, 1, &mut p.role_name, lstr(sc, d))?,
            "arn" => put(&mut seen, 2, &mut p.arn, lstr(sc, d))?,
            "userId" => put(&mut seen, 3, &mut p.user_id, lstr(sc, d))?,
            "roleId" => put(&mut seen, 4, &mut p.role_id, lstr(sc, d))?,
            "createDate" => put(&mut seen, 5, &mut p.create_date, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

fn federated_user<'a>(sc: &mut Scan<'a>, d: usize, f: &mut FederatedUser<'a>) -> R<()> {
    let mut seen = 0;
    sc.object(|sc, key| {
        match key {
            "arn" => put(&mut seen, 0, &mut f.arn, lstr(sc, d))?,
            _ => sc.skip(d)?,
        };
        Ok(())
    })
}

/// Normalizes one record (raw, or wrapped in `CloudTrailEvent`). `Ok(None)` is never
/// returned for CloudTrail: every record is an event.
pub fn normalize_record(bytes: &[u8]) -> Result<Option<Output<'_>>, String> {
    normalize_record_with(bytes, |b| sonic_rs::from_slice(b).map_err(json_error), None)
}

/// [`normalize_record`] with the caller memo: a caller already seen, in a record that
/// changes no identity, yields a shared [`Touch`] instead of observations.
pub fn normalize_record_memo<'a>(
    bytes: &'a [u8],
    memo: &mut Memo,
) -> Result<Option<Output<'a>>, String> {
    normalize_record_with(
        bytes,
        |b| sonic_rs::from_slice(b).map_err(json_error),
        Some(memo),
    )
}

/// The same with `serde_json` as the parser: the oracle of the differential fuzz target
/// (sonic-rs is fast SIMD code from one vendor; serde_json is the reference).
#[doc(hidden)]
pub fn normalize_record_serde_json(bytes: &[u8]) -> Result<Option<Output<'_>>, String> {
    normalize_record_with(
        bytes,
        |b| serde_json::from_slice(b).map_err(json_error),
        None,
    )
}

/// For tests and the fuzz target `cloudtrail_fast`: how the fast path reads `bytes` (one
/// record) next to the serde path. `Ok(true)`: it decided, and read exactly what serde
/// reads; `Ok(false)`: it left the record to serde; `Err`: they differ.
#[doc(hidden)]
pub fn fast_path_agrees(bytes: &[u8]) -> Result<bool, String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(false);
    };
    let mut rec = Record::default();
    let Some(end) = fast(text, 0, &mut rec) else {
        return Ok(false);
    };
    if !text
        .get(end..)
        .unwrap_or_default()
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .is_empty()
    {
        // It read a record followed by more bytes: whether those are allowed is the
        // caller's to say (the array splitter's, in an S3 object).
        return Ok(false);
    }
    match sonic_rs::from_slice::<Record>(bytes) {
        Ok(serde) if serde == rec => Ok(true),
        Ok(serde) => Err(format!("fast path read {rec:?}, serde {serde:?}")),
        Err(e) => Err(format!(
            "fast path accepted a record serde rejects ({e}): {rec:?}"
        )),
    }
}

/// Whether a document reads the same with its records' UTF-8 checked `block` bytes at a time
/// as with the default block: every output and rejection, in order, with its line and
/// record index (how many there were, when they agree) (the differential fuzz target `cloudtrail_blocks`; small blocks cut
/// records and multi-byte characters everywhere).
#[doc(hidden)]
pub fn blocks_agree(doc: &[u8], block: usize) -> Result<usize, String> {
    #[derive(Default)]
    struct Log(Vec<String>);
    impl Sink for Log {
        fn accept(&mut self, out: Output<'_>) {
            self.0.push(format!("{out:?}"));
        }
        fn reject(&mut self, d: Diagnostic) {
            self.0.push(format!("{d:?}"));
        }
    }
    let (mut whole, mut cut) = (Log::default(), Log::default());
    document_in_blocks(doc, &mut Memo::default(), &mut whole, UTF8_BLOCK);
    document_in_blocks(doc, &mut Memo::default(), &mut cut, block.max(1));
    if whole.0.len() != cut.0.len() {
        return Err(format!(
            "{} outputs in one block, {} in blocks of {block}",
            whole.0.len(),
            cut.0.len()
        ));
    }
    match whole.0.iter().zip(&cut.0).position(|(a, b)| a != b) {
        None => Ok(whole.0.len()),
        Some(i) => Err(format!(
            "output {i} differs in blocks of {block}: {:?} against {:?}",
            whole.0.get(i),
            cut.0.get(i)
        )),
    }
}

/// The output of a record read by the fast path, as [`normalize_record_with`] gives it.
fn rec_output<'a>(
    rec: &mut Record<'a>,
    raw: &'a [u8],
    memo: &mut Memo,
) -> Result<Option<Output<'a>>, String> {
    from_record(rec, raw, Some(memo)).map(|mut o| {
        o.raw = Some(Cow::Borrowed(raw));
        Some(o)
    })
}

/// Measures the record's nesting (see [`crate::depth`]), then parses it.
fn normalize_record_with<'a>(
    bytes: &'a [u8],
    parse: impl for<'x> Fn(&'x [u8]) -> Result<Record<'x>, String>,
    memo: Option<&mut Memo>,
) -> Result<Option<Output<'a>>, String> {
    crate::depth::check(bytes)?;
    parse_record_with(bytes, parse, memo)
}

/// [`normalize_record_with`] for a record already measured (cut by the array splitter).
fn parse_record_with<'a>(
    bytes: &'a [u8],
    parse: impl for<'x> Fn(&'x [u8]) -> Result<Record<'x>, String>,
    memo: Option<&mut Memo>,
) -> Result<Option<Output<'a>>, String> {
    let mut rec: Record<'a> = parse(bytes)?;
    if let Some(text) = rec.wrapped.get() {
        // The inner record borrows from this one: its output must own its strings. It
        // is text inside a string, never measured with the record that holds it.
        let mut inner: Record = crate::depth::check(text.as_bytes())
            .and_then(|()| parse(text.as_bytes()))
            .map_err(|e| format!("`CloudTrailEvent` string: {e}"))?;
        return from_record(&mut inner, text.as_bytes(), memo).map(|mut o| {
            o.raw = Some(Cow::Owned(text.as_bytes().to_vec()));
            Some(o.into_owned())
        });
    }
    from_record(&mut rec, bytes, memo).map(|mut o| {
        o.raw = Some(Cow::Borrowed(bytes));
        Some(o)
    })
}

/// Where the record array of a wrapper document starts, when `Records` / `Events` is the first
/// key (as in every S3 delivery file): the array is then read in one pass, and a document cut
/// short still yields every record before the cut.
fn leading_array(d: &[u8]) -> Option<usize> {
    let ws = |b: &[u8], mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        i
    };
    let mut i = ws(d, 0);
    if d.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(d, i + 1);
    let rest = d.get(i..)?;
    let key_len = [&b"\"Records\""[..], &b"\"Events\""[..]]
        .into_iter()
        .find(|k| rest.starts_with(k))?
        .len();
    i = ws(d, i + key_len);
    if d.get(i) != Some(&b':') {
        return None;
    }
    i = ws(d, i + 1);
    (d.get(i) == Some(&b'[')).then_some(i)
}

/// Normalizes a document: `{"Records":[…]}`, `{"Events":[…]}`, a bare array, or one record.
pub fn normalize_document(doc: &[u8], memo: &mut Memo, sink: &mut dyn Sink) {
    document_in_blocks(doc, memo, sink, UTF8_BLOCK);
}

/// [`normalize_document`] with records' UTF-8 checked `block` bytes at a time.
fn document_in_blocks(doc: &[u8], memo: &mut Memo, sink: &mut dyn Sink, block: usize) {
    let mut lines = LineCounter::new(doc);
    let d = trim_start(doc);
    if d.starts_with(b"[") {
        records(d, &mut lines, memo, sink, block);
        return;
    }
    if let Some(start) = leading_array(d) {
        records(
            d.get(start..).unwrap_or_default(),
            &mut lines,
            memo,
            sink,
            block,
        );
        return;
    }
    // sonic-rs's object iterator recurses into every value it skips.
    if crate::reject_too_deep(doc, sink) {
        return;
    }
    let mut found_array = false;
    for entry in sonic_rs::to_object_iter(d) {
        match entry {
            Ok((key, value)) if matches!(key.as_ref(), "Records" | "Events") => {
                found_array = true;
                // `raw` borrows from `d`, so line numbers follow from its position.
                let raw = value.as_raw_str().as_bytes();
                lines.line_of(raw);
                records(raw, &mut lines, memo, sink, block);
            }
            Ok((key, value)) if key.as_ref() == "QueryResultRows" => {
                // CloudTrail Lake `get-query-results`: rows of single-column cells; the
                // `eventJson` cell holds the record.
                found_array = true;
                lake_rows(value.as_raw_str().as_bytes(), &mut lines, memo, sink);
            }
            Ok(_) => {}
            Err(e) => {
                sink.reject(Diagnostic {
                    line: lines.line,
                    record: None,
                    reason: json_error(e),
                });
                return;
            }
        }
    }
    if !found_array {
        crate::emit(sink, normalize_record_memo(d, memo), 1, None);
    }
}

fn lake_rows(rows: &[u8], lines: &mut LineCounter, memo: &mut Memo, sink: &mut dyn Sink) {
    for (idx, row) in sonic_rs::to_array_iter(rows).enumerate() {
        let Ok(row) = row else {
            sink.reject(Diagnostic {
                line: lines.line,
                record: Some(idx as u64),
                reason: "malformed `QueryResultRows`; the rest was skipped".into(),
            });
            return;
        };
        let line = lines.line_of(row.as_raw_str().as_bytes());
        let cell = sonic_rs::to_array_iter(row.as_raw_str())
            .filter_map(Result::ok)
            .find(|c| crate::sniff::first_key(c.as_raw_str().as_bytes()) == Some("eventJson"));
        let Some(cell) = cell else {
            sink.reject(Diagnostic {
                line,
                record: Some(idx as u64),
                reason: "row without an `eventJson` column (select `eventJson` in the Lake query)"
                    .into(),
            });
            continue;
        };
        crate::emit(
            sink,
            normalize_record_memo(cell.as_raw_str().as_bytes(), memo),
            line,
            Some(idx as u64),
        )
    }
}

/// Parse-only baseline for benchmarks: reads every record of a document into the same
/// typed struct ingestion uses, the same way (the fast path, serde where it cannot
/// decide), and nothing else. Returns the number of records.
#[doc(hidden)]
pub fn parse_only(doc: &[u8]) -> usize {
    let d = trim_start(doc);
    let array = match leading_array(d) {
        Some(start) => d.get(start..).unwrap_or_default(),
        None => d,
    };
    let mut checked = Checked::new(array, 0, 0, UTF8_BLOCK);
    let mut elements = crate::split::elements(array);
    let mut n = 0;
    while let Some(Ok(start)) = elements.start() {
        if let Some(end) = checked.fast(array, start, &mut Record::default()) {
            elements.ended_at(end);
            n += 1;
        } else if let Ok(raw) = elements.element(start) {
            if elements.too_deep() {
                continue;
            }
            let end = start + raw.len();
            n += usize::from(
                checked
                    .again(array, start, end, &mut Record::default())
                    .is_some()
                    || sonic_rs::from_slice::<Record>(raw).is_ok(),
            );
        } else {
            break;
        }
    }
    n
}

/// Records parsed before the sink takes them: the parser's code and the sink's (store,
/// inventory, detection) each run several records in a row, instead of evicting each
/// other from the instruction cache at every record. The sink sees the same records in the
/// same order.
const PARSE_AHEAD: usize = 16;

fn records(
    array: &[u8],
    lines: &mut LineCounter,
    memo: &mut Memo,
    sink: &mut dyn Sink,
    block: usize,
) {
    let mut parsed: Vec<crate::Ahead> = Vec::with_capacity(PARSE_AHEAD);
    fn flush(parsed: &mut Vec<crate::Ahead>, sink: &mut dyn Sink) {
        if !parsed.is_empty() {
            sink.accept_ahead(parsed);
            // A sink that left records behind has dropped them: never handed on twice.
            parsed.clear();
        }
    }
    // Each record is read once by the fast path where it can decide (its end is then
    // known too); otherwise it is split off without a parse, then parsed (and validated)
    // once by serde. UTF-8 is checked a block at a time, once (see [`Checked`]).
    let mut checked = Checked::new(array, 0, 0, block);
    let mut elements = crate::split::elements(array);
    let mut idx = 0;
    while let Some(start) = elements.start() {
        let item = start.and_then(|start| {
            let mut rec = Record::default();
            if let Some(end) = checked.fast(array, start, &mut rec) {
                elements.ended_at(end);
                let raw = array.get(start..end).unwrap_or_default();
                return Ok((raw, Some(rec_output(&mut rec, raw, memo))));
            }
            let raw = elements.element(start)?;
            if elements.too_deep() {
                return Ok((raw, Some(Err(crate::TOO_DEEP.to_owned()))));
            }
            // A record the block's end cut: the fast path tries it again, checked whole.
            if checked
                .again(array, start, start + raw.len(), &mut rec)
                .is_some()
            {
                return Ok((raw, Some(rec_output(&mut rec, raw, memo))));
            }
            Ok((raw, None))
        });
        match item {
            Ok((raw, result)) => {
                let line = lines.line_of(raw);
                parsed.push(crate::Ahead {
                    // Measured by the splitter as it cut the record.
                    result: result.unwrap_or_else(|| {
                        parse_record_with(
                            raw,
                            |b| sonic_rs::from_slice(b).map_err(json_error),
                            Some(memo),
                        )
                    }),
                    line,
                    record: Some(idx),
                });
                if parsed.len() >= PARSE_AHEAD {
                    flush(&mut parsed, sink);
                }
            }
            Err(e) => {
                flush(&mut parsed, sink);
                sink.reject(Diagnostic {
                    line: lines.line,
                    record: Some(idx),
                    reason: format!("{e}; the rest of the document was skipped"),
                });
                return;
            }
        }
        idx += 1;
    }
    flush(&mut parsed, sink);
}

fn aws(id: String, kind: IdentityKind, name: &str) -> Observation {
    Observation::new(id, Platform::Aws, kind, name, SourceKind::Cloudtrail)
}

/// Parses the Java-style dates CloudTrail puts in `responseElements`
/// (`Nov 10, 2026 8:15:02 AM`, `Nov 10, 2026, 8:15:02 AM`) as well as ISO 8601.
pub fn parse_time(s: &str) -> Option<i64> {
    if let Some(t) = time::parse(s) {
        return Some(t);
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let cleaned = s.replace(',', " ");
    let mut it = cleaned.split_whitespace();
    let mon = it.next()?;
    let month = MONTHS.iter().position(|m| *m == mon)? as i64 + 1;
    let day: i64 = it.next()?.parse().ok()?;
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (mut h, m, sec) = (
        hms.next()??,
        hms.next()??,
        hms.next().flatten().unwrap_or(0),
    );
    match it.next() {
        Some("PM") if h < 12 => h += 12,
        Some("AM") if h == 12 => h = 0,
        _ => {}
    }
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(
        time::days_from_civil(year, month, day) * time::MS_PER_DAY
            + ((h * 60 + m) * 60 + sec) * 1000,
    )
}

/// Parses a GitHub Actions OIDC `sub` claim: `repo:<org>/<repo>:ref:<ref>`,
/// `…:environment:<env>`, `…:pull_request`, and customised templates with further
/// `key:value` pairs (`job_workflow_ref`, `context`, …).
pub fn github_subject(sub: &str) -> Option<Value> {
    let rest = sub.strip_prefix("repo:")?;
    let mut parts = rest.split(':');
    let repository = parts.next()?;
    let (owner, _) = repository.split_once('/')?;
    let mut claims = serde_json::Map::new();
    claims.insert("repository".into(), json!(repository));
    claims.insert("owner".into(), json!(owner));
    while let Some(key) = parts.next() {
        match key {
            "pull_request" => {
                claims.insert("pull_request".into(), json!(true));
            }
            "ref" => {
                let r = parts.next().unwrap_or_default();
                if let Some(b) = r.strip_prefix("refs/heads/") {
                    claims.insert("branch".into(), json!(b));
                } else if let Some(t) = r.strip_prefix("refs/tags/") {
                    claims.insert("tag".into(), json!(t));
                }
                claims.insert("ref".into(), json!(r));
            }
            other => {
                let v = parts.next().unwrap_or_default();
                claims.insert(other.to_owned(), json!(v));
            }
        }
    }
    Some(Value::Object(claims))
}

/// Splits an EKS IRSA subject `system:serviceaccount:<ns>:<name>`.
pub fn irsa_subject(sub: &str) -> Option<(&str, &str)> {
    sub.strip_prefix("system:serviceaccount:")?.split_once(':')
}

/// An OIDC subject observation with its platform and parsed claims.
fn oidc_subject(issuer: &str, sub: &str) -> Observation {
    let key = ids::issuer_key(issuer);
    let mut o = Observation::new(
        ids::oidc(issuer, sub),
        Platform::Oidc,
        IdentityKind::OidcSubject,
        sub,
        SourceKind::Cloudtrail,
    );
    o.facts.subject = Some(sub.to_owned());
    o.facts.issuer = Some(key.to_owned());
    if key.starts_with("token.actions.githubusercontent.com") {
        o.platform = Platform::Github;
        if let Some(claims) = github_subject(sub) {
            o.facts.details.insert("github".into(), claims);
        }
    } else if let Some((ns, sa)) = irsa_subject(sub) {
        o.platform = Platform::Kubernetes;
        o.facts.namespace = Some(ns.to_owned());
        o.facts.details.insert(
            "irsa".into(),
            json!({"namespace": ns, "service_account": sa}),
        );
    }
    o
}

fn key_observation(key: &str, parent: &str, at: i64, used: bool) -> Option<Observation> {
    let kind = match ids::access_key_type(key)? {
        AccessKeyType::LongTerm => IdentityKind::AccessKey,
        AccessKeyType::Temporary => IdentityKind::TemporaryAccessKey,
    };
    let mut o = aws(key.to_owned(), kind, key);
    o.facts.account = ids::account_from_access_key(key);
    o.facts.parent = Some(parent.to_owned());
    if used {
        o.used_at = Some(at);
    } else {
        o.seen_at = Some(at);
    }
    Some(o)
}

fn credential(id: &str, kind: CredentialKind, status: CredentialStatus) -> Credential {
    Credential {
        id: id.to_owned(),
        kind,
        status,
        created: None,
        last_used: None,
        last_used_region: None,
        last_used_service: None,
    }
}

fn account_of(arn: &str) -> Option<String> {
    ids::Arn::parse(arn)
        .map(|a| a.account.to_owned())
        .filter(|a| !a.is_empty())
}

/// Observations for the caller; returns the caller's canonical id.
fn actor(rec: &Record, at: i64, obs: &mut Vec<Observation>) -> Option<String> {
    let ui = rec.user_identity.get()?;
    let region = rec.aws_region.get();
    let account = ui
        .account_id
        .owned()
        .or_else(|| ui.arn.get().and_then(account_of));
    let sc = ui.session_context.get();
    let id = match ui.ty.get().unwrap_or("Unknown") {
        "IAMUser" => {
            let arn = ui.arn.get();
            let acct = account.clone()?;
            let name = ui
                .user_name
                .get()
                .or_else(|| arn.and_then(|a| a.rsplit('/').next()))?;
            let id = arn
                .and_then(ids::canonical_iam_arn)
                .unwrap_or_else(|| ids::iam(&acct, "user", name));
            let mut u = aws(id.clone(), IdentityKind::IamUser, name);
            u.used_at = Some(at);
            u.facts.arn = arn.map(str::to_owned);
            u.facts.account = Some(acct);
            u.facts.native_id = ui.principal_id.owned();
            if let Some(key) = ui.access_key_id.get() {
                if ids::access_key_type(key) == Some(AccessKeyType::LongTerm) {
                    let mut c =
                        credential(key, CredentialKind::AccessKey, CredentialStatus::Unknown);
                    c.last_used = Some(at);
                    c.last_used_region = region.map(str::to_owned);
                    c.last_used_service = rec
                        .event_source
                        .get()
                        .map(|s| ids::service_name(s).to_owned());
                    u.facts.credentials.push(c);
                }
                obs.extend(key_observation(key, &id, at, true));
            }
            obs.push(u);
            id
        }
        "AssumedRole" => {
            let arn = ui.arn.get()?;
            let (acct, role_name, session) = ids::split_assumed_role(arn)?;
            let issuer = sc.and_then(|s| s.session_issuer.get());
            let role_arn = issuer.and_then(|i| i.arn.get());
            let role_id = role_arn
                .and_then(ids::canonical_iam_arn)
                .unwrap_or_else(|| ids::iam(acct, "role", role_name));
            let mut role = aws(role_id.clone(), IdentityKind::IamRole, role_name);
            role.used_at = Some(at);
            role.facts.arn = role_arn.map(str::to_owned);
            role.facts.account = Some(acct.to_owned());
            role.facts.native_id = issuer.and_then(|i| i.principal_id.owned());
            let mut s = aws(arn.to_owned(), IdentityKind::StsSession, session);
            s.used_at = Some(at);
            s.facts.arn = Some(arn.to_owned());
            s.facts.account = Some(acct.to_owned());
            s.facts.parent = Some(role_id.clone());
            s.facts.source_identity = sc.and_then(|c| c.source_identity.owned());
            if let Some(web) = sc.and_then(|c| c.web_id_federation_data.get())
                && let Some(provider) = web.federated_provider.get()
            {
                let key = ids::issuer_key(provider);
                let mut claims = serde_json::Map::new();
                let mut subject = None;
                for (k, v) in web.attributes.get().into_iter().flatten() {
                    let claim = k
                        .strip_prefix(key)
                        .and_then(|c| c.strip_prefix(':'))
                        .unwrap_or(k);
                    if let Some(v) = v.get() {
                        if claim == "sub" {
                            subject = Some(v.to_owned());
                        }
                        claims.insert(claim.to_owned(), json!(v));
                    }
                }
                s.facts.details.insert(
                    "federation".into(),
                    json!({"provider": provider, "claims": Value::Object(claims.clone())}),
                );
                if let Some(sub) = subject {
                    let mut o = oidc_subject(provider, &sub);
                    o.used_at = Some(at);
                    o.facts.links.push(role_id.clone());
                    if let Some(Value::Object(gh)) = o.facts.details.get_mut("github") {
                        for (k, v) in &claims {
                            if k != "sub" && k != "aud" {
                                gh.insert(k.clone(), v.clone());
                            }
                        }
                    }
                    s.facts.assumed_by = Some(o.id.clone());
                    obs.push(o);
                }
            }
            if let Some(key) = ui.access_key_id.get() {
                obs.extend(key_observation(key, arn, at, true));
            }
            obs.push(role);
            obs.push(s);
            arn.to_owned()
        }
        "FederatedUser" => {
            let arn = ui.arn.get()?;
            let name = arn.rsplit('/').next().unwrap_or(arn);
            let mut f = aws(arn.to_owned(), IdentityKind::FederatedUser, name);
            f.used_at = Some(at);
            f.facts.arn = Some(arn.to_owned());
            f.facts.account = account.clone();
            if let Some(issuer_arn) = sc
                .and_then(|c| c.session_issuer.get())
                .and_then(|i| i.arn.get())
                && let Some(uid) = ids::canonical_iam_arn(issuer_arn)
            {
                let mut u = aws(
                    uid.clone(),
                    IdentityKind::IamUser,
                    issuer_arn.rsplit('/').next().unwrap_or(issuer_arn),
                );
                u.used_at = Some(at);
                u.facts.arn = Some(issuer_arn.to_owned());
                u.facts.account = account.clone();
                obs.push(u);
                f.facts.parent = Some(uid);
            }
            if let Some(key) = ui.access_key_id.get() {
                obs.extend(key_observation(key, arn, at, true));
            }
            obs.push(f);
            arn.to_owned()
        }
        "WebIdentityUser" => {
            let provider = ui.identity_provider.get()?;
            let sub = ui.user_name.get()?;
            let mut o = oidc_subject(provider, sub);
            o.used_at = Some(at);
            let id = o.id.clone();
            obs.push(o);
            id
        }
        "SAMLUser" => {
            let provider = ui.identity_provider.get()?;
            let sub = ui.user_name.get()?;
            let mut o = aws(ids::saml(provider, sub), IdentityKind::SamlSubject, sub);
            o.used_at = Some(at);
            o.facts.subject = Some(sub.to_owned());
            o.facts.issuer = Some(provider.to_owned());
            o.facts.account = account.clone();
            let id = o.id.clone();
            obs.push(o);
            id
        }
        "AWSService" => {
            let principal = ui.invoked_by.get()?;
            let mut o = aws(
                ids::aws_service(principal),
                IdentityKind::AwsService,
                principal,
            );
            o.used_at = Some(at);
            let id = o.id.clone();
            obs.push(o);
            id
        }
        "AWSAccount" => {
            let acct = account.clone()?;
            let mut o = aws(
                ids::account_root(&acct),
                IdentityKind::ExternalAccount,
                &acct,
            );
            o.used_at = Some(at);
            o.facts.account = Some(acct);
            let id = o.id.clone();
            obs.push(o);
            id
        }
        "Root" => {
            let acct = account.clone()?;
            let mut o = aws(ids::account_root(&acct), IdentityKind::AccountRoot, "root");
            o.used_at = Some(at);
            o.facts.account = Some(acct);
            o.facts.arn = ui.arn.owned();
            if let Some(key) = ui.access_key_id.get() {
                obs.extend(key_observation(key, &o.id, at, true));
            }
            let id = o.id.clone();
            obs.push(o);
            id
        }
        "IdentityCenterUser" => {
            let on_behalf = ui.on_behalf_of.get()?;
            let user = on_behalf.user_id.get()?;
            let store = on_behalf
                .identity_store_arn
                .get()
                .map(|a| a.rsplit('/').next().unwrap_or(a))
                .unwrap_or("unknown");
            let mut o = aws(
                ids::identity_center(store, user),
                IdentityKind::IdentityCenterUser,
                user,
            );
            o.used_at = Some(at);
            o.facts.account = account.clone();
            o.facts.issuer = on_behalf.identity_store_arn.owned();
            if let Some(cred) = ui.credential_id.get() {
                let mut c = credential(
                    cred,
                    CredentialKind::TemporaryAccessKey,
                    CredentialStatus::Unknown,
                );
                c.last_used = Some(at);
                o.facts.credentials.push(c);
            }
            let id = o.id.clone();
            obs.push(o);
            id
        }
        // `Unknown` (failed sign-ins, some service events) names no principal we can trust.
        _ => return None,
    };
    if let Some(principal) = ui.invoked_by.get()
        && ui.ty.get() != Some("AWSService")
    {
        let mut o = aws(
            ids::aws_service(principal),
            IdentityKind::AwsService,
            principal,
        );
        o.used_at = Some(at);
        o.facts.links.push(id.clone());
        obs.push(o);
    }
    Some(id)
}

/// What a successful call did to identities: sessions, keys, users and roles created or
/// deleted.
fn effects(rec: &Record, actor: Option<&str>, at: i64, obs: &mut Vec<Observation>) {
    let name = rec.event_name.get().unwrap_or_default();
    let req = rec.request_parameters.get();
    let resp = rec.response_elements.get();
    let account = rec
        .recipient_account_id
        .owned()
        .or_else(|| rec.user_identity.get().and_then(|u| u.account_id.owned()));
    let user_id = |name: &str| account.as_deref().map(|a| ids::iam(a, "user", name));
    let actor_user = || actor.filter(|a| a.contains(":user/")).map(str::to_owned);
    match name {
        "AssumeRole" | "AssumeRoleWithWebIdentity" | "AssumeRoleWithSAML" => {
            let Some(role_arn) = req.and_then(|r| r.role_arn.get()) else {
                return;
            };
            let Some(role_id) = ids::canonical_iam_arn(role_arn) else {
                return;
            };
            let role_name = role_arn.rsplit('/').next().unwrap_or(role_arn);
            let mut role = aws(role_id.clone(), IdentityKind::IamRole, role_name);
            role.used_at = Some(at);
            role.facts.arn = Some(role_arn.to_owned());
            role.facts.account = account_of(role_arn);
            obs.push(role);
            let session_arn = resp
                .and_then(|r| r.assumed_role_user.get())
                .and_then(|u| u.arn.get());
            if name == "AssumeRoleWithWebIdentity"
                && let (Some(sub), Some(provider)) = (
                    resp.and_then(|r| r.subject_from_web_identity_token.get()),
                    resp.and_then(|r| r.provider.get()).or_else(|| {
                        rec.user_identity
                            .get()
                            .and_then(|u| u.identity_provider.get())
                    }),
                )
            {
                let mut o = oidc_subject(provider, sub);
                o.seen_at = Some(at);
                o.facts.links.push(role_id.clone());
                if let Some(aud) = resp.and_then(|r| r.audience.get()) {
                    o.facts.details.insert("audience".into(), json!(aud));
                }
                obs.push(o);
            }
            if name == "AssumeRoleWithSAML"
                && let Some(a) = actor
            {
                let mut o = aws(
                    a.to_owned(),
                    IdentityKind::SamlSubject,
                    a.rsplit('#').next().unwrap_or(a),
                );
                o.seen_at = Some(at);
                o.facts.links.push(role_id.clone());
                obs.push(o);
            }
            let Some(session_arn) = session_arn else {
                return;
            };
            let Some((acct, _, session)) = ids::split_assumed_role(session_arn) else {
                return;
            };
            let mut s = aws(session_arn.to_owned(), IdentityKind::StsSession, session);
            s.seen_at = Some(at);
            s.facts.created = Some(at);
            s.facts.arn = Some(session_arn.to_owned());
            s.facts.account = Some(acct.to_owned());
            s.facts.parent = Some(role_id);
            s.facts.assumed_by = actor.map(str::to_owned);
            s.facts.source_identity = req
                .and_then(|r| r.source_identity.owned())
                .or_else(|| resp.and_then(|r| r.source_identity.owned()));
            if let Some(key) = resp
                .and_then(|r| r.credentials.get())
                .and_then(|c| c.access_key_id.get())
                && let Some(mut k) = key_observation(key, session_arn, at, false)
            {
                k.facts.created = Some(at);
                obs.push(k);
            }
            obs.push(s);
        }
        "GetFederationToken" => {
            let Some(arn) = resp
                .and_then(|r| r.federated_user.get())
                .and_then(|f| f.arn.get())
            else {
                return;
            };
            let mut f = aws(
                arn.to_owned(),
                IdentityKind::FederatedUser,
                arn.rsplit('/').next().unwrap_or(arn),
            );
            f.seen_at = Some(at);
            f.facts.created = Some(at);
            f.facts.arn = Some(arn.to_owned());
            f.facts.account = account_of(arn);
            f.facts.parent = actor.map(str::to_owned);
            f.facts.assumed_by = actor.map(str::to_owned);
            if let Some(key) = resp
                .and_then(|r| r.credentials.get())
                .and_then(|c| c.access_key_id.get())
                && let Some(mut k) = key_observation(key, arn, at, false)
            {
                k.facts.created = Some(at);
                obs.push(k);
            }
            obs.push(f);
        }
        "GetSessionToken" => {
            if let (Some(a), Some(key)) = (
                actor,
                resp.and_then(|r| r.credentials.get())
                    .and_then(|c| c.access_key_id.get()),
            ) && let Some(mut k) = key_observation(key, a, at, false)
            {
                k.facts.created = Some(at);
                k.facts.created_by = Some(a.to_owned());
                obs.push(k);
            }
        }
        "CreateUser" | "CreateRole" => {
            let Some(p) = resp.and_then(|r| {
                if name == "CreateUser" {
                    r.user.get()
                } else {
                    r.role.get()
                }
            }) else {
                return;
            };
            let (kind, ty) = if name == "CreateUser" {
                (IdentityKind::IamUser, "user")
            } else {
                (IdentityKind::IamRole, "role")
            };
            let Some(pname) = p.user_name.get().or(p.role_name.get()) else {
                return;
            };
            let arn = p.arn.get();
            let Some(id) = arn
                .and_then(ids::canonical_iam_arn)
                .or_else(|| account.as_deref().map(|a| ids::iam(a, ty, pname)))
            else {
                return;
            };
            let mut o = aws(id, kind, pname);
            o.seen_at = Some(at);
            o.facts.created = p.create_date.get().and_then(parse_time).or(Some(at));
            o.facts.arn = arn.map(str::to_owned);
            o.facts.account = arn.and_then(account_of).or_else(|| account.clone());
            o.facts.native_id = p.user_id.owned().or_else(|| p.role_id.owned());
            o.facts.created_by = actor.map(str::to_owned);
            if let Some(doc) = req.and_then(|r| r.assume_role_policy_document.get()) {
                o.facts
                    .details
                    .insert("trust_policy".into(), policy_json(doc));
            }
            obs.push(o);
        }
        "UpdateAssumeRolePolicy" => {
            if let (Some(role), Some(doc)) = (
                req.and_then(|r| r.role_name.get()),
                req.and_then(|r| r.policy_document.get()),
            ) && let Some(a) = account.as_deref()
            {
                let mut o = aws(ids::iam(a, "role", role), IdentityKind::IamRole, role);
                o.seen_at = Some(at);
                o.facts.account = Some(a.to_owned());
                o.facts
                    .details
                    .insert("trust_policy".into(), policy_json(doc));
                obs.push(o);
            }
        }
        "CreateAccessKey" => {
            let Some(k) = resp.and_then(|r| r.access_key.get()) else {
                return;
            };
            let Some(key) = k.access_key_id.get() else {
                return;
            };
            let owner = k.user_name.get().and_then(user_id).or_else(actor_user);
            let Some(owner) = owner else { return };
            let created = k.create_date.get().and_then(parse_time).or(Some(at));
            let mut c = credential(key, CredentialKind::AccessKey, CredentialStatus::Active);
            c.created = created;
            if let Some(mut ko) = key_observation(key, &owner, at, false) {
                ko.facts.created = created;
                ko.facts.created_by = actor.map(str::to_owned);
                ko.facts.credentials.push(c.clone());
                obs.push(ko);
            }
            let uname = owner.rsplit('/').next().unwrap_or(&owner).to_owned();
            let mut u = aws(owner, IdentityKind::IamUser, &uname);
            u.seen_at = Some(at);
            u.facts.account = account.clone();
            u.facts.credentials.push(c);
            obs.push(u);
        }
        "DeleteAccessKey" | "UpdateAccessKey" => {
            let Some(key) = req.and_then(|r| r.access_key_id.get()) else {
                return;
            };
            let status = if name == "DeleteAccessKey" {
                CredentialStatus::Deleted
            } else {
                match req.and_then(|r| r.status.get()) {
                    Some("Active") => CredentialStatus::Active,
                    Some("Inactive") => CredentialStatus::Inactive,
                    _ => return,
                }
            };
            let owner = req
                .and_then(|r| r.user_name.get())
                .and_then(user_id)
                .or_else(actor_user);
            if let Some(owner) = &owner {
                let uname = owner.rsplit('/').next().unwrap_or(owner);
                let mut u = aws(owner.clone(), IdentityKind::IamUser, uname);
                u.seen_at = Some(at);
                u.facts.account = account.clone();
                u.facts.credential_status.push((key.to_owned(), status));
                obs.push(u);
            }
            if let Some(mut k) =
                key_observation(key, owner.as_deref().unwrap_or_default(), at, false)
            {
                if owner.is_none() {
                    k.facts.parent = None;
                }
                k.facts.credential_status.push((key.to_owned(), status));
                if status == CredentialStatus::Deleted {
                    k.facts.deleted = Some(at);
                }
                obs.push(k);
            }
        }
        "DeleteUser" | "DeleteRole" => {
            let (kind, ty, n) = if name == "DeleteUser" {
                (
                    IdentityKind::IamUser,
                    "user",
                    req.and_then(|r| r.user_name.get()),
                )
            } else {
                (
                    IdentityKind::IamRole,
                    "role",
                    req.and_then(|r| r.role_name.get()),
                )
            };
            if let (Some(n), Some(a)) = (n, account.as_deref()) {
                let mut o = aws(ids::iam(a, ty, n), kind, n);
                o.seen_at = Some(at);
                o.facts.account = Some(a.to_owned());
                o.facts.deleted = Some(at);
                obs.push(o);
            }
        }
        "CreateLoginProfile" | "UpdateLoginProfile" | "DeleteLoginProfile" => {
            let Some(owner) = req
                .and_then(|r| r.user_name.get())
                .and_then(user_id)
                .or_else(actor_user)
            else {
                return;
            };
            let uname = owner.rsplit('/').next().unwrap_or(&owner).to_owned();
            let mut u = aws(owner, IdentityKind::IamUser, &uname);
            u.seen_at = Some(at);
            u.facts.account = account.clone();
            if name == "DeleteLoginProfile" {
                u.facts
                    .credential_status
                    .push(("password".into(), CredentialStatus::Deleted));
            } else {
                let mut c = credential(
                    "password",
                    CredentialKind::Password,
                    CredentialStatus::Active,
                );
                c.created = Some(at);
                u.facts.credentials.push(c);
                u.facts.created_by = actor
                    .filter(|a| !a.ends_with(&format!("user/{uname}")))
                    .map(str::to_owned);
            }
            obs.push(u);
        }
        _ => {}
    }
}

/// A policy document from a request parameter: JSON text, possibly URL-encoded.
pub fn policy_json(doc: &str) -> Value {
    if let Ok(v) = serde_json::from_str(doc) {
        return v;
    }
    let decoded = percent_encoding::percent_decode_str(doc).decode_utf8_lossy();
    serde_json::from_str(&decoded).unwrap_or_else(|_| Value::String(doc.to_owned()))
}

/// Calls that create, delete or re-key identities: always normalized in full.
const EFFECTS: [&str; 16] = [
    "AssumeRole",
    "AssumeRoleWithWebIdentity",
    "AssumeRoleWithSAML",
    "GetFederationToken",
    "GetSessionToken",
    "CreateUser",
    "CreateRole",
    "UpdateAssumeRolePolicy",
    "CreateAccessKey",
    "DeleteAccessKey",
    "UpdateAccessKey",
    "DeleteUser",
    "DeleteRole",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "DeleteLoginProfile",
];

/// Everything in `userIdentity` that [`actor`] reads: two records with the same signature
/// yield the same caller observations. Returns `false` when there is no caller.
fn caller_signature(rec: &Record, out: &mut String) -> bool {
    out.clear();
    let Some(ui) = rec.user_identity.get() else {
        return false;
    };
    for f in [
        &ui.ty.text,
        &ui.principal_id,
        &ui.arn.text,
        &ui.account_id,
        &ui.access_key_id,
        &ui.user_name,
        &ui.invoked_by,
        &ui.identity_provider,
        &ui.credential_id,
    ] {
        out.push_str(f.get().unwrap_or_default());
        out.push('\u{1f}');
    }
    if let Some(sc) = ui.session_context.get() {
        if let Some(i) = sc.session_issuer.get() {
            for f in [&i.ty.text, &i.principal_id, &i.arn, &i.user_name] {
                out.push_str(f.get().unwrap_or_default());
                out.push('\u{1f}');
            }
        }
        out.push_str(sc.source_identity.get().unwrap_or_default());
        out.push('\u{1f}');
        if let Some(w) = sc.web_id_federation_data.get() {
            out.push_str(w.federated_provider.get().unwrap_or_default());
            for (k, v) in w.attributes.get().into_iter().flatten() {
                let _ = write!(out, "\u{1e}{k}={}", v.get().unwrap_or_default());
            }
        }
    }
    if let Some(o) = ui.on_behalf_of.get() {
        out.push_str(o.user_id.get().unwrap_or_default());
        out.push_str(o.identity_store_arn.get().unwrap_or_default());
    }
    true
}

/// The identity fields every CloudTrail rule set probes, from the typed record: rules then
/// need not skim the raw record for them. Only answers exact by JSON type are given, and
/// only below objects the parser read (a non-object `userIdentity` leaves them unknown).
fn known<'a>(rec: &Record<'a>, out: &mut keyward_model::Known<'a>) {
    let Some(ui) = rec.user_identity.get() else {
        return;
    };
    for (path, field) in [("userIdentity.type", &ui.ty), ("userIdentity.arn", &ui.arn)] {
        if let Some(v) = field.exact() {
            out.set(path, v);
        }
    }
    if let Some(v) = ui
        .session_context
        .get()
        .and_then(|c| c.session_issuer.get())
        .and_then(|i| i.ty.exact())
    {
        out.set("userIdentity.sessionContext.sessionIssuer.type", v);
    }
}

fn from_record<'a>(
    rec: &mut Record<'a>,
    bytes: &[u8],
    memo: Option<&mut Memo>,
) -> Result<Output<'a>, String> {
    let native_id = rec
        .event_id
        .take()
        .unwrap_or_else(|| Cow::Owned(crate::content_id(bytes)));
    let raw_time = rec.event_time.get().ok_or("missing `eventTime`")?;
    let at = time::parse(raw_time).ok_or_else(|| "`eventTime` is not a timestamp".to_owned())?;
    let source = rec.event_source.get().ok_or("missing `eventSource`")?;
    let name = rec.event_name.get().ok_or("missing `eventName`")?;
    let mut out = Output::default();
    let failed = rec.error_code.get().is_some();
    let memo = memo.filter(|_| failed || !EFFECTS.contains(&name));
    let actor = if let Some(memo) = memo
        && caller_signature(rec, &mut memo.scratch)
    {
        {
            if let Some(t) = memo.callers.get(memo.scratch.as_str()) {
                let actor = t.actor.clone();
                out.touch = Some(Arc::clone(t));
                actor
            } else {
                let actor = actor(rec, at, &mut out.observations);
                let credentials = out
                    .observations
                    .iter()
                    .filter(|o| o.used_at.is_some())
                    .flat_map(|o| {
                        o.facts
                            .credentials
                            .iter()
                            .filter(|c| c.last_used == Some(at))
                            .map(|c| {
                                (
                                    o.id.clone(),
                                    c.id.clone(),
                                    c.kind == keyward_model::CredentialKind::AccessKey,
                                )
                            })
                    })
                    .collect();
                let touch = Touch {
                    actor: actor.clone(),
                    ids: out
                        .observations
                        .iter()
                        .filter(|o| o.used_at.is_some())
                        .map(|o| o.id.clone())
                        .collect(),
                    credentials,
                };
                if memo.callers.len() >= Memo::CAPACITY {
                    memo.callers.clear();
                }
                memo.callers.insert(memo.scratch.clone(), Arc::new(touch));
                actor
            }
        }
    } else {
        let actor = actor(rec, at, &mut out.observations);
        if !failed {
            effects(rec, actor.as_deref(), at, &mut out.observations);
        }
        actor
    };
    // Move the strings out of the record: they borrow from the input where they can.
    let action = Cow::Owned([source, ":", name].concat());
    let target = rec.request_parameters.0.as_mut().and_then(|r| {
        r.role_arn
            .take()
            .or_else(|| r.user_name.take())
            .or_else(|| r.role_name.take())
    });
    known(rec, &mut out.known);
    let (ui_account, credential, invoked_by) = match rec.user_identity.0.as_mut() {
        Some(u) => (
            u.account_id.take(),
            u.access_key_id.take(),
            u.invoked_by.take(),
        ),
        None => (None, None, None),
    };
    out.event = Some(Event {
        native_id,
        source: SourceKind::Cloudtrail,
        time: at,
        action,
        actor: actor.map(Cow::Owned),
        source_ip: rec.source_ip_address.take(),
        user_agent: rec.user_agent.take(),
        region: rec.aws_region.take(),
        account: rec.recipient_account_id.take().or(ui_account),
        error_code: rec.error_code.take(),
        target,
        credential,
        invoked_by,
        shared_id: rec.shared_event_id.take(),
        stage: 0,
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// UTF-8 is checked block by block: records holding multi-byte characters, across the
    /// blocks' ends, all take the fast path; a block with invalid bytes sends only its own
    /// records to serde, and parsing goes on.
    #[test]
    fn utf8_checked_by_block() {
        let record = |i: usize| {
            format!(
                r#"{{"eventVersion":"1.08","eventID":"e{i}","eventTime":"2026-11-10T08:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","userAgent":"ünïcödé 🔑 {}"}}"#,
                "é".repeat(i % 977)
            )
        };
        let n = 2_000;
        let body: Vec<String> = (0..n).map(record).collect();
        let array = format!("[{}]", body.join(",")).into_bytes();
        assert!(array.len() > 4 * UTF8_BLOCK);
        let walk = |array: &[u8]| {
            let mut checked = Checked::new(array, 0, 0, UTF8_BLOCK);
            let mut elements = crate::split::elements(array);
            let (mut fast_ok, mut slow, mut again) = (0, 0, 0);
            while let Some(Ok(start)) = elements.start() {
                let mut rec = Record::default();
                let end = match checked.fast(array, start, &mut rec) {
                    Some(end) => {
                        elements.ended_at(end);
                        Some(end)
                    }
                    None => {
                        let raw = elements.element(start).unwrap();
                        let end = start + raw.len();
                        let retried = checked.again(array, start, end, &mut rec);
                        again += usize::from(retried.is_some());
                        retried
                    }
                };
                if let Some(end) = end {
                    let raw = std::str::from_utf8(&array[start..end]).unwrap();
                    assert!(raw.starts_with('{') && raw.ends_with('}'), "{raw}");
                    let want = format!("e{}", fast_ok + slow);
                    assert_eq!(rec.event_id.get(), Some(want.as_str()));
                    fast_ok += 1;
                } else {
                    slow += 1;
                }
            }
            (fast_ok, slow, again)
        };
        // Any block size reads the document as one block does.
        let doc = [&b"{\"Records\":"[..], &array, b"}"].concat();
        for block in [1, 2, 3, 7, 64, 1000, 4096] {
            assert_eq!(blocks_agree(&doc, block), Ok(n));
        }
        // Every block's end cuts a record, tried again from its start.
        let (fast_ok, slow, again) = walk(&array);
        assert_eq!((fast_ok, slow), (n, 0));
        assert!(again >= 4, "{again}");
        assert_eq!(parse_only(&array), n);
        // One invalid byte inside a user agent, past the first block.
        let mut bad = array.clone();
        let at = bad
            .windows(4)
            .enumerate()
            .skip(UTF8_BLOCK + 1000)
            .find(|(_, w)| w == b"\xc3\xbcn\xc3")
            .map(|(i, _)| i)
            .unwrap();
        bad[at] = 0xff;
        let (fast_ok, slow, _) = walk(&bad);
        assert_eq!(fast_ok + slow, n);
        assert!(slow >= 1 && fast_ok > n / 2, "{fast_ok} {slow}");
        let bad_doc = [&b"{\"Records\":"[..], &bad, b"}"].concat();
        for block in [1, 5, 300, 70_000] {
            assert_eq!(blocks_agree(&bad_doc, block), Ok(n));
        }
    }

    /// CloudTrail records from the corpora: the Stratus detonation logs and Panther's
    /// CloudTrail samples (compact and pretty-printed).
    fn corpus_records() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let Some(root) = keyward_testkit::corpora() else {
            return out;
        };
        let dir = root.join("aws-cloudtrail-stratus-detonations/detonation-logs");
        for path in keyward_testkit::sorted_dir(&dir) {
            let doc = std::fs::read(path).unwrap();
            for raw in crate::split::elements(trim_start(&doc)) {
                out.push(raw.unwrap().to_vec());
            }
        }
        let panther = root.join("panther-labelled-events/events/AWS.CloudTrail.jsonl");
        for line in std::fs::read_to_string(panther).unwrap().lines() {
            let t: Value = serde_json::from_str(line).unwrap();
            out.push(serde_json::to_vec(&t["event"]).unwrap());
            out.push(serde_json::to_vec_pretty(&t["event"]).unwrap());
        }
        out
    }

    /// The fast path reads every record it decides exactly as serde does, and decides
    /// nearly all real ones.
    #[test]
    fn fast_path_reads_as_serde_does() {
        let records = corpus_records();
        if records.is_empty() {
            eprintln!("skipped: ../shared/corpora not found");
            return;
        }
        let mut decided = 0;
        for r in &records {
            match fast_path_agrees(r) {
                Ok(d) => decided += usize::from(d),
                Err(e) => panic!("{e}\nrecord: {}", String::from_utf8_lossy(r)),
            }
        }
        println!("fast path decided {decided} of {} records", records.len());
        assert!(
            decided * 10 >= records.len() * 9,
            "{decided} of {}",
            records.len()
        );
    }

    /// Damaged records: every byte of a sample of real records deleted, or replaced by a
    /// byte that matters to JSON. The fast path never accepts what serde rejects, and
    /// reads the same where both accept.
    #[test]
    fn fast_path_agrees_on_damaged_records() {
        let mut records = corpus_records();
        records.truncate(40);
        records.push(
            br#"{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROA:s","arn":"arn:aws:sts::1:assumed-role/r/s","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::1:role/r"},"webIdentityFederationData":{},"webIdFederationData":{"federatedProvider":"p","attributes":{"a":"1","a":"2","b":null}}}},"eventTime":"2026-11-10T00:00:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","requestParameters":{"roleArn":"arn","durationSeconds":3600,"x":[1.5e3,-0,{"y":[]}]},"responseElements":{"credentials":{"accessKeyId":"ASIA"},"user":"a string","role":[1],"accessKey":null},"readOnly":true,"errorCode":"a\"b\\c\/d\ne"}"#
                .to_vec(),
        );
        let (mut decided, mut total) = (0, 0);
        for r in &records {
            let step = (r.len() / 300).max(1);
            for i in (0..r.len()).step_by(step) {
                let mut variants = vec![[&r[..i], &r[i + 1..]].concat()];
                for b in [
                    b'"', b'\\', b'{', b'}', b'[', b',', b':', b'1', b'n', 1, 0xff,
                ] {
                    let mut v = r.clone();
                    v[i] = b;
                    variants.push(v);
                }
                variants.push(r[..i].to_vec());
                for v in variants {
                    match fast_path_agrees(&v) {
                        Ok(d) => decided += usize::from(d),
                        Err(e) => panic!("{e}\nrecord: {}", String::from_utf8_lossy(&v)),
                    }
                    total += 1;
                }
            }
        }
        println!("fast path decided {decided} of {total} damaged records");
        assert!(decided > 0);
    }

    /// Edge cases of the lenient field types, each decided by the fast path.
    #[test]
    fn fast_path_reads_lenient_fields_as_serde_does() {
        for r in [
            r#"{"eventName":null,"eventSource":true,"awsRegion":false,"userAgent":{"a":1},"errorCode":[]}"#,
            r#"{"userIdentity":null,"requestParameters":"text","responseElements":[{"a":1}]}"#,
            r#"{"userIdentity":{"type":{"x":1},"arn":null,"sessionContext":true}}"#,
            r#"{"responseElements":{"credentials":{},"federatedUser":{"arn":"a","arn2":"b"}}}"#,
            r#" { "eventID" : "a" , "eventTime" : "" } "#,
            r#"{}"#,
        ] {
            assert_eq!(fast_path_agrees(r.as_bytes()), Ok(true), "{r}");
        }
        // Left to serde: numbers where a field is read, duplicates, `\u` escapes,
        // escaped keys, a wrapped record, a record that is not an object.
        for r in [
            r#"{"eventName":1}"#,
            r#"{"eventName":"a","eventName":"b"}"#,
            r#"{"userIdentity":{"arn":"a","arn":"b"}}"#,
            r#"{"eventName":"\u0041"}"#,
            r#"{"event\u004eame":"a"}"#,
            r#"{"CloudTrailEvent":"{}"}"#,
            r#"["a"]"#,
        ] {
            assert_eq!(fast_path_agrees(r.as_bytes()), Ok(false), "{r}");
        }
    }

    #[test]
    fn java_dates() {
        assert_eq!(
            parse_time("Nov 10, 2026 8:15:02 AM"),
            time::parse("2026-11-10T08:15:02Z")
        );
        assert_eq!(
            parse_time("Nov 10, 2026, 8:15:02 PM"),
            time::parse("2026-11-10T20:15:02Z")
        );
        assert_eq!(
            parse_time("Jan 1, 2026 12:00:00 AM"),
            time::parse("2026-01-01T00:00:00Z")
        );
        assert_eq!(parse_time("garbage"), None);
    }

    #[test]
    fn github_subjects() {
        let v = github_subject("repo:acme/api:ref:refs/heads/main").unwrap();
        assert_eq!(v["repository"], "acme/api");
        assert_eq!(v["branch"], "main");
        let v = github_subject("repo:acme/api:environment:production").unwrap();
        assert_eq!(v["environment"], "production");
        let v = github_subject("repo:acme/api:pull_request").unwrap();
        assert_eq!(v["pull_request"], true);
        let v = github_subject("repo:acme/api:environment:prod:job_workflow_ref:acme/wf/.github/workflows/d.yml@refs/heads/main").unwrap();
        assert_eq!(
            v["job_workflow_ref"],
            "acme/wf/.github/workflows/d.yml@refs/heads/main"
        );
        assert_eq!(github_subject("system:serviceaccount:a:b"), None);
        assert_eq!(
            irsa_subject("system:serviceaccount:orders:api"),
            Some(("orders", "api"))
        );
    }

    /// Records parsed ahead reach the sink exactly as if each went on its own: every
    /// record, accepted or rejected, in document order, and a document cut short still
    /// yields every record before the cut.
    #[test]
    fn records_reach_the_sink_in_order() {
        #[derive(Default)]
        struct Log(Vec<String>);
        impl Sink for Log {
            fn accept(&mut self, out: Output<'_>) {
                let e = out.event.unwrap();
                self.0.push(format!("ok {}", e.native_id));
            }
            fn reject(&mut self, d: Diagnostic) {
                self.0.push(format!("err {:?}", d.record));
            }
        }
        let mut doc = String::from(r#"{"Records":["#);
        let mut want = Vec::new();
        for n in 0..40 {
            if n > 0 {
                doc.push(',');
            }
            if n == 7 || n == 23 {
                doc.push_str("[1]");
                want.push(format!("err Some({n})"));
            } else {
                doc.push_str(&format!(
                    r#"{{"eventTime":"2026-11-10T08:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","eventID":"e{n}","userIdentity":{{"type":"AWSService","invokedBy":"s3.amazonaws.com"}}}}"#
                ));
                want.push(format!("ok e{n}"));
            }
        }
        let whole = format!("{doc}]}}");
        let mut log = Log::default();
        normalize_document(whole.as_bytes(), &mut Memo::default(), &mut log);
        assert_eq!(log.0, want);
        // Cut inside the 41st record: the 40 before it, then the cut.
        let cut = format!(r#"{doc},{{"eventTime":"2026-11"#);
        let mut log = Log::default();
        normalize_document(cut.as_bytes(), &mut Memo::default(), &mut log);
        assert_eq!(log.0.get(..40), Some(&want[..]));
        assert_eq!(log.0.get(40..), Some(&["err Some(40)".to_owned()][..]));
    }

    /// The fields handed to rules are exact by JSON type: a string (even empty) or an
    /// absent field under an object the parser read; anything else stays unknown.
    #[test]
    fn known_fields_are_exact() {
        let rec = |ui: &str| {
            format!(
                r#"{{"eventTime":"2026-11-10T08:00:00Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","userIdentity":{ui}}}"#
            )
        };
        let known = |ui: &str| {
            let doc = rec(ui);
            normalize_record(doc.as_bytes())
                .unwrap()
                .unwrap()
                .into_owned()
                .known
        };
        let k = known(
            r#"{"type":"AssumedRole","arn":"","sessionContext":{"sessionIssuer":{"type":"Role"}}}"#,
        );
        assert_eq!(k.get("userIdentity.type"), Some(Some("AssumedRole")));
        assert_eq!(k.get("userIdentity.arn"), Some(Some("")));
        assert_eq!(
            k.get("userIdentity.sessionContext.sessionIssuer.type"),
            Some(Some("Role"))
        );
        let k = known(r#"{"type":7,"arn":null}"#);
        assert_eq!(k.get("userIdentity.type"), None);
        assert_eq!(k.get("userIdentity.arn"), None);
        // No session context: the issuer's type is not answered here.
        assert_eq!(
            k.get("userIdentity.sessionContext.sessionIssuer.type"),
            None
        );
        let k = known(r#"{"accountId":"111122223333"}"#);
        assert_eq!(k.get("userIdentity.type"), Some(None));
        assert_eq!(known(r#""AssumedRole""#).get("userIdentity.type"), None);
    }
}
