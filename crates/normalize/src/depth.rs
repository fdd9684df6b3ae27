//! The nesting limit: how deep a record may nest before it is rejected instead of parsed.
//!
//! The parsers behind the normalizers (sonic-rs, serde_json, serde-saphyr, hcl-edit) and
//! the rules' views of a record recurse once per level of nesting, so a record nested a
//! few thousand levels deep would overflow the stack and abort the whole process. Every
//! reader therefore measures nesting without recursion (bracket depth, outside strings)
//! before a recursive parser sees the bytes, and a record deeper than [`MAX_NESTING`] is
//! one rejected record with the reason [`TOO_DEEP`]. Where it is measured:
//! - JSON lines: [`crate::normalize_line`], each line (a `memchr` count of opening brackets
//!   first: a line with at most [`MAX_NESTING`] of them is never walked);
//! - CloudTrail arrays (S3 objects): the array splitter ([`crate::split`]) measures the
//!   records the fast path leaves to serde, as it cuts them (the fast path itself never
//!   goes deeper than 32 levels); a deep record is rejected alone and the records after it
//!   are kept, as long as the splitter finds its end;
//! - whole JSON documents (an IAM snapshot, a `kubectl` list, an `EventList`, a Terraform
//!   plan): the document, before it is parsed: nested too deep, it is one rejected
//!   document;
//! - YAML: serde-saphyr's own depth budget, set to [`MAX_NESTING`]; HCL: [`hcl_too_deep`].
use keyward_model::Reason;

/// The deepest nesting of arrays and objects a record may have (`[[1]]` is nested 2
/// deep). Below `serde_json`'s default recursion limit (it refuses 128 levels) with room
/// to spare: the rules' view of a record is a serde_json tree, and a record this reader
/// accepted but serde_json refused would reach the rules empty — a way to hide an event
/// from them. Real records nest a few dozen levels at most.
pub const MAX_NESTING: usize = 100;

/// The stack a thread that parses records needs, nested up to [`MAX_NESTING`]: sonic-rs
/// skips a value it does not read by recursing once per level with a frame of 32 KB
/// (optimized; 54 KB unoptimized), so 100 levels take over 3 MiB of sonic-rs frames alone,
/// more than the 2 MiB a Rust thread gets by default. Threads that parse (the server's
/// engine and its request workers) are started with this much; the CLI parses on the
/// main thread (8 MiB on Linux).
pub const STACK: usize = 16 << 20;

/// The reason a record or document nested deeper than [`MAX_NESTING`] is rejected.
pub const TOO_DEEP: &str = "nested deeper than 100";

/// The index just past the JSON string whose opening quote is at `i` (`None`: it never
/// ends).
pub(crate) fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        let rest = b.get(j..)?;
        let k = memchr::memchr2(b'"', b'\\', rest)?;
        match rest.get(k) {
            Some(b'"') => return Some(j + k + 1),
            // An escape: the next byte is taken as it is.
            _ => j += k + 2,
        }
    }
}

