//! probe and thumbnail on media generated with the ffmpeg command line (lavfi sources).

mod common;
use common::{dir, ffmpeg};

use moviola_media::{StreamKind, probe, thumbnail};

#[test]
fn probes_video_with_audio() {
    let d = dir();
    let f = d.0.join("clip.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=2",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
        &f,
    );
    let info = probe(&f).unwrap();
    assert!(info.container.contains("mp4"), "{info:?}");
    let v = info.video().unwrap();
    assert_eq!(
        (v.codec.as_str(), v.width, v.height, v.frame_rate, v.rotation),
        ("h264", 320, 240, (25, 1), 0)
    );
    let a = info.audio().unwrap();
    assert_eq!((a.codec.as_str(), a.sample_rate, a.channels), ("aac", 48000, 1));
    let ms = info.duration_ms.unwrap();
    assert!((1950..=2100).contains(&ms), "duration {ms}");
    assert_eq!(info.display_size(), Some((320, 240)));
    // It serialises for the worker's JSON.
    assert!(serde_json::to_string(&info).unwrap().contains("\"h264\""));
}

#[test]
fn rotation_and_audio_only() {
    let d = dir();
    let plain = d.0.join("plain.mp4");
    ffmpeg(
        &["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30:duration=1", "-c:v", "libx264"],
        &plain,
    );
    // As a phone does: the pixels stay, a display matrix in the container says how to turn them.
    let rotated = d.0.join("rotated.mp4");
    ffmpeg(
        &["-i", plain.to_str().unwrap(), "-c", "copy", "-metadata:s:v:0", "rotate=90"],
        &rotated,
    );
    let info = probe(&rotated).unwrap();
    assert_eq!(info.video().unwrap().rotation, 90, "{info:?}");
    assert_eq!(info.display_size(), Some((90, 160)));

    let wav = d.0.join("tone.wav");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:sample_rate=44100:duration=1.5",
            "-ac",
            "2",
        ],
        &wav,
    );
    let info = probe(&wav).unwrap();
    assert!(info.video().is_none());
    let a = info.audio().unwrap();
    assert_eq!((a.kind, a.sample_rate, a.channels), (StreamKind::Audio, 44100, 2));
    assert!(thumbnail(&wav, 0, 64).is_err(), "no video stream, no thumbnail");
}

#[test]
fn refuses_what_is_not_media() {
    let d = dir();
    let text = d.0.join("notes.mp4");
    std::fs::write(&text, "this is a text file with a video name\n".repeat(20)).unwrap();
    assert!(probe(&text).is_err());
    let empty = d.0.join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    assert!(probe(&empty).is_err());
    let good = d.0.join("good.mp4");
    ffmpeg(
        &["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=1", "-c:v", "libx264"],
        &good,
    );
    let bytes = std::fs::read(&good).unwrap();
    let truncated = d.0.join("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    // A truncated MP4 (moov at the end is gone) is not readable media.
    assert!(probe(&truncated).is_err() || thumbnail(&truncated, 0, 32).is_err());
}

#[test]
fn thumbnail_at_a_time() {
    let d = dir();
    let f = d.0.join("t.mp4");
    // Colour changes every second: red, then green, then blue.
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=red:size=320x180:rate=25:duration=1",
            "-f",
            "lavfi",
            "-i",
            "color=c=lime:size=320x180:rate=25:duration=1",
            "-f",
            "lavfi",
            "-i",
            "color=c=blue:size=320x180:rate=25:duration=1",
            "-filter_complex",
            "[0][1][2]concat=n=3:v=1",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "10",
        ],
        &f,
    );
    for (at, want) in [(500, [255u8, 0, 0]), (1500, [0, 255, 0]), (2500, [0, 0, 255])] {
        let t = thumbnail(&f, at, 64).unwrap();
        assert_eq!((t.width, t.height), (64, 36));
        assert!(t.at_ms >= at && t.at_ms < at + 100, "frame at {} for {at}", t.at_ms);
        let mid = ((18 * 64 + 32) * 3) as usize;
        let px = &t.rgb[mid..mid + 3];
        for c in 0..3 {
            assert!((px[c] as i32 - want[c] as i32).abs() < 24, "at {at}: {px:?} vs {want:?}");
        }
    }
}

#[test]
fn filmstrip_and_waveform() {
    let d = dir();
    let f = d.0.join("fw.mp4");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=red:size=320x180:rate=25:duration=1",
            "-f",
            "lavfi",
            "-i",
            "color=c=blue:size=320x180:rate=25:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000:duration=2",
            "-filter_complex",
            "[0][1]concat=n=2:v=1[v]",
            "-map",
            "[v]",
            "-map",
            "2:a",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
        ],
        &f,
    );
    let mut steps = Vec::new();
    let strip = moviola_media::filmstrip(&f, 2000, 4, 36, |i, n| steps.push((i, n))).unwrap();
    assert_eq!((strip.width, strip.height), (64 * 4, 36));
    assert_eq!(steps.last(), Some(&(4, 4)));
    let px = |x: u32| &strip.rgb[((18 * strip.width + x) * 3) as usize..((18 * strip.width + x) * 3 + 3) as usize];
    assert!(px(32)[0] > 200 && px(32)[2] < 40, "first frame red: {:?}", px(32));
    assert!(
        px(64 * 3 + 32)[2] > 200 && px(64 * 3 + 32)[0] < 40,
        "last frame blue: {:?}",
        px(64 * 3 + 32)
    );

    // A sine at amplitude 1/8 (lavfi's default) peaks near ±0.125.
    let w = moviola_media::waveform(&f, 50, |_| {}).unwrap();
    assert_eq!(w.sample_rate, 48000);
    assert!((95..=105).contains(&w.peaks.len()), "{} peaks for 2 s at 50/s", w.peaks.len());
    let mid = w.peaks[50];
    assert!((0.10..=0.15).contains(&mid[1]) && (-0.15..=-0.10).contains(&mid[0]), "{mid:?}");
}
