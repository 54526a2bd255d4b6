//! Export on media generated with the ffmpeg command line, checked with the ffmpeg command line
//! as an independent decoder: frame counts and durations, which clip and source time each frame
//! shows, transitions, fades, titles, pad and crop, rotation, sound levels and sync, formats.

mod common;
use common::{dir, ffmpeg};

use std::path::{Path, PathBuf};
use std::process::Command;

use moviola_crdt::plan::TransitionKind;
use moviola_crdt::time::{FrameRate, millis, seconds};
use moviola_crdt::timeline::{TrackKind, Transition};
use moviola_crdt::{EditOp, ExportPlan, Settings, Timeline, apply_and_commit};
use moviola_media::export::{self, AudioCodec, Container, Fit, OutputSpec, Preset, Quality, VideoCodec};

/// A colour clip with a sine tone.
fn colour(d: &Path, name: &str, colour: &str, size: &str, rate: u32, secs: u32, hz: u32) -> PathBuf {
    let f = d.join(format!("{name}.mp4"));
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            &format!("color=c={colour}:size={size}:rate={rate}:duration={secs}"),
            "-f",
            "lavfi",
            "-i",
            &format!("aevalsrc=0.5*sin(2*PI*{hz}*t):s=48000:d={secs}"),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-qp",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "192k",
        ],
        &f,
    );
    f
}

/// Every frame as RGB, decoded (and turned by any display matrix) by the ffmpeg command line.
fn frames(path: &Path) -> (u32, u32, Vec<Vec<u8>>) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args([
            "-fps_mode",
            "passthrough",
            "-f",
            "image2pipe",
            "-pix_fmt",
            "rgb24",
            "-c:v",
            "ppm",
            "-",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    // A stream of binary PPMs: "P6\n<w> <h>\n255\n" then the pixels.
    let (mut rest, mut frames, mut dims) = (&out.stdout[..], Vec::new(), (0, 0));
    while !rest.is_empty() {
        let mut fields = Vec::new();
        let mut i = 0;
        while fields.len() < 4 {
            let start = i;
            while !rest[i].is_ascii_whitespace() {
                i += 1;
            }
            fields.push(String::from_utf8_lossy(&rest[start..i]).to_string());
            i += 1;
        }
        let (w, h): (u32, u32) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
        let size = (w * h * 3) as usize;
        frames.push(rest[i..i + size].to_vec());
        dims = (w, h);
        rest = &rest[i + size..];
    }
    (dims.0, dims.1, frames)
}

fn pixel(frame: &[u8], w: u32, x: u32, y: u32) -> [i32; 3] {
    let i = ((y * w + x) * 3) as usize;
    [frame[i] as i32, frame[i + 1] as i32, frame[i + 2] as i32]
}

fn near(a: [i32; 3], b: [i32; 3], tol: i32) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

/// The sound, stereo f32 at 48 kHz, decoded by the ffmpeg command line.
fn sound(path: &Path) -> Vec<[f32; 2]> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "f32le", "-ac", "2", "-ar", "48000", "-"])
        .output()
        .unwrap();
    out.stdout
        .chunks(8)
        .map(|c| {
            [
                f32::from_le_bytes(c[0..4].try_into().unwrap()),
                f32::from_le_bytes(c[4..8].try_into().unwrap()),
            ]
        })
        .collect()
}

fn rms(s: &[[f32; 2]]) -> f64 {
    (s.iter().map(|v| (v[0] as f64).powi(2)).sum::<f64>() / s.len().max(1) as f64).sqrt()
}

