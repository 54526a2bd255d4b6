//! Passwords (argon2id), bearer tokens (random, stored only as SHA-256) and the extractor that
//! turns a request's token into a user.

use actix_web::{FromRequest, HttpRequest, web};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use moviola_store::User;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| ApiError::internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(e.to_string()))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
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
