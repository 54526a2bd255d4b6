//! `moviola-server`: wires configuration, the store, the actor hub and the HTTP/WebSocket
//! endpoints together. The binary (`main.rs`) only parses the command line and calls [`run`].
//!
//! # Crate features
//! - `cuda`: also run jobs on the first NVIDIA GPU (burn-cuda; needs the driver at run time,
//!   not at build time).

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod export_cli;
pub mod files;
pub mod jobs_api;
pub mod models_cli;
pub mod origin;
pub mod worker;

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;

use actix::{Actor, Addr};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use actix_ws::CloseCode;
use moviola_actors::jobs::device::{BurnExecutor, DeviceActor, DeviceInfo, Executor};
use moviola_actors::jobs::supervisor::{GpuSupervisor, JobSettings};
use moviola_actors::{Hub, session};
use moviola_store::Store;

pub use config::Config;

/// What every handler can reach.
pub struct AppState {
    pub hub: Hub,
    pub config: Config,
    pub jobs: Addr<GpuSupervisor>,
    /// Key for signed file URLs (`files.rs`).
    pub url_key: Vec<u8>,
    /// Browser origins allowed to open the WebSockets.
    pub origins: origin::AllowedOrigins,
    /// Password hashing with pooled memory (`auth.rs`).
    pub passwords: auth::Passwords,
}

/// Starts one DeviceActor per compute device: always the CPU (burn `flex`), and with the
/// `cuda` feature the first NVIDIA GPU when its driver is present. Only this binary picks
/// backends; the actors and models are generic over them.
fn start_devices(config: &Config) -> Vec<(DeviceInfo, Addr<DeviceActor>)> {
    use moviola_models::backend::{Cpu, CpuDevice};
    let mut devices = Vec::new();
    let cpu = DeviceInfo {
        name: "cpu".into(),
        backend: "flex",
        memory_budget: config.jobs.cpu_memory_budget,
    };
    let executor: Arc<dyn Executor> = Arc::new(BurnExecutor::<Cpu> {
        device: CpuDevice,
        worker: config.worker.clone(),
        models_dir: config.models_dir.clone(),
    });
    devices.push((cpu.clone(), DeviceActor::new(0, cpu, executor).start()));
    #[cfg(feature = "cuda")]
    if config.jobs.use_cuda {
        if moviola_models::backend::cuda_driver_present() {
            use moviola_models::backend::Cuda;
            let info = DeviceInfo {
                name: "cuda:0".into(),
                backend: "cuda",
                memory_budget: config.jobs.cpu_memory_budget,
            };
            let executor: Arc<dyn Executor> = Arc::new(BurnExecutor::<Cuda> {
                device: Default::default(),
                worker: config.worker.clone(),
                models_dir: config.models_dir.clone(),
            });
            devices.push((info.clone(), DeviceActor::new(devices.len(), info, executor).start()));
        } else {
            tracing::info!("built with cuda, but libcuda.so.1 is not present: CPU only");
        }
    }
    devices
}

/// Opens the store and serves HTTP and WebSocket requests on `listener` until `shutdown`
/// resolves, then stops accepting, compacts every open project and returns.
/// Must run inside an actix system (`actix_web::rt::System`).
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let store = Store::connect(&config.database_url, config.database_connections).await?;
    let peer_id = format!("moviola-{}", uuid::Uuid::new_v4().simple());
    let hub = Hub::new(store.clone(), config.limits.clone(), config.project.clone(), peer_id);
    std::fs::create_dir_all(&config.media_dir)?;
    // Scratch files of workers from before a crash: their jobs are re-queued and start over.
    let _ = std::fs::remove_dir_all(config.media_dir.join("tmp"));
    let settings = JobSettings {
        max_attempts: config.jobs.max_attempts,
        progress_interval: config.jobs.progress_interval,
        max_live_jobs_per_user: config.jobs.max_live_jobs_per_user,
        media_dir: config.media_dir.clone(),
    };
    let origins = origin::AllowedOrigins::new(config.public_url.as_deref(), listener.local_addr()?, &config.allowed_origins);
    tracing::debug!(origins = ?origins.list().collect::<Vec<_>>(), "browser origins allowed on the WebSockets");
    let jobs = GpuSupervisor::new(hub.clone(), settings, start_devices(&config)).start();
    let state = web::Data::new(AppState {
        hub: hub.clone(),
        config: config.clone(),
        jobs,
        url_key: files::load_or_create_key(&config.data_dir)?,
        origins,
        passwords: auth::Passwords::new(config.concurrent_password_hashes, config.password_wait),
    });
    let max_json = config.max_json_bytes;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::JsonConfig::default().limit(max_json).error_handler(error::json_error))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .service(web::scope("/api/v1").configure(api::routes).configure(jobs_api::routes))
            .route("/events", web::get().to(jobs_api::events_endpoint))
            .route("/files/{id}", web::get().to(files::serve))
            .route("/sync", web::get().to(sync_endpoint))
            .route("/health", web::get().to(health))
            .default_service(web::to(studio))
    })
    .disable_signals()
    .shutdown_timeout(10)
    .listen(listener)?
    .run();
    let handle = server.handle();
    let server_task = actix_web::rt::spawn(server);
    shutdown.await;
    tracing::info!("shutting down: closing connections and compacting open projects");
    handle.stop(true).await;
    hub.shutdown().await;
    let _ = server_task.await;
    store.close().await?;
    Ok(())
}

