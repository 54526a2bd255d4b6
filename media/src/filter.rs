//! A video through an FFmpeg filter graph: decode (threaded, turned upright by its display
//! matrix), filter, and either encode (H.264 + the sound as AAC; frames re-timed to a constant
//! rate, the source's average, with the sound cut to match) or only run the graph for its side
//! effects (an analysis pass). `stabilize` is vidstab's two passes.

use std::path::Path;

use ff::format::Pixel;
use ff::media::Type;
use ffmpeg_next as ff;

use crate::MediaError;
use crate::export::{self, AudioCodec, Quality, Resolved};

/// What a filter pass produced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FilterReport {
    pub frames: u64,
    pub width: u32,
    pub height: u32,
}

/// A per-frame transform on 8-bit RGB: `(width, height, pixels) → frames (width, height,
/// pixels)` to encode in its place — one for a filter, several to raise the frame rate. At the
/// end of the stream it is called with `(0, 0, [])` to give any frames it held back.
pub type RgbTransform<'a> = &'a mut dyn FnMut(u32, u32, Vec<u8>) -> Result<Vec<(u32, u32, Vec<u8>)>, MediaError>;

/// Runs `graph` over the video of `input`. With `output`, encodes the result (H.264 CRF 18
/// + AAC); without, only runs the graph. `progress(done, total)` in frames; `false` cancels.
pub fn filter_video(
    input: &Path,
    output: Option<&Path>,
    graph: &str,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<FilterReport, MediaError> {
    filter_video_with(input, output, graph, None, progress)
}

/// Like [`filter_video`], with every filtered frame passed through `transform` (as RGB) before
/// it is encoded — how a learned model runs on footage.
pub fn filter_video_with(
    input: &Path,
    output: Option<&Path>,
    graph: &str,
    transform: Option<RgbTransform<'_>>,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<FilterReport, MediaError> {
    run_graph(input, output, graph, transform, None, Rate::Times(1), progress)
}

/// The frame rate a mapped video is encoded at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// The source's rate times this.
    Times(u32),
    /// Exactly `num/den` frames a second.
    Fixed(i32, i32),
}

/// Every frame of `input` through `transform`, encoded at `rate` (a transform giving frames
/// at that rate, counting what it gives at the end, keeps the length). `transform` is called
/// once more with an empty frame (0×0) at the end of the stream.
pub fn map_video(
    input: &Path,
    output: &Path,
    transform: RgbTransform<'_>,
    rate: Rate,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<FilterReport, MediaError> {
    run_graph(input, Some(output), "null", Some(transform), None, rate, progress)
}

/// A cut between shots: the detector's score (scdet: 0..100; TransNetV2: the transition's
/// peak probability).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct SceneCut {
    /// Source time of the first frame of the new shot, in milliseconds from the first frame
    /// (rounded down).
    pub time_ms: i64,
    /// The same time exactly, in timeline ticks (flicks): where to split so the new shot's
    /// first frame is the clip's first (whole milliseconds fall between frames at 29.97 fps).
    pub ticks: i64,
    pub score: f64,
}

/// Source time of a filtered frame as `(milliseconds, ticks)` from the file's origin (see
/// `start_of`); `None` for a crafted timestamp that would give an absurd time.
pub(crate) fn frame_time(f: &ff::util::frame::video::Video, tb: ff::Rational, origin: i64) -> Option<(i64, i64)> {
    let ms = frame_time_ms(f, tb, origin)?;
    let pts = f.pts().or(f.timestamp()).unwrap_or(origin).saturating_sub(origin);
    let ticks = i64::try_from(
        i128::from(pts) * i128::from(tb.numerator()) * i128::from(moviola_crdt::time::TICKS_PER_SECOND)
            / i128::from(tb.denominator().max(1)),
    )
    .ok()?;
    Some((ms, ticks))
}

