//! A real `moviola` process with its own data folder.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Path of the `moviola` binary built next to the running test (scripts/test.sh builds it
/// first), or `MOVIOLA_BIN`.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MOVIOLA_BIN") {
        return path.into();
    }
    // Test binaries live in target/<profile>/deps, tools such as the benchmark in target/<profile>.
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("target dir");
    let dir = if dir.ends_with("deps") {
        dir.parent().expect("target dir")
    } else {
        dir
    };
    let bin = dir.join("moviola");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build -p moviola-server` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

pub struct TestServer {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub port: u16,
    env: Vec<(String, String)>,
    keep_dir: bool,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(&[])
    }

    /// Starts a server with extra `MOVIOLA_*` settings.
    pub fn start_with(env: &[(&str, &str)]) -> TestServer {
        let data_dir = std::env::temp_dir().join(format!("moviola-e2e-{}", uuid::Uuid::new_v4().simple()));
        let mut server = TestServer {
            child: None,
            data_dir,
            port: 0,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            keep_dir: false,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(binary());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(&self.data_dir);
        cmd.env("MOVIOLA_LOG", std::env::var("MOVIOLA_LOG").unwrap_or_else(|_| "warn".into()));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn moviola");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read moviola stdout");
        self.port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from moviola: {line:?}"));
        self.child = Some(child);
        // Wait until the HTTP API answers (the store opens after the port is printed).
        for _ in 0..200 {
            if crate::http::request(self.port, "GET", "/health", None, None)
                .map(|r| r.status == 200)
                .unwrap_or(false)
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("moviola did not become healthy");
    }

    /// SIGKILL: no shutdown code runs, exactly like a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("wait");
        }
    }

    /// Starts the server again on the same data folder (a new port).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Runs `moviola admin ARGS…` on this server's data (works while it runs).
    pub fn admin(&self, args: &[&str]) -> String {
        let out = Command::new(binary())
            .arg("admin")
            .args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("MOVIOLA_LOG", "warn")
            .output()
            .expect("run moviola admin");
        assert!(
            out.status.success(),
            "moviola admin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Process id of the running server (for memory figures in benchmarks).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn ws_url(&self, token: &str) -> String {
        format!("ws://127.0.0.1:{}/sync?token={token}", self.port)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}
