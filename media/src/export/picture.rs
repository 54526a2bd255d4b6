//! Pictures in the export's working format — 8-bit YUV 4:2:0, limited range, tightly packed —
//! and the compositing the render plan needs: fitting a source into the frame (pad or crop,
//! turned by its display rotation), blending two pictures, fading towards black and wiping.

use ff::format::Pixel;
use ff::software::scaling::{context::Context as Scaler, flag::Flags};
use ffmpeg_next as ff;

use crate::MediaError;

/// Limited-range black.
const BLACK: [u8; 3] = [16, 128, 128];

/// An 8-bit YUV 4:2:0 picture with even width and height; chroma planes are half size.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub planes: [Vec<u8>; 3],
}

impl Picture {
    pub fn black(width: usize, height: usize) -> Picture {
        let (cw, ch) = (width / 2, height / 2);
        Picture {
            width,
            height,
            planes: [vec![BLACK[0]; width * height], vec![BLACK[1]; cw * ch], vec![BLACK[2]; cw * ch]],
        }
    }

    fn plane_size(&self, p: usize) -> (usize, usize) {
        if p == 0 {
            (self.width, self.height)
        } else {
            (self.width / 2, self.height / 2)
        }
    }

    /// `self = self·(1−α) + other·α`, α in 0..=1.
    pub fn blend(&mut self, other: &Picture, alpha: f64) {
        let k = (alpha.clamp(0.0, 1.0) * 256.0).round() as u32;
        for (a, b) in self.planes.iter_mut().zip(&other.planes) {
            for (x, y) in a.iter_mut().zip(b) {
                *x = ((*x as u32 * (256 - k) + *y as u32 * k + 128) >> 8) as u8;
            }
        }
    }

    /// Moves every sample towards black: `level` 1 keeps the picture, 0 is black.
    pub fn fade(&mut self, level: f64) {
        let k = (level.clamp(0.0, 1.0) * 256.0).round() as i32;
        for (plane, black) in self.planes.iter_mut().zip(BLACK) {
            let black = black as i32;
            for x in plane.iter_mut() {
                *x = (black + (((*x as i32 - black) * k + 128) >> 8)) as u8;
            }
        }
    }

    /// Replaces the part of `self` on `other`'s side of a wipe edge. `progress` 0..=1 is how far
    /// the edge has travelled; `horizontal` edges travel along x; `forward` towards +x / +y.
    pub fn wipe(&mut self, other: &Picture, progress: f64, horizontal: bool, forward: bool) {
        let p = progress.clamp(0.0, 1.0);
        for idx in 0..3 {
            let (w, h) = self.plane_size(idx);
            let extent = if horizontal { w } else { h };
            let edge = (p * extent as f64).round() as usize;
            // `other` covers [0, edge) when the edge travels forward, [extent − edge, extent) back.
            let range = if forward { 0..edge } else { extent - edge..extent };
            let (a, b) = (&mut self.planes[idx], &other.planes[idx]);
            if horizontal {
                for row in 0..h {
                    let r = row * w;
                    a[r + range.start..r + range.end].copy_from_slice(&b[r + range.start..r + range.end]);
                }
            } else {
                a[range.start * w..range.end * w].copy_from_slice(&b[range.start * w..range.end * w]);
            }
        }
    }

    /// Copies the picture into a new frame of `format` (for the encoder or a filter graph).
    pub fn to_frame(&self, converter: &mut Option<Scaler>, format: Pixel) -> Result<ff::util::frame::video::Video, MediaError> {
        let mut frame = ff::util::frame::video::Video::new(Pixel::YUV420P, self.width as u32, self.height as u32);
        for p in 0..3 {
            let (w, h) = self.plane_size(p);
            let stride = frame.stride(p);
            let data = frame.data_mut(p);
            for row in 0..h {
                data[row * stride..row * stride + w].copy_from_slice(&self.planes[p][row * w..row * w + w]);
            }
        }
        if format == Pixel::YUV420P {
            return Ok(frame);
        }
        let scaler = match converter {
            Some(s) => s,
            None => converter.insert(Scaler::get(
                Pixel::YUV420P,
                self.width as u32,
                self.height as u32,
                format,
                self.width as u32,
                self.height as u32,
                Flags::BICUBIC,
            )?),
        };
        let mut out = ff::util::frame::video::Video::empty();
        scaler.run(&frame, &mut out)?;
        Ok(out)
    }

    /// Reads a YUV 4:2:0 frame of exactly this picture's size (what a filter graph hands back).
    pub fn from_frame(frame: &ff::util::frame::video::Video) -> Picture {
        let (width, height) = (frame.width() as usize, frame.height() as usize);
        let mut pic = Picture::black(width, height);
        for p in 0..3 {
            let (w, h) = pic.plane_size(p);
            let stride = frame.stride(p);
            let data = frame.data(p);
            for row in 0..h {
                pic.planes[p][row * w..row * w + w].copy_from_slice(&data[row * stride..row * stride + w]);
            }
        }
        pic
    }

    /// Turns the picture clockwise by `degrees` (a multiple of 90).
    fn rotated(&self, degrees: i32) -> Picture {
        let quarter = degrees.rem_euclid(360) / 90;
        if quarter == 0 {
            return self.clone();
        }
        let (nw, nh) = if quarter % 2 == 1 {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        };
        let mut out = Picture::black(nw, nh);
        for p in 0..3 {
            let (w, h) = self.plane_size(p);
            let (ow, _) = out.plane_size(p);
            let src = &self.planes[p];
            let dst = &mut out.planes[p];
            for y in 0..h {
                for x in 0..w {
                    let (dx, dy) = match quarter {
                        1 => (h - 1 - y, x),
                        2 => (w - 1 - x, h - 1 - y),
                        _ => (y, w - 1 - x),
                    };
                    dst[dy * ow + dx] = src[y * w + x];
                }
            }
        }
        out
    }
}

