//! TransNetV2 in burn against the PyTorch package it comes from (fixtures by
//! `models/fixtures/make_transnet_reference.py`), and against known cuts: shots of the
//! package's real test video concatenated at known frames must be found with F1 ≥ 0.95.
//! FFmpeg's `scdet` runs on the same concatenation for comparison (reported, not asserted).
//! Weights and the test video: `moviola models fetch transnetv2` (scripts/test.sh does it).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{ffmpeg_pipe, test_media};

use moviola_models::backend::{Cpu, CpuDevice};
use moviola_models::transnet::{self, FRAME_BYTES, HEIGHT, TransNetV2, WIDTH};

fn model_dir() -> PathBuf {
    common::model_dir("transnetv2")
}

fn load_net() -> TransNetV2<Cpu> {
    let dir = model_dir();
    TransNetV2::<Cpu>::load(&dir.join("transnetv2"), &CpuDevice)
        .unwrap_or_else(|e| panic!("TransNetV2 not installed in {} ({e}): run `moviola models fetch`", dir.display()))
}

fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transnet").join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

/// The generator of `make_transnet_reference.py`: four shots of moving integer patterns.
fn synthetic_frames() -> Vec<u8> {
    let shots: [(usize, [(usize, usize, usize, usize); 3]); 4] = [
        (0, [(3, 5, 2, 0), (7, 1, 3, 40), (2, 9, 1, 90)]),
        (30, [(11, 2, 5, 200), (1, 1, 1, 10), (5, 3, 7, 60)]),
        (55, [(0, 7, 4, 128), (9, 0, 2, 250), (4, 4, 3, 5)]),
        (90, [(6, 6, 1, 33), (2, 8, 6, 77), (10, 1, 2, 150)]),
    ];
    let mut out = Vec::with_capacity(120 * FRAME_BYTES);
    for t in 0..120 {
        let params = shots.iter().rev().find(|(start, _)| *start <= t).unwrap().1;
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                for (a, b, c, phase) in params {
                    out.push(((a * x + b * y + c * t + phase) % 256) as u8);
                }
            }
        }
    }
    out
}

/// Frames of `path` as raw RGB at `w`×`h`, read the way the package reads them (the ffmpeg CLI,
/// `-s`, rawvideo rgb24).
fn decode(path: &std::path::Path, w: usize, h: usize) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", &format!("{w}x{h}"), "pipe:"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn synthetic_frames_match_pytorch() {
    let net = load_net();
    let reference = fixture("synthetic.json");
    let ours = net.predict(&synthetic_frames(), &CpuDevice, &mut |_, _| true).unwrap();
    let diff = max_diff(&ours, &floats(&reference["probabilities"]));
    eprintln!("synthetic: max |burn − PyTorch| = {diff:.2e}");
    assert!(diff < 1e-3, "max difference {diff}");
    assert_eq!(transnet::shot_starts(&ours, 0.5), vec![30, 55, 90]);
}

/// The package's test video's first 1000 frames (the benchmark runs all 5301): burn's
/// probabilities are PyTorch's, and the shots are the same.
#[test]
fn the_package_test_video_matches_pytorch() {
    let net = load_net();
    let reference = fixture("test_mp4.json");
    let frames = decode(&model_dir().join("test.mp4"), WIDTH, HEIGHT);
    let ours = net.predict(&frames[..1000 * FRAME_BYTES], &CpuDevice, &mut |_, _| true).unwrap();
    let theirs = floats(&reference["prefix"]);
    let diff = max_diff(&ours, &theirs);
    let starts_ref = transnet::shot_starts(&theirs, 0.5);
    let starts = transnet::shot_starts(&ours, 0.5);
    eprintln!(
        "test.mp4: {} frames, max |burn − PyTorch| = {diff:.2e}, {} shot starts (PyTorch {})",
        ours.len(),
        starts.len(),
        starts_ref.len()
    );
    assert!(diff < 2e-3, "max difference {diff}");
    assert_eq!(starts, starts_ref);
    assert!(starts.len() >= 15, "the test video is full of cuts");
}

/// A tiny xorshift, so the concatenation is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Precision, recall and F1 of `found` against `truth` (transitions as inclusive frame ranges;
/// a cut is one frame), a detection within ±`tol` frames of a transition matching it (each at
/// most once).
fn f1(truth: &[(usize, usize)], found: &[usize], tol: usize) -> (f64, f64, f64) {
    let mut used = vec![false; found.len()];
    let mut hits = 0;
    for (a, b) in truth {
        if let Some(i) = (0..found.len()).find(|i| !used[*i] && found[*i] + tol >= *a && found[*i] <= b + tol) {
            used[i] = true;
            hits += 1;
        }
    }
    let p = hits as f64 / found.len().max(1) as f64;
    let r = hits as f64 / truth.len().max(1) as f64;
    (p, r, if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 })
}

