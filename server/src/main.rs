//! The `moviola` command line: the only place that knows about arguments and signals.

use std::net::TcpListener;
use std::path::PathBuf;

use anyhow::{Context, bail};
use moviola_server::config::{Config, RawConfig};

const USAGE: &str = "usage: moviola [serve] [--config FILE] [--listen ADDR] [--data-dir DIR] [--database-url URL]

Starts the Moviola studio server. Settings come from the embedded config/default.toml,
then FILE, then MOVIOLA_<SECTION>_<KEY> environment variables, then these flags.";

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("MOVIOLA_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("serve") {
        args.next();
    }
    let (mut file, mut listen, mut data_dir, mut database_url) = (None, None, None, None);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value\n\n{USAGE}"));
        match arg.as_str() {
            "--config" => file = Some(PathBuf::from(value("--config")?)),
            "--listen" => listen = Some(value("--listen")?),
            "--data-dir" => data_dir = Some(value("--data-dir")?),
            "--database-url" => database_url = Some(value("--database-url")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    let mut raw = RawConfig::load(file.as_deref(), std::env::vars())?;
    if let Some(listen) = listen {
        raw.server.listen = listen;
    }
    if let Some(data_dir) = data_dir {
        raw.server.data_dir = data_dir;
    }
    if let Some(url) = database_url {
        raw.server.database_url = url;
    }
    let config = Config::from_raw(raw)?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("cannot create data folder {}", config.data_dir.display()))?;
    let listener = TcpListener::bind(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
    // Tests and scripts read this line to learn the port when listening on port 0.
    println!("moviola listening on http://{}", listener.local_addr()?);
    actix_web::rt::System::new().block_on(moviola_server::run(listener, config, shutdown_signal()))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
