//! A typed, validated read of a timeline document, and the deterministic render rule.
//!
//! Reading never fails: entries that are malformed (a client wrote a string where a time
//! belongs) are skipped and reported as [`Issue`]s, exactly like overlaps. Sync never rejects
//! a change because of what it means; the view explains it instead.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use automerge::{ObjId, ROOT, ReadDoc};

use crate::schema::{self, Settings, get_bool, get_f64, get_i64, get_map, get_str};

/// Kind of a track.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Video,
    Audio,
    Text,
}

impl TrackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
            TrackKind::Text => "text",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "video" => Some(TrackKind::Video),
            "audio" => Some(TrackKind::Audio),
            "text" => Some(TrackKind::Text),
            _ => None,
        }
    }
}

/// A transition at the head of a clip, from whatever precedes it on its track.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Transition {
    /// `dissolve`, `fade_black`, `wipe_left`, … (interpreted by the renderer).
    pub kind: String,
    /// Duration in ticks.
    pub duration: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Clip {
    pub id: String,
    pub track: String,
    pub asset: String,
    pub source_in: i64,
    pub source_out: i64,
    pub start: i64,
    pub speed_num: i64,
    pub speed_den: i64,
    pub volume: f64,
    pub transition_in: Option<Transition>,
    /// A transition at the tail of a clip: `fade_black` fades it to black (and its sound out).
    pub transition_out: Option<Transition>,
    /// The words of a title clip (on a text track).
    pub text: Option<String>,
    /// Set when the clip stands for a job's result: a placeholder (`asset` empty) while the job
    /// is queued or running, the result once it succeeded, or the failure.
    pub job: Option<ClipJob>,
}

/// The job behind a clip. Live progress is not stored in the document (it would add a change
/// per progress tick); clients join it from `/events` by `id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClipJob {
    pub id: i64,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    pub error: Option<String>,
}

impl Clip {
    /// A placeholder waiting for its job's result: nothing to render yet.
    pub fn is_placeholder(&self) -> bool {
        self.asset.is_empty() && self.job.is_some()
    }

    /// Length on the timeline in ticks: the source range played at `speed_num / speed_den`.
    pub fn duration(&self) -> i64 {
        let source = (self.source_out - self.source_in).max(0);
        (i128::from(source) * i128::from(self.speed_den) / i128::from(self.speed_num.max(1))) as i64
    }

    pub fn end(&self) -> i64 {
        self.start + self.duration()
    }

    /// The source time shown at timeline time `t` (which should lie within the clip).
    pub fn source_time_at(&self, t: i64) -> i64 {
        self.source_in + (i128::from(t - self.start) * i128::from(self.speed_num) / i128::from(self.speed_den.max(1))) as i64
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    pub id: String,
    pub kind: TrackKind,
    pub name: String,
    pub order: String,
    pub muted: bool,
    pub locked: bool,
    /// Sorted by `(start, id)`.
    pub clips: Vec<Clip>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub id: String,
    pub time: i64,
    pub label: String,
    pub color: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub id: String,
    pub author: String,
    pub text: String,
    pub start: i64,
    pub end: Option<i64>,
    pub created_at: i64,
}

/// Something a timeline says that is ambiguous or impossible; reported, never rejected.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Issue {
    /// Two clips on one track cover `[start, end)` at once. The render rule shows `shown`.
    Overlap {
        track: String,
        first: String,
        second: String,
        start: i64,
        end: i64,
        shown: String,
    },
    /// A clip reads past the end of its asset (`source_out > asset duration`).
    PastSourceEnd {
        clip: String,
        source_out: i64,
        asset_duration: i64,
    },
    /// `source_out <= source_in`, a negative source or timeline start, or a zero speed.
    InvalidRange { clip: String },
    /// A clip names a track that does not exist (its track was removed concurrently).
    OrphanClip { clip: String, track: String },
    /// A transition longer than its clip.
    TransitionTooLong { clip: String },
    /// An entry that could not be read at all.
    Malformed { path: String, reason: &'static str },
}

/// The typed view of a whole timeline document.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    pub schema: i64,
    pub title: String,
    pub settings: Settings,
    /// Sorted by `(order, id)`; later tracks composite over earlier ones.
    pub tracks: Vec<Track>,
    /// Sorted by `(time, id)`.
    pub markers: Vec<Marker>,
    /// Sorted by `(start, id)`.
    pub comments: Vec<Comment>,
    /// Problems found while reading (malformed entries, orphans), sorted.
    pub issues: Vec<Issue>,
}

