//! Shot boundaries (FFmpeg scdet) on a synthetic concatenation with known cut points.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A lavfi filter graph encoded to H.264 at `file`.
fn encode(graph: &str, file: &Path) {
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-filter_complex",
            graph,
            "-c:v",
            "libx264",
            "-crf",
            "18",
        ])
        .arg(file)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn cuts_of_a_concatenation_are_found_to_the_frame() {
    let dir = std::env::temp_dir().join(format!("moviola-scenes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file: PathBuf = dir.join("cuts.mp4");
    // Four one-second shots of different content, 25 fps: cuts at 1, 2 and 3 s.
    let graph = "testsrc2=size=320x240:rate=25:duration=1[a];mandelbrot=size=320x240:rate=25,trim=duration=1,setpts=PTS-STARTPTS[b];\
                 smptebars=size=320x240:rate=25:duration=1[c];color=c=0x336699:size=320x240:rate=25:duration=1,noise=alls=30:allf=t[d];\
                 [a][b][c][d]concat=n=4:v=1:a=0,format=yuv420p";
    encode(graph, &file);
    let cuts = moviola_media::filter::detect_scenes(&file, 10.0, &mut |_, _| true).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let truth = [1000i64, 2000, 3000];
    let hits = truth.iter().filter(|t| cuts.iter().any(|c| (c.time_ms - **t).abs() <= 40)).count();
    let precision = hits as f64 / cuts.len().max(1) as f64;
    let recall = hits as f64 / truth.len() as f64;
    let f1 = 2.0 * precision * recall / (precision + recall).max(1e-9);
    eprintln!("scdet cuts {cuts:?}: F1 {f1:.3}");
    assert!(f1 >= 0.95, "F1 {f1}: {cuts:?}");
}

/// At 29.97 fps a frame does not start on a whole millisecond: the cut's ticks are the frame's
/// exact time (30 frames × 1001/30000 s), so a split there starts the new shot on its first frame.
#[test]
fn cut_times_are_exact_in_ticks_at_ntsc_rates() {
    let dir = std::env::temp_dir().join(format!("moviola-scenes-ntsc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file: PathBuf = dir.join("ntsc.mp4");
    let graph = "testsrc2=size=320x240:rate=30000/1001:duration=1.001[a];smptebars=size=320x240:rate=30000/1001:duration=1.001[b];\
                 [a][b]concat=n=2:v=1:a=0,format=yuv420p";
    encode(graph, &file);
    let cuts = moviola_media::filter::detect_scenes(&file, 10.0, &mut |_, _| true).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let frame_ticks = moviola_crdt::time::TICKS_PER_SECOND * 1001 / 30000;
    assert_eq!(cuts.len(), 1, "{cuts:?}");
    assert_eq!(cuts[0].ticks, 30 * frame_ticks, "{cuts:?}");
    assert_eq!(cuts[0].time_ms, 1001, "{cuts:?}");
}
