//! Reading sources for export: a picture at any source time (sample and hold: the last frame
//! whose timestamp is not after the time, which is right for variable frame rates and speed
//! changes alike), and sound as a stream of stereo samples at the output rate.

use std::collections::VecDeque;
use std::path::Path;

use ff::media::Type;
use ffmpeg_next as ff;
use moviola_crdt::time::TICKS_PER_SECOND;

use super::picture::{Fit, Fitter, Picture};
use crate::MediaError;

/// A forward jump longer than this seeks instead of decoding through.
const SEEK_AHEAD: i64 = 3 * TICKS_PER_SECOND;

fn open_input(path: &Path) -> Result<ff::format::context::Input, MediaError> {
    ff::format::input(path).map_err(|e| MediaError::NotMedia(format!("{}: {e}", path.display())))
}

/// Timestamp → ticks from the stream's start.
fn to_ticks(pts: i64, start: i64, tb: ff::Rational) -> i64 {
    (i128::from(pts - start) * i128::from(tb.numerator()) * i128::from(TICKS_PER_SECOND) / i128::from(tb.denominator().max(1))) as i64
}

/// The file's time origin in `stream`'s time base: the earliest start of any stream, so every
/// stream of a file shares one clock (a sound that starts after the picture stays after it),
/// as players and the ffmpeg command line do.
pub(crate) fn start_of(ictx: &ff::format::context::Input, stream: &ff::format::stream::Stream) -> i64 {
    let origin_us = ictx
        .streams()
        .filter(|s| s.start_time() != ff::ffi::AV_NOPTS_VALUE && s.time_base().denominator() > 0)
        .map(|s| i128::from(s.start_time()) * i128::from(s.time_base().numerator()) * 1_000_000 / i128::from(s.time_base().denominator()))
        .min()
        .unwrap_or(0);
    let tb = stream.time_base();
    if tb.numerator() <= 0 {
        return 0;
    }
    (origin_us * i128::from(tb.denominator()) / (i128::from(tb.numerator()) * 1_000_000)) as i64
}

fn seek_to(ictx: &mut ff::format::context::Input, start: i64, tb: ff::Rational, ticks: i64) {
    // AV_TIME_BASE (µs) of the file, the stream's own start added back.
    let start_us = if tb.denominator() > 0 {
        (i128::from(start) * i128::from(tb.numerator()) * 1_000_000 / i128::from(tb.denominator())) as i64
    } else {
        0
    };
    let ts = start_us + (i128::from(ticks.max(0)) * 1_000_000 / i128::from(TICKS_PER_SECOND)) as i64;
    let _ = ictx.seek(ts, ..ts);
}

pub(super) struct VideoReader {
    ictx: ff::format::context::Input,
    index: usize,
    decoder: ff::decoder::Video,
    tb: ff::Rational,
    start: i64,
    fitter: Fitter,
    cur: Option<(i64, ff::util::frame::video::Video)>,
    next: Option<(i64, ff::util::frame::video::Video)>,
    eof_sent: bool,
    drained: bool,
    last_ticks: i64,
    fitted: Option<(i64, Picture)>,
    positioned: bool,
}

impl VideoReader {
    pub(super) fn open(path: &Path, width: usize, height: usize, fit: Fit) -> Result<VideoReader, MediaError> {
        let ictx = open_input(path)?;
        let stream = ictx
            .streams()
            .best(Type::Video)
            .filter(|s| !s.disposition().contains(ff::format::stream::Disposition::ATTACHED_PIC))
            .ok_or(MediaError::NoStream("video"))?;
        let (index, tb, start) = (stream.index(), stream.time_base(), start_of(&ictx, &stream));
        let rotation = crate::probe::stream_rotation(&stream);
        let mut ctx = ff::codec::context::Context::from_parameters(stream.parameters())?;
        // Threading is set before the decoder opens; 0 lets FFmpeg pick per core.
        ctx.set_threading(ff::threading::Config {
            kind: ff::threading::Type::Frame,
            count: 0,
            ..Default::default()
        });
        let decoder = ctx.decoder().video()?;
        Ok(VideoReader {
            ictx,
            index,
            decoder,
            tb,
            start,
            fitter: Fitter::new(width, height, fit, rotation),
            cur: None,
            next: None,
            eof_sent: false,
            drained: false,
            last_ticks: 0,
            fitted: None,
            positioned: false,
        })
    }

    fn seek(&mut self, ticks: i64) {
        seek_to(&mut self.ictx, self.start, self.tb, ticks);
        self.decoder.flush();
        (self.cur, self.next, self.eof_sent, self.drained) = (None, None, false, false);
    }

