//! The media worker: `moviola worker …` probes and decodes untrusted media in a separate
//! process, so a crash or hang in FFmpeg's C code costs that one request, never the server.
//!
//! The server runs it through `prlimit` (address-space and CPU-time limits) with a wall-clock
//! timeout, and reads one JSON object from its stdout: the result, or `{"error": "…"}`.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

/// Limits for one worker run.
#[derive(Clone, Debug)]
pub struct WorkerLimits {
    pub memory_bytes: u64,
    pub cpu_seconds: u64,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The worker ran and says the input is not usable.
    #[error("{0}")]
    Refused(String),
    /// The worker died (a crash, or a limit) or hung.
    #[error("the media worker stopped: {0}")]
    Crashed(String),
}

/// `moviola worker ARGS…` (called by `main`). Returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["probe", input] => moviola_media::probe(Path::new(input)).map(|info| serde_json::to_value(info).unwrap_or(Value::Null)),
        ["thumbnail", input, output, at_ms, max_side] => {
            let (at_ms, max_side) = (at_ms.parse().unwrap_or(0), max_side.parse().unwrap_or(320));
            moviola_media::thumbnail(Path::new(input), at_ms, max_side).and_then(|t| {
                let img = image::RgbImage::from_raw(t.width, t.height, t.rgb)
                    .ok_or_else(|| moviola_media::MediaError::Decode("bad frame size".into()))?;
                img.save_with_format(output, image::ImageFormat::Png)
                    .map_err(|e| moviola_media::MediaError::Decode(format!("cannot write the thumbnail: {e}")))?;
                Ok(json!({ "width": t.width, "height": t.height, "at_ms": t.at_ms }))
            })
        }
        _ => {
            eprintln!("usage: moviola worker probe INPUT | thumbnail INPUT OUTPUT.png AT_MS MAX_SIDE");
            return 64;
        }
    };
    match result {
        Ok(v) => {
            println!("{v}");
            0
        }
        Err(e) => {
            println!("{}", json!({ "error": e.to_string() }));
            2
        }
    }
}

/// Runs `moviola worker ARGS…` under `limits` and returns its JSON answer.
pub async fn run(args: &[OsString], limits: &WorkerLimits) -> Result<Value, WorkerError> {
    let exe = std::env::current_exe().map_err(|e| WorkerError::Crashed(format!("cannot find the moviola binary: {e}")))?;
    let mut cmd = if Path::new("/usr/bin/prlimit").exists() {
        let mut c = tokio::process::Command::new("/usr/bin/prlimit");
        c.arg(format!("--as={}", limits.memory_bytes))
            .arg(format!("--cpu={}", limits.cpu_seconds))
            .arg("--")
            .arg(exe);
        c
    } else {
        tokio::process::Command::new(exe)
    };
    cmd.arg("worker").args(args).env("MOVIOLA_LOG", "error").kill_on_drop(true);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let child = cmd.spawn().map_err(|e| WorkerError::Crashed(format!("cannot start: {e}")))?;
    let out = match tokio::time::timeout(limits.timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(WorkerError::Crashed(e.to_string())),
        Err(_) => {
            return Err(WorkerError::Crashed(format!(
                "no answer within {} s; stopped",
                limits.timeout.as_secs()
            )));
        }
    };
    let answer: Option<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok());
    match (out.status.code(), answer) {
        (Some(0), Some(v)) => Ok(v),
        (Some(2), Some(v)) => Err(WorkerError::Refused(v["error"].as_str().unwrap_or("unusable input").to_owned())),
        (code, _) => {
            use std::os::unix::process::ExitStatusExt;
            let why = match (code, out.status.signal()) {
                (_, Some(sig)) => format!("killed by signal {sig} (a crash, or the memory or CPU limit)"),
                (Some(c), None) => format!("exit code {c}"),
                (None, None) => "unknown status".into(),
            };
            Err(WorkerError::Crashed(why))
        }
    }
}
