//! How a range `[from, to)` maps onto stored buckets: the coarsest aligned buckets that fit,
//! plus at most two sub-minute edges read from the raw events, so answers stay exact to the
//! millisecond while a query reads a handful of bucket documents whatever the range.

use super::{Res, DAY_MS, HOUR_MS, MINUTE_MS};

/// A run of consecutive buckets of one resolution: starts `from, from + res, ..` below `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Run {
    pub res: Res,
    pub from: i64,
    pub to: i64,
}

impl Run {
    /// Every bucket start of the run. Its length is the run's span, not what is stored: for
    /// tests and small runs; queries walk the stored buckets instead (`history`).
    pub fn buckets(&self) -> impl Iterator<Item = i64> {
        let (step, from, to) = (self.res.ms(), self.from, self.to);
        (0i64..)
            .map_while(move |i| i.checked_mul(step).and_then(|d| from.checked_add(d)))
            .take_while(move |t| *t < to)
    }

    /// Whether the bucket starting at `start` belongs to this run.
    pub fn contains(&self, res: Res, start: i64) -> bool {
        res == self.res && (self.from..self.to).contains(&start)
    }
}

/// How to answer a range: rollup runs plus raw-event ranges (each shorter than a minute).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cover {
    pub runs: Vec<Run>,
    pub raw: Vec<(i64, i64)>,
}

/// The largest multiple of `step` at or below `t`; `None` when it is not an `i64`.
fn floor_to(t: i64, step: i64) -> Option<i64> {
    t.div_euclid(step).checked_mul(step)
}

/// The smallest multiple of `step` at or above `t`; `None` when it is not an `i64`.
fn ceil_to(t: i64, step: i64) -> Option<i64> {
    let floor = floor_to(t, step)?;
    if floor == t {
        Some(t)
    } else {
        floor.checked_add(step)
    }
}

/// The coarsest cover of `[from, to)`: whole days in the middle, hours and minutes towards
/// the edges, raw events for the sub-minute ends. At most 2 raw ranges, 2 minute runs, 2 hour
/// runs and 1 day run, whatever the length of the range. Defined for every `i64` pair: when a
/// bucket edge would not fit an `i64` (a range at the very ends of time, which the stats API
/// refuses anyway), the whole range is read raw, which is exact too.
pub fn cover(from: i64, to: i64) -> Cover {
    if from >= to {
        return Cover::default();
    }
    aligned_cover(from, to).unwrap_or_else(|| Cover {
        runs: Vec::new(),
        raw: vec![(from, to)],
    })
}

fn aligned_cover(from: i64, to: i64) -> Option<Cover> {
    let mut c = Cover::default();
    let push_run = |c: &mut Cover, res: Res, from: i64, to: i64| {
        if from < to {
            c.runs.push(Run { res, from, to });
        }
    };
    let (m0, m1) = (ceil_to(from, MINUTE_MS)?, floor_to(to, MINUTE_MS)?);
    if m0 >= m1 {
        c.raw.push((from, to));
        return Some(c);
    }
    if from < m0 {
        c.raw.push((from, m0));
    }
    if m1 < to {
        c.raw.push((m1, to));
    }
    let (h0, h1) = (ceil_to(m0, HOUR_MS)?, floor_to(m1, HOUR_MS)?);
    if h0 >= h1 {
        push_run(&mut c, Res::Minute, m0, m1);
        return Some(c);
    }
    push_run(&mut c, Res::Minute, m0, h0);
    push_run(&mut c, Res::Minute, h1, m1);
    let (d0, d1) = (ceil_to(h0, DAY_MS)?, floor_to(h1, DAY_MS)?);
    if d0 >= d1 {
        push_run(&mut c, Res::Hour, h0, h1);
        return Some(c);
    }
    push_run(&mut c, Res::Hour, h0, d0);
    push_run(&mut c, Res::Hour, d1, h1);
    push_run(&mut c, Res::Day, d0, d1);
    Some(c)
}

/// Sorts runs and joins touching runs of the same resolution, so a store reads each stretch
/// of buckets with one range query.
pub fn merge_runs(mut runs: Vec<Run>) -> Vec<Run> {
    runs.sort();
    let mut out: Vec<Run> = Vec::with_capacity(runs.len());
    for r in runs {
        match out.last_mut() {
            Some(last) if last.res == r.res && r.from <= last.to => last.to = last.to.max(r.to),
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_is_exact_and_coarse() {
        let day = 20_000 * DAY_MS;
        // 30 days plus ragged edges: one day run, hour and minute runs, two raw edges.
        let from = day + 5 * HOUR_MS + 7 * MINUTE_MS + 123;
        let to = day + 30 * DAY_MS + 3 * HOUR_MS + 2 * MINUTE_MS + 5;
        let c = cover(from, to);
        assert_eq!(c.raw.len(), 2);
        assert!(c.runs.len() <= 5);
        // Every millisecond is covered exactly once.
        let mut pieces: Vec<(i64, i64)> = c.raw.clone();
        pieces.extend(c.runs.iter().map(|r| (r.from, r.to)));
        pieces.sort();
        let mut at = from;
        for (a, b) in pieces {
            assert_eq!(a, at);
            at = b;
        }
        assert_eq!(at, to);
        for r in &c.runs {
            assert_eq!(r.from % r.res.ms(), 0);
            assert_eq!(r.to % r.res.ms(), 0);
        }
        assert_eq!(
            c.runs.iter().filter(|r| r.res == Res::Day).count(),
            1,
            "{c:?}"
        );
        // Short ranges are raw only; empty ranges are nothing.
        assert_eq!(cover(day + 1, day + 50).raw, vec![(day + 1, day + 50)]);
        assert_eq!(cover(day, day), Cover::default());
        // Negative times (before 1970) align too.
        let c = cover(-DAY_MS - 1, 0);
        assert!(c
            .runs
            .iter()
            .any(|r| r.res == Res::Day && r.from == -DAY_MS));
    }

    #[test]
    fn cover_never_overflows() {
        // The review's ranges: both ends of i64, and a millisecond next to i64::MAX.
        for (from, to) in [
            (i64::MIN, i64::MAX),
            (i64::MAX - 1, i64::MAX),
            (i64::MIN, i64::MIN + 1),
            (-9_000_000_000_000_000_000, 9_000_000_000_000_000_000),
            (0, 86_400_000_000_000_000),
        ] {
            let c = cover(from, to);
            assert!(c.runs.len() <= 5 && c.raw.len() <= 2, "{c:?}");
            let covered: i128 = c
                .raw
                .iter()
                .map(|(a, b)| (*a, *b))
                .chain(c.runs.iter().map(|r| (r.from, r.to)))
                .map(|(a, b)| i128::from(b) - i128::from(a))
                .sum();
            assert_eq!(covered, i128::from(to) - i128::from(from));
        }
        assert_eq!(
            cover(i64::MAX - 1, i64::MAX).raw,
            vec![(i64::MAX - 1, i64::MAX)]
        );
        let end = Run {
            res: Res::Day,
            from: i64::MAX - DAY_MS,
            to: i64::MAX,
        };
        assert_eq!(end.buckets().count(), 1);
    }

    #[test]
    fn merge_runs_joins_touching_runs() {
        let m = |from, to| Run {
            res: Res::Minute,
            from,
            to,
        };
        let merged = merge_runs(vec![m(120_000, 180_000), m(0, 60_000), m(60_000, 120_000)]);
        assert_eq!(merged, vec![m(0, 180_000)]);
        assert_eq!(m(0, 180_000).buckets().count(), 3);
    }
}
