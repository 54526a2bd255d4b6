//! HTTP for assets, jobs, the queue and credits, and the `/events` WebSocket.
//!
//! Preflight, in this order, before anything is queued or reserved: authentication (the
//! `Authed` extractor), the caller's role in the project (editor or owner), the input asset
//! (exists, belongs to the project, is an image), the parameters against the kind's schema,
//! the capability guard (maximum output per tier) and the device memory budget, the per-user
//! quota of live jobs, the credit and ETA estimate, and a confirmation when the estimate is
//! above the user's threshold. Only then does the store reserve credits and queue the job.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use moviola_actors::jobs::kinds::{self, Estimate, JobKind};
use moviola_actors::jobs::supervisor::{Cancel, CancelResult, Enqueue, Outlook, Reprioritized, SetPaused, Snapshot, hex};
use moviola_actors::jobs::{events, job_view};
use moviola_actors::now_ms;
use moviola_actors::project::{ReadTimeline, ServerEdit};
use moviola_store::{Asset, AssetId, JobId, JobState, NewAsset, NewJob, ProjectId, Role, StoreError, User};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::api::project_for;
use crate::auth::{self, Authed};
use crate::error::ApiError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/projects/{id}/assets", web::post().to(upload_asset))
        .route("/projects/{id}/assets", web::get().to(list_assets))
        .route("/assets/{id}", web::get().to(get_asset))
        .route("/assets/{id}/content", web::get().to(asset_content))
        .route("/assets/{id}/thumbnail", web::get().to(asset_thumbnail))
        .route("/assets/{id}/url", web::get().to(asset_url))
        .route("/job-kinds", web::get().to(job_kinds))
        .route("/projects/{id}/jobs/estimate", web::post().to(estimate_job))
        .route("/projects/{id}/jobs", web::post().to(submit_job))
        .route("/projects/{id}/jobs", web::get().to(list_jobs))
        .route("/jobs/{id}", web::get().to(get_job))
        .route("/jobs/{id}/cancel", web::post().to(cancel_job))
        .route("/jobs/{id}/priority", web::put().to(set_priority))
        .route("/queue", web::get().to(queue))
        .route("/queue/pause", web::post().to(pause_queue))
        .route("/queue/resume", web::post().to(resume_queue))
        .route("/credits", web::get().to(credits))
        .route("/admin/credits", web::post().to(grant_credits))
        .route("/me/settings", web::put().to(update_settings));
}

fn require_editor(role: Role) -> Result<(), ApiError> {
    if role.can_edit() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "your role in this project is {}: only editors and owners can do this",
            role.as_str()
        )))
    }
}

fn require_admin(user: &User) -> Result<(), ApiError> {
    if user.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden("only an administrator can do this (see `moviola admin`)"))
    }
}

fn asset_json(asset: &Asset) -> Value {
    let mut v = serde_json::to_value(asset).unwrap_or(Value::Null);
    v["content_url"] = json!(format!("/api/v1/assets/{}/content", asset.id));
    if asset.kind != "audio" {
        v["thumbnail_url"] = json!(format!("/api/v1/assets/{}/thumbnail", asset.id));
    }
    v
}

/// An asset's view with links for `<img>`/`<video>` (no session token in any URL): `links.file`
/// and, for pictures, `links.thumbnail`, made for `user` (they stop working if the user leaves
/// the project), valid at least 6 hours and stable within the hour.
fn asset_view(state: &AppState, asset: &Asset, user: moviola_store::UserId) -> Value {
    let mut v = asset_json(asset);
    let exp = crate::files::listing_expiry(now_ms(), 6);
    v["links"] = json!({ "file": crate::files::member_url(&state.url_key, asset.id, false, user, exp), "expires_at": exp });
    if matches!(asset.kind.as_str(), "image" | "video") {
        v["links"]["thumbnail"] = json!(crate::files::member_url(&state.url_key, asset.id, true, user, exp));
    }
    v
}

#[derive(Deserialize)]
struct UploadQuery {
    #[serde(default)]
    name: Option<String>,
}

/// A file name safe to show and store: the last path component, printable, at most 200 chars.
fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() { "upload".into() } else { cleaned }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the upload exceeds the limit of {limit} bytes"),
    )
}

