//! Colour correction as burn tensor operations: auto levels, grey-world white balance, and
//! 3D LUTs (`.cube`) applied with trilinear interpolation.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// Stretches each channel so that its `clip` fraction of darkest and brightest pixels map to
/// 0 and 1 (a percentile, so a few outliers do not defeat it).
pub fn auto_levels<B: Backend>(image: Tensor<B, 3>, clip: f32) -> Tensor<B, 3> {
    let [c, h, w] = image.dims();
    let n = h * w;
    let sorted = image.clone().reshape([c, n]).sort(1);
    let lo_i = ((n - 1) as f32 * clip).round() as usize;
    let hi_i = ((n - 1) as f32 * (1.0 - clip)).round() as usize;
    let lo = sorted.clone().slice([0..c, lo_i..lo_i + 1]).reshape([c, 1, 1]);
    let hi = sorted.slice([0..c, hi_i..hi_i + 1]).reshape([c, 1, 1]);
    // A flat channel (hi == lo) is left alone rather than divided by zero.
    let range = (hi - lo.clone()).clamp_min(1.0 / 255.0);
    ((image - lo) / range).clamp(0.0, 1.0)
}

/// Grey-world white balance: scales each channel so the channel means become equal (to their
/// average), removing a colour cast. Gains are limited to 0.25..4.
pub fn white_balance<B: Backend>(image: Tensor<B, 3>) -> Tensor<B, 3> {
    let [c, _, _] = image.dims();
    let means = image.clone().mean_dim(2).mean_dim(1); // [C, 1, 1]
    let grey = means.clone().reshape([c]).mean().reshape([1, 1, 1]);
    let gains = (grey / means.clamp_min(1e-4)).clamp(0.25, 4.0);
    (image * gains).clamp(0.0, 1.0)
}

/// A 3D colour lookup table: `size`³ RGB entries, red varying fastest (the `.cube` order).
#[derive(Clone, Debug, PartialEq)]
pub struct Lut3d {
    pub size: usize,
    pub domain_min: [f32; 3],
    pub domain_max: [f32; 3],
    pub table: Vec<[f32; 3]>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LutError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("the file has no LUT_3D_SIZE (1D LUTs are not supported)")]
    NoSize,
    #[error("LUT_3D_SIZE {0} is outside 2..=128")]
    BadSize(usize),
    #[error("expected {want} table entries, found {got}")]
    Count { want: usize, got: usize },
}

impl Lut3d {
    /// The table that maps every colour to itself.
    pub fn identity(size: usize) -> Lut3d {
        let step = 1.0 / (size - 1) as f32;
        let mut table = Vec::with_capacity(size * size * size);
        for b in 0..size {
            for g in 0..size {
                for r in 0..size {
                    table.push([r as f32 * step, g as f32 * step, b as f32 * step]);
                }
            }
        }
        Lut3d {
            size,
            domain_min: [0.0; 3],
            domain_max: [1.0; 3],
            table,
        }
    }

