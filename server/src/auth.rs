//! Passwords (argon2id), bearer tokens (random, stored only as SHA-256) and the extractor that
//! turns a request's token into a user.

use actix_web::{FromRequest, HttpRequest, web};
use std::sync::Mutex;
use std::time::Duration;

use argon2::password_hash::{self, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use moviola_store::User;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// Password hashing with bounded memory and concurrency.
///
/// argon2id needs 19 MiB of working memory per hash. Allocated per call, that memory stays
/// resident in the allocator of whichever blocking thread ran it (glibc raises its mmap
/// threshold after the first large free, and every thread has its own arena), so a server grew
/// by ~19 MiB for each of its first dozens of sign-ins. Here a fixed number of working blocks
/// are allocated once and reused, and at most that many hashes run at once; a request that
/// cannot get one within `wait` is answered `503` with `Retry-After` (which also bounds a
/// login flood).
pub struct Passwords {
    permits: tokio::sync::Semaphore,
    pool: Mutex<Vec<Vec<Block>>>,
    wait: Duration,
}

impl Passwords {
    pub fn new(concurrency: usize, wait: Duration) -> Passwords {
        Passwords {
            permits: tokio::sync::Semaphore::new(concurrency.max(1)),
            pool: Mutex::new(Vec::new()),
            wait,
        }
    }

    /// Runs `f` on a blocking thread with pooled working memory.
    async fn with_memory<T: Send + 'static>(&self, f: impl FnOnce(&mut [Block]) -> T + Send + 'static) -> Result<T, ApiError> {
        let _permit = match tokio::time::timeout(self.wait, self.permits.acquire()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                return Err(ApiError::busy(
                    "the server is busy checking passwords; retry in a few seconds",
                    self.wait.as_secs().max(1),
                ));
            }
        };
        let blocks = self.pool.lock().expect("password pool").pop();
        let mut blocks = blocks.unwrap_or_else(|| vec![Block::default(); Params::DEFAULT.block_count()]);
        let (out, blocks) = web::block(move || {
            let out = f(&mut blocks);
            (out, blocks)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
        self.pool.lock().expect("password pool").push(blocks);
        Ok(out)
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) for a new password.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        self.with_memory(move |blocks| phc_hash(&password, &salt, blocks))
            .await?
            .map_err(|e| ApiError::internal(e.to_string()))
    }

    /// Whether `password` matches the stored PHC string.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, ApiError> {
        self.with_memory(move |blocks| phc_verify(&password, &phc, blocks)).await
    }
}

fn phc_hash(password: &str, salt: &[u8], blocks: &mut [Block]) -> password_hash::Result<String> {
    let params = Params::DEFAULT;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut blocks[..params.block_count()])?;
    let salt = SaltString::encode_b64(salt)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out)?),
    };
    Ok(hash.to_string())
}

fn phc_verify(password: &str, phc: &str, blocks: &mut [Block]) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let (Ok(algorithm), Ok(params), Some(expected), Some(salt)) = (
        Algorithm::try_from(hash.algorithm),
        Params::try_from(&hash),
        hash.hash,
        hash.salt,
    ) else {
        return false;
    };
    let version = hash.version.map_or(Ok(Version::default()), Version::try_from);
    let Ok(version) = version else { return false };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    let n = params.block_count();
    // Hashes made with other parameters (none today) get memory of their own.
    let mut own;
    let blocks = if n <= blocks.len() {
        &mut blocks[..n]
    } else {
        own = vec![Block::default(); n];
        &mut own[..]
    };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    if argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks).is_err() {
        return false;
    }
    Output::new(&out).is_ok_and(|o| o == expected)
}

/// A new random token (what the client keeps) and its hash (what the store keeps).
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hash = hash_token(&token);
    (token, hash)
}

pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The token of a request: `Authorization: Bearer …`, else the `token` query parameter (what a
/// browser WebSocket, which cannot set headers, uses).
pub fn request_token(req: &HttpRequest) -> Option<String> {
    if let Some(value) = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(token) = value.strip_prefix("Bearer ") {
            return Some(token.trim().to_owned());
        }
    }
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.get("token").cloned())
}

/// The signed-in user of a request, with the hash of the token used.
pub struct Authed {
    pub user: User,
    pub token_hash: String,
}

pub async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Authed, ApiError> {
    let token = request_token(req)
        .ok_or_else(|| ApiError::unauthorized("sign in first: send Authorization: Bearer <token> (or ?token=<token>)"))?;
    let token_hash = hash_token(&token);
    let user = state
        .hub
        .store()
        .user_by_token_hash(&token_hash, moviola_actors::now_ms())
        .await?
        .ok_or_else(|| ApiError::unauthorized("the token is invalid or expired: sign in again"))?;
    Ok(Authed { user, token_hash })
}

impl FromRequest for Authed {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal("app state missing"))?
                .clone();
            authenticate(&req, &state).await
        })
    }
}

#[cfg(test)]
mod tests {
    use argon2::PasswordVerifier;

    use super::*;

    #[actix_web::test]
    async fn pooled_hashes_are_standard_phc_strings() {
        let passwords = Passwords::new(1, Duration::from_secs(5));
        let phc = passwords.hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        // The argon2 crate's own verifier agrees, and so does ours, reusing the same memory.
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert!(passwords.verify("correct horse".into(), phc.clone()).await.unwrap());
        assert!(!passwords.verify("wrong horse".into(), phc.clone()).await.unwrap());
        assert!(!passwords.verify("x".into(), "not a hash".into()).await.unwrap());
        // A hash made elsewhere with other parameters still verifies.
        let other = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(32 * 1024, 1, 1, None).unwrap());
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let phc = argon2::PasswordHasher::hash_password(&other, b"pw", &salt).unwrap().to_string();
        assert!(passwords.verify("pw".into(), phc).await.unwrap());
    }

    #[actix_web::test]
    async fn hashing_past_the_limit_is_refused_as_busy() {
        let passwords = std::sync::Arc::new(Passwords::new(1, Duration::from_millis(1)));
        let (a, b) = (passwords.clone(), passwords.clone());
        let (r1, r2) = futures_util::join!(a.hash("one password".into()), b.hash("two password".into()));
        let busy: Vec<_> = [r1, r2].into_iter().filter_map(Result::err).collect();
        assert_eq!(busy.len(), 1, "one of two concurrent hashes waits past 1 ms");
        assert_eq!(busy[0].status, actix_web::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy[0].retry_after, Some(1));
    }
}
