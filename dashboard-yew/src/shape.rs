//! Data shaping for display: number and percentage formatting, time buckets, calendar maths,
//! chart scales and the reconnect schedule. Pure functions of their arguments (the clock and
//! the time-zone offset are passed in), so every rule here is unit-tested on the host.
//!
//! Calendar and RFC 3339 code is `protocol::time`'s, shared with the server. A time-zone
//! offset is in minutes **east** of UTC everywhere (`+05:30` is 330), as on the server.

use std::time::Duration;

use protocol::stats::{Field, Filter, Interval, Summary};
use protocol::time::civil_from_days;
pub use protocol::time::{DAY_MS, MINUTE_MS};

/// `1234` → "1,234"; from 10 000 on, compact: "12.3k", "4.5M". Dashboards are glanced at, so
/// big numbers lose digits nobody reads; small ones stay exact because they move one by one.
pub fn format_count(n: u64) -> String {
    if n < 10_000 {
        return group_thousands(n);
    }
    let (value, unit) = if n < 1_000_000 {
        (n as f64 / 1_000.0, "k")
    } else if n < 1_000_000_000 {
        (n as f64 / 1_000_000.0, "M")
    } else {
        (n as f64 / 1_000_000_000.0, "B")
    };
    // One decimal below 100 ("12.3k"), none above ("123k"); truncate rather than round so a
    // counter never shows a value it has not reached yet.
    if value < 100.0 {
        let tenths = (value * 10.0).floor() / 10.0;
        format!("{tenths:.1}{unit}")
    } else {
        format!("{}{unit}", value.floor() as u64)
    }
}

/// An axis tick label: like [`format_count`]; empty for a fractional tick (the middle line
/// of a 0–5 axis), because counts are whole and "2.5 page views" reads as a bug.
pub fn format_tick(v: f64) -> String {
    if v.fract() == 0.0 || v >= 10_000.0 {
        format_count(v as u64)
    } else {
        String::new()
    }
}

/// `1234567` → "1,234,567".
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Share of `part` in `total` in percent; 0 when the total is 0 (an empty table, not NaN).
pub fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

/// "42%", "4.2%", "<0.1%", "0%": one decimal below 10 % where it carries information.
pub fn format_percent(p: f64) -> String {
    if p <= 0.0 {
        "0%".into()
    } else if p < 0.1 {
        "<0.1%".into()
    } else if p < 10.0 {
        format!("{p:.1}%")
    } else {
        format!("{}%", p.round() as u64)
    }
}

/// A table row with its share of the table's total.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareRow {
    pub key: String,
    pub count: u64,
    pub percent: f64,
}

/// Rows with their percentage of `total`, or of the rows' own sum when `total` is `None`
/// (a top-10 list's own sum would overstate each share, so callers pass the real total when
/// they know it).
pub fn with_shares<'a>(
    rows: impl IntoIterator<Item = (&'a str, u64)> + Clone,
    total: Option<u64>,
) -> Vec<ShareRow> {
    let total = total.unwrap_or_else(|| rows.clone().into_iter().map(|(_, c)| c).sum());
    rows.into_iter()
        .map(|(key, count)| ShareRow {
            key: key.to_string(),
            count,
            percent: percent(count, total),
        })
        .collect()
}

/// Start of the bucket holding `t`. Days start at local midnight (`tz_offset_min` east of
/// UTC).
pub fn bucket_start(t: i64, interval: Interval, tz_offset_min: i32) -> i64 {
    let shift = i64::from(tz_offset_min) * MINUTE_MS;
    let local = t + shift;
    local - local.rem_euclid(interval.ms()) - shift
}

/// A round axis maximum ≥ `max`: 1, 2, 5 × 10ⁿ, so gridlines fall on readable numbers.
pub fn nice_max(max: u64) -> u64 {
    if max <= 1 {
        return 1;
    }
    let mut base = 1u64;
    loop {
        for m in [1, 2, 5] {
            let v = base.saturating_mul(m);
            if v >= max {
                return v;
            }
        }
        if base > u64::MAX / 10 {
            return max;
        }
        base *= 10;
    }
}

/// `"2026-11-26"` (what `<input type=date>` gives) → the epoch ms of that local midnight.
pub fn parse_date(s: &str, tz_offset_min: i32) -> Option<i64> {
    let s = s.trim();
    if s.len() != 10 {
        return None;
    }
    Some(protocol::time::parse_rfc3339(s)? - i64::from(tz_offset_min) * MINUTE_MS)
}

