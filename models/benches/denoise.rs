//! Video denoising (spatio-temporal non-local means) frames per second on the CPU backend at
//! 360p and 720p, with FFmpeg's `nlmeans` (spatial non-local means, C with SIMD) and `hqdn3d`
//! on the same size in the same run (`cargo bench -p moviola-models --bench denoise`).
//! Figures: docs/benchmarks.md.

use std::process::Command;
use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use moviola_models::backend::{Cpu, CpuDevice};
use moviola_models::denoise::NlMeans;

/// Seconds per frame of FFmpeg's `filter` on 25 frames of a moving test pattern.
fn ffmpeg(filter: &str, w: usize, h: usize) -> f64 {
    let run = |vf: &str| {
        let t0 = Instant::now();
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size={w}x{h}:rate=25,noise=alls=20:allf=t"))
            .args(["-frames:v", "25", "-vf", vf, "-f", "null", "-"])
            .status()
            .unwrap();
        assert!(status.success());
        t0.elapsed().as_secs_f64()
    };
    // The source and noise alone, taken off.
    ((run(filter) - run("null")) / 25.0).max(1e-6)
}

fn main() {
    for (w, h) in [(640usize, 360usize), (1280, 720)] {
        let frame = || Tensor::<Cpu, 3>::random([3, h, w], Distribution::Uniform(0.0, 1.0), &CpuDevice);
        let (a, b, c) = (frame(), frame(), frame());
        let nl = NlMeans::for_sigma(20.0 / 255.0);
        let _ = nl.denoise(b.clone(), &[a.clone(), c.clone()]).into_data();
        let t0 = Instant::now();
        let runs = 3;
        for _ in 0..runs {
            let _ = nl.denoise(b.clone(), &[a.clone(), c.clone()]).into_data();
        }
        let ours = t0.elapsed().as_secs_f64() / runs as f64;
        let nlmeans = ffmpeg("nlmeans=s=20", w, h);
        let hqdn3d = ffmpeg("hqdn3d=16:12:24:18", w, h);
        println!(
            "{w}×{h}: Moviola NL-means (7×7 in the frame, 5×5 in the frames before and after) {ours:.2} s/frame ({:.2} frames/s); \
             FFmpeg nlmeans (spatial, 15×15 search) {nlmeans:.3} s/frame ({:.2} frames/s, {:.2}× ours); hqdn3d {hqdn3d:.4} s/frame",
            1.0 / ours,
            1.0 / nlmeans,
            ours / nlmeans
        );
    }
}
