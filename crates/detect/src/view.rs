//! What rules read: the normalized event, and the raw record it came from, parsed only when
//! a rule needs a field the normalized event does not carry.

use std::borrow::Cow;
use std::cell::OnceCell;

use keyward_model::{Event, ReadFields, SourceKind};
use rsigma_eval::{Event as SigmaEvent, EventValue, JsonEvent};
use serde_json::Value;

/// One event as rules see it.
pub struct View<'e> {
    pub event: &'e Event<'e>,
    raw: &'e [u8],
    /// Fields of `raw` the parser already read.
    known: &'e ReadFields<'e>,
    /// The actor's principal (see [`keyward_model::ids::principal`]), computed once.
    principal: OnceCell<Option<Cow<'e, str>>>,
    /// The network of the source address (see [`crate::baseline::network`]), computed once.
    network: OnceCell<Option<String>>,
    /// Whether `raw` holds a `\u` escape (then a key may be spelled in other bytes).
    escapes: OnceCell<bool>,
    parsed: OnceCell<JsonEvent<'static>>,
    /// Answers of the lazy path so far (rules probe the same fields many times), filled in
    /// order and never moved, so an answer is lent out instead of copied.
    memo: [OnceCell<PathMemo>; MEMO_SLOTS],
    /// The record's top-level keys and the bytes of their values, from one skipping pass
    /// (`None`: not a JSON object).
    roots: OnceCell<Option<Roots<'e>>>,
}

type Roots<'e> = Vec<(Cow<'e, str>, &'e [u8])>;

/// A field path and its answer.
type PathMemo = (Box<str>, Option<EventValue<'static>>);

/// Distinct fields remembered per event; more are answered without the memo.
const MEMO_SLOTS: usize = 12;

/// A remembered answer, borrowed.
fn lend<'a>(v: &'a EventValue<'static>) -> EventValue<'a> {
    match v {
        EventValue::Str(s) => EventValue::Str(Cow::Borrowed(s)),
        other => other.clone(),
    }
}

impl<'e> View<'e> {
    /// `raw` is the platform's own record (a CloudTrail record, a Kubernetes audit event);
    /// it may be empty when only the normalized event is known.
    pub fn new(event: &'e Event<'e>, raw: &'e [u8], known: &'e ReadFields<'e>) -> Self {
        View {
            event,
            raw,
            known,
            principal: OnceCell::new(),
            network: OnceCell::new(),
            escapes: OnceCell::new(),
            parsed: OnceCell::new(),
            memo: std::array::from_fn(|_| OnceCell::new()),
            roots: OnceCell::new(),
        }
    }

    /// The principal of the acting identity: a session's role, else the actor itself.
    pub fn principal(&self) -> Option<&str> {
        self.principal
            .get_or_init(|| {
                self.event
                    .actor
                    .as_deref()
                    .map(keyward_model::ids::principal)
            })
            .as_deref()
    }

    /// The network the event came from: an address's /24 or /48, a service name as it is.
    pub fn network(&self) -> Option<&str> {
        self.network
            .get_or_init(|| {
                self.event
                    .source_ip
                    .as_deref()
                    .map(crate::baseline::network)
            })
            .as_deref()
    }

    /// The raw record as JSON (`null` when there is none or it does not parse).
    fn json(&self) -> &JsonEvent<'static> {
        self.parsed.get_or_init(|| {
            let v = serde_json::from_slice::<Value>(self.raw).unwrap_or(Value::Null);
            JsonEvent::owned(v)
        })
    }

    /// Whether the raw record has been parsed (for tests and benchmarks).
    pub fn was_parsed(&self) -> bool {
        self.parsed.get().is_some()
    }

    /// A string field of the raw record.
    pub fn str_field(&self, path: &str) -> Option<String> {
        match self.get_field(path)? {
            EventValue::Str(s) => Some(s.into_owned()),
            EventValue::Int(i) => Some(i.to_string()),
            _ => None,
        }
    }

    /// A scalar at a plain dotted path, read by skipping through the raw bytes without
    /// building a tree (most rules' index probes ask for one or two identity fields).
    /// `None` when the answer needs the parsed record: a container, a path with escapes.
    #[expect(
        clippy::option_option,
        reason = "outer: answered here or not; inner: the field's presence"
    )]
    fn lazy(&self, path: &str) -> Option<Option<EventValue<'static>>> {
        if self.raw.is_empty() || path.contains(['[', '\\', '*', '"']) {
            return None;
        }
        use sonic_rs::JsonValueTrait;
        if self.surely_absent(path.rsplit('.').next().unwrap_or(path)) {
            return Some(None);
        }
        // Once the top-level keys are known (a caller listed them), an absent root answers
        // at once; otherwise one skim from the record's start finds the path (identity
        // fields come early in CloudTrail records).
        let (bytes, rest): (&[u8], Option<&str>) = match self.roots.get() {
            Some(Some(roots)) => {
                let (first, rest) = match path.split_once('.') {
                    Some((f, r)) => (f, Some(r)),
                    None => (path, None),
                };
                let Some((_, bytes)) = roots.iter().find(|(k, _)| k == first) else {
                    return Some(None);
                };
                (bytes, rest)
            }
            Some(None) => return None,
            None => (self.raw, Some(path)),
        };
        // The path's segments, split as sonic walks them (no vector per lookup).
        let v = match sonic_rs::get_from_slice(bytes, rest.into_iter().flat_map(|r| r.split('.'))) {
            Ok(v) => v,
            // Absent, or the bytes do not parse: the full parse decides.
            Err(e) if e.is_not_found() => return Some(None),
            Err(_) => return None,
        };
        if let Some(s) = v.as_str() {
            return Some(Some(EventValue::Str(Cow::Owned(s.to_owned()))));
        }
        if v.is_null() {
            return Some(Some(EventValue::Null));
        }
        if let Some(b) = v.as_bool() {
            return Some(Some(EventValue::Bool(b)));
        }
        if let Some(i) = v.as_i64() {
            return Some(Some(EventValue::Int(i)));
        }
        None
    }

    /// A key whose quoted name occurs nowhere in the record is absent: checked before a
    /// skim, which is slow to say "not found". Only when the record has no `\u` escape,
    /// the one way a key can spell its letters differently.
    fn surely_absent(&self, key: &str) -> bool {
        let mut buf = [b'"'; 66];
        let Some(quoted) = buf.get_mut(..key.len() + 2) else {
            return false;
        };
        if let Some(name) = quoted.get_mut(1..=key.len()) {
            name.copy_from_slice(key.as_bytes());
        }
        memchr::memmem::find(self.raw, quoted).is_none()
            && !*self
                .escapes
                .get_or_init(|| memchr::memmem::find(self.raw, b"\\u").is_some())
    }

    fn roots(&self) -> &Option<Roots<'e>> {
        self.roots.get_or_init(|| {
            let raw: &'e [u8] = self.raw;
            let mut out = Vec::with_capacity(16);
            for entry in sonic_rs::to_object_iter(raw) {
                let (k, v) = entry.ok()?;
                let bytes: &'e [u8] = match v.as_raw_cow() {
                    Cow::Borrowed(s) => s.as_bytes(),
                    Cow::Owned(_) => return None,
                };
                out.push((k, bytes));
            }
            Some(out)
        })
    }

    /// Fields the normalized event already holds, under their CloudTrail names.
    fn fast(&self, path: &str) -> Option<Option<&str>> {
        if self.event.source != SourceKind::Cloudtrail {
            return None;
        }
        let e = self.event;
        Some(match path {
            "eventName" => e.action.split_once(':').map(|(_, n)| n),
            "eventSource" => e.action.split_once(':').map(|(s, _)| s),
            "awsRegion" => e.region.as_deref(),
            "sourceIPAddress" => e.source_ip.as_deref(),
            "userAgent" => e.user_agent.as_deref(),
            "errorCode" => e.error_code.as_deref(),
            _ => return None,
        })
    }
}

