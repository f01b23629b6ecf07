//! RFC 3339 timestamps without a date-time dependency: the API speaks RFC 3339 and epoch
//! milliseconds, and everything inside Footfall is epoch milliseconds (UTC). The one
//! implementation for the server and the dashboard alike.
//!
//! A UTC offset is always in minutes **east** of UTC, the sign RFC 3339 writes (`+05:30` is
//! 330).

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Formats epoch milliseconds as `2023-11-29T05:09:27.890Z`.
pub fn format_rfc3339_millis(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{milli:03}Z")
}

/// Formats `ms` as local time at a fixed offset: `2026-11-26T00:00:00.000+05:30` (`Z` at 0).
pub fn format_rfc3339_local(ms: i64, offset_min: i32) -> String {
    let local = format_rfc3339_millis(ms + i64::from(offset_min) * MINUTE_MS);
    let stem = local.strip_suffix('Z').unwrap_or(&local);
    format!("{stem}{}", format_utc_offset(offset_min))
}

/// `+05:30`, `-08:00`, or `Z` for 0.
pub fn format_utc_offset(offset_min: i32) -> String {
    if offset_min == 0 {
        return "Z".into();
    }
    let sign = if offset_min < 0 { '-' } else { '+' };
    let a = offset_min.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 60, a % 60)
}

/// A fixed UTC offset: `Z`, `UTC`, `+05:30`, `-0800`, `+02` → minutes east of UTC. `None`
/// for anything else, IANA zone names included (the caller knows its offset).
pub fn parse_utc_offset(value: &str) -> Option<i32> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("z") || v.eq_ignore_ascii_case("utc") || v.is_empty() {
        return Some(0);
    }
    let (sign, rest) = match v.as_bytes().first() {
        Some(b'+') => (1, &v[1..]),
        Some(b'-') => (-1, &v[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !(digits.len() == 2 || digits.len() == 4) {
        return None;
    }
    let hours: i32 = digits.get(..2)?.parse().ok()?;
    let minutes: i32 = match digits.get(2..) {
        Some("") | None => 0,
        Some(m) => m.parse().ok()?,
    };
    if hours > 14 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 60 + minutes))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (also with a space or lower-case `t`/`z`)
/// or a bare `YYYY-MM-DD` (midnight UTC) into epoch milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !(1..=12).contains(&m) {
        return None;
    }
    if !(1..=days_in_month(y, m)).contains(&d) {
        return None;
    }
    let date_ms = days_from_civil(y, m, d) * 86_400_000;
    if b.len() == 10 {
        return Some(date_ms);
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (hh, mi, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if hh > 23 || mi > 59 || ss > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == start {
            return None;
        }
        // Milliseconds are the first three fraction digits; finer precision is truncated.
        let digits = &s[start..end.min(start + 3)];
        millis = digits.parse::<i64>().ok()? * 10_i64.pow(3 - digits.len() as u32);
        i = end;
    }
    let offset_ms = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = (oh * 60 + om) * 60_000;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    Some(date_ms + ((hh * 60 + mi) * 60 + ss) * 1000 + millis - offset_ms)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The `(year, month, day)` of a day number (inverse of [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_millis(1_701_234_567_890),
            "2023-11-29T05:09:27.890Z"
        );
        assert_eq!(format_rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses() {
        assert_eq!(
            parse_rfc3339("2023-11-29T05:09:27.890Z"),
            Some(1_701_234_567_890)
        );
        assert_eq!(
            parse_rfc3339("2023-11-29T05:09:27Z"),
            Some(1_701_234_567_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-29T10:39:27.89+05:30"),
            Some(1_701_234_567_890)
        );
        assert_eq!(parse_rfc3339("2024-02-29"), Some(1_709_164_800_000));
        assert_eq!(parse_rfc3339("2023-02-29"), None);
        assert_eq!(parse_rfc3339("2023-11-29T25:00:00Z"), None);
        assert_eq!(
            parse_rfc3339("2023-11-29T05:09:27"),
            None,
            "offset required"
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2023-11-29T05:09:27.Z"), None);
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_utc_offset("+05:30"), Some(330));
        assert_eq!(parse_utc_offset("-0800"), Some(-480));
        assert_eq!(parse_utc_offset("+02"), Some(120));
        assert_eq!(parse_utc_offset("Z"), Some(0));
        assert_eq!(parse_utc_offset("Asia/Kolkata"), None);
        assert_eq!(parse_utc_offset("+25:00"), None);
        assert_eq!(parse_utc_offset("+0"), None);
        assert_eq!(format_utc_offset(-210), "-03:30");
        assert_eq!(format_utc_offset(0), "Z");
        for m in [-720, -210, 0, 60, 330, 840] {
            assert_eq!(parse_utc_offset(&format_utc_offset(m)), Some(m));
        }
        assert_eq!(
            format_rfc3339_local(0, 330),
            "1970-01-01T05:30:00.000+05:30"
        );
        assert_eq!(
            parse_rfc3339(&format_rfc3339_local(1_701_234_567_890, -480)),
            Some(1_701_234_567_890)
        );
    }

    #[test]
    fn roundtrip_across_eras() {
        for ms in [
            -62_135_596_800_000_i64,
            0,
            951_782_400_000,
            1_701_234_567_890,
            4_102_444_800_123,
        ] {
            assert_eq!(parse_rfc3339(&format_rfc3339_millis(ms)), Some(ms));
        }
    }
}
