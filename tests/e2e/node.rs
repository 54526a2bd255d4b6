//! The official JavaScript client (`@automerge/automerge-repo` with its WebSocket adapter)
//! syncs a project's timeline with the server, unchanged.

use std::process::Command;
use std::time::Duration;

use moviola_tests::http::{create_project, register};
use moviola_tests::{SyncClient, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_automerge_repo_client_syncs() {
    let server = TestServer::start();
    let ana = register(server.port, "ana");
    let (_, doc) = create_project(server.port, &ana, "From Node");
    let mut rust = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    rust.wait_loaded().await.unwrap();
    rust.edit(&crate::add_track("from-rust")).await.unwrap();
    rust.pump_until(Duration::from_secs(5), |c| c.acknowledged()).await.unwrap();

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("node/sync.mjs");
    let url = server.ws_url(&ana.token);
    let out = tokio::task::spawn_blocking(move || Command::new("node").arg(&script).arg(&url).arg(format!("automerge:{doc}")).output())
        .await
        .unwrap()
        .expect("run node (scripts/test.sh installs it and the npm packages)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("node printed JSON");
    assert_eq!(result["title"], "From Node");
    assert_eq!(result["sawRustTrack"], true, "node saw: {}", String::from_utf8_lossy(&out.stderr));

    // The Node client's edit reached the server and the Rust client.
    rust.pump_until(Duration::from_secs(10), |c| {
        c.view().title == "renamed by node" && c.view().tracks.iter().any(|t| t.name == "from-node")
    })
    .await
    .unwrap();
}

/// A viewer who edits with the official client gets one refusal, and then the exchange
/// settles: no sync messages either way while nobody edits (it used to loop ~145 times a
/// second, each time with the whole document).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_viewer_with_the_official_client_goes_quiet() {
    let server = TestServer::start();
    let (ana, vi) = (register(server.port, "ana"), register(server.port, "vi"));
    let (project, doc) = create_project(server.port, &ana, "Quiet");
    moviola_tests::http::add_member(server.port, &ana, project, &vi, "viewer");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("node/viewer_loop.mjs");
    let url = server.ws_url(&vi.token);
    let doc_url = format!("automerge:{doc}");
    let out = tokio::task::spawn_blocking(move || Command::new("node").arg(&script).arg(&url).arg(&doc_url).output())
        .await
        .unwrap()
        .expect("run node (scripts/test.sh installs it and the npm packages)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("node printed JSON");
    assert_eq!(counts["syncIn"], 0, "server kept sending after the refusal: {counts}");
    assert_eq!(counts["syncOut"], 0, "client kept sending after the refusal: {counts}");
    // Nothing of the viewer's reached the document.
    let mut owner = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    owner.wait_loaded().await.unwrap();
    owner.pump(Duration::from_millis(200)).await.unwrap();
    assert!(owner.view().tracks.iter().all(|t| t.name != "from-viewer"));
}
