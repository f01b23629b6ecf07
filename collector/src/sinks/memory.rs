use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use protocol::Event;

use super::{Sink, SinkError};
use crate::BoxFuture;

/// Keeps events in memory. For tests of the HTTP layer: inspect what was accepted, or make
/// it refuse (`set_available(false)`) to exercise the 503 path.
#[derive(Clone, Default)]
pub struct MemorySink {
    events: Arc<Mutex<Vec<Event>>>,
    unavailable: Arc<AtomicBool>,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything accepted so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set_available(&self, available: bool) {
        self.unavailable.store(!available, Ordering::SeqCst);
    }
}

impl Sink for MemorySink {
    fn send_batch(&self, events: Vec<Event>) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            if self.unavailable.load(Ordering::SeqCst) {
                return Err(SinkError::Unavailable("memory sink switched off".into()));
            }
            self.events
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(events);
            Ok(())
        })
    }

    fn is_ready(&self) -> bool {
        !self.unavailable.load(Ordering::SeqCst)
    }
}
