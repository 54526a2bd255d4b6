//! Signed, expiring download URLs for asset files, with HTTP range requests for playback.
//!
//! A `<video>` element cannot send an `Authorization` header, so members ask the API for a URL
//! (`GET /api/v1/assets/{id}/url`) that carries its own proof: `/files/{id}?exp=…&sig=…`, where
//! `sig` is HMAC-SHA256 over `"{id}:{exp}"` with a key kept in the data folder. Anyone holding
//! the URL can read that one file until `exp`; nothing else. Asset listings carry member links
//! (`u=` the member, `v=thumb` for the still) that also stop working when that member leaves.

use std::io::SeekFrom;
use std::path::Path;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::stream;
use hmac::{Hmac, Mac};
use moviola_store::{AssetId, UserId};
use serde::Deserialize;
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::AppState;
use crate::error::ApiError;

/// The signing key: 32 random bytes in `<data_dir>/url-signing.key`, created on first use.
pub fn load_or_create_key(data_dir: &Path) -> std::io::Result<Vec<u8>> {
    let path = data_dir.join("url-signing.key");
    match std::fs::read(&path) {
        Ok(key) if key.len() >= 32 => Ok(key),
        _ => {
            use rand::RngCore;
            let mut key = vec![0u8; 32];
            rand::rng().fill_bytes(&mut key);
            std::fs::write(&path, &key)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(key)
        }
    }
}

fn mac(key: &[u8], asset: AssetId, exp: i64) -> Hmac<Sha256> {
    mac_for(key, asset, None, None, exp)
}

/// The MAC binds the asset, which file of it (`None`: the asset's own; `thumb`: its still),
/// the member it was made for (then `/files` also checks that they still are one) and the
/// expiry. The fields are digits or fixed words, so no two messages collide.
fn mac_for(key: &[u8], asset: AssetId, variant: Option<&str>, user: Option<UserId>, exp: i64) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    match (variant, user) {
        (None, None) => m.update(format!("{asset}:{exp}").as_bytes()),
        (Some(v), None) => m.update(format!("{asset}:{v}:{exp}").as_bytes()),
        (v, Some(u)) => m.update(format!("{asset}:{}:u{u}:{exp}", v.unwrap_or("file")).as_bytes()),
    }
    m
}

/// A link for `<img>`/`<video>` in the studio, made for `user`: it stops working when they
/// leave the project, not only at `exp`. `thumb` asks for the still.
pub fn member_url(key: &[u8], asset: AssetId, thumb: bool, user: UserId, exp: i64) -> String {
    let variant = thumb.then_some("thumb");
    let sig = moviola_actors::jobs::supervisor::hex(&mac_for(key, asset, variant, Some(user), exp).finalize().into_bytes());
    let v = if thumb { "v=thumb&" } else { "" };
    format!("/files/{asset}?{v}u={user}&exp={exp}&sig={sig}")
}

/// `/files/{id}?exp=…&sig=…` for `asset`, valid until `exp` (ms since the epoch).
pub fn signed_url(key: &[u8], asset: AssetId, exp: i64) -> String {
    let sig = moviola_actors::jobs::supervisor::hex(&mac(key, asset, exp).finalize().into_bytes());
    format!("/files/{asset}?exp={exp}&sig={sig}")
}

/// An expiry for links handed out in listings: at least `hours` ahead, on the hour, so the
/// same link (and the browser's cached copy) is reused for an hour.
pub fn listing_expiry(now_ms: i64, hours: i64) -> i64 {
    (now_ms / 3_600_000 + hours + 1) * 3_600_000
}