/// Source time of a filtered frame in milliseconds from the file's origin (see `start_of`), as
/// the timeline counts it; `None` for a crafted timestamp that would give an absurd time.
fn frame_time_ms(f: &ff::util::frame::video::Video, tb: ff::Rational, origin: i64) -> Option<i64> {
    let pts = f.pts().or(f.timestamp()).unwrap_or(origin).saturating_sub(origin);
    let t = i64::try_from(i128::from(pts) * i128::from(tb.numerator()) * 1000 / i128::from(tb.denominator().max(1))).ok()?;
    (0..=i64::MAX / 1_000_000).contains(&t).then_some(t)
}

/// Shot boundaries by FFmpeg's `scdet` at `threshold` (its default is 10).
pub fn detect_scenes(input: &Path, threshold: f64, progress: &mut dyn FnMut(u64, u64) -> bool) -> Result<Vec<SceneCut>, MediaError> {
    let mut cuts = Vec::new();
    let mut inspect = |f: &ff::util::frame::video::Video, tb: ff::Rational, origin: i64| {
        let meta = f.metadata();
        // scdet scores every frame (`lavfi.scd.score`) and marks cuts above the threshold with
        // `lavfi.scd.time`.
        if meta.get("lavfi.scd.time").is_some() {
            let score = meta.get("lavfi.scd.score").and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            if let Some((time_ms, ticks)) = frame_time(f, tb, origin) {
                cuts.push(SceneCut { time_ms, ticks, score });
            }
        }
    };
    run_graph(
        input,
        None,
        &format!("scdet=threshold={threshold}"),
        None,
        Some(&mut inspect),
        Rate::Times(1),
        progress,
    )?;
    Ok(cuts)
}

/// Sees each scaled frame: its source time as `(milliseconds, ticks)`, and its RGB pixels.
pub type EachFrame<'a> = &'a mut dyn FnMut((i64, i64), &[u8]);

/// Every frame of the video, upright, scaled to `width`×`height` RGB (bicubic, as the ffmpeg
/// CLI's `-s` does), handed to `each` with its source time as `(milliseconds, ticks)` (see
/// `frame_time`). Returns the number of frames.
pub fn each_frame_scaled(
    input: &Path,
    width: u32,
    height: u32,
    each: EachFrame<'_>,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<u64, MediaError> {
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    let mut last = (0, 0);
    let mut inspect = |f: &ff::util::frame::video::Video, tb: ff::Rational, origin: i64| {
        rgb.clear();
        let (w, h, stride) = (f.width() as usize, f.height() as usize, f.stride(0));
        for row in 0..h {
            rgb.extend_from_slice(&f.data(0)[row * stride..row * stride + w * 3]);
        }
        // A frame with an unreadable time keeps its predecessor's.
        last = frame_time(f, tb, origin).unwrap_or(last);
        each(last, &rgb);
    };
    let graph = format!("scale={width}:{height}:flags=bicubic,format=rgb24");
    Ok(run_graph(input, None, &graph, None, Some(&mut inspect), Rate::Times(1), progress)?.frames)
}

/// A small RGB still of a filtered frame, its longest side at most `side` pixels.
fn small_rgb(f: &ff::util::frame::video::Video, side: u32) -> Option<(u32, u32, Vec<u8>)> {
    let (w, h) = (f.width(), f.height());
    let scale = (f64::from(side) / f64::from(w.max(h).max(1))).min(1.0);
    let (pw, ph) = (
        ((f64::from(w) * scale).round() as u32).max(1),
        ((f64::from(h) * scale).round() as u32).max(1),
    );
    let mut ctx =
        ff::software::scaling::Context::get(f.format(), w, h, Pixel::RGB24, pw, ph, ff::software::scaling::flag::Flags::AREA).ok()?;
    let mut out = ff::util::frame::video::Video::empty();
    ctx.run(f, &mut out).ok()?;
    let stride = out.stride(0);
    let mut rgb = Vec::with_capacity((pw * ph * 3) as usize);
    for row in 0..ph as usize {
        rgb.extend_from_slice(&out.data(0)[row * stride..row * stride + pw as usize * 3]);
    }
    Some((pw, ph, rgb))
}

/// Sees every filtered frame with the sink's time base and the file's origin in it.
type Inspect<'a> = &'a mut dyn FnMut(&ff::util::frame::video::Video, ff::Rational, i64);

