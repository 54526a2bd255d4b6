//! Export end to end: uploads arranged on the timeline by a real sync client, exported as
//! jobs for YouTube (pad), TikTok (crop) and as a ProRes master from the same timeline, with
//! progress on `/events`, cancel, bad requests refused, and `moviola export` on the command line.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::ffmpeg;
use moviola_crdt::EditOp;
use moviola_crdt::time::{millis, seconds};
use moviola_crdt::timeline::{TrackKind, Transition};
use moviola_tests::http::{Account, add_member, create_project, get_with_headers, register, request, upload};
use moviola_tests::{Events, SyncClient, TestServer};
use serde_json::{Value, json};

/// A 4:3 colour clip with a tone.
fn clip(dir: &Path, colour: &str, hz: u32) -> Vec<u8> {
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            &format!("color=c={colour}:size=320x240:rate=25:duration=3"),
            "-f",
            "lavfi",
            "-i",
            &format!("aevalsrc=0.4*sin(2*PI*{hz}*t):s=48000:d=3"),
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
        &dir.join(format!("{colour}.mp4")),
    )
}

async fn wait_final(port: u16, who: &Account, job: i64) -> Value {
    for _ in 0..2400 {
        let res = request(port, "GET", &format!("/api/v1/jobs/{job}"), Some(&who.token), None).unwrap();
        if ["succeeded", "failed", "cancelled"].contains(&res.body["job"]["state"].as_str().unwrap_or("")) {
            return res.body["job"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {job} did not finish in 120 s");
}

/// Waits until no job of the project is queued or running (derived media of the uploads run
/// in the background), so scratch files can be checked.
async fn wait_idle(port: u16, who: &Account, project: i64) {
    for _ in 0..2400 {
        let res = request(port, "GET", &format!("/api/v1/projects/{project}/jobs"), Some(&who.token), None).unwrap();
        let live = res.body["jobs"]
            .as_array()
            .map(|j| j.iter().any(|j| ["queued", "running"].contains(&j["state"].as_str().unwrap_or(""))))
            .unwrap_or(true);
        if !live {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the project's jobs did not finish");
}

fn export(port: u16, who: &Account, project: i64, params: Value) -> moviola_tests::http::Response {
    request(
        port,
        "POST",
        &format!("/api/v1/projects/{project}/jobs"),
        Some(&who.token),
        Some(&json!({ "kind": "export.render", "params": params })),
    )
    .unwrap()
}

/// Downloads an asset through its signed link into `dir`.
pub(crate) fn download(port: u16, who: &Account, asset: i64, dir: &Path, name: &str) -> std::path::PathBuf {
    let link = request(port, "GET", &format!("/api/v1/assets/{asset}/url"), Some(&who.token), None).unwrap();
    let file = get_with_headers(port, link.body["url"].as_str().unwrap(), &[]).unwrap();
    assert_eq!(file.status, 200);
    let path = dir.join(name);
    std::fs::write(&path, &file.bytes).unwrap();
    path
}

fn probe(path: &Path) -> (String, u32, u32, u64, f64) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = v["streams"].as_array().unwrap();
    let codecs: Vec<&str> = streams.iter().map(|s| s["codec_name"].as_str().unwrap()).collect();
    let video = &streams[0];
    (
        codecs.join(","),
        video["width"].as_u64().unwrap() as u32,
        video["height"].as_u64().unwrap() as u32,
        video["nb_read_frames"].as_str().unwrap().parse().unwrap(),
        v["format"]["duration"].as_str().unwrap().parse().unwrap(),
    )
}

/// RGB of the pixel at `(x, y)` of the frame shown at `secs`, decoded by the ffmpeg CLI.
fn pixel_at(path: &Path, secs: f64, x: u32, y: u32, width: u32) -> [i32; 3] {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-ss",
            &format!("{secs}"),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .output()
        .unwrap();
    let i = ((y * width + x) * 3) as usize;
    [out.stdout[i] as i32, out.stdout[i + 1] as i32, out.stdout[i + 2] as i32]
}

fn near(a: [i32; 3], b: [i32; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 12)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeline_exports_for_youtube_tiktok_and_as_a_prores_master() {
    let server = TestServer::start();
    let port = server.port;
    let ana = register(port, "ana");
    let viewer = register(port, "vic");
    let (project, doc) = create_project(port, &ana, "Film");
    add_member(port, &ana, project, &viewer, "viewer");
    let dir = server.data_dir.join("gen");
    std::fs::create_dir_all(&dir).unwrap();

    // Nothing to export yet.
    let res = export(port, &ana, project, json!({ "preset": "youtube" }));
    assert_eq!(
        (res.status, res.body["error"]["code"].as_str()),
        (400, Some("empty_timeline")),
        "{}",
        res.body
    );

    let mut ids = Vec::new();
    for (colour, hz) in [("red", 440), ("green", 660)] {
        let res = upload(port, &ana, project, &clip(&dir, colour, hz), &format!("{colour}.mp4"));
        assert_eq!(res.status, 201, "{}", res.body);
        ids.push(res.body["asset"]["id"].as_i64().unwrap().to_string());
    }
    let mut sync = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    sync.wait_loaded().await.unwrap();
    for (id, kind) in [("v1", TrackKind::Video), ("t1", TrackKind::Text)] {
        sync.edit(&EditOp::AddTrack {
            id: id.into(),
            kind,
            name: id.into(),
            after: None,
        })
        .await
        .unwrap();
    }
    // Red 0–2 s, green 2–4 s dissolving in over 0.5 s, a title over 0.5–1.5 s.
    for (i, (clip, start)) in [("a", 0), ("b", seconds(2))].into_iter().enumerate() {
        sync.edit(&EditOp::InsertClip {
            id: clip.into(),
            track: "v1".into(),
            asset: ids[i].clone(),
            source_in: 0,
            source_out: seconds(2),
            start,
        })
        .await
        .unwrap();
    }
    sync.edit(&EditOp::SetTransition {
        clip: "b".into(),
        transition: Some(Transition {
            kind: "dissolve".into(),
            duration: millis(500),
        }),
        out: false,
    })
    .await
    .unwrap();
    sync.edit(&EditOp::InsertText {
        id: "title".into(),
        track: "t1".into(),
        text: "Moviola".into(),
        start: millis(500),
        duration: seconds(1),
    })
    .await
    .unwrap();
    sync.pump_until(Duration::from_secs(10), |c| c.acknowledged()).await.unwrap();

    // Bad requests change nothing.
    for (params, code) in [
        (json!({ "preset": "vhs" }), "invalid_params"),
        (json!({ "preset": "youtube", "plan": {} }), "invalid_params"),
        (json!({ "container": "webm", "video_codec": "h264" }), "invalid_params"),
        (json!({ "width": 641, "height": 480 }), "invalid_params"),
    ] {
        let res = export(port, &ana, project, params.clone());
        assert_eq!(
            (res.status, res.body["error"]["code"].as_str()),
            (400, Some(code)),
            "{params}: {}",
            res.body
        );
    }
    let res = request(
        port,
        "POST",
        &format!("/api/v1/projects/{project}/jobs"),
        Some(&ana.token),
        Some(&json!({ "kind": "export.render", "input": ids[0].parse::<i64>().unwrap() })),
    )
    .unwrap();
    assert_eq!(res.status, 400, "{}", res.body);
    assert_eq!(export(port, &viewer, project, json!({ "preset": "youtube" })).status, 403);

    let mut events = Events::connect(port, &ana.token, project).await.unwrap();
    // YouTube: 16:9, the 4:3 footage pillarboxed.
    let res = export(port, &ana, project, json!({ "preset": "youtube", "quality": "draft" }));
    assert_eq!(res.status, 201, "{}", res.body);
    let job = res.body["job"]["id"].as_i64().unwrap();
    assert_eq!(res.body["job"]["params"]["resolved"]["width"], 1920, "{}", res.body);
    assert!(
        res.body["job"]["params"].get("plan").is_none(),
        "the stored plan is not sent to clients"
    );
    let fin = wait_final(port, &ana, job).await;
    assert_eq!(fin["state"], "succeeded", "{fin}");
    let progress = events
        .wait_for(Duration::from_secs(5), |e| e["event"] == "progress" && e["job"]["id"] == job)
        .await
        .unwrap();
    assert!(progress["progress"]["eta_ms"].as_i64().is_some(), "{progress}");
    assert_eq!(progress["progress"]["total"], 120, "frames: {progress}");
    let asset = fin["result_asset"].as_i64().unwrap();
    let info = request(port, "GET", &format!("/api/v1/assets/{asset}"), Some(&ana.token), None).unwrap();
    assert_eq!(
        (info.body["kind"].as_str(), info.body["mime"].as_str(), info.body["width"].as_i64()),
        (Some("video"), Some("video/mp4"), Some(1920)),
        "{}",
        info.body
    );
    let thumb = request(port, "GET", &format!("/api/v1/assets/{asset}/thumbnail"), Some(&ana.token), None).unwrap();
    assert_eq!(thumb.status, 200);
    let youtube = download(port, &ana, asset, &dir, "youtube.mp4");
    let (codecs, w, h, frames, secs) = probe(&youtube);
    assert_eq!((codecs.as_str(), w, h, frames), ("h264,aac", 1920, 1080, 120), "4 s at 30 fps");
    assert!((secs - 4.0).abs() < 0.05, "{secs}");
    assert!(near(pixel_at(&youtube, 0.2, 960, 540, 1920), [254, 0, 0]), "red in the middle");
    assert!(near(pixel_at(&youtube, 0.2, 20, 540, 1920), [0, 0, 0]), "pillarbox");
    assert!(
        near(pixel_at(&youtube, 3.5, 960, 540, 1920), [0, 128, 0]),
        "green after the dissolve"
    );

    // TikTok: 9:16, cropped to fill.
    let res = export(
        port,
        &ana,
        project,
        json!({ "preset": "tiktok", "fit": "crop", "quality": "draft" }),
    );
    let fin = wait_final(port, &ana, res.body["job"]["id"].as_i64().unwrap()).await;
    assert_eq!(fin["state"], "succeeded", "{fin}");
    let tiktok = download(port, &ana, fin["result_asset"].as_i64().unwrap(), &dir, "tiktok.mp4");
    let (_, w, h, frames, _) = probe(&tiktok);
    assert_eq!((w, h, frames), (1080, 1920, 120));
    assert!(near(pixel_at(&tiktok, 0.2, 10, 10, 1080), [254, 0, 0]), "no bars when cropping");

    // Re-export as a ProRes master: the same timeline, nothing re-rendered.
    let res = export(port, &ana, project, json!({ "preset": "master" }));
    let fin = wait_final(port, &ana, res.body["job"]["id"].as_i64().unwrap()).await;
    assert_eq!(fin["state"], "succeeded", "{fin}");
    let master = download(port, &ana, fin["result_asset"].as_i64().unwrap(), &dir, "master.mov");
    let (codecs, w, h, frames, _) = probe(&master);
    assert_eq!((codecs.as_str(), w, h, frames), ("prores,pcm_s16le", 1920, 1080, 120));

    // Cancel a running export: no result, no file left.
    let res = export(port, &ana, project, json!({ "preset": "youtube", "quality": "high" }));
    let job = res.body["job"]["id"].as_i64().unwrap();
    events
        .wait_for(Duration::from_secs(30), |e| e["event"] == "progress" && e["job"]["id"] == job)
        .await
        .unwrap();
    let res = request(port, "POST", &format!("/api/v1/jobs/{job}/cancel"), Some(&ana.token), None).unwrap();
    assert!(res.status < 300, "{}", res.body);
    let fin = wait_final(port, &ana, job).await;
    assert_eq!(
        (fin["state"].as_str(), fin["result_asset"].as_i64()),
        (Some("cancelled"), None),
        "{fin}"
    );
    wait_idle(port, &ana, project).await;
    let leftovers: Vec<_> = std::fs::read_dir(server.data_dir.join("media/tmp"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "scratch files left: {leftovers:?}");

    // The command line renders the same timeline with a progress bar.
    let out = dir.join("cli.mp4");
    let cli = Command::new(moviola_tests::server::binary())
        .args(["export", &project.to_string(), "--preset", "square", "--quality", "draft", "-o"])
        .arg(&out)
        .arg("--data-dir")
        .arg(&server.data_dir)
        .env("MOVIOLA_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(cli.status.success(), "{stderr}");
    assert!(stderr.contains("100% 120/120 frames"), "a progress bar: {stderr}");
    let (codecs, w, h, frames, _) = probe(&out);
    assert_eq!((codecs.as_str(), w, h, frames), ("h264,aac", 1080, 1080, 120));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_whose_worker_dies_fails_alone_with_a_reason() {
    // Renders get 380 MiB of address space: enough to start, too little for a 1080p x264.
    let server = TestServer::start_with(&[("MOVIOLA_MEDIA_RENDER_MEMORY_MIB", "380")]);
    let port = server.port;
    let ana = register(port, "ana");
    let (project, doc) = create_project(port, &ana, "Short of memory");
    let dir = server.data_dir.join("gen");
    std::fs::create_dir_all(&dir).unwrap();
    let res = upload(port, &ana, project, &clip(&dir, "blue", 440), "blue.mp4");
    let asset = res.body["asset"]["id"].as_i64().unwrap().to_string();
    let mut sync = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    sync.wait_loaded().await.unwrap();
    sync.edit(&crate::add_track("v1")).await.unwrap();
    sync.edit(&EditOp::InsertClip {
        id: "c".into(),
        track: "v1".into(),
        asset,
        source_in: 0,
        source_out: seconds(2),
        start: 0,
    })
    .await
    .unwrap();
    sync.pump_until(Duration::from_secs(10), |c| c.acknowledged()).await.unwrap();
    let res = export(port, &ana, project, json!({ "preset": "youtube", "quality": "high" }));
    assert_eq!(res.status, 201, "{}", res.body);
    let fin = wait_final(port, &ana, res.body["job"]["id"].as_i64().unwrap()).await;
    assert_eq!(fin["state"], "failed", "{fin}");
    let error = fin["error"].as_str().unwrap();
    // x264 cannot allocate its frame buffers (an error from the worker), or the worker is
    // killed outright: either way a reason, and only this job.
    assert!(
        error.contains("cannot encode") || error.contains("memory") || error.contains("media worker stopped"),
        "{fin}"
    );
    eprintln!("export failed as expected: {}", fin["error"]);
    assert!(fin["result_asset"].is_null());
    // The server is unaffected: it answers, and the same timeline is still there to export.
    let health = request(port, "GET", "/health", None, None).unwrap();
    assert_eq!(health.status, 200);
    wait_idle(port, &ana, project).await;
    let leftovers: Vec<_> = std::fs::read_dir(server.data_dir.join("media/tmp"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "scratch files left: {leftovers:?}");
}
