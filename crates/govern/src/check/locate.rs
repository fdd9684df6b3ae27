//! Where a construct is in a file's text: the parsers give a resource's or a document's
//! first line; the offending value inside it is found by searching forward from there for
//! a sequence of needles (`Statement`, then the n-th `Effect`, then `"iam:PassRole"`).
//! A needle not found leaves the position at the last one that was.

use std::borrow::Cow;

/// A 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    pub line: u64,
    pub column: Option<u64>,
}

impl Pos {
    pub fn line(line: u64) -> Pos {
        Pos {
            line: line.max(1),
            column: None,
        }
    }
}

/// A file's text, by line.
pub(crate) struct Text<'a> {
    text: Cow<'a, str>,
}

impl<'a> Text<'a> {
    pub fn new(bytes: &'a [u8]) -> Text<'a> {
        Text {
            text: String::from_utf8_lossy(bytes),
        }
    }

    /// The position of the last of `needles` found, each searched from where the one
    /// before was (from the start of line `from`), none at or after line `until`.
    pub fn find(&self, from: u64, until: Option<u64>, needles: &[&str]) -> Pos {
        let mut at = Pos::line(from);
        let mut lines = self
            .text
            .lines()
            .enumerate()
            .map(|(i, l)| (i as u64 + 1, l))
            .skip(from.saturating_sub(1) as usize)
            .take_while(|(n, _)| until.is_none_or(|u| *n < u));
        // Where the search resumes: a line and a byte offset in it.
        let Some(mut cur) = lines.next() else {
            return at;
        };
        let mut offset = 0usize;
        'needles: for needle in needles {
            loop {
                let (n, line) = cur;
                if let Some(i) = line.get(offset..).and_then(|rest| rest.find(needle)) {
                    let start = offset + i;
                    let column = line.get(..start).map_or(0, |s| s.chars().count()) as u64 + 1;
                    at = Pos {
                        line: n,
                        column: Some(column),
                    };
                    offset = start + needle.len();
                    continue 'needles;
                }
                match lines.next() {
                    Some(next) => {
                        cur = next;
                        offset = 0;
                    }
                    None => break 'needles,
                }
            }
        }
        at
    }

    /// The 1-based line of the first line holding `needle` (from line 1), if any.
    pub fn line_of(&self, needle: &str) -> Option<u64> {
        self.text
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i as u64 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needles_in_turn() {
        let t = Text::new(b"{\n \"Statement\": [\n  {\"Effect\": \"Allow\", \"Action\": \"*\"},\n  {\"Effect\": \"Allow\",\n   \"Action\": \"iam:PassRole\"}]}\n");
        let p = t.find(
            1,
            None,
            &["Statement", "Effect", "Effect", "\"iam:PassRole\""],
        );
        assert_eq!((p.line, p.column), (5, Some(14)));
        let p = t.find(1, None, &["Statement", "Effect", "\"*\""]);
        assert_eq!((p.line, p.column), (3, Some(33)));
        // Not found: the last needle that was.
        let p = t.find(1, None, &["Statement", "nowhere"]);
        assert_eq!((p.line, p.column), (2, Some(3)));
        // Bounded.
        let p = t.find(1, Some(4), &["Statement", "Effect", "Effect"]);
        assert_eq!(p.line, 3);
        assert_eq!(t.find(99, None, &["x"]).line, 99);
    }
}
