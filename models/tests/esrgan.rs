//! Real-ESRGAN (realesr-animevideov3) in burn against its reference, ncnn on the CPU
//! (fixtures made by `models/fixtures/make_reference.py`), and against bicubic on held-out
//! pictures. The weights are not committed: `moviola models fetch` puts them in
//! `<data_dir>/models/realesrgan` (scripts/test.sh does it; `MOVIOLA_MODELS_DIR` overrides).

use std::path::PathBuf;

use moviola_models::backend::{Cpu, CpuDevice};
use moviola_models::esrgan::{SrVggNetCompact, Upscaler};
use moviola_models::resample::{Filter, resize};
use moviola_models::{Frame, NoProgress};

type B = Cpu;

fn models_dir() -> PathBuf {
    let dir = std::env::var("MOVIOLA_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/models"))
        .join("realesrgan");
    assert!(
        dir.join("realesr-animevideov3-x4.bin").is_file() && dir.join("realesr-animevideov3-x2.param").is_file(),
        "Real-ESRGAN weights not found in {}: run `moviola models fetch` (scripts/test.sh does)",
        dir.display()
    );
    dir
}

fn load(scale: usize) -> Upscaler<SrVggNetCompact<B>> {
    let dir = models_dir();
    let param = std::fs::read_to_string(dir.join(format!("realesr-animevideov3-x{scale}.param"))).unwrap();
    // One ×4 network serves every scale; the param files differ only in the final resize.
    let bin = std::fs::read(dir.join("realesr-animevideov3-x4.bin")).unwrap();
    Upscaler {
        net: SrVggNetCompact::<B>::from_ncnn(&param, &bin, &CpuDevice).unwrap(),
        scale,
    }
}

fn fixture(name: &str) -> Frame {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/realesrgan")
        .join(name);
    let img = image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
    let (w, h) = img.dimensions();
    Frame::new(w, h, img.into_raw()).unwrap()
}

fn upscale(model: &Upscaler<SrVggNetCompact<B>>, frame: &Frame, tile: usize) -> Frame {
    let out = model.upscale(frame.to_tensor::<B>(&CpuDevice), tile, &mut NoProgress).unwrap();
    Frame::from_tensor(out).unwrap()
}

#[test]
fn matches_ncnn_within_one_level_at_every_scale() {
    for scale in [2, 3, 4] {
        let model = load(scale);
        for name in ["astronaut", "chelsea", "coffee"] {
            let input = fixture(&format!("{name}.png"));
            let reference = fixture(&format!("{name}-x{scale}-ncnn.png"));
            let ours = upscale(&model, &input, 256);
            assert_eq!((ours.width, ours.height), (reference.width, reference.height), "{name} x{scale}");
            let max = ours
                .data
                .iter()
                .zip(&reference.data)
                .map(|(a, b)| (*a as i32 - *b as i32).abs())
                .max()
                .unwrap();
            let off = ours.data.iter().zip(&reference.data).filter(|(a, b)| a != b).count();
            eprintln!(
                "{name} x{scale}: max |burn − ncnn| = {max}/255, {off} of {} samples differ",
                ours.data.len()
            );
            assert!(max <= 1, "{name} x{scale}: max abs error {max}/255");
        }
    }
}

#[test]
fn tiles_give_the_whole_frame_result() {
    let model = load(4);
    let input = fixture("chelsea.png");
    let whole = upscale(&model, &input, 1024);
    let tiled = upscale(&model, &input, 16);
    let max = whole
        .data
        .iter()
        .zip(&tiled.data)
        .map(|(a, b)| (*a as i32 - *b as i32).abs())
        .max()
        .unwrap();
    assert!(max <= 1, "tiled differs by {max}/255");
}

fn psnr(a: &Frame, b: &Frame) -> f64 {
    let mse = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>()
        / a.data.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
}

/// Mean SSIM over 8×8 windows (step 4) of the luma, constants of Wang et al. 2004.
fn ssim(a: &Frame, b: &Frame) -> f64 {
    let luma = |f: &Frame| -> Vec<f64> {
        f.data
            .chunks_exact(3)
            .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
            .collect()
    };
    let (la, lb, w) = (luma(a), luma(b), a.width as usize);
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let mut total = 0.0;
    let mut n = 0;
    for y in (0..a.height as usize - 8).step_by(4) {
        for x in (0..w - 8).step_by(4) {
            let idx = |i: usize| (y + i / 8) * w + x + i % 8;
            let (ma, mb) = (
                (0..64).map(|i| la[idx(i)]).sum::<f64>() / 64.0,
                (0..64).map(|i| lb[idx(i)]).sum::<f64>() / 64.0,
            );
            let va = (0..64).map(|i| (la[idx(i)] - ma).powi(2)).sum::<f64>() / 63.0;
            let vb = (0..64).map(|i| (lb[idx(i)] - mb).powi(2)).sum::<f64>() / 63.0;
            let cov = (0..64).map(|i| (la[idx(i)] - ma) * (lb[idx(i)] - mb)).sum::<f64>() / 63.0;
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            n += 1;
        }
    }
    total / n as f64
}

