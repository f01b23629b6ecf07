//! The admin token that guards the stats API, the WebSocket gateway and the dashboard, and
//! the one signing primitive derived from it ([`Signer`]): a key per purpose (WebSocket
//! tickets that any processor accepts, share links), so every processor with the same token
//! checks every other's signatures, and rotating the token voids them all.
//!
//! [`Credentials`] tells who an `Authorization` header is — the admin, a share link of one
//! site, or nobody — for every endpoint that takes either (stats API, live-view tickets).

use std::sync::Arc;

use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::settings;
use crate::store::{Store, StoreError};

/// A bearer token. Never printed by `Debug`.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    pub fn new(token: impl Into<String>) -> Self {
        AdminToken(token.into())
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
        Signer {
            key: blake3::derive_key(purpose, self.0.as_bytes()),
        }
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

/// Signs and checks short messages with a key derived from the admin token (see
/// [`AdminToken::signer`]). Signatures are 128-bit keyed BLAKE3 hashes, hex.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl Signer {
    pub fn sign(&self, message: &[u8]) -> String {
        let hash = blake3::keyed_hash(&self.key, message);
        hex::encode(&hash.as_bytes()[..16])
    }

    /// Whether `signature` is [`sign`](Self::sign)`(message)`, in constant time.
    pub fn verify(&self, message: &[u8], signature: &str) -> bool {
        bool::from(self.sign(message).as_bytes().ct_eq(signature.as_bytes()))
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
