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
