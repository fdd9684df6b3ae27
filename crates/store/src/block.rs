//! The event block encoding: many events in one compact, self-contained byte string.
//!
//! Activity logs repeat themselves — the same actors, actions, user agents, regions and
//! accounts thousands of times — so a block stores each distinct string once in a
//! dictionary and events refer to it by index. Event ids, which never repeat, are inline.
//! Times are zig-zag varint deltas. Version 1 layout:
//!
//! ```text
//! block   = "KWB1" varint(n_strings) string* varint(n_events) event*
//! string  = varint(len) utf8-bytes
//! event   = string(native_id) u8(source) varint(zigzag(time - previous time))
//!           varint(action) opt(actor) opt(source_ip) opt(user_agent) opt(region)
//!           opt(account) opt(error_code) opt(target) opt(credential) opt(invoked_by)
//!           opt-inline(shared_id) u8(stage)
//! opt     = varint(0) for none, varint(1 + dictionary index) otherwise
//! ```
//!
//! Decoding checks every length and index and returns an error, never panics.

use std::borrow::Cow;

use keyward_model::{Event, SourceKind};
use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;

const MAGIC: &[u8; 4] = b"KWB1";

/// Indexed by [`source_code`]; codes are stored, so new sources only ever append.
const SOURCES: [SourceKind; 14] = [
    SourceKind::Cloudtrail,
    SourceKind::K8sAudit,
    SourceKind::IamAuthorizationDetails,
    SourceKind::IamCredentialReport,
    SourceKind::K8sSnapshot,
    SourceKind::Terraform,
    SourceKind::Codeowners,
    SourceKind::PeopleDirectory,
    SourceKind::LambdaFunctions,
    SourceKind::GithubWebhook,
    SourceKind::AwsOrganizations,
    SourceKind::OtelTraces,
    SourceKind::BrokerLeases,
    SourceKind::McpLog,
];

fn source_code(s: SourceKind) -> u8 {
    match s {
        SourceKind::Cloudtrail => 0,
        SourceKind::K8sAudit => 1,
        SourceKind::IamAuthorizationDetails => 2,
        SourceKind::IamCredentialReport => 3,
        SourceKind::K8sSnapshot => 4,
        SourceKind::Terraform => 5,
        SourceKind::Codeowners => 6,
        SourceKind::PeopleDirectory => 7,
        SourceKind::LambdaFunctions => 8,
        SourceKind::GithubWebhook => 9,
        SourceKind::AwsOrganizations => 10,
        SourceKind::OtelTraces => 11,
        SourceKind::BrokerLeases => 12,
        SourceKind::McpLog => 13,
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Builds one block event by event; strings are copied into the dictionary once each.
///
/// The dictionary is kept already encoded (`string*` of the layout), in one buffer: a new
/// string costs no allocation of its own, and `finish` copies the buffer as it is. The
/// index holds each string's FxHash and id; a probe compares bytes in the buffer.
#[derive(Default)]
pub struct BlockBuilder {
    index: hashbrown::HashTable<(u64, u32)>,
    /// Where each string's bytes are in `dict`, by id.
    spans: Vec<(u32, u32)>,
    dict: Vec<u8>,
    body: Vec<u8>,
    len: usize,
    prev: i64,
    min_time: i64,
    max_time: i64,
}

impl std::fmt::Debug for BlockBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockBuilder")
            .field("strings", &self.spans.len())
            .field("events", &self.len)
            .finish_non_exhaustive()
    }
}

impl BlockBuilder {
    fn id(&mut self, s: &str) -> u64 {
        let hash = FxBuildHasher.hash_one(s);
        let (dict, spans) = (&self.dict, &self.spans);
        let found = self.index.find(hash, |&(h, id)| {
            h == hash
                && spans.get(id as usize).is_some_and(|&(start, len)| {
                    dict.get(start as usize..(start + len) as usize) == Some(s.as_bytes())
                })
        });
        if let Some(&(_, id)) = found {
            return u64::from(id);
        }
        let id = self.spans.len() as u32;
        put_varint(&mut self.dict, s.len() as u64);
        self.spans.push((self.dict.len() as u32, s.len() as u32));
        self.dict.extend_from_slice(s.as_bytes());
        self.index.insert_unique(hash, (hash, id), |&(h, _)| h);
        u64::from(id)
    }