fn duration(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn codecs(path: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(",")
}

struct Edit {
    doc: automerge::AutoCommit,
}

impl Edit {
    fn new(width: i64, height: i64, fps: i64) -> Edit {
        let settings = Settings {
            width,
            height,
            frame_rate: FrameRate { num: fps, den: 1 },
            sample_rate: 48_000,
        };
        let mut e = Edit {
            doc: moviola_crdt::new_document(automerge::ActorId::random(), "test", settings),
        };
        for (id, kind) in [("v", TrackKind::Video), ("a", TrackKind::Audio), ("t", TrackKind::Text)] {
            e.op(EditOp::AddTrack {
                id: id.into(),
                kind,
                name: id.into(),
                after: None,
            });
        }
        e
    }

    fn op(&mut self, op: EditOp) -> &mut Self {
        apply_and_commit(&mut self.doc, &op).unwrap();
        self
    }

    fn clip(&mut self, id: &str, track: &str, asset: &str, source_in: i64, len: i64, start: i64) -> &mut Self {
        self.op(EditOp::InsertClip {
            id: id.into(),
            track: track.into(),
            asset: asset.into(),
            source_in,
            source_out: source_in + len,
            start,
        })
    }

    fn transition(&mut self, clip: &str, kind: &str, ms: i64, out: bool) -> &mut Self {
        self.op(EditOp::SetTransition {
            clip: clip.into(),
            transition: Some(Transition {
                kind: kind.into(),
                duration: millis(ms),
            }),
            out,
        })
    }

    fn plan(&self) -> ExportPlan {
        Timeline::read(&self.doc).export_plan()
    }
}

fn run(d: &Path, plan: &ExportPlan, spec: OutputSpec, assets: &[(&str, &Path)]) -> PathBuf {
    let resolved = spec.resolve(&plan.settings).unwrap();
    let out = d.join(format!("out.{}", resolved.container.ext()));
    let assets: Vec<(String, PathBuf)> = assets.iter().map(|(a, p)| (a.to_string(), p.to_path_buf())).collect();
    let resolve = |id: &str| assets.iter().find(|(a, _)| a == id).map(|(_, p)| p.clone());
    let mut last = (0, 0);
    export::export(plan, &resolve, &resolved, &out, d, &mut |done, total| {
        last = (done, total);
        true
    })
    .unwrap();
    assert_eq!(last.0, last.1, "progress reaches the end");
    out
}

fn small(width: u32, height: u32) -> OutputSpec {
    OutputSpec {
        width: Some(width),
        height: Some(height),
        quality: Quality::High,
        ..Default::default()
    }
}

const RED: [i32; 3] = [254, 0, 0];
const GREEN: [i32; 3] = [0, 128, 0];
const BLUE: [i32; 3] = [0, 0, 254];
const BLACK: [i32; 3] = [0, 0, 0];

#[test]
fn cuts_dissolves_and_fades_are_frame_exact() {
    let d = dir();
    let red = colour(&d.0, "red", "red", "320x240", 25, 5, 440);
    let green = colour(&d.0, "green", "green", "320x240", 25, 5, 440);
    let blue = colour(&d.0, "blue", "blue", "320x240", 25, 5, 440);
    let mut e = Edit::new(320, 240, 30);
    e.clip("r", "v", "1", 0, seconds(2), 0)
        .clip("g", "v", "2", 0, seconds(2), seconds(2))
        .transition("g", "dissolve", 1000, false)
        .clip("b", "v", "3", 0, seconds(2), seconds(4))
        .transition("b", "fade_black", 1000, false)
        .transition("b", "fade_black", 500, true);
    let plan = e.plan();
    assert_eq!(plan.video[0].pieces[1].enter.as_ref().unwrap().kind, TransitionKind::Dissolve);
    let out = run(&d.0, &plan, small(320, 240), &[("1", &red), ("2", &green), ("3", &blue)]);
    let (w, h, f) = frames(&out);
    assert_eq!((w, h), (320, 240));
    assert_eq!(f.len(), 180, "6 s at 30 fps");
    assert!((duration(&out) - 6.0).abs() < 0.001, "duration {}", duration(&out));
    let at = |n: usize| pixel(&f[n], w, 160, 120);
    assert!(near(at(10), RED, 8), "{:?}", at(10));
    // The dissolve starts with the outgoing picture and is half way at 2.5 s (frame 75).
    assert!(near(at(60), RED, 8), "{:?}", at(60));
    let mid = at(75);
    let avg = [(RED[0] + GREEN[0]) / 2, (RED[1] + GREEN[1]) / 2, (RED[2] + GREEN[2]) / 2];
    assert!(near(mid, avg, 10), "midpoint {mid:?} vs average {avg:?}");
    assert!(near(at(90), GREEN, 8), "{:?}", at(90));
    // Dip to black: green at 4 s, black at 4.5 s, blue from 5 s.
    assert!(near(at(120), GREEN, 8), "{:?}", at(120));
    assert!(near(at(135), BLACK, 6), "{:?}", at(135));
    assert!(near(at(150), BLUE, 8), "{:?}", at(150));
    // The tail fade starts at 5.5 s and its last frame is black.
    assert!(near(at(165), BLUE, 8), "{:?}", at(165));
    assert!(near(at(179), BLACK, 4), "{:?}", at(179));
    let (a, b) = (at(170)[2], at(175)[2]);
    assert!(a > b && b > 0, "the fade goes down steadily: {a} then {b}");
}

#[test]
fn each_frame_shows_the_right_source_time_at_any_speed() {
    let d = dir();
    // Luma is 8 × the source frame number (25 fps): the frame tells its own time.
    let counter = d.0.join("counter.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "nullsrc=size=64x64:rate=25:duration=4,geq=lum='mod(N*8,256)':cb=128:cr=128",
            "-c:v",
            "libx264",
            "-qp",
            "0",
            "-pix_fmt",
            "yuv420p",
        ],
        &counter,
    );
    let mut e = Edit::new(64, 64, 30);
    // 0.4 s of the source from 1 s, then the source from 2 s at double speed.
    e.clip("x", "v", "c", millis(400), millis(1000), seconds(1))
        .clip("y", "v", "c", seconds(2), seconds(2), seconds(2))
        .op(EditOp::SetSpeed {
            id: "y".into(),
            num: 2,
            den: 1,
        });
    let plan = e.plan();
    let out = run(&d.0, &plan, small(64, 64), &[("c", &counter)]);
    let (w, _, f) = frames(&out);
    assert_eq!(f.len(), 90);
    let luma = |n: usize| pixel(&f[n], w, 32, 32)[0];
    // Before the first clip: black.
    assert!(luma(15) < 5);
    for k in [0usize, 7, 13, 29] {
        // Timeline 1 s + k/30 shows source 0.4 s + k/30 → source frame ⌊(0.4 + k/30)·25⌋.
        let src_frame = ((0.4 + k as f64 / 30.0) * 25.0 + 1e-9).floor() as i32;
        let want = (src_frame * 8) % 256;
        // Full-range 0..255 luma through limited-range YUV: allow for the range conversion.
        let got = luma(30 + k);
        let want_rgb = ((want - 16).max(0) as f64 * 255.0 / 219.0).round() as i32;
        assert!(
            (got - want_rgb).abs() <= 6,
            "k={k}: luma {got}, want {want_rgb} (source frame {src_frame})"
        );
    }
    for k in [0usize, 11, 20] {
        let src_frame = ((2.0 + 2.0 * k as f64 / 30.0) * 25.0 + 1e-9).floor() as i32;
        let want_rgb = ((((src_frame * 8) % 256) - 16).max(0) as f64 * 255.0 / 219.0).round() as i32;
        let got = luma(60 + k);
        assert!((got - want_rgb).abs() <= 6, "speed 2, k={k}: luma {got}, want {want_rgb}");
    }
}

