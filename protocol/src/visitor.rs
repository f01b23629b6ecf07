//! The privacy-preserving visitor id.
//!
//! `visitor = BLAKE3-keyed(daily salt, site ‖ client IP ‖ user agent)`, truncated to 64 bits.
//! The salt is random, shared by every collector of a deployment for one UTC day, and
//! deleted after it rotates, so yesterday's ids cannot be linked to today's nor reversed to
//! an IP — even by the operator. Visitors who were identified (`identify(userId)`, opt-in)
//! get a hash of the user id instead, stable across days.

use std::io::Write as _;
use std::net::IpAddr;

/// A 256-bit daily salt. Its bytes are never logged (no `Debug` output of the key).
#[derive(Clone, PartialEq, Eq)]
pub struct Salt([u8; 32]);

impl Salt {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Salt(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Salt(..)")
    }
}

/// Days since the Unix epoch (UTC) of a millisecond timestamp: the salt's rotation period.
pub fn day_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(86_400_000)
}

/// The anonymous visitor id for one day.
pub fn visitor_id(salt: &Salt, site: &str, ip: IpAddr, user_agent: &str) -> String {
    // The address's text form (part of the hashed format), written on the stack: the longest
    // IPv6 text is 45 bytes.
    let mut text = [0u8; 64];
    let len = {
        let mut cursor = &mut text[..];
        let _ = write!(cursor, "{ip}");
        64 - cursor.len()
    };
    let mut hasher = blake3::Hasher::new_keyed(&salt.0);
    // Length-prefixing keeps ("ab","c") and ("a","bc") apart.
    for part in [site.as_bytes(), &text[..len], user_agent.as_bytes()] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hex16(hasher.finalize().as_bytes())
}

/// The visitor id of an identified user: stable, and still not the user id itself.
pub fn identified_visitor_id(site: &str, user_id: &str) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("footfall identified visitor v1");
    hasher.update(&(site.len() as u64).to_le_bytes());
    hasher.update(site.as_bytes());
    hasher.update(user_id.as_bytes());
    format!("u{}", hex16(hasher.finalize().as_bytes()))
}

/// What is stored of a `userId` unless the operator opted in to keeping user ids: a hash
/// keyed with the daily salt, so one user's events of a day share it (they can still be
/// grouped) while the id itself — often an e-mail address — is never stored, and once the
/// salt is deleted the hash can no longer be matched against a list of candidate ids.
/// `h` + 32 hex digits (128 bits: ids of many users must not collide).
pub fn user_id_hash(salt: &Salt, site: &str, user_id: &str) -> String {
    let mut hasher = blake3::Hasher::new_keyed(&salt.0);
    hasher.update(b"footfall user id v1");
    hasher.update(&(site.len() as u64).to_le_bytes());
    hasher.update(site.as_bytes());
    hasher.update(user_id.as_bytes());
    format!("h{}", hex::encode(&hasher.finalize().as_bytes()[..16]))
}

/// The first 64 bits of a hash, as 16 hex digits.
fn hex16(bytes: &[u8; 32]) -> String {
    hex::encode(&bytes[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn user_ids_are_stored_keyed() {
        let (a, b) = (Salt::from_bytes([1; 32]), Salt::from_bytes([2; 32]));
        let h = user_id_hash(&a, "example.com", "alice@example.com");
        assert_eq!(h, user_id_hash(&a, "example.com", "alice@example.com"));
        assert_eq!(h.len(), 33);
        assert!(!h.contains("alice"));
        assert_ne!(h, user_id_hash(&b, "example.com", "alice@example.com"));
        assert_ne!(h, user_id_hash(&a, "other.com", "alice@example.com"));
    }

    #[test]
    fn same_inputs_same_day_same_id() {
        let salt = Salt::from_bytes([7; 32]);
        let a = visitor_id(&salt, "example.com", ip("203.0.113.9"), "UA");
        assert_eq!(a, visitor_id(&salt, "example.com", ip("203.0.113.9"), "UA"));
        assert_eq!(a.len(), 16);
        assert!(!a.contains("203"));
    }

    #[test]
    fn any_input_changes_the_id() {
        let salt = Salt::from_bytes([7; 32]);
        let base = visitor_id(&salt, "example.com", ip("203.0.113.9"), "UA");
        assert_ne!(
            base,
            visitor_id(
                &Salt::from_bytes([8; 32]),
                "example.com",
                ip("203.0.113.9"),
                "UA"
            )
        );
        assert_ne!(
            base,
            visitor_id(&salt, "other.com", ip("203.0.113.9"), "UA")
        );
        assert_ne!(
            base,
            visitor_id(&salt, "example.com", ip("203.0.113.10"), "UA")
        );
        assert_ne!(
            base,
            visitor_id(&salt, "example.com", ip("203.0.113.9"), "UB")
        );
    }

    #[test]
    fn the_hashed_address_is_its_text_form() {
        // The stored format: changing it would split every visitor of the day in two.
        let salt = Salt::from_bytes([7; 32]);
        for addr in [
            "203.0.113.9",
            "2001:db8:85a3:0:0:8a2e:370:7334",
            "::ffff:192.0.2.1",
        ] {
            let ip = ip(addr);
            let mut hasher = blake3::Hasher::new_keyed(salt.as_bytes());
            for part in ["example.com", ip.to_string().as_str(), "UA"] {
                hasher.update(&(part.len() as u64).to_le_bytes());
                hasher.update(part.as_bytes());
            }
            assert_eq!(
                visitor_id(&salt, "example.com", ip, "UA"),
                hex16(hasher.finalize().as_bytes())
            );
        }
    }

    #[test]
    fn identified_ids_are_stable_and_opaque() {
        let a = identified_visitor_id("example.com", "alice@example.com");
        assert_eq!(a, identified_visitor_id("example.com", "alice@example.com"));
        assert!(!a.contains("alice"));
        assert_ne!(a, identified_visitor_id("other.com", "alice@example.com"));
    }

    #[test]
    fn days_rotate_at_utc_midnight() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(86_399_999), 0);
        assert_eq!(day_of(86_400_000), 1);
        assert_eq!(day_of(-1), -1);
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(format!("{:?}", Salt::from_bytes([1; 32])), "Salt(..)");
    }
}
