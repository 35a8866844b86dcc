//! Share secrets: 256 random bits from the OS, stored only as their SHA-256, compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh secret, 64 hex characters; handed out once, in the create answer.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    hex(&bytes)
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_verify_only_themselves() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(matches(&a, &hash(&a)));
        assert!(!matches(&b, &hash(&a)));
        assert!(!matches("", &hash(&a)));
        assert!(token_matches("t0k", "t0k") && !token_matches("t0k", "t0K"));
    }
}