/// A flat-shaded cartoon (the model's domain: anime): filled discs with dark outlines,
/// anti-aliased by 4×4 supersampling. Deterministic.
fn cartoon(size: u32, seed: u32) -> Frame {
    let shapes: Vec<(f64, f64, f64, [u8; 3])> = (0..7)
        .map(|i| {
            let k = (i as u32).wrapping_mul(2_654_435_761u32).wrapping_add(seed.wrapping_mul(40503)) as f64;
            let r = 0.12 + (k % 97.0) / 97.0 * 0.18;
            let cx = (k / 7.0 % 101.0) / 101.0;
            let cy = (k / 13.0 % 103.0) / 103.0;
            let colour = [(k % 211.0) as u8 + 40, (k / 3.0 % 193.0) as u8 + 50, (k / 5.0 % 173.0) as u8 + 60];
            (cx, cy, r, colour)
        })
        .collect();
    let mut data = Vec::with_capacity((size * size * 3) as usize);
    for y in 0..size {
        for x in 0..size {
            let mut acc = [0f64; 3];
            for sy in 0..4 {
                for sx in 0..4 {
                    let (px, py) = (
                        (x as f64 + (sx as f64 + 0.5) / 4.0) / size as f64,
                        (y as f64 + (sy as f64 + 0.5) / 4.0) / size as f64,
                    );
                    let mut c = [235.0, 228.0, 210.0];
                    for &(cx, cy, r, colour) in &shapes {
                        let d = ((px - cx).powi(2) + (py - cy).powi(2)).sqrt();
                        if d < r {
                            c = if d > r - 0.025 { [30.0, 24.0, 28.0] } else { colour.map(f64::from) };
                        }
                    }
                    for k in 0..3 {
                        acc[k] += c[k] / 16.0;
                    }
                }
            }
            data.extend(acc.map(|v| v.round() as u8));
        }
    }
    Frame::new(size, size, data).unwrap()
}

#[test]
fn beats_bicubic_on_held_out_drawings() {
    let model = load(4);
    for seed in 0..3 {
        let original = cartoon(96, seed);
        let (w, h) = (original.width as usize, original.height as usize);
        let small = Frame::from_tensor(resize(original.to_tensor::<B>(&CpuDevice), w / 4, h / 4, Filter::Bicubic)).unwrap();
        let bicubic = Frame::from_tensor(resize(small.to_tensor::<B>(&CpuDevice), w, h, Filter::Bicubic)).unwrap();
        let ours = upscale(&model, &small, 256);
        let (pb, po) = (psnr(&bicubic, &original), psnr(&ours, &original));
        let (sb, so) = (ssim(&bicubic, &original), ssim(&ours, &original));
        eprintln!("cartoon {seed}: PSNR bicubic {pb:.2} dB, Real-ESRGAN {po:.2} dB; SSIM bicubic {sb:.4}, Real-ESRGAN {so:.4}");
        // In the model's domain (flat-shaded drawings) it must beat bicubic on both.
        assert!(po > pb + 0.5 && so > sb + 0.05, "cartoon {seed}: not better than bicubic");
    }
    // Photographs are outside an anime model's domain: recorded (docs/benchmarks.md), and
    // there it does not beat bicubic in PSNR.
    for name in ["logo", "rocket", "motorcycle"] {
        let original = fixture(&format!("heldout-{name}.png"));
        let (w, h) = (original.width as usize, original.height as usize);
        let small = Frame::from_tensor(resize(original.to_tensor::<B>(&CpuDevice), w / 4, h / 4, Filter::Bicubic)).unwrap();
        let bicubic = Frame::from_tensor(resize(small.to_tensor::<B>(&CpuDevice), w, h, Filter::Bicubic)).unwrap();
        let ours = upscale(&model, &small, 256);
        let (pb, po) = (psnr(&bicubic, &original), psnr(&ours, &original));
        let (sb, so) = (ssim(&bicubic, &original), ssim(&ours, &original));
        eprintln!("{name}: PSNR bicubic {pb:.2} dB, Real-ESRGAN {po:.2} dB; SSIM bicubic {sb:.4}, Real-ESRGAN {so:.4}");
    }
}