/// FFmpeg's scdet (default threshold 10) on raw RGB frames at `w`×`h`, 25 fps: the frames where it
/// marks a cut.
fn scdet(frames: &[u8], w: usize, h: usize) -> Vec<usize> {
    let size = format!("{w}x{h}");
    let out = ffmpeg_pipe(
        &[
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            &size,
            "-r",
            "25",
            "-i",
            "pipe:",
            "-vf",
            "scdet=threshold=10,metadata=mode=print:key=lavfi.scd.time:file=-",
            "-f",
            "null",
            "-",
        ],
        frames,
    );
    // Lines `frame:N    pts:…` precede each printed key.
    String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.strip_prefix("frame:"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Shots of six real videos joined at known frames, never two pieces of the same video in a
/// row, so every join is a cut between different footage: the package's test video (a music
/// video; its shots by the reference's scene list), OpenCV's Megamind clip (an animation; its
/// four shots) and four single-shot clips (tree, pedestrians, cup, box). Pieces of 15–50
/// frames, 5 frames clear of any shot's ends. Every third join is a 12-frame dissolve instead
/// of a cut: a gradual transition, which FFmpeg's scdet (a frame-difference detector) is not
/// built for.
#[test]
fn known_cuts_in_concatenated_real_shots_are_found() {
    let net = load_net();
    let reference = fixture("test_mp4.json");
    let (w, h) = (160, 90);
    let fb = w * h * 3;
    let trim = |(a, b): (usize, usize)| (a + 5, b.saturating_sub(5));
    // (frames at 160×90, usable shots as inclusive frame ranges)
    let mut sources: Vec<(Vec<u8>, Vec<(usize, usize)>)> = Vec::new();
    let music_shots = reference["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| trim((s[0].as_u64().unwrap() as usize, s[1].as_u64().unwrap() as usize)))
        .filter(|(a, b)| b > a && b - a >= 50)
        .collect();
    sources.push((decode(&model_dir().join("test.mp4"), w, h), music_shots));
    let clips: [(&str, &[(usize, usize)]); 5] = [
        ("Megamind.avi", &[(2, 98), (99, 154), (155, 200), (201, 270)]),
        // The tree clip shakes near its end.
        ("tree.avi", &[(0, 380)]),
        ("vtest.avi", &[(0, 794)]),
        ("cup.mp4", &[(0, 216)]),
        ("box.mp4", &[(0, 456)]),
    ];
    for (name, shots) in clips {
        sources.push((decode(&test_media(name), w, h), shots.iter().copied().map(trim).collect()));
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut concat: Vec<u8> = Vec::new();
    let mut truth = Vec::new();
    let mut last = usize::MAX;
    const DISSOLVE: usize = 12;
    for piece in 0..40 {
        let mut s = rng.next(sources.len());
        while s == last {
            s = rng.next(sources.len());
        }
        last = s;
        let (frames, shots) = &sources[s];
        let (a, b) = shots[rng.next(shots.len())];
        let b = b.min(frames.len() / fb - 1);
        let len = (15 + rng.next(36)).min(b - a + 1);
        let start = a + rng.next(b + 1 - a - len + 1);
        let incoming = &frames[start * fb..(start + len) * fb];
        let at = concat.len() / fb;
        if piece > 0 && piece % 3 == 0 {
            // Blend the last frames of the outgoing piece into the first of this one.
            let from = at - DISSOLVE;
            for k in 0..DISSOLVE {
                let alpha = (k + 1) as f32 / (DISSOLVE + 1) as f32;
                for (o, i) in concat[(from + k) * fb..(from + k + 1) * fb]
                    .iter_mut()
                    .zip(&incoming[k * fb..(k + 1) * fb])
                {
                    *o = (f32::from(*o) * (1.0 - alpha) + f32::from(*i) * alpha).round() as u8;
                }
            }
            truth.push((from, at));
            concat.extend_from_slice(&incoming[DISSOLVE * fb..]);
        } else {
            if piece > 0 {
                truth.push((at, at));
            }
            concat.extend_from_slice(incoming);
        }
    }
    // The network's input: the same frames at 48×27 through the same scaler as `decode`.
    let size = format!("{w}x{h}");
    let small_size = format!("{WIDTH}x{HEIGHT}");
    let small = ffmpeg_pipe(
        &[
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            &size,
            "-i",
            "pipe:",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            &small_size,
            "pipe:",
        ],
        &concat,
    );
    assert_eq!(small.len() / FRAME_BYTES, concat.len() / fb);
    let probabilities = net.predict(&small, &CpuDevice, &mut |_, _| true).unwrap();
    let found = transnet::shot_starts(&probabilities, 0.5);
    let (p, r, f) = f1(&truth, &found, 2);
    let sc = scdet(&concat, w, h);
    let (sp, sr, sf) = f1(&truth, &sc, 2);
    eprintln!(
        "{} known transitions (cuts and dissolves) in {} frames: TransNetV2 P {p:.3} R {r:.3} F1 {f:.3} ({} found); scdet P {sp:.3} R {sr:.3} F1 {sf:.3} ({} found)",
        truth.len(),
        probabilities.len(),
        found.len(),
        sc.len()
    );
    for (a, b) in &truth {
        if !found.iter().any(|x| x + 2 >= *a && *x <= b + 2) {
            eprintln!(
                "missed the transition {a}..={b}: probabilities {:?}",
                &probabilities[a - 3..(b + 3).min(probabilities.len())]
            );
        }
    }
    assert!(f >= 0.95, "F1 {f:.3}: truth {truth:?}, found {found:?}");
}

#[test]
fn cancelling_stops_between_windows() {
    let net = load_net();
    let frames = synthetic_frames();
    let mut calls = 0;
    assert!(
        net.predict(&frames, &CpuDevice, &mut |done, total| {
            calls += 1;
            assert!(done <= total);
            false
        })
        .is_none()
    );
    assert_eq!(calls, 1);
}
