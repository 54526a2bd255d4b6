//! What the model tests share: where the fetched weights and the test footage are, and the
//! ffmpeg CLI as an independent decoder.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `<models>/<name>`: the fetched models (`moviola models fetch` into ./data/models, which
/// scripts/test.sh does; `MOVIOLA_MODELS_DIR` overrides).
pub(crate) fn model_dir(name: &str) -> PathBuf {
    std::env::var("MOVIOLA_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/models"))
        .join(name)
}

/// OpenCV's sample videos (Debian's opencv-doc, extracted by `scripts/test-media.sh`).
pub(crate) fn test_media(name: &str) -> PathBuf {
    let path = std::env::var("MOVIOLA_TEST_MEDIA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/test-media"))
        .join(name);
    assert!(path.is_file(), "{} is missing: run scripts/test-media.sh", path.display());
    path
}

/// Runs `ffmpeg -hide_banner -loglevel error ARGS…` with `input` on its standard input (fed
/// from a thread, so neither side blocks); its standard output.
pub(crate) fn ffmpeg_pipe(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ffmpeg is installed (scripts/setup.sh)");
    let mut stdin = child.stdin.take().expect("piped");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("ffmpeg ran");
    writer.join().expect("the writer thread").expect("ffmpeg read its input");
    assert!(out.status.success(), "ffmpeg {args:?}");
    out.stdout
}
