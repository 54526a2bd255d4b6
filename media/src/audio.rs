//! Sound clean-up: RNNoise noise suppression (the `nnnoiseless` crate, Xiph's RNNoise network
//! in Rust) and loudness normalisation to an integrated target measured as ITU-R BS.1770-4 /
//! EBU R128 prescribe, with a look-ahead limiter keeping the peaks at or below −1 dBFS.

use std::path::Path;

use ffmpeg_next as ff;

use crate::MediaError;
use crate::export::{self, AudioCodec, Quality, Resolved};

/// Everything is processed at RNNoise's rate.
pub const RATE: u32 = 48_000;

/// Decodes the first audio stream to stereo f32 at 48 kHz (mono on both sides).
pub fn decode(path: &Path, mut progress: impl FnMut(usize)) -> Result<Vec<[f32; 2]>, MediaError> {
    crate::init();
    let reader = export::sources::AudioReader::open(path, RATE)?.ok_or(MediaError::NoStream("audio"))?;
    reader.read_to_end(&mut progress)
}

/// RNNoise on each channel. Its 10 ms of latency is taken out, so the result stays in sync
/// with the picture.
pub fn denoise(samples: &mut [[f32; 2]], mut progress: impl FnMut(usize, usize)) {
    const N: usize = nnnoiseless::FRAME_SIZE;
    let len = samples.len();
    for ch in 0..2 {
        let mut state = nnnoiseless::DenoiseState::new();
        // RNNoise works on 16-bit sample values.
        let mut input: Vec<f32> = samples.iter().map(|s| s[ch] * 32768.0).collect();
        input.resize(len.div_ceil(N) * N + N, 0.0);
        let mut output = vec![0f32; input.len()];
        let mut frame = [0f32; N];
        for (k, chunk) in input.chunks_exact(N).enumerate() {
            state.process_frame(&mut frame, chunk);
            output[k * N..(k + 1) * N].copy_from_slice(&frame);
            if k % 100 == 0 {
                progress(ch * len + k * N, 2 * len);
            }
        }
        for (i, s) in samples.iter_mut().enumerate() {
            s[ch] = output[i + N] / 32768.0;
        }
    }
    progress(2 * len, 2 * len);
}

/// A biquad section, direct form I.
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
    x: [f64; 2],
    y: [f64; 2],
}

impl Biquad {
    fn run(&mut self, v: f64) -> f64 {
        let out = self.b[0] * v + self.b[1] * self.x[0] + self.b[2] * self.x[1] - self.a[0] * self.y[0] - self.a[1] * self.y[1];
        self.x = [v, self.x[0]];
        self.y = [out, self.y[0]];
        out
    }
}

/// Integrated loudness in LUFS (BS.1770-4 K-weighting at 48 kHz, 400 ms blocks every 100 ms,
/// absolute gate −70 LUFS, relative gate −10 LU); `None` for silence.
pub fn integrated_loudness(samples: &[[f32; 2]]) -> Option<f64> {
    let mut power = vec![0f64; samples.len()];
    for ch in 0..2 {
        let mut shelf = Biquad {
            b: [1.535_124_859_586_97, -2.691_696_189_406_38, 1.198_392_810_852_85],
            a: [-1.690_659_293_182_41, 0.732_480_774_215_85],
            x: [0.0; 2],
            y: [0.0; 2],
        };
        let mut high_pass = Biquad {
            b: [1.0, -2.0, 1.0],
            a: [-1.990_047_454_833_98, 0.990_072_250_366_21],
            x: [0.0; 2],
            y: [0.0; 2],
        };
        for (p, s) in power.iter_mut().zip(samples) {
            let k = high_pass.run(shelf.run(f64::from(s[ch])));
            *p += k * k;
        }
    }
    let (block, step) = (RATE as usize * 4 / 10, RATE as usize / 10);
    if power.len() < block {
        return None;
    }
    let mut prefix = vec![0f64; power.len() + 1];
    for (i, p) in power.iter().enumerate() {
        prefix[i + 1] = prefix[i] + p;
    }
    let blocks: Vec<f64> = (0..=(power.len() - block) / step)
        .map(|b| (prefix[b * step + block] - prefix[b * step]) / block as f64)
        .collect();
    let lufs = |z: f64| -0.691 + 10.0 * z.log10();
    let above: Vec<f64> = blocks.iter().copied().filter(|z| *z > 0.0 && lufs(*z) > -70.0).collect();
    if above.is_empty() {
        return None;
    }
    let relative = lufs(above.iter().sum::<f64>() / above.len() as f64) - 10.0;
    let gated: Vec<f64> = above.into_iter().filter(|z| lufs(*z) > relative).collect();
    Some(lufs(gated.iter().sum::<f64>() / gated.len().max(1) as f64))
}

/// The peak ceiling, −1 dBFS in sample peak (AAC may add a few hundredths of a dB).
const CEILING: f32 = 0.891;

/// Scales the sound to `target` LUFS; peaks that would pass −1 dBFS are held under it by a
/// look-ahead limiter, and the gain is corrected for what the limiter took (a few passes).
/// Returns the total gain applied, in dB.
pub fn normalize(samples: &mut [[f32; 2]], target: f64) -> Option<f64> {
    let mut total_db = 0.0;
    for _ in 0..4 {
        let now = integrated_loudness(samples)?;
        let gain_db = target - now;
        if gain_db.abs() < 0.05 {
            break;
        }
        let gain = 10f64.powf(gain_db / 20.0) as f32;
        for s in samples.iter_mut() {
            s[0] *= gain;
            s[1] *= gain;
        }
        total_db += gain_db;
        limit(samples);
    }
    // Whatever the loudness was, the peaks end under the ceiling.
    limit(samples);
    Some(total_db)
}

