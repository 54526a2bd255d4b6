//! Sound clean-up: RNNoise improves speech mixed with noise at a known level (scale-invariant
//! SNR, speech from espeak-ng), keeps sync, and loudness lands on the −14 / −16 LUFS presets as
//! the ffmpeg command line's EBU R128 meter reads it.

mod common;
use common::dir;

use std::path::Path;
use std::process::Command;

use moviola_media::audio;

/// 16-bit stereo 48 kHz WAV.
fn write_wav(path: &Path, samples: &[[f32; 2]]) {
    let data_len = samples.len() * 4;
    let mut out = Vec::with_capacity(44 + data_len);
    out.extend(b"RIFF");
    out.extend(((36 + data_len) as u32).to_le_bytes());
    out.extend(b"WAVEfmt ");
    out.extend(16u32.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(48_000u32.to_le_bytes());
    out.extend((48_000u32 * 4).to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend(16u16.to_le_bytes());
    out.extend(b"data");
    out.extend((data_len as u32).to_le_bytes());
    for s in samples {
        for v in s {
            out.extend(((v.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes());
        }
    }
    std::fs::write(path, out).unwrap();
}

fn speech(d: &Path) -> Vec<[f32; 2]> {
    let wav = d.join("speech.wav");
    let status = Command::new("espeak-ng")
        .arg("-w")
        .arg(&wav)
        .arg("The quick brown fox jumps over the lazy dog. Moviola cleans up the dialogue of noisy footage.")
        .status()
        .expect("espeak-ng is installed (scripts/setup.sh)");
    assert!(status.success());
    audio::decode(&wav, |_| {}).unwrap()
}

/// Deterministic white noise in −1..1.
fn noise(n: usize) -> Vec<f32> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 23) as f32 * 2.0 - 1.0
        })
        .collect()
}

fn power(x: &[f32]) -> f64 {
    x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / x.len().max(1) as f64
}

/// Scale-invariant SNR of `estimate` against `reference`, in dB.
fn si_snr(reference: &[f32], estimate: &[f32]) -> f64 {
    let dot: f64 = reference.iter().zip(estimate).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
    let norm: f64 = reference.iter().map(|a| f64::from(*a).powi(2)).sum();
    let alpha = dot / norm;
    let (mut sig, mut err) = (0.0, 0.0);
    for (a, b) in reference.iter().zip(estimate) {
        let t = alpha * f64::from(*a);
        sig += t * t;
        err += (f64::from(*b) - t).powi(2);
    }
    10.0 * (sig / err.max(1e-12)).log10()
}

