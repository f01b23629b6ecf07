//! The admin token that guards the stats API, the WebSocket gateway and the dashboard, and
//! the one signing primitive derived from it ([`Signer`]): a key per purpose (WebSocket
//! tickets that any processor accepts, share links), so every processor with the same token
//! checks every other's signatures, and rotating the token voids them all.
//!
//! [`Credentials`] tells who an `Authorization` header is — the admin, a share link of one
//! site, or nobody — for every endpoint that takes either (stats API, live-view tickets).
//!
//! [`AuthThrottle`] makes guessing either slow: a client address whose attempts keep failing
//! is refused (429) for a while, counted in a metric, and reported in a rate-limited log line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use footfall_http::log_limit::LogLimit;
use footfall_http::MetricsRegistry;
use prometheus::IntCounter;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::settings;
pub use crate::signer::Signer;
use crate::store::{Store, StoreError};

/// The shortest admin token accepted at start-up: shorter ones can be guessed.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Why a configured token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error(
        "the admin token is {0} characters long; it must have at least {MIN_TOKEN_CHARS} \
         (e.g. `openssl rand -hex 32`)"
    )]
    TooShort(usize),
}

/// A bearer token. Never printed by `Debug`.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    pub fn new(token: impl Into<String>) -> Self {
        AdminToken(token.into())
    }

    /// A token an operator configured: at least [`MIN_TOKEN_CHARS`] characters (surrounding
    /// white space, which a copy and paste adds, does not count and is dropped).
    ///
    /// # Errors
    /// [`TokenError::TooShort`] for a shorter one.
    pub fn configured(token: &str) -> Result<Self, TokenError> {
        let token = token.trim();
        match token.chars().count() {
            n if n < MIN_TOKEN_CHARS => Err(TokenError::TooShort(n)),
            _ => Ok(AdminToken(token.to_owned())),
        }
    }

    /// 32 random bytes, URL-safe hex: for standalone mode when none is configured.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        AdminToken(hex::encode(bytes))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Checks an `Authorization` header value (`Bearer <token>`) in constant time with
    /// respect to the token's contents.
    pub fn verify_header(&self, header: Option<&str>) -> bool {
        header.and_then(bearer).is_some_and(|t| self.verify(t))
    }

    pub fn verify(&self, presented: &str) -> bool {
        !self.0.is_empty() && bool::from(self.0.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// The signer of one purpose (a fixed, globally unique context string such as
    /// [`SHARE_LINK_PURPOSE`]): BLAKE3 `derive_key(purpose, token)`, so keys of different
    /// purposes are unrelated and none reveals the token.
    pub fn signer(&self, purpose: &'static str) -> Signer {
        Signer::derive(purpose, self.0.as_bytes())
    }
}

/// Who sent a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The admin token: everything.
    Admin,
    /// A share link: read-only stats and the live view of one site.
    Share { site: String },
}

impl Credential {
    /// Whether this credential may read `site`.
    pub fn reads(&self, site: &str) -> bool {
        match self {
            Credential::Admin => true,
            Credential::Share { site: own } => own == site,
        }
    }
}

/// The admin token and the share links (signed with a key derived from it, revocable
/// because each must still be stored). Cheap to clone.
#[derive(Clone)]
pub struct Credentials {
    token: AdminToken,
    shares: Signer,
    store: Arc<dyn Store>,
}

impl Credentials {
    pub fn new(token: AdminToken, store: Arc<dyn Store>) -> Self {
        let shares = token.signer(SHARE_LINK_PURPOSE);
        Credentials {
            token,
            shares,
            store,
        }
    }

    /// The signer of share links.
    pub fn share_signer(&self) -> &Signer {
        &self.shares
    }

