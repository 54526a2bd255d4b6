//! The media worker: `moviola worker …` probes and decodes untrusted media in a separate
//! process, so a crash or hang in FFmpeg's C code costs that one request, never the server.
//!
//! The server runs it through `prlimit` (address-space and CPU-time limits) with a wall-clock
//! timeout, and reads one JSON object from its stdout: the result, or `{"error": "…"}`.

use std::ffi::OsString;
use std::path::Path;

use serde_json::{Value, json};

pub use moviola_actors::jobs::worker::WorkerLimits;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The worker ran and says the input is not usable.
    #[error("{0}")]
    Refused(String),
    /// The worker died (a crash, or a limit) or hung.
    #[error("the media worker stopped: {0}")]
    Crashed(String),
}

/// `moviola worker ARGS…` (called by `main`). Returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    exit_with_the_server();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["probe", input] => moviola_media::probe(Path::new(input)).map(|info| serde_json::to_value(info).unwrap_or(Value::Null)),
        ["thumbnail", input, output, at_ms, max_side] => {
            let (at_ms, max_side) = (at_ms.parse().unwrap_or(0), max_side.parse().unwrap_or(320));
            moviola_media::thumbnail(Path::new(input), at_ms, max_side).and_then(|t| {
                let img = image::RgbImage::from_raw(t.width, t.height, t.rgb)
                    .ok_or_else(|| moviola_media::MediaError::Decode("bad frame size".into()))?;
                img.save_with_format(output, image::ImageFormat::Png)
                    .map_err(|e| moviola_media::MediaError::Decode(format!("cannot write the thumbnail: {e}")))?;
                Ok(json!({ "width": t.width, "height": t.height, "at_ms": t.at_ms }))
            })
        }
        ["filmstrip", input, output, duration_ms, count, height] => {
            let (duration_ms, count, height) = (
                duration_ms.parse().unwrap_or(0),
                count.parse().unwrap_or(10),
                height.parse().unwrap_or(72),
            );
            moviola_media::filmstrip(Path::new(input), duration_ms, count, height, |done, total| {
                println!("{}", json!({ "progress": { "done": done, "total": total } }));
            })
            .and_then(|t| {
                let img = image::RgbImage::from_raw(t.width, t.height, t.rgb)
                    .ok_or_else(|| moviola_media::MediaError::Decode("bad strip size".into()))?;
                img.save_with_format(output, image::ImageFormat::Png)
                    .map_err(|e| moviola_media::MediaError::Decode(format!("cannot write the filmstrip: {e}")))?;
                Ok(json!({ "width": t.width, "height": t.height }))
            })
        }
        ["waveform", input, output, peaks_per_second, duration_ms] => {
            let (pps, duration_ms): (u32, i64) = (peaks_per_second.parse().unwrap_or(50), duration_ms.parse().unwrap_or(0));
            let mut last = -1;
            moviola_media::waveform(Path::new(input), pps, |at_ms| {
                let pct = if duration_ms > 0 {
                    (at_ms * 100 / duration_ms).clamp(0, 100)
                } else {
                    0
                };
                if pct / 5 != last / 5 {
                    last = pct;
                    println!("{}", json!({ "progress": { "done": pct, "total": 100 } }));
                }
            })
            .and_then(|w| {
                let text = serde_json::to_string(&w).map_err(|e| moviola_media::MediaError::Decode(e.to_string()))?;
                std::fs::write(output, text).map_err(|e| moviola_media::MediaError::Decode(format!("cannot write the waveform: {e}")))?;
                Ok(json!({ "peaks": w.peaks.len() }))
            })
        }
        ["export", job, output] => export(Path::new(job), Path::new(output)),
        ["upscale", input, output, scale, model, models, filter, height] => upscale(input, output, scale, model, models, filter, height),
        ["interpolate", input, output, factor, models, fps] => interpolate(input, output, factor, models, fps),
        ["scenes", input, output, model, threshold, models] => scenes(input, output, model, threshold, models),
        ["denoise", input, output, sigma, strength] => denoise(input, output, sigma, strength),
        ["stabilize", input, output, smoothing] => {
            let smoothing = smoothing.parse().unwrap_or(30);
            let mut report = throttled_progress();
            scratch_for(Path::new(output)).and_then(|scratch| {
                let mut preview = Previewer::new(Path::new(output));
                let mut offer = |w: u32, h: u32, rgb: Vec<u8>| preview.offer(w, h, &rgb);
                moviola_media::filter::stabilize(Path::new(input), Path::new(output), &scratch, smoothing, &mut report, &mut offer).and_then(|r| {
                    let info = moviola_media::probe(Path::new(output))?;
                    let t = moviola_media::thumbnail(Path::new(output), info.duration_ms.unwrap_or(0) / 2, 320)?;
                    if let Some(img) = image::RgbImage::from_raw(t.width, t.height, t.rgb) {
                        let _ = img.save_with_format(Path::new(output).with_extension("thumb.png"), image::ImageFormat::Png);
                    }
                    Ok(json!({ "width": r.width, "height": r.height, "frames": r.frames, "duration_ms": info.duration_ms, "media": info }))
                })
            })
        }
        ["cleanup", input, output, denoise, target] => {
            let target = target.parse::<f64>().ok();
            let mut last = u64::MAX;
            moviola_media::audio::cleanup(Path::new(input), Path::new(output), *denoise == "true", target, |done, total| {
                let pct = done * 100 / total.max(1);
                if pct != last {
                    last = pct;
                    println!("{}", json!({ "progress": { "done": done, "total": total } }));
                }
            })
            .and_then(|report| {
                let info = moviola_media::probe(Path::new(output))?;
                Ok(json!({ "duration_ms": report.duration_ms, "report": report, "media": info }))
            })
        }
        ["proxy", input, output, height] => {
            let height = height.parse().unwrap_or(360);
            let mut report = throttled_progress();
            scratch_for(Path::new(output)).and_then(|scratch| {
                moviola_media::export::proxy(Path::new(input), Path::new(output), height, &scratch, &mut report)
                    .and_then(|r| answer(&r, Path::new(output)))
            })
        }
        _ => {
            eprintln!(
                "usage: moviola worker probe INPUT | thumbnail INPUT OUTPUT.png AT_MS MAX_SIDE | filmstrip INPUT OUTPUT.png DURATION_MS COUNT HEIGHT | waveform INPUT OUTPUT.json PEAKS_PER_SECOND DURATION_MS | export JOB.json OUTPUT | proxy INPUT OUTPUT.mp4 HEIGHT | cleanup INPUT OUTPUT.m4a DENOISE(true|false) TARGET_LUFS|off | stabilize INPUT OUTPUT.mp4 SMOOTHING | upscale INPUT OUTPUT.mp4 SCALE realesrgan|realesrgan-x4plus|classical MODELS_DIR FILTER HEIGHT(0: none) | scenes INPUT OUTPUT.json transnetv2|scdet THRESHOLD MODELS_DIR | denoise INPUT OUTPUT.mp4 SIGMA|auto STRENGTH | interpolate INPUT OUTPUT.mp4 FACTOR(2|4) MODELS_DIR FPS|source"
            );
            return 64;
        }
    };
    match result {
        Ok(v) => {
            println!("{v}");
            0
        }
        Err(e) => {
            println!("{}", json!({ "error": e.to_string() }));
            2
        }
    }
}