/// The integrated loudness the ffmpeg CLI's `ebur128` filter reports.
fn ffmpeg_loudness(path: &Path) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(path)
        .args(["-af", "ebur128", "-f", "null", "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let summary = text.rsplit("Summary:").next().unwrap();
    let i = summary.split("I:").nth(1).unwrap().split_whitespace().next().unwrap();
    i.parse().unwrap()
}

#[test]
fn rnnoise_improves_noisy_speech_and_keeps_sync() {
    let d = dir();
    let clean: Vec<f32> = speech(&d.0).iter().map(|s| s[0]).collect();
    let n = noise(clean.len());
    // Noise at 5 dB below the speech.
    let gain = ((power(&clean) / power(&n)) / 10f64.powf(5.0 / 10.0)).sqrt() as f32;
    let mixed: Vec<[f32; 2]> = clean.iter().zip(&n).map(|(s, v)| [s + v * gain, s + v * gain]).collect();
    let noisy = d.0.join("noisy.wav");
    write_wav(&noisy, &mixed);
    let out = d.0.join("clean.m4a");
    let report = audio::cleanup(&noisy, &out, true, None, |_, _| {}).unwrap();
    assert!(report.gain_db.is_none());
    let result: Vec<f32> = audio::decode(&out, |_| {}).unwrap().iter().map(|s| s[0]).collect();
    let before = si_snr(&clean, &mixed.iter().map(|s| s[0]).collect::<Vec<_>>());
    // Best alignment within ±30 ms (the encoder adds its own priming, which decoding removes).
    let (lag, after) = (-1440i64..=1440)
        .step_by(8)
        .map(|lag| {
            let est: Vec<f32> = (0..clean.len())
                .map(|i| result.get((i as i64 + lag).max(0) as usize).copied().unwrap_or(0.0))
                .collect();
            (lag, si_snr(&clean, &est))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    eprintln!(
        "SI-SNR: noisy {before:.2} dB → RNNoise {after:.2} dB (+{:.2} dB), best lag {lag} samples",
        after - before
    );
    assert!(after > before + 3.0, "RNNoise improved SI-SNR by only {:.2} dB", after - before);
    assert!(lag.abs() <= 48, "the cleaned sound is {lag} samples off (more than 1 ms)");
}

#[test]
fn loudness_lands_on_the_presets() {
    let d = dir();
    // A quiet tone with pauses (−30 dBFS), and speech.
    let tone: Vec<[f32; 2]> = (0..48_000 * 6)
        .map(|i| {
            let on = (i / 24_000) % 3 != 2;
            let v = if on {
                0.0316 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 48_000.0).sin()
            } else {
                0.0
            };
            [v, v]
        })
        .collect();
    let quiet = d.0.join("quiet.wav");
    write_wav(&quiet, &tone);
    for target in [-14.0, -16.0] {
        let out = d.0.join(format!("norm{target}.m4a"));
        let report = audio::cleanup(&quiet, &out, false, Some(target), |_, _| {}).unwrap();
        let measured = ffmpeg_loudness(&out);
        eprintln!(
            "target {target} LUFS: ours {:?} → {:?}, ffmpeg ebur128 reads {measured}",
            report.loudness_before, report.loudness_after
        );
        assert!((measured - target).abs() <= 0.5, "target {target}, ffmpeg reads {measured}");
        assert!(
            (report.loudness_after.unwrap() - measured).abs() <= 0.5,
            "our meter agrees with ffmpeg's"
        );
    }
    // Speech (peaky): on the preset too, the limiter holding its peaks under −1 dBFS.
    let voice = d.0.join("voice.wav");
    write_wav(&voice, &speech(&d.0));
    let out = d.0.join("voice.m4a");
    let report = audio::cleanup(&voice, &out, true, Some(-16.0), |_, _| {}).unwrap();
    let peak = audio::decode(&out, |_| {})
        .unwrap()
        .iter()
        .flat_map(|s| [s[0].abs(), s[1].abs()])
        .fold(0f32, f32::max);
    let peak_db = 20.0 * peak.log10();
    let measured = ffmpeg_loudness(&out);
    eprintln!("speech: {:?} → {measured} LUFS, peak {peak_db:.2} dBFS", report.loudness_before);
    assert!(peak_db <= -0.5, "peak {peak_db} dBFS");
    assert!((measured + 16.0).abs() <= 0.7, "speech at {measured} LUFS (peak {peak_db} dBFS)");
}

#[test]
fn sound_at_lower_rates_is_decoded_to_its_end() {
    let d = dir();
    for rate in [8_000, 22_050, 44_100] {
        let wav = d.0.join(format!("t{rate}.wav"));
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("aevalsrc=0.5*sin(2*PI*300*t):s={rate}:d=2"))
            .arg(&wav)
            .status()
            .unwrap();
        assert!(status.success());
        let s = audio::decode(&wav, |_| {}).unwrap();
        assert!((s.len() as i64 - 96_000).abs() <= 64, "{rate} Hz: {} samples for 2 s", s.len());
        // Sound to the very end, not silence.
        let tail = &s[s.len() - 4_800..s.len() - 480];
        assert!(tail.iter().any(|v| v[0].abs() > 0.3), "{rate} Hz: the last 100 ms are silent");
    }
}
