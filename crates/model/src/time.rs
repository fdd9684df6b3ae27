//! Timestamps as epoch milliseconds, parsed leniently from the shapes platforms emit.
//!
//! CloudTrail writes `2024-07-30T21:31:21Z`, IAM exports `2019-08-16 17:27:59+00:00`,
//! Kubernetes `2026-11-10T08:15:02.123456Z`, some exports drop the offset entirely
//! (`2022-11-29 00:09:04.38`, read as UTC). This is on the ingest hot path, so it is a
//! small hand-written scanner rather than a general date library; it is checked against
//! `jiff` by a property test, and timed against it by `benches/time.rs` (figures and the
//! forms `jiff` rejects: docs/benchmarks.md).

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

pub const MS_PER_DAY: i64 = 86_400_000;

fn digits(b: &[u8], start: usize, len: usize) -> Option<i64> {
    let slice = b.get(start..start + len)?;
    let mut v = 0i64;
    for &c in slice {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses `YYYY-MM-DD[(T| )HH:MM[:SS[.fff…]]][Z|±HH[:]MM]`; a missing offset means UTC.
/// Returns `None` for anything else (the caller turns that into a diagnostic).
pub fn parse(s: &str) -> Option<Millis> {
    let b = s.trim().as_bytes();
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * MS_PER_DAY;
    let mut i = 10;
    if b.len() == i {
        return Some(ms);
    }
    if !matches!(b.get(i), Some(b'T' | b't' | b' ')) {
        return None;
    }
    i += 1;
    let hour = digits(b, i, 2)?;
    if b.get(i + 2) != Some(&b':') {
        return None;
    }
    let minute = digits(b, i + 3, 2)?;
    i += 5;
    let mut second = 0;
    if b.get(i) == Some(&b':') {
        second = digits(b, i + 1, 2)?;
        i += 3;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    ms += ((hour * 60 + minute) * 60 + second) * 1000;
    if matches!(b.get(i), Some(b'.' | b',')) {
        i += 1;
        let mut frac_ms = 0;
        let mut n = 0;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if n < 3 {
                frac_ms = frac_ms * 10 + i64::from(c - b'0');
            }
            n += 1;
            i += 1;
        }
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            frac_ms *= 10;
        }
        ms += frac_ms;
    }
    match b.get(i) {
        None => Some(ms),
        Some(b'Z' | b'z') if i + 1 == b.len() => Some(ms),
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, i + 1, 2)?;
            let om = match b.get(i + 3) {
                Some(b':') => digits(b, i + 4, 2)?,
                None => 0,
                Some(_) => digits(b, i + 3, 2)?,
            };
            let rest = if b.get(i + 3) == Some(&b':') {
                i + 6
            } else if b.len() == i + 3 {
                i + 3
            } else {
                i + 5
            };
            if rest != b.len() || oh > 23 || om > 59 {
                return None;
            }
            let off = (oh * 60 + om) * 60_000;
            Some(if sign == b'+' { ms - off } else { ms + off })
        }
        Some(_) => None,
    }
}

/// Formats as RFC 3339 UTC with seconds precision (`2026-11-10T08:15:02Z`), or with
/// milliseconds when they are not zero.
pub fn format(ms: Millis) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let secs = rem / 1000;
    let frac = rem % 1000;
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    if frac == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{frac:03}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn platform_shapes() {
        let z = parse("2024-07-30T21:31:21Z");
        assert_eq!(z, Some(1_722_375_081_000));
        assert_eq!(parse("2024-07-30 21:31:21+00:00"), z);
        assert_eq!(parse("2024-07-30T23:31:21+02:00"), z);
        assert_eq!(parse("2024-07-30T21:31:21.250Z"), z.map(|v| v + 250));
        assert_eq!(parse("2024-07-30T21:31:21.123456Z"), z.map(|v| v + 123));
        assert_eq!(parse("2022-11-29 00:09:04.38"), Some(1_669_680_544_380));
        assert_eq!(parse("2024-07-30"), Some(1_722_297_600_000));
        assert_eq!(parse("2024-07-30T21:31:21+0000"), z);
        assert_eq!(parse("N/A"), None);
        assert_eq!(parse("2024-13-30T21:31:21Z"), None);
        assert_eq!(parse("2024-07-30T21:31:21Zjunk"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn format_round_trip() {
        assert_eq!(format(1_722_375_081_000), "2024-07-30T21:31:21Z");
        assert_eq!(format(1_722_375_081_250), "2024-07-30T21:31:21.250Z");
    }

    proptest! {
        #[test]
        fn agrees_with_jiff(secs in 0i64..4_102_444_800, ms in 0i64..1000, off_min in -720i64..=840) {
            let ts = jiff::Timestamp::from_millisecond(secs * 1000 + ms).unwrap();
            let off = jiff::tz::Offset::from_seconds((off_min * 60) as i32).unwrap();
            let text = ts.to_zoned(jiff::tz::TimeZone::fixed(off)).strftime("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string();
            prop_assert_eq!(parse(&text), Some(secs * 1000 + ms));
            let utc = format(secs * 1000 + ms);
            prop_assert_eq!(utc.parse::<jiff::Timestamp>().unwrap().as_millisecond(), secs * 1000 + ms);
        }

        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = parse(&s);
        }
    }
}
