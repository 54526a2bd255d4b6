//! RIFE v3.8 in burn on real video: the middle of frame triplets of OpenCV's `vtest.avi`
//! (fixtures by `models/fixtures/make_rife_triplets.sh`) interpolated from the outer two beats
//! a linear blend and FFmpeg's `minterpolate` (motion-compensated) in PSNR against the real
//! middle. Weights: `moviola models fetch rife` (scripts/test.sh does it).

use std::path::PathBuf;
use std::process::Command;

use moviola_models::Frame;
use moviola_models::backend::{Cpu, CpuDevice};
use moviola_models::rife::IfNet;

fn load_net() -> IfNet<Cpu> {
    let dir = std::env::var("MOVIOLA_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/models"))
        .join("rife");
    IfNet::<Cpu>::load(&dir.join("rife-v38"), &CpuDevice)
        .unwrap_or_else(|e| panic!("RIFE not installed in {} ({e}): run `moviola models fetch`", dir.display()))
}

fn fixture(name: &str) -> (PathBuf, Frame) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rife").join(name);
    let img = image::open(&path).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    (path, Frame::new(w, h, img.into_raw()).unwrap())
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

/// FFmpeg's motion-compensated interpolation of the middle of `a` and `c` (10 → 20 fps).
fn minterpolate(a: &PathBuf, c: &PathBuf) -> Frame {
    let dir = std::env::temp_dir().join(format!(
        "moviola-mi-{}-{}",
        std::process::id(),
        a.file_name().unwrap().to_string_lossy()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, src) in [a, c, c].into_iter().enumerate() {
        std::fs::copy(src, dir.join(format!("{i}.jpg"))).unwrap();
    }
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-framerate", "10", "-i"])
        .arg(dir.join("%d.jpg"))
        .args(["-vf", "minterpolate=fps=20:mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1"])
        .arg(dir.join("out%d.png"))
        .status()
        .unwrap();
    assert!(status.success());
    let img = image::open(dir.join("out2.png")).unwrap().to_rgb8();
    let _ = std::fs::remove_dir_all(&dir);
    let (w, h) = img.dimensions();
    Frame::new(w, h, img.into_raw()).unwrap()
}

#[test]
fn the_middle_frame_beats_a_blend_and_minterpolate() {
    let net = load_net();
    for start in [100, 300, 500] {
        let (pa, a) = fixture(&format!("vtest-{start}-0.jpg"));
        let (_, b) = fixture(&format!("vtest-{start}-1.jpg"));
        let (pc, c) = fixture(&format!("vtest-{start}-2.jpg"));
        let ours = Frame::from_tensor(net.middle(a.to_tensor::<Cpu>(&CpuDevice), c.to_tensor::<Cpu>(&CpuDevice))).unwrap();
        let blend = Frame::new(
            a.width,
            a.height,
            a.data
                .iter()
                .zip(&c.data)
                .map(|(x, y)| ((*x as u16 + *y as u16 + 1) / 2) as u8)
                .collect(),
        )
        .unwrap();
        let mi = minterpolate(&pa, &pc);
        let (p_rife, p_blend, p_mi) = (psnr(&ours, &b), psnr(&blend, &b), psnr(&mi, &b));
        eprintln!("vtest {start}: PSNR RIFE {p_rife:.2} dB, linear blend {p_blend:.2} dB, minterpolate {p_mi:.2} dB");
        assert!(
            p_rife > p_blend + 1.0 && p_rife > p_mi,
            "vtest {start}: RIFE {p_rife:.2}, blend {p_blend:.2}, minterpolate {p_mi:.2}"
        );
    }
}

#[test]
fn odd_sizes_are_padded_and_cropped_back() {
    let net = load_net();
    let (_, a) = fixture("vtest-100-0.jpg");
    let t = a.to_tensor::<Cpu>(&CpuDevice).slice([0..3, 0..100, 0..150]);
    let out = net.middle(t.clone(), t);
    assert_eq!(out.dims(), [3, 100, 150]);
}

#[test]
fn the_memory_estimate_grows_with_the_picture() {
    let small = IfNet::<Cpu>::memory_bytes(360, 640);
    let large = IfNet::<Cpu>::memory_bytes(720, 1280);
    assert!(large > 2 * small && large < 4 * small, "{small} {large}");
    // Measured peaks (resident, with the weights): 347 MB at 720p, 761 MB at 1080p.
    assert!(large > 347 << 20 && large < 600 << 20, "{large}");
    let full_hd = IfNet::<Cpu>::memory_bytes(1080, 1920);
    assert!(full_hd > 761 << 20 && full_hd < 1200 << 20, "{full_hd}");
}