    fn opt(&mut self, s: Option<&str>) -> u64 {
        s.map_or(0, |s| self.id(s) + 1)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// (earliest, latest) event time; `(0, 0)` when empty.
    pub fn time_range(&self) -> (i64, i64) {
        (self.min_time, self.max_time)
    }

    pub fn push(&mut self, e: &Event<'_>) {
        if self.len == 0 {
            self.min_time = e.time;
            self.max_time = e.time;
        }
        self.min_time = self.min_time.min(e.time);
        self.max_time = self.max_time.max(e.time);
        let mut body = std::mem::take(&mut self.body);
        put_str(&mut body, &e.native_id);
        body.push(source_code(e.source));
        let delta = e.time.wrapping_sub(self.prev);
        put_varint(&mut body, ((delta << 1) ^ (delta >> 63)) as u64);
        self.prev = e.time;
        put_varint(&mut body, self.id(&e.action));
        for f in [
            &e.actor,
            &e.source_ip,
            &e.user_agent,
            &e.region,
            &e.account,
            &e.error_code,
            &e.target,
            &e.credential,
            &e.invoked_by,
        ] {
            put_varint(&mut body, self.opt(f.as_deref()));
        }
        match &e.shared_id {
            None => put_varint(&mut body, 0),
            Some(s) => {
                put_varint(&mut body, s.len() as u64 + 1);
                body.extend_from_slice(s.as_bytes());
            }
        }
        body.push(e.stage);
        self.body = body;
        self.len += 1;
    }

    /// The encoded block; the builder is left empty for the next one (keeping its
    /// buffers' capacity).
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + self.dict.len() + 24);
        out.extend_from_slice(MAGIC);
        put_varint(&mut out, self.spans.len() as u64);
        out.extend_from_slice(&self.dict);
        put_varint(&mut out, self.len as u64);
        out.extend_from_slice(&self.body);
        self.index.clear();
        self.spans.clear();
        self.dict.clear();
        self.body.clear();
        self.len = 0;
        self.prev = 0;
        self.min_time = 0;
        self.max_time = 0;
        out
    }
}

/// Encodes events (in order) as one block.
pub fn encode(events: &[Event<'_>]) -> Vec<u8> {
    let mut b = BlockBuilder::default();
    for e in events {
        b.push(e);
    }
    b.finish()
}

/// Why a byte string is not a valid event block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("truncated block")]
    Truncated,
    #[error("varint too long")]
    VarintTooLong,
    #[error("length overflow")]
    LengthOverflow,
    #[error("string is not UTF-8")]
    NotUtf8,
    #[error("not an event block (bad magic)")]
    BadMagic,
    #[error("dictionary index {0} out of range")]
    IndexOutOfRange(u64),
    #[error("unknown source code")]
    UnknownSource,
    #[error("trailing bytes after the last event")]
    TrailingBytes,
}

struct Reader<'b> {
    buf: &'b [u8],
    pos: usize,
}