impl SigmaEvent for View<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        if let Some(v) = self.fast(path).or_else(|| self.known.get(path)) {
            return v.map(|s| EventValue::Str(Cow::Borrowed(s)));
        }
        if self.parsed.get().is_none() {
            let mut free = None;
            for slot in &self.memo {
                match slot.get() {
                    Some((p, v)) if &**p == path => return v.as_ref().map(lend),
                    Some(_) => {}
                    None => {
                        free = Some(slot);
                        break;
                    }
                }
            }
            if let Some(v) = self.lazy(path) {
                return match free {
                    Some(slot) => slot.get_or_init(|| (path.into(), v)).1.as_ref().map(lend),
                    None => v,
                };
            }
        }
        self.json().get_field(path)
    }

    fn visit_top_level_keys(&self, visit: &mut dyn FnMut(&str)) -> bool {
        if self.parsed.get().is_some() || self.raw.is_empty() {
            return self.json().visit_top_level_keys(visit);
        }
        match self.roots() {
            Some(roots) => {
                for (k, _) in roots {
                    visit(k);
                }
                true
            }
            None => false,
        }
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.json().any_string_value(pred)
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.json().all_string_values()
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        self.json().visit_string_values(visit);
    }

    fn to_json(&self) -> Value {
        let mut v = self.json().to_json();
        // Correlation evidence keeps event references by `id`.
        if let Value::Object(m) = &mut v {
            m.insert("id".into(), Value::String(self.event.native_id.to_string()));
        }
        v
    }
}