/// A look-ahead peak limiter: the gain each sample needs is held over ±5 ms and ramped (so it
/// is already down when the peak arrives, without a step) and recovers over ~50 ms.
fn limit(samples: &mut [[f32; 2]]) {
    const LOOK: usize = 240;
    let need: Vec<f32> = samples
        .iter()
        .map(|s| {
            let p = s[0].abs().max(s[1].abs());
            if p > CEILING { CEILING / p } else { 1.0 }
        })
        .collect();
    if need.iter().all(|g| *g >= 1.0) {
        return;
    }
    // Sliding minimum over [i − LOOK, i + LOOK].
    let n = need.len();
    let mut window = std::collections::VecDeque::<usize>::new();
    let mut least = vec![1f32; n];
    for i in 0..n + LOOK {
        if i < n {
            while window.back().is_some_and(|&j| need[j] >= need[i]) {
                window.pop_back();
            }
            window.push_back(i);
        }
        if i >= LOOK {
            let at = i - LOOK;
            while window.front().is_some_and(|&j| j + 2 * LOOK < at + LOOK) {
                window.pop_front();
            }
            least[at] = window.front().map_or(1.0, |&j| need[j]);
        }
    }
    // A centred moving average (±LOOK/2) of the held minimum ramps the gain down instead of
    // stepping it; every value averaged lies within ±LOOK of a peak's sample, so the average
    // is still at or below what that peak needs.
    let half = LOOK / 2;
    let mut prefix = vec![0f64; n + 1];
    for (i, v) in least.iter().enumerate() {
        prefix[i + 1] = prefix[i] + f64::from(*v);
    }
    let smooth: Vec<f32> = (0..n)
        .map(|i| {
            let (a, b) = (i.saturating_sub(half), (i + half + 1).min(n));
            ((prefix[b] - prefix[a]) / (b - a) as f64) as f32
        })
        .collect();
    let release = 1.0 / 2400.0;
    let mut g = 1.0f32;
    for (s, m) in samples.iter_mut().zip(smooth) {
        g = if m < g { m } else { (g + (m - g) * release).min(m) };
        s[0] *= g;
        s[1] *= g;
    }
}

/// Writes stereo 48 kHz sound as AAC in an M4A file.
pub fn write_m4a(path: &Path, samples: &[[f32; 2]], kbps: u32) -> Result<(), MediaError> {
    crate::init();
    let out = Resolved {
        width: 16,
        height: 16,
        frame_rate: moviola_crdt::time::FrameRate { num: 30, den: 1 },
        sample_rate: RATE,
        container: export::Container::Mp4,
        video_codec: export::VideoCodec::H264,
        audio_codec: AudioCodec::Aac,
        fit: export::Fit::Pad,
        quality: Quality::High,
        video_bitrate_kbps: None,
        audio_bitrate_kbps: kbps,
    };
    let result = (|| {
        let mut octx = ff::format::output_as(path, "ipod").map_err(export::encode_err("cannot create the output file"))?;
        let mut a = export::open_audio(&mut octx, &out)?;
        octx.write_header().map_err(export::encode_err("cannot write the header"))?;
        let mut at = 0;
        while at < samples.len() {
            let n = a.frame_size.min(samples.len() - at);
            let frame = export::audio_frame(&samples[at..at + n], a.format, RATE, at as i64);
            a.encoder.send_frame(&frame).map_err(export::encode_err("audio encoder"))?;
            export::drain(&mut a.encoder, a.stream, a.tb, n as i64, &mut octx)?;
            at += n;
        }
        a.encoder.send_eof().map_err(export::encode_err("audio encoder"))?;
        export::drain(&mut a.encoder, a.stream, a.tb, a.frame_size as i64, &mut octx)?;
        octx.write_trailer().map_err(export::encode_err("cannot finish the file"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// What a clean-up did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CleanupReport {
    pub duration_ms: i64,
    pub loudness_before: Option<f64>,
    pub loudness_after: Option<f64>,
    pub gain_db: Option<f64>,
}

/// Decode → RNNoise (if `denoise`) → normalise to `target_lufs` (if any) → AAC M4A.
/// `progress(done, total)` counts per mille.
pub fn cleanup(
    input: &Path,
    output: &Path,
    denoise_on: bool,
    target_lufs: Option<f64>,
    mut progress: impl FnMut(u64, u64),
) -> Result<CleanupReport, MediaError> {
    let expected = crate::probe(input)?.duration_ms.unwrap_or(0).max(1) as f64 * 48.0;
    let mut samples = decode(input, |n| progress(((n as f64 / expected).min(1.0) * 300.0) as u64, 1000))?;
    if samples.is_empty() {
        return Err(MediaError::Decode("the sound has no samples".into()));
    }
    let before = integrated_loudness(&samples);
    if denoise_on {
        denoise(&mut samples, |d, t| progress(300 + (d as f64 / t as f64 * 500.0) as u64, 1000));
    }
    let gain_db = target_lufs.and_then(|t| normalize(&mut samples, t));
    let after = integrated_loudness(&samples);
    write_m4a(output, &samples, 192)?;
    progress(1000, 1000);
    Ok(CleanupReport {
        duration_ms: (samples.len() as i64 * 1000) / i64::from(RATE),
        loudness_before: before,
        loudness_after: after,
        gain_db,
    })
}
