//! A strict, single-pass JSON reader for the records a format knows the shape of.
//!
//! The typed serde parse of a CloudTrail record, through sonic-rs, runs about 15,000
//! instructions per record and tens of kilobytes of visitor code (one monomorphized path
//! per field and nesting). Together with finding where each record of an S3 object ends,
//! it was a third of ingest's instructions. This reader walks a record once: it validates
//! the whole value, hands the fields a format asks for to that format's code, and skips
//! the rest, telling where the value ended.
//!
//! It decides only what it is sure of. Anything unusual (a `\u` escape, an escaped key, a
//! number where a field of interest is, nesting deeper than [`MAX_DEPTH`], a byte JSON does
//! not allow) is a [`Bail`]: the caller then takes the serde path, which decides as it
//! always has, errors included. So the reader must never accept what serde rejects, and
//! must give the same values where it accepts; the differential tests and the fuzz target
//! `cloudtrail_fast` hold it to that.
//!
//! It works on `&str` (the caller checks UTF-8 once per document) and never indexes out
//! of bounds: every access is checked, and the end of input is a [`Bail`].

use std::borrow::Cow;

/// The fast path cannot decide this input; the serde path will.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bail;

pub(crate) type R<T> = Result<T, Bail>;

/// Containers nested deeper than this are left to the serde path.
pub(crate) const MAX_DEPTH: usize = 32;

/// A JSON scalar or container kind, as far as the fields of interest tell them apart.
pub(crate) enum Scalar<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Null,
    /// An object or an array, skipped.
    Container,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Bytes of `x` equal to zero get their high bit set; the lowest set bit is exact (bits
/// above it may be spurious).
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGH
}

/// The bytes a string scan stops at: `"`, `\` and control characters.
fn string_stops(x: u64) -> u64 {
    zero_bytes(x ^ (ONES * u64::from(b'"')))
        | zero_bytes(x ^ (ONES * u64::from(b'\\')))
        | (x.wrapping_sub(ONES * 0x20) & !x & HIGH)
}

pub(crate) struct Scan<'a> {
    s: &'a str,
    b: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Scan<'a> {
    pub(crate) fn new(s: &'a str, pos: usize) -> Self {
        Scan {
            s,
            b: s.as_bytes(),
            pos,
        }
    }

    pub(crate) fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> R<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Bail)
        }
    }

    /// Where the string whose opening quote is at `pos` stops: its closing quote or a byte
    /// that needs attention (a backslash, a control character).
    fn string_stop(&self, mut i: usize) -> R<usize> {
        while let Some(chunk) = self.b.get(i..i + 8) {
            let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).map_err(|_| Bail)?);
            let stops = string_stops(word);
            if stops != 0 {
                return Ok(i + (stops.trailing_zeros() / 8) as usize);
            }
            i += 8;
        }
        while let Some(&c) = self.b.get(i) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                return Ok(i);
            }
            i += 1;
        }
        Err(Bail)
    }

    /// A string at `pos` (its opening quote), unescaped. Escapes other than `\u` are
    /// decoded; a `\u` escape or a control character is a [`Bail`].
    pub(crate) fn string(&mut self) -> R<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.pos;
        let mut i = self.string_stop(start)?;
        if self.b.get(i) == Some(&b'"') {
            self.pos = i + 1;
            return self.s.get(start..i).map(Cow::Borrowed).ok_or(Bail);
        }
        let mut out = String::from(self.s.get(start..i).ok_or(Bail)?);
        loop {
            match self.b.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    out.push(unescape(self.b.get(i + 1).copied())?);
                    i += 2;
                }
                _ => return Err(Bail),
            }
            let next = self.string_stop(i)?;
            out.push_str(self.s.get(i..next).ok_or(Bail)?);
            i = next;
        }
    }

    /// Validates and skips a string at `pos`.
    fn skip_string(&mut self) -> R<()> {
        self.eat(b'"')?;
        let mut i = self.string_stop(self.pos)?;
        loop {
            match self.b.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    unescape(self.b.get(i + 1).copied())?;
                    i = self.string_stop(i + 2)?;
                }
                _ => return Err(Bail),
            }
        }
    }

    /// An object key without escapes, and the `:` after it.
    pub(crate) fn key(&mut self) -> R<&'a str> {
        self.eat(b'"')?;
        let start = self.pos;
        let end = self.string_stop(start)?;
        if self.b.get(end) != Some(&b'"') {
            return Err(Bail);
        }
        let key = self.s.get(start..end).ok_or(Bail)?;
        self.pos = end + 1;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Ok(key)
    }

    /// Walks the object at `pos`: `field` is called with each key, the scanner at its
    /// value, and must consume that value.
    pub(crate) fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> R<()>) -> R<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let key = self.key()?;
            field(self, key)?;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Bail),
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> R<()> {
        if self.b.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Bail)
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Validates and skips a number (RFC 8259 grammar).
    fn skip_number(&mut self) -> R<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(Bail),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(Bail);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(Bail);
            }
        }
        Ok(())
    }

    /// Validates and skips any value at `pos`; `depth` is the nesting it sits at.
    pub(crate) fn skip(&mut self, depth: usize) -> R<()> {
        match self.peek().ok_or(Bail)? {
            b'"' => self.skip_string(),
            b'{' => {
                if depth >= MAX_DEPTH {
                    return Err(Bail);
                }
                self.object(|s, _| s.skip(depth + 1))
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return Err(Bail);
                }
                self.pos += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => {
                            self.pos += 1;
                            self.ws();
                        }
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        _ => return Err(Bail),
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => Err(Bail),
        }
    }

    /// A value read as a field of interest: strings, booleans and null are told apart,
    /// containers are skipped, and a number is a [`Bail`] (its text as serde would print
    /// it is the serde path's to give).
    pub(crate) fn scalar(&mut self, depth: usize) -> R<Scalar<'a>> {
        match self.peek().ok_or(Bail)? {
            b'"' => self.string().map(Scalar::Str),
            b't' => self.literal(b"true").map(|()| Scalar::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Scalar::Bool(false)),
            b'n' => self.literal(b"null").map(|()| Scalar::Null),
            b'{' | b'[' => self.skip(depth).map(|()| Scalar::Container),
            _ => Err(Bail),
        }
    }
}

