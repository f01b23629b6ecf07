//! Per-client-IP rate limiting with [governor](https://crates.io/crates/governor)'s keyed
//! GCRA limiter: constant memory per key and no background timers per request.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub(crate) struct IpRateLimiter {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    clock: DefaultClock,
}

impl IpRateLimiter {
    /// `per_minute == 0` disables limiting. The burst equals the per-minute quota, so a page
    /// that flushes a few beacons at once is never throttled.
    pub(crate) fn new(per_minute: u32) -> Self {
        IpRateLimiter {
            limiter: NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(wait)` when `ip` is over its quota.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets clients whose quota has fully refilled, keeping memory proportional to the
    /// clients of the last minute. Called periodically.
    pub(crate) fn purge(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_ip_independently() {
        let limiter = IpRateLimiter::new(3);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        for _ in 0..3 {
            assert!(limiter.check(a).is_ok());
        }
        let wait = limiter.check(a).expect_err("over quota");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(limiter.check(b).is_ok());
    }

    #[test]
    fn zero_disables() {
        let limiter = IpRateLimiter::new(0);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        for _ in 0..1000 {
            assert!(limiter.check(a).is_ok());
        }
    }
}