/// The local date of `t` as `"YYYY-MM-DD"`.
pub fn format_date(t: i64, tz_offset_min: i32) -> String {
    let local = t + i64::from(tz_offset_min) * MINUTE_MS;
    let (y, m, d) = civil_from_days(local.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Local wall-clock time of `t` as `"HH:MM"`.
pub fn format_clock(t: i64, tz_offset_min: i32) -> String {
    let local = t + i64::from(tz_offset_min) * MINUTE_MS;
    let mins = local.div_euclid(MINUTE_MS).rem_euclid(24 * 60);
    format!("{:02}:{:02}", mins / 60, mins % 60)
}

/// A bucket's label on a chart axis: the time for minutes and hours, "Nov 26" for days.
pub fn bucket_label(t: i64, interval: Interval, tz_offset_min: i32) -> String {
    match interval {
        Interval::Minute | Interval::Hour => format_clock(t, tz_offset_min),
        Interval::Day => {
            let local = t + i64::from(tz_offset_min) * MINUTE_MS;
            let (_, m, d) = civil_from_days(local.div_euclid(DAY_MS));
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let month = usize::try_from(m - 1).unwrap_or(0) % 12;
            format!("{} {d}", MONTHS[month])
        }
    }
}

/// "just now", "42 s ago", "5 min ago", "3 h ago": how old a feed event is.
pub fn format_age(event_ms: i64, now_ms: i64) -> String {
    let s = (now_ms - event_ms).max(0) / 1000;
    match s {
        0..=4 => "just now".into(),
        5..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3600),
    }
}

/// Delay before reconnect attempt `attempt` (1-based): 0.5 s doubling to 30 s, each spread
/// by ±20 % (`jitter` in 0..1) so a restarted server is not hit by every tab at once.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    const BASE_MS: f64 = 500.0;
    const CAP_MS: f64 = 30_000.0;
    let exp = attempt.saturating_sub(1).min(16) as i32;
    let ms = (BASE_MS * 2f64.powi(exp)).min(CAP_MS);
    let spread = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    Duration::from_millis((ms * spread) as u64)
}

/// "0s", "42s", "3m 05s", "1h 02m": a visit duration in whole seconds.
pub fn format_duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, secs / 60 % 60),
    }
}

/// Change from `previous` to `current` in percent of `previous`. `None` when there is no base
/// to compare with (nothing before, something now); 0 when both are 0.
pub fn change_percent(current: f64, previous: f64) -> Option<f64> {
    if previous == 0.0 {
        (current == 0.0).then_some(0.0)
    } else {
        Some((current - previous) * 100.0 / previous)
    }
}

/// How a change reads: the colour of its badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Bad,
    Neutral,
}

impl Tone {
    /// `lower_is_better` for the bounce rate: fewer one-page visits is the good direction.
    /// Changes that show as "0%" are neutral.
    pub fn of(change: Option<f64>, lower_is_better: bool) -> Tone {
        match change {
            Some(c) if c.abs() >= 0.05 => {
                if (c < 0.0) == lower_is_better {
                    Tone::Good
                } else {
                    Tone::Bad
                }
            }
            _ => Tone::Neutral,
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Tone::Good => "good",
            Tone::Bad => "bad",
            Tone::Neutral => "neutral",
        }
    }
}

/// "↑ 12%", "↓ 4.3%", "0%"; "new" when there was nothing to compare with.
pub fn format_change(change: Option<f64>) -> String {
    match change {
        None => "new".into(),
        Some(c) if c.abs() < 0.05 => "0%".into(),
        Some(c) if c > 0.0 => format!("↑ {}", format_percent(c)),
        Some(c) => format!("↓ {}", format_percent(-c)),
    }
}

/// `footfall-shop.example-pages-2026-11-01-2026-11-07.csv`: what a download is saved as.
/// Only letters, digits, `.`, `-` and `_` survive from the site and panel names.
pub fn export_filename(
    site: &str,
    panel: &str,
    from_ms: i64,
    to_ms: i64,
    tz: i32,
    ext: &str,
) -> String {
    let clean = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
    };
    // The end is exclusive: a range ending at midnight ends on the day before.
    let last = format_date((to_ms - 1).max(from_ms), tz);
    format!(
        "footfall-{}-{}-{}-{last}.{ext}",
        clean(site),
        clean(panel),
        format_date(from_ms, tz)
    )
}

