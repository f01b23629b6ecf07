//! The admin token that guards the stats API, the WebSocket gateway and the dashboard.

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
    fn generated_tokens_differ_and_hide_in_debug() {
        let (a, b) = (AdminToken::generate(), AdminToken::generate());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 64);
        assert_eq!(format!("{a:?}"), "AdminToken(..)");
    }
}
