//! Splits a JSON array into the bytes of its elements without parsing them.
//!
//! CloudTrail delivery files are one array of records. The fast path (`crate::scan`)
//! reads most records and says where each ends; a record it leaves to serde is cut out
//! here, then parsed by the typed parser (which validates it). Finding where each record ends with sonic-rs's safe array iterator
//! parses and validates every record a first time; its fast skip is only offered as an
//! `unsafe` function, and this workspace forbids unsafe code. This splitter only tracks
//! strings and bracket depth, jumping through string contents with `memchr`.
//!
//! It is lenient by design: an element that is not valid JSON still gets its own bytes
//! (bracket-balanced), and its parse fails on its own, so the records after it are kept.
//! Only a document that ends inside an element, or an array with a stray byte between
//! elements, stops the split. It also measures each element's nesting as it goes
//! ([`Elements::too_deep`]), without recursion: a record nested deeper than
//! [`crate::MAX_NESTING`] is rejected without being parsed, and the split goes on past
//! it. The test `splits_as_sonic_does` and the fuzz target
//! `array_split` hold it to sonic-rs's iterator wherever that one accepts the input.

use crate::depth::string_end;

/// Why the split stopped early.
pub const TRUNCATED: &str = "the document ends inside a record";
pub const STRAY: &str = "expected `,` or `]` between records";

/// The elements of the array starting at `array` (its first non-space byte must be `[`).
pub fn elements(array: &[u8]) -> Elements<'_> {
    let start = skip_ws(array, 0);
    let ok = array.get(start) == Some(&b'[');
    Elements {
        bytes: array,
        pos: start + 1,
        first: true,
        done: !ok,
        bad_start: !ok,
        deep: false,
    }
}

pub struct Elements<'a> {
    bytes: &'a [u8],
    pos: usize,
    first: bool,
    done: bool,
    bad_start: bool,
    /// The last element cut by [`Elements::element`] nests too deep.
    deep: bool,
}

pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// The index just past the value starting at `i` (`None`: the bytes end first), and
/// whether it nests deeper than [`crate::MAX_NESTING`] (also when it never ends).
pub(crate) fn value_end(b: &[u8], i: usize, deep: &mut bool) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => {
                        depth += 1;
                        *deep |= depth > crate::MAX_NESTING;
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        // A scalar: up to the next delimiter.
        _ => {
            let mut j = i;
            while b
                .get(j)
                .is_some_and(|c| !matches!(c, b',' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                j += 1;
            }
            Some(j)
        }
    }
}

impl<'a> Elements<'a> {
    /// Where the next element starts, past the separator before it; `None` at the end of
    /// the array, `Some(Err)` when the split stops (nothing follows an `Err`). The element
    /// must then be taken with [`Elements::element`] or [`Elements::ended_at`].
    pub fn start(&mut self) -> Option<Result<usize, &'static str>> {
        if self.bad_start {
            self.bad_start = false;
            return Some(Err("not a JSON array"));
        }
        if self.done {
            return None;
        }
        let b = self.bytes;
        let mut i = skip_ws(b, self.pos);
        if !self.first {
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b']') => {
                    self.done = true;
                    return None;
                }
                None => {
                    self.done = true;
                    return Some(Err(TRUNCATED));
                }
                Some(_) => {
                    self.done = true;
                    return Some(Err(STRAY));
                }
            }
        } else if b.get(i) == Some(&b']') {
            self.done = true;
            return None;
        }
        self.first = false;
        Some(Ok(i))
    }

    /// The bytes of the element starting at `i` (from [`Elements::start`]), found by this
    /// splitter.
    pub fn element(&mut self, i: usize) -> Result<&'a [u8], &'static str> {
        let b = self.bytes;
        self.deep = false;
        match value_end(b, i, &mut self.deep) {
            Some(end) if end > i && end <= b.len() => {
                self.pos = end;
                b.get(i..end).ok_or(STRAY)
            }
            Some(_) => {
                self.done = true;
                Err(STRAY)
            }
            // Cut short past the limit: the depth is what went wrong first.
            None if self.deep => {
                self.done = true;
                Err(crate::TOO_DEEP)
            }
            None => {
                self.done = true;
                Err(TRUNCATED)
            }
        }
    }

    /// Whether the element last returned by [`Elements::element`] nests deeper than
    /// [`crate::MAX_NESTING`]: its bytes are right, but no recursive parser should read
    /// them.
    pub fn too_deep(&self) -> bool {
        self.deep
    }

    /// The element starting at `i` ends at `end`, as a parser that read it found.
    pub fn ended_at(&mut self, end: usize) {
        self.pos = end;
    }
}

impl<'a> Iterator for Elements<'a> {
    /// An element's bytes, or why the split stopped (nothing follows an `Err`).
    type Item = Result<&'a [u8], &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        self.start().map(|i| i.and_then(|i| self.element(i)))
    }
}