/// The character a two-byte escape stands for (`c` follows the backslash); `\u` is a
/// [`Bail`].
fn unescape(c: Option<u8>) -> R<char> {
    Ok(match c.ok_or(Bail)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        _ => return Err(Bail),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn skip_all(s: &str) -> R<usize> {
        let mut sc = Scan::new(s, 0);
        sc.skip(0)?;
        Ok(sc.pos)
    }

    /// Every input serde_json rejects is a bail; every one it accepts is skipped to its
    /// end, except the few the reader leaves to serde on purpose.
    #[test]
    fn skips_exactly_what_serde_json_accepts() {
        let cases = [
            r#"{"a":[1,-2.5e+3,0,true,false,null,"x\"\\\/\b\f\n\r\t"],"b":{}}"#,
            "[]",
            "[ ]",
            "{ }",
            r#"{"a" : 1 , "b":[ 1 , 2 ] }"#,
            "-0",
            "0.5E-7",
            "\"é ü 漢 😀\"",
            "\"a long string that crosses several eight-byte words\"",
            // Rejected by JSON.
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "tru",
            "nul",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "[1 2]",
            "\"tab\tinside\"",
            "\"bad \\x escape\"",
            "\"unterminated",
            "[",
            "{\"a\":",
            "'single'",
        ];
        for c in cases {
            let serde = serde_json::from_str::<serde_json::Value>(c).is_ok();
            let ours = skip_all(c);
            if serde {
                assert_eq!(ours, Ok(c.len()), "{c}");
            } else {
                assert!(ours.is_err() || ours != Ok(c.len()), "{c} accepted");
            }
        }
        // Left to serde on purpose: `\u` escapes and deep nesting.
        assert_eq!(skip_all(r#""\u0041""#), Err(Bail));
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(skip_all(&deep), Err(Bail));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(skip_all(&ok), Ok(ok.len()));
    }

    #[test]
    fn strings_are_unescaped_or_borrowed() {
        let mut s = Scan::new(r#""plain" "a\"b\\c\/d\ne""#, 0);
        assert!(matches!(s.string(), Ok(Cow::Borrowed("plain"))));
        s.ws();
        assert_eq!(s.string().unwrap(), "a\"b\\c/d\ne");
        // Every position of a stop byte within and across eight-byte words.
        for n in 0..20 {
            let body = "x".repeat(n);
            let text = format!("\"{body}\"");
            let mut s = Scan::new(&text, 0);
            assert_eq!(s.string().unwrap(), body);
            assert_eq!(s.pos, text.len());
            let text = format!("\"{body}\\n{body}\"");
            let mut s = Scan::new(&text, 0);
            assert_eq!(s.string().unwrap(), format!("{body}\n{body}"));
            let text = format!("\"{body}\u{1}\"");
            assert_eq!(Scan::new(&text, 0).string(), Err(Bail));
        }
    }

    #[test]
    fn keys_with_escapes_are_left_to_serde() {
        let mut s = Scan::new(r#"{"a\"b":1}"#, 0);
        assert_eq!(s.object(|s, _| s.skip(1)), Err(Bail));
    }
}