/// The body length a request declares (`Content-Length`), if it declares one.
fn req_content_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// `POST /projects/{id}/assets?name=…` with the file as the body. The type is decided by the
/// content (PNG or JPEG), never by the name; nothing is stored unless it decodes.
async fn upload_asset(
    req: HttpRequest,
    state: web::Data<AppState>,
    authed: Authed,
    path: web::Path<i64>,
    query: web::Query<UploadQuery>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    use futures_util::StreamExt;
    let limit = state.config.max_upload_bytes;
    // Refused from its header, before anything is read or looked up.
    let declared = req_content_length(&req);
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    let project = ProjectId(*path);
    let (_, role) = project_for(&state, authed.user.id, project).await?;
    require_editor(role)?;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    if body.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_media",
            "the upload is empty",
        ));
    }
    let (body, probe) = web::block(move || {
        let probe = kinds::decode_image(&body).map(|f| (f.width, f.height));
        (body, probe)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let (width, height) = match probe {
        Ok(size) => size,
        // Not an image: video or audio, probed by the media worker.
        Err(_) => return ingest_media(&state, &authed, project, body, query.name.as_deref()).await,
    };
    let (mime, ext) = if body.starts_with(&[0x89, b'P', b'N', b'G']) {
        ("image/png", "png")
    } else {
        ("image/jpeg", "jpg")
    };
    let sha = hex(&Sha256::digest(&body));
    let rel = format!("projects/{project}/{sha}.{ext}");
    let full = state.config.media_dir.join(&rel);
    if !full.exists() {
        let dir = full.parent().expect("has a parent").to_owned();
        let tmp = full.with_extension(format!("{ext}.part-{}", uuid::Uuid::new_v4().simple()));
        let bytes = body.clone();
        let (tmp2, full2) = (tmp.clone(), full.clone());
        web::block(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&tmp2, &bytes)?;
            std::fs::rename(&tmp2, &full2)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            ApiError::internal(format!("could not store the file: {e}"))
        })?;
    }
    let name = clean_name(query.name.as_deref().unwrap_or("upload"));
    let (asset, created) = state
        .hub
        .store()
        .insert_asset(
            NewAsset {
                project,
                kind: "image".into(),
                mime: mime.into(),
                name,
                width: width as i32,
                height: height as i32,
                bytes: body.len() as i64,
                sha256: sha,
                path: rel,
                created_by: authed.user.id,
                source_job: None,
                duration_ms: None,
                info: None,
            },
            now_ms(),
        )
        .await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(HttpResponse::build(status).json(json!({ "asset": asset_json(&asset), "deduplicated": !created })))
}

/// File extension and MIME type for a probed container.
fn container_type(container: &str, has_video: bool) -> (&'static str, &'static str) {
    match (container, has_video) {
        (c, true) if c.contains("mp4") || c.contains("mov") => ("mp4", "video/mp4"),
        (c, false) if c.contains("mp4") || c.contains("mov") => ("m4a", "audio/mp4"),
        (c, true) if c.contains("webm") || c.contains("matroska") => ("webm", "video/webm"),
        (c, false) if c.contains("webm") || c.contains("matroska") => ("webm", "audio/webm"),
        ("wav", _) => ("wav", "audio/wav"),
        ("mp3", _) => ("mp3", "audio/mpeg"),
        ("ogg", _) => ("ogg", "audio/ogg"),
        ("flac", _) => ("flac", "audio/flac"),
        ("avi", _) => ("avi", "video/x-msvideo"),
        _ => ("bin", "application/octet-stream"),
    }
}

/// A video or audio upload: written to a temporary file, probed by the media worker (never in
/// this process), a thumbnail decoded for video, then moved into place and recorded. Anything
/// the worker refuses or dies on is removed and answered with a clear error.
async fn ingest_media(
    state: &AppState,
    authed: &Authed,
    project: ProjectId,
    body: Vec<u8>,
    name: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let media = &state.config.media_dir;
    let tmp_dir = media.join("tmp");
    let tmp = tmp_dir.join(format!("{}.upload", uuid::Uuid::new_v4().simple()));
    let sha = hex(&Sha256::digest(&body));
    let bytes = body.len() as i64;
    let tmp2 = tmp.clone();
    web::block(move || std::fs::create_dir_all(&tmp_dir).and_then(|_| std::fs::write(&tmp2, &body)))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("could not store the upload: {e}")))?;
    let cleanup = |paths: &[&std::path::Path]| {
        for p in paths {
            let _ = std::fs::remove_file(p);
        }
    };
    let refused = |e: crate::worker::WorkerError| match e {
        crate::worker::WorkerError::Refused(m) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_media",
            format!("not an image, video or audio file that can be read: {m}"),
        ),
        crate::worker::WorkerError::Crashed(m) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "media_worker_failed",
            format!("the file could not be examined ({m}); it may be corrupt or too demanding"),
        ),
    };
    let info = match crate::worker::run(&["probe".into(), tmp.clone().into()], &state.config.worker).await {
        Ok(info) => info,
        Err(e) => {
            cleanup(&[&tmp]);
            return Err(refused(e));
        }
    };
    let container = info["container"].as_str().unwrap_or("");
    if container.contains("pipe") || container == "image2" {
        // FFmpeg reads single images as one-frame video; one that `image` could not decode is
        // damaged or of a kind the studio does not take.
        cleanup(&[&tmp]);
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_media",
            format!("a damaged or unsupported image ({container}); upload PNG or JPEG, video or audio"),
        ));
    }
    let streams = info["streams"].as_array().cloned().unwrap_or_default();
    let video = streams.iter().find(|s| s["kind"] == "video");
    let (ext, mime) = container_type(info["container"].as_str().unwrap_or(""), video.is_some());
    let (width, height) = video
        .map(|v| {
            let (w, h) = (v["width"].as_i64().unwrap_or(0) as i32, v["height"].as_i64().unwrap_or(0) as i32);
            if v["rotation"].as_i64().unwrap_or(0).rem_euclid(180) == 90 {
                (h, w)
            } else {
                (w, h)
            }
        })
        .unwrap_or((0, 0));
    let duration_ms = info["duration_ms"].as_i64();
    let rel = format!("projects/{project}/{sha}.{ext}");
    let full = media.join(&rel);
    let thumb = full.with_extension("thumb.png");
    // Content-addressed: the same file may already be an asset here; never delete that one.
    let existed = full.exists();
    if let Err(e) = std::fs::create_dir_all(full.parent().expect("has a parent")).and_then(|_| std::fs::rename(&tmp, &full)) {
        cleanup(&[&tmp]);
        return Err(ApiError::internal(format!("could not store the upload: {e}")));
    }
    if video.is_some() {
        let at = duration_ms.map(|d| (d / 10).min(1000)).unwrap_or(0);
        let args: Vec<std::ffi::OsString> = vec![
            "thumbnail".into(),
            full.clone().into(),
            thumb.clone().into(),
            at.to_string().into(),
            "320".into(),
        ];
        if let Err(e) = crate::worker::run(&args, &state.config.worker).await {
            // Readable headers but no decodable frame: a corrupt file; keep nothing new.
            if !existed {
                cleanup(&[&full, &thumb]);
            }
            return Err(refused(e));
        }
    }
    let kind = if video.is_some() { "video" } else { "audio" };
    let (asset, created) = state
        .hub
        .store()
        .insert_asset(
            NewAsset {
                project,
                kind: kind.into(),
                mime: mime.into(),
                name: clean_name(name.unwrap_or("upload")),
                width,
                height,
                bytes,
                sha256: sha,
                path: rel,
                created_by: authed.user.id,
                source_job: None,
                duration_ms,
                info: Some(info.to_string()),
            },
            now_ms(),
        )
        .await?;
    let derived = if created {
        derive_media(state, authed, &asset, &info).await?
    } else {
        Vec::new()
    };
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let mut view = asset_json(&asset);
    view["media"] = info;
    Ok(HttpResponse::build(status).json(json!({ "asset": view, "deduplicated": !created, "derived_jobs": derived })))
}