/// A progress reporter printing `{"progress": …}` at most once per percent.
fn throttled_progress() -> impl FnMut(u64, u64) -> bool {
    let mut last = u64::MAX;
    move |done, total| {
        let pct = done * 100 / total.max(1);
        if pct != last {
            last = pct;
            println!("{}", json!({ "progress": { "done": done, "total": total } }));
        }
        true
    }
}

/// The answer for a written video: what was written and how FFmpeg reads it back. A still
/// from its middle goes beside it (`NAME.thumb.png`), as for uploads.
fn answer(report: &moviola_media::export::ExportReport, output: &Path) -> Result<Value, moviola_media::MediaError> {
    let info = moviola_media::probe(output)?;
    let t = moviola_media::thumbnail(output, info.duration_ms.unwrap_or(0) / 2, 320)?;
    if let Some(img) = image::RgbImage::from_raw(t.width, t.height, t.rgb) {
        let _ = img.save_with_format(output.with_extension("thumb.png"), image::ImageFormat::Png);
    }
    Ok(json!({
        "width": report.width,
        "height": report.height,
        "frames": report.frames,
        "duration_ms": info.duration_ms.unwrap_or(report.duration_ms),
        "media": info,
    }))
}

/// `worker export JOB.json OUTPUT`: renders an export job written by the server.
fn export(job: &Path, output: &Path) -> Result<Value, moviola_media::MediaError> {
    use moviola_media::MediaError;
    let text = std::fs::read_to_string(job).map_err(|e| MediaError::Spec(format!("cannot read {}: {e}", job.display())))?;
    let job: moviola_actors::jobs::kinds::ExportJob = serde_json::from_str(&text).map_err(|e| MediaError::Spec(e.to_string()))?;
    let media_dir = std::path::PathBuf::from(&job.media_dir);
    let resolve = |asset: &str| job.source_path(&media_dir, asset);
    let scratch = scratch_for(output)?;
    let mut report = throttled_progress();
    let r = moviola_media::export::export(&job.plan, &resolve, &job.resolved, output, &scratch, &mut report)?;
    answer(&r, output)
}

