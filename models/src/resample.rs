//! Resampling with classical separable kernels, as burn tensor operations: each output column
//! (then row) is a weighted sum of a few input columns picked with `select`. The taps and their
//! weights are computed once per size on the CPU; the work per pixel runs on the backend.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// Keys' cubic convolution with a = -0.5 (Catmull-Rom), support 2.
    Bicubic,
    /// Windowed sinc with three lobes, support 3.
    Lanczos3,
}

impl Filter {
    pub fn support(self) -> f64 {
        match self {
            Filter::Bicubic => 2.0,
            Filter::Lanczos3 => 3.0,
        }
    }

    /// The kernel's weight at distance `x` (in input pixels at scale 1).
    pub fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
                } else {
                    0.0
                }
            }
            Filter::Lanczos3 => {
                if x < 1e-12 {
                    1.0
                } else if x < 3.0 {
                    let px = std::f64::consts::PI * x;
                    3.0 * px.sin() * (px / 3.0).sin() / (px * px)
                } else {
                    0.0
                }
            }
        }
    }
}

/// Taps of a 1-D resampling from `input` to `output` samples: `taps` rows of (index, weight)
/// for every output sample, weights normalised to sum to one, indices clamped to the edge.
#[derive(Clone, Debug)]
pub struct Taps {
    pub taps: usize,
    /// `indices[k][o]`: input sample of tap `k` for output `o`.
    pub indices: Vec<Vec<i64>>,
    pub weights: Vec<Vec<f32>>,
}

impl Taps {
    pub fn new(filter: Filter, input: usize, output: usize) -> Taps {
        let scale = output as f64 / input as f64;
        // Downscaling widens the kernel so every input sample contributes (no aliasing).
        let stretch = scale.min(1.0);
        let support = filter.support() / stretch;
        let taps = (support.ceil() as usize * 2).max(1);
        let mut indices = vec![vec![0i64; output]; taps];
        let mut weights = vec![vec![0f32; output]; taps];
        for o in 0..output {
            let center = (o as f64 + 0.5) / scale - 0.5;
            let first = center.floor() as i64 - taps as i64 / 2 + 1;
            let raw: Vec<f64> = (0..taps)
                .map(|k| filter.weight((first + k as i64) as f64 - center) * stretch)
                .collect();
            let sum: f64 = raw.iter().sum();
            for k in 0..taps {
                indices[k][o] = (first + k as i64).clamp(0, input as i64 - 1);
                weights[k][o] = (raw[k] / sum) as f32;
            }
        }
        Taps { taps, indices, weights }
    }
}

/// Resamples one dimension (`dim` 1 = rows, 2 = columns) of a `[C, H, W]` tensor, producing
/// only the output samples in `range` (so a large frame can be done in bands, with progress
/// and cancellation between them; the bands put together equal the whole).
pub fn resample<B: Backend>(image: &Tensor<B, 3>, dim: usize, taps: &Taps, range: std::ops::Range<usize>) -> Tensor<B, 3> {
    assert!(dim == 1 || dim == 2, "resample rows (1) or columns (2)");
    let device = image.device();
    let output = range.len();
    let shape: [usize; 3] = if dim == 1 { [1, output, 1] } else { [1, 1, output] };
    let mut out: Option<Tensor<B, 3>> = None;
    for k in 0..taps.taps {
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(taps.indices[k][range.clone()].to_vec(), [output]), &device);
        let w = Tensor::<B, 3>::from_data(TensorData::new(taps.weights[k][range.clone()].to_vec(), shape), &device);
        let term = image.clone().select(dim, idx) * w;
        out = Some(match out {
            Some(acc) => acc + term,
            None => term,
        });
    }
    out.expect("at least one tap")
}

/// Resizes a `[C, H, W]` image to `width` x `height` with `filter`, columns first.
pub fn resize<B: Backend>(image: Tensor<B, 3>, width: usize, height: usize, filter: Filter) -> Tensor<B, 3> {
    let [_, h, w] = image.dims();
    let image = if w == width {
        image
    } else {
        resample(&image, 2, &Taps::new(filter, w, width), 0..width)
    };
    if h == height {
        image
    } else {
        resample(&image, 1, &Taps::new(filter, h, height), 0..height)
    }
}