fn entries<D: ReadDoc>(doc: &D, key: &str) -> Vec<(String, ObjId)> {
    let Some(container) = get_map(doc, &ROOT, key) else {
        return Vec::new();
    };
    doc.keys(&container)
        .filter_map(|k| get_map(doc, &container, &k).map(|obj| (k, obj)))
        .collect()
}

impl Timeline {
    /// Reads the document. Never fails; see the module docs.
    pub fn read<D: ReadDoc>(doc: &D) -> Timeline {
        let mut issues = Vec::new();
        let mut tracks: BTreeMap<String, Track> = BTreeMap::new();
        for (id, obj) in entries(doc, schema::KEY_TRACKS) {
            let Some(kind) = get_str(doc, &obj, "kind").as_deref().and_then(TrackKind::parse) else {
                issues.push(Issue::Malformed {
                    path: format!("tracks/{id}"),
                    reason: "track kind is not video, audio or text",
                });
                continue;
            };
            tracks.insert(
                id.clone(),
                Track {
                    id,
                    kind,
                    name: get_str(doc, &obj, "name").unwrap_or_default(),
                    order: get_str(doc, &obj, "order").unwrap_or_default(),
                    muted: get_bool(doc, &obj, "muted").unwrap_or(false),
                    locked: get_bool(doc, &obj, "locked").unwrap_or(false),
                    clips: Vec::new(),
                },
            );
        }
        for (id, obj) in entries(doc, schema::KEY_CLIPS) {
            let (Some(track), Some(source_in), Some(source_out), Some(start)) = (
                get_str(doc, &obj, "track"),
                get_i64(doc, &obj, "source_in"),
                get_i64(doc, &obj, "source_out"),
                get_i64(doc, &obj, "start"),
            ) else {
                issues.push(Issue::Malformed {
                    path: format!("clips/{id}"),
                    reason: "clip lacks track, source_in, source_out or start as integers",
                });
                continue;
            };
            let transition = |key: &str| {
                get_map(doc, &obj, key).and_then(|t| {
                    Some(Transition {
                        kind: get_str(doc, &t, "kind")?,
                        duration: get_i64(doc, &t, "duration")?,
                    })
                })
            };
            let (transition_in, transition_out) = (transition("transition_in"), transition("transition_out"));
            let clip = Clip {
                id: id.clone(),
                track: track.clone(),
                asset: get_str(doc, &obj, "asset").unwrap_or_default(),
                source_in,
                source_out,
                start,
                speed_num: get_i64(doc, &obj, "speed_num").unwrap_or(1),
                speed_den: get_i64(doc, &obj, "speed_den").unwrap_or(1),
                volume: get_f64(doc, &obj, "volume").unwrap_or(1.0),
                transition_in,
                transition_out,
                text: get_str(doc, &obj, "text"),
                job: get_map(doc, &obj, "job").and_then(|j| {
                    Some(ClipJob {
                        id: get_i64(doc, &j, "id")?,
                        state: get_str(doc, &j, "state").unwrap_or_default(),
                        error: get_str(doc, &j, "error"),
                    })
                }),
            };
            match tracks.get_mut(&track) {
                Some(t) => t.clips.push(clip),
                None => issues.push(Issue::OrphanClip { clip: id, track }),
            }
        }
        let mut tracks: Vec<Track> = tracks.into_values().collect();
        for track in &mut tracks {
            track.clips.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        }
        tracks.sort_by(|a, b| (&a.order, &a.id).cmp(&(&b.order, &b.id)));

        let mut markers: Vec<Marker> = entries(doc, schema::KEY_MARKERS)
            .into_iter()
            .filter_map(|(id, obj)| {
                Some(Marker {
                    time: get_i64(doc, &obj, "time")?,
                    label: get_str(doc, &obj, "label").unwrap_or_default(),
                    color: get_str(doc, &obj, "color").unwrap_or_default(),
                    id,
                })
            })
            .collect();
        markers.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
        let mut comments: Vec<Comment> = entries(doc, schema::KEY_COMMENTS)
            .into_iter()
            .filter_map(|(id, obj)| {
                Some(Comment {
                    author: get_str(doc, &obj, "author").unwrap_or_default(),
                    text: get_str(doc, &obj, "text").unwrap_or_default(),
                    start: get_i64(doc, &obj, "start")?,
                    end: get_i64(doc, &obj, "end"),
                    created_at: get_i64(doc, &obj, "created_at").unwrap_or(0),
                    id,
                })
            })
            .collect();
        comments.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        issues.sort();
        Timeline {
            schema: get_i64(doc, &ROOT, schema::KEY_SCHEMA).unwrap_or(0),
            title: get_str(doc, &ROOT, schema::KEY_TITLE).unwrap_or_default(),
            settings: schema::read_settings(doc),
            tracks,
            markers,
            comments,
            issues,
        }
    }