/// `worker upscale`: footage upscaled frame by frame, by Real-ESRGAN (burn, CPU backend) or
/// FFmpeg's scaler.
/// `height` (non-zero): a target height, reached from the model's factor by Lanczos, or by the
/// classical filter directly; the width follows the picture's shape, even.
fn upscale(
    input: &str,
    output: &str,
    scale: &str,
    model: &str,
    models: &str,
    filter: &str,
    height: &str,
) -> Result<Value, moviola_media::MediaError> {
    use moviola_media::MediaError;
    let scale: f64 = scale.parse().map_err(|_| MediaError::Spec(format!("bad scale {scale:?}")))?;
    let target: u32 = height.parse().map_err(|_| MediaError::Spec(format!("bad height {height:?}")))?;
    let even_width = |w: u32, h: u32| ((f64::from(w) * f64::from(target) / f64::from(h.max(1)) / 2.0).round() as u32 * 2).max(2);
    let mut report = throttled_progress();
    let (input, output) = (Path::new(input), Path::new(output));
    let r = if model == "realesrgan" || model == "realesrgan-x4plus" {
        use moviola_models::backend::{Cpu, CpuDevice};
        // The size each frame comes out at: a target height (the width following, even), or
        // the factor asked for when the network gives another (x4plus is ×4 only).
        let size = |w: u32, h: u32, net_scale: usize| -> Option<(u32, u32)> {
            if target > 0 {
                Some((even_width(w, h), target))
            } else if net_scale as f64 != scale {
                let even = |v: u32| ((f64::from(v) * scale / 2.0).round() as u32 * 2).max(2);
                Some((even(w), even(h)))
            } else {
                None
            }
        };
        let not_installed = |e: moviola_models::esrgan::ModelError| {
            MediaError::Spec(format!("cannot load {model} ({e}): run `moviola models fetch {model}`"))
        };
        if model == "realesrgan" {
            let record = moviola_actors::jobs::kinds::esrgan_record(Path::new(models));
            let net =
                moviola_models::esrgan::SrVggNetCompact::<Cpu>::load(&record.with_extension(""), &CpuDevice).map_err(not_installed)?;
            let upscaler = moviola_models::esrgan::Upscaler {
                net,
                scale: scale as usize,
            };
            upscale_footage(&upscaler, input, output, &size, &mut report)?
        } else {
            let record = moviola_actors::jobs::kinds::x4plus_record(Path::new(models));
            let net = moviola_models::rrdb::RrdbNet::<Cpu>::load(&record.with_extension(""), &CpuDevice).map_err(not_installed)?;
            let upscaler = moviola_models::esrgan::Upscaler { net, scale: 4 };
            upscale_footage(&upscaler, input, output, &size, &mut report)?
        }
    } else {
        let flags = if filter == "bicubic" { "bicubic" } else { "lanczos" };
        let graph = if target > 0 {
            format!("scale=-2:{target}:flags={flags}")
        } else {
            format!("scale=trunc(iw*{scale}/2)*2:trunc(ih*{scale}/2)*2:flags={flags}")
        };
        moviola_media::filter::filter_video(input, Some(output), &graph, &mut report)?
    };
    written_video(output, &r)
}

