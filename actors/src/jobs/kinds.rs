//! The registry of job kinds: for each, its parameters (validated strictly), inputs, device
//! needs and memory estimate, cost model, progress stages, and how it runs on a burn backend.

use std::io::Cursor;
use std::sync::Arc;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use moviola_models::color::{Lut3d, auto_levels, white_balance};
use moviola_models::resample::{Filter, Taps, resample};
use moviola_models::{Frame, Progress};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use moviola_crdt::ExportPlan;
use moviola_media::export::{OutputSpec, Resolved};

use super::cache::ModelCache;

/// Quality tiers bound what one job may produce (the capability guard).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Up to 1920×1080 output.
    Draft,
    /// Up to 3840×2160 output.
    #[default]
    Standard,
    /// Up to 7680×4320 output.
    Pro,
}

impl Tier {
    pub fn max_output(self) -> (u32, u32) {
        match self {
            Tier::Draft => (1920, 1080),
            Tier::Standard => (3840, 2160),
            Tier::Pro => (7680, 4320),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColorParams {
    /// Stretch each channel to the full range.
    #[serde(default = "yes")]
    pub auto_levels: bool,
    /// Fraction of darkest and brightest pixels clipped by auto levels (0..=0.2).
    #[serde(default = "default_clip")]
    pub clip: f32,
    /// Grey-world white balance.
    #[serde(default)]
    pub white_balance: bool,
    /// A 3D LUT in Adobe `.cube` text, applied last.
    #[serde(default)]
    pub lut: Option<String>,
    #[serde(default)]
    pub tier: Tier,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpscaleParams {
    /// Output size as a factor of the input (1..=4). With `height`, the server sets it (the
    /// model's factor, or the exact ratio for the classical filters).
    #[serde(default)]
    pub scale: f32,
    /// A target height in pixels (the width follows the picture's shape, even for video), up
    /// to 4× the input's: Real-ESRGAN at the least factor that reaches it, then Lanczos down
    /// to the exact size; or the classical filter straight to it.
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default = "default_filter")]
    pub filter: Filter,
    #[serde(default)]
    pub tier: Tier,
    /// `realesrgan` (a learned model, scales 2, 3, 4) or `classical` (`filter`). When absent,
    /// the server picks Real-ESRGAN where it is installed and the scale allows.
    #[serde(default)]
    pub model: Option<UpscaleModel>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpscaleModel {
    /// realesr-animevideov3: fast, for drawings and anime (the default where installed).
    Realesrgan,
    /// realesrgan-x4plus: for photographs and live action, about 30× the work.
    RealesrganX4plus,
    Classical,
}

impl UpscaleModel {
    /// A learned model (scales 2, 3, 4, or a target height).
    pub fn is_learned(self) -> bool {
        matches!(self, UpscaleModel::Realesrgan | UpscaleModel::RealesrganX4plus)
    }

    /// The name `moviola models fetch` knows it by.
    pub fn catalog_name(self) -> Option<&'static str> {
        match self {
            UpscaleModel::Realesrgan => Some("realesrgan"),
            UpscaleModel::RealesrganX4plus => Some("realesrgan-x4plus"),
            UpscaleModel::Classical => None,
        }
    }
}

/// realesrgan-x4plus's CPU time per output megapixel relative to the classical filters'
/// (≈ 35× the anime model's, docs/benchmarks.md).
const X4PLUS_TIME_FACTOR: f64 = 160.0;

impl UpscaleParams {
    /// The result's size for an input of `width`×`height` (`even`: video, whose encoders need
    /// even sizes).
    pub fn output_size(&self, width: u32, height: u32, even: bool) -> (u32, u32) {
        match self.height {
            Some(h) => {
                let w = f64::from(width) * f64::from(h) / f64::from(height.max(1));
                let w = if even {
                    ((w / 2.0).round() as u32 * 2).max(2)
                } else {
                    (w.round() as u32).max(1)
                };
                (w, h)
            }
            None => (
                (f64::from(width) * f64::from(self.scale)).round() as u32,
                (f64::from(height) * f64::from(self.scale)).round() as u32,
            ),
        }
    }

    /// Chooses the factor for a target height (`self.height`) on an input `input_height` tall:
    /// the least model factor (2, 3, 4) at or above the ratio for Real-ESRGAN, the ratio itself
    /// for the classical filters.
    pub fn resolve_target(&mut self, input_height: u32) -> Result<(), String> {
        let Some(h) = self.height else { return Ok(()) };
        let ratio = f64::from(h) / f64::from(input_height.max(1));
        if ratio <= 1.0 || ratio > 4.0 {
            return Err(format!(
                "a target height of {h} is {ratio:.2}× the input's {input_height}; upscaling reaches above 1× and up to 4×"
            ));
        }
        self.scale = if self.model.is_some_and(UpscaleModel::is_learned) {
            [2.0, 3.0, 4.0].into_iter().find(|s| f64::from(*s) >= ratio - 1e-9).unwrap_or(4.0)
        } else {
            ratio as f32
        };
        Ok(())
    }
}

/// Input pixels per side of one Real-ESRGAN tile (plus the receptive field around it).
pub const ESRGAN_TILE: usize = 192;

/// The RIFE record under the models folder.
pub fn rife_record(models: &std::path::Path) -> std::path::PathBuf {
    models.join("rife").join("rife-v38.mpk")
}

/// The Real-ESRGAN record under the models folder.
pub fn esrgan_record(models: &std::path::Path) -> std::path::PathBuf {
    models.join("realesrgan").join("realesr-animevideov3.mpk")
}

/// The realesrgan-x4plus record under the models folder.
pub fn x4plus_record(models: &std::path::Path) -> std::path::PathBuf {
    models.join("realesrgan-x4plus").join("realesrgan-x4plus.mpk")
}

fn yes() -> bool {
    true
}
fn default_clip() -> f32 {
    0.005
}
fn default_filter() -> Filter {
    Filter::Lanczos3
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilmstripParams {
    /// Frames in the strip (2..=60).
    #[serde(default = "default_count")]
    pub count: u32,
    /// Height of each frame in pixels (16..=240).
    #[serde(default = "default_height")]
    pub height: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveformParams {
    /// Min/max pairs per second of audio (1..=200).
    #[serde(default = "default_pps")]
    pub peaks_per_second: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterpolateParams {
    /// 2 or 4 times the frame rate. With `fps`, the server picks it (the least that reaches
    /// the target).
    #[serde(default = "default_factor")]
    pub factor: u32,
    /// A target frame rate (above the source's, at most 4× it, up to 240), e.g. 60 or 59.94:
    /// RIFE makes the frames at 2× or 4× and each output frame is the nearest of them.
    #[serde(default)]
    pub fps: Option<f64>,
}

/// A frame rate as a fraction: the NTSC rates (23.976, 29.97, 59.94, 119.88) as n·1000/1001,
/// others to the millihertz. `None` outside 1..=240.
pub fn rational_fps(fps: f64) -> Option<(i32, i32)> {
    if !(1.0..=240.0).contains(&fps) {
        return None;
    }
    for base in [24, 30, 60, 120] {
        if (fps - f64::from(base) * 1000.0 / 1001.0).abs() < 0.005 {
            return Some((base * 1000, 1001));
        }
    }
    let milli = (fps * 1000.0).round() as i32;
    let g = gcd(milli, 1000);
    Some((milli / g, 1000 / g))
}

fn gcd(a: i32, b: i32) -> i32 {
    if b == 0 { a.abs().max(1) } else { gcd(b, a % b) }
}

fn default_factor() -> u32 {
    2
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenesParams {
    /// The detector: TransNetV2 (the default where installed: cuts and gradual transitions) or
    /// FFmpeg's scdet (hard cuts only).
    #[serde(default)]
    pub model: Option<SceneModel>,
    /// TransNetV2: the transition probability above which a frame is a transition (0.05..=0.95,
    /// default 0.5); scdet: the scene-change score (1..=50, default 10).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Put a marker on the timeline at every cut inside each clip of this footage.
    #[serde(default = "yes")]
    pub markers: bool,
    /// Split each clip of this footage on the timeline at the cuts inside it.
    #[serde(default)]
    pub split: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SceneModel {
    Transnetv2,
    Scdet,
}

impl SceneModel {
    pub fn name(self) -> &'static str {
        match self {
            SceneModel::Transnetv2 => "transnetv2",
            SceneModel::Scdet => "scdet",
        }
    }

    /// The threshold's range and default.
    pub fn threshold_range(self) -> (f64, f64, f64) {
        match self {
            SceneModel::Transnetv2 => (0.05, 0.95, 0.5),
            SceneModel::Scdet => (1.0, 50.0, 10.0),
        }
    }
}

impl ScenesParams {
    /// Chooses the detector (TransNetV2 where `transnet_installed`, unless asked otherwise) and
    /// the threshold's default, and checks the threshold against the detector's range.
    pub fn resolve(&mut self, transnet_installed: bool) -> Result<SceneModel, String> {
        let model = self.model.unwrap_or(if transnet_installed {
            SceneModel::Transnetv2
        } else {
            SceneModel::Scdet
        });
        let (lo, hi, default) = model.threshold_range();
        let t = self.threshold.unwrap_or(default);
        if !(lo..=hi).contains(&t) {
            return Err(format!("the {} threshold must be {lo} to {hi}, got {t}", model.name()));
        }
        self.model = Some(model);
        self.threshold = Some(t);
        Ok(model)
    }
}

/// TransNetV2 frames per second on the CPU (docs/benchmarks.md), for estimates.
const TRANSNET_FPS: f64 = 40.0;

/// The TransNetV2 record under the models folder.
pub fn transnet_record(models: &std::path::Path) -> std::path::PathBuf {
    models.join("transnetv2").join("transnetv2.mpk")
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StabilizeParams {
    /// Frames each side the camera path is smoothed over (5..=120).
    #[serde(default = "default_smoothing")]
    pub smoothing: u32,
}

fn default_smoothing() -> u32 {
    30
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanupParams {
    /// RNNoise noise suppression.
    #[serde(default = "yes")]
    pub denoise: bool,
    /// Integrated loudness target: `streaming` −14 LUFS, `podcast` −16 LUFS, or `off`.
    #[serde(default = "default_loudness")]
    pub loudness: Loudness,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loudness {
    Streaming,
    Podcast,
    Off,
}

impl Loudness {
    pub fn target_lufs(self) -> Option<f64> {
        match self {
            Loudness::Streaming => Some(-14.0),
            Loudness::Podcast => Some(-16.0),
            Loudness::Off => None,
        }
    }
}

fn default_loudness() -> Loudness {
    Loudness::Streaming
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenoiseParams {
    /// The noise's standard deviation in 8-bit levels (1..=60); estimated from the footage
    /// when absent. Sound is denoised by RNNoise, which needs no level.
    #[serde(default)]
    pub sigma: Option<f64>,
    /// How hard to filter, relative to the level (0.25..=3).
    #[serde(default = "default_strength")]
    pub strength: f64,
}

fn default_strength() -> f64 {
    1.0
}

/// Non-local means' CPU time per megapixel per frame (docs/benchmarks.md: 0.33 s for a
/// 320×240 frame on two cores).
const DENOISE_MS_PER_MEGAPIXEL: f64 = 4500.0;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyParams {
    /// Lines of the proxy (144..=720).
    #[serde(default = "default_proxy_height")]
    pub height: u32,
}

fn default_proxy_height() -> u32 {
    360
}

/// An export job as stored: what the client asked for, what that resolved to against the
/// timeline's settings, the timeline's plan at submission (a re-export of the same timeline
/// renders the same frames; nothing is re-rendered by AI), and where each asset's file is.
/// Written by the server only: a client's parameters are an [`OutputSpec`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportJob {
    pub output: OutputSpec,
    pub resolved: Resolved,
    pub plan: ExportPlan,
    /// Asset id → file path relative to the media folder.
    pub assets: std::collections::BTreeMap<String, String>,
    /// The media folder (filled in when the job is handed to the worker).
    #[serde(default)]
    pub media_dir: String,
}

impl ExportJob {
    /// The file of `asset`, if the job names it and its path stays inside the media folder.
    pub fn source_path(&self, media_dir: &std::path::Path, asset: &str) -> Option<std::path::PathBuf> {
        let rel = std::path::Path::new(self.assets.get(asset)?);
        let inside = rel.components().all(|c| matches!(c, std::path::Component::Normal(_)));
        inside.then(|| media_dir.join(rel))
    }
}

fn default_count() -> u32 {
    10
}
fn default_height() -> u32 {
    72
}
fn default_pps() -> u32 {
    50
}

/// Validated parameters of one job.
#[derive(Clone, Debug, PartialEq)]
pub enum Params {
    Color(ColorParams, Option<Arc<Lut3d>>),
    Upscale(UpscaleParams),
    Filmstrip(FilmstripParams),
    Waveform(WaveformParams),
    Proxy(ProxyParams),
    Cleanup(CleanupParams),
    Stabilize(StabilizeParams),
    Scenes(ScenesParams),
    Interpolate(InterpolateParams),
    Denoise(DenoiseParams),
    /// An export as a client asks for it (before the server adds the plan).
    ExportRequest(OutputSpec),
    /// An export as stored, ready to run.
    Export(Box<ExportJob>),
}

/// The job kinds this server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobKind {
    EnhanceColor,
    EnhanceUpscale,
    /// Derived media: a strip of frames of a video (for the timeline).
    MediaFilmstrip,
    /// Derived media: waveform peaks of a video's or audio's sound.
    MediaWaveform,
    /// Derived media: a small H.264 copy of a video for preview in the browser.
    MediaProxy,
    /// The project's timeline rendered to a video file.
    ExportRender,
    /// Dialogue clean-up: RNNoise, then loudness to a preset.
    AudioCleanup,
    /// Shaky footage steadied (FFmpeg's vidstab, two passes).
    EnhanceStabilize,
    /// Shot boundaries (FFmpeg's scdet), as a cut list and markers on the timeline.
    AnalyzeScenes,
    /// Footage at 2× or 4× its frame rate, the new frames by RIFE.
    EnhanceInterpolate,
    /// Noise removed: pictures by spatio-temporal non-local means on burn, sound by RNNoise.
    EnhanceDenoise,
}

/// What a finished job produced, stored as a new asset.
#[derive(Clone, Debug, Default)]
pub struct JobOutput {
    pub bytes: Vec<u8>,
    /// A result written to a file instead (large media): moved into place, `bytes` unused.
    pub file: Option<std::path::PathBuf>,
    /// The asset's name; a default from the kind and job when absent.
    pub name: Option<String>,
    /// Length and probe (JSON) of a video or audio result.
    pub duration_ms: Option<i64>,
    pub info: Option<String>,
    /// Asset kind: `image`, `video` or `data`.
    pub kind: &'static str,
    pub mime: &'static str,
    pub ext: &'static str,
    pub width: u32,
    pub height: u32,
    /// The actual cost, never above the estimate.
    pub credits: i64,
}

/// RIFE's CPU time per megapixel of each new frame (1.79 s at 640×360, 7.23 s at 1280×720).
const RIFE_MS_PER_MEGAPIXEL: f64 = 8000.0;

/// The longest a render may run (the default `[media] render_timeout_ms`).
const MAX_RENDER_MS: f64 = 43_200_000.0;

/// Real-ESRGAN's time per output megapixel relative to the classical filters' (measured on the
/// CPU backend, docs/benchmarks.md).
const ESRGAN_TIME_FACTOR: f64 = 4.5;

/// Largest input image accepted by any kind, in pixels per side.
pub const MAX_INPUT_SIDE: u32 = 8192;

/// What a job will cost before it runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    pub credits: i64,
    pub eta_ms: i64,
    pub memory_bytes: u64,
    pub output_width: u32,
    pub output_height: u32,
}

impl JobKind {
    pub const ALL: [JobKind; 11] = [
        JobKind::EnhanceColor,
        JobKind::EnhanceUpscale,
        JobKind::MediaFilmstrip,
        JobKind::MediaWaveform,
        JobKind::MediaProxy,
        JobKind::ExportRender,
        JobKind::AudioCleanup,
        JobKind::EnhanceStabilize,
        JobKind::AnalyzeScenes,
        JobKind::EnhanceInterpolate,
        JobKind::EnhanceDenoise,
    ];

    pub fn name(self) -> &'static str {
        match self {
            JobKind::EnhanceColor => "enhance.color",
            JobKind::EnhanceUpscale => "enhance.upscale",
            JobKind::MediaFilmstrip => "media.filmstrip",
            JobKind::MediaWaveform => "media.waveform",
            JobKind::MediaProxy => "media.proxy",
            JobKind::ExportRender => "export.render",
            JobKind::AudioCleanup => "audio.cleanup",
            JobKind::EnhanceStabilize => "enhance.stabilize",
            JobKind::AnalyzeScenes => "analyze.scenes",
            JobKind::EnhanceInterpolate => "enhance.interpolate",
            JobKind::EnhanceDenoise => "enhance.denoise",
        }
    }

    /// Asset kinds the job takes as input.
    pub fn input_kinds(self) -> &'static [&'static str] {
        match self {
            JobKind::EnhanceColor => &["image"],
            // A video is upscaled frame by frame in the media worker.
            JobKind::EnhanceUpscale => &["image", "video"],
            JobKind::MediaFilmstrip
            | JobKind::MediaProxy
            | JobKind::EnhanceStabilize
            | JobKind::AnalyzeScenes
            | JobKind::EnhanceInterpolate => &["video"],
            JobKind::MediaWaveform | JobKind::AudioCleanup | JobKind::EnhanceDenoise => &["video", "audio"],
            // The project's timeline, not one asset.
            JobKind::ExportRender => &[],
        }
    }

    /// Runs FFmpeg on an untrusted file, so in the media worker process rather than on burn.
    pub fn is_media(self) -> bool {
        matches!(
            self,
            JobKind::MediaFilmstrip
                | JobKind::MediaWaveform
                | JobKind::MediaProxy
                | JobKind::ExportRender
                | JobKind::AudioCleanup
                | JobKind::EnhanceStabilize
                | JobKind::AnalyzeScenes
                | JobKind::EnhanceInterpolate
                | JobKind::EnhanceDenoise
        )
    }

    pub fn parse(name: &str) -> Option<JobKind> {
        JobKind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn stages(self) -> &'static [&'static str] {
        if self.is_media() {
            &["process"]
        } else {
            &["decode", "process", "encode"]
        }
    }

    /// Credits per output megapixel (rounded up, at least 1 per job).
    fn credits_per_megapixel(self) -> f64 {
        match self {
            JobKind::EnhanceColor => 1.0,
            JobKind::EnhanceUpscale => 2.0,
            JobKind::MediaFilmstrip
            | JobKind::MediaWaveform
            | JobKind::MediaProxy
            | JobKind::ExportRender
            | JobKind::AudioCleanup
            | JobKind::EnhanceStabilize
            | JobKind::AnalyzeScenes
            | JobKind::EnhanceInterpolate
            | JobKind::EnhanceDenoise => 0.0,
        }
    }

    /// Starting guess of CPU milliseconds per output megapixel; the supervisor replaces it
    /// with what it measures.
    pub fn default_ms_per_megapixel(self) -> f64 {
        match self {
            JobKind::EnhanceColor => 400.0,
            JobKind::EnhanceUpscale => 300.0,
            // Per minute of media for the media kinds.
            JobKind::MediaFilmstrip => 2000.0,
            JobKind::MediaWaveform => 1000.0,
            JobKind::MediaProxy => 20_000.0,
            // Per minute of output at 1920×1080.
            JobKind::ExportRender => 60_000.0,
            JobKind::AudioCleanup => 6_000.0,
            JobKind::EnhanceStabilize => 90_000.0,
            JobKind::AnalyzeScenes => 20_000.0,
            // RIFE on the CPU: minutes per minute of footage.
            JobKind::EnhanceInterpolate => 600_000.0,
            JobKind::EnhanceDenoise => 600_000.0,
        }
    }

    /// A description for clients (`GET /api/v1/job-kinds`).
    /// A description with what every kind states: its name, stages and device.
    fn described(self, device: &str, mut v: Value) -> Value {
        v["kind"] = json!(self.name());
        v["stages"] = json!(self.stages());
        v["device"] = json!(device);
        v
    }

    pub fn describe(self) -> Value {
        let tiers = json!({ "draft": [1920, 1080], "standard": [3840, 2160], "pro": [7680, 4320] });
        match self {
            JobKind::EnhanceColor => self.described("any", json!({
                "input": "image",
                "credits_per_megapixel": self.credits_per_megapixel(),
                "tiers": tiers,
                "params": {
                    "auto_levels": { "type": "boolean", "default": true },
                    "clip": { "type": "number", "minimum": 0.0, "maximum": 0.2, "default": 0.005 },
                    "white_balance": { "type": "boolean", "default": false },
                    "lut": { "type": "string", "format": ".cube text (LUT_3D_SIZE 2..=128)", "optional": true },
                    "tier": { "enum": ["draft", "standard", "pro"], "default": "standard" }
                }
            })),
            JobKind::MediaFilmstrip => self.described("media worker", json!({
                "input": "video",
                "credits_per_minute": 1,
                "params": {
                    "count": { "type": "integer", "minimum": 2, "maximum": 60, "default": 10 },
                    "height": { "type": "integer", "minimum": 16, "maximum": 240, "default": 72 }
                }
            })),
            JobKind::MediaWaveform => self.described("media worker", json!({
                "input": "video or audio",
                "credits_per_minute": 1,
                "params": {
                    "peaks_per_second": { "type": "integer", "minimum": 1, "maximum": 200, "default": 50 }
                }
            })),
            JobKind::MediaProxy => self.described("media worker", json!({
                "input": "video",
                "credits": 0,
                "params": {
                    "height": { "type": "integer", "minimum": 144, "maximum": 720, "default": 360 }
                }
            })),
            JobKind::ExportRender => self.described("media worker", json!({
                "input": "the project's timeline (no input asset)",
                "credits": 0,
                "params": {
                    "preset": { "enum": moviola_media::export::Preset::ALL.iter().map(|p| p.name()).collect::<Vec<_>>(), "aliases": { "tiktok": "shorts", "reels": "shorts" }, "optional": true },
                    "container": { "enum": ["mp4", "webm", "mov"], "optional": true },
                    "video_codec": { "enum": ["h264", "h265", "vp9", "prores"], "optional": true },
                    "audio_codec": { "enum": ["aac", "opus", "pcm"], "optional": true },
                    "width": { "type": "integer", "even": true, "minimum": 16, "maximum": 8192, "optional": true },
                    "height": { "type": "integer", "even": true, "minimum": 16, "maximum": 8192, "optional": true },
                    "fit": { "enum": ["pad", "crop"], "default": "pad" },
                    "quality": { "enum": ["draft", "standard", "high"], "default": "standard" },
                    "video_bitrate_kbps": { "type": "integer", "minimum": 100, "maximum": 200000, "optional": true },
                    "audio_bitrate_kbps": { "type": "integer", "minimum": 32, "maximum": 512, "optional": true }
                }
            })),
            JobKind::EnhanceInterpolate => self.described("media worker", json!({
                "input": "video",
                "credits_per_minute": 1,
                "model": "rife (moviola models fetch rife)",
                "output": "an MP4 (H.264 + AAC) video asset at factor × the frame rate",
                "params": {
                    "factor": { "enum": [2, 4], "default": 2 },
                    "fps": { "type": "number", "minimum": 1, "maximum": 240, "optional": true, "about": "a target frame rate above the source's and at most 4× it (e.g. 60, 59.94); the server picks the factor" }
                }
            })),
            JobKind::AnalyzeScenes => self.described("media worker", json!({
                "input": "video",
                "credits_per_minute": 1,
                "model": "transnetv2 (moviola models fetch transnetv2; the default where installed) or scdet (FFmpeg, hard cuts only)",
                "output": "a JSON asset {method, threshold, frames, cuts: [{time_ms, ticks, score}]}; markers on the timeline, or clips split at the cuts",
                "params": {
                    "model": { "enum": ["transnetv2", "scdet"], "optional": true },
                    "threshold": { "type": "number", "about": "transnetv2: transition probability 0.05..0.95 (default 0.5); scdet: score 1..50 (default 10)", "optional": true },
                    "markers": { "type": "boolean", "default": true },
                    "split": { "type": "boolean", "default": false, "about": "split each clip of this footage at the cuts inside it" }
                }
            })),
            JobKind::EnhanceDenoise => self.described("media worker", json!({
                "input": "video or audio",
                "credits_per_minute": 1,
                "method": "video: spatio-temporal non-local means on burn (the frames before and after searched too); sound: RNNoise",
                "output": "an MP4 (H.264 + AAC, the sound kept) video asset, or an M4A audio asset for sound",
                "params": {
                    "sigma": { "type": "number", "minimum": 1, "maximum": 60, "optional": true, "about": "noise level in 8-bit levels; estimated from the footage when absent" },
                    "strength": { "type": "number", "minimum": 0.25, "maximum": 3, "default": 1 }
                }
            })),
            JobKind::EnhanceStabilize => self.described("media worker", json!({
                "input": "video",
                "credits_per_minute": 1,
                "output": "an MP4 (H.264 + AAC) video asset",
                "params": {
                    "smoothing": { "type": "integer", "minimum": 5, "maximum": 120, "default": 30, "about": "frames each side the camera path is smoothed over" }
                }
            })),
            JobKind::AudioCleanup => self.described("media worker", json!({
                "input": "video or audio with sound",
                "credits_per_minute": 1,
                "output": "an M4A (AAC) audio asset",
                "params": {
                    "denoise": { "type": "boolean", "default": true, "about": "RNNoise noise suppression" },
                    "loudness": { "enum": ["streaming", "podcast", "off"], "default": "streaming", "about": "−14 LUFS, −16 LUFS, or unchanged; peaks stay ≤ −1 dBFS" }
                }
            })),
            JobKind::EnhanceUpscale => self.described("any", json!({
                "input": "image or video (frame by frame)",
                "credits_per_megapixel": self.credits_per_megapixel(),
                "tiers": tiers,
                "params": {
                    "height": { "type": "integer", "minimum": 16, "maximum": 8640, "optional": true, "about": "a target height (e.g. 1080, 2160) instead of a scale: up to 4× the input's; the width follows the picture's shape" },
                    "scale": { "type": "number", "minimum": 1.0, "maximum": 4.0, "about": "required unless height is given" },
                    "model": { "enum": ["realesrgan", "realesrgan_x4plus", "classical"], "optional": true, "about": "Real-ESRGAN for drawings and anime (scales 2, 3, 4; the default where installed), Real-ESRGAN x4plus for photographs and live action (about 30× slower), or the classical filter" },
                    "filter": { "enum": ["bicubic", "lanczos3"], "default": "lanczos3" },
                    "tier": { "enum": ["draft", "standard", "pro"], "default": "standard" }
                }
            })),
        }
    }

    /// Reads parameters into the kind's struct; the error names the kind and the field.
    fn read_params<T: serde::de::DeserializeOwned>(self, params: Value) -> Result<T, String> {
        serde_json::from_value(params).map_err(|e| format!("parameters of {}: {e}", self.name()))
    }

    /// Checks parameters against the kind's schema. The error says what is wrong.
    pub fn validate(self, params: &Value) -> Result<Params, String> {
        let params = if params.is_null() { json!({}) } else { params.clone() };
        // serde would read a struct from an array too; parameters are named, always.
        if !params.is_object() {
            return Err(format!("parameters of {} must be a JSON object", self.name()));
        }
        match self {
            JobKind::EnhanceColor => {
                let p: ColorParams = self.read_params(params)?;
                if !(0.0..=0.2).contains(&p.clip) {
                    return Err(format!("clip must be between 0 and 0.2, got {}", p.clip));
                }
                if !p.auto_levels && !p.white_balance && p.lut.is_none() {
                    return Err("nothing to do: enable auto_levels or white_balance, or give a lut".into());
                }
                let lut = match &p.lut {
                    Some(text) => Some(Arc::new(Lut3d::parse_cube(text).map_err(|e| format!("lut: {e}"))?)),
                    None => None,
                };
                Ok(Params::Color(p, lut))
            }
            JobKind::EnhanceUpscale => {
                let p: UpscaleParams = self.read_params(params)?;
                if p.height.is_some_and(|h| !(16..=8640).contains(&h)) {
                    return Err(format!("height must be 16 to 8640 pixels, got {}", p.height.unwrap_or_default()));
                }
                if p.scale == 0.0 && p.height.is_none() {
                    return Err("give a scale (1 to 4) or a target height".into());
                }
                // A target height's factor is set by the server once it knows the input (a
                // scale given beside it is replaced).
                if p.height.is_some() {
                    return Ok(Params::Upscale(p));
                }
                if !(1.0..=4.0).contains(&p.scale) || !p.scale.is_finite() {
                    return Err(format!("scale must be between 1 and 4, got {}", p.scale));
                }
                if p.model.is_some_and(UpscaleModel::is_learned) && ![2.0, 3.0, 4.0].contains(&p.scale) {
                    return Err(format!("the learned models upscale by 2, 3 or 4, not {}", p.scale));
                }
                Ok(Params::Upscale(p))
            }
            JobKind::MediaFilmstrip => {
                let p: FilmstripParams = self.read_params(params)?;
                if !(2..=60).contains(&p.count) || !(16..=240).contains(&p.height) {
                    return Err(format!(
                        "count must be 2..=60 and height 16..=240, got {} and {}",
                        p.count, p.height
                    ));
                }
                Ok(Params::Filmstrip(p))
            }
            JobKind::MediaWaveform => {
                let p: WaveformParams = self.read_params(params)?;
                if !(1..=200).contains(&p.peaks_per_second) {
                    return Err(format!("peaks_per_second must be 1..=200, got {}", p.peaks_per_second));
                }
                Ok(Params::Waveform(p))
            }
            JobKind::MediaProxy => {
                let p: ProxyParams = self.read_params(params)?;
                if !(144..=720).contains(&p.height) {
                    return Err(format!("height must be 144..=720, got {}", p.height));
                }
                Ok(Params::Proxy(p))
            }
            JobKind::ExportRender => {
                let p: OutputSpec = self.read_params(params)?;
                Ok(Params::ExportRequest(p))
            }
            JobKind::EnhanceInterpolate => {
                let p: InterpolateParams = self.read_params(params)?;
                if ![2, 4].contains(&p.factor) {
                    return Err(format!("factor must be 2 or 4, got {}", p.factor));
                }
                if p.fps.is_some_and(|f| rational_fps(f).is_none()) {
                    return Err(format!("fps must be 1 to 240, got {}", p.fps.unwrap_or_default()));
                }
                Ok(Params::Interpolate(p))
            }
            JobKind::AnalyzeScenes => {
                let p: ScenesParams = self.read_params(params)?;
                // With the detector named, its threshold is checked now; otherwise once the
                // server has chosen it (`ScenesParams::resolve`).
                if p.model.is_some() {
                    p.clone().resolve(true)?;
                } else if p.threshold.is_some_and(|t| !(0.05..=50.0).contains(&t)) {
                    return Err("threshold must be 0.05 to 0.95 (transnetv2) or 1 to 50 (scdet)".into());
                }
                Ok(Params::Scenes(p))
            }
            JobKind::EnhanceDenoise => {
                let p: DenoiseParams = self.read_params(params)?;
                if p.sigma.is_some_and(|v| !(1.0..=60.0).contains(&v)) {
                    return Err(format!("sigma must be 1 to 60 levels, got {}", p.sigma.unwrap_or_default()));
                }
                if !(0.25..=3.0).contains(&p.strength) {
                    return Err(format!("strength must be 0.25 to 3, got {}", p.strength));
                }
                Ok(Params::Denoise(p))
            }
            JobKind::EnhanceStabilize => {
                let p: StabilizeParams = self.read_params(params)?;
                if !(5..=120).contains(&p.smoothing) {
                    return Err(format!("smoothing must be 5..=120 frames, got {}", p.smoothing));
                }
                Ok(Params::Stabilize(p))
            }
            JobKind::AudioCleanup => {
                let p: CleanupParams = self.read_params(params)?;
                if !p.denoise && p.loudness == Loudness::Off {
                    return Err("nothing to do: enable denoise or choose a loudness preset".into());
                }
                Ok(Params::Cleanup(p))
            }
        }
    }

    /// Parameters as stored with a job: like [`JobKind::validate`], except that an export is
    /// stored in its complete form ([`ExportJob`]), which clients cannot submit.
    pub fn load(self, params: &Value) -> Result<Params, String> {
        match self {
            JobKind::ExportRender => serde_json::from_value::<ExportJob>(params.clone())
                .map(|j| Params::Export(Box::new(j)))
                .map_err(|e| format!("stored export: {e}")),
            _ => self.validate(params),
        }
    }

    /// Output size, capability guard, cost, time and memory, for an input of `width`×`height`.
    pub fn estimate(
        self,
        params: &Params,
        width: u32,
        height: u32,
        duration_ms: Option<i64>,
        ms_per_megapixel: f64,
    ) -> Result<Estimate, String> {
        if self.is_media() {
            // Time by length; memory is the worker's.
            let minutes = duration_ms.unwrap_or(0).max(0) as f64 / 60_000.0;
            if let Params::Interpolate(p) = params {
                // RIFE on the CPU: about 8 s per megapixel per new frame (docs/benchmarks.md),
                // at an assumed 30 fps.
                let new_frames = minutes * 60.0 * 30.0 * f64::from(p.factor - 1);
                let eta_ms = new_frames * (f64::from(width) * f64::from(height) / 1e6) * RIFE_MS_PER_MEGAPIXEL + 2000.0;
                if eta_ms > MAX_RENDER_MS {
                    return Err(format!(
                        "interpolating this footage would take about {:.1} h here (RIFE makes {:.0} frames of {width}×{height}); interpolate a shorter or smaller clip",
                        eta_ms / 3_600_000.0,
                        new_frames
                    ));
                }
                return Ok(Estimate {
                    credits: (minutes.ceil() as i64).max(1) * i64::from(p.factor - 1),
                    eta_ms: eta_ms.ceil() as i64,
                    // RIFE's peak from its shapes, plus the decoder and encoder.
                    memory_bytes: moviola_models::rife::IfNet::<burn::backend::Flex>::memory_bytes(height as usize, width as usize)
                        + (256 << 20),
                    output_width: width,
                    output_height: height,
                });
            }
            if let Params::Scenes(ScenesParams {
                model: Some(SceneModel::Transnetv2),
                ..
            }) = params
            {
                // TransNetV2 on the CPU: about 45 frames a second whatever the picture size
                // (docs/benchmarks.md), at an assumed 30 fps, plus the decode.
                let frames = minutes * 60.0 * 30.0;
                return Ok(Estimate {
                    credits: (minutes.ceil() as i64).max(1),
                    eta_ms: (frames / TRANSNET_FPS * 1000.0 + minutes.max(0.05) * ms_per_megapixel).ceil() as i64 + 1000,
                    memory_bytes: moviola_models::transnet::memory_estimate() + (256 << 20),
                    output_width: 0,
                    output_height: 0,
                });
            }
            if let Params::Denoise(_) = params
                && width == 0
            {
                // Sound only: RNNoise, at about `audio.cleanup`'s pace.
                return Ok(Estimate {
                    credits: (minutes.ceil() as i64).max(1),
                    eta_ms: (minutes.max(0.05) * JobKind::AudioCleanup.default_ms_per_megapixel()).ceil() as i64 + 500,
                    memory_bytes: 256 << 20,
                    output_width: 0,
                    output_height: 0,
                });
            }
            if let Params::Denoise(_) = params
                && width > 0
            {
                // Pictures: non-local means on every frame at an assumed 30 fps.
                let frames = minutes * 60.0 * 30.0;
                let eta_ms = frames * (f64::from(width) * f64::from(height) / 1e6) * DENOISE_MS_PER_MEGAPIXEL + 2000.0;
                if eta_ms > MAX_RENDER_MS {
                    return Err(format!(
                        "denoising this footage would take about {:.1} h here ({frames:.0} frames of {width}×{height}); denoise a shorter or smaller clip",
                        eta_ms / 3_600_000.0
                    ));
                }
                return Ok(Estimate {
                    credits: (minutes.ceil() as i64).max(1),
                    eta_ms: eta_ms.ceil() as i64,
                    memory_bytes: u64::from(width) * u64::from(height) * 3 * 4 * 16 + (256 << 20),
                    output_width: width,
                    output_height: height,
                });
            }
            if let Params::Proxy(p) = params {
                let w = ((width.max(1) as f64 * p.height as f64 / height.max(1) as f64) as u32) & !1;
                return Ok(Estimate {
                    credits: 0,
                    eta_ms: (minutes.max(0.01) * ms_per_megapixel).ceil() as i64 + 500,
                    memory_bytes: 256 << 20,
                    output_width: w,
                    output_height: p.height,
                });
            }
            if let Params::ExportRequest(_) | Params::Export(_) = params {
                // `width`×`height` is the output; time scales with its pixels.
                let scale = (width as f64 * height as f64 / (1920.0 * 1080.0)).max(0.05);
                return Ok(Estimate {
                    credits: 0,
                    eta_ms: (minutes.max(0.01) * ms_per_megapixel * scale).ceil() as i64 + 1000,
                    memory_bytes: 256 << 20,
                    output_width: width,
                    output_height: height,
                });
            }
            let (w, h) = match params {
                Params::Filmstrip(p) => (
                    ((width.max(1) as f64 * p.height as f64 / height.max(1) as f64) as u32) * p.count,
                    p.height,
                ),
                _ => (0, 0),
            };
            return Ok(Estimate {
                credits: (minutes.ceil() as i64).max(1),
                eta_ms: (minutes.max(0.05) * ms_per_megapixel).ceil() as i64 + 200,
                memory_bytes: 256 << 20,
                output_width: w,
                output_height: h,
            });
        }
        let (out_w, out_h, tier, bytes_per_pixel) = match params {
            Params::Color(p, _) => (width, height, p.tier, 3 * 4 * 12),
            Params::Upscale(p) => {
                let (w, h) = p.output_size(width, height, duration_ms.is_some());
                (w, h, p.tier, 3 * 4 * 8)
            }
            Params::Filmstrip(_)
            | Params::Waveform(_)
            | Params::Proxy(_)
            | Params::Cleanup(_)
            | Params::Stabilize(_)
            | Params::Scenes(_)
            | Params::Interpolate(_)
            | Params::Denoise(_)
            | Params::ExportRequest(_)
            | Params::Export(_) => {
                unreachable!("media kinds return above")
            }
        };
        let (max_w, max_h) = tier.max_output();
        // Portrait output is judged against the rotated limit.
        let fits = (out_w <= max_w && out_h <= max_h) || (out_w <= max_h && out_h <= max_w);
        if !fits {
            return Err(format!(
                "the output would be {out_w}x{out_h}, larger than the {tier:?} tier allows ({max_w}x{max_h}); choose a smaller scale or a higher tier"
            ));
        }
        // A video: every frame (at an assumed 30 fps until the worker knows better).
        let frames = match (self, duration_ms) {
            (JobKind::EnhanceUpscale, Some(d)) if d > 0 => (d as f64 / 1000.0 * 30.0).ceil().max(1.0),
            _ => 1.0,
        };
        let megapixels = out_w as f64 * out_h as f64 / 1e6 * frames;
        let model = match params {
            Params::Upscale(p) => p.model.unwrap_or(UpscaleModel::Classical),
            _ => UpscaleModel::Classical,
        };
        // Real-ESRGAN: the activations of one tile (from the network's shapes) plus the ×4
        // frame it assembles and the result; a learned model costs and takes more.
        let frames_bytes = width as u64 * height as u64 * 16 * 3 * 4 * 2 + out_w as u64 * out_h as u64 * 3 * 4 * 2;
        let memory_bytes = match model {
            UpscaleModel::Realesrgan => {
                let side = |n: u32| (n as usize).min(ESRGAN_TILE) + 2 * moviola_models::esrgan::RECEPTIVE_FIELD;
                moviola_models::esrgan::SrVggNetCompact::<burn::backend::Flex>::memory_bytes(side(height), side(width)) + frames_bytes
            }
            UpscaleModel::RealesrganX4plus => {
                let side = |n: u32| (n as usize).min(ESRGAN_TILE) + 2 * moviola_models::rrdb::RRDB_CONTEXT;
                moviola_models::rrdb::RrdbNet::<burn::backend::Flex>::memory_bytes(side(height), side(width)) + frames_bytes
            }
            UpscaleModel::Classical => out_w as u64 * out_h as u64 * bytes_per_pixel + width as u64 * height as u64 * 3 * 4,
        };
        let (credit_factor, time_factor) = match model {
            UpscaleModel::Realesrgan => (4.0, ESRGAN_TIME_FACTOR),
            UpscaleModel::RealesrganX4plus => (16.0, X4PLUS_TIME_FACTOR),
            UpscaleModel::Classical => (1.0, 1.0),
        };
        Ok(Estimate {
            credits: ((megapixels * self.credits_per_megapixel() * credit_factor).ceil() as i64).max(1),
            eta_ms: (megapixels * ms_per_megapixel * time_factor).ceil() as i64 + 50,
            memory_bytes,
            output_width: out_w,
            output_height: out_h,
        })
    }

    /// Actual cost of an image job from its real output (the store caps it at the estimate).
    pub fn actual_credits(self, output: &Frame) -> i64 {
        let megapixels = output.width as f64 * output.height as f64 / 1e6;
        ((megapixels * self.credits_per_megapixel()).ceil() as i64).max(1)
    }
}

/// Progress of one running job, by stage.
pub trait StageProgress {
    fn stage(&mut self, stage: &'static str, done: u64, total: u64);
    fn cancelled(&self) -> bool;
    /// A small PNG of the result so far, for watchers.
    fn preview(&mut self, _png: Vec<u8>) {}
}

/// Longest side of a preview image, in pixels.
pub const PREVIEW_SIDE: usize = 96;

struct InStage<'a> {
    inner: &'a mut dyn StageProgress,
    stage: &'static str,
}

impl Progress for InStage<'_> {
    fn step(&mut self, done: u64, total: u64) {
        self.inner.stage(self.stage, done, total);
    }
    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
}

/// Why a job did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Failed(String),
}

/// Decodes a PNG or JPEG into a frame, refusing anything else and anything too large.
pub fn decode_image(bytes: &[u8]) -> Result<Frame, String> {
    let reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    match reader.format() {
        Some(image::ImageFormat::Png | image::ImageFormat::Jpeg) => {}
        Some(other) => return Err(format!("{other:?} images are not supported; use PNG or JPEG")),
        None => return Err("not a PNG or JPEG image".into()),
    }
    let mut reader = reader;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_INPUT_SIDE);
    limits.max_image_height = Some(MAX_INPUT_SIDE);
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| format!("cannot decode the image: {e}"))?.to_rgb8();
    let (w, h) = img.dimensions();
    Frame::new(w, h, img.into_raw()).map_err(|e| e.to_string())
}

pub fn encode_png(frame: &Frame) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&frame.data, frame.width, frame.height, image::ExtendedColorType::Rgb8)
        .map_err(|e| format!("cannot encode PNG: {e}"))?;
    Ok(out)
}

