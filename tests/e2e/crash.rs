use std::time::Duration;

use automerge::ReadDoc as _;
use moviola_tests::http::{create_project, register};
use moviola_tests::{SyncClient, TestServer};

use crate::add_track;

/// Edits stream in; the server is killed with SIGKILL mid-stream and restarted on the same
/// data. Every edit the server had acknowledged (its sync heads covered it) must be there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_edits_survive_kill_9() {
    // Compact often, so the crash can also land during or after a compaction.
    let mut server = TestServer::start_with(&[("MOVIOLA_PROJECT_COMPACT_AFTER_ENTRIES", "25")]);
    let ana = register(server.port, "ana");
    let (_, doc) = create_project(server.port, &ana, "Crash");
    let mut client = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    client.wait_loaded().await.unwrap();

    let mut acked_heads = Vec::new();
    let mut n_sent = 0;
    for i in 0..400 {
        if i == 150 {
            server.kill9();
        }
        if client.edit(&add_track(&format!("t{i}"))).await.is_err() {
            break;
        }
        n_sent += 1;
        if client.pump(Duration::from_millis(3)).await.is_err() {
            break;
        }
        if !client.server_heads.is_empty() {
            acked_heads = client.server_heads.clone();
        }
    }
    let acked_doc = client
        .doc
        .fork_at(&acked_heads)
        .expect("acknowledged heads are in the client's document");
    let acked_tracks = moviola_crdt::Timeline::read(&acked_doc).tracks.len();
    assert!(
        acked_tracks >= 50,
        "only {acked_tracks} of {n_sent} edits were acknowledged before the kill"
    );

    server.restart();
    let mut fresh = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    fresh
        .pump_until(Duration::from_secs(10), |c| c.view().tracks.len() >= acked_tracks)
        .await
        .unwrap();
    for head in &acked_heads {
        assert!(
            fresh.doc.get_change_by_hash(head).is_some(),
            "acknowledged change {head} lost in the crash"
        );
    }
}