/// Every frame of `input` through a learned ×4 network, resized to `size(w, h, net scale)`
/// when that gives one (Lanczos), previews of the result frames on the way.
fn upscale_footage<N: moviola_models::esrgan::Net4x<moviola_models::backend::Cpu>>(
    upscaler: &moviola_models::esrgan::Upscaler<N>,
    input: &Path,
    output: &Path,
    size: &dyn Fn(u32, u32, usize) -> Option<(u32, u32)>,
    report: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<moviola_media::filter::FilterReport, moviola_media::MediaError> {
    use moviola_media::MediaError;
    use moviola_models::backend::{Cpu, CpuDevice};
    let mut preview = Previewer::new(output);
    let mut transform = |w: u32, h: u32, rgb: Vec<u8>| -> Result<Vec<(u32, u32, Vec<u8>)>, MediaError> {
        if rgb.is_empty() {
            return Ok(Vec::new());
        }
        let frame = moviola_models::Frame::new(w, h, rgb).map_err(|e| MediaError::Decode(e.to_string()))?;
        let out = upscaler
            .upscale(
                frame.to_tensor::<Cpu>(&CpuDevice),
                moviola_actors::jobs::kinds::ESRGAN_TILE,
                &mut moviola_models::NoProgress,
            )
            .ok_or(MediaError::Cancelled)?;
        let out = match size(w, h, upscaler.scale) {
            Some((tw, th)) => moviola_models::resample::resize(out, tw as usize, th as usize, moviola_models::resample::Filter::Lanczos3),
            None => out,
        };
        let out = moviola_models::Frame::from_tensor(out).map_err(|e| MediaError::Encode(e.to_string()))?;
        preview.offer(out.width, out.height, &out.data);
        Ok(vec![(out.width, out.height, out.data)])
    };
    moviola_media::filter::filter_video_with(input, Some(output), "null", Some(&mut transform), report)
}

/// The answer for a video a filter wrote: its size as players show it, frames, length, probe;
/// a still from its middle goes beside it (`NAME.thumb.png`), as for uploads.
fn written_video(output: &Path, r: &moviola_media::filter::FilterReport) -> Result<Value, moviola_media::MediaError> {
    let info = moviola_media::probe(output)?;
    let (w, h) = info.display_size().unwrap_or((r.width, r.height));
    let t = moviola_media::thumbnail(output, info.duration_ms.unwrap_or(0) / 2, 320)?;
    if let Some(img) = image::RgbImage::from_raw(t.width, t.height, t.rgb) {
        let _ = img.save_with_format(output.with_extension("thumb.png"), image::ImageFormat::Png);
    }
    Ok(json!({ "width": w, "height": h, "frames": r.frames, "duration_ms": info.duration_ms, "media": info }))
}

/// Ends this worker as soon as the server that started it is gone (killed or crashed): the
/// worker's parent changes when the server dies, and a render nobody will collect must not go
/// on for hours beside the retried job. Its scratch files go when the server next starts (it
/// empties `media/tmp`).
fn exit_with_the_server() {
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_millis(500));
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(3);
            }
        }
    });
}