    pub fn track(&self, id: &str) -> Option<&Track> {
        self.tracks.iter().find(|t| t.id == id)
    }

    pub fn clip(&self, id: &str) -> Option<&Clip> {
        self.tracks.iter().flat_map(|t| &t.clips).find(|c| c.id == id)
    }

    /// End of the last clip on any track, in ticks.
    pub fn duration(&self) -> i64 {
        self.tracks.iter().flat_map(|t| &t.clips).map(Clip::end).max().unwrap_or(0)
    }

    /// All issues: those found while reading plus the ones that need asset durations.
    /// `asset_duration` returns an asset's length in ticks, if known.
    pub fn validate(&self, asset_duration: &dyn Fn(&str) -> Option<i64>) -> Vec<Issue> {
        let mut issues = self.issues.clone();
        for track in &self.tracks {
            for clip in &track.clips {
                if clip.source_out <= clip.source_in || clip.source_in < 0 || clip.start < 0 || clip.speed_num <= 0 || clip.speed_den <= 0 {
                    issues.push(Issue::InvalidRange { clip: clip.id.clone() });
                }
                if let Some(asset_duration) = asset_duration(&clip.asset) {
                    if clip.source_out > asset_duration {
                        issues.push(Issue::PastSourceEnd {
                            clip: clip.id.clone(),
                            source_out: clip.source_out,
                            asset_duration,
                        });
                    }
                }
                if [&clip.transition_in, &clip.transition_out]
                    .into_iter()
                    .flatten()
                    .any(|t| t.duration > clip.duration() || t.duration < 0)
                {
                    issues.push(Issue::TransitionTooLong { clip: clip.id.clone() });
                }
            }
            for (idx, a) in track.clips.iter().enumerate() {
                for b in &track.clips[idx + 1..] {
                    if b.start >= a.end() {
                        break;
                    }
                    let (start, end) = (b.start.max(a.start), a.end().min(b.end()));
                    if start < end {
                        issues.push(Issue::Overlap {
                            track: track.id.clone(),
                            first: a.id.clone(),
                            second: b.id.clone(),
                            start,
                            end,
                            shown: wins(a, b).id.clone(),
                        });
                    }
                }
            }
        }
        issues.sort();
        issues
    }

