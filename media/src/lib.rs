//! `moviola-media`: media on FFmpeg through ffmpeg-next.
//!
//! Decoding untrusted files can crash or hang in C code, so the server never calls this crate
//! on uploads itself: `moviola worker …` does, in a separate process with CPU, memory and time
//! limits, and prints JSON (see `server/src/worker.rs`).

pub mod audio;
pub mod export;
pub mod filter;
pub mod probe;
pub mod thumbnail;
pub mod waveform;

pub use probe::{MediaInfo, StreamInfo, StreamKind, probe};
pub use thumbnail::{Thumbnail, filmstrip, thumbnail};
pub use waveform::{Waveform, waveform};

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("not a media file FFmpeg can read: {0}")]
    NotMedia(String),
    #[error("the file has no {0} stream")]
    NoStream(&'static str),
    #[error("cannot decode: {0}")]
    Decode(String),
    #[error("cannot encode: {0}")]
    Encode(String),
    #[error("the export settings are not usable: {0}")]
    Spec(String),
    #[error("cancelled")]
    Cancelled,
}

impl From<ffmpeg_next::Error> for MediaError {
    fn from(e: ffmpeg_next::Error) -> Self {
        MediaError::Decode(e.to_string())
    }
}

/// Initialises FFmpeg once (idempotent) with its logging quietened.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        ffmpeg_next::init().expect("FFmpeg initialises");
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Error);
    });
}
