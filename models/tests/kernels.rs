//! burn kernels checked against direct computations on small images (CPU backend).

use burn::tensor::Tensor;
use moviola_models::backend::{Cpu, CpuDevice};
use moviola_models::color::{Lut3d, LutError, auto_levels, white_balance};
use moviola_models::resample::{Filter, Taps, resample, resize};
use moviola_models::{Frame, FrameError};

type B = Cpu;

fn device() -> CpuDevice {
    CpuDevice
}

/// A deterministic, non-trivial test pattern.
fn pattern(width: u32, height: u32) -> Frame {
    let mut data = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            data.push(((x * 37 + y * 11) % 256) as u8);
            data.push(((x * x + 3 * y) % 256) as u8);
            data.push(((x ^ y) * 17 % 256) as u8);
        }
    }
    Frame::new(width, height, data).unwrap()
}

#[test]
fn frame_round_trip_is_exact() {
    let frame = pattern(13, 7);
    let back = Frame::from_tensor(frame.to_tensor::<B>(&device())).unwrap();
    assert_eq!(back, frame);
    assert_eq!(
        Frame::new(2, 2, vec![0; 5]),
        Err(FrameError::Size {
            width: 2,
            height: 2,
            got: 5,
            want: 12
        })
    );
}

/// The textbook 2-D definition, in f64, for one output pixel: sum over both tap sets.
fn direct(frame: &Frame, filter: Filter, out_w: usize, out_h: usize) -> Vec<f64> {
    let tx = Taps::new(filter, frame.width as usize, out_w);
    let ty = Taps::new(filter, frame.height as usize, out_h);
    let mut out = vec![0f64; out_w * out_h * 3];
    for oy in 0..out_h {
        for ox in 0..out_w {
            for c in 0..3 {
                let mut acc = 0f64;
                for ky in 0..ty.taps {
                    for kx in 0..tx.taps {
                        let (ix, iy) = (tx.indices[kx][ox] as u32, ty.indices[ky][oy] as u32);
                        let v = frame.pixel(ix, iy)[c] as f64 / 255.0;
                        acc += v * tx.weights[kx][ox] as f64 * ty.weights[ky][oy] as f64;
                    }
                }
                out[(oy * out_w + ox) * 3 + c] = acc;
            }
        }
    }
    out
}

#[test]
fn taps_follow_the_kernel_definition() {
    // Upscaling 2x with bicubic: output 1 of 4 sits at input 0.25; taps are -1..=2 (clamped).
    let t = Taps::new(Filter::Bicubic, 2, 4);
    assert_eq!(t.taps, 4);
    let want: Vec<f64> = [-1.25f64, -0.25, 0.75, 1.75].iter().map(|d| Filter::Bicubic.weight(*d)).collect();
    let sum: f64 = want.iter().sum();
    for k in 0..4 {
        assert!((t.weights[k][1] as f64 - want[k] / sum).abs() < 1e-6, "tap {k}");
    }
    // Catmull-Rom interpolates: weight 1 at 0, 0 at the integers.
    assert_eq!(Filter::Bicubic.weight(0.0), 1.0);
    assert_eq!(Filter::Bicubic.weight(1.0), 0.0);
    assert!(Filter::Lanczos3.weight(2.0).abs() < 1e-12);
}

#[test]
fn bicubic_and_lanczos_match_the_direct_computation() {
    let frame = pattern(9, 6);
    for (filter, w, h) in [
        (Filter::Bicubic, 20, 13),
        (Filter::Lanczos3, 18, 12),
        (Filter::Bicubic, 4, 3),
        (Filter::Lanczos3, 5, 4),
    ] {
        let got = resize(frame.to_tensor::<B>(&device()), w, h, filter);
        assert_eq!(got.dims(), [3, h, w]);
        let values: Vec<f32> = got.into_data().convert::<f32>().to_vec().unwrap();
        let want = direct(&frame, filter, w, h);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let g = values[c * w * h + y * w + x] as f64;
                    let e = want[(y * w + x) * 3 + c];
                    assert!((g - e).abs() < 1e-4, "{filter:?} {w}x{h} at ({x},{y}) channel {c}: {g} vs {e}");
                }
            }
        }
    }
}

#[test]
fn resize_keeps_flat_images_flat_and_same_size_unchanged() {
    let flat = Frame::new(5, 4, [200u8, 10, 90].repeat(20)).unwrap();
    let up = Frame::from_tensor(resize(flat.to_tensor::<B>(&device()), 17, 11, Filter::Lanczos3)).unwrap();
    assert!(up.data.chunks(3).all(|p| p == [200, 10, 90]));
    let frame = pattern(8, 8);
    let same = Frame::from_tensor(resize(frame.to_tensor::<B>(&device()), 8, 8, Filter::Bicubic)).unwrap();
    assert_eq!(same, frame);
}

#[test]
fn identity_lut_leaves_the_image_unchanged() {
    let frame = pattern(16, 9);
    for size in [2, 17, 33] {
        let out = Frame::from_tensor(Lut3d::identity(size).apply(frame.to_tensor::<B>(&device()))).unwrap();
        assert_eq!(out, frame, "identity LUT of size {size}");
    }
}

