//! Video denoising on burn: spatio-temporal non-local means (Buades, Coll & Morel; the
//! video form searches the neighbouring frames too).
//!
//! Each pixel becomes the weighted mean of the pixels in a search window of its own frame and
//! of the frames before and after it, weighted by how alike the 3×3 patches around them are:
//! `w = exp(−max(d² − 2σ², 0) / h²)` with `d²` the patches' mean squared difference. Still
//! areas average over three frames; moving areas and cuts find no match in the other frames
//! and fall back to the frame's own similar patches, so nothing ghosts. Everything is whole-
//! frame tensor arithmetic (one shifted copy per search offset), so any burn backend runs it;
//! on a GPU it is a few milliseconds a frame.
//!
//! The noise level σ is estimated from the footage when not given ([`estimate_sigma`],
//! Immerkær's fast estimator).

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::PadMode;

/// How a frame is denoised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NlMeans {
    /// Noise standard deviation in 0..1 units (8-bit levels / 255).
    pub sigma: f32,
    /// Search radius in the frame itself (3 → 7×7 candidates).
    pub radius: usize,
    /// Search radius in the frames before and after.
    pub temporal_radius: usize,
    /// Patch radius (1 → 3×3 patches).
    pub patch: usize,
    /// Filtering strength `h` as a multiple of σ.
    pub h: f32,
}

impl NlMeans {
    /// The settings for noise of standard deviation `sigma` (0..1 units).
    pub fn for_sigma(sigma: f32) -> NlMeans {
        NlMeans {
            sigma,
            radius: 3,
            temporal_radius: 2,
            patch: 1,
            h: 0.7,
        }
    }

    /// Denoises `current` (`[3, h, w]`, 0..1) with the help of the frames around it (same size;
    /// none at the ends of a clip).
    pub fn denoise<B: Backend>(&self, current: Tensor<B, 3>, neighbours: &[Tensor<B, 3>]) -> Tensor<B, 3> {
        let [c, height, width] = current.dims();
        let r = self.radius.max(self.temporal_radius);
        if self.sigma <= 0.0 || height <= r || width <= r {
            return current;
        }
        let h2 = (self.h * self.sigma).powi(2).max(1e-8);
        let two_sigma2 = 2.0 * self.sigma * self.sigma;
        let k = 2 * self.patch + 1;
        let pad = |t: Tensor<B, 3>| t.pad((r, r, r, r), PadMode::Reflect);
        let mut total: Option<Tensor<B, 3>> = None;
        let mut weights: Option<Tensor<B, 3>> = None;
        let frames: Vec<(Tensor<B, 3>, usize)> = std::iter::once((current.clone(), self.radius))
            .chain(neighbours.iter().map(|n| (n.clone(), self.temporal_radius)))
            .collect();
        for (frame, radius) in frames {
            let padded = pad(frame);
            for dy in 0..=2 * radius {
                for dx in 0..=2 * radius {
                    let (y0, x0) = (r - radius + dy, r - radius + dx);
                    let shifted = padded.clone().slice([0..c, y0..y0 + height, x0..x0 + width]);
                    // Patch distance: the channels' mean squared difference, averaged over the
                    // patch (edges average what they have).
                    let diff = (current.clone() - shifted.clone()).powf_scalar(2.0).mean_dim(0);
                    let d2 = avg_pool2d(diff.unsqueeze::<4>(), [k, k], [1, 1], [self.patch, self.patch], false, false)
                        .reshape([1, height, width]);
                    let w = ((d2 - two_sigma2).clamp_min(0.0) / -h2).exp();
                    let contribution = shifted * w.clone();
                    total = Some(match total {
                        Some(t) => t + contribution,
                        None => contribution,
                    });
                    weights = Some(match weights {
                        Some(s) => s + w,
                        None => w,
                    });
                }
            }
        }
        (total.expect("at least one offset") / weights.expect("at least one offset")).clamp(0.0, 1.0)
    }
}

/// The noise standard deviation of an RGB frame in 8-bit levels, the mean over its channels
/// (Immerkær 1996: the mean absolute response of a Laplacian difference mask, which cancels
/// smooth image content). Textured pictures read a little high; pass several frames and take
/// the lowest.
pub fn estimate_sigma(width: usize, height: usize, rgb: &[u8]) -> f32 {
    if width < 3 || height < 3 || rgb.len() < width * height * 3 {
        return 0.0;
    }
    let at = |x: usize, y: usize, c: usize| f32::from(rgb[(y * width + x) * 3 + c]);
    let mut sum = 0f64;
    for c in 0..3 {
        for y in 1..height - 1 {
            for x in 1..width - 1 {
                let v = at(x - 1, y - 1, c) - 2.0 * at(x, y - 1, c) + at(x + 1, y - 1, c) - 2.0 * at(x - 1, y, c) + 4.0 * at(x, y, c)
                    - 2.0 * at(x + 1, y, c)
                    + at(x - 1, y + 1, c)
                    - 2.0 * at(x, y + 1, c)
                    + at(x + 1, y + 1, c);
                sum += f64::from(v.abs());
            }
        }
    }
    ((std::f64::consts::PI / 2.0).sqrt() * sum / (3.0 * 6.0 * (width - 2) as f64 * (height - 2) as f64)) as f32
}
