//! Argon2id password hashing on the blocking pool, bounded in concurrency, with one code path
//! for known and unknown users so response time does not reveal which usernames exist.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use super::AuthConfig;
use crate::error::ApiError;

/// Hashes and verifies passwords with argon2id.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the user does not exist.
    dummy_hash: Arc<str>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("params", &self.params).finish()
    }
}

impl PasswordHasher {
    pub fn new(cfg: &AuthConfig) -> Result<Self, ApiError> {
        let params =
            Params::new(cfg.argon2_memory_kib, cfg.argon2_iterations, cfg.argon2_parallelism, None)
                .map_err(|e| ApiError::internal(format!("argon2 parameters: {e}")))?;
        let dummy_password = uuid::Uuid::new_v4().to_string();
        let dummy_hash = hash_with(&params, &dummy_password)?;
        Ok(PasswordHasher {
            params,
            permits: Arc::new(Semaphore::new(cfg.max_concurrent_hashes.max(1) as usize)),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// Hashes a new password (PHC string with salt and parameters).
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || hash_with(&params, &password))
            .await
            .map_err(ApiError::internal)?
    }

    /// Verifies `password` against `stored`, or against the dummy hash when `stored` is
    /// `None` (unknown user), so both cases cost one argon2 evaluation.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let _permit = self.permits.acquire().await.map_err(ApiError::internal)?;
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let ok = tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash).map_err(|e| format!("stored hash: {e}"))?;
            // The parameters come from the PHC string, so old hashes stay verifiable after
            // a cost change.
            Ok::<bool, String>(
                Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
            )
        })
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
        Ok(known && ok)
    }
}

fn hash_with(params: &Params, password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(format!("argon2: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn owasp_parameters_and_round_trip() {
        let hasher = PasswordHasher::new(&AuthConfig::default()).unwrap();
        let hash = hasher.hash("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify("correct horse battery".into(), Some(hash.clone())).await.unwrap());
        assert!(!hasher.verify("wrong".into(), Some(hash)).await.unwrap());
        // Unknown user: never true, even with the right guess for the dummy.
        assert!(!hasher.verify("anything".into(), None).await.unwrap());
    }
}
