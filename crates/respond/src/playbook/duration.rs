//! Durations as playbooks write them: `30s`, `10m`, `24h`, `7d`, `1h30m`.

use keyward_model::time::Millis;

/// Milliseconds of a duration; at least one `<number><unit>` with units `s`, `m`, `h`,
/// `d`, `w`.
pub fn parse_duration(s: &str) -> Result<Millis, String> {
    let bad = || format!("`{s}` is not a duration (use e.g. 30s, 10m, 24h, 7d)");
    let mut total: Millis = 0;
    let mut num: Option<Millis> = None;
    let mut parts = 0;
    for c in s.trim().chars() {
        if let Some(d) = c.to_digit(10) {
            let n = num.unwrap_or(0);
            num = Some(
                n.checked_mul(10)
                    .and_then(|n| n.checked_add(Millis::from(d)))
                    .ok_or_else(bad)?,
            );
            continue;
        }
        let unit: Millis = match c {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 7 * 86_400_000,
            _ => return Err(bad()),
        };
        let n = num.take().ok_or_else(bad)?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        parts += 1;
    }
    if num.is_some() || parts == 0 || total <= 0 {
        return Err(bad());
    }
    Ok(total)
}

/// The shortest way to write `ms` in whole units (`1d`, `36h`, `90s`).
pub fn format_duration(ms: Millis) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(86_400_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("7d"), Ok(604_800_000));
        for bad in ["", "h", "10", "5x", "-1h", "0s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(86_400_000), "1d");
        assert_eq!(format_duration(5_400_000), "90m");
    }
}
