//! One-time WebSocket tickets. Browsers cannot put an `Authorization` header on a WebSocket
//! and tokens must never appear in URLs (they end up in logs and proxies), so a dashboard
//! trades its token for a ticket (`POST /api/ws-ticket`) and puts that in the `/ws` URL: it
//! is random, single-use and dies within seconds.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::RngCore;

pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// Outstanding tickets at most; issuing beyond this first drops expired ones, then refuses.
const MAX_OUTSTANDING: usize = 10_000;

#[derive(Default)]
pub struct TicketStore {
    tickets: Mutex<HashMap<String, Instant>>,
}

impl TicketStore {
    /// A new ticket, or `None` when too many are outstanding.
    pub fn issue(&self) -> Option<String> {
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let ticket = hex::encode(bytes);
        let mut tickets = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
        if tickets.len() >= MAX_OUTSTANDING {
            let now = Instant::now();
            tickets.retain(|_, expires| *expires > now);
            if tickets.len() >= MAX_OUTSTANDING {
                return None;
            }
        }
        tickets.insert(ticket.clone(), Instant::now() + TICKET_TTL);
        Some(ticket)
    }

    /// Consumes `ticket`: true once, if it was issued and has not expired.
    pub fn redeem(&self, ticket: &str) -> bool {
        let mut tickets = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
        tickets
            .remove(ticket)
            .is_some_and(|expires| expires > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_single_use() {
        let store = TicketStore::default();
        let t = store.issue().expect("ticket");
        assert_eq!(t.len(), 48);
        assert!(store.redeem(&t));
        assert!(!store.redeem(&t));
        assert!(!store.redeem("made-up"));
    }

    #[test]
    fn expired_tickets_fail() {
        let store = TicketStore::default();
        store
            .tickets
            .lock()
            .expect("lock")
            .insert("old".into(), Instant::now() - Duration::from_secs(1));
        assert!(!store.redeem("old"));
    }
}
