//! AWS CloudTrail records → events and identity observations.
//!
//! Reads every shape CloudTrail is delivered in: S3 files `{"Records":[…]}` (one line),
//! bare arrays, JSON lines, and `lookup-events` / CloudTrail Lake exports where each event is
//! a JSON string under `CloudTrailEvent`. Discovery happens here: every `userIdentity.type`
//! becomes an identity, STS calls reveal sessions, their temporary keys and who assumed
//! them, web-identity calls reveal OIDC subjects (GitHub Actions, EKS IRSA), and IAM calls
//! reveal created, deleted and re-keyed identities.

use keyward_model::Reason;
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

use crate::{
    ActiveIdentities, CallerMemo, LineCounter, Output, Sink, json_error, sniff::trim_start,
};

mod actor;
mod effects;
mod fast_path;
mod memo;
#[cfg(test)]
mod tests;

use actor::*;
pub use actor::{github_subject, irsa_subject, parse_time};
pub use effects::policy_json;
use effects::*;
use fast_path::*;
use memo::*;

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
/// returned for CloudTrail: every record is an event.
/// Normalizes one record (raw, or wrapped in `CloudTrailEvent`). `Ok(None)` is never
pub fn normalize_record(bytes: &[u8]) -> Result<Option<Output<'_>>, Reason> {
    normalize_record_with(bytes, |b| sonic_rs::from_slice(b).map_err(json_error), None)
}

/// [`normalize_record`] with the caller memo: a caller already seen, in a record that
/// changes no identity, yields a shared [`ActiveIdentities`] instead of observations.
pub fn normalize_record_memo<'a>(
    bytes: &'a [u8],
    memo: &mut CallerMemo,
) -> Result<Option<Output<'a>>, Reason> {
    normalize_record_with(
        bytes,
        |b| sonic_rs::from_slice(b).map_err(json_error),
        Some(memo),
    )
}

/// The same with `serde_json` as the parser: the oracle of the differential fuzz target
/// (sonic-rs is fast SIMD code from one vendor; serde_json is the reference).
#[cfg(any(test, fuzzing))]
pub fn normalize_record_serde_json(bytes: &[u8]) -> Result<Option<Output<'_>>, Reason> {
    normalize_record_with(
        bytes,
        |b| serde_json::from_slice(b).map_err(json_error),
        None,
    )
}

/// For tests and the fuzz target `cloudtrail_fast`: how the fast path reads `bytes` (one
/// record) next to the serde path. `Ok(true)`: it decided, and read exactly what serde
/// reads; `Ok(false)`: it left the record to serde; `Err`: they differ.
#[cfg(any(test, fuzzing))]
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
#[cfg(any(test, fuzzing))]
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
    document_in_blocks(doc, &mut CallerMemo::default(), &mut whole, UTF8_BLOCK);
    document_in_blocks(doc, &mut CallerMemo::default(), &mut cut, block.max(1));
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
    memo: &mut CallerMemo,
) -> Result<Option<Output<'a>>, Reason> {
    from_record(rec, raw, Some(memo)).map(|mut o| {
        o.raw = Some(Cow::Borrowed(raw));
        Some(o)
    })
}

/// Measures the record's nesting (see [`crate::depth`]), then parses it.
fn normalize_record_with<'a>(
    bytes: &'a [u8],
    parse: impl for<'x> Fn(&'x [u8]) -> Result<Record<'x>, Reason>,
    memo: Option<&mut CallerMemo>,
) -> Result<Option<Output<'a>>, Reason> {
    crate::depth::check(bytes)?;
    parse_record_with(bytes, parse, memo)
}

/// [`normalize_record_with`] for a record already measured (cut by the array splitter).
fn parse_record_with<'a>(
    bytes: &'a [u8],
    parse: impl for<'x> Fn(&'x [u8]) -> Result<Record<'x>, Reason>,
    memo: Option<&mut CallerMemo>,
) -> Result<Option<Output<'a>>, Reason> {
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
pub fn normalize_document(doc: &[u8], memo: &mut CallerMemo, sink: &mut dyn Sink) {
    document_in_blocks(doc, memo, sink, UTF8_BLOCK);
}

/// [`normalize_document`] with records' UTF-8 checked `block` bytes at a time.
fn document_in_blocks(doc: &[u8], memo: &mut CallerMemo, sink: &mut dyn Sink, block: usize) {
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

fn lake_rows(rows: &[u8], lines: &mut LineCounter, memo: &mut CallerMemo, sink: &mut dyn Sink) {
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
    memo: &mut CallerMemo,
    sink: &mut dyn Sink,
    block: usize,
) {
    let mut parsed: Vec<crate::ParsedRecord> = Vec::with_capacity(PARSE_AHEAD);
    fn flush(parsed: &mut Vec<crate::ParsedRecord>, sink: &mut dyn Sink) {
        if !parsed.is_empty() {
            sink.accept_parsed(parsed);
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
                return Ok((raw, Some(Err(crate::TOO_DEEP.into()))));
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
                parsed.push(crate::ParsedRecord {
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
                    reason: format!("{e}; the rest of the document was skipped").into(),
                });
                return;
            }
        }
        idx += 1;
    }
    flush(&mut parsed, sink);
}

fn from_record<'a>(
    rec: &mut Record<'a>,
    bytes: &[u8],
    memo: Option<&mut CallerMemo>,
) -> Result<Output<'a>, Reason> {
    let native_id = rec
        .event_id
        .take()
        .unwrap_or_else(|| Cow::Owned(crate::content_id(bytes)));
    let raw_time = rec
        .event_time
        .get()
        .ok_or(Reason::Missing("eventTime".into()))?;
    let at = time::parse(raw_time).ok_or(Reason::Invalid {
        field: "eventTime",
        expected: "a timestamp",
    })?;
    let source = rec
        .event_source
        .get()
        .ok_or(Reason::Missing("eventSource".into()))?;
    let name = rec
        .event_name
        .get()
        .ok_or(Reason::Missing("eventName".into()))?;
    let mut out = Output::default();
    let failed = rec.error_code.get().is_some();
    let memo = memo.filter(|_| failed || !EFFECTS.contains(&name));
    let actor = if let Some(memo) = memo
        && caller_signature(rec, &mut memo.scratch)
    {
        {
            if let Some(t) = memo.callers.get(memo.scratch.as_str()) {
                let actor = t.actor.clone();
                out.active = Some(Arc::clone(t));
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
                let touch = ActiveIdentities {
                    actor: actor.clone(),
                    ids: out
                        .observations
                        .iter()
                        .filter(|o| o.used_at.is_some())
                        .map(|o| o.id.clone())
                        .collect(),
                    credentials,
                };
                if memo.callers.len() >= CallerMemo::CAPACITY {
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
    known(rec, &mut out.read_fields);
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
