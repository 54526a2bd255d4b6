//! End-to-end tests: the real `moviola` binary on `127.0.0.1:0`, real WebSocket clients.

mod api;
mod bad_input;
mod browser;
mod crash;
mod export;
mod jobs;
mod media;
mod models;
mod node;
mod sync;

use std::path::Path;
use std::process::Command;

use moviola_crdt::EditOp;
use moviola_crdt::timeline::TrackKind;

/// A small, valid edit with a unique id.
pub(crate) fn add_track(id: &str) -> EditOp {
    EditOp::AddTrack {
        id: id.to_owned(),
        kind: TrackKind::Video,
        name: id.to_owned(),
        after: None,
    }
}

/// Runs `ffmpeg ARGS… OUT` quietly (test media from lavfi sources), asserts it worked, and
/// returns the file's bytes.
pub(crate) fn ffmpeg(args: &[&str], out: &Path) -> Vec<u8> {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(out)
        .status()
        .expect("ffmpeg is installed (scripts/setup.sh)");
    assert!(status.success(), "ffmpeg {args:?}");
    std::fs::read(out).unwrap()
}
