//! Audio waveform peaks: the minimum and maximum of the mono mix in each bucket.

use ff::format::Sample;
use ff::media::Type;
use ffmpeg_next as ff;
use serde::Serialize;

use crate::MediaError;

#[derive(Clone, Debug, Serialize)]
pub struct Waveform {
    pub sample_rate: u32,
    pub peaks_per_second: u32,
    /// `[min, max]` per bucket, in -1..=1.
    pub peaks: Vec<[f32; 2]>,
}

/// Mono mix of one decoded frame as f32 samples (the common sample formats).
fn mono(frame: &ff::util::frame::Audio) -> Vec<f32> {
    let n = frame.samples();
    let ch = frame.channels().max(1) as usize;
    let planar = frame.is_planar();
    let read = |bytes: &[u8], i: usize, fmt: Sample| -> f32 {
        match fmt {
            Sample::U8(_) => (bytes[i] as f32 - 128.0) / 128.0,
            Sample::I16(_) => i16::from_le_bytes([bytes[i * 2], bytes[i * 2 + 1]]) as f32 / 32768.0,
            Sample::I32(_) => i32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap()) as f32 / 2_147_483_648.0,
            Sample::F32(_) => f32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap()),
            Sample::F64(_) => f64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap()) as f32,
            _ => 0.0,
        }
    };
    let fmt = frame.format();
    let mut out = vec![0f32; n];
    for (s, o) in out.iter_mut().enumerate() {
        let mut acc = 0.0;
        for c in 0..ch {
            acc += if planar {
                read(frame.data(c), s, fmt)
            } else {
                read(frame.data(0), s * ch + c, fmt)
            };
        }
        *o = acc / ch as f32;
    }
    out
}

/// Decodes the first audio stream and reduces it to `peaks_per_second` min/max pairs per second.
pub fn waveform(path: &std::path::Path, peaks_per_second: u32, mut progress: impl FnMut(i64)) -> Result<Waveform, MediaError> {
    crate::init();
    let mut ictx = ff::format::input(path).map_err(|e| MediaError::NotMedia(e.to_string()))?;
    let stream = ictx.streams().best(Type::Audio).ok_or(MediaError::NoStream("audio"))?;
    let index = stream.index();
    let tb = stream.time_base();
    let mut decoder = ff::codec::context::Context::from_parameters(stream.parameters())?
        .decoder()
        .audio()?;
    let rate = decoder.rate().max(1);
    let bucket = (rate / peaks_per_second.max(1)).max(1) as usize;
    let mut peaks = Vec::new();
    let (mut lo, mut hi, mut filled) = (f32::MAX, f32::MIN, 0usize);
    let mut frame = ff::util::frame::Audio::empty();
    let mut consume = |decoder: &mut ff::decoder::Audio, peaks: &mut Vec<[f32; 2]>| {
        while decoder.receive_frame(&mut frame).is_ok() {
            for v in mono(&frame) {
                lo = lo.min(v);
                hi = hi.max(v);
                filled += 1;
                if filled == bucket {
                    peaks.push([lo, hi]);
                    (lo, hi, filled) = (f32::MAX, f32::MIN, 0);
                }
            }
        }
    };
    for (s, packet) in ictx.packets() {
        if s.index() != index {
            continue;
        }
        if decoder.send_packet(&packet).is_ok() {
            consume(&mut decoder, &mut peaks);
        }
        if let Some(pts) = packet.pts() {
            if tb.denominator() > 0 {
                progress((pts as i128 * tb.numerator() as i128 * 1000 / tb.denominator() as i128) as i64);
            }
        }
    }
    let _ = decoder.send_eof();
    consume(&mut decoder, &mut peaks);
    if filled > 0 {
        peaks.push([lo, hi]);
    }
    let round = |v: f32| (v.clamp(-1.0, 1.0) * 1000.0).round() / 1000.0;
    Ok(Waveform {
        sample_rate: rate,
        peaks_per_second,
        peaks: peaks.into_iter().map(|[a, b]| [round(a), round(b)]).collect(),
    })
}
