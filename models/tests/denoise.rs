//! Video denoising (spatio-temporal non-local means on burn) on real footage with Gaussian
//! noise of known strength: PSNR against the clean frames, beside FFmpeg's `hqdn3d` and
//! `nlmeans` on the same noisy frames (each at its best of a few strengths). Footage: OpenCV's
//! sample videos (`scripts/test-media.sh`).

mod common;

use std::process::Command;

use common::{ffmpeg_pipe, test_media};

use moviola_models::Frame;
use moviola_models::backend::{Cpu, CpuDevice};
use moviola_models::denoise::{NlMeans, estimate_sigma};

const W: usize = 320;
const H: usize = 240;

/// Three consecutive frames from `first`, the middle 320×240 of the picture, RGB.
fn clean_frames(name: &str, first: usize) -> Vec<Vec<u8>> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(test_media(name))
        .args(["-vf", &format!("trim=start_frame={first}:end_frame={},crop={W}:{H}", first + 3)])
        .args(["-fps_mode", "passthrough"])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.len(), 3 * W * H * 3);
    out.stdout.chunks(W * H * 3).map(<[u8]>::to_vec).collect()
}

/// Gaussian noise of standard deviation `sigma` levels, the same on every run.
fn add_noise(frame: &[u8], sigma: f64, seed: u64) -> Vec<u8> {
    let mut s = seed;
    let mut uniform = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    frame
        .iter()
        .map(|v| {
            let g = (-2.0 * uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos();
            (f64::from(*v) + g * sigma).round().clamp(0.0, 255.0) as u8
        })
        .collect()
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2)).sum::<f64>() / a.len() as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-12)).log10()
}

/// FFmpeg's `filter` over the three noisy frames; the middle one.
fn ffmpeg_filter(noisy: &[Vec<u8>], filter: &str) -> Vec<u8> {
    let size = format!("{W}x{H}");
    let out = ffmpeg_pipe(
        &[
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", &size, "-i", "pipe:", "-vf", filter, "-f", "rawvideo", "-pix_fmt", "rgb24",
            "pipe:",
        ],
        &noisy.concat(),
    );
    out[W * H * 3..2 * W * H * 3].to_vec()
}

#[test]
fn a_clean_frame_is_left_nearly_alone() {
    let clean = clean_frames("box.mp4", 200);
    let estimated = estimate_sigma(W, H, &clean[1]);
    let tensor = |f: &Vec<u8>| Frame::new(W as u32, H as u32, f.clone()).unwrap().to_tensor::<Cpu>(&CpuDevice);
    let out = NlMeans::for_sigma(estimated / 255.0).denoise(tensor(&clean[1]), &[tensor(&clean[0]), tensor(&clean[2])]);
    let p = psnr(&Frame::from_tensor(out).unwrap().data, &clean[1]);
    eprintln!("clean box.mp4 (estimated σ {estimated:.1}): {p:.2} dB from the original");
    assert!(p > 38.0, "{p:.2} dB");
}

#[test]
fn nl_means_beats_hqdn3d_and_nlmeans_on_noisy_real_footage() {
    for (clip, first) in [("vtest.avi", 200), ("tree.avi", 30), ("box.mp4", 200)] {
        let clean = clean_frames(clip, first);
        for sigma in [10.0, 25.0] {
            let noisy: Vec<Vec<u8>> = clean.iter().enumerate().map(|(i, f)| add_noise(f, sigma, 7 + i as u64)).collect();
            let estimated = estimate_sigma(W, H, &noisy[1]);
            let tensor = |f: &Vec<u8>| Frame::new(W as u32, H as u32, f.clone()).unwrap().to_tensor::<Cpu>(&CpuDevice);
            let t0 = std::time::Instant::now();
            let out = NlMeans::for_sigma(estimated / 255.0).denoise(tensor(&noisy[1]), &[tensor(&noisy[0]), tensor(&noisy[2])]);
            let took = t0.elapsed().as_secs_f64();
            let ours = Frame::from_tensor(out).unwrap().data;
            let best = |filters: &[String]| {
                filters
                    .iter()
                    .map(|f| (psnr(&ffmpeg_filter(&noisy, f), &clean[1]), f.clone()))
                    .fold((0.0, String::new()), |a, b| if b.0 > a.0 { b } else { a })
            };
            let hq = best(&[1.0, 2.0, 4.0, 8.0, 16.0].map(|m: f64| format!("hqdn3d={}:{}:{}:{}", 4.0 * m, 3.0 * m, 6.0 * m, 4.5 * m)));
            let nl = best(&[0.5, 1.0, 1.5].map(|m: f64| format!("nlmeans=s={}", (sigma * m).min(30.0))));
            let (p_noisy, p_ours) = (psnr(&noisy[1], &clean[1]), psnr(&ours, &clean[1]));
            eprintln!(
                "{clip} σ {sigma} (estimated {estimated:.1}): noisy {p_noisy:.2} dB, ours {p_ours:.2} dB ({took:.2} s), hqdn3d {:.2} dB ({}), nlmeans {:.2} dB ({})",
                hq.0, hq.1, nl.0, nl.1
            );
            assert!(
                (estimated - sigma as f32).abs() <= 0.2 * sigma as f32,
                "{clip}: σ {sigma} estimated as {estimated}"
            );
            assert!(p_ours > p_noisy + 3.0, "{clip} σ {sigma}: {p_ours:.2} dB from {p_noisy:.2} dB");
            assert!(
                p_ours > hq.0 + 1.0 && p_ours > nl.0 + 1.0,
                "{clip} σ {sigma}: ours {p_ours:.2}, hqdn3d {:.2}, nlmeans {:.2}",
                hq.0,
                nl.0
            );
        }
    }
}
