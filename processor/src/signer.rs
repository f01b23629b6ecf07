//! Signatures of short messages with a key derived from a secret and a purpose (pure; no
//! I/O). Its own module so that what signs (share links in `settings`) and what checks who
//! is asking (`auth`) both use it without depending on each other.

use subtle::ConstantTimeEq;

/// Signs and checks short messages with a key derived from the admin token (see
/// `auth::AdminToken::signer`). Signatures are 128-bit keyed BLAKE3 hashes, hex.
#[derive(Clone)]
pub struct Signer {
    key: [u8; 32],
}

impl Signer {
    /// The signer of `purpose` (a fixed, globally unique context string) keyed by `secret`:
    /// BLAKE3 `derive_key(purpose, secret)`.
    pub(crate) fn derive(purpose: &'static str, secret: &[u8]) -> Self {
        Signer {
            key: blake3::derive_key(purpose, secret),
        }
    }

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
