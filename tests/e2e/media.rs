//! Video and audio uploads: probed and thumbnailed in the media worker process, never in the
//! server; bad files get a clear error and leave nothing behind.

use crate::ffmpeg;
use moviola_tests::TestServer;
use moviola_tests::http::{Account, create_project, get_with_headers, register, request, upload};

fn wait_final(port: u16, who: &Account, job: i64) -> serde_json::Value {
    for _ in 0..600 {
        let res = request(port, "GET", &format!("/api/v1/jobs/{job}"), Some(&who.token), None).unwrap();
        if ["succeeded", "failed", "cancelled"].contains(&res.body["job"]["state"].as_str().unwrap_or("")) {
            return res.body["job"].clone();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("job {job} did not finish in 30 s");
}

fn media_files(server: &TestServer, project: i64) -> usize {
    std::fs::read_dir(server.data_dir.join(format!("media/projects/{project}")))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn video_and_audio_uploads_are_probed_and_thumbnailed() {
    let server = TestServer::start();
    let port = server.port;
    let ana = register(port, "ana");
    let (project, _) = create_project(port, &ana, "Footage");
    let dir = server.data_dir.join("gen");
    std::fs::create_dir_all(&dir).unwrap();
    let mp4 = ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
        &dir.join("a.mp4"),
    );
    let res = upload(port, &ana, project, &mp4, "clip.mp4");
    assert_eq!(res.status, 201, "{}", res.body);
    let a = &res.body["asset"];
    assert_eq!(
        (a["kind"].as_str(), a["mime"].as_str(), a["width"].as_i64(), a["height"].as_i64()),
        (Some("video"), Some("video/mp4"), Some(320), Some(240))
    );
    let ms = a["duration_ms"].as_i64().unwrap();
    assert!((1900..=2200).contains(&ms), "{ms}");
    assert_eq!(a["media"]["streams"].as_array().unwrap().len(), 2);
    let thumb = request(
        port,
        "GET",
        &format!("/api/v1/assets/{}/thumbnail", a["id"]),
        Some(&ana.token),
        None,
    )
    .unwrap();
    assert_eq!((thumb.status, thumb.content_type.as_str()), (200, "image/png"));
    let img = image::load_from_memory(&thumb.bytes).unwrap();
    assert_eq!((img.width(), img.height()), (320, 240));

    // A signed link plays without a token, with byte ranges; tampering or expiry voids it.
    let link = request(port, "GET", &format!("/api/v1/assets/{}/url", a["id"]), Some(&ana.token), None).unwrap();
    let url = link.body["url"].as_str().unwrap().to_owned();
    let whole = get_with_headers(port, &url, &[]).unwrap();
    assert_eq!((whole.status, whole.content_type.as_str()), (200, "video/mp4"));
    assert_eq!(whole.bytes, mp4);
    let part = get_with_headers(port, &url, &[("Range", "bytes=100-199")]).unwrap();
    assert_eq!(part.status, 206);
    assert_eq!(part.bytes, mp4[100..200].to_vec());
    assert!(
        part.head
            .to_ascii_lowercase()
            .contains(&format!("content-range: bytes 100-199/{}", mp4.len())),
        "{}",
        part.head
    );
    let past = get_with_headers(port, &url, &[("Range", &format!("bytes={}-", mp4.len()))]).unwrap();
    assert_eq!(past.status, 416);
    let tampered = url.replace(&format!("/files/{}", a["id"]), "/files/999");
    assert_eq!(get_with_headers(port, &tampered, &[]).unwrap().status, 403);
    let short = request(
        port,
        "GET",
        &format!("/api/v1/assets/{}/url?ttl=1", a["id"]),
        Some(&ana.token),
        None,
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let expired = get_with_headers(port, short.body["url"].as_str().unwrap(), &[]).unwrap();
    assert_eq!(
        (
            expired.status,
            expired.body["error"]["message"].as_str().map(|m| m.contains("expired"))
        ),
        (403, Some(true))
    );

    // Derived media run as background jobs in the worker: a filmstrip, a proxy, a waveform.
    let derived = res.body["derived_jobs"].as_array().unwrap().clone();
    assert_eq!(derived.len(), 3, "{}", res.body);
    for d in &derived {
        let job = wait_final(port, &ana, d["job"].as_i64().unwrap());
        assert_eq!(job["state"], "succeeded", "{job}");
        assert_eq!(job["actual_credits"].as_i64(), Some(0), "derived media are free");
        let out = request(
            port,
            "GET",
            &format!("/api/v1/assets/{}/content", job["result_asset"]),
            Some(&ana.token),
            None,
        )
        .unwrap();
        match d["kind"].as_str().unwrap() {
            "media.filmstrip" => {
                let strip = image::load_from_memory(&out.bytes).unwrap();
                assert_eq!((strip.width(), strip.height()), (10 * 96, 72));
            }
            "media.proxy" => {
                // A browser-playable H.264 + AAC MP4, no larger than the source's 240 lines.
                let path = dir.join("proxy.mp4");
                std::fs::write(&path, &out.bytes).unwrap();
                let info = moviola_media::probe(&path).unwrap();
                let v = info.video().unwrap();
                assert_eq!((v.codec.as_str(), v.width, v.height), ("h264", 320, 240), "{info:?}");
                assert_eq!(info.audio().unwrap().codec, "aac");
                let ms = info.duration_ms.unwrap();
                assert!((1900..=2200).contains(&ms), "{ms}");
            }
            _ => {
                let w: serde_json::Value = serde_json::from_slice(&out.bytes).unwrap();
                let n = w["peaks"].as_array().unwrap().len();
                assert!((95..=105).contains(&n), "{n} peaks for 2 s at 50/s");
            }
        }
    }

    // The asset lists its finished derived media, and signed links that need no token: its
    // file and its still; a file link does not open the still.
    let view = request(port, "GET", &format!("/api/v1/assets/{}", a["id"]), Some(&ana.token), None).unwrap();
    let file_link = view.body["links"]["file"].as_str().unwrap().to_owned();
    let thumb_link = view.body["links"]["thumbnail"].as_str().unwrap().to_owned();
    assert_eq!(get_with_headers(port, &file_link, &[]).unwrap().bytes, mp4);
    let still = get_with_headers(port, &thumb_link, &[]).unwrap();
    assert_eq!((still.status, still.content_type.as_str()), (200, "image/png"));
    let swapped = file_link.replacen('?', "?v=thumb&", 1);
    assert_eq!(get_with_headers(port, &swapped, &[]).unwrap().status, 403);
    // Links are made for a member: when they leave the project, theirs stop working.
    let bo = register(port, "bo");
    moviola_tests::http::add_member(port, &ana, project, &bo, "viewer");
    let bo_view = request(port, "GET", &format!("/api/v1/assets/{}", a["id"]), Some(&bo.token), None).unwrap();
    let bo_link = bo_view.body["links"]["file"].as_str().unwrap().to_owned();
    assert_eq!(get_with_headers(port, &bo_link, &[]).unwrap().status, 200);
    let removed = request(
        port,
        "DELETE",
        &format!("/api/v1/projects/{project}/members/{}", bo.id),
        Some(&ana.token),
        None,
    )
    .unwrap();
    assert!(removed.status < 300, "{}", removed.body);
    assert_eq!(get_with_headers(port, &bo_link, &[]).unwrap().status, 403);
    for kind in ["filmstrip", "waveform", "proxy"] {
        assert!(view.body["derived"][kind].as_i64().is_some(), "{kind}: {}", view.body);
    }

    // Rotated phone footage reports its display size.
    let plain = dir.join("p.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x90:rate=30:duration=1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
        &plain,
    );
    let rotated = ffmpeg(
        &["-i", plain.to_str().unwrap(), "-c", "copy", "-metadata:s:v:0", "rotate=90"],
        &dir.join("r.mp4"),
    );
    let res = upload(port, &ana, project, &rotated, "phone.mp4");
    assert_eq!(
        (
            res.status,
            res.body["asset"]["width"].as_i64(),
            res.body["asset"]["height"].as_i64()
        ),
        (201, Some(90), Some(160)),
        "{}",
        res.body
    );

    let wav = ffmpeg(
        &["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100:duration=1", "-ac", "2"],
        &dir.join("t.wav"),
    );
    let res = upload(port, &ana, project, &wav, "tone.wav");
    assert_eq!(
        (res.status, res.body["asset"]["kind"].as_str(), res.body["asset"]["mime"].as_str()),
        (201, Some("audio"), Some("audio/wav")),
        "{}",
        res.body
    );
    assert!(res.body["asset"]["thumbnail_url"].is_null());
    assert_eq!(res.body["derived_jobs"].as_array().unwrap().len(), 1, "audio gets a waveform only");
    // A user-requested waveform with other parameters costs one credit per started minute.
    let audio = res.body["asset"]["id"].as_i64().unwrap();
    let job = request(
        port,
        "POST",
        &format!("/api/v1/projects/{project}/jobs"),
        Some(&ana.token),
        Some(&serde_json::json!({ "kind": "media.waveform", "input": audio, "params": { "peaks_per_second": 10 } })),
    )
    .unwrap();
    assert_eq!(job.status, 201, "{}", job.body);
    let fin = wait_final(port, &ana, job.body["job"]["id"].as_i64().unwrap());
    assert_eq!(
        (fin["state"].as_str(), fin["actual_credits"].as_i64()),
        (Some("succeeded"), Some(1)),
        "{fin}"
    );
    // A filmstrip needs video.
    let bad = request(
        port,
        "POST",
        &format!("/api/v1/projects/{project}/jobs"),
        Some(&ana.token),
        Some(&serde_json::json!({ "kind": "media.filmstrip", "input": audio })),
    )
    .unwrap();
    assert_eq!(bad.status, 400, "{}", bad.body);

    // A video cannot feed an image-only job.
    let job = request(
        port,
        "POST",
        &format!("/api/v1/projects/{project}/jobs"),
        Some(&ana.token),
        Some(&serde_json::json!({ "kind": "enhance.color", "input": a["id"] })),
    )
    .unwrap();
    assert_eq!(job.status, 400, "{}", job.body);
}

#[test]
fn bad_media_gets_a_clear_error_and_nothing_is_stored() {
    let server = TestServer::start_with(&[("MOVIOLA_MEDIA_MAX_UPLOAD_BYTES", "200000")]);
    let port = server.port;
    let ana = register(port, "ana");
    let (project, _) = create_project(port, &ana, "Bad media");
    let dir = server.data_dir.join("gen");
    std::fs::create_dir_all(&dir).unwrap();
    let mp4 = ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48:rate=10:duration=1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
        &dir.join("g.mp4"),
    );
    let big = ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x480:rate=25:duration=4",
            "-c:v",
            "libx264",
            "-crf",
            "10",
        ],
        &dir.join("big.mp4"),
    );
    assert!(big.len() > 200_000);
    for (bytes, name, status, code) in [
        (b"plain text pretending to be a video\n".repeat(50), "notes.mp4", 415, "not_media"),
        (mp4[..mp4.len() / 3].to_vec(), "truncated.mp4", 415, "not_media"),
        (Vec::new(), "empty.mp4", 415, "not_media"),
        (big.clone(), "huge.mp4", 413, "too_large"),
    ] {
        let res = upload(port, &ana, project, &bytes, name);
        assert_eq!(
            (res.status, res.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{name}: {}",
            res.body
        );
    }
    let listed = request(port, "GET", &format!("/api/v1/projects/{project}/assets"), Some(&ana.token), None).unwrap();
    assert!(listed.body["assets"].as_array().unwrap().is_empty());
    assert_eq!(media_files(&server, project), 0, "nothing stored");
    assert_eq!(
        std::fs::read_dir(server.data_dir.join("media/tmp")).map(|d| d.count()).unwrap_or(0),
        0,
        "no temporary files left"
    );
}

#[test]
fn a_worker_that_dies_fails_only_that_upload() {
    // 16 MiB of address space: the worker cannot even start FFmpeg, as if a decoder crashed.
    let server = TestServer::start_with(&[("MOVIOLA_MEDIA_WORKER_MEMORY_MIB", "16")]);
    let port = server.port;
    let ana = register(port, "ana");
    let (project, _) = create_project(port, &ana, "Crashy");
    let dir = server.data_dir.join("gen");
    std::fs::create_dir_all(&dir).unwrap();
    let mp4 = ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x48:rate=10:duration=1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ],
        &dir.join("c.mp4"),
    );
    let res = upload(port, &ana, project, &mp4, "c.mp4");
    assert_eq!(
        (res.status, res.body["error"]["code"].as_str()),
        (422, Some("media_worker_failed")),
        "{}",
        res.body
    );
    assert!(
        res.body["error"]["message"].as_str().unwrap().contains("could not be examined"),
        "{}",
        res.body
    );
    // The server is unaffected.
    assert_eq!(request(port, "GET", "/health", None, None).unwrap().status, 200);
    assert_eq!(media_files(&server, project), 0);
}
