//! Real-ESRGAN (realesr-animevideov3 ×4) frames per second on the CPU backend at 360p and 720p
//! input, and realesrgan-x4plus at 128×128 input (it is ~30× the work), against ncnn on the
//! CPU in the same run (`NCNN_PYTHON`: a Python with the `ncnn`
//! wheel; `scripts/bench.sh models` makes one). Weights: `moviola models fetch`.
//! `cargo bench -p moviola-models --bench esrgan`. Figures: docs/benchmarks.md.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use moviola_models::NoProgress;
use moviola_models::backend::{Cpu, CpuDevice};
use moviola_models::esrgan::{Net4x, SrVggNetCompact, Upscaler};

/// ncnn's seconds per frame, or `None` when `NCNN_PYTHON` is unset. When it is set, the
/// reference must run: a failure is an error of the benchmark, never a silent skip.
fn ncnn_seconds(dir: &std::path::Path, w: usize, h: usize, runs: usize, model: &str) -> Option<f64> {
    let py = PathBuf::from(std::env::var_os("NCNN_PYTHON")?);
    // cargo runs benches from the crate's folder: a relative path would point elsewhere.
    assert!(py.is_absolute(), "NCNN_PYTHON must be an absolute path, got {}", py.display());
    let out = std::process::Command::new(&py)
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/bench_ncnn.py"))
        .arg(dir)
        .args([w.to_string(), h.to_string(), runs.to_string(), model.to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run the ncnn reference {}: {e}", py.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.trim().parse::<f64>() {
        Ok(s) if out.status.success() => Some(s),
        _ => panic!(
            "the ncnn reference failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn measure<N: Net4x<Cpu>>(
    name: &str,
    upscaler: &Upscaler<N>,
    dir: &std::path::Path,
    ncnn_model: &str,
    sizes: &[(usize, usize)],
    runs: usize,
) {
    for &(w, h) in sizes {
        let frame = Tensor::<Cpu, 3>::random([3, h, w], Distribution::Uniform(0.0, 1.0), &CpuDevice);
        let mut times = Vec::new();
        for _ in 0..runs {
            let t0 = Instant::now();
            let out = upscaler.upscale(frame.clone(), 192, &mut NoProgress).unwrap();
            let _ = out.into_data();
            times.push(t0.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let ours = times[times.len() / 2];
        match ncnn_seconds(dir, w, h, runs, ncnn_model) {
            Some(n) => println!(
                "{name} {w}×{h} → {}×{}: burn (flex, CPU) {ours:.2} s/frame ({:.3} fps); ncnn CPU {n:.2} s/frame ({:.3} fps); burn/ncnn speed {:.2}×",
                w * 4,
                h * 4,
                1.0 / ours,
                1.0 / n,
                n / ours
            ),
            None => println!(
                "{name} {w}×{h} → {}×{}: burn (flex, CPU) {ours:.2} s/frame ({:.3} fps); ncnn not run (set NCNN_PYTHON)",
                w * 4,
                h * 4,
                1.0 / ours
            ),
        }
    }
}

fn main() {
    let models = std::env::var("MOVIOLA_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/models"));
    let runs: usize = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
    let dir = models.join("realesrgan");
    let net = SrVggNetCompact::<Cpu>::load(&dir.join("realesr-animevideov3"), &CpuDevice)
        .unwrap_or_else(|e| panic!("{e}: run `moviola models fetch` first"));
    measure(
        "realesr-animevideov3",
        &Upscaler { net, scale: 4 },
        &dir,
        "realesr-animevideov3-x4",
        &[(640, 360), (1280, 720)],
        runs,
    );
    let dir = models.join("realesrgan-x4plus");
    let net = moviola_models::rrdb::RrdbNet::<Cpu>::load(&dir.join("realesrgan-x4plus"), &CpuDevice)
        .unwrap_or_else(|e| panic!("{e}: run `moviola models fetch realesrgan-x4plus` first"));
    measure(
        "realesrgan-x4plus",
        &Upscaler { net, scale: 4 },
        &dir,
        "realesrgan-x4plus",
        &[(128, 128)],
        runs,
    );
}
