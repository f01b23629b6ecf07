//! Rate-limited log lines. A warning that a client can trigger at will (an odd gzip body, a
//! wrong token, a connection over its cap) would otherwise let that client write the log:
//! fill the disk, bury the lines that matter, cost an operator money per line. Each such
//! warning gets a [`LogLimit`]: at most one line per interval, saying how many were left out.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// At most one line per `every`; usable as a `static`.
pub struct LogLimit {
    every: Duration,
    state: Mutex<State>,
}

struct State {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimit {
    pub const fn new(every: Duration) -> Self {
        LogLimit {
            every,
            state: Mutex::new(State {
                last: None,
                suppressed: 0,
            }),
        }
    }

    /// `Some(n)` when a line may be written now, `n` being how many were left out since the
    /// last one (put it in the line); `None` when this one is to be left out.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                state.suppressed += 1;
                None
            }
            _ => {
                state.last = Some(now);
                Some(std::mem::take(&mut state.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_counting_the_rest() {
        let limit = LogLimit::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(limit.allow_at(t0), Some(0));
        for s in 1..60 {
            assert_eq!(limit.allow_at(t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(limit.allow_at(t0 + Duration::from_secs(60)), Some(59));
        assert_eq!(limit.allow_at(t0 + Duration::from_secs(61)), None);
        assert_eq!(limit.allow_at(t0 + Duration::from_secs(121)), Some(1));
    }
}
