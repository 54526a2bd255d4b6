//! One decoded frame as a small RGB image.

use ff::format::Pixel;
use ff::media::Type;
use ff::software::scaling::{context::Context as Scaler, flag::Flags};
use ffmpeg_next as ff;

use crate::MediaError;

/// An 8-bit RGB image, rows top to bottom, pixels interleaved.
#[derive(Clone, Debug)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
    /// Presentation time of the frame, in milliseconds.
    pub at_ms: i64,
}

/// Decodes the first frame at or after `at_ms` (seeking to the keyframe before it) and scales it
/// to fit in `max_side`×`max_side`, keeping the aspect ratio.
pub fn thumbnail(path: &std::path::Path, at_ms: i64, max_side: u32) -> Result<Thumbnail, MediaError> {
    frame_at(path, at_ms, |w, h| {
        let scale = (max_side as f64 / w.max(h) as f64).min(1.0);
        (
            ((w as f64 * scale).round() as u32).max(2) & !1,
            ((h as f64 * scale).round() as u32).max(2) & !1,
        )
    })
}

/// Like [`thumbnail`], `height` pixels high (width from the aspect ratio, even).
pub fn frame_of_height(path: &std::path::Path, at_ms: i64, height: u32) -> Result<Thumbnail, MediaError> {
    frame_at(path, at_ms, |w, h| {
        (
            ((w as f64 * height as f64 / h as f64).round() as u32).max(2) & !1,
            height.max(2) & !1,
        )
    })
}

/// A strip of `count` frames spread evenly over `duration_ms`, side by side, `height` high.
pub fn filmstrip(
    path: &std::path::Path,
    duration_ms: i64,
    count: u32,
    height: u32,
    mut progress: impl FnMut(u32, u32),
) -> Result<Thumbnail, MediaError> {
    let mut frames = Vec::new();
    for i in 0..count {
        let at = (duration_ms.max(0) as f64 * (i as f64 + 0.5) / count as f64) as i64;
        frames.push(frame_of_height(path, at, height)?);
        progress(i + 1, count);
    }
    let (fw, fh) = (frames[0].width, frames[0].height);
    let width = fw * count;
    let mut rgb = vec![0u8; (width * fh * 3) as usize];
    for (i, f) in frames.iter().enumerate() {
        for row in 0..fh.min(f.height) as usize {
            let src = &f.rgb[row * f.width as usize * 3..(row * f.width as usize + fw.min(f.width) as usize) * 3];
            let dst = (row * width as usize + i * fw as usize) * 3;
            rgb[dst..dst + src.len()].copy_from_slice(src);
        }
    }
    Ok(Thumbnail {
        width,
        height: fh,
        rgb,
        at_ms: 0,
    })
}

fn frame_at(path: &std::path::Path, at_ms: i64, size: impl Fn(u32, u32) -> (u32, u32)) -> Result<Thumbnail, MediaError> {
    crate::init();
    let mut ictx = ff::format::input(path).map_err(|e| MediaError::NotMedia(e.to_string()))?;
    let stream = ictx
        .streams()
        .best(Type::Video)
        .filter(|s| !s.disposition().contains(ff::format::stream::Disposition::ATTACHED_PIC))
        .ok_or(MediaError::NoStream("video"))?;
    let index = stream.index();
    let tb = stream.time_base();
    let mut decoder = ff::codec::context::Context::from_parameters(stream.parameters())?
        .decoder()
        .video()?;
    if at_ms > 0 {
        // AV_TIME_BASE units (microseconds); the demuxer lands on the keyframe before.
        let _ = ictx.seek(at_ms * 1000, ..at_ms * 1000);
    }
    let target_pts = if tb.numerator() > 0 {
        at_ms as i128 * tb.denominator() as i128 / (tb.numerator() as i128 * 1000)
    } else {
        0
    } as i64;
    let (w, h) = (decoder.width().max(1), decoder.height().max(1));
    let (tw, th) = size(w, h);
    let mut scaler = Scaler::get(decoder.format(), w, h, Pixel::RGB24, tw, th, Flags::BICUBIC)?;
    let mut decoded = ff::util::frame::video::Video::empty();
    let mut last: Option<(ff::util::frame::video::Video, i64)> = None;
    let mut take =
        |decoder: &mut ff::decoder::Video, last: &mut Option<(ff::util::frame::video::Video, i64)>| -> Result<bool, MediaError> {
            while decoder.receive_frame(&mut decoded).is_ok() {
                let pts = decoded.timestamp().unwrap_or(0);
                let mut rgb = ff::util::frame::video::Video::empty();
                scaler.run(&decoded, &mut rgb)?;
                *last = Some((rgb, pts));
                if pts >= target_pts {
                    return Ok(true);
                }
            }
            Ok(false)
        };
    let mut done = false;
    for (s, packet) in ictx.packets() {
        if s.index() != index {
            continue;
        }
        if decoder.send_packet(&packet).is_err() {
            continue;
        }
        if take(&mut decoder, &mut last)? {
            done = true;
            break;
        }
    }
    if !done {
        let _ = decoder.send_eof();
        take(&mut decoder, &mut last)?;
    }
    let (frame, pts) = last.ok_or_else(|| MediaError::Decode("no frame could be decoded".into()))?;
    let stride = frame.stride(0);
    let mut rgb = Vec::with_capacity((tw * th * 3) as usize);
    for row in 0..th as usize {
        rgb.extend_from_slice(&frame.data(0)[row * stride..row * stride + tw as usize * 3]);
    }
    let at_ms = if tb.denominator() > 0 {
        (pts as i128 * tb.numerator() as i128 * 1000 / tb.denominator() as i128) as i64
    } else {
        0
    };
    Ok(Thumbnail {
        width: tw,
        height: th,
        rgb,
        at_ms,
    })
}