#[test]
fn four_by_three_into_nine_by_sixteen_pads_or_crops_and_rotation_is_honoured() {
    let d = dir();
    // Left half red, right half blue, 4:3.
    let halves = d.0.join("halves.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=red:size=320x240:rate=25:duration=1[a];color=c=blue:size=160x240:rate=25:duration=1[b];[a][b]overlay=x=160",
            "-c:v",
            "libx264",
            "-qp",
            "0",
            "-pix_fmt",
            "yuv420p",
        ],
        &halves,
    );
    let mut e = Edit::new(180, 320, 25);
    e.clip("h", "v", "h", 0, seconds(1), 0);
    let plan = e.plan();
    let pad = run(
        &d.0,
        &plan,
        OutputSpec {
            fit: Fit::Pad,
            ..small(180, 320)
        },
        &[("h", &halves)],
    );
    let (w, h, f) = frames(&pad);
    assert_eq!((w, h), (180, 320));
    // 320×240 fitted to 180 wide is 180×135: bars above and below.
    assert!(near(pixel(&f[0], w, 90, 10), BLACK, 4), "top bar {:?}", pixel(&f[0], w, 90, 10));
    assert!(near(pixel(&f[0], w, 90, 310), BLACK, 4));
    assert!(near(pixel(&f[0], w, 20, 160), RED, 10));
    assert!(near(pixel(&f[0], w, 160, 160), BLUE, 10));
    let d2 = dir();
    let crop = run(
        &d2.0,
        &plan,
        OutputSpec {
            fit: Fit::Crop,
            ..small(180, 320)
        },
        &[("h", &halves)],
    );
    let (w, _, f) = frames(&crop);
    // Filled to 320 high (427 wide), the middle 180 shown: no bars, red left, blue right.
    assert!(near(pixel(&f[0], w, 20, 5), RED, 10), "{:?}", pixel(&f[0], w, 20, 5));
    assert!(near(pixel(&f[0], w, 160, 315), BLUE, 10));

    // A phone video: the pixels as recorded, a display matrix saying "turn 90°".
    let rotated = d.0.join("rotated.mp4");
    ffmpeg(
        &["-i", halves.to_str().unwrap(), "-c", "copy", "-metadata:s:v:0", "rotate=90"],
        &rotated,
    );
    // The ffmpeg command line (which applies the matrix) is the reference orientation.
    let (rw, rh, reference) = frames(&rotated);
    assert_eq!((rw, rh), (240, 320));
    let (ref_top, ref_bottom) = (pixel(&reference[0], rw, 120, 10), pixel(&reference[0], rw, 120, 310));
    let mut e = Edit::new(240, 320, 25);
    e.clip("r", "v", "r", 0, seconds(1), 0);
    let d3 = dir();
    let out = run(&d3.0, &e.plan(), small(240, 320), &[("r", &rotated)]);
    let (w, _, f) = frames(&out);
    assert!(
        near(pixel(&f[0], w, 120, 10), ref_top, 12),
        "top {:?} vs {ref_top:?}",
        pixel(&f[0], w, 120, 10)
    );
    assert!(near(pixel(&f[0], w, 120, 310), ref_bottom, 12));
    assert!(!near(ref_top, ref_bottom, 50), "the halves differ after turning");
}

