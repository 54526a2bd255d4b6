//! Export: executes a [`moviola_crdt::ExportPlan`] frame- and sample-exactly and encodes it.
//!
//! For output frame `n` at `t = frame_start(n)` the topmost video layer with a piece covering
//! `t` is shown; its picture is the source frame at `piece.src.source_time(t)` (sample and
//! hold), blended with the outgoing picture inside a head transition and faded inside a tail
//! fade, then titles are drawn. Sound is mixed sample by sample at the output rate from the
//! same plan, so picture and sound come from one clock. Sources are decoded with frame
//! threading; each clip has its own decoder, opened when first needed and closed as soon as a
//! frame no longer uses it.

mod picture;
pub(crate) mod sources;
pub mod spec;
mod titles;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ff::format::Pixel;
use ffmpeg_next as ff;
use moviola_crdt::ExportPlan;
use moviola_crdt::plan::{SourceRef, TransitionKind, VideoPiece};
use moviola_crdt::time::TICKS_PER_SECOND;

pub use picture::{Fit, Picture};
pub use spec::{AudioCodec, Container, OutputSpec, Preset, Quality, Resolved, VideoCodec};

use crate::MediaError;
use sources::{AudioReader, VideoReader};

/// What an export wrote.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ExportReport {
    pub frames: u64,
    pub samples: u64,
    pub width: u32,
    pub height: u32,
    pub duration_ms: i64,
}

/// Video frames of a plan: its duration rounded up to whole frames.
pub fn frame_count(plan: &ExportPlan) -> u64 {
    let r = plan.settings.frame_rate;
    let (a, b) = (
        i128::from(plan.duration.max(0)) * i128::from(r.num),
        i128::from(TICKS_PER_SECOND) * i128::from(r.den),
    );
    ((a + b - 1) / b) as u64
}

pub(crate) fn encode_err(what: &str) -> impl Fn(ff::Error) -> MediaError + '_ {
    move |e| MediaError::Encode(format!("{what}: {e}"))
}

pub(crate) struct VideoOut {
    pub(crate) encoder: ff::encoder::Video,
    pub(crate) stream: usize,
    pub(crate) tb: ff::Rational,
    format: Pixel,
    converter: Option<ff::software::scaling::Context>,
    /// The next frame's index (pts in `tb`), for callers that number frames themselves.
    pub(crate) next_index: i64,
}

pub(crate) struct AudioOut {
    pub(crate) encoder: ff::encoder::Audio,
    pub(crate) stream: usize,
    pub(crate) tb: ff::Rational,
    pub(crate) format: ff::format::Sample,
    pub(crate) frame_size: usize,
}

