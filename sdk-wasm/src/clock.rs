//! Time, injected: the core never reads a clock itself, so batching, session expiry and
//! backoff are tested by moving a [`ManualClock`] instead of sleeping.

/// Milliseconds since the Unix epoch, like `Date.now()`.
pub trait Clock {
    fn now_ms(&self) -> u64;
}

/// A clock that only moves when told to. Used by the unit tests, and handy for anyone
/// embedding the core elsewhere.
#[derive(Debug, Default)]
pub struct ManualClock(core::cell::Cell<u64>);

impl ManualClock {
    pub fn new(start_ms: u64) -> Self {
        ManualClock(core::cell::Cell::new(start_ms))
    }

    pub fn set(&self, ms: u64) {
        self.0.set(ms);
    }

    pub fn advance(&self, ms: u64) {
        self.0.set(self.0.get() + ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
}
