//! What an export produces: a platform preset, or container, codecs, size and quality given
//! one by one (a preset's choices can be overridden field by field).

use moviola_crdt::Settings;
use moviola_crdt::time::FrameRate;
use serde::{Deserialize, Serialize};

pub use super::picture::Fit;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// 1920×1080 H.264 + AAC in MP4.
    Youtube,
    /// 1080×1920 H.264 + AAC in MP4 (YouTube Shorts, TikTok, Instagram Reels).
    #[serde(alias = "tiktok", alias = "reels")]
    Shorts,
    /// 1080×1350 (4:5) H.264 + AAC in MP4.
    Instagram,
    /// 1080×1080 H.264 + AAC in MP4.
    Square,
    /// The timeline's own size in ProRes 422 + PCM in MOV, for archiving and further editing.
    Master,
    /// The timeline's own size in VP9 + Opus in WebM.
    Web,
}

impl Preset {
    pub const ALL: [Preset; 6] = [
        Preset::Youtube,
        Preset::Shorts,
        Preset::Instagram,
        Preset::Square,
        Preset::Master,
        Preset::Web,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Youtube => "youtube",
            Preset::Shorts => "shorts",
            Preset::Instagram => "instagram",
            Preset::Square => "square",
            Preset::Master => "master",
            Preset::Web => "web",
        }
    }

    fn defaults(self) -> (Option<(u32, u32)>, Container, VideoCodec, AudioCodec) {
        match self {
            Preset::Youtube => (Some((1920, 1080)), Container::Mp4, VideoCodec::H264, AudioCodec::Aac),
            Preset::Shorts => (Some((1080, 1920)), Container::Mp4, VideoCodec::H264, AudioCodec::Aac),
            Preset::Instagram => (Some((1080, 1350)), Container::Mp4, VideoCodec::H264, AudioCodec::Aac),
            Preset::Square => (Some((1080, 1080)), Container::Mp4, VideoCodec::H264, AudioCodec::Aac),
            Preset::Master => (None, Container::Mov, VideoCodec::Prores, AudioCodec::Pcm),
            Preset::Web => (None, Container::Webm, VideoCodec::Vp9, AudioCodec::Opus),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Container {
    Mp4,
    Webm,
    Mov,
}

impl Container {
    pub fn muxer(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::Webm => "webm",
            Container::Mov => "mov",
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Container::Mp4 => "video/mp4",
            Container::Webm => "video/webm",
            Container::Mov => "video/quicktime",
        }
    }

    pub fn ext(self) -> &'static str {
        self.muxer()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoCodec {
    H264,
    H265,
    Vp9,
    /// ProRes 422 (HQ at `quality: high`).
    Prores,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioCodec {
    Aac,
    Opus,
    /// 16-bit PCM (MOV only).
    Pcm,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// Fast, for review.
    Draft,
    #[default]
    Standard,
    /// Slow, visually lossless.
    High,
}

/// An export request as clients send it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    #[serde(default)]
    pub preset: Option<Preset>,
    #[serde(default)]
    pub container: Option<Container>,
    #[serde(default)]
    pub video_codec: Option<VideoCodec>,
    #[serde(default)]
    pub audio_codec: Option<AudioCodec>,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default)]
    pub fit: Fit,
    #[serde(default)]
    pub quality: Quality,
    /// Constant bitrate instead of the quality's constant-quality setting.
    #[serde(default)]
    pub video_bitrate_kbps: Option<u32>,
    #[serde(default)]
    pub audio_bitrate_kbps: Option<u32>,
}

/// Every choice made: what the exporter runs with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    pub width: u32,
    pub height: u32,
    pub frame_rate: FrameRate,
    pub sample_rate: u32,
    pub container: Container,
    pub video_codec: VideoCodec,
    pub audio_codec: AudioCodec,
    pub fit: Fit,
    pub quality: Quality,
    pub video_bitrate_kbps: Option<u32>,
    pub audio_bitrate_kbps: u32,
}

