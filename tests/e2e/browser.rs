//! The browser studio (`web/`) in Debian's Chromium, driven by playwright-core
//! (`web/tests/studio.mjs`): two people in two browser contexts build a short video together
//! and export it. Screenshots of the main screens land in `target/screenshots/`.

use std::process::Command;

use moviola_tests::TestServer;

#[test]
fn two_people_build_and_export_a_video_in_the_browser() {
    let server = TestServer::start();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    assert!(
        root.join("web/dist/index.html").is_file(),
        "the studio is not built: scripts/test.sh runs `npm run build` in web/"
    );
    let dir = server.data_dir.join("gen");
    std::fs::create_dir_all(&dir).unwrap();
    let video = dir.join("clip.mp4");
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            // Two shots with a cut at 1.5 s, for the scene detection step (the studio test splits at 1 s).
            "testsrc2=size=320x240:rate=25:duration=1.5[a];smptebars=size=320x240:rate=25:duration=0.5[b];[a][b]concat=n=2:v=1:a=0",
        ])
        .args([
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
        ])
        .arg(&video)
        .status()
        .unwrap();
    assert!(status.success());
    let image = dir.join("still.png");
    image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 160]))
        .save(&image)
        .unwrap();
    let shots = root.join("target/screenshots");
    let out = Command::new("node")
        .arg(root.join("web/tests/studio.mjs"))
        .arg(format!("http://127.0.0.1:{}", server.port))
        .arg(&video)
        .arg(&image)
        .arg(&shots)
        .env("NODE_PATH", root.join("web/node_modules"))
        .output()
        .expect("node runs (scripts/test.sh installs it, Chromium and playwright-core)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the browser test failed:\n{stderr}");
    let last = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").to_owned();
    let result: serde_json::Value = serde_json::from_str(&last).unwrap_or_else(|_| panic!("no result line: {last}\n{stderr}"));
    // The downloaded export is the chosen format: the square preset, H.264 + AAC in MP4.
    let file = std::path::PathBuf::from(result["download"].as_str().unwrap());
    let info = moviola_media::probe(&file).unwrap();
    let v = info.video().unwrap();
    assert!(info.container.contains("mp4"), "{info:?}");
    assert_eq!((v.codec.as_str(), v.width, v.height), ("h264", 1080, 1080), "{info:?}");
    assert_eq!(info.audio().unwrap().codec, "aac");
    for shot in ["sign-in.png", "studio.png", "studio-bo.png", "job-estimate.png", "projects.png"] {
        assert!(shots.join(shot).is_file(), "screenshot {shot}");
    }
}