/// Queues the derived media of a new video or audio asset — a filmstrip and a preview proxy
/// for video, a waveform when there is sound — as background jobs (priority −10) that cost nothing: they
/// are the studio's own work, not the user's request. Their progress shows on `/events`.
async fn derive_media(state: &AppState, authed: &Authed, asset: &Asset, info: &Value) -> Result<Vec<Value>, ApiError> {
    let streams = info["streams"].as_array().cloned().unwrap_or_default();
    let mut kinds = Vec::new();
    if streams.iter().any(|s| s["kind"] == "video") {
        kinds.push(JobKind::MediaFilmstrip);
        kinds.push(JobKind::MediaProxy);
    }
    if streams.iter().any(|s| s["kind"] == "audio") {
        kinds.push(JobKind::MediaWaveform);
    }
    let mut jobs = Vec::new();
    for kind in kinds {
        let params = kind.validate(&Value::Null).map_err(ApiError::internal)?;
        let estimate = kind
            .estimate(
                &params,
                asset.width as u32,
                asset.height as u32,
                asset.duration_ms,
                kind.default_ms_per_megapixel(),
            )
            .map_err(ApiError::internal)?;
        let new = NewJob {
            project: asset.project_id,
            user: authed.user.id,
            kind: kind.name().into(),
            params: "{}".into(),
            input_asset: Some(asset.id),
            priority: -10,
            idempotency_key: Some(format!("derive:{}:{}", asset.id, kind.name())),
            estimate_credits: 0,
            estimate_ms: estimate.eta_ms,
            timeline_clip: None,
        };
        let (job, created) = state.hub.store().submit_job(new, now_ms()).await?;
        if created {
            state.jobs.do_send(Enqueue(job.clone()));
        }
        jobs.push(json!({ "kind": kind.name(), "job": job.id }));
    }
    Ok(jobs)
}

#[derive(Deserialize)]
struct UrlQuery {
    /// Lifetime of the link in seconds (1..=86400, default 3600).
    #[serde(default)]
    ttl: Option<i64>,
}

/// A signed link to the asset's file that needs no token (for `<video src>`), with ranges.
async fn asset_url(
    state: web::Data<AppState>,
    authed: Authed,
    path: web::Path<i64>,
    q: web::Query<UrlQuery>,
) -> Result<HttpResponse, ApiError> {
    let (asset, _) = asset_for(&state, &authed, AssetId(*path)).await?;
    let ttl = q.ttl.unwrap_or(3600);
    if !(1..=86_400).contains(&ttl) {
        return Err(ApiError::bad_request("ttl must be between 1 and 86400 seconds"));
    }
    let exp = now_ms() + ttl * 1000;
    Ok(HttpResponse::Ok().json(json!({ "url": crate::files::signed_url(&state.url_key, asset.id, exp), "expires_at": exp })))
}

/// A still for any visual asset: the image itself, or the frame decoded at ingest for video.
async fn asset_thumbnail(state: web::Data<AppState>, authed: Authed, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (asset, _) = asset_for(&state, &authed, AssetId(*path)).await?;
    let (file, mime) = match asset.kind.as_str() {
        "image" => (state.config.media_dir.join(&asset.path), asset.mime.clone()),
        "video" => (
            state.config.media_dir.join(&asset.path).with_extension("thumb.png"),
            "image/png".to_owned(),
        ),
        _ => {
            return Err(ApiError::not_found(format!(
                "asset {} is {}: it has no picture",
                asset.id, asset.kind
            )));
        }
    };
    let bytes = tokio::fs::read(&file)
        .await
        .map_err(|e| ApiError::internal(format!("the thumbnail cannot be read: {e}")))?;
    Ok(HttpResponse::Ok().content_type(mime).body(bytes))
}

