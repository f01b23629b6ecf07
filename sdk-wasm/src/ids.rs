//! Event and session ids.
//!
//! An id is the creation time (7 base64url characters of milliseconds) followed by 16
//! random ones (96 bits). The time prefix means two visitors whose generators happened to be
//! seeded alike still collide only within the same millisecond; the collector's unique index
//! on `eventId` turns every retry of the same event into a no-op.

use alloc::string::String;

use crate::json::push_ascii;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Characters in an id: well inside the collector's `[A-Za-z0-9_-]{8,64}`.
pub const ID_LEN: usize = 23;

/// xorshift64*: tiny, and statistically good enough for ids. Not cryptographic, and it
/// need not be: ids only have to be unique, never unguessable. (No 128-bit multiply, which
/// would pull a helper routine into the wasm.)
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Any seed but 0, which xorshift would never leave.
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A fresh id for something created at `now_ms`.
    pub fn id(&mut self, now_ms: u64) -> String {
        let mut id = String::with_capacity(ID_LEN);
        for shift in (0..7).rev() {
            push_ascii(&mut id, ALPHABET[((now_ms >> (shift * 6)) & 63) as usize]);
        }
        for _ in 0..2 {
            let mut r = self.next_u64();
            for _ in 0..8 {
                push_ascii(&mut id, ALPHABET[(r & 63) as usize]);
                r >>= 6;
            }
        }
        id
    }
}

/// What the collector accepts as an id: 8–64 of `[A-Za-z0-9_-]`.
pub fn is_valid(id: &str) -> bool {
    (8..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_match_the_wire_rule() {
        let mut rng = Rng::new(1);
        let id = rng.id(1_701_234_567_890);
        assert_eq!(id.len(), ID_LEN);
        assert!(is_valid(&id));
        assert!(!is_valid("short") && !is_valid("has space ok"));
    }

    #[test]
    fn ids_are_unique() {
        let mut rng = Rng::new(42);
        let ids: HashSet<String> = (0..10_000).map(|_| rng.id(1_000)).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn same_seed_different_millisecond_differs() {
        assert_ne!(Rng::new(7).id(1_000), Rng::new(7).id(1_001));
    }
}