/// A small still of the latest result frame beside the output (`OUT.preview.png`), at most
/// every two seconds, announced to the parent as `{"preview": PATH}` (it shows it to the
/// job's watchers).
struct Previewer {
    path: std::path::PathBuf,
    last: Option<std::time::Instant>,
}

impl Previewer {
    fn new(output: &Path) -> Previewer {
        Previewer {
            path: output.with_extension("preview.png"),
            last: None,
        }
    }

    fn offer(&mut self, w: u32, h: u32, rgb: &[u8]) {
        if self.last.is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(2)) {
            return;
        }
        self.last = Some(std::time::Instant::now());
        let Some(img) = image::RgbImage::from_raw(w, h, rgb.to_vec()) else {
            return;
        };
        let side = moviola_actors::jobs::kinds::PREVIEW_SIDE as f64;
        let scale = (side / f64::from(w.max(h).max(1))).min(1.0);
        let (pw, ph) = (
            ((f64::from(w) * scale).round() as u32).max(1),
            ((f64::from(h) * scale).round() as u32).max(1),
        );
        let small = image::imageops::thumbnail(&img, pw, ph);
        // Written aside and renamed, so the parent never reads half a file.
        let part = self.path.with_extension("part.png");
        if small.save_with_format(&part, image::ImageFormat::Png).is_ok() && std::fs::rename(&part, &self.path).is_ok() {
            println!("{}", json!({ "preview": self.path }));
        }
    }
}

/// `worker denoise`: pictures by spatio-temporal non-local means (each frame with the one
/// before and after it), the sound kept; a sound-only input by RNNoise (levels unchanged),
/// written as M4A (`"kind": "audio"` in the answer). `sigma`: the noise level in 8-bit levels,
/// or `auto` to estimate it per frame (the lowest of the frame's and its neighbours').
fn denoise(input: &str, output: &str, sigma: &str, strength: &str) -> Result<Value, moviola_media::MediaError> {
    use moviola_media::MediaError;
    use moviola_models::backend::{Cpu, CpuDevice};
    use moviola_models::burn::tensor::Tensor;
    use moviola_models::denoise::{NlMeans, estimate_sigma};
    let (input, output) = (Path::new(input), Path::new(output));
    let fixed: Option<f32> = match sigma {
        "auto" => None,
        v => Some(v.parse().map_err(|_| MediaError::Spec(format!("sigma {v:?} is not a number")))?),
    };
    let strength: f32 = strength
        .parse()
        .map_err(|_| MediaError::Spec(format!("strength {strength:?} is not a number")))?;
    let info = moviola_media::probe(input)?;
    if info.video().is_none() {
        let mut last = u64::MAX;
        let report = moviola_media::audio::cleanup(input, output, true, None, |done, total| {
            let pct = done * 100 / total.max(1);
            if pct != last {
                last = pct;
                println!("{}", json!({ "progress": { "done": done, "total": total } }));
            }
        })?;
        let info = moviola_media::probe(output)?;
        return Ok(json!({ "kind": "audio", "duration_ms": report.duration_ms, "report": report, "media": info }));
    }
    // (size, pixels, tensor, estimated level) of a frame waiting for its successor.
    type Held = ((u32, u32), Tensor<Cpu, 3>, f32);
    let mut before: Option<Held> = None;
    let mut current: Option<Held> = None;
    let mut preview = Previewer::new(output);
    let mut run = |c: &Held, neighbours: Vec<&Held>| -> Result<(u32, u32, Vec<u8>), MediaError> {
        let same: Vec<&Held> = neighbours.into_iter().filter(|n| n.0 == c.0).collect();
        let level = fixed.unwrap_or_else(|| same.iter().map(|n| n.2).fold(c.2, f32::min));
        let mut nl = NlMeans::for_sigma(level / 255.0);
        nl.h *= strength;
        let out = nl.denoise(c.1.clone(), &same.iter().map(|n| n.1.clone()).collect::<Vec<_>>());
        let f = moviola_models::Frame::from_tensor(out).map_err(|e| MediaError::Encode(e.to_string()))?;
        preview.offer(f.width, f.height, &f.data);
        Ok((f.width, f.height, f.data))
    };
    let mut transform = |w: u32, h: u32, rgb: Vec<u8>| -> Result<Vec<(u32, u32, Vec<u8>)>, MediaError> {
        // The end: the last frame, with only the one before it.
        if rgb.is_empty() {
            return match current.take() {
                Some(c) => Ok(vec![run(&c, before.iter().collect())?]),
                None => Ok(Vec::new()),
            };
        }
        let level = if fixed.is_some() {
            0.0
        } else {
            estimate_sigma(w as usize, h as usize, &rgb)
        };
        let frame = moviola_models::Frame::new(w, h, rgb).map_err(|e| MediaError::Decode(e.to_string()))?;
        let next: Held = ((w, h), frame.to_tensor::<Cpu>(&CpuDevice), level);
        let mut out = Vec::new();
        if let Some(c) = current.take() {
            out.push(run(&c, before.iter().chain(std::iter::once(&next)).collect())?);
            before = Some(c);
        }
        current = Some(next);
        Ok(out)
    };
    let mut report = throttled_progress();
    let r = moviola_media::filter::filter_video_with(input, Some(output), "null", Some(&mut transform), &mut report)?;
    written_video(output, &r)
}