impl OutputSpec {
    /// Fills in the preset's and the timeline's choices and checks the combination.
    pub fn resolve(&self, settings: &Settings) -> Result<Resolved, String> {
        let (size, container, video_codec, audio_codec) =
            self.preset
                .map(Preset::defaults)
                .unwrap_or((None, Container::Mp4, VideoCodec::H264, AudioCodec::Aac));
        let container = self.container.unwrap_or(container);
        let video_codec = self.video_codec.unwrap_or(match (self.preset, container) {
            (None, Container::Webm) => VideoCodec::Vp9,
            _ => video_codec,
        });
        let audio_codec = self.audio_codec.unwrap_or(match (self.preset, container) {
            (None, Container::Webm) => AudioCodec::Opus,
            _ => audio_codec,
        });
        let (tw, th) = size.unwrap_or((settings.width.clamp(2, 8192) as u32, settings.height.clamp(2, 8192) as u32));
        let (width, height) = (self.width.unwrap_or(tw), self.height.unwrap_or(th));
        if !(16..=8192).contains(&width) || !(16..=8192).contains(&height) || width % 2 != 0 || height % 2 != 0 {
            return Err(format!("the size must be even and 16 to 8192 pixels a side, got {width}×{height}"));
        }
        let ok = match container {
            Container::Mp4 => matches!(video_codec, VideoCodec::H264 | VideoCodec::H265) && audio_codec == AudioCodec::Aac,
            Container::Webm => video_codec == VideoCodec::Vp9 && audio_codec == AudioCodec::Opus,
            Container::Mov => video_codec != VideoCodec::Vp9 && audio_codec != AudioCodec::Opus,
        };
        if !ok {
            return Err(format!(
                "{container:?} cannot hold {video_codec:?} with {audio_codec:?}: MP4 takes H.264/H.265 with AAC, WebM VP9 with Opus, MOV ProRes/H.264/H.265 with AAC or PCM"
            ));
        }
        if let Some(kbps) = self.video_bitrate_kbps.filter(|k| !(100..=200_000).contains(k)) {
            return Err(format!("video_bitrate_kbps must be 100 to 200000, got {kbps}"));
        }
        let audio_bitrate_kbps = self.audio_bitrate_kbps.unwrap_or(match self.quality {
            Quality::Draft => 128,
            _ => 192,
        });
        if !(32..=512).contains(&audio_bitrate_kbps) {
            return Err(format!("audio_bitrate_kbps must be 32 to 512, got {audio_bitrate_kbps}"));
        }
        let rate = settings.frame_rate;
        if !rate.is_valid() || rate.num > 1_000_000 || rate.den > 1_000_000 || rate.num > 240 * rate.den {
            return Err(format!("the timeline's frame rate {}/{} cannot be exported", rate.num, rate.den));
        }
        // Opus runs at 48 kHz; every rate the timeline allows divides the tick rate.
        let sample_rate = if audio_codec == AudioCodec::Opus {
            48_000
        } else {
            settings.sample_rate.clamp(8000, 96_000) as u32
        };
        if moviola_crdt::time::TICKS_PER_SECOND % i64::from(sample_rate) != 0 {
            return Err(format!("the sample rate {sample_rate} Hz is not supported"));
        }
        Ok(Resolved {
            width,
            height,
            frame_rate: rate,
            sample_rate,
            container,
            video_codec,
            audio_codec,
            fit: self.fit,
            quality: self.quality,
            video_bitrate_kbps: self.video_bitrate_kbps,
            audio_bitrate_kbps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_overrides() {
        let s = Settings::default();
        let spec: OutputSpec = serde_json::from_str(r#"{"preset":"tiktok","fit":"crop"}"#).unwrap();
        let r = spec.resolve(&s).unwrap();
        assert_eq!((r.width, r.height, r.container, r.fit), (1080, 1920, Container::Mp4, Fit::Crop));
        let r = OutputSpec {
            preset: Some(Preset::Master),
            ..Default::default()
        }
        .resolve(&s)
        .unwrap();
        assert_eq!((r.width, r.video_codec, r.audio_codec), (1920, VideoCodec::Prores, AudioCodec::Pcm));
        let bad = OutputSpec {
            container: Some(Container::Webm),
            video_codec: Some(VideoCodec::H264),
            ..Default::default()
        };
        assert!(bad.resolve(&s).unwrap_err().contains("WebM VP9"));
        assert!(serde_json::from_str::<OutputSpec>(r#"{"preset":"vhs"}"#).is_err());
        let odd = OutputSpec {
            width: Some(641),
            ..Default::default()
        };
        assert!(odd.resolve(&s).is_err());
    }
}