impl<'b> Reader<'b> {
    fn byte(&mut self) -> Result<u8, BlockError> {
        let b = *self.buf.get(self.pos).ok_or(BlockError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, BlockError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(BlockError::VarintTooLong)
    }

    fn bytes(&mut self, len: usize) -> Result<&'b [u8], BlockError> {
        let end = self
            .pos
            .checked_add(len)
            .ok_or(BlockError::LengthOverflow)?;
        let s = self.buf.get(self.pos..end).ok_or(BlockError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn cow(&mut self) -> Result<Cow<'static, str>, BlockError> {
        self.string().map(Cow::Owned)
    }

    fn string(&mut self) -> Result<String, BlockError> {
        let len = usize::try_from(self.varint()?).map_err(|_| BlockError::LengthOverflow)?;
        let b = self.bytes(len)?;
        String::from_utf8(b.to_vec()).map_err(|_| BlockError::NotUtf8)
    }
}

/// Decodes a block produced by [`encode`].
pub fn decode(buf: &[u8]) -> Result<Vec<Event<'static>>, BlockError> {
    let mut r = Reader { buf, pos: 0 };
    if r.bytes(4)? != MAGIC {
        return Err(BlockError::BadMagic);
    }
    let n_strings = r.varint()?;
    let mut dict = Vec::with_capacity(n_strings.min(1 << 20) as usize);
    for _ in 0..n_strings {
        dict.push(r.string()?);
    }
    let lookup = |i: u64| {
        dict.get(i as usize)
            .map(|s: &String| Cow::Owned(s.clone()))
            .ok_or(BlockError::IndexOutOfRange(i))
    };
    let opt = |i: u64| {
        if i == 0 {
            Ok(None)
        } else {
            lookup(i - 1).map(Some)
        }
    };
    let n = r.varint()?;
    let mut out = Vec::with_capacity(n.min(1 << 20) as usize);
    let mut prev = 0i64;
    for _ in 0..n {
        let native_id = r.cow()?;
        let source = *SOURCES
            .get(usize::from(r.byte()?))
            .ok_or(BlockError::UnknownSource)?;
        let z = r.varint()?;
        let delta = ((z >> 1) as i64) ^ -((z & 1) as i64);
        let time = prev.wrapping_add(delta);
        prev = time;
        let action = lookup(r.varint()?)?;
        let mut f = [(); 9].map(|_| None);
        for slot in &mut f {
            *slot = opt(r.varint()?)?;
        }
        let [
            actor,
            source_ip,
            user_agent,
            region,
            account,
            error_code,
            target,
            credential,
            invoked_by,
        ] = f;
        let shared_id = match r.varint()? {
            0 => None,
            len => {
                let len = usize::try_from(len - 1).map_err(|_| BlockError::LengthOverflow)?;
                Some(Cow::Owned(
                    String::from_utf8(r.bytes(len)?.to_vec()).map_err(|_| BlockError::NotUtf8)?,
                ))
            }
        };
        let stage = r.byte()?;
        out.push(Event {
            native_id,
            source,
            time,
            action,
            actor,
            source_ip,
            user_agent,
            region,
            account,
            error_code,
            target,
            credential,
            invoked_by,
            shared_id,
            stage,
        });
    }
    if r.pos != buf.len() {
        return Err(BlockError::TrailingBytes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opt_str() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(prop_oneof!["[a-z:./-]{0,12}", "\\PC{0,8}"])
    }

    fn event() -> impl Strategy<Value = Event<'static>> {
        (
            (
                "\\PC{0,40}",
                0usize..5,
                any::<i64>(),
                "[a-z]{1,6}:[A-Za-z]{1,10}",
            ),
            (opt_str(), opt_str(), opt_str(), opt_str(), opt_str()),
            (
                opt_str(),
                opt_str(),
                opt_str(),
                opt_str(),
                opt_str(),
                any::<u8>(),
            ),
        )
            .prop_map(|(head, mid, tail)| {
                let (id, src, time, action) = head;
                let (actor, ip, ua, region, account) = mid;
                let (err, target, cred, inv, shared, stage) = tail;
                let c = |v: Option<String>| v.map(Cow::Owned);
                Event {
                    native_id: Cow::Owned(id),
                    source: SOURCES[src],
                    time,
                    action: Cow::Owned(action),
                    actor: c(actor),
                    source_ip: c(ip),
                    user_agent: c(ua),
                    region: c(region),
                    account: c(account),
                    error_code: c(err),
                    target: c(target),
                    credential: c(cred),
                    invoked_by: c(inv),
                    shared_id: c(shared),
                    stage,
                }
            })
    }

    proptest! {
        #[test]
        fn round_trip(events in proptest::collection::vec(event(), 0..40)) {
            prop_assert_eq!(decode(&encode(&events)).unwrap(), events);
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut b = b"KWB1".to_vec();
            b.extend(bytes);
            let _ = decode(&b);
        }
    }

    #[test]
    fn repetition_is_cheap() {
        let e = |n: u32| Event {
            native_id: format!("6b1f2a3c-0000-4000-8000-{n:012}").into(),
            source: SourceKind::Cloudtrail,
            time: 1_794_268_800_000 + i64::from(n) * 37,
            action: "sts.amazonaws.com:GetCallerIdentity".into(),
            actor: Some("arn:aws:sts::111122223333:assumed-role/app-role-7/i-0abc".into()),
            source_ip: Some("10.0.1.23".into()),
            user_agent: Some("aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5".into()),
            region: Some("us-east-1".into()),
            account: Some("111122223333".into()),
            error_code: None,
            target: None,
            credential: Some("ASIAEXAMPLE000000001".into()),
            invoked_by: None,
            shared_id: None,
            stage: 0,
        };
        let events: Vec<Event<'static>> = (0..1000).map(e).collect();
        let bytes = encode(&events);
        assert!(
            bytes.len() < 1000 * 56,
            "{} bytes for 1000 events",
            bytes.len()
        );
        assert_eq!(decode(&bytes).unwrap(), events);
    }
}