#[derive(Deserialize)]
pub struct Signature {
    exp: i64,
    sig: String,
    #[serde(default)]
    v: Option<String>,
    #[serde(default)]
    u: Option<i64>,
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range within `len`; `Err` if unsatisfiable.
fn parse_range(header: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        // Several ranges: answer with the whole file (allowed by RFC 9110).
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| ())?;
            (len.saturating_sub(n), len.checked_sub(1).ok_or(())?)
        }
        (a, "") => (a.parse().map_err(|_| ())?, len.checked_sub(1).ok_or(())?),
        (a, b) => (
            a.parse().map_err(|_| ())?,
            b.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1)),
        ),
    };
    if start > end || start >= len {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// `GET /files/{id}?exp&sig`: the file, or the requested byte range of it (206).
pub async fn serve(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    q: web::Query<Signature>,
) -> Result<HttpResponse, ApiError> {
    let asset = AssetId(*path);
    let variant = q.v.as_deref();
    if variant.is_some_and(|v| v != "thumb") {
        return Err(ApiError::bad_request("unknown file variant"));
    }
    let user = q.u.map(UserId);
    let ok = unhex(&q.sig).is_some_and(|sig| mac_for(&state.url_key, asset, variant, user, q.exp).verify_slice(&sig).is_ok());
    if !ok {
        return Err(ApiError::forbidden("this link is not valid: ask the studio for a new one"));
    }
    if q.exp < moviola_actors::now_ms() {
        return Err(ApiError::forbidden("this link has expired: ask the studio for a new one"));
    }
    let asset = state
        .hub
        .store()
        .asset(asset)
        .await?
        .ok_or_else(|| ApiError::not_found("the file no longer exists"))?;
    if let Some(user) = user {
        if state.hub.store().role_of(asset.project_id, user).await?.is_none() {
            return Err(ApiError::forbidden(
                "this link was made for a member of the project who no longer is one",
            ));
        }
    }
    let (full, mime) = match (variant, asset.kind.as_str()) {
        (None, _) | (Some(_), "image") => (state.config.media_dir.join(&asset.path), asset.mime.clone()),
        (Some(_), "video") => (
            state.config.media_dir.join(&asset.path).with_extension("thumb.png"),
            "image/png".to_owned(),
        ),
        (Some(_), _) => return Err(ApiError::not_found("this asset has no picture")),
    };
    let mut file = tokio::fs::File::open(&full)
        .await
        .map_err(|e| ApiError::internal(format!("the file cannot be read: {e}")))?;
    let len = file.metadata().await.map_err(|e| ApiError::internal(e.to_string()))?.len();
    let range = match req.headers().get("range").and_then(|v| v.to_str().ok()) {
        Some(h) => match parse_range(h, len) {
            Ok(r) => r,
            Err(()) => {
                return Ok(HttpResponse::build(StatusCode::RANGE_NOT_SATISFIABLE)
                    .insert_header(("Content-Range", format!("bytes */{len}")))
                    .finish());
            }
        },
        None => None,
    };
    let (start, end) = range.unwrap_or((0, len.saturating_sub(1)));
    let count = if len == 0 { 0 } else { end - start + 1 };
    file.seek(SeekFrom::Start(start))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let body = stream::unfold((file, count), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; left.min(256 * 1024) as usize];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(web::Bytes::from(buf)), (file, left - n as u64)))
            }
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    let mut res = if range.is_some() {
        HttpResponse::PartialContent()
    } else {
        HttpResponse::Ok()
    };
    res.content_type(mime.as_str())
        .insert_header(("Accept-Ranges", "bytes"))
        .insert_header(("Cache-Control", "private, max-age=3600"))
        .no_chunking(count);
    if range.is_some() {
        res.insert_header(("Content-Range", format!("bytes {start}-{end}/{len}")));
    }
    Ok(res.streaming(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Ok(Some((0, 99))));
        assert_eq!(parse_range("bytes=900-", 1000), Ok(Some((900, 999))));
        assert_eq!(parse_range("bytes=-100", 1000), Ok(Some((900, 999))));
        assert_eq!(parse_range("bytes=990-2000", 1000), Ok(Some((990, 999))));
        assert_eq!(parse_range("bytes=0-1,5-9", 1000), Ok(None));
        assert_eq!(parse_range("bytes=1000-", 1000), Err(()));
        assert_eq!(parse_range("bytes=5-1", 1000), Err(()));
        assert_eq!(parse_range("items=0-1", 1000), Ok(None));
    }

    #[test]
    fn signatures_bind_asset_and_expiry() {
        let key = b"0123456789abcdef0123456789abcdef";
        let url = signed_url(key, AssetId(7), 1000);
        let sig = url.rsplit("sig=").next().unwrap();
        let bytes = unhex(sig).unwrap();
        assert!(mac(key, AssetId(7), 1000).verify_slice(&bytes).is_ok());
        assert!(mac(key, AssetId(8), 1000).verify_slice(&bytes).is_err());
        assert!(mac(key, AssetId(7), 1001).verify_slice(&bytes).is_err());
        // A file link does not open the still, nor the other way round.
        assert!(mac_for(key, AssetId(7), Some("thumb"), None, 1000).verify_slice(&bytes).is_err());
        let thumb = member_url(key, AssetId(7), true, UserId(3), 1000);
        let tsig = unhex(thumb.rsplit("sig=").next().unwrap()).unwrap();
        assert!(mac_for(key, AssetId(7), None, Some(UserId(3)), 1000).verify_slice(&tsig).is_err());
        assert_eq!(listing_expiry(3_600_000 * 5 + 10, 6), 3_600_000 * 12);
        // A member's link binds the member.
        let m = member_url(key, AssetId(7), false, UserId(3), 1000);
        let msig = unhex(m.rsplit("sig=").next().unwrap()).unwrap();
        assert!(mac_for(key, AssetId(7), None, Some(UserId(3)), 1000).verify_slice(&msig).is_ok());
        assert!(mac_for(key, AssetId(7), None, Some(UserId(4)), 1000).verify_slice(&msig).is_err());
        assert!(mac(key, AssetId(7), 1000).verify_slice(&msig).is_err());
    }
}
