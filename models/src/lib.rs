//! Image and video kernels on burn, generic over `B: Backend`: frame <-> tensor conversion,
//! resampling (bicubic, Lanczos), colour (auto levels, white balance, 3D LUTs), and learned
//! models ported from their references (Real-ESRGAN: [`esrgan`] and [`rrdb`], RIFE: [`rife`], TransNetV2:
//! [`transnet`]).
//!
//! Only the `moviola` binary picks a backend ([`backend`]); everything here takes any `B`.
//! Tensors hold images as planar `[3, height, width]` f32 in 0..=1.

pub mod backend;
pub mod color;
pub mod denoise;
pub mod esrgan;
pub mod frame;
pub mod record;
pub mod resample;
pub mod rife;
pub mod rrdb;
pub mod transnet;

/// The burn this crate is built on, for callers that hold its tensors.
pub use burn;
pub use frame::{Frame, FrameError};

/// Reports progress and asks whether to stop; implemented by the job runner.
pub trait Progress {
    /// `done` of `total` steps of the current stage are finished.
    fn step(&mut self, done: u64, total: u64);
    /// True when the job was cancelled; kernels check between steps and return early.
    fn cancelled(&self) -> bool;
}

/// A no-op [`Progress`] for tests and tools.
pub struct NoProgress;

impl Progress for NoProgress {
    fn step(&mut self, _: u64, _: u64) {}
    fn cancelled(&self) -> bool {
        false
    }
}