pub(crate) fn open_video(octx: &mut ff::format::context::Output, out: &Resolved) -> Result<VideoOut, MediaError> {
    let (name, format) = match out.video_codec {
        VideoCodec::H264 => ("libx264", Pixel::YUV420P),
        VideoCodec::H265 => ("libx265", Pixel::YUV420P),
        VideoCodec::Vp9 => ("libvpx-vp9", Pixel::YUV420P),
        VideoCodec::Prores => ("prores_ks", Pixel::YUV422P10LE),
    };
    let codec = ff::encoder::find_by_name(name).ok_or_else(|| MediaError::Encode(format!("this FFmpeg has no {name} encoder")))?;
    let global_header = octx.format().flags().contains(ff::format::Flags::GLOBAL_HEADER);
    let mut ost = octx.add_stream(codec).map_err(encode_err("cannot add the video stream"))?;
    let stream = ost.index();
    let mut ctx = ff::codec::context::Context::new_with_codec(codec);
    // Threads before opening: the default is a single thread.
    ctx.set_threading(ff::threading::Config {
        kind: ff::threading::Type::Frame,
        count: 0,
        ..Default::default()
    });
    let mut enc = ctx.encoder().video()?;
    let rate = out.frame_rate;
    enc.set_width(out.width);
    enc.set_height(out.height);
    enc.set_format(format);
    enc.set_aspect_ratio(ff::Rational(1, 1));
    enc.set_time_base(ff::Rational(rate.den as i32, rate.num as i32));
    enc.set_frame_rate(Some(ff::Rational(rate.num as i32, rate.den as i32)));
    if global_header {
        enc.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    let mut opts = ff::Dictionary::new();
    let q = |d: &'static str, s: &'static str, h: &'static str| match out.quality {
        Quality::Draft => d,
        Quality::Standard => s,
        Quality::High => h,
    };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).to_string();
    match out.video_codec {
        VideoCodec::H264 | VideoCodec::H265 => {
            opts.set("preset", q("veryfast", "medium", "slow"));
            if out.video_bitrate_kbps.is_none() {
                let crf = if out.video_codec == VideoCodec::H264 {
                    q("26", "21", "17")
                } else {
                    q("30", "25", "21")
                };
                opts.set("crf", crf);
            }
            if out.video_codec == VideoCodec::H265 {
                opts.set("x265-params", "log-level=error");
            }
        }
        VideoCodec::Vp9 => {
            opts.set("deadline", q("realtime", "good", "good"));
            opts.set("cpu-used", q("8", "4", "2"));
            opts.set("row-mt", "1");
            opts.set("threads", &cores);
            if out.video_bitrate_kbps.is_none() {
                opts.set("crf", q("40", "32", "24"));
                opts.set("b", "0");
            }
        }
        VideoCodec::Prores => {
            opts.set("profile", q("2", "2", "3"));
            opts.set("vendor", "apl0");
        }
    }
    if let Some(kbps) = out.video_bitrate_kbps {
        enc.set_bit_rate(kbps as usize * 1000);
    }
    let encoder = enc.open_with(opts).map_err(encode_err("cannot open the video encoder"))?;
    ost.set_parameters(&encoder);
    Ok(VideoOut {
        encoder,
        stream,
        tb: ff::Rational(rate.den as i32, rate.num as i32),
        format,
        converter: None,
        next_index: 0,
    })
}

pub(crate) fn open_audio(octx: &mut ff::format::context::Output, out: &Resolved) -> Result<AudioOut, MediaError> {
    use ff::format::Sample;
    use ff::format::sample::Type::{Packed, Planar};
    let (name, format) = match out.audio_codec {
        AudioCodec::Aac => ("aac", Sample::F32(Planar)),
        AudioCodec::Opus => ("libopus", Sample::F32(Packed)),
        AudioCodec::Pcm => ("pcm_s16le", Sample::I16(Packed)),
    };
    let codec = ff::encoder::find_by_name(name).ok_or_else(|| MediaError::Encode(format!("this FFmpeg has no {name} encoder")))?;
    let global_header = octx.format().flags().contains(ff::format::Flags::GLOBAL_HEADER);
    let mut ost = octx.add_stream(codec).map_err(encode_err("cannot add the audio stream"))?;
    let stream = ost.index();
    let mut enc = ff::codec::context::Context::new_with_codec(codec).encoder().audio()?;
    enc.set_rate(out.sample_rate as i32);
    enc.set_format(format);
    enc.set_channel_layout(ff::ChannelLayout::STEREO);
    enc.set_channels(2);
    enc.set_time_base(ff::Rational(1, out.sample_rate as i32));
    if out.audio_codec != AudioCodec::Pcm {
        enc.set_bit_rate(out.audio_bitrate_kbps as usize * 1000);
    }
    if global_header {
        enc.set_flags(ff::codec::Flags::GLOBAL_HEADER);
    }
    let encoder = enc
        .open_with(ff::Dictionary::new())
        .map_err(encode_err("cannot open the audio encoder"))?;
    ost.set_parameters(&encoder);
    // AAC takes 1024-sample frames, Opus 960; PCM any.
    let frame_size = match encoder.frame_size() {
        0 => 1024,
        n => n as usize,
    };
    Ok(AudioOut {
        encoder,
        stream,
        tb: ff::Rational(1, out.sample_rate as i32),
        format,
        frame_size,
    })
}