async fn list_assets(state: web::Data<AppState>, authed: Authed, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let project = ProjectId(*path);
    project_for(&state, authed.user.id, project).await?;
    let assets = state.hub.store().assets_of(project).await?;
    let derived = derived_media(&state, project).await?;
    let views: Vec<Value> = assets
        .iter()
        .map(|a| with_derived(asset_view(&state, a, authed.user.id), derived.get(&a.id)))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "assets": views })))
}

/// Finished derived media per source asset: `{filmstrip, waveform, proxy}` → result asset id.
async fn derived_media(state: &AppState, project: ProjectId) -> Result<std::collections::HashMap<AssetId, Value>, ApiError> {
    let mut out: std::collections::HashMap<AssetId, Value> = std::collections::HashMap::new();
    for job in state.hub.store().jobs_of(project, Some(JobState::Succeeded)).await? {
        let (Some(input), Some(result)) = (job.input_asset, job.result_asset) else {
            continue;
        };
        let Some(kind) = job.kind.strip_prefix("media.") else { continue };
        out.entry(input).or_insert_with(|| json!({}))[kind] = json!(result);
    }
    Ok(out)
}

fn with_derived(mut view: Value, derived: Option<&Value>) -> Value {
    view["derived"] = derived.cloned().unwrap_or_else(|| json!({}));
    view
}

/// The asset, if the caller is a member of its project (404 otherwise, like projects).
async fn asset_for(state: &AppState, authed: &Authed, id: AssetId) -> Result<(Asset, Role), ApiError> {
    let not_found = || ApiError::not_found(format!("asset {id} not found, or you are not a member of its project"));
    let asset = state.hub.store().asset(id).await?.ok_or_else(not_found)?;
    let role = state
        .hub
        .store()
        .role_of(asset.project_id, authed.user.id)
        .await?
        .ok_or_else(not_found)?;
    Ok((asset, role))
}

async fn get_asset(state: web::Data<AppState>, authed: Authed, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (asset, _) = asset_for(&state, &authed, AssetId(*path)).await?;
    let derived = derived_media(&state, asset.project_id).await?;
    Ok(HttpResponse::Ok().json(with_derived(asset_view(&state, &asset, authed.user.id), derived.get(&asset.id))))
}

async fn asset_content(state: web::Data<AppState>, authed: Authed, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (asset, _) = asset_for(&state, &authed, AssetId(*path)).await?;
    let bytes = tokio::fs::read(state.config.media_dir.join(&asset.path))
        .await
        .map_err(|e| ApiError::internal(format!("the asset's file cannot be read: {e}")))?;
    Ok(HttpResponse::Ok().content_type(asset.mime.as_str()).body(bytes))
}

