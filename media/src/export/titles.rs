//! Titles: FFmpeg's `drawtext` over the composited frame, one filter per title, each enabled
//! over its own span (frame-exact: the bounds are nudged half a frame early so a frame starting
//! exactly at a bound is decided by the same `start <= t < end` rule as clips) and faded by an
//! alpha ramp. The words go through files (`textfile=`), so no text needs escaping.

use std::path::{Path, PathBuf};

use ffmpeg_next as ff;
use moviola_crdt::plan::TitlePiece;
use moviola_crdt::time::{FrameRate, TICKS_PER_SECOND};

use super::picture::Picture;
use crate::MediaError;

const FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
];

pub(super) struct Titles {
    graph: ff::filter::Graph,
    dir: PathBuf,
}

impl Drop for Titles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn secs(ticks: i64) -> f64 {
    ticks as f64 / TICKS_PER_SECOND as f64
}

impl Titles {
    /// `None` when there are no titles.
    pub(super) fn new(
        titles: &[TitlePiece],
        width: usize,
        height: usize,
        rate: FrameRate,
        scratch: &Path,
    ) -> Result<Option<Titles>, MediaError> {
        if titles.is_empty() {
            return Ok(None);
        }
        let dir = scratch.join(format!("titles-{}-{}", std::process::id(), unique()));
        // The files' paths go into filter arguments unquoted.
        if dir.to_string_lossy().contains([':', '\'', ',', ';', '[', ']', '\\', '=']) {
            return Err(MediaError::Encode(format!(
                "the scratch folder {} cannot hold title files for drawtext",
                dir.display()
            )));
        }
        std::fs::create_dir_all(&dir).map_err(|e| MediaError::Encode(format!("cannot create {}: {e}", dir.display())))?;
        let mut this = Titles {
            graph: ff::filter::Graph::new(),
            dir,
        };
        let font = FONTS
            .iter()
            .find(|f| Path::new(f).exists())
            .map(|f| format!("fontfile={f}"))
            .unwrap_or_else(|| "font=Sans".into());
        let half_frame = secs(rate.frame_ticks()) / 2.0;
        let size = (height as f64 * 0.07).round().max(8.0) as i64;
        let mut chain = Vec::new();
        for (i, t) in titles.iter().enumerate() {
            let file = this.dir.join(format!("{i}.txt"));
            std::fs::write(&file, &t.text).map_err(|e| MediaError::Encode(format!("cannot write a title: {e}")))?;
            let (s, e) = (secs(t.start) - half_frame, secs(t.end) - half_frame);
            let mut alpha = String::from("1");
            if t.fade_in > 0 {
                alpha = format!("min({alpha},(t-{s:.6})/{:.6})", secs(t.fade_in));
            }
            if t.fade_out > 0 {
                alpha = format!("min({alpha},({e:.6}-t)/{:.6})", secs(t.fade_out));
            }
            chain.push(format!(
                "drawtext={font}:textfile={}:expansion=none:fontsize={size}:fontcolor=white:\
                 x=(w-text_w)/2:y=h*0.8-text_h/2:shadowcolor=black@0.6:shadowx=2:shadowy=2:\
                 box=1:boxcolor=black@0.35:boxborderw={}:enable='between(t,{s:.6},{e:.6})':alpha='clip({alpha},0,1)'",
                file.display(),
                size / 4
            ));
        }
        let g = &mut this.graph;
        let buffer = ff::filter::find("buffer").ok_or_else(|| MediaError::Encode("FFmpeg lacks the buffer filter".into()))?;
        let sink = ff::filter::find("buffersink").ok_or_else(|| MediaError::Encode("FFmpeg lacks the buffersink filter".into()))?;
        g.add(
            &buffer,
            "in",
            &format!(
                "video_size={width}x{height}:pix_fmt=yuv420p:time_base={}/{}:pixel_aspect=1/1",
                rate.den, rate.num
            ),
        )?;
        g.add(&sink, "out", "")?;
        g.output("in", 0)?
            .input("out", 0)?
            .parse(&chain.join(","))
            .map_err(|e| MediaError::Encode(format!("cannot set up the titles (drawtext): {e}")))?;
        g.validate()?;
        Ok(Some(this))
    }

    /// Draws the titles due at frame `index` onto `pic`.
    pub(super) fn draw(&mut self, pic: &Picture, index: i64) -> Result<Picture, MediaError> {
        let mut frame = pic.to_frame(&mut None, ff::format::Pixel::YUV420P)?;
        frame.set_pts(Some(index));
        self.graph.get("in").expect("added").source().add(&frame)?;
        let mut out = ff::util::frame::video::Video::empty();
        self.graph.get("out").expect("added").sink().frame(&mut out)?;
        Ok(Picture::from_frame(&out))
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