/// Where JSON text (a record, a document, several lines of them) first opens a level
/// deeper than [`MAX_NESTING`]: the index of that bracket. Brackets inside strings do not
/// count; a stray closing bracket never makes the depth negative. Walks the bytes once,
/// without recursion, and not at all when they hold at most [`MAX_NESTING`] opening
/// brackets in all.
pub fn too_deep_at(json: &[u8]) -> Option<usize> {
    memchr::memchr2_iter(b'{', b'[', json).nth(MAX_NESTING)?;
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&c) = json.get(i) {
        match c {
            // A string that never ends holds no more brackets.
            b'"' => {
                i = string_end(json, i)?;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// `Err(TOO_DEEP)` when JSON text nests deeper than [`MAX_NESTING`] (see [`too_deep_at`]).
pub fn check(json: &[u8]) -> Result<(), Reason> {
    match too_deep_at(json) {
        Some(_) => Err(TOO_DEEP.into()),
        None => Ok(()),
    }
}

/// Where HCL text first opens a level deeper than [`MAX_NESTING`]. Every `{`, `[` and `(`
/// counts, inside strings, heredocs and comments too: a template interpolation
/// (`"${ … }"`) nests expressions inside a string, so skipping strings would miss
/// nesting that hcl-edit's recursive parser follows. The cost is that more than 100
/// unbalanced opening brackets inside strings or comments also reject a file.
pub fn hcl_too_deep_at(text: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    for (i, &c) in text.iter().enumerate() {
        match c {
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// serde-saphyr's options for YAML inputs: strict booleans, and its depth budget (which
/// it checks as it reads, without recursion) at [`MAX_NESTING`].
pub(crate) fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        budget: serde_saphyr::budget! {
            max_depth: MAX_NESTING,
            flow_nesting_limit: MAX_NESTING,
        },
    }
}

/// Whether a serde-saphyr error is one of its depth limits (see [`yaml_options`]): the
/// depth budget, or its scanner's flow nesting limit (the scanner reads ahead of the
/// budget's count).
pub(crate) fn yaml_too_deep(mut e: &serde_saphyr::Error) -> bool {
    use serde_saphyr::{Error, ExternalMessageSource};
    loop {
        match e {
            Error::WithSnippet { error, .. } | Error::AliasError { error, .. } => e = error,
            Error::Budget {
                breach: serde_saphyr::budget::BudgetBreach::Depth { .. },
                ..
            } => return true,
            Error::ExternalMessage { source, .. } => {
                return matches!(
                    &**source,
                    ExternalMessageSource::Parser(s)
                        if matches!(s.kind(), granit_parser::ErrorKind::RecursionLimitExceeded)
                );
            }
            _ => return false,
        }
    }
}

/// The 1-based line of byte `at` of `doc`.
pub(crate) fn line_at(doc: &[u8], at: usize) -> u64 {
    let before = doc.get(..at).unwrap_or(doc);
    memchr::memchr_iter(b'\n', before).count() as u64 + 1
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn the_limit_and_its_reason_agree() {
        assert_eq!(TOO_DEEP, format!("nested deeper than {MAX_NESTING}"));
    }

    #[test]
    fn measures_brackets_outside_strings() {
        assert_eq!(too_deep_at(nested(MAX_NESTING).as_bytes()), None);
        assert_eq!(
            too_deep_at(nested(MAX_NESTING + 1).as_bytes()),
            Some(MAX_NESTING)
        );
        // Many brackets, little depth: walked, not deep.
        let wide = "[]".repeat(1000);
        assert_eq!(too_deep_at(wide.as_bytes()), None);
        // Brackets in strings, escaped quotes in strings, do not count.
        let s = format!(r#"{{"a":"{}\"{}"}}"#, "[".repeat(500), "{".repeat(500));
        assert_eq!(too_deep_at(s.as_bytes()), None);
        let s = format!(r#"{{"a\\":{}}}"#, nested(MAX_NESTING));
        assert_eq!(
            too_deep_at(s.as_bytes()),
            Some(s.find('[').unwrap() + MAX_NESTING - 1)
        );
        // Unbalanced and cut short: still measured, never negative.
        assert_eq!(too_deep_at("]".repeat(500).as_bytes()), None);
        let open = "{\"a\":".repeat(200);
        assert_eq!(too_deep_at(open.as_bytes()), Some(MAX_NESTING * 5));
        assert_eq!(too_deep_at(format!("\"{open}").as_bytes()), None);
    }

    /// Every parser a normalizer uses reads [`MAX_NESTING`] levels where our check lets them through,
    /// on a thread with [`STACK`].
    #[test]
    fn parsers_read_what_the_check_lets_through() {
        std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(parse_the_limit)
            .unwrap()
            .join()
            .unwrap();
    }

    fn parse_the_limit() {
        let ok = nested(MAX_NESTING);
        assert!(sonic_rs::from_str::<sonic_rs::Value>(&ok).is_ok());
        // The rules' view of a record is a serde_json tree: what we accept, it must read,
        // or an event nested just under our limit would reach the rules empty.
        assert!(serde_json::from_str::<serde_json::Value>(&ok).is_ok());
        assert!(sonic_rs::from_str::<serde::de::IgnoredAny>(&ok).is_ok());
        let obj = format!(
            "{}1{}",
            "{\"a\":".repeat(MAX_NESTING),
            "}".repeat(MAX_NESTING)
        );
        assert!(too_deep_at(obj.as_bytes()).is_none());
        assert!(sonic_rs::get_from_str(&obj, ["a"]).is_ok());
    }

    #[test]
    fn hcl_counts_every_bracket() {
        assert_eq!(hcl_too_deep_at(b"a = [(1), {b = 2}]"), None);
        let deep = format!("a = \"{}\"", "${".repeat(MAX_NESTING + 1));
        assert!(hcl_too_deep_at(deep.as_bytes()).is_some());
        assert_eq!(hcl_too_deep_at("(".repeat(MAX_NESTING).as_bytes()), None);
        assert_eq!(
            hcl_too_deep_at("(".repeat(MAX_NESTING + 1).as_bytes()),
            Some(MAX_NESTING)
        );
    }
}
