//! The export plan: a timeline reduced to what the renderer needs — for every video track the
//! pieces shown over time with their transitions, every sound with its gain envelope, every
//! title. It is plain data (serde), built here from the typed view so every node and the media
//! worker agree on it, and executed frame- and sample-exactly by `moviola-media`.
//!
//! Rules (see `docs/architecture.md`, "Export"):
//! - Video tracks composite in order, later over earlier; pictures are opaque, so the topmost
//!   track showing something at a time wins. A gap shows the tracks below, or black.
//! - A transition at a clip's head blends from what its track showed just before the clip
//!   (that clip keeps playing past its end, using its source's handle), or from black after a
//!   gap. `transition_out: fade_black` fades a clip's tail to black.
//! - Sound: every clip on an unmuted video or audio track is heard (if its source has sound),
//!   scaled by its volume; head transitions fade it in and cross-fade the outgoing clip out,
//!   tail transitions fade it out. Sounds on different tracks are summed.
//! - Titles: every clip with text on a text track, faded in and out by its transitions.

use serde::{Deserialize, Serialize};

use crate::schema::Settings;
use crate::timeline::{Clip, Timeline, TrackKind};

/// How a transition blends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    /// Cross-dissolve (from black after a gap).
    Dissolve,
    /// Dip to black: the outgoing picture fades to black over the first half, the incoming one
    /// in from black over the second (a plain fade in after a gap).
    FadeBlack,
    /// The incoming picture is revealed behind an edge travelling in the named direction.
    WipeLeft,
    WipeRight,
    WipeUp,
    WipeDown,
}

impl TransitionKind {
    pub fn parse(s: &str) -> Option<TransitionKind> {
        Some(match s {
            "dissolve" | "crossfade" => TransitionKind::Dissolve,
            "fade_black" | "dip_black" | "fade" => TransitionKind::FadeBlack,
            "wipe_left" => TransitionKind::WipeLeft,
            "wipe_right" => TransitionKind::WipeRight,
            "wipe_up" => TransitionKind::WipeUp,
            "wipe_down" => TransitionKind::WipeDown,
            _ => return None,
        })
    }
}

/// Where a picture or sound comes from: at timeline time `t` it shows the source of `asset` at
/// `source + (t - at) * speed_num / speed_den`. `clip` names the stream (one decoder per clip).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    pub clip: String,
    pub asset: String,
    pub at: i64,
    pub source: i64,
    pub speed_num: i64,
    pub speed_den: i64,
}

impl SourceRef {
    fn of(clip: &Clip) -> SourceRef {
        SourceRef {
            clip: clip.id.clone(),
            asset: clip.asset.clone(),
            at: clip.start,
            source: clip.source_in,
            speed_num: clip.speed_num.max(1),
            speed_den: clip.speed_den.max(1),
        }
    }

    /// The source time shown at timeline time `t`.
    pub fn source_time(&self, t: i64) -> i64 {
        self.source + (i128::from(t - self.at) * i128::from(self.speed_num) / i128::from(self.speed_den.max(1))) as i64
    }
}