use image::ImageEncoder;

/// Rows per band: progress and cancellation are checked between bands.
const BAND_ROWS: usize = 128;

/// Runs a job on backend `B`: decode, process in bands, encode. Returns the PNG bytes and the
/// output frame's size.
pub fn run<B: Backend>(
    device: &B::Device,
    kind: JobKind,
    params: &Params,
    input: &[u8],
    models: &std::path::Path,
    cache: &mut ModelCache,
    progress: &mut dyn StageProgress,
) -> Result<JobOutput, RunError> {
    progress.stage("decode", 0, 1);
    let frame = decode_image(input).map_err(RunError::Failed)?;
    progress.stage("decode", 1, 1);
    if progress.cancelled() {
        return Err(RunError::Cancelled);
    }
    let image = frame.to_tensor::<B>(device);
    let [_, h, w] = image.dims();
    let mut p = InStage {
        inner: progress,
        stage: "process",
    };
    let out = match (kind, params) {
        (JobKind::EnhanceColor, Params::Color(c, lut)) => {
            let bands = h.div_ceil(BAND_ROWS) as u64;
            let total = bands + 1;
            let mut image = image;
            if c.white_balance {
                image = white_balance(image);
            }
            if c.auto_levels {
                image = auto_levels(image, c.clip);
            }
            p.step(1, total);
            match lut {
                Some(lut) => {
                    let mut parts = Vec::new();
                    for (i, r0) in (0..h).step_by(BAND_ROWS).enumerate() {
                        if p.cancelled() {
                            return Err(RunError::Cancelled);
                        }
                        let r1 = (r0 + BAND_ROWS).min(h);
                        parts.push(lut.apply(image.clone().slice([0..3, r0..r1, 0..w])));
                        p.step(i as u64 + 2, total);
                    }
                    Tensor::cat(parts, 1)
                }
                None => {
                    p.step(total, total);
                    image
                }
            }
        }
        (JobKind::EnhanceUpscale, Params::Upscale(u)) if u.model == Some(UpscaleModel::Realesrgan) => {
            let net = cached_model(cache, "realesrgan", 3 << 20, &esrgan_record(models), |path| {
                moviola_models::esrgan::SrVggNetCompact::<B>::load(path, device)
            })?;
            learned_upscale(
                moviola_models::esrgan::Upscaler {
                    net,
                    scale: u.scale as usize,
                },
                image,
                u,
                &mut p,
            )?
        }
        (JobKind::EnhanceUpscale, Params::Upscale(u)) if u.model == Some(UpscaleModel::RealesrganX4plus) => {
            let net = cached_model(cache, "realesrgan-x4plus", 67 << 20, &x4plus_record(models), |path| {
                moviola_models::rrdb::RrdbNet::<B>::load(path, device)
            })?;
            // One ×4 network: other scales are the ×4 result taken down by Lanczos.
            learned_upscale(moviola_models::esrgan::Upscaler { net, scale: 4 }, image, u, &mut p)?
        }
        (JobKind::EnhanceUpscale, Params::Upscale(u)) => {
            let (out_w, out_h) = u.output_size(w as u32, h as u32, false);
            let (out_w, out_h) = (out_w as usize, out_h as usize);
            let bands = out_h.div_ceil(BAND_ROWS) as u64;
            let total = bands + 1;
            let tx = cache.get_or_insert(&format!("taps:{:?}:{w}:{out_w}", u.filter), (out_w * 8 * 12) as u64, || {
                Arc::new(Taps::new(u.filter, w, out_w))
            });
            let ty = cache.get_or_insert(&format!("taps:{:?}:{h}:{out_h}", u.filter), (out_h * 8 * 12) as u64, || {
                Arc::new(Taps::new(u.filter, h, out_h))
            });
            let wide = resample(&image, 2, &tx, 0..out_w);
            p.step(1, total);
            let mut parts = Vec::new();
            for (i, r0) in (0..out_h).step_by(BAND_ROWS).enumerate() {
                if p.cancelled() {
                    return Err(RunError::Cancelled);
                }
                let r1 = (r0 + BAND_ROWS).min(out_h);
                parts.push(resample(&wide, 1, &ty, r0..r1));
                p.step(i as u64 + 2, total);
            }
            Tensor::cat(parts, 1)
        }
        _ => return Err(RunError::Failed(format!("parameters do not belong to {}", kind.name()))),
    };
    if progress.cancelled() {
        return Err(RunError::Cancelled);
    }
    // A thumbnail of the result for the watchers, before the (slower) full encode.
    let [_, oh, ow] = out.dims();
    let scale = PREVIEW_SIDE as f64 / ow.max(oh) as f64;
    if scale < 1.0 {
        let (pw, ph) = (
            ((ow as f64 * scale).round() as usize).max(1),
            ((oh as f64 * scale).round() as usize).max(1),
        );
        let small = moviola_models::resample::resize(out.clone(), pw, ph, Filter::Bicubic);
        if let Ok(png) = Frame::from_tensor(small).map_err(|e| e.to_string()).and_then(|f| encode_png(&f)) {
            progress.preview(png);
        }
    }
    progress.stage("encode", 0, 1);
    let frame = Frame::from_tensor(out).map_err(|e| RunError::Failed(e.to_string()))?;
    let png = encode_png(&frame).map_err(RunError::Failed)?;
    progress.stage("encode", 1, 1);
    Ok(JobOutput {
        bytes: png,
        kind: "image",
        mime: "image/png",
        ext: "png",
        width: frame.width,
        height: frame.height,
        credits: kind.actual_credits(&frame),
        ..Default::default()
    })
}

