//! Export and ingest benchmark (issue 4). Run through `scripts/bench.sh export`, or
//! `target/release/bench_export [--size 1280x720] [--runs 3]`. Figures: docs/benchmarks.md.
//!
//! 1. Export of a reference timeline — three clips joined by two 1 s dissolves, a title over
//!    the first clip, a music bed mixed under the clips' sound — by Moviola's exporter and by
//!    the `ffmpeg` command line doing the same work (xfade, drawtext, acrossfade, amix) with the
//!    same encoders and settings (libx264 at the preset and CRF of the quality, AAC 192 kb/s),
//!    in the same run, alternating, median of the runs. Ratio = ffmpeg time / Moviola time
//!    (above 1: Moviola is faster).
//! 2. Ingest per minute of footage: probe, thumbnail, filmstrip, waveform and 360p proxy of a
//!    one-minute 1080p clip with sound, as the media worker runs them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use moviola_crdt::time::{FrameRate, millis, seconds};
use moviola_crdt::timeline::{TrackKind, Transition};
use moviola_crdt::{EditOp, Settings, Timeline, apply_and_commit};
use moviola_media::export::{self, OutputSpec, Quality};

fn ffmpeg(args: &[&str]) -> Result<()> {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .status()?;
    if !status.success() {
        bail!("ffmpeg {args:?} failed");
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let mut size = (1280u32, 720u32);
    let mut runs = 3;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size" => {
                let v = args.next().unwrap_or_default();
                let (w, h) = v.split_once('x').unwrap_or(("1280", "720"));
                size = (w.parse()?, h.parse()?);
            }
            "--runs" => runs = args.next().unwrap_or_default().parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    let dir = std::env::temp_dir().join(format!("moviola-bench-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (w, h) = size;
    let fps = 30;
    println!("== export: 3 × 6 s clips at {w}×{h} {fps} fps, 2 dissolves of 1 s, a title, a music bed; 18 s ==");
    // Sources: 7 s each, so a dissolve can run into the outgoing clip's next second.
    let mut sources = Vec::new();
    for (i, hz) in [440, 550, 660].into_iter().enumerate() {
        let f = dir.join(format!("src{i}.mp4"));
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={w}x{h}:rate={fps}:duration=7"),
            "-f",
            "lavfi",
            "-i",
            &format!("aevalsrc=0.3*sin(2*PI*{hz}*t):s=48000:d=7"),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "18",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            f.to_str().unwrap(),
        ])?;
        sources.push(f);
    }
    let music = dir.join("music.m4a");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "aevalsrc=0.3*sin(2*PI*220*t):s=48000:d=18",
        "-c:a",
        "aac",
        music.to_str().unwrap(),
    ])?;

    // The timeline.
    let settings = Settings {
        width: i64::from(w),
        height: i64::from(h),
        frame_rate: FrameRate { num: fps, den: 1 },
        sample_rate: 48_000,
    };
    let mut doc = moviola_crdt::new_document(automerge::ActorId::random(), "bench", settings);
    let mut op = |op: EditOp| apply_and_commit(&mut doc, &op).expect("valid edit");
    for (id, kind) in [("v", TrackKind::Video), ("m", TrackKind::Audio), ("t", TrackKind::Text)] {
        op(EditOp::AddTrack {
            id: id.into(),
            kind,
            name: id.into(),
            after: None,
        });
    }
    for i in 0..3 {
        op(EditOp::InsertClip {
            id: format!("c{i}"),
            track: "v".into(),
            asset: format!("s{i}"),
            source_in: 0,
            source_out: seconds(6),
            start: seconds(6 * i),
        });
        if i > 0 {
            op(EditOp::SetTransition {
                clip: format!("c{i}"),
                transition: Some(Transition {
                    kind: "dissolve".into(),
                    duration: seconds(1),
                }),
                out: false,
            });
        }
    }
    op(EditOp::InsertClip {
        id: "music".into(),
        track: "m".into(),
        asset: "music".into(),
        source_in: 0,
        source_out: seconds(18),
        start: 0,
    });
    op(EditOp::SetVolume {
        id: "music".into(),
        volume: 0.3,
    });
    op(EditOp::InsertText {
        id: "title".into(),
        track: "t".into(),
        text: "Moviola".into(),
        start: seconds(1),
        duration: millis(3000),
    });
    let plan = Timeline::read(&doc).export_plan();
    let resolve = |id: &str| -> Option<PathBuf> {
        match id {
            "music" => Some(music.clone()),
            s => s
                .strip_prefix('s')
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| sources.get(n).cloned()),
        }
    };
    let font = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
    let size_px = (f64::from(h) * 0.07).round() as i64;
    for (quality, preset, crf) in [(Quality::Draft, "veryfast", "26"), (Quality::Standard, "medium", "21")] {
        let spec = OutputSpec {
            quality,
            ..Default::default()
        }
        .resolve(&plan.settings)
        .map_err(anyhow::Error::msg)?;
        let ours_out = dir.join("ours.mp4");
        let theirs_out = dir.join("ffmpeg.mp4");
        let graph = format!(
            "[0:v]trim=0:7,setpts=PTS-STARTPTS[a];[1:v]trim=0:7,setpts=PTS-STARTPTS[b];[2:v]trim=0:6,setpts=PTS-STARTPTS[c];\
             [a][b]xfade=transition=fade:duration=1:offset=6[ab];[ab][c]xfade=transition=fade:duration=1:offset=12,\
             drawtext=fontfile={font}:text=Moviola:fontsize={size_px}:fontcolor=white:x=(w-text_w)/2:y=h*0.8-text_h/2:\
             shadowcolor=black@0.6:shadowx=2:shadowy=2:box=1:boxcolor=black@0.35:boxborderw={}:enable='between(t,1,4)',format=yuv420p[v];\
             [0:a]atrim=0:7[x];[1:a]atrim=0:7[y];[2:a]atrim=0:6[z];[x][y]acrossfade=d=1[xy];[xy][z]acrossfade=d=1[xyz];\
             [3:a]volume=0.3[mu];[xyz][mu]amix=inputs=2:normalize=0:duration=first[aout]",
            size_px / 4
        );
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..runs {
            let t0 = Instant::now();
            let report = export::export(&plan, &resolve, &spec, &ours_out, &dir, &mut |_, _| true)?;
            ours.push(t0.elapsed());
            assert_eq!(report.frames, 540);
            let t0 = Instant::now();
            let mut args: Vec<String> = Vec::new();
            for s in &sources {
                args.extend(["-i".into(), s.display().to_string()]);
            }
            args.extend(["-i".into(), music.display().to_string()]);
            args.extend(
                [
                    "-filter_complex",
                    &graph,
                    "-map",
                    "[v]",
                    "-map",
                    "[aout]",
                    "-c:v",
                    "libx264",
                    "-preset",
                    preset,
                    "-crf",
                    crf,
                    "-c:a",
                    "aac",
                    "-b:a",
                    "192k",
                    "-movflags",
                    "+faststart",
                    theirs_out.to_str().unwrap(),
                ]
                .map(String::from),
            );
            ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
            theirs.push(t0.elapsed());
        }
        let (o, t) = (median(ours).as_secs_f64(), median(theirs).as_secs_f64());
        // Same work: the two files agree picture for picture (PSNR of one against the other).
        let psnr = Command::new("ffmpeg")
            .args(["-hide_banner", "-i"])
            .arg(&ours_out)
            .arg("-i")
            .arg(&theirs_out)
            .args(["-lavfi", "psnr", "-f", "null", "-"])
            .output()?;
        let text = String::from_utf8_lossy(&psnr.stderr);
        let average = text
            .split("average:")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("?")
            .to_owned();
        println!("{quality:?}: PSNR of Moviola's file against ffmpeg's: {average} dB");
        println!(
            "{quality:?} (libx264 {preset} crf {crf}): moviola {o:.2} s ({:.1} fps), ffmpeg CLI {t:.2} s ({:.1} fps); ratio ffmpeg/moviola {:.2}×",
            540.0 / o,
            540.0 / t,
            t / o
        );
    }

    println!("== ingest: one minute of 1920×1080 30 fps footage with sound ==");
    let minute = dir.join("minute.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1920x1080:rate=30:duration=60",
        "-f",
        "lavfi",
        "-i",
        "aevalsrc=0.3*sin(2*PI*440*t):s=48000:d=60",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        minute.to_str().unwrap(),
    ])?;
    let time = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        let t0 = Instant::now();
        f()?;
        Ok(t0.elapsed().as_secs_f64())
    };
    let probe = time(&mut || Ok(moviola_media::probe(&minute).map(|_| ())?))?;
    let thumb = time(&mut || Ok(moviola_media::thumbnail(&minute, 30_000, 320).map(|_| ())?))?;
    let strip = time(&mut || Ok(moviola_media::filmstrip(&minute, 60_000, 10, 72, |_, _| {}).map(|_| ())?))?;
    let wave = time(&mut || Ok(moviola_media::waveform(&minute, 50, |_| {}).map(|_| ())?))?;
    let proxy_out = dir.join("proxy.mp4");
    let proxy = time(&mut || Ok(export::proxy(&minute, &proxy_out, 360, &dir, &mut |_, _| true).map(|_| ())?))?;
    println!(
        "per minute of footage: probe {probe:.3} s, thumbnail {thumb:.3} s, filmstrip {strip:.2} s, waveform {wave:.2} s, 360p proxy {proxy:.1} s; all {:.1} s ({:.1}× real time)",
        probe + thumb + strip + wave + proxy,
        60.0 / (probe + thumb + strip + wave + proxy)
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _: &Path = &dir;
    Ok(())
}
