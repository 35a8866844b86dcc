//! Share secrets: 256 random bits from the OS, stored only as their SHA-256, compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh secret, handed out once, in the create answer: its 256 bits as 43 characters of
/// URL-safe base64 (a v1 client sends it with every sync: hex would be 21 bytes longer).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps: the SHA-256 of the secret (a random secret needs no slow hash).
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Whether `secret` hashes to `stored`, in time independent of where they differ.
pub fn matches(secret: &str, stored: &[u8]) -> bool {
    hash(secret).ct_eq(stored).into()
}

/// A token compared in constant time (for `--create-token`).
pub fn token_matches(given: &str, expected: &str) -> bool {
    hash(given).ct_eq(&hash(expected)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_verify_only_themselves() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(a, b);
        assert!(matches(&a, &hash(&a)));
        assert!(!matches(&b, &hash(&a)));
        assert!(!matches("", &hash(&a)));
        assert!(token_matches("t0k", "t0k") && !token_matches("t0k", "t0K"));
    }
}
