//! vidstab stabilisation through libavfilter: a steady textured scene filmed by a shaking
//! camera (a crop window moving every frame) comes out with far less frame-to-frame motion,
//! the same length, and its sound.

mod common;
use common::dir;

use std::path::Path;
use std::process::Command;

/// Grey frames (luma) decoded by the ffmpeg command line, `w`×`h`.
fn gray_frames(path: &Path, w: usize, h: usize) -> Vec<Vec<u8>> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vf", &format!("scale={w}:{h}"), "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .unwrap();
    out.stdout.chunks(w * h).map(|c| c.to_vec()).collect()
}

/// The whole-pixel shift of `b` against `a` with the smallest mean absolute difference over
/// the centre, searched ±`r` pixels.
fn shift(a: &[u8], b: &[u8], w: usize, h: usize, r: i64) -> (i64, i64) {
    let mut best = (f64::MAX, (0, 0));
    for dy in -r..=r {
        for dx in -r..=r {
            let mut sad = 0u64;
            let mut n = 0u64;
            for y in (h / 4)..(3 * h / 4) {
                for x in (w / 4)..(3 * w / 4) {
                    let (bx, by) = (x as i64 + dx, y as i64 + dy);
                    sad += (a[y * w + x] as i64 - b[by as usize * w + bx as usize] as i64).unsigned_abs();
                    n += 1;
                }
            }
            let m = sad as f64 / n as f64;
            if m < best.0 {
                best = (m, (dx, dy));
            }
        }
    }
    best.1
}

fn mean_motion(frames: &[Vec<u8>], w: usize, h: usize) -> f64 {
    let shifts: Vec<f64> = frames
        .windows(2)
        .map(|p| {
            let (dx, dy) = shift(&p[0], &p[1], w, h, 8);
            ((dx * dx + dy * dy) as f64).sqrt()
        })
        .collect();
    shifts.iter().sum::<f64>() / shifts.len() as f64
}

#[test]
fn shaky_footage_comes_out_steady() {
    let d = dir();
    // A detailed, non-repeating still (a Mandelbrot view), then a crop window that shakes.
    let still = d.0.join("still.png");
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "mandelbrot=size=400x260:start_scale=0.6",
            "-frames:v",
            "1",
        ])
        .arg(&still)
        .status()
        .unwrap();
    assert!(status.success());
    let shaky = d.0.join("shaky.mp4");
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-loop",
            "1",
            "-framerate",
            "25",
            "-t",
            "3",
            "-i",
        ])
        .arg(&still)
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=3"])
        .args(["-vf", "crop=w=320:h=200:x='40+22*sin(t*9)':y='30+15*sin(t*7+1)'"])
        .args(["-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"])
        .arg(&shaky)
        .status()
        .unwrap();
    assert!(status.success());
    let out = d.0.join("steady.mp4");
    let mut last = (0, 0);
    let mut previews = Vec::new();
    let report = moviola_media::filter::stabilize(
        &shaky,
        &out,
        &d.0.join("work"),
        30,
        &mut |a, b| {
            last = (a, b);
            true
        },
        &mut |w, h, rgb| previews.push((w, h, rgb.len())),
    )
    .unwrap();
    assert_eq!(report.frames, 75);
    // A still of the steadied picture at the start (then at most every 2 s): 96×60 RGB.
    assert_eq!(previews.first(), Some(&(96, 60, 96 * 60 * 3)), "{previews:?}");
    assert_eq!(last.0, last.1, "progress ends at its total");
    let (w, h) = (160, 100);
    let before = mean_motion(&gray_frames(&shaky, w, h), w, h);
    let after = mean_motion(&gray_frames(&out, w, h), w, h);
    eprintln!("mean frame-to-frame motion: {before:.2} px → {after:.2} px");
    assert!(after < before / 3.0, "motion {before:.2} → {after:.2} px");
    let info = moviola_media::probe(&out).unwrap();
    assert_eq!(info.video().unwrap().codec, "h264");
    assert_eq!(info.audio().unwrap().codec, "aac");
    assert!((info.duration_ms.unwrap() - 3000).abs() <= 60, "{info:?}");
}