#[test]
fn sound_levels_fades_and_sync() {
    let d = dir();
    let tone = colour(&d.0, "tone", "gray", "160x120", 25, 4, 1000);
    // A flash and a beep together at 1 s of the source.
    let sync = d.0.join("sync.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=black:size=160x120:rate=25:duration=3,drawbox=color=white:t=fill:enable='between(t,1,1.039)'",
            "-f",
            "lavfi",
            "-i",
            "aevalsrc='if(between(t,1,1.1),0.5*sin(2*PI*1000*t),0)':s=48000:d=3",
            "-c:v",
            "libx264",
            "-qp",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
        &sync,
    );
    let mut e = Edit::new(160, 120, 30);
    // Tone at full volume 0–2 s fading in over 0.5 s; at half volume 2–3 s; silence 3–4 s;
    // the sync clip from its 0.5 s at 4 s (flash and beep at 4.5 s).
    e.clip("t1", "a", "tone", 0, seconds(2), 0)
        .transition("t1", "dissolve", 500, false)
        .clip("t2", "a", "tone", seconds(2), seconds(1), seconds(2))
        .op(EditOp::SetVolume {
            id: "t2".into(),
            volume: 0.5,
        })
        .clip("s", "v", "sync", millis(500), seconds(2), seconds(4));
    let out = run(&d.0, &e.plan(), small(160, 120), &[("tone", &tone), ("sync", &sync)]);
    let s = sound(&out);
    assert!((s.len() as i64 - 6 * 48_000).abs() <= 1024, "{} samples", s.len());
    let win = |a: f64, b: f64| rms(&s[(a * 48_000.0) as usize..(b * 48_000.0) as usize]);
    let full = 0.5 / 2f64.sqrt();
    assert!((win(1.0, 1.9) - full).abs() < 0.02, "full level {}", win(1.0, 1.9));
    assert!((win(2.1, 2.9) - full / 2.0).abs() < 0.015, "half level {}", win(2.1, 2.9));
    assert!(win(3.1, 3.9) < 0.005, "silence {}", win(3.1, 3.9));
    // The fade in: the first 50 ms far below the level at 0.4–0.5 s, which is below full.
    assert!(win(0.0, 0.05) < 0.2 * full, "fade start {}", win(0.0, 0.05));
    assert!(win(0.4, 0.5) > 0.7 * full && win(0.4, 0.5) < full, "fade end {}", win(0.4, 0.5));
    // Sync: the first bright frame and the beep's onset agree within one frame.
    let (w, _, f) = frames(&out);
    let flash = f.iter().position(|fr| pixel(fr, w, 80, 60)[0] > 128).expect("a flash") as f64 / 30.0;
    let onset = s.iter().skip(4 * 48_000).position(|v| v[0].abs() > 0.1).expect("a beep") as f64 / 48_000.0 + 4.0;
    assert!((flash - 4.5).abs() < 1.0 / 30.0 + 1e-6, "flash at {flash}");
    assert!((onset - flash).abs() <= 1.0 / 30.0, "beep at {onset}, flash at {flash}");
}