async fn job_kinds() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "kinds": JobKind::ALL.iter().map(|k| k.describe()).collect::<Vec<_>>() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobRequest {
    kind: String,
    /// The input asset; absent for `export.render`, which renders the project's timeline.
    #[serde(default)]
    input: Option<i64>,
    #[serde(default)]
    params: Value,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    idempotency_key: Option<String>,
    /// Required when the estimate is above the user's confirmation threshold.
    #[serde(default)]
    confirm: bool,
    /// Show the job on the timeline: a placeholder clip that becomes the result.
    #[serde(default)]
    placeholder: Option<PlaceholderRequest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceholderRequest {
    track: String,
    /// Timeline position and length in flicks (705,600,000 per second).
    start: i64,
    duration: i64,
}

struct Preflight {
    project: moviola_store::Project,
    kind: JobKind,
    params: Value,
    input: Option<Asset>,
    estimate: Estimate,
    queue_wait_ms: i64,
    needs_confirmation: bool,
}

async fn preflight(state: &AppState, authed: &Authed, project: ProjectId, req: &JobRequest) -> Result<Preflight, ApiError> {
    let (project_row, role) = project_for(state, authed.user.id, project).await?;
    require_editor(role)?;
    let kind = JobKind::parse(&req.kind).ok_or_else(|| {
        let known: Vec<&str> = JobKind::ALL.iter().map(|k| k.name()).collect();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_kind",
            format!("unknown job kind {:?}; this server runs {}", req.kind, known.join(", ")),
        )
    })?;
    if !(-100..=100).contains(&req.priority) {
        return Err(ApiError::bad_request("priority must be between -100 and 100"));
    }
    if kind == JobKind::ExportRender {
        return preflight_export(state, authed, project_row, req).await;
    }
    let input_id = req.input.ok_or_else(|| {
        ApiError::bad_request(format!(
            "{} needs an input: the id of a {} asset of this project",
            kind.name(),
            kind.input_kinds().join(" or ")
        ))
    })?;
    let input = state
        .hub
        .store()
        .asset(AssetId(input_id))
        .await?
        .filter(|a| a.project_id == project)
        .ok_or_else(|| ApiError::not_found(format!("asset {input_id} is not an asset of project {project}")))?;
    if !kind.input_kinds().contains(&input.kind.as_str()) {
        return Err(ApiError::bad_request(format!(
            "{} needs a {} input; asset {} is {}",
            kind.name(),
            kind.input_kinds().join(" or "),
            input.id,
            input.kind
        )));
    }
    if matches!(kind, JobKind::MediaWaveform | JobKind::AudioCleanup)
        && !input.info.as_deref().is_some_and(|i| i.contains("\"kind\":\"audio\""))
    {
        return Err(ApiError::bad_request(format!("asset {} has no sound", input.id)));
    }
    let mut params = kind
        .validate(&req.params)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "invalid_params", m))?;
    let mut stored_params = if req.params.is_null() { json!({}) } else { req.params.clone() };
    if let kinds::Params::Upscale(u) = &mut params {
        // The learned model where it is installed and the scale allows; else the classical
        // filter. The choice is stored with the job, so a retry runs the same thing.
        // Checksumming the weights is file I/O: off the async threads.
        let name = u.model.and_then(kinds::UpscaleModel::catalog_name).unwrap_or("realesrgan");
        let dir = state.config.models_dir.clone();
        let installed = web::block(move || crate::models_cli::installed(&dir, crate::models_cli::spec(name)))
            .await
            .unwrap_or(false);
        let model = match u.model {
            Some(m) if m.is_learned() && !installed => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "model_not_installed",
                    format!("the {name} model is not installed on this server: an administrator runs `moviola models fetch {name}`"),
                ));
            }
            Some(m) => m,
            // A target height can always use the model (its factor is chosen for it).
            None if installed && (u.height.is_some() || [2.0, 3.0, 4.0].contains(&u.scale)) => kinds::UpscaleModel::Realesrgan,
            None => kinds::UpscaleModel::Classical,
        };
        u.model = Some(model);
        stored_params["model"] = serde_json::to_value(model).unwrap_or(Value::Null);
        if u.height.is_some() {
            u.resolve_target(input.height as u32)
                .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "invalid_params", m))?;
            stored_params["scale"] = json!(u.scale);
        }
    }
    if let kinds::Params::Scenes(p) = &mut params {
        // TransNetV2 where it is installed (or asked for), else scdet; stored with the job.
        let dir = state.config.models_dir.clone();
        let installed = web::block(move || crate::models_cli::installed(&dir, crate::models_cli::spec("transnetv2")))
            .await
            .unwrap_or(false);
        if p.model == Some(kinds::SceneModel::Transnetv2) && !installed {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "model_not_installed",
                "the transnetv2 model is not installed on this server: an administrator runs `moviola models fetch transnetv2`",
            ));
        }
        let model = p
            .resolve(installed)
            .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "invalid_params", m))?;
        stored_params["model"] = json!(model.name());
        stored_params["threshold"] = json!(p.threshold);
    }
    if let kinds::Params::Interpolate(p) = &mut params
        && let Some(fps) = p.fps
    {
        // A target rate: the least factor that reaches it, from the footage's own rate.
        let source = input
            .info
            .as_deref()
            .and_then(|i| serde_json::from_str::<Value>(i).ok())
            .and_then(|i| {
                i["streams"].as_array()?.iter().find(|s| s["kind"] == "video").and_then(|s| {
                    let (n, d) = (s["frame_rate"][0].as_f64()?, s["frame_rate"][1].as_f64()?);
                    (n > 0.0 && d > 0.0).then(|| n / d)
                })
            })
            .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "invalid_params", "the footage has no frame rate to raise"))?;
        p.factor = if fps <= source + 0.01 {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_params",
                format!("fps {fps} is not above the footage's {source:.3} frames a second"),
            ));
        } else if fps <= 2.0 * source + 0.01 {
            2
        } else if fps <= 4.0 * source + 0.01 {
            4
        } else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_params",
                format!("fps {fps} is more than 4× the footage's {source:.3} frames a second"),
            ));
        };
        stored_params["factor"] = json!(p.factor);
    }
    if kind == JobKind::EnhanceInterpolate {
        let dir = state.config.models_dir.clone();
        let installed = web::block(move || crate::models_cli::installed(&dir, crate::models_cli::spec("rife")))
            .await
            .unwrap_or(false);
        if !installed {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "model_not_installed",
                "the rife model is not installed on this server: an administrator runs `moviola models fetch rife`",
            ));
        }
    }
    let outlook = state
        .jobs
        .send(Outlook(kind))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let estimate = kind
        .estimate(
            &params,
            input.width as u32,
            input.height as u32,
            input.duration_ms,
            outlook.ms_per_megapixel,
        )
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "beyond_capability", m))?;
    if estimate.memory_bytes > outlook.max_device_memory {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "beyond_capability",
            format!(
                "this job needs about {} MiB, more than any device here may use ({} MiB)",
                estimate.memory_bytes >> 20,
                outlook.max_device_memory >> 20
            ),
        ));
    }
    let needs_confirmation = authed.user.confirm_above_credits.is_some_and(|t| estimate.credits > t);
    let params = stored_params;
    Ok(Preflight {
        project: project_row,
        kind,
        params,
        input: Some(input),
        estimate,
        queue_wait_ms: outlook.wait_ms,
        needs_confirmation,
    })
}