/// Moves encoded packets to the muxer: stream index, timestamps in the stream's time base
/// (known only after the header is written), a duration on every packet.
pub(crate) fn drain(
    encoder: &mut ff::codec::encoder::Encoder,
    stream: usize,
    enc_tb: ff::Rational,
    default_duration: i64,
    octx: &mut ff::format::context::Output,
) -> Result<(), MediaError> {
    let mut packet = ff::Packet::empty();
    while encoder.receive_packet(&mut packet).is_ok() {
        if packet.duration() <= 0 {
            packet.set_duration(default_duration);
        }
        let ost_tb = octx.stream(stream).expect("added").time_base();
        packet.set_stream(stream);
        packet.rescale_ts(enc_tb, ost_tb);
        packet.write_interleaved(octx).map_err(encode_err("cannot write"))?;
    }
    Ok(())
}

/// A source's path from its asset id.
pub type Resolve<'a> = dyn Fn(&str) -> Option<PathBuf> + 'a;

struct Renderer<'a> {
    plan: &'a ExportPlan,
    out: &'a Resolved,
    resolve: &'a Resolve<'a>,
    /// `None` for a source without pictures (sound on a video track): it shows nothing.
    video: HashMap<String, Option<VideoReader>>,
    audio: HashMap<String, Option<AudioReader>>,
    used: Vec<String>,
    cursors: Vec<usize>,
}

