//! Access tokens (HS256 JWT with the algorithm pinned and `exp`, `iss`, `aud`, `sub`
//! required) and opaque refresh tokens stored only as SHA-256 digests.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use quicktok_core::{ErrorCode, Id};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AuthConfig;
use crate::error::ApiError;

/// Minimum HMAC key length: the hash output size, as RFC 7518 section 3.2 requires.
const MIN_SECRET_BYTES: usize = 32;
/// Clock skew tolerated between API nodes when checking `exp`.
const LEEWAY_SECS: u64 = 5;

/// The claims inside an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// What a verified access token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: Id,
    pub expires_at: i64,
}

/// Signing and verification keys plus the validation rules.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

impl TokenKeys {
    pub fn from_secret(cfg: &AuthConfig, secret: &[u8]) -> Result<Self, ApiError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ApiError::internal(format!(
                "auth.jwt_secret must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        // Pinned to HS256: tokens naming any other algorithm (including "none") are refused
        // before their signature is looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&cfg.issuer]);
        validation.set_audience(&[&cfg.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        Ok(TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
        })
    }

    /// Signs an access token for `user_id` valid from `now_secs` for `ttl_secs`.
    pub fn issue(&self, user_id: Id, now_secs: i64, ttl_secs: u64) -> Result<String, ApiError> {
        let claims = Claims {
            sub: user_id.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now_secs,
            exp: now_secs.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX)),
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// Verifies signature, algorithm, `exp`, `iss`, `aud` and `sub`.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized(ErrorCode::TokenExpired, "access token has expired")
                }
                _ => ApiError::unauthorized(ErrorCode::InvalidToken, "invalid access token"),
            })?;
        let user_id =
            data.claims.sub.parse::<Id>().map_err(|_| {
                ApiError::unauthorized(ErrorCode::InvalidToken, "invalid access token")
            })?;
        Ok(AccessClaims { user_id, expires_at: data.claims.exp })
    }
}

/// A new opaque refresh token (256 random bits) and the digest that is stored.
pub fn new_refresh_token() -> (String, Vec<u8>) {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = URL_SAFE_NO_PAD.encode(raw);
    let digest = refresh_token_digest(&token);
    (token, digest)
}

/// The stored form of a refresh token: its SHA-256, so a leaked table grants nothing.
pub fn refresh_token_digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The server secret: the configured one, or `<data_dir>/jwt-secret` (created with a random
/// secret, mode 0600, on first start). Keys for tokens and media URLs are derived from it.
pub fn load_secret(cfg: &AuthConfig, data_dir: &Path) -> Result<Vec<u8>, ApiError> {
    if cfg.jwt_secret.is_empty() {
        load_or_create_secret(&data_dir.join("jwt-secret"))
    } else {
        Ok(cfg.jwt_secret.as_bytes().to_vec())
    }
}

fn load_or_create_secret(path: &Path) -> Result<Vec<u8>, ApiError> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() >= MIN_SECRET_BYTES => return Ok(bytes),
        Ok(_) => {
            return Err(ApiError::internal(format!(
                "{} is shorter than {MIN_SECRET_BYTES} bytes",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ApiError::internal(format!("{}: {e}", path.display()))),
    }
    let mut secret = vec![0u8; 64];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    file.write_all(&secret)
        .and_then(|()| file.sync_all())
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
    Ok(secret)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::from_secret(&AuthConfig::default(), &[7u8; 32]).unwrap()
    }

    fn now() -> i64 {
        jsonwebtoken::get_current_timestamp() as i64
    }

    fn forge(header: &str, claims: &serde_json::Value, secret: &[u8], alg: Algorithm) -> String {
        let h = URL_SAFE_NO_PAD.encode(header);
        let c = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{h}.{c}");
        let sig = if secret.is_empty() {
            String::new()
        } else {
            jsonwebtoken::crypto::sign(
                signing_input.as_bytes(),
                &EncodingKey::from_secret(secret),
                alg,
            )
            .unwrap()
        };
        format!("{signing_input}.{sig}")
    }

    fn claims(exp: i64, aud: &str, iss: &str) -> serde_json::Value {
        serde_json::json!({"sub": "42", "iss": iss, "aud": aud, "iat": now(), "exp": exp, "jti": "x"})
    }

    #[test]
    fn round_trip() {
        let k = keys();
        let t = k.issue(Id(42), now(), 60).unwrap();
        assert_eq!(k.verify(&t).unwrap().user_id, Id(42));
    }

    #[test]
    fn alg_none_is_refused() {
        let t = forge(
            r#"{"alg":"none","typ":"JWT"}"#,
            &claims(now() + 60, "quicktok-api", "quicktok"),
            b"",
            Algorithm::HS256,
        );
        assert_eq!(keys().verify(&t).unwrap_err().code, ErrorCode::InvalidToken);
    }

    #[test]
    fn other_algorithm_with_same_secret_is_refused() {
        let t = forge(
            r#"{"alg":"HS512","typ":"JWT"}"#,
            &claims(now() + 60, "quicktok-api", "quicktok"),
            &[7u8; 32],
            Algorithm::HS512,
        );
        assert_eq!(keys().verify(&t).unwrap_err().code, ErrorCode::InvalidToken);
    }

    #[test]
    fn wrong_secret_is_refused() {
        let t = forge(
            r#"{"alg":"HS256","typ":"JWT"}"#,
            &claims(now() + 60, "quicktok-api", "quicktok"),
            &[8u8; 32],
            Algorithm::HS256,
        );
        assert_eq!(keys().verify(&t).unwrap_err().code, ErrorCode::InvalidToken);
    }

    #[test]
    fn expired_is_refused() {
        let k = keys();
        let t = k.issue(Id(42), now() - 3600, 60).unwrap();
        assert_eq!(k.verify(&t).unwrap_err().code, ErrorCode::TokenExpired);
    }

    #[test]
    fn wrong_audience_or_issuer_is_refused() {
        for c in [
            claims(now() + 60, "someone-else", "quicktok"),
            claims(now() + 60, "quicktok-api", "evil"),
        ] {
            let t = forge(r#"{"alg":"HS256","typ":"JWT"}"#, &c, &[7u8; 32], Algorithm::HS256);
            assert_eq!(keys().verify(&t).unwrap_err().code, ErrorCode::InvalidToken);
        }
    }

    #[test]
    fn missing_claims_are_refused() {
        let c = serde_json::json!({"sub": "42", "iss": "quicktok", "aud": "quicktok-api"});
        let t = forge(r#"{"alg":"HS256","typ":"JWT"}"#, &c, &[7u8; 32], Algorithm::HS256);
        assert_eq!(keys().verify(&t).unwrap_err().code, ErrorCode::InvalidToken);
    }

    #[test]
    fn short_secret_is_refused() {
        assert!(TokenKeys::from_secret(&AuthConfig::default(), b"short").is_err());
    }

    #[test]
    fn secret_file_is_created_once() {
        let dir = std::env::temp_dir().join(format!("qt-secret-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = load_or_create_secret(&dir.join("jwt-secret")).unwrap();
        let b = load_or_create_secret(&dir.join("jwt-secret")).unwrap();
        assert_eq!(a, b);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
