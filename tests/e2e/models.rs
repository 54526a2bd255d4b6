//! Learned models through the job system: with Real-ESRGAN installed (`moviola models fetch`,
//! which scripts/test.sh runs) an upscale job uses it by default and its result matches the
//! ncnn reference; without it, asking for it fails preflight naming the command to run.

use std::path::PathBuf;
use std::time::Duration;

use moviola_tests::TestServer;
use moviola_tests::http::{create_project, register, request, upload};
use serde_json::json;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The fetched models (`moviola models fetch` into ./data/models, or `MOVIOLA_MODELS_DIR`).
fn fetched_models() -> PathBuf {
    let dir = std::env::var("MOVIOLA_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("data/models"));
    assert!(
        dir.join("realesrgan/realesr-animevideov3.mpk").is_file()
            && dir.join("realesrgan-x4plus/realesrgan-x4plus.mpk").is_file()
            && dir.join("rife/rife-v38.mpk").is_file()
            && dir.join("transnetv2/transnetv2.mpk").is_file(),
        "the models are not installed in {}: run `moviola models fetch` (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// Installs a fetched model's folder into a test server's (hard links where the file system
/// allows: the weights are tens of megabytes).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            let target = to.join(e.file_name());
            if std::fs::hard_link(e.path(), &target).is_err() {
                std::fs::copy(e.path(), &target).unwrap();
            }
        }
    }
}

/// `POST /projects/{project}/jobs` with `body`.
fn submit(port: u16, token: &str, project: i64, body: serde_json::Value) -> moviola_tests::http::Response {
    request(port, "POST", &format!("/api/v1/projects/{project}/jobs"), Some(token), Some(&body)).unwrap()
}

async fn wait_final(port: u16, token: &str, job: i64) -> serde_json::Value {
    // Up to 5 minutes: model jobs on a loaded 2-core machine are slow; only a failure waits it out.
    for _ in 0..6000 {
        let res = request(port, "GET", &format!("/api/v1/jobs/{job}"), Some(token), None).unwrap();
        if ["succeeded", "failed", "cancelled"].contains(&res.body["job"]["state"].as_str().unwrap_or("")) {
            return res.body["job"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {job} did not finish");
}

/// Half a second of a moving test pattern at 10 fps and `size` with a tone, H.264 + AAC.
fn half_second_with_sound(clip: &std::path::Path, size: &str) {
    let picture = format!("testsrc2=size={size}:rate=10:duration=0.5");
    crate::ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            &picture,
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=0.5",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
        clip,
    );
}

/// The answer to a job whose model is not installed: refused, naming the command to run.
fn refused_until_fetched(res: &moviola_tests::http::Response, model: &str) {
    assert_eq!(
        (res.status, res.body["error"]["code"].as_str()),
        (400, Some("model_not_installed")),
        "{}",
        res.body
    );
    let message = res.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("moviola models fetch {model}")), "{message}");
}

/// Submits a job that must be accepted and succeed; the finished job.
async fn succeed(port: u16, token: &str, project: i64, body: serde_json::Value) -> serde_json::Value {
    let res = submit(port, token, project, body);
    assert_eq!(res.status, 201, "{}", res.body);
    let fin = wait_final(port, token, res.body["job"]["id"].as_i64().unwrap()).await;
    assert_eq!(fin["state"], "succeeded", "{fin}");
    fin
}

