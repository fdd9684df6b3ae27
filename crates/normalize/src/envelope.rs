//! The envelope of an input handed over whole — an HTTP body, an in-memory batch — checked
//! before any record is read: JSON lines, or one document (`{"Records":[…]}`, a
//! `lookup-events` `{"Events":[…]}`, a CloudTrail Lake result, an `EventList`, an array, a
//! single record).
//!
//! Files and bodies then go through the same readers: a document to
//! [`normalize_document`](crate::normalize_document), which splits it into its records
//! where they lie in the bytes, and JSON lines to [`normalize_line`](crate::normalize_line)
//! one line at a time. Nothing is re-serialized to be parsed again.

use crate::depth::{TOO_DEEP, too_deep_at};
use crate::sniff::Layout;

/// What a caller requires of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// JSON lines or any JSON document of records.
    Records,
    /// An `audit.k8s.io` `EventList` (the API server's audit webhook sends nothing else).
    EventList,
}

/// Why an envelope cannot be read at all (a record that cannot be read is rejected on its
/// own, with its line, by the format's reader).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the body is empty")]
    Empty,
    #[error("{TOO_DEEP}")]
    TooDeep,
    #[error("the body is not JSON: {message} (line {line}, column {column})")]
    NotJson {
        message: String,
        line: usize,
        column: usize,
    },
    #[error("expected an audit.k8s.io EventList (`\"kind\": \"EventList\"`)")]
    NotEventList,
    #[error("`{0}` must be an array")]
    NotAnArray(&'static str),
    #[error("expected a JSON object, an array of records, or JSON lines")]
    NotRecords,
}

/// Opens an envelope: the layout its records are read in, or why it cannot be read.
///
/// A body that is not one JSON document but spans lines is JSON lines, whose bad lines the
/// reader rejects one by one. A document nested deeper than
/// [`MAX_NESTING`](crate::MAX_NESTING) is refused whole; a deep line is one bad line.
pub fn open(body: &[u8], expect: Expect) -> Result<Layout, EnvelopeError> {
    let text = crate::sniff::trim_start(body).trim_ascii_end();
    if text.is_empty() {
        return Err(EnvelopeError::Empty);
    }
    let lines_allowed = expect == Expect::Records && text.contains(&b'\n');
    if too_deep_at(text).is_some() {
        return match lines_allowed {
            true => Ok(Layout::Lines),
            false => Err(EnvelopeError::TooDeep),
        };
    }
    // One validating pass without building a tree (the depth check above bounds its
    // recursion); the error message comes from serde_json, on the failure path only.
    if sonic_rs::from_slice::<serde::de::IgnoredAny>(text).is_err() {
        if lines_allowed {
            return Ok(Layout::Lines);
        }
        let e = serde_json::from_slice::<serde::de::IgnoredAny>(text)
            .err()
            .unwrap_or_else(|| serde::de::Error::custom("invalid JSON"));
        return Err(EnvelopeError::NotJson {
            message: e.to_string(),
            line: e.line(),
            column: e.column(),
        });
    }
    match (text.first(), expect) {
        (Some(b'{'), _) => object(text, expect).map(|()| Layout::Document),
        (Some(b'['), Expect::Records) => Ok(Layout::Document),
        (_, Expect::EventList) => Err(EnvelopeError::NotEventList),
        _ => Err(EnvelopeError::NotRecords),
    }
}