/// `/sync`: the automerge-repo WebSocket. The token comes as `?token=` (browsers cannot set
/// headers on a WebSocket) or `Authorization: Bearer`.
async fn sync_endpoint(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> actix_web::Result<HttpResponse> {
    check_origin(&req, &state)?;
    let hub = &state.hub;
    let authed = match auth::authenticate(&req, &state).await {
        Ok(authed) => authed,
        Err(err) => {
            return session::reject(
                &req,
                payload,
                hub.peer_id(),
                &format!("authentication failed: {}", err.message),
                CloseCode::Policy,
            );
        }
    };
    let Some(slot) = hub.open_session(authed.user.id) else {
        let message = format!(
            "too many open sessions: at most {} per user; close another tab or window",
            hub.limits().sessions_per_user
        );
        return session::reject(&req, payload, hub.peer_id(), &message, CloseCode::Policy);
    };
    session::start(&req, payload, hub.clone(), authed.user.id, slot)
}

/// Refuses a browser's WebSocket upgrade from a page of another site (see `origin.rs`).
pub fn check_origin(req: &HttpRequest, state: &AppState) -> Result<(), error::ApiError> {
    let origin = req.headers().get(actix_web::http::header::ORIGIN).map(|v| v.to_str().unwrap_or("invalid"));
    if state.origins.allows(origin) {
        return Ok(());
    }
    tracing::info!(origin = origin.unwrap_or(""), path = req.path(), "WebSocket upgrade from a foreign origin refused");
    Err(error::ApiError::new(
        actix_web::http::StatusCode::FORBIDDEN,
        "origin_not_allowed",
        format!(
            "pages from {} may not open this WebSocket: only the studio's own origin and [server] allowed_origins may",
            origin.unwrap_or("")
        ),
    ))
}

async fn health(state: web::Data<AppState>) -> HttpResponse {
    match state.hub.store().ping().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ok", "open_projects": state.hub.n_running_projects() })),
        Err(err) => HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": "degraded", "error": err.to_string() })),
    }
}

/// The browser studio: its built files, and `index.html` for every other page path (the
/// single-page app routes itself). API paths never fall through to it.
async fn studio(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, error::ApiError> {
    let path = req.path();
    let not_found = || error::ApiError::not_found(format!("no route for {} {}", req.method(), path));
    if req.method() != actix_web::http::Method::GET || path.starts_with("/api/") {
        return Err(not_found());
    }
    let Some(dir) = &state.config.web_dir else {
        return Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(concat!(
            "<!doctype html><meta charset=utf-8><title>Moviola</title>",
            "<h1>Moviola</h1><p>The server is running, but the studio is not built: ",
            "run <code>scripts/serve.sh</code> (or <code>npm run build</code> in <code>web/</code>).</p>",
            "<p>HTTP API under <code>/api/v1</code>, live timeline sync on <code>/sync</code>.</p>"
        )));
    };
    // Only plain names inside the folder; anything else is a page of the app.
    let rel = path.trim_start_matches('/');
    let safe = !rel.is_empty() && rel.split('/').all(|c| !c.is_empty() && c != ".." && c != "." && !c.contains('\\'));
    let file = if safe { Some(dir.join(rel)).filter(|f| f.is_file()) } else { None };
    let (file, immutable) = match file {
        Some(f) => (f, rel.starts_with("assets/")),
        None if rel.contains('.') && safe => return Err(not_found()),
        None => (dir.join("index.html"), false),
    };
    let bytes = tokio::fs::read(&file).await.map_err(|_| not_found())?;
    let mime = match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    };
    let mut res = HttpResponse::Ok();
    res.content_type(mime);
    // Vite puts a content hash in every name under assets/.
    res.insert_header((
        "cache-control",
        if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        },
    ));
    Ok(res.body(bytes))
}