#[test]
fn a_saved_record_loads_to_the_same_network() {
    let dir = models_dir();
    let param = std::fs::read_to_string(dir.join("realesr-animevideov3-x4.param")).unwrap();
    let bin = std::fs::read(dir.join("realesr-animevideov3-x4.bin")).unwrap();
    let net = SrVggNetCompact::<B>::from_ncnn(&param, &bin, &CpuDevice).unwrap();
    let file = std::env::temp_dir().join(format!("esrgan-record-{}", std::process::id()));
    net.save(&file).unwrap();
    let loaded = Upscaler {
        net: SrVggNetCompact::<B>::load(&file, &CpuDevice).unwrap(),
        scale: 4,
    };
    let _ = std::fs::remove_file(file.with_extension("mpk"));
    let input = fixture("coffee.png");
    assert_eq!(upscale(&loaded, &input, 256), upscale(&load(4), &input, 256));
}

/// realesrgan-x4plus (RRDBNet), the model for photographs: against ncnn on 32×32 crops
/// (fixtures by `models/fixtures/make_x4plus_reference.py`), and against bicubic on the
/// held-out photographs where the anime model loses.
fn load_x4plus() -> Upscaler<moviola_models::rrdb::RrdbNet<B>> {
    let dir = models_dir().parent().unwrap().join("realesrgan-x4plus");
    let net = moviola_models::rrdb::RrdbNet::<B>::load(&dir.join("realesrgan-x4plus"), &CpuDevice).unwrap_or_else(|e| {
        panic!(
            "realesrgan-x4plus not installed in {} ({e}): run `moviola models fetch`",
            dir.display()
        )
    });
    Upscaler { net, scale: 4 }
}

#[test]
fn x4plus_matches_ncnn() {
    let model = load_x4plus();
    for name in ["astronaut", "chelsea", "coffee"] {
        let full = fixture(&format!("{name}.png"));
        let crop = Frame::from_tensor(full.to_tensor::<B>(&CpuDevice).slice([0..3, 8..40, 8..40])).unwrap();
        let reference = fixture(&format!("{name}-x4plus-ncnn.png"));
        let out = model.upscale(crop.to_tensor::<B>(&CpuDevice), 64, &mut NoProgress).unwrap();
        let ours = Frame::from_tensor(out).unwrap();
        assert_eq!((ours.width, ours.height), (reference.width, reference.height));
        let diffs: Vec<i32> = ours
            .data
            .iter()
            .zip(&reference.data)
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .collect();
        let max = diffs.iter().copied().max().unwrap();
        let off = diffs.iter().filter(|d| **d > 0).count();
        eprintln!(
            "x4plus {name}: max |burn − ncnn| {max}/255, {off} of {} samples differ",
            diffs.len()
        );
        assert!(max <= 1, "{name}: {max}/255 from ncnn");
    }
}

#[test]
fn x4plus_on_held_out_photographs() {
    let model = load_x4plus();
    let anime = load(4);
    for name in ["logo", "rocket", "motorcycle"] {
        let original = fixture(&format!("heldout-{name}.png"));
        let (w, h) = (original.width as usize, original.height as usize);
        let small = Frame::from_tensor(resize(original.to_tensor::<B>(&CpuDevice), w / 4, h / 4, Filter::Bicubic)).unwrap();
        let bicubic = Frame::from_tensor(resize(small.to_tensor::<B>(&CpuDevice), w, h, Filter::Bicubic)).unwrap();
        let ours = upscale_with(&model, &small);
        let theirs = upscale(&anime, &small, 256);
        let (pb, po, pa) = (psnr(&bicubic, &original), psnr(&ours, &original), psnr(&theirs, &original));
        let (sb, so, sa) = (ssim(&bicubic, &original), ssim(&ours, &original), ssim(&theirs, &original));
        eprintln!(
            "{name}: PSNR bicubic {pb:.2} dB, x4plus {po:.2} dB, anime {pa:.2} dB; SSIM bicubic {sb:.4}, x4plus {so:.4}, anime {sa:.4}"
        );
    }
}

fn upscale_with(model: &Upscaler<moviola_models::rrdb::RrdbNet<B>>, frame: &Frame) -> Frame {
    Frame::from_tensor(model.upscale(frame.to_tensor::<B>(&CpuDevice), 64, &mut NoProgress).unwrap()).unwrap()
}