/// Shot boundaries: TransNetV2 on every frame at 48×27 (streamed, one window in memory), or
/// FFmpeg's scdet. Writes `{method, threshold, frames, cuts: [{time_ms, ticks, score}]}`, each cut at
/// the first frame of the new shot (after a gradual transition: where it ends).
fn scenes(input: &str, output: &str, model: &str, threshold: &str, models: &str) -> Result<Value, moviola_media::MediaError> {
    use moviola_media::MediaError;
    use moviola_models::backend::{Cpu, CpuDevice};
    use moviola_models::transnet::{HEIGHT, ShotStream, TransNetV2, WIDTH, shot_starts};
    let threshold: f64 = threshold
        .parse()
        .map_err(|_| MediaError::Spec(format!("the threshold {threshold:?} is not a number")))?;
    let (cuts, frames) = match model {
        "scdet" => {
            let mut report = throttled_progress();
            (
                moviola_media::filter::detect_scenes(Path::new(input), threshold, &mut report)?,
                None,
            )
        }
        "transnetv2" => {
            let record = moviola_actors::jobs::kinds::transnet_record(Path::new(models));
            let net = TransNetV2::<Cpu>::load(&record.with_extension(""), &CpuDevice)
                .map_err(|e| MediaError::Spec(format!("cannot load transnetv2 ({e}): run `moviola models fetch transnetv2`")))?;
            let mut stream = ShotStream::new(&net, CpuDevice);
            let mut times = Vec::new();
            let mut each = |time: (i64, i64), rgb: &[u8]| {
                times.push(time);
                stream.push(rgb);
            };
            // The network runs as frames arrive, so decoding's progress is the job's.
            let mut report = throttled_progress();
            let n = moviola_media::filter::each_frame_scaled(Path::new(input), WIDTH as u32, HEIGHT as u32, &mut each, &mut report)?;
            let p = stream.finish();
            let cuts = shot_starts(&p, threshold as f32)
                .into_iter()
                .map(|i| {
                    // The transition's peak probability, from its run of frames up to the cut.
                    let run = p[..i]
                        .iter()
                        .rev()
                        .take_while(|v| f64::from(**v) > threshold)
                        .fold(0f32, |m, v| m.max(*v));
                    moviola_media::filter::SceneCut {
                        time_ms: times[i].0,
                        ticks: times[i].1,
                        score: (f64::from(run) * 1000.0).round() / 1000.0,
                    }
                })
                .collect();
            (cuts, Some(n))
        }
        other => return Err(MediaError::Spec(format!("unknown scene detector {other:?}: transnetv2 or scdet"))),
    };
    let body = json!({ "method": model, "threshold": threshold, "frames": frames, "cuts": cuts });
    std::fs::write(output, body.to_string()).map_err(|e| MediaError::Encode(format!("cannot write the cut list: {e}")))?;
    Ok(json!({ "cuts": cuts.len() }))
}