    fn decode_one(&mut self) -> Option<(i64, ff::util::frame::video::Video)> {
        loop {
            let mut frame = ff::util::frame::video::Video::empty();
            if self.decoder.receive_frame(&mut frame).is_ok() {
                let ticks = match frame.timestamp().or(frame.pts()) {
                    Some(pts) => to_ticks(pts, self.start, self.tb),
                    None => self.last_ticks + 1,
                };
                self.last_ticks = ticks;
                return Some((ticks, frame));
            }
            if self.eof_sent {
                self.drained = true;
                return None;
            }
            match self.ictx.packets().next() {
                Some((s, packet)) if s.index() == self.index => {
                    let _ = self.decoder.send_packet(&packet);
                }
                Some(_) => {}
                None => {
                    let _ = self.decoder.send_eof();
                    self.eof_sent = true;
                }
            }
        }
    }

    /// The picture shown at source time `ticks`, fitted to the output frame. Before the first
    /// frame it is the first frame; after the last, the last (a still image holds forever).
    pub(super) fn picture_at(&mut self, ticks: i64) -> Result<&Picture, MediaError> {
        let behind = self.cur.as_ref().is_some_and(|(t, _)| ticks < *t);
        let far = self.next.as_ref().is_some_and(|(t, _)| ticks > t + SEEK_AHEAD);
        if (!self.positioned && ticks > SEEK_AHEAD) || behind || far {
            self.seek(ticks);
        }
        self.positioned = true;
        loop {
            if self.next.is_none() && !self.drained {
                self.next = self.decode_one();
            }
            match &self.next {
                Some((t, _)) if *t <= ticks => self.cur = self.next.take(),
                _ => break,
            }
        }
        let (t, frame) = match (&self.cur, &self.next) {
            (Some(c), _) => c,
            (None, Some(n)) => n,
            (None, None) => return Err(MediaError::Decode("no frame could be decoded".into())),
        };
        if self.fitted.as_ref().is_none_or(|(ft, _)| ft != t) {
            let pic = self.fitter.fit(frame)?;
            self.fitted = Some((*t, pic));
        }
        Ok(&self.fitted.as_ref().expect("just set").1)
    }
}

/// Sound of one source as stereo `f32` at the output rate, addressed by sample index from the
/// source's start. Silence before the start and after the end.
pub(crate) struct AudioReader {
    ictx: ff::format::context::Input,
    index: usize,
    decoder: ff::decoder::Audio,
    tb: ff::Rational,
    start: i64,
    rate: u32,
    resampler: Option<ff::software::resampling::Context>,
    fifo: VecDeque<[f32; 2]>,
    /// One channel in: read as mono and put on both sides at full level (what editors do),
    /// not split −3 dB per side.
    mono: bool,
    /// Sample index of `fifo[0]`; `None` until the first frame after a seek.
    base: Option<i64>,
    done: bool,
}

impl AudioReader {
    /// `Ok(None)` when the source has no sound.
    pub(crate) fn open(path: &Path, rate: u32) -> Result<Option<AudioReader>, MediaError> {
        let ictx = open_input(path)?;
        let Some(stream) = ictx.streams().best(Type::Audio) else {
            return Ok(None);
        };
        let (index, tb, start) = (stream.index(), stream.time_base(), start_of(&ictx, &stream));
        let decoder = ff::codec::context::Context::from_parameters(stream.parameters())?
            .decoder()
            .audio()?;
        Ok(Some(AudioReader {
            ictx,
            index,
            decoder,
            tb,
            start,
            rate,
            resampler: None,
            fifo: VecDeque::new(),
            mono: false,
            base: None,
            done: false,
        }))
    }

    fn seek(&mut self, sample: i64) {
        let ticks = sample * (TICKS_PER_SECOND / i64::from(self.rate));
        seek_to(&mut self.ictx, self.start, self.tb, ticks);
        self.decoder.flush();
        self.fifo.clear();
        (self.base, self.resampler, self.done) = (None, None, false);
    }

