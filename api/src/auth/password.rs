//! Passwords: argon2id with the `argon2` crate's defaults (OWASP's recommendation: 19 MiB,
//! 2 iterations, 1 lane), in PHC string form. Hashing is slow on purpose, so it runs on the
//! blocking pool, and at most a few at a time (each takes 19 MiB).

use std::sync::LazyLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use tokio::sync::Semaphore;

/// Fewest and most characters a password may have.
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 1024;

/// Hashes running at once in this process; the rest wait.
static HASHING: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Semaphore::new(cores * 2)
});

/// A hash of a random password, verified against when the user does not exist (or has no
/// password), so a failed login takes as long whether or not the account exists.
static DUMMY: LazyLock<String> =
    LazyLock::new(|| hash_blocking(&crate::auth::secret::new_secret()).unwrap_or_default());

#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

/// Hashes a password (blocking: call from a blocking thread, or use [`hash`]).
pub fn hash_blocking(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the PHC string `stored` (blocking). A malformed `stored` matches
/// nothing.
pub fn verify_blocking(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Hashes a password on the blocking pool.
pub async fn hash(password: &str) -> Result<String, HashError> {
    let _permit = HASHING.acquire().await.map_err(|e| HashError(e.to_string()))?;
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await.map_err(|e| HashError(e.to_string()))?
}

/// Verifies a password against `stored`, or, with no stored hash, against a dummy hash (and
/// answers false): the same work either way.
pub async fn verify(password: &str, stored: Option<&str>) -> bool {
    let Ok(_permit) = HASHING.acquire().await else { return false };
    let password = password.to_string();
    let stored = stored.map(str::to_string);
    tokio::task::spawn_blocking(move || match stored {
        Some(s) => verify_blocking(&password, &s),
        None => {
            verify_blocking(&password, &DUMMY);
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// Computes the dummy hash now (at start-up) rather than at the first failed login.
pub fn warm_up() {
    LazyLock::force(&DUMMY);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash_blocking("correct horse").expect("hash");
        let b = hash_blocking("correct horse").expect("hash");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(verify_blocking("correct horse", &a));
        assert!(!verify_blocking("correct horse!", &a));
        assert!(!verify_blocking("correct horse", "not a hash"));
    }
}