impl Renderer<'_> {
    fn path(&self, asset: &str) -> Result<PathBuf, MediaError> {
        (self.resolve)(asset).ok_or_else(|| MediaError::NotMedia(format!("asset {asset} of the timeline is missing")))
    }

    fn picture(&mut self, src: &SourceRef, t: i64) -> Result<Option<Picture>, MediaError> {
        if !self.video.contains_key(&src.clip) {
            let path = self.path(&src.asset)?;
            let reader = match VideoReader::open(&path, self.out.width as usize, self.out.height as usize, self.out.fit) {
                Ok(r) => Some(r),
                Err(MediaError::NoStream(_)) => None,
                Err(e) => return Err(MediaError::Decode(format!("clip {}: {e}", src.clip))),
            };
            self.video.insert(src.clip.clone(), reader);
        }
        self.used.push(src.clip.clone());
        match self.video.get_mut(&src.clip).expect("inserted") {
            Some(reader) => Ok(Some(reader.picture_at(src.source_time(t))?.clone())),
            None => Ok(None),
        }
    }

    /// The piece's picture at `t`, or `None` when its source has no pictures.
    fn piece_picture(&mut self, piece: &VideoPiece, t: i64) -> Result<Option<Picture>, MediaError> {
        let Some(mut pic) = self.picture(&piece.src, t)? else {
            return Ok(None);
        };
        let (w, h) = (self.out.width as usize, self.out.height as usize);
        if let Some(e) = piece.enter.as_ref().filter(|e| t < piece.start + e.duration) {
            let alpha = (t - piece.start) as f64 / e.duration as f64;
            let from = match &e.from {
                Some(f) => self.picture(f, t)?,
                None => None,
            };
            pic = match e.kind {
                TransitionKind::Dissolve => {
                    let mut base = from.unwrap_or_else(|| Picture::black(w, h));
                    base.blend(&pic, alpha);
                    base
                }
                TransitionKind::FadeBlack => match from {
                    Some(mut f) if alpha < 0.5 => {
                        f.fade(1.0 - 2.0 * alpha);
                        f
                    }
                    Some(_) => {
                        pic.fade(2.0 * alpha - 1.0);
                        pic
                    }
                    None => {
                        pic.fade(alpha);
                        pic
                    }
                },
                TransitionKind::WipeLeft | TransitionKind::WipeRight | TransitionKind::WipeUp | TransitionKind::WipeDown => {
                    let mut base = from.unwrap_or_else(|| Picture::black(w, h));
                    let horizontal = matches!(e.kind, TransitionKind::WipeLeft | TransitionKind::WipeRight);
                    let forward = matches!(e.kind, TransitionKind::WipeRight | TransitionKind::WipeDown);
                    base.wipe(&pic, alpha, horizontal, forward);
                    base
                }
            };
        }
        if piece.fade_out > 0 && t >= piece.end - piece.fade_out {
            // The last frame of the fade is black.
            let span = (piece.fade_out - self.plan.settings.frame_rate.frame_ticks()).max(1);
            let p = (t - (piece.end - piece.fade_out)) as f64 / span as f64;
            pic.fade(1.0 - p);
        }
        Ok(Some(pic))
    }

    /// The composited picture at `t`.
    fn frame(&mut self, t: i64) -> Result<Picture, MediaError> {
        let plan = self.plan;
        for (i, layer) in plan.video.iter().enumerate().rev() {
            let c = &mut self.cursors[i];
            while *c < layer.pieces.len() && layer.pieces[*c].end <= t {
                *c += 1;
            }
            if let Some(piece) = layer.pieces.get(*c).filter(|p| p.start <= t) {
                if let Some(pic) = self.piece_picture(piece, t)? {
                    return Ok(pic);
                }
            }
        }
        Ok(Picture::black(self.out.width as usize, self.out.height as usize))
    }

    /// Mixes samples `[first, first + n)` into stereo.
    fn mix(&mut self, first: i64, n: usize) -> Result<Vec<[f32; 2]>, MediaError> {
        let tps = TICKS_PER_SECOND / i64::from(self.out.sample_rate);
        let (t0, t1) = (first * tps, (first + n as i64) * tps);
        let mut buf = vec![[0f32; 2]; n];
        let mut used = Vec::new();
        for piece in self.plan.sound.iter().filter(|p| p.start < t1 && p.end > t0) {
            if !self.audio.contains_key(&piece.src.clip) {
                let path = self.path(&piece.src.asset)?;
                let reader = AudioReader::open(&path, self.out.sample_rate)
                    .map_err(|e| MediaError::Decode(format!("clip {}: {e}", piece.src.clip)))?;
                self.audio.insert(piece.src.clip.clone(), reader);
            }
            used.push(piece.src.clip.clone());
            let Some(reader) = self.audio.get_mut(&piece.src.clip).expect("inserted") else {
                continue;
            };
            for (j, out) in buf.iter_mut().enumerate() {
                let t = (first + j as i64) * tps;
                if t < piece.start || t >= piece.end {
                    continue;
                }
                let mut gain = piece.volume;
                if piece.fade_in > 0 {
                    gain *= ((t - piece.start) as f64 / piece.fade_in as f64).min(1.0);
                }
                if piece.fade_out > 0 {
                    gain *= ((piece.end - t - tps) as f64 / (piece.fade_out - tps).max(1) as f64).clamp(0.0, 1.0);
                }
                if gain == 0.0 {
                    continue;
                }
                let s = reader.sample(piece.src.source_time(t).div_euclid(tps))?;
                out[0] += s[0] * gain as f32;
                out[1] += s[1] * gain as f32;
            }
        }
        self.audio.retain(|k, _| used.contains(k));
        Ok(buf)
    }
}

