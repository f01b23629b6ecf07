//! One-time WebSocket tickets. Browsers cannot put an `Authorization` header on a WebSocket
//! and tokens must never appear in URLs (they end up in logs and proxies), so a dashboard
//! trades its token for a ticket (`POST /api/ws-ticket`) and puts that in the `/ws` URL: it
//! is random, single-use and dies within seconds. A ticket carries the credential that asked
//! for it, so a share link's ticket opens the live view of its own site only.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::RngCore;

use crate::auth::Credential;

pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// Outstanding tickets at most; issuing beyond this first drops expired ones, then refuses.
const MAX_OUTSTANDING: usize = 10_000;

#[derive(Default)]
pub struct TicketStore {
    /// Ticket → (expiry, who asked for it).
    tickets: Mutex<HashMap<String, (Instant, Credential)>>,
}

impl TicketStore {
    /// A new ticket for `holder`, or `None` when too many are outstanding.
    pub fn issue(&self, holder: Credential) -> Option<String> {
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let ticket = hex::encode(bytes);
        let mut tickets = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
        if tickets.len() >= MAX_OUTSTANDING {
            let now = Instant::now();
            tickets.retain(|_, (expires, _)| *expires > now);
            if tickets.len() >= MAX_OUTSTANDING {
                return None;
            }
        }
        tickets.insert(ticket.clone(), (Instant::now() + TICKET_TTL, holder));
        Some(ticket)
    }

    /// Consumes `ticket`: its holder, once, if it was issued and has not expired.
    pub fn redeem(&self, ticket: &str) -> Option<Credential> {
        let mut tickets = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
        tickets
            .remove(ticket)
            .and_then(|(expires, holder)| (expires > Instant::now()).then_some(holder))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_single_use() {
        let store = TicketStore::default();
        let t = store.issue(Credential::Admin).expect("ticket");
        assert_eq!(t.len(), 48);
        assert_eq!(store.redeem(&t), Some(Credential::Admin));
        assert_eq!(store.redeem(&t), None);
        assert_eq!(store.redeem("made-up"), None);
        let share = Credential::Share {
            site: "a.com".into(),
        };
        let t = store.issue(share.clone()).expect("ticket");
        assert_eq!(store.redeem(&t), Some(share));
    }

    #[test]
    fn expired_tickets_fail() {
        let store = TicketStore::default();
        store.tickets.lock().expect("lock").insert(
            "old".into(),
            (Instant::now() - Duration::from_secs(1), Credential::Admin),
        );
        assert_eq!(store.redeem("old"), None);
    }
}