/// The view the correlation engine gets: it keeps only an event reference (`id`) in its
/// windows (`CorrelationEventMode::Refs`), so `to_json` builds just that instead of
/// parsing the whole record into a tree for every matching event.
pub(crate) struct RefView<'v, 'e>(pub &'v View<'e>);

impl SigmaEvent for RefView<'_, '_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        self.0.get_field(path)
    }

    fn visit_top_level_keys(&self, visit: &mut dyn FnMut(&str)) -> bool {
        self.0.visit_top_level_keys(visit)
    }

    fn any_string_value(&self, pred: &dyn Fn(&str) -> bool) -> bool {
        self.0.any_string_value(pred)
    }

    fn all_string_values(&self) -> Vec<Cow<'_, str>> {
        self.0.all_string_values()
    }

    fn visit_string_values(&self, visit: &mut dyn FnMut(&str)) {
        self.0.visit_string_values(visit);
    }

    fn to_json(&self) -> Value {
        serde_json::json!({"id": self.0.event.native_id.as_ref()})
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use crate::rules::Catalog;

    /// Every built-in rule example, through the fast, lazy and parsed paths, answers every
    /// probed field exactly as rsigma's own `JsonEvent` over the parsed record does.
    #[test]
    fn view_answers_as_the_parsed_record_does() {
        let paths = [
            "eventName",
            "eventSource",
            "awsRegion",
            "sourceIPAddress",
            "userAgent",
            "errorCode",
            "eventID",
            "userIdentity.type",
            "userIdentity.arn",
            "userIdentity.sessionContext.sessionIssuer.type",
            "userIdentity.sessionContext.attributes.mfaAuthenticated",
            "requestParameters.roleArn",
            "requestParameters.durationSeconds",
            "responseElements.ConsoleLogin",
            "additionalEventData.MFAUsed",
            "readOnly",
            "managementEvent",
            "resources",
            "verb",
            "objectRef.resource",
            "objectRef.subresource",
            "user.username",
            "user.groups",
            "responseStatus.code",
            "sourceIPs",
            "no.such.field",
            "userIdentity.no_such",
        ];
        let catalog = Catalog::builtin();
        let mut checked = 0;
        for (id, file) in &catalog.files {
            let source = catalog.get(id).and_then(|r| r.logsource.source).unwrap();
            for ex in file.examples.iter().chain(&file.negative_examples) {
                for raw in ex.events() {
                    let bytes = serde_json::to_vec(raw).unwrap();
                    let Ok((event, bytes, known)) = crate::testing::normalize(source, &bytes)
                    else {
                        continue;
                    };
                    let oracle = JsonEvent::owned(serde_json::from_slice(&bytes).unwrap());
                    // Without the top-level keys listed: lookups skim the record, or read
                    // what the normalizer knew.
                    let unknown = ReadFields::default();
                    for known in [&unknown, &known] {
                        let fresh = View::new(&event, &bytes, known);
                        for p in paths {
                            assert_eq!(fresh.get_field(p), oracle.get_field(p), "{id}: {p}");
                        }
                    }
                    if source == SourceKind::Cloudtrail && event.actor.is_some() {
                        assert!(known.get("userIdentity.type").is_some(), "{id}");
                    }
                    let view = View::new(&event, &bytes, &known);
                    let mut keys = Vec::new();
                    assert!(view.visit_top_level_keys(&mut |k| keys.push(k.to_owned())));
                    let mut want = Vec::new();
                    oracle.visit_top_level_keys(&mut |k| want.push(k.to_owned()));
                    assert_eq!(keys, want, "{id}");
                    for p in paths {
                        // Twice: the second answer comes from the memo.
                        for _ in 0..2 {
                            let got = view.get_field(p);
                            let exp = oracle.get_field(p);
                            // The lazy path answers containers through the full parse.
                            assert_eq!(got, exp, "{id}: {p}");
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    /// A key spelled with a `\u` escape is found; an absent one is absent.
    #[test]
    fn escaped_keys_are_not_mistaken_for_absent_ones() {
        let raw = br#"{"eventTime":"2026-11-10T08:00:00Z","eventSource":"ssm.amazonaws.com","eventName":"GetParameter","requestParameters":{"with\u0044ecryption":true,"name":"db"}}"#;
        let (event, bytes, known) = crate::testing::normalize(SourceKind::Cloudtrail, raw).unwrap();
        let oracle = JsonEvent::owned(serde_json::from_slice(&bytes).unwrap());
        let view = View::new(&event, &bytes, &known);
        for p in [
            "requestParameters.withDecryption",
            "requestParameters.name",
            "requestParameters.nothing",
        ] {
            assert_eq!(view.get_field(p), oracle.get_field(p), "{p}");
        }
        assert_eq!(
            view.get_field("requestParameters.withDecryption"),
            Some(EventValue::Bool(true))
        );
    }
}