#[test]
fn titles_formats_and_cancel() {
    let d = dir();
    let grey = colour(&d.0, "grey", "gray", "160x120", 25, 2, 440);
    let mut e = Edit::new(160, 120, 25);
    e.clip("g", "v", "g", 0, seconds(2), 0).op(EditOp::InsertText {
        id: "title".into(),
        track: "t".into(),
        text: "MOVIOLA: 'quoted', [x]; 100%".into(),
        start: seconds(1),
        duration: seconds(1),
    });
    let plan = e.plan();
    let out = run(&d.0, &plan, small(160, 120), &[("g", &grey)]);
    let (w, h, f) = frames(&out);
    let bright = |fr: &[u8]| {
        (h * 6 / 10..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .filter(|&(x, y)| pixel(fr, w, x, y)[0] > 230)
            .count()
    };
    assert_eq!(bright(&f[10]), 0, "no title before 1 s");
    assert!(bright(&f[30]) > 20, "the title shows at 1.2 s");

    for (container, video, audio, want) in [
        (Container::Webm, VideoCodec::Vp9, AudioCodec::Opus, "vp9,opus"),
        (Container::Mov, VideoCodec::Prores, AudioCodec::Pcm, "prores,pcm_s16le"),
        (Container::Mp4, VideoCodec::H265, AudioCodec::Aac, "hevc,aac"),
    ] {
        let d = dir();
        let spec = OutputSpec {
            container: Some(container),
            video_codec: Some(video),
            audio_codec: Some(audio),
            quality: Quality::Draft,
            ..small(160, 120)
        };
        let out = run(&d.0, &plan, spec, &[("g", &grey)]);
        assert_eq!(codecs(&out), want, "{container:?}");
        assert_eq!(frames(&out).2.len(), 50, "{container:?}");
    }
    // The master preset keeps the timeline's size.
    let master = OutputSpec {
        preset: Some(Preset::Master),
        ..Default::default()
    }
    .resolve(&plan.settings)
    .unwrap();
    assert_eq!((master.width, master.height), (160, 120));

    // Cancel after 5 frames: an error and no file.
    let resolved = small(160, 120).resolve(&plan.settings).unwrap();
    let target = d.0.join("cancelled.mp4");
    let resolve = |_: &str| Some(grey.clone());
    let err = export::export(&plan, &resolve, &resolved, &target, &d.0, &mut |done, _| done < 5).unwrap_err();
    assert!(matches!(err, moviola_media::MediaError::Cancelled));
    assert!(!target.exists());
    // A missing asset: a clear error.
    let none = |_: &str| None;
    let err = export::export(&plan, &none, &resolved, &target, &d.0, &mut |_, _| true).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn proxy_is_small_h264_aac_of_the_whole_source() {
    let d = dir();
    let src = colour(&d.0, "src", "red", "640x480", 50, 2, 440);
    let out = d.0.join("proxy.mp4");
    let report = export::proxy(&src, &out, 240, &d.0, &mut |_, _| true).unwrap();
    assert_eq!((report.width, report.height, report.frames), (320, 240, 60), "{report:?}");
    assert_eq!(codecs(&out), "h264,aac");
    assert!((duration(&out) - 2.0).abs() < 0.05);
}

#[test]
fn variable_frame_rate_sources_show_the_frame_due_at_each_time() {
    let d = dir();
    // Ten frames 40 ms apart, then frames 80 ms apart; luma = 8 × frame number.
    let vfr = d.0.join("vfr.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "nullsrc=size=64x64:rate=25:duration=2,geq=lum='mod(N*8,256)':cb=128:cr=128,settb=1/1000,setpts='if(lt(N,10),N*40,400+(N-10)*80)'",
            "-fps_mode",
            "passthrough",
            "-c:v",
            "libx264",
            "-qp",
            "0",
            "-pix_fmt",
            "yuv420p",
        ],
        &vfr,
    );
    let mut e = Edit::new(64, 64, 30);
    e.clip("v", "v", "v", 0, seconds(2), 0);
    let out = run(&d.0, &e.plan(), small(64, 64), &[("v", &vfr)]);
    let (w, _, f) = frames(&out);
    assert_eq!(f.len(), 60);
    for n in [0usize, 5, 11, 12, 20, 33, 47] {
        let t = n as f64 / 30.0;
        let src = if t < 0.4 {
            (t / 0.04 + 1e-9).floor()
        } else {
            10.0 + ((t - 0.4) / 0.08 + 1e-9).floor()
        } as i32;
        let want = ((((src * 8) % 256) - 16).max(0) as f64 * 255.0 / 219.0).round() as i32;
        let got = pixel(&f[n], w, 32, 32)[0];
        assert!(
            (got - want).abs() <= 6,
            "frame {n} (t={t:.3}): luma {got}, want source frame {src} ({want})"
        );
    }
}

#[test]
fn audio_only_sources_at_other_rates_and_a_custom_bitrate() {
    let d = dir();
    let wav = d.0.join("tone.wav");
    ffmpeg(&["-f", "lavfi", "-i", "aevalsrc=0.5*sin(2*PI*500*t):s=44100:d=2"], &wav);
    let pattern = d.0.join("pattern.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=2",
            "-c:v",
            "libx264",
            "-qp",
            "0",
            "-pix_fmt",
            "yuv420p",
        ],
        &pattern,
    );
    let mut e = Edit::new(320, 240, 25);
    e.clip("p", "v", "p", 0, seconds(2), 0).clip("w", "a", "w", 0, seconds(2), 0);
    let plan = e.plan();
    let mut sizes = Vec::new();
    for kbps in [150, 1500] {
        let d = dir();
        let spec = OutputSpec {
            video_bitrate_kbps: Some(kbps),
            ..small(320, 240)
        };
        let out = run(&d.0, &plan, spec, &[("p", &pattern), ("w", &wav)]);
        // A 44.1 kHz mono WAV, resampled to 48 kHz and heard on both sides at its level.
        let s = sound(&out);
        let level = rms(&s[24_000..72_000]);
        assert!((level - 0.5 / 2f64.sqrt()).abs() < 0.02, "level {level}");
        assert!((s[30_000][0] - s[30_000][1]).abs() < 1e-3, "both sides");
        sizes.push(std::fs::metadata(&out).unwrap().len());
    }
    // The low bitrate is honoured (within half again of its target over 2 s), the high one bigger.
    let low_kbps = sizes[0] as f64 * 8.0 / 2.0 / 1000.0;
    assert!(low_kbps < 150.0 * 1.5 + 192.0, "{low_kbps} kb/s in all");
    assert!(sizes[1] > sizes[0] * 2, "{sizes:?}");
}

