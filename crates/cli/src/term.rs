//! Everything the binary prints goes through [`clean`]: names, tags, paths and reasons come
//! from ingested data, and a control sequence in them (an ANSI escape that rewrites the
//! screen, a carriage return that hides a line, a bidirectional override that reorders it)
//! must reach the terminal as visible text, never as an instruction to it.
//!
//! The crate's `print!`, `println!`, `eprint!` and `eprintln!` are the macros below (they
//! shadow std's, being defined before every module), so no call site can forget.

use std::borrow::Cow;
use std::io::Write;

/// Whether `c` must not reach a terminal as it is: C0 controls but newline and tab, DEL,
/// C1 controls, and the bidirectional embedding, override and isolate marks.
fn unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every unsafe character written as `\uXXXX` (inside a JSON string that is the
/// same character; anywhere else it is plain, visible text).
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Writes `text` cleaned to standard output (`err`: standard error). A closed pipe
/// (`keyward inventory | head`) ends the process quietly, as std's `println!` would not.
pub fn write(err: bool, text: &str) {
    let text = clean(text);
    let result = if err {
        std::io::stderr().lock().write_all(text.as_bytes())
    } else {
        std::io::stdout().lock().write_all(text.as_bytes())
    };
    if let Err(e) = result
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

macro_rules! print {
    ($($arg:tt)*) => { $crate::term::write(false, &format!($($arg)*)) };
}
macro_rules! println {
    () => { $crate::term::write(false, "\n") };
    ($($arg:tt)*) => { $crate::term::write(false, &format!("{}\n", format_args!($($arg)*))) };
}
#[allow(unused_macros, reason = "shadows std's for code yet to be written")]
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::term::write(true, &format!($($arg)*)) };
}
macro_rules! eprintln {
    () => { $crate::term::write(true, "\n") };
    ($($arg:tt)*) => { $crate::term::write(true, &format!("{}\n", format_args!($($arg)*))) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_ingested_names_are_escaped() {
        assert_eq!(clean("svc-ci"), "svc-ci");
        assert_eq!(clean("a\tb\nc"), "a\tb\nc");
        assert_eq!(clean("x\u{1b}[2Jy"), "x\\u001b[2Jy");
        assert_eq!(clean("ok\rfake"), "ok\\u000dfake");
        assert_eq!(clean("\u{9b}31m"), "\\u009b31m");
        assert_eq!(clean("abc\u{202e}fed"), "abc\\u202efed");
        // Inside a JSON string the escape decodes to the same character.
        let json = serde_json::to_string("x\u{9b}y").unwrap_or_default();
        let back: String = serde_json::from_str(&clean(&json)).unwrap_or_default();
        assert_eq!(back, "x\u{9b}y");
    }
}