/// A finished job's result asset: its view, or (`content`) its bytes.
fn result_of(port: u16, token: &str, fin: &serde_json::Value, content: bool) -> moviola_tests::http::Response {
    let path = format!("/api/v1/assets/{}{}", fin["result_asset"], if content { "/content" } else { "" });
    request(port, "GET", &path, Some(token), None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upscale_uses_real_esrgan_where_installed_and_matches_its_reference() {
    let server = TestServer::start();
    let port = server.port;
    let ana = register(port, "ana");
    let (project, _) = create_project(port, &ana, "Models");
    let fixtures = repo().join("models/tests/fixtures/realesrgan");
    let input = std::fs::read(fixtures.join("chelsea.png")).unwrap();
    let asset = upload(port, &ana, project, &input, "chelsea.png").body["asset"]["id"]
        .as_i64()
        .unwrap();
    let upscale = |params: serde_json::Value| {
        submit(
            port,
            &ana.token,
            project,
            json!({ "kind": "enhance.upscale", "input": asset, "params": params }),
        )
    };

    // Not installed yet: the classical filter by default, and asking for the model says what to run.
    let res = upscale(json!({ "scale": 4, "model": "realesrgan" }));
    assert_eq!(res.status, 400, "{}", res.body);
    assert_eq!(res.body["error"]["code"], "model_not_installed");
    assert!(res.body["error"]["message"].as_str().unwrap().contains("moviola models fetch"));
    let res = upscale(json!({ "scale": 4 }));
    assert_eq!(res.body["job"]["params"]["model"], "classical", "{}", res.body);
    wait_final(port, &ana.token, res.body["job"]["id"].as_i64().unwrap()).await;

    // Installed: the default, and the result is ncnn's within one level.
    copy_dir(&fetched_models().join("realesrgan"), &server.data_dir.join("models/realesrgan"));
    let res = upscale(json!({ "scale": 4 }));
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.body["job"]["params"]["model"], "realesrgan", "{}", res.body);
    let fin = wait_final(port, &ana.token, res.body["job"]["id"].as_i64().unwrap()).await;
    assert_eq!(fin["state"], "succeeded", "{fin}");
    let out = result_of(port, &ana.token, &fin, true);
    let ours = image::load_from_memory(&out.bytes).unwrap().to_rgb8();
    let reference = image::open(fixtures.join("chelsea-x4-ncnn.png")).unwrap().to_rgb8();
    assert_eq!(ours.dimensions(), reference.dimensions());
    let max = ours
        .as_raw()
        .iter()
        .zip(reference.as_raw())
        .map(|(a, b)| (*a as i32 - *b as i32).abs())
        .max()
        .unwrap();
    assert!(max <= 1, "the job's result is {max}/255 from ncnn's");
    // The photographic model: refused until installed, naming the command; then ×4.
    let res = upscale(json!({ "scale": 4, "model": "realesrgan_x4plus" }));
    refused_until_fetched(&res, "realesrgan-x4plus");
    copy_dir(
        &fetched_models().join("realesrgan-x4plus"),
        &server.data_dir.join("models/realesrgan-x4plus"),
    );
    let res = upscale(json!({ "scale": 4, "model": "realesrgan_x4plus" }));
    assert_eq!(res.status, 201, "{}", res.body);
    let fin = wait_final(port, &ana.token, res.body["job"]["id"].as_i64().unwrap()).await;
    assert_eq!(fin["state"], "succeeded", "{fin}");
    let out = result_of(port, &ana.token, &fin, false);
    assert_eq!(
        (out.body["width"].as_i64(), out.body["height"].as_i64()),
        (Some(192), Some(192)),
        "{}",
        out.body
    );
    // A picture to a target height: the model at ×3, then down to 100 lines.
    let res = upscale(json!({ "height": 100 }));
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(
        (
            res.body["job"]["params"]["model"].as_str(),
            res.body["job"]["params"]["scale"].as_f64()
        ),
        (Some("realesrgan"), Some(3.0))
    );
    let fin = wait_final(port, &ana.token, res.body["job"]["id"].as_i64().unwrap()).await;
    assert_eq!(fin["state"], "succeeded", "{fin}");
    let out = result_of(port, &ana.token, &fin, false);
    assert_eq!(
        (out.body["width"].as_i64(), out.body["height"].as_i64()),
        (Some(100), Some(100)),
        "{}",
        out.body
    );
    // Scales the model cannot do are refused with the reason; so are parameters that are not
    // an object (serde would read a struct from an array).
    for bad in [json!({ "scale": 2.5, "model": "realesrgan" }), json!([4]), json!("x")] {
        let res = upscale(bad.clone());
        assert_eq!(
            (res.status, res.body["error"]["code"].as_str()),
            (400, Some("invalid_params")),
            "{bad}: {}",
            res.body
        );
    }
    assert_eq!(request(port, "GET", "/health", None, None).unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_cleanup_denoises_and_levels_a_noisy_recording() {
    let server = TestServer::start();
    let port = server.port;
    let ana = register(port, "ana");
    let (project, _) = create_project(port, &ana, "Dialogue");
    let dir = server.data_dir.join("gen");
    std::fs::create_dir_all(&dir).unwrap();
    let speech = dir.join("speech.wav");
    let status = std::process::Command::new("espeak-ng")
        .arg("-w")
        .arg(&speech)
        .arg("Testing the dialogue clean up of a noisy recording.")
        .status()
        .expect("espeak-ng (scripts/setup.sh)");
    assert!(status.success());
    // Speech with pink-ish noise under it, as a video's sound would have.
    let noisy = dir.join("noisy.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=gray:size=160x120:rate=25:duration=4",
            "-i",
        ])
        .arg(&speech)
        .args(["-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.05:duration=4:seed=7"])
        .args([
            "-filter_complex",
            "[1:a]apad[s];[s][2:a]amix=inputs=2:duration=shortest:normalize=0[a]",
            "-map",
            "0:v",
            "-map",
            "[a]",
        ])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"])
        .arg(&noisy)
        .status()
        .unwrap();
    assert!(status.success());
    let asset = upload(port, &ana, project, &std::fs::read(&noisy).unwrap(), "noisy.mp4").body["asset"]["id"]
        .as_i64()
        .unwrap();
    let res = submit(
        port,
        &ana.token,
        project,
        json!({ "kind": "audio.cleanup", "input": asset, "params": { "loudness": "podcast" } }),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let fin = wait_final(port, &ana.token, res.body["job"]["id"].as_i64().unwrap()).await;
    assert_eq!(fin["state"], "succeeded", "{fin}");
    let result = result_of(port, &ana.token, &fin, false);
    assert_eq!(
        (result.body["kind"].as_str(), result.body["mime"].as_str()),
        (Some("audio"), Some("audio/mp4")),
        "{}",
        result.body
    );
    let ms = result.body["duration_ms"].as_i64().unwrap();
    assert!((3900..=4200).contains(&ms), "{ms}");
    // The noise floor (the last second, after the speech) is far lower than before.
    let file = dir.join("cleaned.m4a");
    let bytes = result_of(port, &ana.token, &fin, true).bytes;
    std::fs::write(&file, bytes).unwrap();
    let rms = |path: &std::path::Path| {
        let s = moviola_media::audio::decode(path, |_| {}).unwrap();
        let tail = &s[s.len() - 48_000 + 4_800..s.len() - 4_800];
        (tail.iter().map(|v| f64::from(v[0]).powi(2)).sum::<f64>() / tail.len() as f64).sqrt()
    };
    let (before, after) = (rms(&noisy), rms(&file));
    assert!(after < before / 4.0, "noise floor {before} → {after}");
    // A bad combination is refused with the reason.
    let res = submit(
        port,
        &ana.token,
        project,
        json!({ "kind": "audio.cleanup", "input": asset, "params": { "denoise": false, "loudness": "off" } }),
    );
    assert_eq!(
        (res.status, res.body["error"]["code"].as_str()),
        (400, Some("invalid_params")),
        "{}",
        res.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stabilize_steadies_an_uploaded_video_into_a_new_asset() {
    let server = TestServer::start();
    let port = server.port;
    let ana = register(port, "ana");
    let (project, _) = create_project(port, &ana, "Handheld");
    let dir = server.data_dir.join("gen");
    std::fs::create_dir_all(&dir).unwrap();
    let shaky = dir.join("shaky.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg("mandelbrot=size=400x260:rate=25,trim=duration=2,crop=w=320:h=200:x='40+22*sin(t*9)':y='30+15*sin(t*7+1)'")
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(&shaky)
        .status()
        .unwrap();
    assert!(status.success());
    let asset = upload(port, &ana, project, &std::fs::read(&shaky).unwrap(), "shaky.mp4").body["asset"]["id"]
        .as_i64()
        .unwrap();
    let fin = succeed(port, &ana.token, project, json!({ "kind": "enhance.stabilize", "input": asset })).await;
    let result = result_of(port, &ana.token, &fin, false);
    assert_eq!(
        (
            result.body["kind"].as_str(),
            result.body["width"].as_i64(),
            result.body["height"].as_i64()
        ),
        (Some("video"), Some(320), Some(200)),
        "{}",
        result.body
    );
    let thumb = request(
        port,
        "GET",
        &format!("/api/v1/assets/{}/thumbnail", fin["result_asset"]),
        Some(&ana.token),
        None,
    )
    .unwrap();
    assert_eq!(thumb.status, 200);
    let res = submit(
        port,
        &ana.token,
        project,
        json!({ "kind": "enhance.stabilize", "input": asset, "params": { "smoothing": 1000 } }),
    );
    assert_eq!((res.status, res.body["error"]["code"].as_str()), (400, Some("invalid_params")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footage_is_upscaled_frame_by_frame() {
    let server = TestServer::start();
    let port = server.port;
    let ana = register(port, "ana");
    let (project, _) = create_project(port, &ana, "Tiny footage");
    copy_dir(&fetched_models().join("realesrgan"), &server.data_dir.join("models/realesrgan"));
    copy_dir(
        &fetched_models().join("realesrgan-x4plus"),
        &server.data_dir.join("models/realesrgan-x4plus"),
    );
    let dir = server.data_dir.join("gen");
    std::fs::create_dir_all(&dir).unwrap();
    let clip = dir.join("tiny.mp4");
    half_second_with_sound(&clip, "64x48");
    let asset = upload(port, &ana, project, &std::fs::read(&clip).unwrap(), "tiny.mp4").body["asset"]["id"]
        .as_i64()
        .unwrap();
    // To a target height: Real-ESRGAN ×3 then Lanczos down to 120 lines (1.5× is not a model
    // factor), or the classical filter straight there; beyond 4× is refused.
    let res = submit(
        port,
        &ana.token,
        project,
        json!({ "kind": "enhance.upscale", "input": asset, "params": { "height": 240 } }),
    );
    assert_eq!(
        (res.status, res.body["error"]["code"].as_str()),
        (400, Some("invalid_params")),
        "{}",
        res.body
    );
    for (params, size, model) in [
        (json!({ "scale": 4 }), (256, 192), "realesrgan"),
        (json!({ "scale": 2, "model": "classical" }), (128, 96), "classical"),
        (json!({ "height": 120 }), (160, 120), "realesrgan"),
        (json!({ "height": 72, "model": "classical" }), (96, 72), "classical"),
        // The photographic model: ×4, then Lanczos to ×2.
        (json!({ "scale": 2, "model": "realesrgan_x4plus" }), (128, 96), "realesrgan_x4plus"),
    ] {
        let res = submit(
            port,
            &ana.token,
            project,
            json!({ "kind": "enhance.upscale", "input": asset, "params": params }),
        );
        assert_eq!(res.status, 201, "{}", res.body);
        assert_eq!(res.body["job"]["params"]["model"], model);
        let fin = wait_final(port, &ana.token, res.body["job"]["id"].as_i64().unwrap()).await;
        assert_eq!(fin["state"], "succeeded", "{fin}");
        let out = result_of(port, &ana.token, &fin, false);
        assert_eq!(
            (out.body["kind"].as_str(), out.body["width"].as_i64(), out.body["height"].as_i64()),
            (Some("video"), Some(size.0), Some(size.1)),
            "{}",
            out.body
        );
        let streams = out.body.to_string();
        assert!(streams.contains("\"h264\"") || out.body["mime"] == "video/mp4", "{streams}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scene_cuts_become_markers_on_the_timeline() {
    use moviola_crdt::time::{millis, seconds};
    let server = TestServer::start();
    let port = server.port;
    let ana = register(port, "ana");
    let (project, doc) = create_project(port, &ana, "Cuts");
    let dir = server.data_dir.join("gen");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cuts.mp4");
    let graph = "testsrc2=size=320x240:rate=25:duration=1[a];mandelbrot=size=320x240:rate=25,trim=duration=1,setpts=PTS-STARTPTS[b];\
                 smptebars=size=320x240:rate=25:duration=1[c];color=c=0x336699:size=320x240:rate=25:duration=1,noise=alls=30:allf=t[d];\
                 [a][b][c][d]concat=n=4:v=1:a=0,format=yuv420p";
    crate::ffmpeg(&["-filter_complex", graph, "-c:v", "libx264", "-crf", "18"], &file);
    let asset = upload(port, &ana, project, &std::fs::read(&file).unwrap(), "cuts.mp4").body["asset"]["id"]
        .as_i64()
        .unwrap();
    // The footage on the timeline from its 0.5 s, at 10 s.
    let mut sync = moviola_tests::SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    sync.wait_loaded().await.unwrap();
    sync.edit(&crate::add_track("v1")).await.unwrap();
    sync.edit(&moviola_crdt::EditOp::InsertClip {
        id: "shot".into(),
        track: "v1".into(),
        asset: asset.to_string(),
        source_in: millis(500),
        source_out: millis(3500),
        start: seconds(10),
    })
    .await
    .unwrap();
    sync.pump_until(Duration::from_secs(10), |c| c.acknowledged()).await.unwrap();
    let fin = succeed(port, &ana.token, project, json!({ "kind": "analyze.scenes", "input": asset })).await;
    let list = result_of(port, &ana.token, &fin, true);
    let cuts: Vec<i64> = list.body["cuts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["time_ms"].as_i64().unwrap())
        .collect();
    assert_eq!(cuts, vec![1000, 2000, 3000], "{}", list.body);
    // A cut list is not a clip: no placeholder for it.
    let res = submit(
        port,
        &ana.token,
        project,
        json!({ "kind": "analyze.scenes", "input": asset, "placeholder": { "track": "v1", "start": 0, "duration": 705_600_000 } }),
    );
    assert_eq!(
        (res.status, res.body["error"]["code"].as_str()),
        (400, Some("invalid_placeholder")),
        "{}",
        res.body
    );
    // Markers where the cuts fall on the timeline: 10 s + (cut − 0.5 s).
    sync.pump_until(Duration::from_secs(10), |c| c.view().markers.len() == 3)
        .await
        .unwrap();
    let times: Vec<i64> = sync.view().markers.iter().map(|m| m.time).collect();
    assert_eq!(times, vec![millis(10_500), millis(11_500), millis(12_500)]);
}

/// OpenCV's sample videos (`scripts/test-media.sh`).
fn test_media(name: &str) -> PathBuf {
    let path = std::env::var("MOVIOLA_TEST_MEDIA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("data/test-media"))
        .join(name);
    assert!(path.is_file(), "{} is missing: run scripts/test-media.sh", path.display());
    path
}

/// Real footage with a hard cut at 2 s and a 0.5 s dissolve ending at 4 s: TransNetV2 (the
/// default once installed) finds both, and `split` cuts the clip on the timeline into its
/// three shots for every collaborator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transnet_finds_cuts_and_dissolves_and_splits_the_clip() {
    use moviola_crdt::time::{TICKS_PER_SECOND, millis};
    let server = TestServer::start();
    let port = server.port;
    let ana = register(port, "ana");
    let (project, doc) = create_project(port, &ana, "Shots");
    let dir = server.data_dir.join("gen");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("shots.mp4");
    let [a, b, c] = ["vtest.avi", "cup.mp4", "box.mp4"].map(test_media);
    let graph = "[0:v]scale=320:240,setsar=1,fps=25,trim=duration=2,setpts=PTS-STARTPTS,format=yuv420p,settb=AVTB[a];\
                 [1:v]scale=320:240,setsar=1,fps=25,trim=duration=2,setpts=PTS-STARTPTS,format=yuv420p,settb=AVTB[b];\
                 [2:v]scale=320:240,setsar=1,fps=25,trim=duration=2,setpts=PTS-STARTPTS,format=yuv420p,settb=AVTB[c];\
                 [a][b]concat=n=2:v=1:a=0[ab];[ab][c]xfade=transition=fade:duration=0.5:offset=3.5,format=yuv420p";
    let mut args: Vec<&str> = Vec::new();
    let paths = [a.to_str().unwrap(), b.to_str().unwrap(), c.to_str().unwrap()];
    for p in &paths {
        args.extend(["-i", p]);
    }
    args.extend(["-filter_complex", graph, "-c:v", "libx264", "-crf", "18"]);
    crate::ffmpeg(&args, &file);
    let asset = upload(port, &ana, project, &std::fs::read(&file).unwrap(), "shots.mp4").body["asset"]["id"]
        .as_i64()
        .unwrap();
    let job = json!({ "kind": "analyze.scenes", "input": asset, "params": { "model": "transnetv2", "split": true, "markers": false } });
    // Asked for before it is installed: refused, naming the command.
    let res = submit(port, &ana.token, project, job.clone());
    refused_until_fetched(&res, "transnetv2");
    copy_dir(&fetched_models().join("transnetv2"), &server.data_dir.join("models/transnetv2"));
    // A threshold outside the detector's range.
    let res = submit(
        port,
        &ana.token,
        project,
        json!({ "kind": "analyze.scenes", "input": asset, "params": { "threshold": 10 } }),
    );
    assert_eq!(
        (res.status, res.body["error"]["code"].as_str()),
        (400, Some("invalid_params")),
        "{}",
        res.body
    );

    let mut sync = moviola_tests::SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    sync.wait_loaded().await.unwrap();
    sync.edit(&crate::add_track("v1")).await.unwrap();
    sync.edit(&moviola_crdt::EditOp::InsertClip {
        id: "reel".into(),
        track: "v1".into(),
        asset: asset.to_string(),
        source_in: 0,
        source_out: millis(5500),
        start: 0,
    })
    .await
    .unwrap();
    sync.pump_until(Duration::from_secs(10), |c| c.acknowledged()).await.unwrap();

    // The default detector is now TransNetV2, with its default threshold, stored with the job.
    let res = submit(port, &ana.token, project, job);
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.body["job"]["params"]["model"], "transnetv2");
    assert_eq!(res.body["job"]["params"]["threshold"], 0.5);
    let fin = wait_final(port, &ana.token, res.body["job"]["id"].as_i64().unwrap()).await;
    assert_eq!(fin["state"], "succeeded", "{fin}");
    let list = result_of(port, &ana.token, &fin, true);
    assert_eq!(list.body["method"], "transnetv2", "{}", list.body);
    assert_eq!(list.body["frames"], 138, "{}", list.body);
    let cuts: Vec<i64> = list.body["cuts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["time_ms"].as_i64().unwrap())
        .collect();
    // The cut's first new frame exactly; the new shot inside the dissolve (3.5 s to 4 s).
    assert_eq!(cuts.len(), 2, "{}", list.body);
    assert_eq!(cuts[0], 2000, "{}", list.body);
    assert!((3500..=4000).contains(&cuts[1]), "{}", list.body);

    // The clip is split at both, for everyone: three shots end to end, same footage.
    sync.pump_until(Duration::from_secs(10), |c| c.view().tracks[0].clips.len() == 3)
        .await
        .unwrap();
    let view = sync.view();
    let clips = &view.tracks[0].clips;
    let ins: Vec<i64> = clips.iter().map(|c| c.source_in).collect();
    // Each new shot starts at its first frame exactly (the cut list's ticks; at 25 fps whole
    // milliseconds too).
    let ticks: Vec<i64> = list.body["cuts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ticks"].as_i64().unwrap())
        .collect();
    let per_ms = TICKS_PER_SECOND / 1000;
    assert_eq!(ticks, vec![cuts[0] * per_ms, cuts[1] * per_ms]);
    assert_eq!(ins, vec![0, ticks[0], ticks[1]]);
    assert_eq!(clips[0].id, "reel");
    assert_eq!(clips[2].source_out, millis(5500));
    assert!(clips.windows(2).all(|w| w[0].start + w[0].duration() == w[1].start));
    assert!(view.markers.is_empty(), "markers were not asked for");

    // FFmpeg's scdet on the same footage, for comparison: the hard cut.
    let res = submit(
        port,
        &ana.token,
        project,
        json!({ "kind": "analyze.scenes", "input": asset, "params": { "model": "scdet", "markers": false } }),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let fin = wait_final(port, &ana.token, res.body["job"]["id"].as_i64().unwrap()).await;
    let list = result_of(port, &ana.token, &fin, true);
    assert_eq!(list.body["method"], "scdet");
    eprintln!("scdet on the same footage: {}", list.body["cuts"]);
    assert!(
        list.body["cuts"].as_array().unwrap().iter().any(|c| c["time_ms"] == 2000),
        "{}",
        list.body
    );
}

/// PSNR (all planes) of `a` against `b`, by FFmpeg's psnr filter.
fn psnr(a: &std::path::Path, b: &std::path::Path) -> f64 {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-i"])
        .arg(a)
        .arg("-i")
        .arg(b)
        .args(["-lavfi", "psnr", "-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    log.split("average:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no PSNR in {log}"))
}

/// Noisy real footage (pedestrians, Gaussian-like noise added) is denoised frame by frame with
/// live previews, its sound kept; a sound-only upload is denoised by RNNoise into an M4A.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denoise_cleans_noisy_footage_and_sound() {
    let server = TestServer::start();
    let port = server.port;
    let ana = register(port, "ana");
    let (project, _) = create_project(port, &ana, "Grain");
    let dir = server.data_dir.join("gen");
    std::fs::create_dir_all(&dir).unwrap();
    let vtest = test_media("vtest.avi");
    let clean = dir.join("clean.mkv");
    let noisy = dir.join("noisy.mp4");
    let picture = "trim=start_frame=200:end_frame=210,setpts=PTS-STARTPTS,crop=320:240";
    crate::ffmpeg(
        &["-i", vtest.to_str().unwrap(), "-vf", picture, "-c:v", "ffv1", "-pix_fmt", "yuv420p"],
        &clean,
    );
    crate::ffmpeg(
        &[
            "-i",
            clean.to_str().unwrap(),
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            "-vf",
            "noise=alls=24:allf=t",
            "-c:v",
            "libx264",
            "-crf",
            "4",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
        &noisy,
    );
    let asset = upload(port, &ana, project, &std::fs::read(&noisy).unwrap(), "noisy.mp4").body["asset"]["id"]
        .as_i64()
        .unwrap();
    let mut events = moviola_tests::Events::connect(port, &ana.token, project).await.unwrap();
    let bad = submit(
        port,
        &ana.token,
        project,
        json!({ "kind": "enhance.denoise", "input": asset, "params": { "sigma": 500 } }),
    );
    assert_eq!(
        (bad.status, bad.body["error"]["code"].as_str()),
        (400, Some("invalid_params")),
        "{}",
        bad.body
    );
    let res = submit(port, &ana.token, project, json!({ "kind": "enhance.denoise", "input": asset }));
    assert_eq!(res.status, 201, "{}", res.body);
    let job = res.body["job"]["id"].as_i64().unwrap();
    let fin = wait_final(port, &ana.token, job).await;
    assert_eq!(fin["state"], "succeeded", "{fin}");
    let result = fin["result_asset"].as_i64().unwrap();
    let out = request(port, "GET", &format!("/api/v1/assets/{result}"), Some(&ana.token), None).unwrap();
    assert_eq!(
        (out.body["kind"].as_str(), out.body["width"].as_i64(), out.body["height"].as_i64()),
        (Some("video"), Some(320), Some(240)),
        "{}",
        out.body
    );
    let denoised = crate::export::download(port, &ana, result, &dir, "denoised.mp4");
    assert!(moviola_media::probe(&denoised).unwrap().audio().is_some(), "the sound is kept");
    let (before, after) = (psnr(&noisy, &clean), psnr(&denoised, &clean));
    eprintln!("denoise e2e: {before:.2} dB noisy → {after:.2} dB denoised (against the clean footage)");
    assert!(after > before + 3.0, "{before:.2} dB → {after:.2} dB");
    // The watchers saw the result frames as they came (a PNG preview in the progress).
    events
        .wait_for(Duration::from_secs(10), |e| e["job"]["id"] == job && e["event"] == "succeeded")
        .await
        .unwrap();
    assert!(
        events.of_job(job).iter().any(|e| e["progress"]["preview"]
            .as_str()
            .is_some_and(|p| p.starts_with("data:image/png;base64,"))),
        "a preview in the progress events"
    );

    // Sound only: RNNoise, as M4A.
    let wav = dir.join("hiss.wav");
    crate::ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:duration=1,volume=0.3",
            "-f",
            "lavfi",
            "-i",
            "anoisesrc=a=0.05:d=1",
            "-filter_complex",
            "amix=inputs=2",
        ],
        &wav,
    );
    let sound = upload(port, &ana, project, &std::fs::read(&wav).unwrap(), "hiss.wav").body["asset"]["id"]
        .as_i64()
        .unwrap();
    let fin = succeed(port, &ana.token, project, json!({ "kind": "enhance.denoise", "input": sound })).await;
    let out = result_of(port, &ana.token, &fin, false);
    assert_eq!(
        (out.body["kind"].as_str(), out.body["mime"].as_str()),
        (Some("audio"), Some("audio/mp4")),
        "{}",
        out.body
    );
    assert!(out.body["name"].as_str().unwrap().ends_with(".m4a"), "{}", out.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rife_doubles_the_frame_rate_of_footage() {
    let server = TestServer::start();
    let port = server.port;
    let ana = register(port, "ana");
    let (project, _) = create_project(port, &ana, "Smooth");
    let dir = server.data_dir.join("gen");
    std::fs::create_dir_all(&dir).unwrap();
    let clip = dir.join("walk.mp4");
    half_second_with_sound(&clip, "96x64");
    let asset = upload(port, &ana, project, &std::fs::read(&clip).unwrap(), "walk.mp4").body["asset"]["id"]
        .as_i64()
        .unwrap();
    let job = json!({ "kind": "enhance.interpolate", "input": asset, "params": { "factor": 2 } });
    // Without the model: refused, naming the command.
    let res = submit(port, &ana.token, project, job.clone());
    refused_until_fetched(&res, "rife");
    copy_dir(&fetched_models().join("rife"), &server.data_dir.join("models/rife"));
    let fin = succeed(port, &ana.token, project, job).await;
    let file = dir.join("smooth.mp4");
    let bytes = result_of(port, &ana.token, &fin, true).bytes;
    std::fs::write(&file, bytes).unwrap();
    let info = moviola_media::probe(&file).unwrap();
    let v = info.video().unwrap();
    assert_eq!((v.width, v.height, v.frame_rate), (96, 64, (20, 1)), "{info:?}");
    // Twice the frames, the same length: the last frame also fills the time after it.
    let ms = info.duration_ms.unwrap();
    assert!((ms - 500).abs() <= 60, "{ms} ms for 0.5 s of footage");
    assert!(info.audio().is_some(), "the sound is kept");

    // To a target rate: 10 → 25 fps needs 4× (40 fps) retimed to 25; the same length.
    for (fps, code) in [(8.0, "invalid_params"), (50.0, "invalid_params")] {
        let res = submit(
            port,
            &ana.token,
            project,
            json!({ "kind": "enhance.interpolate", "input": asset, "params": { "fps": fps } }),
        );
        assert_eq!(
            (res.status, res.body["error"]["code"].as_str()),
            (400, Some(code)),
            "{fps}: {}",
            res.body
        );
    }
    let res = submit(
        port,
        &ana.token,
        project,
        json!({ "kind": "enhance.interpolate", "input": asset, "params": { "fps": 25 } }),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.body["job"]["params"]["factor"], 4, "{}", res.body);
    let fin = wait_final(port, &ana.token, res.body["job"]["id"].as_i64().unwrap()).await;
    assert_eq!(fin["state"], "succeeded", "{fin}");
    let file = dir.join("smooth25.mp4");
    let bytes = result_of(port, &ana.token, &fin, true).bytes;
    std::fs::write(&file, bytes).unwrap();
    let info = moviola_media::probe(&file).unwrap();
    assert_eq!(info.video().unwrap().frame_rate, (25, 1), "{info:?}");
    let frames = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let frames: i64 = String::from_utf8_lossy(&frames.stdout).trim().parse().unwrap();
    assert!((12..=13).contains(&frames), "{frames} frames for 0.5 s at 25 fps");
    let ms = info.duration_ms.unwrap();
    assert!((ms - 500).abs() <= 60, "{ms} ms for 0.5 s of footage");
}