    /// Parses Adobe's `.cube` format (TITLE, LUT_3D_SIZE, DOMAIN_MIN/MAX, `#` comments).
    pub fn parse_cube(text: &str) -> Result<Lut3d, LutError> {
        let mut size = None;
        let mut domain_min = [0.0; 3];
        let mut domain_max = [1.0; 3];
        let mut table = Vec::new();
        let triple = |line: usize, parts: &[&str]| -> Result<[f32; 3], LutError> {
            if parts.len() != 3 {
                return Err(LutError::Syntax {
                    line,
                    message: format!("expected 3 numbers, found {}", parts.len()),
                });
            }
            let mut v = [0f32; 3];
            for (i, p) in parts.iter().enumerate() {
                v[i] = p.parse::<f32>().ok().filter(|x| x.is_finite()).ok_or_else(|| LutError::Syntax {
                    line,
                    message: format!("{p:?} is not a number"),
                })?;
            }
            Ok(v)
        };
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.split('#').next().unwrap_or("").trim();
            if l.is_empty() {
                continue;
            }
            let parts: Vec<&str> = l.split_whitespace().collect();
            match parts[0] {
                "TITLE" => {}
                "LUT_1D_SIZE" => return Err(LutError::NoSize),
                "LUT_3D_SIZE" => {
                    let n: usize = parts.get(1).and_then(|v| v.parse().ok()).ok_or_else(|| LutError::Syntax {
                        line,
                        message: "LUT_3D_SIZE needs a number".into(),
                    })?;
                    if !(2..=128).contains(&n) {
                        return Err(LutError::BadSize(n));
                    }
                    size = Some(n);
                }
                "DOMAIN_MIN" => domain_min = triple(line, &parts[1..])?,
                "DOMAIN_MAX" => domain_max = triple(line, &parts[1..])?,
                word if word.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) => {
                    return Err(LutError::Syntax {
                        line,
                        message: format!("unknown keyword {word}"),
                    });
                }
                _ => table.push(triple(line, &parts)?),
            }
        }
        let size = size.ok_or(LutError::NoSize)?;
        let want = size * size * size;
        if table.len() != want {
            return Err(LutError::Count { want, got: table.len() });
        }
        for c in 0..3 {
            if domain_max[c] <= domain_min[c] {
                return Err(LutError::Syntax {
                    line: 0,
                    message: "DOMAIN_MAX must exceed DOMAIN_MIN".into(),
                });
            }
        }
        Ok(Lut3d {
            size,
            domain_min,
            domain_max,
            table,
        })
    }

    /// Applies the table to a `[3, H, W]` image with trilinear interpolation between the eight
    /// surrounding entries.
    pub fn apply<B: Backend>(&self, image: Tensor<B, 3>) -> Tensor<B, 3> {
        let device = image.device();
        let [c, h, w] = image.dims();
        assert_eq!(c, 3, "LUTs apply to RGB images");
        let n = self.size;
        let p = h * w;
        let flat: Vec<f32> = self.table.iter().flatten().copied().collect();
        let table = Tensor::<B, 2>::from_data(TensorData::new(flat, [n * n * n, 3]), &device);
        let dmin = Tensor::<B, 3>::from_data(TensorData::new(self.domain_min.to_vec(), [3, 1, 1]), &device);
        let dmax = Tensor::<B, 3>::from_data(TensorData::new(self.domain_max.to_vec(), [3, 1, 1]), &device);
        // Position in table cells, per channel: [3, P].
        let pos = ((image - dmin.clone()) / (dmax - dmin) * (n - 1) as f32)
            .clamp(0.0, (n - 1) as f32)
            .reshape([3, p]);
        let base = pos.clone().floor().clamp(0.0, (n - 2) as f32);
        let frac = pos - base.clone();
        let base: Tensor<B, 2, Int> = base.int();
        let channel = |t: &Tensor<B, 2, Int>, i: usize| t.clone().slice([i..i + 1, 0..p]).reshape([p]);
        let fchannel = |t: &Tensor<B, 2>, i: usize| t.clone().slice([i..i + 1, 0..p]).reshape([p, 1]);
        let (r0, g0, b0) = (channel(&base, 0), channel(&base, 1), channel(&base, 2));
        let (fr, fg, fb) = (fchannel(&frac, 0), fchannel(&frac, 1), fchannel(&frac, 2));
        let mut out: Option<Tensor<B, 2>> = None;
        for corner in 0..8usize {
            let (dr, dg, db) = (corner & 1, (corner >> 1) & 1, (corner >> 2) & 1);
            let idx = (r0.clone() + dr as i64) + (g0.clone() + dg as i64) * n as i64 + (b0.clone() + db as i64) * (n * n) as i64;
            let pick = |d: usize, f: &Tensor<B, 2>| if d == 1 { f.clone() } else { f.clone().neg() + 1.0 };
            let weight = pick(dr, &fr) * pick(dg, &fg) * pick(db, &fb);
            let term = table.clone().select(0, idx) * weight;
            out = Some(match out {
                Some(acc) => acc + term,
                None => term,
            });
        }
        out.expect("eight corners").swap_dims(0, 1).reshape([3, h, w])
    }
}
