//! The admin token that guards the stats API, the WebSocket gateway and the dashboard, and
//! the one signing primitive derived from it ([`Signer`]): a key per purpose (WebSocket
//! tickets that any processor accepts, share links), so every processor with the same token
//! checks every other's signatures, and rotating the token voids them all.

use rand::RngCore;
use subtle::ConstantTimeEq;

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
        let Some(presented) = header.and_then(|h| {
            let (scheme, rest) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        }) else {
            return false;
        };
        self.verify(presented)
    }

    pub fn verify(&self, presented: &str) -> bool {
        !self.0.is_empty() && bool::from(self.0.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// The signer of one purpose (a fixed, globally unique context string such as
    /// [`WS_TICKET_PURPOSE`]): BLAKE3 `derive_key(purpose, token)`, so keys of different
    /// purposes are unrelated and none reveals the token.
    pub fn signer(&self, purpose: &'static str) -> Signer {
        Signer {
            key: blake3::derive_key(purpose, self.0.as_bytes()),
        }
    }
}

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
        let a = AdminToken::new("one").signer(WS_TICKET_PURPOSE);
        let sig = a.sign(b"id\nsite");
        assert_eq!(sig.len(), 32);
        assert!(a.verify(b"id\nsite", &sig));
        assert!(!a.verify(b"id\nother", &sig));
        assert!(!AdminToken::new("two")
            .signer(WS_TICKET_PURPOSE)
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
