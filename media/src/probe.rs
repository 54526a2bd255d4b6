//! What a media file holds: container, duration, and each stream's codec and shape.

use ff::media::Type;
use ffmpeg_next as ff;
use serde::Serialize;

use crate::MediaError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    Video,
    Audio,
    Subtitle,
    Other,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamInfo {
    pub index: usize,
    pub kind: StreamKind,
    pub codec: String,
    /// Video: coded size, before rotation.
    pub width: u32,
    pub height: u32,
    /// Video: average frame rate as a fraction (0/1 when unknown).
    pub frame_rate: (i32, i32),
    /// Video: rotation of the display matrix in degrees, 0..360, counter-clockwise — the angle
    /// `ffprobe` prints as `rotation` (FFmpeg's `av_display_rotation_get`).
    pub rotation: i32,
    /// Audio.
    pub sample_rate: u32,
    pub channels: u16,
    pub duration_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MediaInfo {
    /// FFmpeg's demuxer names, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub container: String,
    pub duration_ms: Option<i64>,
    pub streams: Vec<StreamInfo>,
}

impl MediaInfo {
    pub fn video(&self) -> Option<&StreamInfo> {
        self.streams.iter().find(|s| s.kind == StreamKind::Video)
    }

    pub fn audio(&self) -> Option<&StreamInfo> {
        self.streams.iter().find(|s| s.kind == StreamKind::Audio)
    }

    /// Display size: the coded size turned by the rotation.
    pub fn display_size(&self) -> Option<(u32, u32)> {
        self.video().map(|v| {
            if v.rotation.rem_euclid(180) == 90 {
                (v.height, v.width)
            } else {
                (v.width, v.height)
            }
        })
    }
}

/// Rotation in degrees from a 3×3 display matrix (16.16 fixed point, row major), as FFmpeg's
/// `av_display_rotation_get` computes it, normalised to 0..360.
fn rotation_from_matrix(data: &[u8]) -> Option<i32> {
    if data.len() < 36 {
        return None;
    }
    let m = |i: usize| i32::from_le_bytes([data[i * 4], data[i * 4 + 1], data[i * 4 + 2], data[i * 4 + 3]]) as f64 / 65536.0;
    let (a, b, c, d) = (m(0), m(1), m(3), m(4));
    let scale0 = (a * a + c * c).sqrt();
    let scale1 = (b * b + d * d).sqrt();
    if scale0 == 0.0 || scale1 == 0.0 {
        return None;
    }
    let angle = (b / scale1).atan2(a / scale0).to_degrees();
    Some((-angle).round().rem_euclid(360.0) as i32)
}

/// The display rotation of a video stream in degrees, 0..360 (0 without a display matrix).
pub(crate) fn stream_rotation(s: &ff::format::stream::Stream) -> i32 {
    s.side_data()
        .find(|sd| sd.kind() == ff::codec::packet::side_data::Type::DisplayMatrix)
        .and_then(|sd| rotation_from_matrix(sd.data()))
        .unwrap_or(0)
}

/// Opens `path` and describes it. Fails for anything FFmpeg cannot demux or that has neither
/// a video nor an audio stream.
pub fn probe(path: &std::path::Path) -> Result<MediaInfo, MediaError> {
    crate::init();
    let ictx = ff::format::input(path).map_err(|e| MediaError::NotMedia(e.to_string()))?;
    let to_ms = |ts: i64, tb: ff::Rational| -> Option<i64> {
        if ts <= 0 || tb.denominator() == 0 {
            return None;
        }
        Some((ts as i128 * tb.numerator() as i128 * 1000 / tb.denominator() as i128) as i64)
    };
    let mut streams = Vec::new();
    for s in ictx.streams() {
        let params = s.parameters();
        let kind = match params.medium() {
            Type::Video => StreamKind::Video,
            Type::Audio => StreamKind::Audio,
            Type::Subtitle => StreamKind::Subtitle,
            _ => StreamKind::Other,
        };
        let ctx = ff::codec::context::Context::from_parameters(params)?;
        let codec = ctx.id().name().to_owned();
        let mut info = StreamInfo {
            index: s.index(),
            kind,
            codec,
            width: 0,
            height: 0,
            frame_rate: (0, 1),
            rotation: 0,
            sample_rate: 0,
            channels: 0,
            duration_ms: to_ms(s.duration(), s.time_base()),
        };
        match kind {
            StreamKind::Video => {
                // Cover art (a PNG/JPEG attached to an audio file) is not video.
                if s.disposition().contains(ff::format::stream::Disposition::ATTACHED_PIC) {
                    info.kind = StreamKind::Other;
                } else if let Ok(v) = ctx.decoder().video() {
                    info.width = v.width();
                    info.height = v.height();
                    let r = s.avg_frame_rate();
                    info.frame_rate = (r.numerator(), r.denominator());
                    info.rotation = stream_rotation(&s);
                }
            }
            StreamKind::Audio => {
                if let Ok(a) = ctx.decoder().audio() {
                    info.sample_rate = a.rate();
                    info.channels = a.channels();
                }
            }
            _ => {}
        }
        streams.push(info);
    }
    let info = MediaInfo {
        container: ictx.format().name().to_owned(),
        duration_ms: if ictx.duration() > 0 { Some(ictx.duration() / 1000) } else { None },
        streams,
    };
    if info.video().is_none() && info.audio().is_none() {
        return Err(MediaError::NotMedia("no video or audio stream".into()));
    }
    Ok(info)
}