/// An export's preflight: the timeline as it is now becomes the job's plan. Every clip must
/// have its media (no job still filling a placeholder) and every asset must be this project's.
async fn preflight_export(
    state: &AppState,
    authed: &Authed,
    project: moviola_store::Project,
    req: &JobRequest,
) -> Result<Preflight, ApiError> {
    let kind = JobKind::ExportRender;
    if req.input.is_some() {
        return Err(ApiError::bad_request(
            "export.render takes no input: it renders the project's timeline",
        ));
    }
    if req.placeholder.is_some() {
        return Err(ApiError::bad_request("an export is not placed on the timeline"));
    }
    let spec = match kind.validate(&req.params) {
        Ok(kinds::Params::ExportRequest(spec)) => spec,
        Ok(_) => return Err(ApiError::internal("export parameters parsed as another kind")),
        Err(m) => return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_params", m)),
    };
    let doc = moviola_crdt::wire::DocumentId::parse(&project.doc_id).map_err(|e| ApiError::internal(e.to_string()))?;
    let timeline = state
        .hub
        .project(project.id, doc)
        .send(ReadTimeline)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|m| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m))?;
    if let Some(c) = timeline.placeholders().first() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "timeline_not_ready",
            format!(
                "clip {} is still waiting for job {}; export when it has its result, or remove it",
                c.id,
                c.job.as_ref().map_or(0, |j| j.id)
            ),
        ));
    }
    let plan = timeline.export_plan();
    if plan.duration <= 0 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "empty_timeline",
            "the timeline is empty: put clips on it before exporting",
        ));
    }
    let minutes = plan.duration as f64 / moviola_crdt::time::TICKS_PER_SECOND as f64 / 60.0;
    if minutes > state.config.max_export_minutes as f64 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "too_long",
            format!(
                "the timeline is {minutes:.1} minutes long; this server exports at most {} ([media] max_export_minutes)",
                state.config.max_export_minutes
            ),
        ));
    }
    let resolved = spec
        .resolve(&plan.settings)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "invalid_params", m))?;
    let mut assets = std::collections::BTreeMap::new();
    for id in plan.assets() {
        let asset = match id.parse::<i64>() {
            Ok(n) => state.hub.store().asset(AssetId(n)).await?,
            Err(_) => None,
        }
        .filter(|a| a.project_id == project.id && matches!(a.kind.as_str(), "video" | "audio" | "image"));
        let asset = asset.ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_timeline",
                format!("the timeline uses asset {id:?}, which is not a video, audio or image of this project"),
            )
        })?;
        assets.insert(id, asset.path);
    }
    let outlook = state
        .jobs
        .send(Outlook(kind))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let duration_ms = plan.duration / (moviola_crdt::time::TICKS_PER_SECOND / 1000);
    let estimate = kind
        .estimate(
            &kinds::Params::ExportRequest(spec.clone()),
            resolved.width,
            resolved.height,
            Some(duration_ms),
            outlook.ms_per_megapixel,
        )
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "beyond_capability", m))?;
    let job = kinds::ExportJob {
        output: spec,
        resolved,
        plan,
        assets,
        media_dir: String::new(),
    };
    Ok(Preflight {
        project,
        kind,
        params: serde_json::to_value(&job).map_err(|e| ApiError::internal(e.to_string()))?,
        input: None,
        needs_confirmation: authed.user.confirm_above_credits.is_some_and(|t| estimate.credits > t),
        estimate,
        queue_wait_ms: outlook.wait_ms,
    })
}

fn estimate_json(p: &Preflight, available: i64) -> Value {
    json!({
        "kind": p.kind.name(),
        "input": p.input.as_ref().map(|a| a.id),
        "credits": p.estimate.credits,
        "available_credits": available,
        "eta_ms": p.estimate.eta_ms,
        "queue_wait_ms": p.queue_wait_ms,
        "memory_bytes": p.estimate.memory_bytes,
        "output": { "width": p.estimate.output_width, "height": p.estimate.output_height },
        "needs_confirmation": p.needs_confirmation,
    })
}

async fn estimate_job(
    state: web::Data<AppState>,
    authed: Authed,
    path: web::Path<i64>,
    body: web::Json<JobRequest>,
) -> Result<HttpResponse, ApiError> {
    let p = preflight(&state, &authed, ProjectId(*path), &body).await?;
    let balance = state.hub.store().credit_balance(authed.user.id).await?;
    Ok(HttpResponse::Ok().json(estimate_json(&p, balance.available)))
}