/// Checks a document's top-level keys: an array where records are expected, the `kind`
/// an `EventList` must have.
fn object(text: &[u8], expect: Expect) -> Result<(), EnvelopeError> {
    let mut kind = None;
    let (mut records, mut items) = (None, None);
    for (key, value) in sonic_rs::to_object_iter(text).flatten() {
        let is_array = value.as_raw_str().starts_with('[');
        match key.as_ref() {
            "kind" => kind = sonic_rs::from_str::<String>(value.as_raw_str()).ok(),
            "Records" => records = Some(is_array),
            "items" => items = Some(is_array),
            _ => {}
        }
    }
    let event_list = kind.as_deref() == Some("EventList");
    if expect == Expect::EventList && !event_list {
        return Err(EnvelopeError::NotEventList);
    }
    if records == Some(false) {
        return Err(EnvelopeError::NotAnArray("Records"));
    }
    if event_list && items != Some(true) {
        return Err(EnvelopeError::NotAnArray("items"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let open_r = |b: &[u8]| open(b, Expect::Records);
        assert_eq!(open_r(br#"{"Records":[{"a":1}]}"#), Ok(Layout::Document));
        assert_eq!(open_r(br#"[{"a":1}]"#), Ok(Layout::Document));
        assert_eq!(open_r(b"{\"a\":1}\n{\"b\":2}\n"), Ok(Layout::Lines));
        assert_eq!(
            open_r(b"\xEF\xBB\xBF {\"Records\":[\n  {\n    \"a\": 1\n  }\n]}\n"),
            Ok(Layout::Document)
        );
        // A damaged line among lines: the line reader rejects it alone.
        assert_eq!(open_r(b"{\"a\":1}\nnot json\n"), Ok(Layout::Lines));
        assert_eq!(open_r(b"  "), Err(EnvelopeError::Empty));
        assert!(matches!(
            open_r(b"not json"),
            Err(EnvelopeError::NotJson { line: 1, .. })
        ));
        assert!(matches!(
            open_r(br#"{"Records":[{"a":1},"#),
            Err(EnvelopeError::NotJson { .. })
        ));
        assert_eq!(
            open_r(br#"{"Records":3}"#),
            Err(EnvelopeError::NotAnArray("Records"))
        );
        assert_eq!(open_r(b"3"), Err(EnvelopeError::NotRecords));
        let list = br#"{"kind":"EventList","items":[{"x":1}]}"#;
        assert_eq!(open(list, Expect::EventList), Ok(Layout::Document));
        let list = br#"{"items":[{"x":1}],"kind":"EventList"}"#;
        assert_eq!(open(list, Expect::EventList), Ok(Layout::Document));
        assert_eq!(
            open(br#"{"kind":"EventList","items":{}}"#, Expect::EventList),
            Err(EnvelopeError::NotAnArray("items"))
        );
        for not in [
            &br#"{"kind":"Event"}"#[..],
            br#"{"items":[{"x":1}],"kind":"List"}"#,
            br#"[{"x":1}]"#,
            b"{\"kind\":\"EventList\",\"items\":[]}\n{\"a\":1}\n",
        ] {
            let got = open(not, Expect::EventList);
            assert!(
                matches!(
                    got,
                    Err(EnvelopeError::NotEventList | EnvelopeError::NotJson { .. })
                ),
                "{got:?}"
            );
        }
        assert_eq!(
            EnvelopeError::NotAnArray("Records").to_string(),
            "`Records` must be an array"
        );
    }

    #[test]
    fn deep_documents_are_refused_deep_lines_are_lines() {
        for depth in [101, 10_000, 1_000_000] {
            let deep = "[".repeat(depth);
            let doc = format!(r#"{{"Records":[{{"a":{deep}}}]}}"#);
            assert_eq!(
                open(doc.as_bytes(), Expect::Records),
                Err(EnvelopeError::TooDeep)
            );
            let list = format!(r#"{{"kind":"EventList","items":[{deep}]}}"#);
            assert_eq!(
                open(list.as_bytes(), Expect::EventList),
                Err(EnvelopeError::TooDeep)
            );
            let lines = format!("{{\"a\":1}}\n{{\"b\":{deep}}}\n");
            assert_eq!(open(lines.as_bytes(), Expect::Records), Ok(Layout::Lines));
            assert_eq!(
                open(lines.as_bytes(), Expect::EventList),
                Err(EnvelopeError::TooDeep)
            );
            assert_eq!(
                EnvelopeError::TooDeep.to_string(),
                crate::TOO_DEEP,
                "the reason files and bodies share"
            );
        }
    }
}