/// A learned model from the cache, loaded from its record (`models fetch` made it) on first use.
fn cached_model<N: Clone + Send + 'static>(
    cache: &mut ModelCache,
    name: &'static str,
    bytes: u64,
    record: &std::path::Path,
    load: impl FnOnce(&std::path::Path) -> Result<N, moviola_models::esrgan::ModelError>,
) -> Result<N, RunError> {
    if !record.is_file() {
        return Err(RunError::Failed(format!(
            "the {name} model is not installed here: run `moviola models fetch {name}`"
        )));
    }
    let entry = cache.get_or_insert(name, bytes, || {
        Arc::new(std::sync::Mutex::new(load(&record.with_extension("")).map_err(|e| e.to_string())))
    });
    entry
        .lock()
        .map_err(|_| RunError::Failed("the model cache is poisoned".into()))?
        .clone()
        .map_err(|e| RunError::Failed(format!("cannot load {name}: {e}")))
}

/// A ×4 network's result at the job's size: as it comes for ×4, else taken down by Lanczos
/// (the anime model's ×2/×3 use ncnn's bicubic inside `Upscaler`).
fn learned_upscale<B: Backend, N: moviola_models::esrgan::Net4x<B>>(
    upscaler: moviola_models::esrgan::Upscaler<N>,
    image: Tensor<B, 3>,
    u: &UpscaleParams,
    p: &mut dyn Progress,
) -> Result<Tensor<B, 3>, RunError> {
    let [_, h, w] = image.dims();
    let out = upscaler.upscale(image, ESRGAN_TILE, p).ok_or(RunError::Cancelled)?;
    let (tw, th) = u.output_size(w as u32, h as u32, false);
    let [_, oh, ow] = out.dims();
    Ok(if (ow, oh) == (tw as usize, th as usize) {
        out
    } else {
        moviola_models::resample::resize(out, tw as usize, th as usize, Filter::Lanczos3)
    })
}