async fn submit_job(
    state: web::Data<AppState>,
    authed: Authed,
    path: web::Path<i64>,
    body: web::Json<JobRequest>,
) -> Result<HttpResponse, ApiError> {
    let project = ProjectId(*path);
    let store = state.hub.store();
    if let Some(key) = &body.idempotency_key {
        if key.is_empty() || key.len() > 200 {
            return Err(ApiError::bad_request("idempotency_key must be 1 to 200 characters"));
        }
    }
    // A retried submit answers with the first job, whatever the quota or placement say now.
    if let Some(job) = store.job_by_key(authed.user.id, body.idempotency_key.as_deref()).await? {
        if job.project_id == project {
            return Ok(HttpResponse::Ok().json(json!({ "job": job_view(&job), "created": false })));
        }
        return Err(ApiError::conflict(
            "this idempotency_key was already used for a job of another project",
        ));
    }
    let p = preflight(&state, &authed, project, &body).await?;
    if p.needs_confirmation && !body.confirm {
        let balance = store.credit_balance(authed.user.id).await?;
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "confirmation_required",
            format!(
                "this job is estimated at {} credits, above your confirmation threshold; resubmit with \"confirm\": true",
                p.estimate.credits
            ),
        )
        .with_details(estimate_json(&p, balance.available)));
    }
    // The placeholder must fit the timeline as it is now (track exists and is unlocked), or
    // nothing is queued.
    if body.placeholder.is_some()
        && matches!(
            p.kind,
            JobKind::AnalyzeScenes | JobKind::MediaWaveform | JobKind::MediaFilmstrip | JobKind::AudioCleanup
        )
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_placeholder",
            format!("{} does not make a picture clip; submit it without a placeholder", p.kind.name()),
        ));
    }
    let placement = match &body.placeholder {
        Some(ph) => {
            // Preflight already loaded the project.
            let doc = moviola_crdt::wire::DocumentId::parse(&p.project.doc_id).map_err(|e| ApiError::internal(e.to_string()))?;
            let actor = state.hub.project(project, doc);
            let clip = format!("job-{}", uuid::Uuid::new_v4().simple());
            let (id, track, start, duration) = (clip.clone(), ph.track.clone(), ph.start, ph.duration);
            let op = move |job: i64| moviola_crdt::EditOp::PlaceJob {
                id: id.clone(),
                track: track.clone(),
                job,
                start,
                duration,
            };
            actor
                .send(ServerEdit { op: op(0), dry_run: true })
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?
                .map_err(|m| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_placeholder",
                        format!("the placeholder cannot go there: {m}"),
                    )
                })?;
            Some((actor, clip, op))
        }
        None => None,
    };
    let live = store.live_job_count(authed.user.id).await?;
    if live >= state.config.jobs.max_live_jobs_per_user {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "quota_exceeded",
            format!("you already have {live} queued or running jobs, the most allowed; wait for some to finish"),
        ));
    }
    let new = NewJob {
        project,
        user: authed.user.id,
        kind: p.kind.name().into(),
        params: p.params.to_string(),
        input_asset: p.input.as_ref().map(|a| a.id),
        priority: body.priority,
        idempotency_key: body.idempotency_key.clone(),
        estimate_credits: p.estimate.credits,
        estimate_ms: p.estimate.eta_ms,
        timeline_clip: placement.as_ref().map(|(_, clip, _)| clip.clone()),
    };
    let (job, created) = store.submit_job(new, now_ms()).await.map_err(|e| match e {
        StoreError::InsufficientCredits { needed, available } => ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_credits",
            format!("this job needs {needed} credits and you have {available} available"),
        ),
        other => other.into(),
    })?;
    if created {
        // Place the clip before the job can finish, so its result always finds it.
        if let Some((actor, _, op)) = &placement {
            if let Err(err) = actor
                .send(ServerEdit {
                    op: op(job.id.0),
                    dry_run: false,
                })
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r)
            {
                tracing::warn!(job = %job.id, %err, "could not place the job on the timeline");
            }
        }
        state.jobs.do_send(Enqueue(job.clone()));
    }
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(HttpResponse::build(status).json(json!({ "job": job_view(&job), "created": created })))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    state: Option<String>,
}

async fn list_jobs(
    state: web::Data<AppState>,
    authed: Authed,
    path: web::Path<i64>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let project = ProjectId(*path);
    project_for(&state, authed.user.id, project).await?;
    let filter =
        match query.state.as_deref() {
            None => None,
            Some(s) => Some(JobState::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!("unknown state {s:?}: use queued, running, succeeded, failed or cancelled"))
            })?),
        };
    let jobs = state.hub.store().jobs_of(project, filter).await?;
    Ok(HttpResponse::Ok().json(json!({ "jobs": jobs.iter().map(job_view).collect::<Vec<_>>() })))
}

async fn job_for(state: &AppState, authed: &Authed, id: JobId) -> Result<(moviola_store::Job, Role), ApiError> {
    let not_found = || ApiError::not_found(format!("job {id} not found, or you are not a member of its project"));
    let job = state.hub.store().job(id).await?.ok_or_else(not_found)?;
    let role = state
        .hub
        .store()
        .role_of(job.project_id, authed.user.id)
        .await?
        .ok_or_else(not_found)?;
    Ok((job, role))
}

async fn get_job(state: web::Data<AppState>, authed: Authed, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (job, _) = job_for(&state, &authed, JobId(*path)).await?;
    Ok(HttpResponse::Ok().json(json!({ "job": job_view(&job) })))
}

/// The submitter, an owner of the project, or an administrator may control a job.
fn may_control(authed: &Authed, job: &moviola_store::Job, role: Role) -> Result<(), ApiError> {
    if job.user_id == authed.user.id || role.can_manage() || authed.user.is_admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only the job's submitter, a project owner or an administrator can do this",
        ))
    }
}

