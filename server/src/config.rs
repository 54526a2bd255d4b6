//! Configuration in two phases: [`RawConfig`] mirrors `config/default.toml` (embedded in the
//! binary), an optional file and `MOVIOLA_*` environment variables; [`Config::from_raw`]
//! validates it once into typed settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use moviola_actors::{Limits, ProjectSettings};
use serde::Deserialize;

/// The embedded defaults.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    pub auth: RawAuth,
    pub limits: RawLimits,
    pub project: RawProject,
    pub jobs: RawJobs,
    pub credits: RawCredits,
    pub media: RawMedia,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJobs {
    pub max_attempts: i32,
    pub progress_interval_ms: u64,
    pub max_live_jobs_per_user: u64,
    pub cpu_memory_budget_mib: u64,
    pub use_cuda: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredits {
    pub signup_grant: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMedia {
    pub max_upload_bytes: usize,
    pub worker_memory_mib: u64,
    pub worker_cpu_seconds: u64,
    pub worker_timeout_ms: u64,
    pub render_memory_mib: u64,
    pub render_cpu_seconds: u64,
    pub render_timeout_ms: u64,
    pub max_export_minutes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: String,
    pub data_dir: String,
    pub database_url: String,
    pub database_connections: u32,
    pub web_dir: String,
    pub public_url: String,
    pub allowed_origins: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub token_ttl_hours: u64,
    pub min_password_length: usize,
    pub concurrent_password_hashes: usize,
    pub password_wait_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_frame_bytes: usize,
    pub max_message_bytes: usize,
    pub messages_per_second: u32,
    pub sessions_per_user: usize,
    pub outbound_queue: usize,
    pub heartbeat_interval_ms: u64,
    pub client_timeout_ms: u64,
    pub max_ephemeral_bytes: usize,
    pub ephemeral_bytes_per_second: u32,
    pub test_jitter_ms: u64,
    pub max_json_bytes: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProject {
    pub batch_interval_ms: u64,
    pub idle_timeout_ms: u64,
    pub compact_interval_ms: u64,
    pub compact_after_entries: u64,
}

/// Validated settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub database_connections: u32,
    pub token_ttl: Duration,
    pub min_password_length: usize,
    /// Password hashes computed at once (each holds 19 MiB while it runs).
    pub concurrent_password_hashes: usize,
    /// How long a sign-in waits for a free hashing slot before `503`.
    pub password_wait: Duration,
    pub limits: Limits,
    pub max_json_bytes: usize,
    pub project: ProjectSettings,
    pub jobs: JobsConfig,
    pub signup_grant: i64,
    pub max_upload_bytes: usize,
    pub worker: crate::worker::WorkerLimits,
    /// `<data_dir>/media`: uploads and job results.
    pub media_dir: PathBuf,
    /// The built browser studio (`web/dist`), if found.
    pub web_dir: Option<PathBuf>,
    /// `<data_dir>/models`: learned models' weights (`moviola models fetch`).
    pub models_dir: PathBuf,
    pub max_export_minutes: u64,
    /// `[server] public_url` without a trailing slash: the address people and webhooks reach
    /// the server at. `None`: the listen address.
    pub public_url: Option<String>,
    /// Extra origins whose pages may open the WebSockets (`[server] allowed_origins`).
    pub allowed_origins: Vec<String>,
}

/// The studio's files: the configured folder, or else `web/dist` under the current folder or
/// beside the binary's build tree (`target/<profile>/moviola` → `web/dist`).
fn find_web_dir(configured: &str) -> Option<PathBuf> {
    if !configured.is_empty() {
        return Some(PathBuf::from(configured));
    }
    let mut candidates = vec![PathBuf::from("web/dist")];
    if let Ok(exe) = std::env::current_exe() {
        if let Some(root) = exe.parent().and_then(|p| p.parent()).and_then(|p| p.parent()) {
            candidates.push(root.join("web/dist"));
        }
    }
    candidates.into_iter().find(|d| d.join("index.html").is_file())
}

#[derive(Clone, Debug)]
pub struct JobsConfig {
    pub max_attempts: i32,
    pub progress_interval: Duration,
    pub max_live_jobs_per_user: u64,
    pub cpu_memory_budget: u64,
    pub use_cuda: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid config ({origin}): {message}")]
    Invalid { origin: String, message: String },
}

fn invalid(origin: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_owned(),
        message: message.into(),
    }
}

impl RawConfig {
    /// Defaults, then `file` (if any), then `MOVIOLA_*` variables from `env`.
    pub fn load(file: Option<&std::path::Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<RawConfig, ConfigError> {
        let mut table: toml::Table = DEFAULT_TOML
            .parse()
            .map_err(|e: toml::de::Error| invalid("embedded defaults", e.to_string()))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let overlay: toml::Table = text
                .parse()
                .map_err(|e: toml::de::Error| invalid(&path.display().to_string(), e.to_string()))?;
            merge(&mut table, overlay);
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("MOVIOLA_") else { continue };
            let Some((section, key)) = rest.to_ascii_lowercase().split_once('_').map(|(s, k)| (s.to_owned(), k.to_owned())) else {
                continue;
            };
            let Some(toml::Value::Table(section_table)) = table.get_mut(&section) else {
                continue;
            };
            let Some(current) = section_table.get(&key) else { continue };
            let parsed = match current {
                toml::Value::String(_) => toml::Value::String(value),
                toml::Value::Integer(_) => {
                    toml::Value::Integer(value.parse().map_err(|_| invalid(&name, format!("{value:?} is not an integer")))?)
                }
                toml::Value::Boolean(_) => toml::Value::Boolean(
                    value
                        .parse()
                        .map_err(|_| invalid(&name, format!("{value:?} is not true or false")))?,
                ),
                _ => continue,
            };
            section_table.insert(key, parsed);
        }
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| invalid("merged configuration", e.to_string()))
    }
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl Config {
    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        let listen: SocketAddr = raw.server.listen.parse().map_err(|_| {
            invalid(
                "server.listen",
                format!("{:?} is not an address like 127.0.0.1:8080", raw.server.listen),
            )
        })?;
        let data_dir = PathBuf::from(&raw.server.data_dir);
        let database_url = if raw.server.database_url.is_empty() {
            format!("sqlite://{}", data_dir.join("moviola.db").display())
        } else if raw.server.database_url.starts_with("sqlite:")
            || raw.server.database_url.starts_with("postgres://")
            || raw.server.database_url.starts_with("postgresql://")
        {
            raw.server.database_url.clone()
        } else {
            return Err(invalid("server.database_url", "must start with sqlite:// or postgres://"));
        };
        let public_url = match raw.server.public_url.trim() {
            "" => None,
            url if crate::origin::canonical(url).is_some() => Some(url.trim_end_matches('/').to_owned()),
            url => {
                return Err(invalid(
                    "server.public_url",
                    format!("{url:?} is not an address like https://studio.example.com"),
                ));
            }
        };
        let mut allowed_origins = Vec::new();
        for origin in raw.server.allowed_origins.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            if crate::origin::canonical(origin).is_none() {
                return Err(invalid(
                    "server.allowed_origins",
                    format!("{origin:?} is not an origin like http://localhost:5173"),
                ));
            }
            allowed_origins.push(origin.to_owned());
        }
        let l = &raw.limits;
        if l.max_frame_bytes < 1024 || l.max_message_bytes < l.max_frame_bytes {
            return Err(invalid(
                "limits",
                "max_frame_bytes must be at least 1024 and max_message_bytes at least max_frame_bytes",
            ));
        }
        if l.max_ephemeral_bytes == 0 || (l.ephemeral_bytes_per_second as usize) < l.max_ephemeral_bytes {
            return Err(invalid(
                "limits",
                "max_ephemeral_bytes must be positive and ephemeral_bytes_per_second at least max_ephemeral_bytes",
            ));
        }
        if l.messages_per_second == 0 || l.sessions_per_user == 0 || l.outbound_queue == 0 {
            return Err(invalid(
                "limits",
                "messages_per_second, sessions_per_user and outbound_queue must be positive",
            ));
        }
        if l.heartbeat_interval_ms == 0 || l.client_timeout_ms <= l.heartbeat_interval_ms {
            return Err(invalid(
                "limits",
                "client_timeout_ms must exceed heartbeat_interval_ms, which must be positive",
            ));
        }
        if raw.project.batch_interval_ms == 0 || raw.project.compact_interval_ms == 0 {
            return Err(invalid("project", "batch_interval_ms and compact_interval_ms must be positive"));
        }
        let j = &raw.jobs;
        if j.max_attempts < 1 || j.max_live_jobs_per_user == 0 || j.cpu_memory_budget_mib == 0 {
            return Err(invalid(
                "jobs",
                "max_attempts, max_live_jobs_per_user and cpu_memory_budget_mib must be positive",
            ));
        }
        if raw.credits.signup_grant < 0 {
            return Err(invalid("credits.signup_grant", "must not be negative"));
        }
        if raw.media.max_upload_bytes < 1024 {
            return Err(invalid("media.max_upload_bytes", "must be at least 1024"));
        }
        let jobs = JobsConfig {
            max_attempts: j.max_attempts,
            progress_interval: Duration::from_millis(j.progress_interval_ms),
            max_live_jobs_per_user: j.max_live_jobs_per_user,
            cpu_memory_budget: j.cpu_memory_budget_mib << 20,
            use_cuda: j.use_cuda,
        };
        Ok(Config {
            jobs,
            signup_grant: raw.credits.signup_grant,
            max_upload_bytes: raw.media.max_upload_bytes,
            worker: crate::worker::WorkerLimits {
                memory_bytes: raw.media.worker_memory_mib.max(16) << 20,
                cpu_seconds: raw.media.worker_cpu_seconds.max(1),
                timeout: Duration::from_millis(raw.media.worker_timeout_ms.max(100)),
                render_memory_bytes: raw.media.render_memory_mib.max(64) << 20,
                render_cpu_seconds: raw.media.render_cpu_seconds.max(1),
                render_timeout: Duration::from_millis(raw.media.render_timeout_ms.max(1000)),
            },
            media_dir: data_dir.join("media"),
            models_dir: data_dir.join("models"),
            max_export_minutes: raw.media.max_export_minutes.max(1),
            web_dir: find_web_dir(&raw.server.web_dir),
            public_url,
            allowed_origins,
            listen,
            data_dir,
            database_url,
            database_connections: raw.server.database_connections.max(1),
            token_ttl: Duration::from_secs(raw.auth.token_ttl_hours * 3600),
            min_password_length: raw.auth.min_password_length,
            concurrent_password_hashes: match raw.auth.concurrent_password_hashes {
                0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
                n => n,
            },
            password_wait: Duration::from_millis(raw.auth.password_wait_ms.max(1)),
            limits: Limits {
                max_frame_bytes: l.max_frame_bytes,
                max_message_bytes: l.max_message_bytes,
                messages_per_second: l.messages_per_second,
                sessions_per_user: l.sessions_per_user,
                outbound_queue: l.outbound_queue,
                heartbeat_interval: Duration::from_millis(l.heartbeat_interval_ms),
                client_timeout: Duration::from_millis(l.client_timeout_ms),
                max_ephemeral_bytes: l.max_ephemeral_bytes,
                ephemeral_bytes_per_second: l.ephemeral_bytes_per_second,
                test_jitter: Duration::from_millis(l.test_jitter_ms),
            },
            max_json_bytes: l.max_json_bytes,
            project: ProjectSettings {
                batch_interval: Duration::from_millis(raw.project.batch_interval_ms),
                idle_timeout: Duration::from_millis(raw.project.idle_timeout_ms),
                compact_interval: Duration::from_millis(raw.project.compact_interval_ms),
                compact_after_entries: raw.project.compact_after_entries.max(1),
            },
        })
    }

    /// The embedded defaults with `MOVIOLA_*` overrides from `env` and no file.
    pub fn defaults_with_env(env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        Config::from_raw(RawConfig::load(None, env)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_env_overrides_apply() {
        let config = Config::defaults_with_env([
            ("MOVIOLA_LIMITS_MESSAGES_PER_SECOND".to_owned(), "7".to_owned()),
            ("MOVIOLA_SERVER_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ])
        .unwrap();
        assert_eq!(config.limits.messages_per_second, 7);
        assert_eq!(config.listen.port(), 0);
        assert!(config.database_url.starts_with("sqlite://"));
        let err = Config::defaults_with_env([("MOVIOLA_LIMITS_OUTBOUND_QUEUE".to_owned(), "many".to_owned())]).unwrap_err();
        assert!(err.to_string().contains("not an integer"), "{err}");
    }
}