pub(crate) fn audio_frame(samples: &[[f32; 2]], format: ff::format::Sample, rate: u32, pts: i64) -> ff::util::frame::Audio {
    use ff::format::Sample;
    let mut frame = ff::util::frame::Audio::new(format, samples.len(), ff::ChannelLayout::STEREO);
    frame.set_rate(rate);
    frame.set_pts(Some(pts));
    let clip = |v: f32| v.clamp(-1.0, 1.0);
    match format {
        Sample::F32(ff::format::sample::Type::Planar) => {
            for ch in 0..2 {
                let data = frame.data_mut(ch);
                for (i, s) in samples.iter().enumerate() {
                    data[i * 4..i * 4 + 4].copy_from_slice(&clip(s[ch]).to_le_bytes());
                }
            }
        }
        Sample::F32(_) => {
            let data = frame.data_mut(0);
            for (i, s) in samples.iter().enumerate() {
                data[i * 8..i * 8 + 4].copy_from_slice(&clip(s[0]).to_le_bytes());
                data[i * 8 + 4..i * 8 + 8].copy_from_slice(&clip(s[1]).to_le_bytes());
            }
        }
        _ => {
            let data = frame.data_mut(0);
            for (i, s) in samples.iter().enumerate() {
                for ch in 0..2 {
                    let v = (clip(s[ch]) * 32767.0).round() as i16;
                    data[i * 4 + ch * 2..i * 4 + ch * 2 + 2].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
    }
    frame
}

/// Renders `plan` into `path` as `out` says. `progress(done, total)` is called after every
/// frame; returning `false` cancels (the partial file is removed). `scratch` holds temporary
/// files (title texts).
pub fn export(
    plan: &ExportPlan,
    resolve: &Resolve<'_>,
    out: &Resolved,
    path: &Path,
    scratch: &Path,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<ExportReport, MediaError> {
    crate::init();
    let result = run(plan, resolve, out, path, scratch, progress);
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

fn run(
    plan: &ExportPlan,
    resolve: &Resolve<'_>,
    out: &Resolved,
    path: &Path,
    scratch: &Path,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<ExportReport, MediaError> {
    let total = frame_count(plan);
    if total == 0 {
        return Err(MediaError::Spec("the timeline is empty: there is nothing to export".into()));
    }
    // The plan's rate is the one every time below is computed in.
    let mut plan_at_rate = plan.clone();
    plan_at_rate.settings.frame_rate = out.frame_rate;
    let plan = &plan_at_rate;
    let mut octx = ff::format::output_as(path, out.container.muxer()).map_err(encode_err("cannot create the output file"))?;
    let mut vout = open_video(&mut octx, out)?;
    let mut aout = open_audio(&mut octx, out)?;
    let mut header = ff::Dictionary::new();
    if out.container != Container::Webm {
        // The index up front, so players start before the whole file has arrived.
        header.set("movflags", "+faststart");
    }
    octx.write_header_with(header).map_err(encode_err("cannot write the header"))?;
    let mut titles = titles::Titles::new(&plan.titles, out.width as usize, out.height as usize, out.frame_rate, scratch)?;
    let mut r = Renderer {
        plan,
        out,
        resolve,
        video: HashMap::new(),
        audio: HashMap::new(),
        used: Vec::new(),
        cursors: vec![0; plan.video.len()],
    };
    let rate = out.frame_rate;
    let tps = TICKS_PER_SECOND / i64::from(out.sample_rate);
    let total_samples = rate.frame_start(total as i64) / tps;
    let mut samples_sent: i64 = 0;
    let mut send_audio = |r: &mut Renderer, upto: i64, octx: &mut ff::format::context::Output, last: bool| -> Result<(), MediaError> {
        while samples_sent < upto && (last || samples_sent + aout.frame_size as i64 <= upto) {
            let n = (aout.frame_size as i64).min(upto - samples_sent) as usize;
            let buf = r.mix(samples_sent, n)?;
            let frame = audio_frame(&buf, aout.format, out.sample_rate, samples_sent);
            aout.encoder.send_frame(&frame).map_err(encode_err("audio encoder"))?;
            samples_sent += n as i64;
            drain(&mut aout.encoder, aout.stream, aout.tb, n as i64, octx)?;
        }
        Ok(())
    };
    for n in 0..total as i64 {
        let t = rate.frame_start(n);
        r.used.clear();
        let mut pic = r.frame(t)?;
        let used = std::mem::take(&mut r.used);
        r.video.retain(|k, _| used.contains(k));
        if let Some(titles) = titles.as_mut() {
            pic = titles.draw(&pic, n)?;
        }
        let mut frame = pic.to_frame(&mut vout.converter, vout.format)?;
        frame.set_pts(Some(n));
        vout.encoder.send_frame(&frame).map_err(encode_err("video encoder"))?;
        drain(&mut vout.encoder, vout.stream, vout.tb, 1, &mut octx)?;
        send_audio(&mut r, rate.frame_start(n + 1) / tps, &mut octx, false)?;
        if !progress(n as u64 + 1, total) {
            return Err(MediaError::Cancelled);
        }
    }
    send_audio(&mut r, total_samples, &mut octx, true)?;
    vout.encoder.send_eof().map_err(encode_err("video encoder"))?;
    drain(&mut vout.encoder, vout.stream, vout.tb, 1, &mut octx)?;
    aout.encoder.send_eof().map_err(encode_err("audio encoder"))?;
    drain(&mut aout.encoder, aout.stream, aout.tb, aout.frame_size as i64, &mut octx)?;
    octx.write_trailer().map_err(encode_err("cannot finish the file"))?;
    Ok(ExportReport {
        frames: total,
        samples: total_samples as u64,
        width: out.width,
        height: out.height,
        duration_ms: rate.frame_start(total as i64) * 1000 / TICKS_PER_SECOND,
    })
}

/// A low-resolution H.264 + AAC MP4 of one source for preview in the browser: `height` lines
/// (the width from the display aspect), at most 30 fps, the whole source. It runs the same
/// exporter on a one-clip plan.
pub fn proxy(
    input: &Path,
    output: &Path,
    height: u32,
    scratch: &Path,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<ExportReport, MediaError> {
    use moviola_crdt::plan::{SoundPiece, VideoLayer};
    use moviola_crdt::time::FrameRate;
    let info = crate::probe(input)?;
    let video = info.video().ok_or(MediaError::NoStream("video"))?;
    let (dw, dh) = info.display_size().unwrap_or((video.width, video.height));
    let height = height.min(dh.max(16)).max(16) & !1;
    let width = (((u64::from(dw) * u64::from(height)) as f64 / f64::from(dh.max(1))).round() as u32).max(16) & !1;
    let (num, den) = video.frame_rate;
    let frame_rate = if num > 0 && den > 0 && i64::from(num) <= 30 * i64::from(den) {
        FrameRate {
            num: i64::from(num),
            den: i64::from(den),
        }
    } else {
        FrameRate { num: 30, den: 1 }
    };
    let duration_ms = info
        .duration_ms
        .or(video.duration_ms)
        .ok_or_else(|| MediaError::Decode("the length is unknown".into()))?;
    let duration = duration_ms * (TICKS_PER_SECOND / 1000);
    let src = SourceRef {
        clip: "source".into(),
        asset: "source".into(),
        at: 0,
        source: 0,
        speed_num: 1,
        speed_den: 1,
    };
    let plan = ExportPlan {
        settings: moviola_crdt::Settings {
            width: i64::from(width),
            height: i64::from(height),
            frame_rate,
            sample_rate: 48_000,
        },
        duration,
        video: vec![VideoLayer {
            track: "video".into(),
            pieces: vec![VideoPiece {
                start: 0,
                end: duration,
                src: src.clone(),
                enter: None,
                fade_out: 0,
            }],
        }],
        sound: if info.audio().is_some() {
            vec![SoundPiece {
                start: 0,
                end: duration,
                src,
                volume: 1.0,
                fade_in: 0,
                fade_out: 0,
            }]
        } else {
            Vec::new()
        },
        titles: Vec::new(),
    };
    let spec = OutputSpec {
        quality: Quality::Draft,
        audio_bitrate_kbps: Some(96),
        ..Default::default()
    };
    let out = spec.resolve(&plan.settings).map_err(MediaError::Spec)?;
    let input = input.to_path_buf();
    export(&plan, &|_| Some(input.clone()), &out, output, scratch, progress)
}
