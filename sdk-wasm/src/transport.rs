//! Delivery policy: what an answer from the collector means and when to try again.
//!
//! The requests themselves are made by the JS shell (`fetch` and `sendBeacon` are
//! promise- and callback-shaped; doing them from Rust would pull `wasm-bindgen-futures`
//! into the download). This module decides; the shell only carries bytes.

/// First retry delay after a failure without `Retry-After`.
pub const BACKOFF_BASE_MS: u64 = 1_000;
/// Exponential backoff stops growing here.
pub const BACKOFF_MAX_MS: u64 = 5 * 60 * 1000;
/// A `Retry-After` longer than this is treated as this: the visitor will have left anyway,
/// and the events are in localStorage for the next page.
pub const RETRY_AFTER_MAX_MS: u64 = 60 * 60 * 1000;

/// What to do with a batch after the collector (or the network) answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the collector has the events durably.
    Delivered,
    /// 4xx other than 408/429: sending the same bytes again cannot succeed. Drop, count.
    Rejected,
    /// Network error (status 0), 408, 429 or 5xx: keep the events, try again later,
    /// no sooner than `Retry-After` seconds when the collector sent one.
    Retry { retry_after_ms: Option<u64> },
}

impl Outcome {
    /// `retry_after_s` is the parsed `Retry-After` header, 0 when absent or unparsable.
    pub fn from_status(status: u16, retry_after_s: u32) -> Self {
        match status {
            200..=299 => Outcome::Delivered,
            0 | 408 | 429 | 500..=599 => Outcome::Retry {
                retry_after_ms: (retry_after_s > 0)
                    .then(|| (u64::from(retry_after_s) * 1000).min(RETRY_AFTER_MAX_MS)),
            },
            _ => Outcome::Rejected,
        }
    }
}

/// Exponential backoff with jitter, reset by the first success.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Backoff {
    failures: u32,
    retry_at: u64,
}

impl Backoff {
    pub fn ready(&self, now: u64) -> bool {
        now >= self.retry_at
    }

    pub fn retry_at(&self) -> u64 {
        self.retry_at
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failure at `now`. `random` (any value, e.g. from the id generator) picks
    /// the jitter added on top, so many visitors cut off by the same outage do not all come
    /// back in the same second. `Retry-After` is a floor: honoured exactly, then jittered
    /// upwards.
    pub fn fail(&mut self, now: u64, retry_after_ms: Option<u64>, random: u64) {
        let exp = BACKOFF_BASE_MS
            .saturating_mul(1u64 << self.failures.min(20))
            .min(BACKOFF_MAX_MS);
        let base = retry_after_ms.unwrap_or(exp);
        // Jitter of up to half the exponential step, on top of Retry-After too.
        let jitter = random % (exp / 2 + 1);
        self.retry_at = now.saturating_add(base).saturating_add(jitter);
        self.failures = self.failures.saturating_add(1);
    }

    pub fn reset(&mut self) {
        *self = Backoff::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(Outcome::from_status(202, 0), Outcome::Delivered);
        assert_eq!(Outcome::from_status(200, 0), Outcome::Delivered);
        for s in [400, 401, 404, 413, 415, 422] {
            assert_eq!(Outcome::from_status(s, 0), Outcome::Rejected, "{s}");
        }
        for s in [0, 408, 429, 500, 502, 503] {
            assert!(
                matches!(
                    Outcome::from_status(s, 0),
                    Outcome::Retry {
                        retry_after_ms: None
                    }
                ),
                "{s}"
            );
        }
        assert_eq!(
            Outcome::from_status(503, 7),
            Outcome::Retry {
                retry_after_ms: Some(7_000)
            }
        );
        assert_eq!(
            Outcome::from_status(429, 999_999),
            Outcome::Retry {
                retry_after_ms: Some(RETRY_AFTER_MAX_MS)
            }
        );
    }

    #[test]
    fn exponential_then_capped() {
        let mut b = Backoff::default();
        assert!(b.ready(0));
        let mut delays = vec![];
        for _ in 0..12 {
            b.fail(1_000, None, 0);
            delays.push(b.retry_at() - 1_000);
        }
        assert_eq!(&delays[..5], &[1_000, 2_000, 4_000, 8_000, 16_000]);
        assert_eq!(*delays.last().unwrap(), BACKOFF_MAX_MS);
        assert!(!b.ready(1_000 + BACKOFF_MAX_MS - 1));
        assert!(b.ready(1_000 + BACKOFF_MAX_MS));
        b.reset();
        assert!(b.ready(0));
        assert_eq!(b.failures(), 0);
    }

    #[test]
    fn jitter_adds_at_most_half() {
        for r in [0, 1, 499, 500, 501, u64::MAX] {
            let mut b = Backoff::default();
            b.fail(0, None, r);
            assert!((1_000..=1_500).contains(&b.retry_at()), "{r}");
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        let mut b = Backoff::default();
        b.fail(10_000, Some(30_000), 0);
        assert_eq!(b.retry_at(), 40_000);
        let mut b = Backoff::default();
        b.fail(10_000, Some(30_000), u64::MAX);
        assert!(
            b.retry_at() >= 40_000 && b.retry_at() <= 40_500,
            "{}",
            b.retry_at()
        );
        // Retry-After shorter than the current exponential step is still honoured as given.
        for _ in 0..5 {
            b.fail(0, None, 0);
        }
        b.fail(0, Some(2_000), 0);
        assert_eq!(b.retry_at(), 2_000);
    }
}