/// The top-level entries of the JSON object `obj` (its first non-space byte must be `{`):
/// each key's raw bytes (between its quotes, escapes left as they are) and its value's
/// bytes, found as [`Elements`] finds elements, without parsing or recursion. For readers
/// that only look at the top of an object nested too deep for a parser; it stops at the
/// first thing that is not `"key": value` followed by `,` or `}`.
pub fn entries(obj: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let start = skip_ws(obj, 0);
    let mut pos = (obj.get(start) == Some(&b'{')).then_some(start + 1);
    std::iter::from_fn(move || {
        let b = obj;
        let i = skip_ws(b, pos.take()?);
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(b, i)?;
        let key = b.get(i + 1..key_end - 1)?;
        let colon = skip_ws(b, key_end);
        if b.get(colon) != Some(&b':') {
            return None;
        }
        let v = skip_ws(b, colon + 1);
        let end = value_end(b, v, &mut false)?;
        let value = b.get(v..end)?;
        let next = skip_ws(b, end);
        if b.get(next) == Some(&b',') {
            pos = Some(next + 1);
        }
        Some((key, value))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn split(s: &str) -> Vec<Result<&str, &'static str>> {
        elements(s.as_bytes())
            .map(|r| r.map(|b| std::str::from_utf8(b).unwrap()))
            .collect()
    }

    #[test]
    fn elements_and_their_bytes() {
        assert_eq!(split("[]"), []);
        assert_eq!(split(" [ ] "), []);
        assert_eq!(
            split(r#"[{"a":"}]\"{"}, [1,{"b":[]}] ,"x\\",-1.5e3,true,null]"#),
            [
                Ok(r#"{"a":"}]\"{"}"#),
                Ok(r#"[1,{"b":[]}]"#),
                Ok(r#""x\\""#),
                Ok("-1.5e3"),
                Ok("true"),
                Ok("null")
            ]
        );
        // Cut short: every complete element, then why it stopped.
        assert_eq!(
            split(r#"[{"a":1},{"b":"#),
            [Ok(r#"{"a":1}"#), Err(TRUNCATED)]
        );
        assert_eq!(
            split(r#"[{"a":1} {"b":2}]"#),
            [Ok(r#"{"a":1}"#), Err(STRAY)]
        );
        assert_eq!(split(r#"[{"a":1}"#), [Ok(r#"{"a":1}"#), Err(TRUNCATED)]);
        assert_eq!(split(r#"{"a":1}"#), [Err("not a JSON array")]);
        // Invalid inside but balanced: its own bytes (its parse fails alone).
        assert_eq!(
            split(r#"[{"a":tru},{"b":2}]"#),
            [Ok(r#"{"a":tru}"#), Ok(r#"{"b":2}"#)]
        );
    }

    #[test]
    fn entries_of_an_object() {
        let obj = br#" { "a" : [1,{"b":"}"}] , "k\"":"v","n":-1 } "#;
        let got: Vec<(&[u8], &[u8])> = entries(obj).collect();
        let want: Vec<(&[u8], &[u8])> = vec![
            (b"a", br#"[1,{"b":"}"}]"#),
            (br#"k\""#, br#""v""#),
            (b"n", b"-1"),
        ];
        assert_eq!(got, want);
        assert_eq!(entries(b"[1]").count(), 0);
        assert_eq!(entries(br#"{"a":1 "b":2}"#).count(), 1);
        let deep = format!(r#"{{"kind":"x","d":{}}}"#, "[".repeat(100_000));
        assert_eq!(entries(deep.as_bytes()).count(), 1);
    }

    /// Wherever sonic-rs's own iterator accepts an array, the elements are the same bytes.
    #[test]
    fn splits_as_sonic_does() {
        let mut docs: Vec<Vec<u8>> = vec![
            br#"[{"eventName":"A","x":[1,2,{"y":"]"}]}, {"eventName":"B\u005d"}]"#.to_vec(),
            b"[1, 2.5, \"s\", [], {}, [[]], null]".to_vec(),
        ];
        if let Some(c) = keyward_testkit::corpora() {
            let dir = c.join("aws-cloudtrail-stratus-detonations/detonation-logs");
            for e in std::fs::read_dir(dir).unwrap() {
                docs.push(std::fs::read(e.unwrap().path()).unwrap());
            }
        }
        let mut compared = 0;
        for d in &docs {
            let start = d.iter().position(|c| *c == b'[').unwrap();
            let array = &d[start..];
            let sonic: Vec<Vec<u8>> = sonic_rs::to_array_iter(array)
                .map(|v| v.unwrap().as_raw_str().as_bytes().to_vec())
                .collect();
            let ours: Vec<Vec<u8>> = elements(array).map(|e| e.unwrap().to_vec()).collect();
            assert_eq!(ours, sonic);
            compared += ours.len();
        }
        assert!(compared > 8, "{compared}");
    }
}