    /// Who the `Authorization` header (`Bearer <token>`) is: the admin token, a live share
    /// link, or nobody.
    ///
    /// # Errors
    /// When the store cannot tell whether a share link exists.
    pub async fn resolve(&self, header: Option<&str>) -> Result<Option<Credential>, StoreError> {
        if self.token.verify_header(header) {
            return Ok(Some(Credential::Admin));
        }
        let Some(presented) = header.and_then(bearer) else {
            return Ok(None);
        };
        Ok(settings::share_site(&*self.store, &self.shares, presented)
            .await?
            .map(|site| Credential::Share { site }))
    }
}

/// The token of a `Bearer <token>` header value.
fn bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The context of share-link signatures.
pub const SHARE_LINK_PURPOSE: &str = "footfall 2026-11 share link v1";

/// The context of WebSocket ticket signatures (`live::tickets`).
pub const WS_TICKET_PURPOSE: &str = "footfall 2026-11 websocket ticket v1";

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

/// Failed attempts one client may make in a burst before it is refused.
const FAILURE_BURST: f64 = 20.0;
/// Failed attempts per second a client is allowed over time (10 a minute): a person who
/// mistypes never notices, a guesser gets 14,400 tries a day instead of millions.
const FAILURES_PER_SEC: f64 = 10.0 / 60.0;
/// Clients remembered before the forgiven ones are dropped (bounds the map under a flood
/// from many addresses).
const MAX_TRACKED: usize = 65_536;

/// Prometheus names of the throttle's metrics.
pub const AUTH_FAILURES: &str = "footfall_auth_failures_total";
pub const AUTH_THROTTLED: &str = "footfall_auth_throttled_total";

/// Failed authentication per client address: a leaky bucket of failures. Each 401 adds one,
/// the bucket drains at [`FAILURES_PER_SEC`], and a client whose bucket is full gets 429 for
/// every attempt — right or wrong, without the token being compared — until it drained
/// enough. Cheap to clone; every clone shares the counts.
#[derive(Clone)]
pub struct AuthThrottle {
    clients: Arc<Mutex<HashMap<IpAddr, Debt>>>,
    failures: IntCounter,
    throttled: IntCounter,
}

#[derive(Clone, Copy)]
struct Debt {
    failures: f64,
    at: Instant,
}

impl Debt {
    fn now(self, now: Instant) -> f64 {
        let drained = now.saturating_duration_since(self.at).as_secs_f64() * FAILURES_PER_SEC;
        (self.failures - drained).max(0.0)
    }
}

impl Default for AuthThrottle {
    fn default() -> Self {
        AuthThrottle {
            clients: Arc::default(),
            failures: counter(
                AUTH_FAILURES,
                "Requests refused for a wrong or missing credential",
            ),
            throttled: counter(
                AUTH_THROTTLED,
                "Requests refused unchecked because their client failed too often",
            ),
        }
    }
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("a constant, valid metric name")
}

impl AuthThrottle {
    /// Adds the throttle's counters to a registry (the one `/metrics` renders).
    pub fn register_metrics(&self, registry: &MetricsRegistry) {
        registry.register(self.failures.clone());
        registry.register(self.throttled.clone());
    }

    /// `Some(wait)` when `client` (a [`footfall_http::client_ip::limit_key`]) is refused now.
    pub fn retry_after(&self, client: IpAddr) -> Option<Duration> {
        self.retry_after_at(client, Instant::now())
    }

    /// Records one failed attempt of `client`.
    pub fn failed(&self, client: IpAddr) {
        self.failed_at(client, Instant::now());
    }

    fn retry_after_at(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let debt = clients.get(&client)?.now(now);
        if debt + 1.0 <= FAILURE_BURST {
            return None;
        }
        drop(clients);
        self.throttled.inc();
        Some(Duration::from_secs_f64(
            (debt + 1.0 - FAILURE_BURST) / FAILURES_PER_SEC,
        ))
    }

