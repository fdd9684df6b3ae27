//! One record on the message bus (`keyward-bus`): what the gateway's normalizer made of it,
//! then the platform's own record for the rules that read fields the normalized event does
//! not carry.
//!
//! ```text
//! {"v":1,"label":…,"format":…,"cluster":…,"event":…,"observations":[…],…}\n<raw record>
//! ```
//!
//! The first line is compact JSON (it never holds a raw newline); everything after the first
//! newline is the raw record, byte for byte. The message id (`Nats-Msg-Id`) is the BLAKE3 hash
//! of the whole payload, so a gateway that publishes a record again (it crashed before its
//! answer, a client retried) is deduplicated by JetStream within its duplicate window, and
//! past it by the store's event keys.

use std::borrow::Cow;
use std::sync::Arc;

use keyward_model::{Diagnostic, Event, Observation, SnapshotObject};
use serde::{Deserialize, Serialize};

use crate::{ActiveIdentities, Format, Output};

/// The input a record came from, as the gateway read it.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The file's path or the body's label, as its dead letters name it.
    pub label: &'a str,
    /// Its format ([`Format::as_str`]).
    pub format: &'static str,
    /// The Kubernetes cluster it was filed under (empty: none named).
    pub cluster: &'a str,
}

/// The version of the layout above.
const VERSION: u32 = 1;

#[derive(Serialize)]
struct HeadOut<'a> {
    v: u32,
    label: &'a str,
    format: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    cluster: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a Event<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    observations: &'a [Observation],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    objects: &'a [SnapshotObject],
    #[serde(skip_serializing_if = "Option::is_none")]
    active: Option<&'a ActiveIdentities>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    warnings: &'a [Diagnostic],
}

#[derive(Deserialize)]
struct HeadIn {
    v: u32,
    label: String,
    format: String,
    #[serde(default)]
    cluster: String,
    event: Option<Event<'static>>,
    #[serde(default)]
    observations: Vec<Observation>,
    #[serde(default)]
    objects: Vec<SnapshotObject>,
    active: Option<ActiveIdentities>,
    #[serde(default)]
    warnings: Vec<Diagnostic>,
}

/// A record taken from the bus.
#[derive(Debug)]
pub struct Decoded {
    /// The input it came from (a file's path, a body's label).
    pub label: String,
    pub format: Format,
    /// The Kubernetes cluster the gateway filed it under (`None`: not named).
    pub cluster: Option<String>,
    pub output: Output<'static>,
}

/// Why a payload is not a record (a message published by something else, or by a newer
/// Keyward): the worker stops on it rather than drop it.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("not a Keyward record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("a record of layout version {0}; this build reads {VERSION}")]
    Version(u32),
    #[error("a record of unknown format `{0}`")]
    Format(String),
}

/// The payload of one accepted record, and the key that chooses its partition: the acting
/// identity (each identity's records stay in order on one partition), else the first
/// identity or object the record is about, else its input.
pub fn encode(origin: &Origin<'_>, out: &Output<'_>) -> Result<(Vec<u8>, String), WireError> {
    let head = HeadOut {
        v: VERSION,
        label: origin.label,
        format: origin.format,
        cluster: origin.cluster,
        event: out.event.as_ref(),
        observations: &out.observations,
        objects: &out.objects,
        active: out.active.as_deref(),
        warnings: &out.warnings,
    };
    let raw = out.raw.as_deref().unwrap_or_default();
    let mut payload = Vec::with_capacity(raw.len() + 512);
    serde_json::to_writer(&mut payload, &head)?;
    payload.push(b'\n');
    payload.extend_from_slice(raw);
    Ok((payload, partition_key(origin, out)))
}

fn partition_key(origin: &Origin<'_>, out: &Output<'_>) -> String {
    let event = out.event.as_ref();
    // A role's assumption (`AssumeRole*` names the role as its target) travels with the
    // role's sessions, whose keys the checks follow from one call to the next.
    let assumed = event
        .filter(|e| e.action.starts_with("sts.amazonaws.com:AssumeRole"))
        .and_then(|e| e.target.as_deref())
        .filter(|t| t.contains(":role/"))
        .and_then(keyward_model::ids::canonical_iam_arn);
    let key = assumed
        .as_deref()
        .or_else(|| event.and_then(|e| e.actor.as_deref()))
        .or_else(|| out.active.as_ref().and_then(|a| a.actor.as_deref()))
        .or_else(|| out.observations.first().map(|o| o.id.as_str()))
        .or_else(|| out.objects.first().map(|o| o.id.as_str()))
        .unwrap_or(origin.label);
    // Sessions travel with their role (whose baseline they feed).
    keyward_model::ids::principal(key).into_owned()
}