async fn cancel_job(state: web::Data<AppState>, authed: Authed, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let (job, role) = job_for(&state, &authed, JobId(*path)).await?;
    may_control(&authed, &job, role)?;
    if job.state.is_final() {
        return Err(ApiError::conflict(format!("job {} already {}", job.id, job.state.as_str())));
    }
    let reason = format!("cancelled by {}", authed.user.display_name);
    let res = state
        .jobs
        .send(Cancel { job: job.id, reason })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let cancelling = match res {
        CancelResult::Dequeued => "cancelled",
        CancelResult::Stopping => "stopping",
        CancelResult::NotLive => "already finishing",
    };
    let job = state.hub.store().job(job.id).await?.unwrap_or(job);
    Ok(HttpResponse::Accepted().json(json!({ "job": job_view(&job), "cancel": cancelling })))
}

#[derive(Deserialize)]
struct PriorityBody {
    priority: i32,
}

async fn set_priority(
    state: web::Data<AppState>,
    authed: Authed,
    path: web::Path<i64>,
    body: web::Json<PriorityBody>,
) -> Result<HttpResponse, ApiError> {
    let (job, role) = job_for(&state, &authed, JobId(*path)).await?;
    may_control(&authed, &job, role)?;
    if !(-100..=100).contains(&body.priority) {
        return Err(ApiError::bad_request("priority must be between -100 and 100"));
    }
    let job = state.hub.store().set_job_priority(job.id, body.priority).await?.ok_or_else(|| {
        ApiError::conflict(format!(
            "job {} is {}: only queued jobs can be reordered",
            job.id,
            job.state.as_str()
        ))
    })?;
    state.jobs.do_send(Reprioritized(job.clone()));
    Ok(HttpResponse::Ok().json(json!({ "job": job_view(&job) })))
}

async fn queue(state: web::Data<AppState>, authed: Authed) -> Result<HttpResponse, ApiError> {
    require_admin(&authed.user)?;
    let snapshot = state.jobs.send(Snapshot).await.map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(snapshot))
}

async fn pause_queue(state: web::Data<AppState>, authed: Authed) -> Result<HttpResponse, ApiError> {
    require_admin(&authed.user)?;
    state
        .jobs
        .send(SetPaused(true))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(json!({ "paused": true })))
}

async fn resume_queue(state: web::Data<AppState>, authed: Authed) -> Result<HttpResponse, ApiError> {
    require_admin(&authed.user)?;
    state
        .jobs
        .send(SetPaused(false))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::Ok().json(json!({ "paused": false })))
}

async fn credits(state: web::Data<AppState>, authed: Authed) -> Result<HttpResponse, ApiError> {
    let store = state.hub.store();
    let balance = store.credit_balance(authed.user.id).await?;
    let entries = store.credit_entries(authed.user.id).await?;
    Ok(HttpResponse::Ok().json(json!({ "balance": balance, "entries": entries })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    email: String,
    amount: i64,
    #[serde(default)]
    note: String,
}

async fn grant_credits(state: web::Data<AppState>, authed: Authed, body: web::Json<GrantBody>) -> Result<HttpResponse, ApiError> {
    require_admin(&authed.user)?;
    let store = state.hub.store();
    let user = store
        .user_by_email(&body.email.trim().to_lowercase())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no account with email {}", body.email)))?;
    if body.amount <= 0 {
        return Err(ApiError::bad_request("amount must be positive"));
    }
    let note = if body.note.is_empty() {
        format!("granted by {}", authed.user.email)
    } else {
        body.note.clone()
    };
    let balance = store.grant_credits(user.id, body.amount, &note, now_ms()).await?;
    store
        .audit(
            now_ms(),
            Some(authed.user.id),
            None,
            "credits.grant",
            &format!("{} {}", user.email, body.amount),
        )
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "balance": balance })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    /// Jobs estimated above this many credits need `"confirm": true`; null turns it off.
    confirm_above_credits: Option<i64>,
}

async fn update_settings(state: web::Data<AppState>, authed: Authed, body: web::Json<SettingsBody>) -> Result<HttpResponse, ApiError> {
    if body.confirm_above_credits.is_some_and(|v| v < 0) {
        return Err(ApiError::bad_request("confirm_above_credits must not be negative"));
    }
    state
        .hub
        .store()
        .set_confirm_threshold(authed.user.id, body.confirm_above_credits)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "confirm_above_credits": body.confirm_above_credits })))
}

#[derive(Deserialize)]
struct EventsQuery {
    project: i64,
}

/// `/events?token=…&project=ID`: the project's job events as JSON text frames, for any member.
pub async fn events_endpoint(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    crate::check_origin(&req, &state)?;
    let authed = auth::authenticate(&req, &state).await?;
    let query = web::Query::<EventsQuery>::from_query(req.query_string())
        .map_err(|_| ApiError::bad_request("name the project to watch: /events?project=ID"))?;
    let project = ProjectId(query.project);
    project_for(&state, authed.user.id, project).await?;
    events::start(
        &req,
        payload,
        state.jobs.clone(),
        state.config.limits.clone(),
        authed.user.id,
        vec![project],
    )
    .map_err(|e| ApiError::bad_request(format!("WebSocket upgrade failed: {e}")))
}
