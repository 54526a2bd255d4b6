//! `moviola-actors`: the live side of a Moviola server, as actix actors.
//!
//! - [`project::ProjectActor`] — one per open project: owns the timeline document, one
//!   automerge sync state per connected peer, persists every accepted change before it is
//!   acknowledged or relayed, and fans out in batches on a short tick.
//! - [`session::SessionActor`] — one per `/sync` WebSocket: authenticates, bounds and decodes
//!   frames, checks the member's role per document and routes to project actors.
//! - [`hub::Hub`] — the registry that starts project actors on first use and counts sessions.
//!
//! # Crate features
//! None.

pub mod chunks;
pub mod hub;
pub mod jobs;
pub mod limits;
pub mod project;
pub mod session;

pub use hub::Hub;
pub use limits::{Limits, ProjectSettings};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