/// How a source of another aspect ratio fills the frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// All of the picture, with black bars.
    #[default]
    Pad,
    /// The frame filled, the overflow cut off (centred).
    Crop,
}

/// Fits decoded frames of one source into the output frame.
pub(super) struct Fitter {
    out: (usize, usize),
    fit: Fit,
    rotation: i32,
    scaler: Option<((Pixel, u32, u32), Scaler)>,
}

impl Fitter {
    /// `rotation`: the stream's display rotation, counter-clockwise (as probed).
    pub(super) fn new(out_width: usize, out_height: usize, fit: Fit, rotation: i32) -> Fitter {
        Fitter {
            out: (out_width, out_height),
            fit,
            // Turned clockwise by what is left of a full turn.
            rotation: (360 - (rotation.rem_euclid(360) + 45) / 90 * 90) % 360,
            scaler: None,
        }
    }

    pub(super) fn fit(&mut self, frame: &ff::util::frame::video::Video) -> Result<Picture, MediaError> {
        let (w, h) = (frame.width().max(1), frame.height().max(1));
        let key = (frame.format(), w, h);
        if self.scaler.as_ref().is_none_or(|(k, _)| *k != key) {
            let sar = frame.aspect_ratio();
            let sar = if sar.numerator() > 0 && sar.denominator() > 0 {
                sar.numerator() as f64 / sar.denominator() as f64
            } else {
                1.0
            };
            let turned = self.rotation % 180 == 90;
            // Display size: pixel aspect applied, then turned.
            let (dw, dh) = if turned {
                (h as f64, w as f64 * sar)
            } else {
                (w as f64 * sar, h as f64)
            };
            let (ow, oh) = (self.out.0 as f64, self.out.1 as f64);
            let scale = match self.fit {
                Fit::Pad => (ow / dw).min(oh / dh),
                Fit::Crop => (ow / dw).max(oh / dh),
            };
            let even = |v: f64| ((v.round() as usize).max(2) + 1) & !1;
            let (tw, th) = (even(dw * scale), even(dh * scale));
            // Scale in the coded orientation; turn afterwards.
            let (sw, sh) = if turned { (th, tw) } else { (tw, th) };
            let scaler = Scaler::get(frame.format(), w, h, Pixel::YUV420P, sw as u32, sh as u32, Flags::BICUBIC)?;
            self.scaler = Some((key, scaler));
        }
        let (_, scaler) = self.scaler.as_mut().expect("just set");
        let mut scaled = ff::util::frame::video::Video::empty();
        scaler.run(frame, &mut scaled)?;
        let pic = Picture::from_frame(&scaled).rotated(self.rotation);
        Ok(self.place(&pic))
    }

    /// Centres `pic` on a black frame of the output size, cutting what overflows.
    fn place(&self, pic: &Picture) -> Picture {
        let (ow, oh) = self.out;
        if (pic.width, pic.height) == (ow, oh) {
            return pic.clone();
        }
        let mut out = Picture::black(ow, oh);
        // Offsets in luma samples, even so chroma lines up.
        let off = |o: usize, p: usize| ((o as i64 - p as i64) / 2) & !1;
        let (dx, dy) = (off(ow, pic.width), off(oh, pic.height));
        for p in 0..3 {
            let div = if p == 0 { 1 } else { 2 };
            let (pw, ph) = (pic.width / div, pic.height / div);
            let (cw, chh) = (ow / div, oh / div);
            let (dx, dy) = (dx / div as i64, dy / div as i64);
            let x0 = dx.max(0) as usize;
            let sx0 = (-dx).max(0) as usize;
            let n = (pw - sx0).min(cw - x0);
            for row in 0..ph {
                let y = row as i64 + dy;
                if y < 0 || y >= chh as i64 {
                    continue;
                }
                let d = y as usize * cw + x0;
                let s = row * pw + sx0;
                out.planes[p][d..d + n].copy_from_slice(&pic.planes[p][s..s + n]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(w: usize, h: usize, yuv: [u8; 3]) -> Picture {
        Picture {
            width: w,
            height: h,
            planes: [vec![yuv[0]; w * h], vec![yuv[1]; w * h / 4], vec![yuv[2]; w * h / 4]],
        }
    }

    #[test]
    fn blend_fade_and_wipe() {
        let mut a = flat(4, 4, [200, 100, 60]);
        a.blend(&flat(4, 4, [100, 200, 160]), 0.5);
        assert_eq!(a.planes[0][0], 150);
        assert_eq!(a.planes[1][0], 150);
        let mut f = flat(4, 4, [216, 28, 228]);
        f.fade(0.0);
        assert_eq!(f, Picture::black(4, 4));
        let mut w = flat(4, 2, [10, 10, 10]);
        w.wipe(&flat(4, 2, [90, 90, 90]), 0.5, true, true);
        assert_eq!(&w.planes[0][0..4], &[90, 90, 10, 10]);
        let mut w = flat(4, 2, [10, 10, 10]);
        w.wipe(&flat(4, 2, [90, 90, 90]), 0.5, true, false);
        assert_eq!(&w.planes[0][0..4], &[10, 10, 90, 90]);
    }

    #[test]
    fn rotation_turns_clockwise() {
        // 2×4 luma: row-major 0..8; turned clockwise the first column read bottom-up becomes
        // the first row.
        let mut p = Picture::black(2, 4);
        p.planes[0] = (0..8).collect();
        let r = p.rotated(90);
        assert_eq!((r.width, r.height), (4, 2));
        assert_eq!(r.planes[0], vec![6, 4, 2, 0, 7, 5, 3, 1]);
    }
}
