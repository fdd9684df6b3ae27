//! What rules read: the normalized event, and the raw record it came from, parsed only when
//! a rule needs a field the normalized event does not carry.

use std::borrow::Cow;
use std::cell::OnceCell;

use keyward_model::{Event, SourceKind};
use rsigma_eval::{Event as SigmaEvent, EventValue, JsonEvent};
use serde_json::Value;

/// One event as rules see it.
pub struct View<'e> {
    pub event: &'e Event<'e>,
    raw: &'e [u8],
    parsed: OnceCell<JsonEvent<'static>>,
}

impl<'e> View<'e> {
    /// `raw` is the platform's own record (a CloudTrail record, a Kubernetes audit event);
    /// it may be empty when only the normalized event is known.
    pub fn new(event: &'e Event<'e>, raw: &'e [u8]) -> Self {
        View {
            event,
            raw,
            parsed: OnceCell::new(),
        }
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
        if self.raw.is_empty() || path.contains(['[', '\\', '*']) {
            return None;
        }
        use sonic_rs::JsonValueTrait;
        let segments: Vec<&str> = path.split('.').collect();
        let v = match sonic_rs::get_from_slice(self.raw, segments.as_slice()) {
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
            "eventID" => Some(e.native_id.as_ref()),
            _ => return None,
        })
    }
}

impl SigmaEvent for View<'_> {
    fn get_field(&self, path: &str) -> Option<EventValue<'_>> {
        if let Some(v) = self.fast(path) {
            return v.map(|s| EventValue::Str(Cow::Borrowed(s)));
        }
        if self.parsed.get().is_none()
            && let Some(v) = self.lazy(path)
        {
            return v;
        }
        self.json().get_field(path)
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
