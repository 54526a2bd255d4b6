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

/// The processes whose command line mentions `needle` (a test server's data folder) and `word`.
fn processes_with(needle: &str, word: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        // A zombie has an empty command line: it is gone, only not yet reaped.
        if cmdline.contains(needle) && cmdline.contains(word) {
            found.push(pid);
        }
    }
    found
}

/// A render in the media worker stops when the server is killed (nobody would collect it), and
/// the job, accepted before the crash, runs again after the restart and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_render_stops_with_the_server_and_its_job_is_retried() {
    use moviola_tests::http::{request, upload};
    let mut server = TestServer::start();
    let ana = register(server.port, "ana");
    let (project, _) = create_project(server.port, &ana, "Crash render");
    let dir = server.data_dir.join("gen");
    std::fs::create_dir_all(&dir).unwrap();
    let clip = dir.join("grain.mp4");
    crate::ffmpeg(
        // Large frames: each takes seconds, so the worker says nothing for seconds at a time (a
        // worker only notices a dead server when it next writes, unless it watches for it).
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25:duration=0.12,noise=alls=20:allf=t",
            "-pix_fmt",
            "yuv420p",
        ],
        &clip,
    );
    let asset = upload(server.port, &ana, project, &std::fs::read(&clip).unwrap(), "grain.mp4").body["asset"]["id"]
        .as_i64()
        .unwrap();
    let res = request(
        server.port,
        "POST",
        &format!("/api/v1/projects/{project}/jobs"),
        Some(&ana.token),
        Some(&serde_json::json!({ "kind": "enhance.denoise", "input": asset })),
    )
    .unwrap();
    assert_eq!(res.status, 201, "{}", res.body);
    let job = res.body["job"]["id"].as_i64().unwrap();
    let data = server.data_dir.to_string_lossy().into_owned();
    // Wait for its worker.
    let mut workers = Vec::new();
    for _ in 0..400 {
        workers = processes_with(&data, "denoise");
        if !workers.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!workers.is_empty(), "no denoise worker started");
    // Give it a moment to be busy on a frame, then kill the server.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill9();
    let mut left = workers.clone();
    for _ in 0..50 {
        left = processes_with(&data, "denoise");
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(left.is_empty(), "the worker {left:?} outlived the server");
    // After the restart the job runs again and succeeds.
    server.restart();
    for _ in 0..1200 {
        let res = request(server.port, "GET", &format!("/api/v1/jobs/{job}"), Some(&ana.token), None).unwrap();
        match res.body["job"]["state"].as_str() {
            Some("succeeded") => return,
            Some("failed" | "cancelled") => panic!("the retried job ended {}", res.body),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("the retried job did not finish");
}