/// `worker interpolate`: footage at 2× or 4× its frame rate, RIFE making the frames between
/// (4×: the middle, then the middles of each half).
/// With a target rate (`fps`: frames a second, or `source`), the frames made at factor × the
/// source's rate are retimed to it: each output frame is the made frame nearest its time.
fn interpolate(input: &str, output: &str, factor: &str, models: &str, fps: &str) -> Result<Value, moviola_media::MediaError> {
    use moviola_media::MediaError;
    use moviola_models::backend::{Cpu, CpuDevice};
    use moviola_models::burn::tensor::Tensor;
    let factor: u32 = match factor {
        "2" => 2,
        "4" => 4,
        other => return Err(MediaError::Spec(format!("factor must be 2 or 4, not {other:?}"))),
    };
    let record = moviola_actors::jobs::kinds::rife_record(Path::new(models));
    let net = moviola_models::rife::IfNet::<Cpu>::load(&record.with_extension(""), &CpuDevice)
        .map_err(|e| MediaError::Spec(format!("cannot load rife ({e}): run `moviola models fetch rife`")))?;
    let to_rgb = |t: Tensor<Cpu, 3>| -> Result<(u32, u32, Vec<u8>), MediaError> {
        let f = moviola_models::Frame::from_tensor(t).map_err(|e| MediaError::Encode(e.to_string()))?;
        Ok((f.width, f.height, f.data))
    };
    let mut previous: Option<(u32, u32, Vec<u8>, Tensor<Cpu, 3>)> = None;
    let mut preview = Previewer::new(Path::new(output));
    let mut transform = |w: u32, h: u32, rgb: Vec<u8>| -> Result<Vec<(u32, u32, Vec<u8>)>, MediaError> {
        let copies = |f: &(u32, u32, Vec<u8>, Tensor<Cpu, 3>)| (0..factor - 1).map(|_| (f.0, f.1, f.2.clone())).collect::<Vec<_>>();
        // The end: the last frame also fills the time of the frames after it.
        if rgb.is_empty() {
            return Ok(previous.as_ref().map(copies).unwrap_or_default());
        }
        let frame = moviola_models::Frame::new(w, h, rgb.clone()).map_err(|e| MediaError::Decode(e.to_string()))?;
        let current = frame.to_tensor::<Cpu>(&CpuDevice);
        let mut out = Vec::new();
        if let Some(prev) = previous.take() {
            // A cut (the pictures differ a lot) or a change of size is not interpolated: the
            // earlier picture holds until the new one (as the reference does at scene changes).
            let same_size = (prev.0, prev.1) == (w, h);
            let mad = if same_size {
                let step = 7;
                let n = prev.2.len().div_ceil(step);
                prev.2
                    .iter()
                    .step_by(step)
                    .zip(rgb.iter().step_by(step))
                    .map(|(a, b)| a.abs_diff(*b) as u64)
                    .sum::<u64>() as f64
                    / n.max(1) as f64
            } else {
                f64::MAX
            };
            if mad > 40.0 {
                out.extend(copies(&prev));
            } else {
                let mid = net.middle(prev.3.clone(), current.clone());
                if factor == 4 {
                    out.push(to_rgb(net.middle(prev.3.clone(), mid.clone()))?);
                    out.push(to_rgb(mid.clone())?);
                    out.push(to_rgb(net.middle(mid, current.clone()))?);
                } else {
                    out.push(to_rgb(mid)?);
                }
            }
        }
        if let Some(f) = out.first() {
            preview.offer(f.0, f.1, &f.2);
        }
        out.push((w, h, rgb.clone()));
        previous = Some((w, h, rgb, current));
        Ok(out)
    };
    let target = match fps {
        "source" => None,
        v => Some(
            moviola_actors::jobs::kinds::rational_fps(v.parse().map_err(|_| MediaError::Spec(format!("fps {v:?} is not a number")))?)
                .ok_or_else(|| MediaError::Spec(format!("fps {v} is out of range")))?,
        ),
    };
    let mut report = throttled_progress();
    let r = match target {
        None => moviola_media::filter::map_video(
            Path::new(input),
            Path::new(output),
            &mut transform,
            moviola_media::filter::Rate::Times(factor),
            &mut report,
        )?,
        Some((fnum, fden)) => {
            let (snum, sden) = moviola_media::probe(Path::new(input))?
                .video()
                .map(|v| v.frame_rate)
                .filter(|(n, d)| *n > 0 && *d > 0)
                .ok_or_else(|| MediaError::Spec("the footage has no frame rate to retime from".into()))?;
            // Made frame m is at m / (factor·S); output frame j at j / F: j takes the made frame
            // round(j·factor·S/F), in exact integers.
            let (num, den) = (
                i128::from(factor) * i128::from(snum) * i128::from(fden),
                i128::from(sden) * i128::from(fnum),
            );
            let (mut made, mut next) = (0i128, 0i128);
            let mut retimed = |w: u32, h: u32, rgb: Vec<u8>| -> Result<Vec<(u32, u32, Vec<u8>)>, MediaError> {
                let mut out = Vec::new();
                for f in transform(w, h, rgb)? {
                    while (2 * next * num + den) / (2 * den) == made {
                        out.push(f.clone());
                        next += 1;
                    }
                    made += 1;
                }
                Ok(out)
            };
            moviola_media::filter::map_video(
                Path::new(input),
                Path::new(output),
                &mut retimed,
                moviola_media::filter::Rate::Fixed(fnum, fden),
                &mut report,
            )?
        }
    };
    let info = moviola_media::probe(Path::new(output))?;
    let t = moviola_media::thumbnail(Path::new(output), info.duration_ms.unwrap_or(0) / 2, 320)?;
    if let Some(img) = image::RgbImage::from_raw(t.width, t.height, t.rgb) {
        let _ = img.save_with_format(Path::new(output).with_extension("thumb.png"), image::ImageFormat::Png);
    }
    Ok(json!({ "width": r.width, "height": r.height, "source_frames": r.frames, "duration_ms": info.duration_ms, "media": info }))
}