/// The record a payload holds.
pub fn decode(payload: &[u8]) -> Result<Decoded, WireError> {
    let (head, raw) = match payload.iter().position(|&b| b == b'\n') {
        Some(n) => (payload.get(..n).unwrap_or_default(), payload.get(n + 1..)),
        None => (payload, None),
    };
    let head: HeadIn = serde_json::from_slice(head)?;
    if head.v != VERSION {
        return Err(WireError::Version(head.v));
    }
    let format = Format::parse(&head.format).ok_or(WireError::Format(head.format))?;
    let raw = raw
        .filter(|r| !r.is_empty())
        .map(|r| Cow::Owned(r.to_vec()));
    Ok(Decoded {
        label: head.label,
        format,
        cluster: Some(head.cluster).filter(|c| !c.is_empty()),
        output: Output {
            event: head.event,
            observations: head.observations,
            objects: head.objects,
            active: head.active.map(Arc::new),
            raw,
            read_fields: Default::default(),
            warnings: head.warnings,
        },
    })
}

/// The message id of a payload (see the module's documentation).
pub fn message_id(payload: &[u8]) -> String {
    blake3::hash(payload).to_hex().to_string()
}

/// The partition of `key` among `partitions`: the first eight bytes of its BLAKE3 hash,
/// modulo the count — the same in every process and every build.
pub fn partition(key: &str, partitions: u32) -> u32 {
    let h = blake3::hash(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(h.as_bytes().get(..8).unwrap_or(&[0; 8]));
    (u64::from_le_bytes(first) % u64::from(partitions.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_model::{IdentityKind, Platform, SourceKind};

    fn origin() -> Origin<'static> {
        Origin {
            label: "logs/a.json",
            format: "cloudtrail",
            cluster: "",
        }
    }

    #[test]
    fn a_record_survives_the_trip() -> Result<(), WireError> {
        let mut obs = Observation::new(
            "arn:aws:iam::111122223333:user/ci".into(),
            Platform::Aws,
            IdentityKind::IamUser,
            "ci",
            SourceKind::Cloudtrail,
        );
        obs.used_at = Some(1_700_000_000_000);
        obs.facts.tags.insert("owner".into(), "alice".into());
        let out = Output {
            event: Some(Event {
                native_id: "e-1".into(),
                source: SourceKind::Cloudtrail,
                time: 1_700_000_000_000,
                action: "s3.amazonaws.com:GetObject".into(),
                actor: Some("arn:aws:iam::111122223333:user/ci".into()),
                source_ip: None,
                user_agent: None,
                region: Some("eu-west-1".into()),
                account: Some("111122223333".into()),
                error_code: None,
                target: None,
                credential: Some("AKIAEXAMPLE".into()),
                invoked_by: None,
                shared_id: None,
                stage: 0,
            }),
            observations: vec![obs],
            raw: Some(Cow::Borrowed(b"{\"eventID\":\"e-1\"}\n{not split}")),
            ..Output::default()
        };
        let (payload, key) = encode(&origin(), &out)?;
        assert_eq!(key, "arn:aws:iam::111122223333:user/ci");
        let back = decode(&payload)?;
        assert_eq!(back.label, "logs/a.json");
        assert_eq!(back.format, Format::Cloudtrail);
        assert_eq!(back.cluster, None);
        assert_eq!(back.output.event, out.event.map(Event::into_owned));
        assert_eq!(back.output.observations, out.observations);
        // The raw record is kept byte for byte, newlines and all.
        assert_eq!(
            back.output.raw.as_deref(),
            Some(&b"{\"eventID\":\"e-1\"}\n{not split}"[..])
        );
        Ok(())
    }

    #[test]
    fn foreign_payloads_are_refused() {
        assert!(matches!(decode(b"hello"), Err(WireError::Json(_))));
        let newer = br#"{"v":2,"label":"x","format":"cloudtrail"}"#;
        assert!(matches!(decode(newer), Err(WireError::Version(2))));
        let odd = br#"{"v":1,"label":"x","format":"fax"}"#;
        assert!(matches!(decode(odd), Err(WireError::Format(_))));
    }

    #[test]
    fn partitions_are_stable_and_spread() {
        assert_eq!(partition("a", 8), partition("a", 8));
        let mut seen = [0u32; 8];
        for i in 0..8_000 {
            let p = partition(&format!("arn:aws:iam::1:user/u{i}"), 8) as usize;
            if let Some(n) = seen.get_mut(p) {
                *n += 1;
            }
        }
        // Each partition gets its share, within a fifth.
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
    }
}