fn run_graph(
    input: &Path,
    output: Option<&Path>,
    graph: &str,
    mut transform: Option<RgbTransform<'_>>,
    mut inspect: Option<Inspect<'_>>,
    rate: Rate,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<FilterReport, MediaError> {
    // What the sink gives: RGB for a transform or a graph that ends in RGB (`each_frame_scaled`).
    let out_format = if transform.is_some() || graph.ends_with("format=rgb24") {
        "rgb24"
    } else {
        "yuv420p"
    };
    let mut to_yuv: Option<((u32, u32), ff::software::scaling::Context)> = None;
    // `None`: the end of the stream, when a transform may give the frames it held back.
    let mut apply = |f: Option<&ff::util::frame::video::Video>| -> Result<Vec<ff::util::frame::video::Video>, MediaError> {
        let Some(t) = transform.as_mut() else {
            return Ok(f.into_iter().cloned().collect());
        };
        let (w, h, rgb) = match f {
            Some(f) => {
                let (w, h) = (f.width(), f.height());
                let stride = f.stride(0);
                let mut rgb = Vec::with_capacity((w * h * 3) as usize);
                for row in 0..h as usize {
                    rgb.extend_from_slice(&f.data(0)[row * stride..row * stride + w as usize * 3]);
                }
                (w, h, rgb)
            }
            None => (0, 0, Vec::new()),
        };
        let mut frames = Vec::new();
        for (ow, oh, pixels) in t(w, h, rgb)? {
            let mut frame = ff::util::frame::video::Video::new(Pixel::RGB24, ow, oh);
            let stride = frame.stride(0);
            for row in 0..oh as usize {
                frame.data_mut(0)[row * stride..row * stride + ow as usize * 3]
                    .copy_from_slice(&pixels[row * ow as usize * 3..(row + 1) * ow as usize * 3]);
            }
            if to_yuv.as_ref().is_none_or(|(size, _)| *size != (ow, oh)) {
                let scaler = ff::software::scaling::Context::get(
                    Pixel::RGB24,
                    ow,
                    oh,
                    Pixel::YUV420P,
                    ow & !1,
                    oh & !1,
                    ff::software::scaling::flag::Flags::BICUBIC,
                )?;
                to_yuv = Some(((ow, oh), scaler));
            }
            let mut yuv = ff::util::frame::video::Video::empty();
            to_yuv.as_mut().expect("set").1.run(&frame, &mut yuv)?;
            frames.push(yuv);
        }
        Ok(frames)
    };
    crate::init();
    let info = crate::probe(input)?;
    let mut v = info.video().ok_or(MediaError::NoStream("video"))?.clone();
    let expected = {
        let (n, d) = v.frame_rate;
        let fps = if n > 0 && d > 0 { f64::from(n) / f64::from(d) } else { 30.0 };
        ((info.duration_ms.unwrap_or(0) as f64 / 1000.0) * fps).ceil().max(1.0) as u64
    };
    // The encoder runs at the raised rate (frames then come `rate_factor` per source frame), or
    // at the rate asked for.
    if let Rate::Fixed(n, d) = rate {
        if n <= 0 || d <= 0 {
            return Err(MediaError::Spec(format!("a frame rate of {n}/{d}")));
        }
        v.frame_rate = (n, d);
    } else if let Rate::Times(rate_factor) = rate
        && rate_factor > 1
    {
        let (n, d) = v.frame_rate;
        // In i64, then back into i32 (to the millihertz if a raw timescale would overflow).
        let raised = i64::from(n) * i64::from(rate_factor);
        v.frame_rate = if n > 0 && d > 0 && raised <= i64::from(i32::MAX) {
            (raised as i32, d)
        } else if n > 0 && d > 0 {
            (
                (raised as f64 / f64::from(d) * 1000.0).round().min(f64::from(i32::MAX)) as i32,
                1000,
            )
        } else {
            (30 * rate_factor as i32, 1)
        };
    }
    let mut ictx = ff::format::input(input).map_err(|e| MediaError::NotMedia(e.to_string()))?;
    let stream = ictx.streams().best(Type::Video).ok_or(MediaError::NoStream("video"))?;
    let (index, tb) = (stream.index(), stream.time_base());
    let origin = export::sources::start_of(&ictx, &stream);
    let rotation = crate::probe::stream_rotation(&stream);
    let mut ctx = ff::codec::context::Context::from_parameters(stream.parameters())?;
    ctx.set_threading(ff::threading::Config {
        kind: ff::threading::Type::Frame,
        count: 0,
        ..Default::default()
    });
    let mut decoder = ctx.decoder().video()?;
    // Upright first, as players show it (the ffmpeg CLI's autorotate).
    let upright = match rotation.rem_euclid(360) {
        90 => "transpose=cclock,",
        180 => "hflip,vflip,",
        270 => "transpose=clock,",
        _ => "",
    };
    let mut filters: Option<ff::filter::Graph> = None;
    let mut out: Option<Out> = None;
    let frames = std::cell::Cell::new(0u64);
    let size = std::cell::Cell::new((0u32, 0u32));
    let mut decoded = ff::util::frame::video::Video::empty();
    let mut filtered = ff::util::frame::video::Video::empty();
    let mut samples_sent = 0i64;
    // Every frame out of the graph: counted, inspected, transformed and encoded.
    let mut on_frame = |f: &ff::util::frame::video::Video, sink_tb: ff::Rational| -> Result<(), MediaError> {
        frames.set(frames.get() + 1);
        size.set((f.width(), f.height()));
        if let Some(i) = inspect.as_mut() {
            i(f, sink_tb, origin);
        }
        if let Some(path) = output {
            for g in apply(Some(f))? {
                write_frame(path, &mut out, &g, &info, &v, input, &mut samples_sent)?;
            }
        }
        Ok(())
    };
    let mut eof = false;
    loop {
        // Feed the decoder, or signal its end.
        if !eof {
            match ictx.packets().next() {
                Some((s, packet)) if s.index() == index => {
                    let _ = decoder.send_packet(&packet);
                }
                Some(_) => continue,
                None => {
                    let _ = decoder.send_eof();
                    eof = true;
                }
            }
        }
        let mut got_any = false;
        while decoder.receive_frame(&mut decoded).is_ok() {
            got_any = true;
            let ts = decoded.timestamp();
            if ts.is_some() {
                decoded.set_pts(ts);
            }
            let graph = match &mut filters {
                Some(g) => g,
                None => {
                    let mut g = ff::filter::Graph::new();
                    let sar = decoded.aspect_ratio();
                    let sar = if sar.numerator() > 0 { sar } else { ff::Rational(1, 1) };
                    g.add(
                        &ff::filter::find("buffer").ok_or_else(|| MediaError::Encode("no buffer filter".into()))?,
                        "in",
                        &format!(
                            "video_size={}x{}:pix_fmt={}:time_base={}/{}:pixel_aspect={}/{}",
                            decoded.width(),
                            decoded.height(),
                            ff::ffi::AVPixelFormat::from(decoded.format()) as i32,
                            tb.numerator(),
                            tb.denominator(),
                            sar.numerator(),
                            sar.denominator()
                        ),
                    )?;
                    g.add(
                        &ff::filter::find("buffersink").ok_or_else(|| MediaError::Encode("no buffersink".into()))?,
                        "out",
                        "",
                    )?;
                    g.output("in", 0)?
                        .input("out", 0)?
                        .parse(&format!("{upright}{graph},format={out_format}"))
                        .map_err(|e| MediaError::Encode(format!("the filter graph {graph:?}: {e}")))?;
                    g.validate()?;
                    filters.insert(g)
                }
            };
            graph.get("in").expect("added").source().add(&decoded)?;
            let sink_tb = graph.get("out").expect("added").sink().time_base();
            drain_sink(graph, &mut filtered, &mut |f| on_frame(f, sink_tb))?;
            let frames = frames.get();
            if !progress(frames, expected.max(frames)) {
                if let Some(path) = output {
                    let _ = std::fs::remove_file(path);
                }
                return Err(MediaError::Cancelled);
            }
        }
        if eof && !got_any {
            break;
        }
    }
    let graph = filters
        .as_mut()
        .ok_or_else(|| MediaError::Decode("no frame could be decoded".into()))?;
    graph.get("in").expect("added").source().flush()?;
    let sink_tb = graph.get("out").expect("added").sink().time_base();
    drain_sink(graph, &mut filtered, &mut |f| on_frame(f, sink_tb))?;
    drop(on_frame);
    // What a transform held back (the last frame's share of the time at a raised rate).
    if let Some(path) = output {
        for g in apply(None)? {
            write_frame(path, &mut out, &g, &info, &v, input, &mut samples_sent)?;
        }
    }
    let (frames, (width, height)) = (frames.get(), size.get());
    if let Some((mut octx, mut vout, audio)) = out {
        vout.encoder.send_eof().map_err(export::encode_err("video encoder"))?;
        export::drain(&mut vout.encoder, vout.stream, vout.tb, 1, &mut octx)?;
        if let Some((mut aout, mut reader)) = audio {
            // The rest of the sound, to the end of the picture.
            let end = (vout.next_index as f64 / fps_of(&v) * 48_000.0).round() as i64;
            send_audio(&mut aout, &mut reader, &mut samples_sent, end, true, &mut octx)?;
            aout.encoder.send_eof().map_err(export::encode_err("audio encoder"))?;
            export::drain(&mut aout.encoder, aout.stream, aout.tb, aout.frame_size as i64, &mut octx)?;
        }
        octx.write_trailer().map_err(export::encode_err("cannot finish the file"))?;
    }
    progress(frames, frames);
    Ok(FilterReport { frames, width, height })
}

fn fps_of(v: &crate::StreamInfo) -> f64 {
    let (n, d) = v.frame_rate;
    if n > 0 && d > 0 { f64::from(n) / f64::from(d) } else { 30.0 }
}

fn drain_sink(
    graph: &mut ff::filter::Graph,
    frame: &mut ff::util::frame::video::Video,
    each: &mut dyn FnMut(&ff::util::frame::video::Video) -> Result<(), MediaError>,
) -> Result<(), MediaError> {
    while graph.get("out").expect("added").sink().frame(frame).is_ok() {
        each(frame)?;
    }
    Ok(())
}

type Out = (
    ff::format::context::Output,
    export::VideoOut,
    Option<(export::AudioOut, export::sources::AudioReader)>,
);

/// Encodes one filtered frame, opening the output at the first (its size is the graph's), and
/// the sound up to the frame's time.
fn write_frame(
    path: &Path,
    out: &mut Option<Out>,
    frame: &ff::util::frame::video::Video,
    info: &crate::MediaInfo,
    v: &crate::StreamInfo,
    input: &Path,
    samples_sent: &mut i64,
) -> Result<(), MediaError> {
    if out.is_none() {
        let (n, d) = v.frame_rate;
        let rate = if n > 0 && d > 0 {
            moviola_crdt::time::FrameRate {
                num: i64::from(n),
                den: i64::from(d),
            }
        } else {
            moviola_crdt::time::FrameRate { num: 30, den: 1 }
        };
        let spec = Resolved {
            width: frame.width(),
            height: frame.height(),
            frame_rate: rate,
            sample_rate: 48_000,
            container: export::Container::Mp4,
            video_codec: export::VideoCodec::H264,
            audio_codec: AudioCodec::Aac,
            fit: export::Fit::Pad,
            quality: Quality::High,
            video_bitrate_kbps: None,
            audio_bitrate_kbps: 192,
        };
        let mut octx = ff::format::output_as(path, "mp4").map_err(export::encode_err("cannot create the output file"))?;
        let vout = export::open_video(&mut octx, &spec)?;
        let audio = match (info.audio(), export::sources::AudioReader::open(input, 48_000)?) {
            (Some(_), Some(reader)) => Some((export::open_audio(&mut octx, &spec)?, reader)),
            _ => None,
        };
        let mut header = ff::Dictionary::new();
        header.set("movflags", "+faststart");
        octx.write_header_with(header)
            .map_err(export::encode_err("cannot write the header"))?;
        *out = Some((octx, vout, audio));
    }
    let (octx, vout, audio) = out.as_mut().expect("opened");
    // Frame pts count output frames at the stream's rate (a CFR result).
    let index = vout.next_index;
    vout.next_index += 1;
    let mut f = frame.clone();
    f.set_pts(Some(index));
    f.set_kind(ff::picture::Type::None);
    if f.format() != Pixel::YUV420P {
        return Err(MediaError::Encode("the filter graph did not give yuv420p".into()));
    }
    vout.encoder.send_frame(&f).map_err(export::encode_err("video encoder"))?;
    export::drain(&mut vout.encoder, vout.stream, vout.tb, 1, octx)?;
    if let Some((aout, reader)) = audio {
        let upto = ((index + 1) as f64 / fps_of(v) * 48_000.0).round() as i64;
        send_audio(aout, reader, samples_sent, upto, false, octx)?;
    }
    Ok(())
}

fn send_audio(
    aout: &mut export::AudioOut,
    reader: &mut export::sources::AudioReader,
    sent: &mut i64,
    upto: i64,
    last: bool,
    octx: &mut ff::format::context::Output,
) -> Result<(), MediaError> {
    while *sent < upto && (last || *sent + aout.frame_size as i64 <= upto) {
        let n = (aout.frame_size as i64).min(upto - *sent) as usize;
        let buf: Vec<[f32; 2]> = (0..n).map(|i| reader.sample(*sent + i as i64)).collect::<Result<_, _>>()?;
        let frame = export::audio_frame(&buf, aout.format, 48_000, *sent);
        aout.encoder.send_frame(&frame).map_err(export::encode_err("audio encoder"))?;
        *sent += n as i64;
        export::drain(&mut aout.encoder, aout.stream, aout.tb, n as i64, octx)?;
    }
    Ok(())
}

/// Stabilises shaky footage with vidstab: a detection pass writes the camera path (to
/// `scratch`), a transform pass smooths it (`smoothing` frames each side), zooming just enough
/// to hide the moving borders. `progress` covers both passes.
/// `preview` gets a small RGB still (96 px on its longest side) of the stabilised picture at
/// most every two seconds of the second pass.
pub fn stabilize(
    input: &Path,
    output: &Path,
    scratch: &Path,
    smoothing: u32,
    progress: &mut dyn FnMut(u64, u64) -> bool,
    preview: &mut dyn FnMut(u32, u32, Vec<u8>),
) -> Result<FilterReport, MediaError> {
    std::fs::create_dir_all(scratch).map_err(|e| MediaError::Encode(format!("cannot create {}: {e}", scratch.display())))?;
    let trf = scratch.join("transforms.trf");
    // The path goes into a filter argument: only plain characters are allowed in it.
    let trf_arg = trf.to_string_lossy().to_string();
    if trf_arg.contains([':', '\'', ',', ';', '[', ']', '\\']) {
        return Err(MediaError::Encode(format!(
            "the scratch path {trf_arg:?} cannot be passed to vidstab"
        )));
    }
    let mut total_seen = 0u64;
    filter_video(
        input,
        None,
        &format!("vidstabdetect=shakiness=8:accuracy=15:result={trf_arg}"),
        &mut |d, t| {
            total_seen = t;
            progress(d, t * 2)
        },
    )?;
    let first = total_seen;
    let mut last_preview: Option<std::time::Instant> = None;
    let mut inspect = |f: &ff::util::frame::video::Video, _: ff::Rational, _: i64| {
        if last_preview.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(2)) {
            last_preview = Some(std::time::Instant::now());
            if let Some((w, h, rgb)) = small_rgb(f, 96) {
                preview(w, h, rgb);
            }
        }
    };
    let report = run_graph(
        input,
        Some(output),
        &format!("vidstabtransform=input={trf_arg}:smoothing={smoothing}:optzoom=1:interpol=bicubic,unsharp=5:5:0.6:3:3:0.3"),
        None,
        Some(&mut inspect),
        Rate::Times(1),
        &mut |d, t| progress(first + d, first + t),
    );
    let _ = std::fs::remove_file(&trf);
    report
}
