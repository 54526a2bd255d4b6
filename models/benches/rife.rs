//! RIFE v3.8 middle frames per second on the CPU backend at 360p and 720p
//! (`cargo bench -p moviola-models --bench rife`; weights: `moviola models fetch rife`).
//! Figures: docs/benchmarks.md.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use moviola_models::backend::{Cpu, CpuDevice};
use moviola_models::rife::IfNet;

fn main() {
    let dir = std::env::var("MOVIOLA_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/models"))
        .join("rife");
    let net =
        IfNet::<Cpu>::load(&dir.join("rife-v38"), &CpuDevice).unwrap_or_else(|e| panic!("{e}: run `moviola models fetch rife` first"));
    for (w, h) in [(640usize, 360usize), (1280, 720)] {
        let a = Tensor::<Cpu, 3>::random([3, h, w], Distribution::Uniform(0.0, 1.0), &CpuDevice);
        let b = Tensor::<Cpu, 3>::random([3, h, w], Distribution::Uniform(0.0, 1.0), &CpuDevice);
        let t0 = Instant::now();
        let _ = net.middle(a, b).into_data();
        let s = t0.elapsed().as_secs_f64();
        println!(
            "RIFE v3.8 middle frame {w}×{h}: {s:.2} s ({:.2} frames/s) on burn flex (CPU)",
            1.0 / s
        );
    }
}