    /// Decodes one more frame into the FIFO; false at the end (after the resampler's tail).
    fn fill(&mut self) -> Result<bool, MediaError> {
        let mut frame = ff::util::frame::Audio::empty();
        loop {
            if self.decoder.receive_frame(&mut frame).is_ok() {
                break;
            }
            if self.done {
                // What the resampler still holds (it buffers when converting up in rate).
                if let Some(mut r) = self.resampler.take() {
                    let layout = if self.mono {
                        ff::ChannelLayout::MONO
                    } else {
                        ff::ChannelLayout::STEREO
                    };
                    let mut out = ff::util::frame::Audio::new(ff::format::Sample::F32(ff::format::sample::Type::Packed), 4096, layout);
                    if r.flush(&mut out).is_ok() && out.samples() > 0 {
                        self.push(&out);
                        return Ok(true);
                    }
                }
                return Ok(false);
            }
            match self.ictx.packets().next() {
                Some((s, packet)) if s.index() == self.index => {
                    let _ = self.decoder.send_packet(&packet);
                }
                Some(_) => {}
                None => {
                    let _ = self.decoder.send_eof();
                    self.done = true;
                }
            }
        }
        if frame.channel_layout().is_empty() {
            frame.set_channel_layout(ff::ChannelLayout::default(i32::from(frame.channels().max(1))));
        }
        if self.base.is_none() {
            let pts = frame.timestamp().or(frame.pts()).unwrap_or(self.start);
            let ticks = to_ticks(pts, self.start, self.tb);
            self.base = Some((i128::from(ticks) * i128::from(self.rate) / i128::from(TICKS_PER_SECOND)) as i64);
        }
        let layout = if self.resampler.is_none() {
            self.mono = frame.channels() == 1;
            if self.mono {
                ff::ChannelLayout::MONO
            } else {
                ff::ChannelLayout::STEREO
            }
        } else if self.mono {
            ff::ChannelLayout::MONO
        } else {
            ff::ChannelLayout::STEREO
        };
        let resampler = match &mut self.resampler {
            Some(r) => r,
            None => self.resampler.insert(ff::software::resampling::Context::get(
                frame.format(),
                frame.channel_layout(),
                frame.rate(),
                ff::format::Sample::F32(ff::format::sample::Type::Packed),
                layout,
                self.rate,
            )?),
        };
        // Room for every sample this frame can give at the output rate, plus what the resampler
        // held back from earlier frames (it gives as many as fit).
        let room = (frame.samples() as u64 * u64::from(self.rate) / u64::from(frame.rate().max(1))) as usize + 512;
        let mut out = ff::util::frame::Audio::new(ff::format::Sample::F32(ff::format::sample::Type::Packed), room, layout);
        resampler.run(&frame, &mut out)?;
        self.push(&out);
        Ok(true)
    }

    fn push(&mut self, out: &ff::util::frame::Audio) {
        let n = out.samples();
        let data = out.data(0);
        let f = |at: usize| f32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes"));
        for i in 0..n {
            if self.mono {
                let v = f(i * 4);
                self.fifo.push_back([v, v]);
            } else {
                self.fifo.push_back([f(i * 8), f(i * 8 + 4)]);
            }
        }
    }

    /// Every sample from the start to the end, calling `progress` with the samples read.
    pub(crate) fn read_to_end(mut self, mut progress: impl FnMut(usize)) -> Result<Vec<[f32; 2]>, MediaError> {
        let mut out = Vec::new();
        while self.fill()? {
            let base = self.base.unwrap_or(0).max(0) as usize;
            // Timestamps decide where samples go; a gap is silence.
            if out.len() < base {
                out.resize(base, [0.0; 2]);
            }
            out.extend(self.fifo.drain(..));
            self.base = Some(out.len() as i64);
            progress(out.len());
        }
        Ok(out)
    }

    /// The sample at `index`. Calls should move forward; a step back or a long jump seeks.
    pub(crate) fn sample(&mut self, index: i64) -> Result<[f32; 2], MediaError> {
        if index < 0 {
            return Ok([0.0; 2]);
        }
        if let Some(base) = self.base {
            let ahead = index - (base + self.fifo.len() as i64);
            if index < base || ahead > i64::from(self.rate) * 3 {
                self.seek((index - i64::from(self.rate) / 10).max(0));
            }
        } else if index > i64::from(self.rate) * 3 {
            self.seek((index - i64::from(self.rate) / 10).max(0));
        }
        loop {
            if let Some(base) = self.base {
                // Drop what lies behind.
                let behind = (index - base).min(self.fifo.len() as i64);
                if behind > 0 {
                    self.fifo.drain(..behind as usize);
                    self.base = Some(base + behind);
                }
                let base = self.base.expect("set");
                if index < base {
                    return Ok([0.0; 2]);
                }
                if ((index - base) as usize) < self.fifo.len() {
                    return Ok(self.fifo[(index - base) as usize]);
                }
            }
            if !self.fill()? {
                return Ok([0.0; 2]);
            }
        }
    }
}
