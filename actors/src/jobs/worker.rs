//! Running `moviola worker …` (the same binary) for media work on untrusted files: a separate
//! process under `prlimit` (address space, CPU time) with a wall-clock timeout. The worker
//! prints JSON lines: `{"progress": {"done", "total"}}` while it works, then its answer (exit 0)
//! or `{"error": …}` (exit 2).

use std::ffi::OsString;
use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::kinds::RunError;

/// Limits for one worker run.
#[derive(Clone, Debug)]
pub struct WorkerLimits {
    pub memory_bytes: u64,
    pub cpu_seconds: u64,
    pub timeout: Duration,
    /// The limits for proxies and exports, which run as long as the footage needs.
    pub render_memory_bytes: u64,
    pub render_cpu_seconds: u64,
    pub render_timeout: Duration,
}

impl WorkerLimits {
    /// The limits a render (proxy, export) runs under.
    pub fn render(&self) -> WorkerLimits {
        WorkerLimits {
            memory_bytes: self.render_memory_bytes,
            cpu_seconds: self.render_cpu_seconds,
            timeout: self.render_timeout,
            ..self.clone()
        }
    }
}

/// The command for `moviola worker ARGS…` under the limits.
pub fn command(args: &[OsString], limits: &WorkerLimits) -> Result<std::process::Command, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the moviola binary: {e}"))?;
    let mut cmd = if Path::new("/usr/bin/prlimit").exists() {
        let mut c = std::process::Command::new("/usr/bin/prlimit");
        c.arg(format!("--as={}", limits.memory_bytes))
            .arg(format!("--cpu={}", limits.cpu_seconds))
            .arg("--")
            .arg(exe);
        c
    } else {
        std::process::Command::new(exe)
    };
    cmd.arg("worker").args(args).env("MOVIOLA_LOG", "error");
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    Ok(cmd)
}

/// Why a worker that did not answer with a result stopped, from its exit status.
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (_, Some(sig)) => format!("killed by signal {sig} (a crash, or the memory or CPU limit)"),
        (Some(c), None) => format!("exit code {c}"),
        (None, None) => "unknown status".into(),
    }
}

/// What a worker reports while it runs (JSON lines on its standard output).
#[derive(Debug)]
pub enum WorkerEvent {
    /// `{"progress": {"done", "total"}}`
    Progress(u64, u64),
    /// `{"preview": PATH}`: a small PNG of the latest result, written to PATH.
    Preview(std::path::PathBuf),
}

/// Runs a worker from a device thread (blocking), reporting progress and previews, stopping
/// it on cancel or timeout.
pub fn run_blocking(
    args: &[OsString],
    limits: &WorkerLimits,
    cancel: &AtomicBool,
    mut on_event: impl FnMut(WorkerEvent),
) -> Result<Value, RunError> {
    let mut child = command(args, limits)
        .map_err(RunError::Failed)?
        .spawn()
        .map_err(|e| RunError::Failed(format!("cannot start the media worker: {e}")))?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut answer: Option<Value> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
                if let Some(p) = v.get("progress") {
                    on_event(WorkerEvent::Progress(
                        p["done"].as_u64().unwrap_or(0),
                        p["total"].as_u64().unwrap_or(0),
                    ));
                } else if let Some(path) = v.get("preview").and_then(Value::as_str) {
                    on_event(WorkerEvent::Preview(path.into()));
                } else {
                    answer = Some(v);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if cancel.load(Ordering::Relaxed) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RunError::Cancelled);
        }
        if started.elapsed() > limits.timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RunError::Failed(format!(
                "the media worker gave no answer within {} s; stopped",
                limits.timeout.as_secs()
            )));
        }
    }
    let status = child.wait().map_err(|e| RunError::Failed(e.to_string()))?;
    match (status.code(), answer) {
        (Some(0), Some(v)) => Ok(v),
        (Some(2), Some(v)) => Err(RunError::Failed(v["error"].as_str().unwrap_or("unusable input").to_owned())),
        _ => Err(RunError::Failed(format!("the media worker stopped: {}", describe_exit(status)))),
    }
}