    /// The render plan: for each track, which clip is shown over which span.
    pub fn render_plan(&self) -> Vec<TrackPlan> {
        self.tracks
            .iter()
            .map(|track| TrackPlan {
                track: track.id.clone(),
                kind: track.kind,
                muted: track.muted,
                // A placeholder has nothing to show until its job delivers.
                segments: resolve_track(&track.clips.iter().filter(|c| !c.is_placeholder()).cloned().collect::<Vec<_>>()),
            })
            .collect()
    }

    /// A stable, human-readable dump of everything in the view, for tests and debugging.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let _ = writeln!(
            out,
            "title {:?} schema {} {}x{} {}/{}fps {}Hz",
            self.title, self.schema, s.width, s.height, s.frame_rate.num, s.frame_rate.den, s.sample_rate
        );
        for t in &self.tracks {
            let _ = writeln!(
                out,
                "track {} {} {:?}{}{}",
                t.id,
                t.kind.as_str(),
                t.name,
                if t.muted { " muted" } else { "" },
                if t.locked { " locked" } else { "" }
            );
            for c in &t.clips {
                let _ = write!(
                    out,
                    "  clip {} asset={} src=[{},{}) at={} len={}",
                    c.id,
                    c.asset,
                    c.source_in,
                    c.source_out,
                    c.start,
                    c.duration()
                );
                if (c.speed_num, c.speed_den) != (1, 1) {
                    let _ = write!(out, " speed={}/{}", c.speed_num, c.speed_den);
                }
                if c.volume != 1.0 {
                    let _ = write!(out, " volume={}", c.volume);
                }
                if let Some(tr) = &c.transition_in {
                    let _ = write!(out, " transition={}:{}", tr.kind, tr.duration);
                }
                if let Some(tr) = &c.transition_out {
                    let _ = write!(out, " out={}:{}", tr.kind, tr.duration);
                }
                if let Some(text) = &c.text {
                    let _ = write!(out, " text={text:?}");
                }
                if let Some(job) = &c.job {
                    let _ = write!(out, " job={}:{}", job.id, job.state);
                    if let Some(e) = &job.error {
                        let _ = write!(out, " error={e:?}");
                    }
                }
                out.push('\n');
            }
        }
        for m in &self.markers {
            let _ = writeln!(out, "marker {} at={} {:?}", m.id, m.time, m.label);
        }
        for c in &self.comments {
            let _ = writeln!(
                out,
                "comment {} at={}{} by {:?}: {:?}",
                c.id,
                c.start,
                c.end.map(|e| format!("..{e}")).unwrap_or_default(),
                c.author,
                c.text
            );
        }
        out
    }
}

/// What one track shows over one span of the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub start: i64,
    pub end: i64,
    pub clip: String,
    /// Source time at `start`.
    pub source_start: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackPlan {
    pub track: String,
    pub kind: TrackKind,
    pub muted: bool,
    pub segments: Vec<Segment>,
}

/// The render rule for overlaps: the clip that starts later is on top; for equal starts, the
/// one with the greater id. Every peer sorts by the same fields, so every peer renders the same.
fn wins<'a>(a: &'a Clip, b: &'a Clip) -> &'a Clip {
    if (b.start, &b.id) > (a.start, &a.id) { b } else { a }
}

fn resolve_track(clips: &[Clip]) -> Vec<Segment> {
    let valid: Vec<&Clip> = clips
        .iter()
        .filter(|c| c.duration() > 0 && c.speed_num > 0 && c.speed_den > 0)
        .collect();
    let mut cuts: Vec<i64> = valid.iter().flat_map(|c| [c.start, c.end()]).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut segments: Vec<Segment> = Vec::new();
    for pair in cuts.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let top = valid
            .iter()
            .filter(|c| c.start <= start && c.end() >= end)
            .max_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
        let Some(top) = top else { continue };
        match segments.last_mut() {
            Some(last) if last.clip == top.id && last.end == start => last.end = end,
            _ => segments.push(Segment {
                start,
                end,
                clip: top.id.clone(),
                source_start: top.source_time_at(start),
            }),
        }
    }
    segments
}