/// A transition at the head of a piece, over `[piece.start, piece.start + duration)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enter {
    pub kind: TransitionKind,
    pub duration: i64,
    /// What the track showed just before; `None` after a gap (black).
    pub from: Option<SourceRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoPiece {
    pub start: i64,
    pub end: i64,
    pub src: SourceRef,
    pub enter: Option<Enter>,
    /// Fade to black over the last `fade_out` ticks (0: none).
    pub fade_out: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoLayer {
    pub track: String,
    /// Sorted, not overlapping.
    pub pieces: Vec<VideoPiece>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SoundPiece {
    pub start: i64,
    pub end: i64,
    pub src: SourceRef,
    pub volume: f64,
    /// Linear gain ramps at the head and tail, in ticks (0: none).
    pub fade_in: i64,
    pub fade_out: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TitlePiece {
    pub clip: String,
    pub start: i64,
    pub end: i64,
    pub text: String,
    pub fade_in: i64,
    pub fade_out: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportPlan {
    pub settings: Settings,
    /// End of the last piece, in ticks.
    pub duration: i64,
    /// Bottom to top.
    pub video: Vec<VideoLayer>,
    pub sound: Vec<SoundPiece>,
    pub titles: Vec<TitlePiece>,
}

impl ExportPlan {
    /// Every asset the plan reads.
    pub fn assets(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .video
            .iter()
            .flat_map(|l| &l.pieces)
            .flat_map(|p| std::iter::once(&p.src).chain(p.enter.as_ref().and_then(|e| e.from.as_ref())))
            .chain(self.sound.iter().map(|s| &s.src))
            .map(|s| s.asset.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

impl Timeline {
    /// Clips still waiting for their job's result: a timeline with any cannot be exported.
    pub fn placeholders(&self) -> Vec<&Clip> {
        self.tracks.iter().flat_map(|t| &t.clips).filter(|c| c.is_placeholder()).collect()
    }

    /// The export plan of the timeline as it is (see the module docs).
    pub fn export_plan(&self) -> ExportPlan {
        let mut video = Vec::new();
        let mut sound = Vec::new();
        let mut titles = Vec::new();
        for (track, plan) in self.tracks.iter().zip(self.render_plan()) {
            let clip = |id: &str| track.clips.iter().find(|c| c.id == id).expect("segments name clips of their track");
            match track.kind {
                TrackKind::Text => {
                    for seg in &plan.segments {
                        let c = clip(&seg.clip);
                        let Some(text) = c.text.clone().filter(|t| !t.trim().is_empty()) else {
                            continue;
                        };
                        titles.push(TitlePiece {
                            clip: c.id.clone(),
                            start: seg.start,
                            end: seg.end,
                            text,
                            fade_in: head(c, seg.start).map_or(0, |t| t.duration.min(seg.end - seg.start)),
                            fade_out: tail(c, seg.end).map_or(0, |d| d.min(seg.end - seg.start)),
                        });
                    }
                }
                TrackKind::Video | TrackKind::Audio => {
                    let mut pieces: Vec<VideoPiece> = Vec::new();
                    for (i, seg) in plan.segments.iter().enumerate() {
                        let c = clip(&seg.clip);
                        if c.asset.is_empty() {
                            continue;
                        }
                        let mut src = SourceRef::of(c);
                        (src.at, src.source) = (seg.start, seg.source_start);
                        let len = seg.end - seg.start;
                        // What the track showed just before, still playing through the transition.
                        let before = i
                            .checked_sub(1)
                            .map(|j| &plan.segments[j])
                            .filter(|p| p.end == seg.start)
                            .map(|p| {
                                let pc = clip(&p.clip);
                                let mut r = SourceRef::of(pc);
                                (r.at, r.source) = (p.start, p.source_start);
                                (r, pc.volume)
                            })
                            .filter(|(r, _)| !r.asset.is_empty());
                        let enter = head(c, seg.start).and_then(|t| {
                            Some(Enter {
                                kind: TransitionKind::parse(&t.kind)?,
                                duration: t.duration.min(len),
                                from: before.as_ref().map(|(r, _)| r.clone()),
                            })
                        });
                        let fade_out = tail(c, seg.end).map_or(0, |d| d.min(len));
                        if !track.muted {
                            if let (Some(e), Some((from, volume))) = (&enter, &before) {
                                sound.push(SoundPiece {
                                    start: seg.start,
                                    end: seg.start + e.duration,
                                    src: from.clone(),
                                    volume: *volume,
                                    fade_in: 0,
                                    fade_out: e.duration,
                                });
                            }
                            sound.push(SoundPiece {
                                start: seg.start,
                                end: seg.end,
                                src: src.clone(),
                                volume: c.volume,
                                fade_in: enter.as_ref().map_or(0, |e| e.duration),
                                fade_out,
                            });
                        }
                        if track.kind == TrackKind::Video {
                            pieces.push(VideoPiece {
                                start: seg.start,
                                end: seg.end,
                                src,
                                enter,
                                fade_out,
                            });
                        }
                    }
                    if track.kind == TrackKind::Video {
                        video.push(VideoLayer {
                            track: track.id.clone(),
                            pieces,
                        });
                    }
                }
            }
        }
        let duration = video
            .iter()
            .flat_map(|l| &l.pieces)
            .map(|p| p.end)
            .chain(sound.iter().map(|s| s.end))
            .chain(titles.iter().map(|t| t.end))
            .max()
            .unwrap_or(0);
        ExportPlan {
            settings: self.settings,
            duration,
            video,
            sound,
            titles,
        }
    }
}

/// The head transition of `c`, when the segment starting at `at` is the clip's head.
fn head(c: &Clip, at: i64) -> Option<&crate::timeline::Transition> {
    c.transition_in.as_ref().filter(|t| at == c.start && t.duration > 0)
}

/// The fade-out length of `c`, when the segment ending at `at` is the clip's tail.
fn tail(c: &Clip, at: i64) -> Option<i64> {
    c.transition_out
        .as_ref()
        .filter(|t| at == c.end() && t.duration > 0 && TransitionKind::parse(&t.kind).is_some())
        .map(|t| t.duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{EditOp, apply_and_commit};
    use crate::time::seconds;
    use crate::timeline::Transition;

    fn doc_with(ops: &[EditOp]) -> Timeline {
        let mut doc = crate::new_document(automerge::ActorId::random(), "t", Settings::default());
        for op in ops {
            apply_and_commit(&mut doc, op).unwrap();
        }
        Timeline::read(&doc)
    }

    fn track(id: &str, kind: TrackKind) -> EditOp {
        EditOp::AddTrack {
            id: id.into(),
            kind,
            name: id.into(),
            after: None,
        }
    }

    fn clip(id: &str, track: &str, asset: &str, source_in: i64, len: i64, start: i64) -> EditOp {
        EditOp::InsertClip {
            id: id.into(),
            track: track.into(),
            asset: asset.into(),
            source_in,
            source_out: source_in + len,
            start,
        }
    }

    #[test]
    fn dissolve_blends_from_the_clip_before_and_crossfades_its_sound() {
        let t = doc_with(&[
            track("v", TrackKind::Video),
            clip("a", "v", "1", seconds(10), seconds(4), 0),
            clip("b", "v", "2", 0, seconds(4), seconds(4)),
            EditOp::SetTransition {
                clip: "b".into(),
                transition: Some(Transition {
                    kind: "dissolve".into(),
                    duration: seconds(1),
                }),
                out: false,
            },
            EditOp::SetTransition {
                clip: "b".into(),
                transition: Some(Transition {
                    kind: "fade_black".into(),
                    duration: seconds(2),
                }),
                out: true,
            },
        ]);
        let plan = t.export_plan();
        assert_eq!(plan.duration, seconds(8));
        let pieces = &plan.video[0].pieces;
        assert_eq!(pieces.len(), 2);
        let enter = pieces[1].enter.as_ref().unwrap();
        assert_eq!(enter.kind, TransitionKind::Dissolve);
        let from = enter.from.as_ref().unwrap();
        assert_eq!(from.asset, "1");
        // Clip a keeps playing past its end: at 4.5 s it shows source 14.5 s.
        assert_eq!(from.source_time(seconds(4) + seconds(1) / 2), seconds(14) + seconds(1) / 2);
        assert_eq!(pieces[1].fade_out, seconds(2));
        // a, a's tail fading out under b, b fading in.
        assert_eq!(plan.sound.len(), 3);
        let tail = plan.sound.iter().find(|s| s.src.clip == "a" && s.start == seconds(4)).unwrap();
        assert_eq!((tail.end, tail.fade_out), (seconds(5), seconds(1)));
        let b = plan.sound.iter().find(|s| s.src.clip == "b").unwrap();
        assert_eq!((b.fade_in, b.fade_out), (seconds(1), seconds(2)));
    }

    #[test]
    fn gaps_fade_from_black_muted_tracks_are_silent_and_titles_come_along() {
        let t = doc_with(&[
            track("v", TrackKind::Video),
            track("m", TrackKind::Audio),
            track("t", TrackKind::Text),
            EditOp::SetTrackFlags {
                id: "m".into(),
                muted: Some(true),
                locked: None,
            },
            clip("a", "v", "1", 0, seconds(2), seconds(1)),
            clip("s", "m", "3", 0, seconds(5), 0),
            EditOp::SetTransition {
                clip: "a".into(),
                transition: Some(Transition {
                    kind: "dissolve".into(),
                    duration: seconds(1),
                }),
                out: false,
            },
            EditOp::InsertText {
                id: "title".into(),
                track: "t".into(),
                text: "Hello".into(),
                start: 0,
                duration: seconds(6),
            },
        ]);
        let plan = t.export_plan();
        assert_eq!(plan.duration, seconds(6));
        assert_eq!(plan.video[0].pieces[0].enter.as_ref().unwrap().from, None);
        assert!(plan.sound.iter().all(|s| s.src.asset != "3"));
        assert_eq!(plan.titles.len(), 1);
        assert_eq!(plan.titles[0].text, "Hello");
        assert_eq!(plan.assets(), vec!["1".to_string()]);
    }

    #[test]
    fn titles_only_go_on_text_tracks_and_unknown_transitions_are_refused() {
        let mut doc = crate::new_document(automerge::ActorId::random(), "t", Settings::default());
        apply_and_commit(&mut doc, &track("v", TrackKind::Video)).unwrap();
        apply_and_commit(&mut doc, &clip("a", "v", "1", 0, seconds(2), 0)).unwrap();
        let e = apply_and_commit(
            &mut doc,
            &EditOp::InsertText {
                id: "x".into(),
                track: "v".into(),
                text: "Hi".into(),
                start: 0,
                duration: 1,
            },
        );
        assert!(matches!(e, Err(crate::EditError::NotText(_))));
        let e = apply_and_commit(
            &mut doc,
            &EditOp::SetTransition {
                clip: "a".into(),
                transition: Some(Transition {
                    kind: "spin".into(),
                    duration: 1,
                }),
                out: false,
            },
        );
        assert!(matches!(e, Err(crate::EditError::UnknownTransition(_))));
    }
}