#[test]
fn a_sound_stream_starting_late_stays_in_sync() {
    let d = dir();
    // The flash is at 1 s of the picture; the beep at 0.7 s of a sound stream that starts 0.3 s
    // into the file — so both at 1 s, as a player shows them.
    let video = d.0.join("v.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=black:size=160x120:rate=25:duration=3,drawbox=color=white:t=fill:enable='between(t,1,1.039)'",
            "-c:v",
            "libx264",
            "-qp",
            "0",
            "-pix_fmt",
            "yuv420p",
        ],
        &video,
    );
    let beep = d.0.join("b.wav");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "aevalsrc='if(between(t,0.7,0.8),0.5*sin(2*PI*1000*t),0)':s=48000:d=2.7",
        ],
        &beep,
    );
    let muxed = d.0.join("late.mkv");
    ffmpeg(
        &[
            "-i",
            video.to_str().unwrap(),
            "-itsoffset",
            "0.3",
            "-i",
            beep.to_str().unwrap(),
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "copy",
            "-c:a",
            "flac",
        ],
        &muxed,
    );
    let mut e = Edit::new(160, 120, 25);
    e.clip("s", "v", "s", 0, seconds(2), 0);
    let out = run(&d.0, &e.plan(), small(160, 120), &[("s", &muxed)]);
    let (w, _, f) = frames(&out);
    let s = sound(&out);
    let flash = f.iter().position(|fr| pixel(fr, w, 80, 60)[0] > 128).expect("a flash") as f64 / 25.0;
    let onset = s.iter().position(|v| v[0].abs() > 0.1).expect("a beep") as f64 / 48_000.0;
    assert!((flash - 1.0).abs() < 1e-6, "flash at {flash}");
    assert!((onset - flash).abs() <= 1.0 / 25.0, "beep at {onset}, flash at {flash}");
}