/// Runs a media kind in the worker process: the worker writes its result to a scratch file
/// that becomes the job's output.
#[allow(clippy::too_many_arguments)]
pub fn run_media(
    kind: JobKind,
    params: &Params,
    input: &std::path::Path,
    duration_ms: i64,
    models: &std::path::Path,
    scratch: &std::path::Path,
    limits: &super::worker::WorkerLimits,
    estimate_credits: i64,
    cancel: &std::sync::atomic::AtomicBool,
    progress: &mut dyn StageProgress,
) -> Result<JobOutput, RunError> {
    std::fs::create_dir_all(scratch).map_err(|e| RunError::Failed(format!("cannot create the scratch folder: {e}")))?;
    let (mut ext, mut mime, mut asset_kind) = match params {
        Params::Filmstrip(_) => ("png", "image/png", "image"),
        Params::Waveform(_) | Params::Scenes(_) => ("json", "application/json", "data"),
        Params::Proxy(_) => ("mp4", "video/mp4", "video"),
        Params::Cleanup(_) => ("m4a", "audio/mp4", "audio"),
        // A denoised sound-only input comes back as M4A (the worker says so).
        Params::Stabilize(_) | Params::Upscale(_) | Params::Interpolate(_) | Params::Denoise(_) => ("mp4", "video/mp4", "video"),
        Params::Export(job) => (job.resolved.container.ext(), job.resolved.container.mime(), "video"),
        _ => return Err(RunError::Failed(format!("parameters do not belong to {}", kind.name()))),
    };
    let stem = scratch.join(format!("{}-{}", std::process::id(), rand_suffix()));
    let out = stem.with_extension(ext);
    let job_file = stem.with_extension("export.json");
    let mut limits = limits.clone();
    let args: Vec<std::ffi::OsString> = match params {
        Params::Filmstrip(p) => vec![
            "filmstrip".into(),
            input.into(),
            out.clone().into(),
            duration_ms.to_string().into(),
            p.count.to_string().into(),
            p.height.to_string().into(),
        ],
        Params::Waveform(p) => vec![
            "waveform".into(),
            input.into(),
            out.clone().into(),
            p.peaks_per_second.to_string().into(),
            duration_ms.to_string().into(),
        ],
        Params::Proxy(p) => {
            limits = limits.render();
            vec!["proxy".into(), input.into(), out.clone().into(), p.height.to_string().into()]
        }
        Params::Cleanup(p) => {
            limits = limits.render();
            vec![
                "cleanup".into(),
                input.into(),
                out.clone().into(),
                p.denoise.to_string().into(),
                p.loudness.target_lufs().map_or("off".to_string(), |t| t.to_string()).into(),
            ]
        }
        Params::Interpolate(p) => {
            limits = limits.render();
            vec![
                "interpolate".into(),
                input.into(),
                out.clone().into(),
                p.factor.to_string().into(),
                models.into(),
                p.fps.map_or("source".to_string(), |f| f.to_string()).into(),
            ]
        }
        Params::Scenes(p) => {
            limits = limits.render();
            let model = p.model.unwrap_or(SceneModel::Scdet);
            let threshold = p.threshold.unwrap_or(model.threshold_range().2);
            vec![
                "scenes".into(),
                input.into(),
                out.clone().into(),
                model.name().into(),
                threshold.to_string().into(),
                models.into(),
            ]
        }
        Params::Stabilize(p) => {
            limits = limits.render();
            vec!["stabilize".into(), input.into(), out.clone().into(), p.smoothing.to_string().into()]
        }
        Params::Denoise(p) => {
            limits = limits.render();
            vec![
                "denoise".into(),
                input.into(),
                out.clone().into(),
                p.sigma.map_or("auto".to_string(), |v| v.to_string()).into(),
                p.strength.to_string().into(),
            ]
        }
        Params::Upscale(p) => {
            limits = limits.render();
            let model = p.model.and_then(UpscaleModel::catalog_name).unwrap_or("classical");
            let filter = match p.filter {
                Filter::Bicubic => "bicubic",
                _ => "lanczos",
            };
            vec![
                "upscale".into(),
                input.into(),
                out.clone().into(),
                p.scale.to_string().into(),
                model.into(),
                models.into(),
                filter.into(),
                p.height.unwrap_or(0).to_string().into(),
            ]
        }
        Params::Export(job) => {
            limits = limits.render();
            // For an export the "input" is the media folder its assets are resolved in.
            let mut job = (**job).clone();
            job.media_dir = input.to_string_lossy().into_owned();
            let text = serde_json::to_vec(&job).map_err(|e| RunError::Failed(e.to_string()))?;
            std::fs::write(&job_file, text).map_err(|e| RunError::Failed(format!("cannot write the export job: {e}")))?;
            vec!["export".into(), job_file.clone().into(), out.clone().into()]
        }
        _ => unreachable!("checked above"),
    };
    // The worker is killed as soon as the job's cancel flag is set. Model kinds write a small
    // still of the latest result frame now and then (`OUT.preview.png`) for the watchers.
    let preview_path = out.with_extension("preview.png");
    let answer = super::worker::run_blocking(&args, &limits, cancel, |event| match event {
        super::worker::WorkerEvent::Progress(done, total) => progress.stage("process", done, total),
        super::worker::WorkerEvent::Preview(path) => {
            if path == preview_path
                && let Ok(png) = std::fs::read(&path)
            {
                progress.preview(png);
            }
        }
    });
    let _ = std::fs::remove_file(&preview_path);
    let _ = std::fs::remove_file(out.with_extension("preview.part.png"));
    let _ = std::fs::remove_file(&job_file);
    // The worker's temporary files (see `moviola worker export`), even if it was killed.
    let _ = std::fs::remove_dir_all(out.with_extension("work"));
    let result = answer.and_then(|v| {
        // Only a denoise of sound-only input answers with sound.
        if matches!(params, Params::Denoise(_)) && v["kind"] == "audio" {
            (ext, mime, asset_kind) = ("m4a", "audio/mp4", "audio");
        }
        let (width, height) = (v["width"].as_u64().unwrap_or(0) as u32, v["height"].as_u64().unwrap_or(0) as u32);
        if asset_kind == "video" || asset_kind == "audio" {
            if !out.exists() {
                return Err(RunError::Failed("the worker wrote no result".into()));
            }
            let name = match params {
                Params::Export(job) => {
                    let preset = job.output.preset.map(|p| p.name()).unwrap_or("custom");
                    format!("export-{preset}-{width}x{height}.{ext}")
                }
                Params::Cleanup(p) => format!("cleaned-{}.{ext}", if p.denoise { "denoised" } else { "levelled" }),
                Params::Stabilize(_) => format!("stabilized.{ext}"),
                Params::Interpolate(InterpolateParams { fps: Some(fps), .. }) => format!("interpolated-{fps}fps.{ext}"),
                Params::Interpolate(p) => format!("interpolated-x{}.{ext}", p.factor),
                Params::Denoise(_) => format!("denoised.{ext}"),
                Params::Upscale(p) => format!(
                    "upscaled-{}-{}.{ext}",
                    p.height.map_or(format!("x{}", p.scale), |h| format!("{h}p")),
                    p.model.and_then(UpscaleModel::catalog_name).unwrap_or("classical")
                ),
                _ => format!("proxy-{height}p.{ext}"),
            };
            return Ok(JobOutput {
                file: Some(out.clone()),
                name: Some(name),
                duration_ms: v["duration_ms"].as_i64(),
                info: Some(v["media"].to_string()),
                kind: asset_kind,
                mime,
                ext,
                width,
                height,
                credits: estimate_credits,
                ..Default::default()
            });
        }
        let bytes = std::fs::read(&out).map_err(|e| RunError::Failed(format!("the worker wrote no result: {e}")))?;
        Ok(JobOutput {
            bytes,
            kind: asset_kind,
            mime,
            ext,
            width,
            height,
            credits: estimate_credits,
            ..Default::default()
        })
    });
    // A file result is moved into place by the supervisor; anything else left here goes.
    if result.as_ref().map_or(true, |o| o.file.is_none()) {
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(out.with_extension("thumb.png"));
    }
    result
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
