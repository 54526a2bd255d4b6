//! Frames per second of the burn kernels at 720p on the CPU backend (`flex`), with the `image`
//! crate's resize (same Catmull-Rom / Lanczos3 kernels, plain Rust) as the peer.
//! Run: `cargo bench -p moviola-models --bench kernels`. Figures: docs/benchmarks.md.

use std::time::{Duration, Instant};

use moviola_models::backend::{Cpu, CpuDevice};
use moviola_models::color::{Lut3d, auto_levels, white_balance};
use moviola_models::resample::{Filter, resize};
use moviola_models::{Frame, NoProgress, Progress};

fn frame(width: u32, height: u32) -> Frame {
    let mut data = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            data.extend_from_slice(&[(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]);
        }
    }
    Frame::new(width, height, data).unwrap()
}

/// Median seconds per call over `runs` runs after one warm-up.
fn time(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    t[runs / 2].as_secs_f64()
}

fn main() {
    let _ = NoProgress.cancelled();
    let dev = CpuDevice;
    let f = frame(1280, 720);
    let runs = 5;
    let row = |name: &str, secs: f64, peer: Option<f64>| match peer {
        Some(p) => println!("| {name} | {:.1} | {:.2} | {:.2}× |", secs * 1000.0, 1.0 / secs, p / secs),
        None => println!("| {name} | {:.1} | {:.2} | – |", secs * 1000.0, 1.0 / secs),
    };
    println!("| kernel (1280×720 input) | ms/frame | frames/s | speed vs image crate |");
    println!("|---|---|---|---|");
    let to = time(runs, || drop(f.to_tensor::<Cpu>(&dev)));
    row("frame → tensor", to, None);
    let t = f.to_tensor::<Cpu>(&dev);
    let back = time(runs, || drop(Frame::from_tensor(t.clone()).unwrap()));
    row("tensor → frame", back, None);
    let img = image::RgbImage::from_raw(1280, 720, f.data.clone()).unwrap();
    for (filter, peer_filter, name) in [
        (
            Filter::Bicubic,
            image::imageops::FilterType::CatmullRom,
            "upscale 2× bicubic (→2560×1440)",
        ),
        (
            Filter::Lanczos3,
            image::imageops::FilterType::Lanczos3,
            "upscale 2× lanczos3 (→2560×1440)",
        ),
    ] {
        let ours = time(runs, || {
            drop(Frame::from_tensor(resize(f.to_tensor::<Cpu>(&dev), 2560, 1440, filter)).unwrap())
        });
        let peer = time(runs, || drop(image::imageops::resize(&img, 2560, 1440, peer_filter)));
        row(name, ours, Some(peer));
    }
    let lut = Lut3d::identity(33);
    row(
        "3D LUT 33³ trilinear",
        time(runs, || drop(Frame::from_tensor(lut.apply(f.to_tensor::<Cpu>(&dev))).unwrap())),
        None,
    );
    row(
        "auto levels + white balance",
        time(runs, || {
            drop(Frame::from_tensor(white_balance(auto_levels(f.to_tensor::<Cpu>(&dev), 0.005))).unwrap())
        }),
        None,
    );
}