    fn failed_at(&self, client: IpAddr, now: Instant) {
        static THROTTLING: LogLimit = LogLimit::new(Duration::from_secs(60));
        self.failures.inc();
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if clients.len() >= MAX_TRACKED && !clients.contains_key(&client) {
            clients.retain(|_, debt| debt.now(now) > 0.0);
        }
        let debt = clients.entry(client).or_insert(Debt {
            failures: 0.0,
            at: now,
        });
        let failures = debt.now(now) + 1.0;
        *debt = Debt { failures, at: now };
        drop(clients);
        if failures + 1.0 > FAILURE_BURST {
            // No address in the line: logs hold no personal data (and the metric counts).
            if let Some(suppressed) = THROTTLING.allow() {
                tracing::warn!(
                    suppressed,
                    "a client keeps presenting wrong credentials; its attempts are refused \
                     for a while ({AUTH_THROTTLED})"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_tokens_have_16_characters_at_least() {
        assert_eq!(
            AdminToken::configured("a").err(),
            Some(TokenError::TooShort(1))
        );
        assert_eq!(
            AdminToken::configured("  fifteen-chars-x  ").err(),
            Some(TokenError::TooShort(15))
        );
        let ok = AdminToken::configured(" sixteen-chars-ok\n").expect("16 characters");
        assert_eq!(ok.expose(), "sixteen-chars-ok");
        assert!(TokenError::TooShort(1).to_string().contains("at least 16"));
    }

    #[test]
    fn a_guesser_is_throttled_and_forgiven_in_time() {
        let throttle = AuthThrottle::default();
        let (guesser, other) = (
            "192.0.2.1".parse().expect("ip"),
            "192.0.2.2".parse().expect("ip"),
        );
        let t0 = Instant::now();
        for _ in 0..20 {
            assert_eq!(throttle.retry_after_at(guesser, t0), None);
            throttle.failed_at(guesser, t0);
        }
        let wait = throttle
            .retry_after_at(guesser, t0)
            .expect("throttled after 20 failures");
        assert!(
            wait > Duration::from_secs(5) && wait <= Duration::from_secs(7),
            "{wait:?}"
        );
        // Others are not affected.
        assert_eq!(throttle.retry_after_at(other, t0), None);
        // One more attempt is allowed once a failure drained (6 s), not before.
        assert!(throttle
            .retry_after_at(guesser, t0 + Duration::from_secs(5))
            .is_some());
        assert_eq!(
            throttle.retry_after_at(guesser, t0 + Duration::from_secs(7)),
            None
        );
        assert_eq!(throttle.failures.get(), 20);
        assert_eq!(throttle.throttled.get(), 2);
    }

    #[test]
    fn bearer_header() {
        let t = AdminToken::new("s3cret");
        assert!(t.verify_header(Some("Bearer s3cret")));
        assert!(t.verify_header(Some("bearer  s3cret ")));
        assert!(!t.verify_header(Some("Bearer s3cre")));
        assert!(!t.verify_header(Some("Basic s3cret")));
        assert!(!t.verify_header(Some("s3cret")));
        assert!(!t.verify_header(None));
        assert!(!AdminToken::new("").verify(""));
    }

    #[test]
    fn signatures_depend_on_token_purpose_and_message() {
        let a = AdminToken::new("one").signer(SHARE_LINK_PURPOSE);
        let sig = a.sign(b"id\nsite");
        assert_eq!(sig.len(), 32);
        assert!(a.verify(b"id\nsite", &sig));
        assert!(!a.verify(b"id\nother", &sig));
        assert!(!AdminToken::new("two")
            .signer(SHARE_LINK_PURPOSE)
            .verify(b"id\nsite", &sig));
        assert!(!AdminToken::new("one")
            .signer("footfall test other purpose")
            .verify(b"id\nsite", &sig));
    }

    #[test]
    fn generated_tokens_differ_and_hide_in_debug() {
        let (a, b) = (AdminToken::generate(), AdminToken::generate());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 64);
        assert_eq!(format!("{a:?}"), "AdminToken(..)");
    }
}