/// Temporary files of a render go in `OUTPUT.work/`, which the server removes when the worker
/// has stopped, however it stopped.
fn scratch_for(output: &Path) -> Result<std::path::PathBuf, moviola_media::MediaError> {
    let dir = output.with_extension("work");
    std::fs::create_dir_all(&dir).map_err(|e| moviola_media::MediaError::Encode(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Runs `moviola worker ARGS…` under `limits` and returns its JSON answer (async, for
/// request handlers).
pub async fn run(args: &[OsString], limits: &WorkerLimits) -> Result<Value, WorkerError> {
    let cmd = moviola_actors::jobs::worker::command(args, limits).map_err(WorkerError::Crashed)?;
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| WorkerError::Crashed(format!("cannot start: {e}")))?;
    let out = match tokio::time::timeout(limits.timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(WorkerError::Crashed(e.to_string())),
        Err(_) => {
            return Err(WorkerError::Crashed(format!(
                "no answer within {} s; stopped",
                limits.timeout.as_secs()
            )));
        }
    };
    let answer: Option<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|v| v.get("progress").is_none());
    match (out.status.code(), answer) {
        (Some(0), Some(v)) => Ok(v),
        (Some(2), Some(v)) => Err(WorkerError::Refused(v["error"].as_str().unwrap_or("unusable input").to_owned())),
        _ => Err(WorkerError::Crashed(moviola_actors::jobs::worker::describe_exit(out.status))),
    }
}
