//! One-time WebSocket tickets that every processor accepts. Browsers cannot put an
//! `Authorization` header on a WebSocket and tokens must never appear in URLs (they end up in
//! logs and proxies), so a dashboard trades its token for a ticket (`POST /api/ws-ticket`)
//! and puts that in the `/ws` URL.
//!
//! Behind a load balancer the ticket request and the upgrade reach different processors, so a
//! ticket cannot live in the memory of the one that issued it. Instead:
//!
//! - **Any processor can check it.** A ticket is `v1~<expiry ms>~<nonce>~<scope>~<signature>`,
//!   signed with a key derived from the admin token ([`AdminToken::signer`] with
//!   [`WS_TICKET_PURPOSE`]), which every processor of a deployment shares. It expires
//!   [`TICKET_TTL`] after issue; changing the token voids every ticket. `scope` is the
//!   credential that asked for it: `*` for the admin (every site), else the one site of a
//!   share link, whose ticket opens the live view of that site only.
//! - **It opens one socket, deployment-wide.** Redeeming records the nonce as spent in
//!   [`SpentTickets`] until the ticket expires, and only the first record wins. With MongoDB
//!   that is an insert into a collection every processor shares, with a unique `_id` and a TTL
//!   index (`MongoStore`); for one process (standalone, a processor on its embedded store) a
//!   set in memory ([`LocalSpentTickets`]) is the same thing. A signature alone could not
//!   stop a replay at a second processor within the 30 seconds; shared state can, and one
//!   insert per live connection is cheap. When the record cannot be written the upgrade is
//!   refused (503, the dashboard retries): fail closed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngCore;

use crate::auth::{AdminToken, Credential, Signer, WS_TICKET_PURPOSE};
pub use crate::store::SpentTickets;
use crate::BoxFuture;

pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// The scope of an admin's ticket: every site (never a valid site name).
const ANY_SITE: &str = "*";
const VERSION: &str = "v1";
const SEP: char = '~';

/// Spent tickets of one process, forgotten once expired.
#[derive(Default)]
pub struct LocalSpentTickets {
    spent: Mutex<HashMap<String, i64>>,
}

/// Spent tickets remembered at once by one process at most: every one is a connection opened
/// with the admin token in the last 30 seconds.
const MAX_SPENT: usize = 100_000;

impl SpentTickets for LocalSpentTickets {
    fn spend<'a>(&'a self, nonce: &'a str, expires_ms: i64) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            let mut spent = self.spent.lock().unwrap_or_else(PoisonError::into_inner);
            if spent.len() >= MAX_SPENT {
                let now = now_ms();
                spent.retain(|_, expires| *expires > now);
                if spent.len() >= MAX_SPENT {
                    return Err("too many live connections opened at once".into());
                }
            }
            Ok(spent.insert(nonce.to_string(), expires_ms).is_none())
        })
    }
}

/// Why a ticket does not open a socket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Malformed, forged, expired or already used: the client needs a new one (401).
    #[error("invalid, expired or used ticket")]
    Invalid,
    /// Whether it was used cannot be checked now (503; try again).
    #[error("cannot check the ticket now: {0}")]
    Unavailable(String),
}

/// Issues and redeems tickets (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct TicketStore {
    signer: Signer,
    spent: Arc<dyn SpentTickets>,
}

impl TicketStore {
    pub fn new(token: &AdminToken, spent: Arc<dyn SpentTickets>) -> Self {
        TicketStore {
            signer: token.signer(WS_TICKET_PURPOSE),
            spent,
        }
    }

    /// A new ticket for `holder`.
    pub fn issue(&self, holder: &Credential) -> String {
        self.issue_at(holder, now_ms())
    }