/// Property names to offer for a breakdown: those the summary says the range has (most used
/// first), then any a filter names that it does not list (an older server lists none).
pub fn prop_names(summary: Option<&Summary>, filters: &[Filter]) -> Vec<String> {
    let mut names: Vec<String> = summary.map(|s| s.props.clone()).unwrap_or_default();
    for f in filters {
        if let Field::Prop(p) = &f.field {
            if !names.contains(p) {
                names.push(p.clone());
            }
        }
    }
    names
}

/// Failed attempts in a row after which the indicator says "offline" instead of
/// "reconnecting": about 15 s of 0.5 + 1 + 2 + 4 + 8 s (it keeps retrying either way).
pub const OFFLINE_AFTER_ATTEMPTS: u32 = 5;

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::time::{parse_rfc3339, HOUR_MS};

    #[test]
    fn counts_are_exact_when_small_and_compact_when_large() {
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1_000), "1,000");
        assert_eq!(format_count(9_999), "9,999");
        assert_eq!(format_count(10_000), "10.0k");
        assert_eq!(format_count(12_399), "12.3k");
        assert_eq!(format_count(99_999), "99.9k");
        assert_eq!(format_count(123_456), "123k");
        assert_eq!(format_count(4_560_000), "4.5M");
        assert_eq!(format_count(7_000_000_000), "7.0B");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(group_thousands(100), "100");
        assert_eq!(format_tick(2.5), "");
        assert_eq!(format_tick(10.0), "10");
        assert_eq!(format_tick(0.0), "0");
        assert_eq!(format_tick(50_000.0), "50.0k");
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(1, 0), 0.0);
        assert_eq!(percent(1, 4), 25.0);
        assert_eq!(format_percent(0.0), "0%");
        assert_eq!(format_percent(0.04), "<0.1%");
        assert_eq!(format_percent(4.26), "4.3%");
        assert_eq!(format_percent(42.6), "43%");
        assert_eq!(format_percent(100.0), "100%");
        let rows = with_shares([("/", 3u64), ("/a", 1)], None);
        assert_eq!(rows[0].percent, 75.0);
        assert_eq!(rows[1].percent, 25.0);
        // Against a real total (the top-N list is a part of it).
        let rows = with_shares([("/", 3u64)], Some(12));
        assert_eq!(rows[0].percent, 25.0);
        assert!(with_shares(std::iter::empty::<(&str, u64)>(), None).is_empty());
    }

    #[test]
    fn buckets_start_at_local_boundaries() {
        let t = parse_rfc3339("2026-11-26T10:37:12Z").expect("date");
        assert_eq!(
            bucket_start(t, Interval::Hour, 0),
            parse_rfc3339("2026-11-26T10:00:00Z").expect("date")
        );
        // UTC+1 (offset 60): the local day starts at 23:00 UTC the day before.
        assert_eq!(
            bucket_start(t, Interval::Day, 60),
            parse_rfc3339("2026-11-25T23:00:00Z").expect("date")
        );
        // India, +05:30: half-hour offsets keep hour buckets on local hours.
        assert_eq!(
            bucket_start(t, Interval::Hour, 330),
            parse_rfc3339("2026-11-26T10:30:00Z").expect("date")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(59), "59s");
        assert_eq!(format_duration(65), "1m 05s");
        assert_eq!(format_duration(3_599), "59m 59s");
        assert_eq!(format_duration(3_720), "1h 02m");
    }

    #[test]
    fn changes_and_their_colours() {
        assert_eq!(change_percent(150.0, 100.0), Some(50.0));
        assert_eq!(change_percent(50.0, 100.0), Some(-50.0));
        assert_eq!(change_percent(0.0, 0.0), Some(0.0));
        assert_eq!(change_percent(3.0, 0.0), None);
        assert_eq!(format_change(Some(50.0)), "↑ 50%");
        assert_eq!(format_change(Some(-4.26)), "↓ 4.3%");
        assert_eq!(format_change(Some(0.01)), "0%");
        assert_eq!(format_change(None), "new");
        // More visitors is good; a higher bounce rate is bad; no change is neither.
        assert_eq!(Tone::of(Some(10.0), false), Tone::Good);
        assert_eq!(Tone::of(Some(-10.0), false), Tone::Bad);
        assert_eq!(Tone::of(Some(10.0), true), Tone::Bad);
        assert_eq!(Tone::of(Some(-10.0), true), Tone::Good);
        assert_eq!(Tone::of(Some(0.0), true), Tone::Neutral);
        assert_eq!(Tone::of(None, false), Tone::Neutral);
    }

    #[test]
    fn property_names_come_from_the_summary_then_the_filters() {
        let s = Summary {
            props: vec!["plan".into(), "seats".into()],
            ..Summary::default()
        };
        let filters = [
            Filter::is(Field::Prop("seats".into()), "3"),
            Filter::is(Field::Prop("trial".into()), "true"),
            Filter::is(protocol::stats::Dimension::Page, "/"),
        ];
        assert_eq!(prop_names(Some(&s), &filters), ["plan", "seats", "trial"]);
        assert_eq!(prop_names(None, &filters), ["seats", "trial"]);
        assert!(prop_names(None, &[]).is_empty());
    }

    #[test]
    fn export_filenames() {
        let day = parse_date("2026-11-01", 0).expect("date");
        assert_eq!(
            export_filename(
                "shop.example",
                "Entry pages",
                day,
                day + 7 * DAY_MS,
                0,
                "csv"
            ),
            "footfall-shop.example-Entry_pages-2026-11-01-2026-11-07.csv"
        );
        assert_eq!(
            export_filename("../x", "p", day, day + 1, 0, "csv"),
            "footfall-.._x-p-2026-11-01-2026-11-01.csv"
        );
    }

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice_max(0), 1);
        assert_eq!(nice_max(1), 1);
        assert_eq!(nice_max(3), 5);
        assert_eq!(nice_max(7), 10);
        assert_eq!(nice_max(11), 20);
        assert_eq!(nice_max(200), 200);
        assert_eq!(nice_max(201), 500);
        assert!(nice_max(u64::MAX) >= u64::MAX / 2);
    }

    #[test]
    fn calendar_round_trips() {
        let t = parse_date("2026-11-26", 0).expect("date");
        assert_eq!(format_date(t, 0), "2026-11-26");
        // A date picked in UTC−5 (offset −300) starts at 05:00 UTC.
        let ny = parse_date("2026-11-26", -300).expect("date");
        assert_eq!(ny - t, 5 * HOUR_MS);
        assert_eq!(format_date(ny, -300), "2026-11-26");
        assert_eq!(parse_date("2026-13-01", 0), None);
        assert_eq!(parse_date("2026-02-30", 0), None);
        assert_eq!(parse_date("yesterday", 0), None);
    }

    #[test]
    fn labels() {
        let t = parse_rfc3339("2026-11-26T10:05:00Z").expect("date");
        assert_eq!(bucket_label(t, Interval::Hour, 0), "10:05");
        assert_eq!(bucket_label(t, Interval::Minute, 60), "11:05");
        assert_eq!(bucket_label(t, Interval::Day, 0), "Nov 26");
        assert_eq!(format_clock(t, -600), "00:05");
    }

    #[test]
    fn ages() {
        assert_eq!(format_age(1_000, 1_000), "just now");
        assert_eq!(format_age(2_000, 1_000), "just now");
        assert_eq!(format_age(0, 42_000), "42 s ago");
        assert_eq!(format_age(0, 300_000), "5 min ago");
        assert_eq!(format_age(0, 3 * 3_600_000), "3 h ago");
    }

    #[test]
    fn backoff_doubles_to_a_cap_with_bounded_jitter() {
        let mid: Vec<u128> = (1..=9).map(|a| backoff(a, 0.5).as_millis()).collect();
        assert_eq!(
            mid,
            [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
        );
        assert_eq!(backoff(0, 0.5).as_millis(), 500);
        assert_eq!(backoff(u32::MAX, 0.5).as_millis(), 30_000);
        assert_eq!(backoff(1, 0.0).as_millis(), 400);
        assert_eq!(backoff(1, 1.0).as_millis(), 600);
        assert_eq!(backoff(7, 1.0).as_millis(), 36_000);
        // Garbage jitter is clamped, never a zero or huge delay.
        assert_eq!(backoff(1, f64::NAN.max(-3.0)).as_millis(), 400);
        assert_eq!(backoff(1, 9.0).as_millis(), 600);
    }
}