#[test]
fn lut_interpolates_trilinearly() {
    // A 2-point LUT that inverts colours is linear, so trilinear interpolation is exact.
    let mut lut = Lut3d::identity(2);
    for e in &mut lut.table {
        *e = [1.0 - e[0], 1.0 - e[1], 1.0 - e[2]];
    }
    let frame = pattern(7, 5);
    let out = Frame::from_tensor(lut.apply(frame.to_tensor::<B>(&device()))).unwrap();
    for (a, b) in frame.data.iter().zip(&out.data) {
        assert_eq!(*a as u16 + *b as u16, 255);
    }
    // A non-linear LUT (square each channel) at a grid point returns the entry exactly.
    let mut sq = Lut3d::identity(3);
    for e in &mut sq.table {
        *e = [e[0] * e[0], e[1] * e[1], e[2] * e[2]];
    }
    let grey = Frame::new(1, 1, vec![255, 0, 0]).unwrap();
    let out = Frame::from_tensor(sq.apply(grey.to_tensor::<B>(&device()))).unwrap();
    assert_eq!(out.data, vec![255, 0, 0]);
    // Between grid points it is linear along the axis: 0.25 is halfway between 0 and 0.5.
    let t = Tensor::<B, 3>::from_floats([[[0.25f32]], [[0.0]], [[0.0]]], &device());
    let v: Vec<f32> = sq.apply(t).into_data().convert::<f32>().to_vec().unwrap();
    assert!((v[0] - 0.125).abs() < 1e-6, "{v:?}");
}

#[test]
fn cube_files_parse_and_bad_ones_are_refused() {
    let text = "TITLE \"invert\"\n# comment\nLUT_3D_SIZE 2\nDOMAIN_MIN 0 0 0\nDOMAIN_MAX 1 1 1\n\
                1 1 1\n0 1 1\n1 0 1\n0 0 1\n1 1 0\n0 1 0\n1 0 0\n0 0 0\n";
    let lut = Lut3d::parse_cube(text).unwrap();
    assert_eq!(lut.size, 2);
    assert_eq!(lut.table[1], [0.0, 1.0, 1.0]);
    assert_eq!(Lut3d::parse_cube("LUT_1D_SIZE 4\n"), Err(LutError::NoSize));
    assert_eq!(Lut3d::parse_cube("LUT_3D_SIZE 1000\n"), Err(LutError::BadSize(1000)));
    assert_eq!(
        Lut3d::parse_cube("LUT_3D_SIZE 2\n0 0 0\n"),
        Err(LutError::Count { want: 8, got: 1 })
    );
    assert!(matches!(
        Lut3d::parse_cube("LUT_3D_SIZE 2\n0 x 0\n"),
        Err(LutError::Syntax { line: 2, .. })
    ));
    assert!(matches!(
        Lut3d::parse_cube("\u{89}PNG garbage"),
        Err(LutError::Syntax { .. }) | Err(LutError::NoSize)
    ));
}

#[test]
fn auto_levels_stretches_each_channel() {
    // Red spans 50..=150, green is flat, blue spans 0..=255.
    let mut data = Vec::new();
    for i in 0..101u32 {
        data.extend_from_slice(&[(50 + i) as u8, 77, (i * 255 / 100) as u8]);
    }
    let frame = Frame::new(101, 1, data).unwrap();
    let out = Frame::from_tensor(auto_levels(frame.to_tensor::<B>(&device()), 0.0)).unwrap();
    assert_eq!(out.pixel(0, 0)[0], 0);
    assert_eq!(out.pixel(100, 0)[0], 255);
    assert_eq!(out.pixel(50, 0)[0], 128);
    assert_eq!(out.pixel(10, 0)[1], 0, "a flat channel maps to its floor without dividing by zero");
    assert_eq!(out.pixel(100, 0)[2], 255);
}

#[test]
fn white_balance_removes_a_cast() {
    // A grey ramp with a blue cast: after grey-world, the channel means are equal.
    let mut data = Vec::new();
    for i in 0..64u32 {
        let v = (i * 3) as u8;
        data.extend_from_slice(&[v, v, (v as u32 * 3 / 2).min(255) as u8]);
    }
    let frame = Frame::new(64, 1, data).unwrap();
    let out = white_balance(frame.to_tensor::<B>(&device()));
    let means: Vec<f32> = out.mean_dim(2).mean_dim(1).into_data().convert::<f32>().to_vec().unwrap();
    assert!(
        (means[0] - means[2]).abs() < 0.01 && (means[1] - means[2]).abs() < 0.01,
        "{means:?}"
    );
}

#[test]
fn bands_put_together_equal_the_whole() {
    let frame = pattern(10, 9);
    let t = frame.to_tensor::<B>(&device());
    let taps = Taps::new(Filter::Lanczos3, 9, 20);
    let whole = resample(&t, 1, &taps, 0..20);
    let bands = Tensor::cat(vec![resample(&t, 1, &taps, 0..7), resample(&t, 1, &taps, 7..20)], 1);
    let (a, b): (Vec<f32>, Vec<f32>) = (whole.into_data().to_vec().unwrap(), bands.into_data().to_vec().unwrap());
    assert_eq!(a, b);
}