    fn issue_at(&self, holder: &Credential, now: i64) -> String {
        let scope = match holder {
            Credential::Admin => ANY_SITE,
            Credential::Share { site } => site.as_str(),
        };
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        let expires = now.saturating_add(TICKET_TTL.as_millis() as i64);
        let body = format!(
            "{VERSION}{SEP}{expires}{SEP}{}{SEP}{scope}",
            hex::encode(nonce)
        );
        let signature = self.signer.sign(body.as_bytes());
        format!("{body}{SEP}{signature}")
    }

    /// Who asked for `ticket`, if it is genuine, unexpired and unused — and from now on,
    /// used.
    pub async fn redeem(&self, ticket: &str) -> Result<Credential, TicketError> {
        self.redeem_at(ticket, now_ms()).await
    }

    async fn redeem_at(&self, ticket: &str, now: i64) -> Result<Credential, TicketError> {
        let (body, signature) = ticket.rsplit_once(SEP).ok_or(TicketError::Invalid)?;
        if !self.signer.verify(body.as_bytes(), signature) {
            return Err(TicketError::Invalid);
        }
        let mut parts = body.split(SEP);
        let (Some(VERSION), Some(expires), Some(nonce), Some(scope), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TicketError::Invalid);
        };
        let expires: i64 = expires.parse().map_err(|_| TicketError::Invalid)?;
        // Expired, or issued by a clock far ahead of this one: never trusted.
        let ttl = TICKET_TTL.as_millis() as i64;
        if expires <= now || expires > now.saturating_add(ttl + 5_000) {
            return Err(TicketError::Invalid);
        }
        match self.spent.spend(nonce, expires).await {
            Ok(true) if scope == ANY_SITE => Ok(Credential::Admin),
            Ok(true) => Ok(Credential::Share {
                site: scope.to_string(),
            }),
            Ok(false) => Err(TicketError::Invalid),
            Err(e) => Err(TicketError::Unavailable(e)),
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(token: &str, spent: &Arc<LocalSpentTickets>) -> TicketStore {
        let spent: Arc<dyn SpentTickets> = spent.clone();
        TicketStore::new(&AdminToken::new(token), spent)
    }

    #[tokio::test]
    async fn a_ticket_from_one_processor_opens_one_socket_at_another() {
        let spent = Arc::new(LocalSpentTickets::default());
        let (a, b) = (store("shared", &spent), store("shared", &spent));
        let t = a.issue(&Credential::Admin);
        assert_eq!(b.redeem(&t).await, Ok(Credential::Admin));
        assert_eq!(a.redeem(&t).await, Err(TicketError::Invalid));
        assert_eq!(b.redeem(&t).await, Err(TicketError::Invalid));
        let share = Credential::Share {
            site: "a.example".into(),
        };
        let t = a.issue(&share);
        assert_eq!(b.redeem(&t).await, Ok(share));
    }

    #[tokio::test]
    async fn forged_tampered_foreign_and_expired_tickets_fail() {
        let spent = Arc::new(LocalSpentTickets::default());
        let s = store("shared", &spent);
        let other = store("another token", &spent);
        assert_eq!(s.redeem("made-up").await, Err(TicketError::Invalid));
        assert_eq!(s.redeem("").await, Err(TicketError::Invalid));
        assert_eq!(
            s.redeem(&other.issue(&Credential::Admin)).await,
            Err(TicketError::Invalid)
        );
        let t = s.issue(&Credential::Share {
            site: "a.example".into(),
        });
        let widened = t.replace("~a.example~", "~*~");
        assert_eq!(s.redeem(&widened).await, Err(TicketError::Invalid));
        let now = now_ms();
        let old = s.issue_at(&Credential::Admin, now - 31_000);
        assert_eq!(s.redeem_at(&old, now).await, Err(TicketError::Invalid));
        let young = s.issue_at(&Credential::Admin, now - 29_000);
        assert!(s.redeem_at(&young, now).await.is_ok());
        let future = s.issue_at(&Credential::Admin, now + 60_000);
        assert_eq!(s.redeem_at(&future, now).await, Err(TicketError::Invalid));
    }
}
