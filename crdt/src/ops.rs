//! Typed edit operations on a timeline document.
//!
//! An operation addresses tracks and clips by id, never by position, so it means the same thing
//! whenever and wherever it is applied. Operations check what a user could get wrong (an
//! unknown id, a locked track, a split outside the clip) and return an [`EditError`] without
//! writing anything; they never check what only concurrency can cause — that is for
//! [`crate::Timeline::validate`].

use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ROOT, ScalarValue};

use crate::order::key_between;
use crate::schema::{self, get_map, get_str};
use crate::timeline::{Timeline, TrackKind, Transition};

/// One edit a user makes.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum EditOp {
    SetTitle {
        title: String,
    },
    /// Adds a track after `after` (or at the top when absent).
    AddTrack {
        id: String,
        kind: TrackKind,
        name: String,
        #[serde(default)]
        after: Option<String>,
    },
    RenameTrack {
        id: String,
        name: String,
    },
    /// Moves a track so it sits directly before `before` (or last when absent).
    ReorderTrack {
        id: String,
        #[serde(default)]
        before: Option<String>,
    },
    SetTrackFlags {
        id: String,
        #[serde(default)]
        muted: Option<bool>,
        #[serde(default)]
        locked: Option<bool>,
    },
    /// Removes a track and every clip on it.
    RemoveTrack {
        id: String,
    },
    InsertClip {
        id: String,
        track: String,
        asset: String,
        source_in: i64,
        source_out: i64,
        start: i64,
    },
    /// Places a placeholder clip for a submitted job: no asset yet, `duration` long; it becomes
    /// the result when the job succeeds ([`EditOp::ResolveJob`]).
    PlaceJob {
        id: String,
        track: String,
        job: i64,
        start: i64,
        duration: i64,
    },
    /// Records a job's outcome on its clip: the result `asset` on success (the clip then plays
    /// it from 0 for its duration), or the state and error otherwise.
    ResolveJob {
        clip: String,
        state: String,
        #[serde(default)]
        asset: Option<String>,
        #[serde(default)]
        error: Option<String>,
    },
    /// Adds a title: a clip on a text track showing `text` for `duration`.
    InsertText {
        id: String,
        track: String,
        text: String,
        start: i64,
        duration: i64,
    },
    SetText {
        id: String,
        text: String,
    },
    /// Moves a clip to `start`, on `track` if given (the clip keeps its id and any concurrent
    /// edits to it).
    MoveClip {
        id: String,
        start: i64,
        #[serde(default)]
        track: Option<String>,
    },
    /// Sets the source range; trimming the head moves the clip's start by the same amount so
    /// the rest of the clip stays where it was.
    TrimClip {
        id: String,
        source_in: i64,
        source_out: i64,
    },
    /// Splits a clip at timeline time `at`; the right part gets `new_id`.
    SplitClip {
        id: String,
        at: i64,
        new_id: String,
    },
    RemoveClip {
        id: String,
    },
    /// Removes a clip and pulls every later clip on its track left by its length.
    RippleDeleteClip {
        id: String,
    },
    SetSpeed {
        id: String,
        num: i64,
        den: i64,
    },
    SetVolume {
        id: String,
        volume: f64,
    },
    /// Sets (or clears) the transition at a clip's head, or at its tail when `out` is true.
    SetTransition {
        clip: String,
        #[serde(default)]
        transition: Option<Transition>,
        #[serde(default)]
        out: bool,
    },
    AddMarker {
        id: String,
        time: i64,
        label: String,
        #[serde(default)]
        color: String,
    },
    RemoveMarker {
        id: String,
    },
    AddComment {
        id: String,
        author: String,
        text: String,
        start: i64,
        #[serde(default)]
        end: Option<i64>,
        #[serde(default)]
        created_at: i64,
    },
}

/// Why an edit was not made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EditError {
    #[error("no {what} with id {id:?}")]
    NotFound { what: &'static str, id: String },
    #[error("a {what} with id {id:?} already exists")]
    Exists { what: &'static str, id: String },
    #[error("track {0:?} is locked: unlock it to edit its clips")]
    Locked(String),
    #[error("invalid range: {0}")]
    InvalidRange(&'static str),
    #[error("track {0:?} is not a text track: titles go on text tracks")]
    NotText(String),
    #[error("unknown transition {0:?}: use dissolve, fade_black, wipe_left, wipe_right, wipe_up or wipe_down")]
    UnknownTransition(String),
    #[error("clip {0:?} is not a job placeholder")]
    NotAJob(String),
    #[error("the document has no {0} container: it was not created by Moviola")]
    MissingContainer(&'static str),
    #[error("automerge: {0}")]
    Automerge(String),
}

impl From<automerge::AutomergeError> for EditError {
    fn from(e: automerge::AutomergeError) -> Self {
        EditError::Automerge(e.to_string())
    }
}

/// Writes a new clip with every field a clip has (defaults for speed, volume, effects,
/// transition) under `clips/id`.
#[allow(clippy::too_many_arguments)]
fn new_clip<T: Transactable>(
    tx: &mut T,
    clips: &ObjId,
    id: &str,
    track: &str,
    asset: &str,
    source_in: i64,
    source_out: i64,
    start: i64,
) -> Result<ObjId, EditError> {
    let obj = tx.put_object(clips, id, ObjType::Map)?;
    tx.put(&obj, "track", track)?;
    tx.put(&obj, "asset", asset)?;
    tx.put(&obj, "source_in", source_in)?;
    tx.put(&obj, "source_out", source_out)?;
    tx.put(&obj, "start", start)?;
    tx.put(&obj, "speed_num", 1)?;
    tx.put(&obj, "speed_den", 1)?;
    tx.put(&obj, "volume", 1.0)?;
    tx.put_object(&obj, "effects", ObjType::Map)?;
    tx.put(&obj, "transition_in", ScalarValue::Null)?;
    Ok(obj)
}

fn container<T: Transactable>(tx: &T, key: &'static str) -> Result<ObjId, EditError> {
    get_map(tx, &ROOT, key).ok_or(EditError::MissingContainer(key))
}

fn entry<T: Transactable>(tx: &T, key: &'static str, what: &'static str, id: &str) -> Result<ObjId, EditError> {
    get_map(tx, &container(tx, key)?, id).ok_or_else(|| EditError::NotFound { what, id: id.to_owned() })
}

fn check_unlocked<T: Transactable>(tx: &T, track_id: &str) -> Result<ObjId, EditError> {
    let track = entry(tx, schema::KEY_TRACKS, "track", track_id)?;
    if schema::get_bool(tx, &track, "locked").unwrap_or(false) {
        return Err(EditError::Locked(track_id.to_owned()));
    }
    Ok(track)
}

fn clip_track<T: Transactable>(tx: &T, clip: &ObjId) -> Result<String, EditError> {
    let track = get_str(tx, clip, "track").unwrap_or_default();
    check_unlocked(tx, &track)?;
    Ok(track)
}

fn check_range(source_in: i64, source_out: i64) -> Result<(), EditError> {
    if source_in < 0 || source_out <= source_in {
        return Err(EditError::InvalidRange(
            "source_out must be greater than source_in, and both at least 0",
        ));
    }
    Ok(())
}

/// Applies one operation inside a transaction. Nothing is written if it returns an error.
pub fn apply<T: Transactable>(tx: &mut T, op: &EditOp) -> Result<(), EditError> {
    // Every arm checks everything before its first write, so an error leaves nothing behind in
    // the caller's transaction.
    let view = Timeline::read(tx);
    match op {
        EditOp::SetTitle { title } => {
            tx.put(ROOT, schema::KEY_TITLE, title.as_str())?;
        }
        EditOp::AddTrack { id, kind, name, after } => {
            let tracks = container(tx, schema::KEY_TRACKS)?;
            if get_map(tx, &tracks, id).is_some() {
                return Err(EditError::Exists {
                    what: "track",
                    id: id.clone(),
                });
            }
            let (lower, upper) = match after {
                Some(after) => {
                    let pos = view.tracks.iter().position(|t| &t.id == after).ok_or_else(|| EditError::NotFound {
                        what: "track",
                        id: after.clone(),
                    })?;
                    (
                        Some(view.tracks[pos].order.as_str()),
                        view.tracks.get(pos + 1).map(|t| t.order.as_str()),
                    )
                }
                None => (view.tracks.last().map(|t| t.order.as_str()), None),
            };
            let order = key_between(lower, upper);
            let obj = tx.put_object(&tracks, id.as_str(), ObjType::Map)?;
            tx.put(&obj, "kind", kind.as_str())?;
            tx.put(&obj, "name", name.as_str())?;
            tx.put(&obj, "order", order)?;
            tx.put(&obj, "muted", false)?;
            tx.put(&obj, "locked", false)?;
        }
        EditOp::RenameTrack { id, name } => {
            let obj = entry(tx, schema::KEY_TRACKS, "track", id)?;
            tx.put(&obj, "name", name.as_str())?;
        }
        EditOp::ReorderTrack { id, before } => {
            let obj = entry(tx, schema::KEY_TRACKS, "track", id)?;
            let others: Vec<_> = view.tracks.iter().filter(|t| &t.id != id).collect();
            let (lower, upper) = match before {
                Some(before) => {
                    let pos = others.iter().position(|t| &t.id == before).ok_or_else(|| EditError::NotFound {
                        what: "track",
                        id: before.clone(),
                    })?;
                    (
                        pos.checked_sub(1).map(|p| others[p].order.as_str()),
                        Some(others[pos].order.as_str()),
                    )
                }
                None => (others.last().map(|t| t.order.as_str()), None),
            };
            tx.put(&obj, "order", key_between(lower, upper))?;
        }
        EditOp::SetTrackFlags { id, muted, locked } => {
            let obj = entry(tx, schema::KEY_TRACKS, "track", id)?;
            if let Some(muted) = muted {
                tx.put(&obj, "muted", *muted)?;
            }
            if let Some(locked) = locked {
                tx.put(&obj, "locked", *locked)?;
            }
        }
        EditOp::RemoveTrack { id } => {
            let tracks = container(tx, schema::KEY_TRACKS)?;
            check_unlocked(tx, id)?;
            let clips = container(tx, schema::KEY_CLIPS)?;
            let on_track: Vec<String> = view
                .track(id)
                .map(|t| t.clips.iter().map(|c| c.id.clone()).collect())
                .unwrap_or_default();
            for clip in on_track {
                tx.delete(&clips, clip.as_str())?;
            }
            tx.delete(&tracks, id.as_str())?;
        }
        EditOp::InsertClip {
            id,
            track,
            asset,
            source_in,
            source_out,
            start,
        } => {
            check_unlocked(tx, track)?;
            check_range(*source_in, *source_out)?;
            if *start < 0 {
                return Err(EditError::InvalidRange("start must be at least 0"));
            }
            let clips = container(tx, schema::KEY_CLIPS)?;
            if get_map(tx, &clips, id).is_some() {
                return Err(EditError::Exists {
                    what: "clip",
                    id: id.clone(),
                });
            }
            new_clip(tx, &clips, id, track, asset, *source_in, *source_out, *start)?;
        }
        EditOp::PlaceJob {
            id,
            track,
            job,
            start,
            duration,
        } => {
            check_unlocked(tx, track)?;
            if *start < 0 || *duration <= 0 {
                return Err(EditError::InvalidRange(
                    "a job placeholder needs start >= 0 and a positive duration",
                ));
            }
            let clips = container(tx, schema::KEY_CLIPS)?;
            if get_map(tx, &clips, id).is_some() {
                return Err(EditError::Exists {
                    what: "clip",
                    id: id.clone(),
                });
            }
            let obj = new_clip(tx, &clips, id, track, "", 0, *duration, *start)?;
            let j = tx.put_object(&obj, "job", ObjType::Map)?;
            tx.put(&j, "id", *job)?;
            tx.put(&j, "state", "queued")?;
        }
        EditOp::InsertText {
            id,
            track,
            text,
            start,
            duration,
        } => {
            check_unlocked(tx, track)?;
            if view.track(track).is_some_and(|t| t.kind != TrackKind::Text) {
                return Err(EditError::NotText(track.clone()));
            }
            if *start < 0 || *duration <= 0 {
                return Err(EditError::InvalidRange("a title needs start >= 0 and a positive duration"));
            }
            let clips = container(tx, schema::KEY_CLIPS)?;
            if get_map(tx, &clips, id).is_some() {
                return Err(EditError::Exists {
                    what: "clip",
                    id: id.clone(),
                });
            }
            let obj = new_clip(tx, &clips, id, track, "", 0, *duration, *start)?;
            tx.put(&obj, "text", text.as_str())?;
        }
        EditOp::SetText { id, text } => {
            let obj = entry(tx, schema::KEY_CLIPS, "clip", id)?;
            clip_track(tx, &obj)?;
            tx.put(&obj, "text", text.as_str())?;
        }
        EditOp::ResolveJob { clip, state, asset, error } => {
            let obj = entry(tx, schema::KEY_CLIPS, "clip", clip)?;
            let Some(j) = get_map(tx, &obj, "job") else {
                return Err(EditError::NotAJob(clip.clone()));
            };
            if let Some(asset) = asset {
                tx.put(&obj, "asset", asset.as_str())?;
            }
            tx.put(&j, "state", state.as_str())?;
            match error {
                Some(e) => tx.put(&j, "error", e.as_str())?,
                None => tx.put(&j, "error", ScalarValue::Null)?,
            }
        }
        EditOp::MoveClip { id, start, track } => {
            let obj = entry(tx, schema::KEY_CLIPS, "clip", id)?;
            clip_track(tx, &obj)?;
            if *start < 0 {
                return Err(EditError::InvalidRange("start must be at least 0"));
            }
            if let Some(track) = track {
                check_unlocked(tx, track)?;
                tx.put(&obj, "track", track.as_str())?;
            }
            tx.put(&obj, "start", *start)?;
        }
        EditOp::TrimClip { id, source_in, source_out } => {
            let obj = entry(tx, schema::KEY_CLIPS, "clip", id)?;
            clip_track(tx, &obj)?;
            check_range(*source_in, *source_out)?;
            let clip = view.clip(id).ok_or_else(|| EditError::NotFound {
                what: "clip",
                id: id.clone(),
            })?;
            let shift = (i128::from(*source_in - clip.source_in) * i128::from(clip.speed_den) / i128::from(clip.speed_num.max(1))) as i64;
            let start = clip.start + shift;
            if start < 0 {
                return Err(EditError::InvalidRange("trimming the head would move the clip before 0"));
            }
            if *source_in != clip.source_in {
                tx.put(&obj, "source_in", *source_in)?;
                tx.put(&obj, "start", start)?;
            }
            if *source_out != clip.source_out {
                tx.put(&obj, "source_out", *source_out)?;
            }
        }
        EditOp::SplitClip { id, at, new_id } => {
            let obj = entry(tx, schema::KEY_CLIPS, "clip", id)?;
            clip_track(tx, &obj)?;
            let clip = view
                .clip(id)
                .ok_or_else(|| EditError::NotFound {
                    what: "clip",
                    id: id.clone(),
                })?
                .clone();
            if *at <= clip.start || *at >= clip.end() {
                return Err(EditError::InvalidRange("split point must lie strictly inside the clip"));
            }
            let clips = container(tx, schema::KEY_CLIPS)?;
            if get_map(tx, &clips, new_id).is_some() {
                return Err(EditError::Exists {
                    what: "clip",
                    id: new_id.clone(),
                });
            }
            let cut = clip.source_time_at(*at);
            tx.put(&obj, "source_out", cut)?;
            let right = tx.put_object(&clips, new_id.as_str(), ObjType::Map)?;
            tx.put(&right, "track", clip.track.as_str())?;
            tx.put(&right, "asset", clip.asset.as_str())?;
            tx.put(&right, "source_in", cut)?;
            tx.put(&right, "source_out", clip.source_out)?;
            tx.put(&right, "start", *at)?;
            tx.put(&right, "speed_num", clip.speed_num)?;
            tx.put(&right, "speed_den", clip.speed_den)?;
            tx.put(&right, "volume", clip.volume)?;
            tx.put_object(&right, "effects", ObjType::Map)?;
            tx.put(&right, "transition_in", ScalarValue::Null)?;
            if let Some(text) = &clip.text {
                tx.put(&right, "text", text.as_str())?;
            }
            // The tail transition belongs to the tail.
            if let Some(t) = &clip.transition_out {
                let t_obj = tx.put_object(&right, "transition_out", ObjType::Map)?;
                tx.put(&t_obj, "kind", t.kind.as_str())?;
                tx.put(&t_obj, "duration", t.duration)?;
                tx.put(&obj, "transition_out", ScalarValue::Null)?;
            }
        }
        EditOp::RemoveClip { id } => {
            let obj = entry(tx, schema::KEY_CLIPS, "clip", id)?;
            clip_track(tx, &obj)?;
            tx.delete(&container(tx, schema::KEY_CLIPS)?, id.as_str())?;
        }
        EditOp::RippleDeleteClip { id } => {
            let obj = entry(tx, schema::KEY_CLIPS, "clip", id)?;
            let track_id = clip_track(tx, &obj)?;
            let clip = view
                .clip(id)
                .ok_or_else(|| EditError::NotFound {
                    what: "clip",
                    id: id.clone(),
                })?
                .clone();
            let clips = container(tx, schema::KEY_CLIPS)?;
            let gap = clip.duration();
            tx.delete(&clips, id.as_str())?;
            let later: Vec<(String, i64)> = view
                .track(&track_id)
                .map(|t| {
                    t.clips
                        .iter()
                        .filter(|c| c.id != clip.id && c.start >= clip.end())
                        .map(|c| (c.id.clone(), c.start))
                        .collect()
                })
                .unwrap_or_default();
            for (later_id, start) in later {
                if let Some(later_obj) = get_map(tx, &clips, &later_id) {
                    tx.put(&later_obj, "start", start - gap)?;
                }
            }
        }
        EditOp::SetSpeed { id, num, den } => {
            let obj = entry(tx, schema::KEY_CLIPS, "clip", id)?;
            clip_track(tx, &obj)?;
            if *num <= 0 || *den <= 0 {
                return Err(EditError::InvalidRange("speed must be a positive fraction"));
            }
            tx.put(&obj, "speed_num", *num)?;
            tx.put(&obj, "speed_den", *den)?;
        }
        EditOp::SetVolume { id, volume } => {
            let obj = entry(tx, schema::KEY_CLIPS, "clip", id)?;
            clip_track(tx, &obj)?;
            if !volume.is_finite() || *volume < 0.0 {
                return Err(EditError::InvalidRange("volume must be a finite gain of at least 0"));
            }
            tx.put(&obj, "volume", *volume)?;
        }
        EditOp::SetTransition { clip, transition, out } => {
            let obj = entry(tx, schema::KEY_CLIPS, "clip", clip)?;
            clip_track(tx, &obj)?;
            let key = if *out { "transition_out" } else { "transition_in" };
            match transition {
                Some(t) => {
                    if t.duration <= 0 {
                        return Err(EditError::InvalidRange("transition duration must be positive"));
                    }
                    if crate::plan::TransitionKind::parse(&t.kind).is_none() {
                        return Err(EditError::UnknownTransition(t.kind.clone()));
                    }
                    let t_obj = tx.put_object(&obj, key, ObjType::Map)?;
                    tx.put(&t_obj, "kind", t.kind.as_str())?;
                    tx.put(&t_obj, "duration", t.duration)?;
                }
                None => tx.put(&obj, key, ScalarValue::Null)?,
            }
        }
        EditOp::AddMarker { id, time, label, color } => {
            let markers = container(tx, schema::KEY_MARKERS)?;
            if get_map(tx, &markers, id).is_some() {
                return Err(EditError::Exists {
                    what: "marker",
                    id: id.clone(),
                });
            }
            let obj = tx.put_object(&markers, id.as_str(), ObjType::Map)?;
            tx.put(&obj, "time", *time)?;
            tx.put(&obj, "label", label.as_str())?;
            tx.put(&obj, "color", color.as_str())?;
        }
        EditOp::RemoveMarker { id } => {
            entry(tx, schema::KEY_MARKERS, "marker", id)?;
            tx.delete(&container(tx, schema::KEY_MARKERS)?, id.as_str())?;
        }
        EditOp::AddComment {
            id,
            author,
            text,
            start,
            end,
            created_at,
        } => {
            if end.is_some_and(|end| end < *start) {
                return Err(EditError::InvalidRange("a comment's end must not precede its start"));
            }
            let comments = container(tx, schema::KEY_COMMENTS)?;
            if get_map(tx, &comments, id).is_some() {
                return Err(EditError::Exists {
                    what: "comment",
                    id: id.clone(),
                });
            }
            let obj = tx.put_object(&comments, id.as_str(), ObjType::Map)?;
            tx.put(&obj, "author", author.as_str())?;
            tx.put(&obj, "text", text.as_str())?;
            tx.put(&obj, "start", *start)?;
            if let Some(end) = end {
                tx.put(&obj, "end", *end)?;
            }
            tx.put(&obj, "created_at", *created_at)?;
        }
    }
    Ok(())
}

/// Applies `op` to an [`automerge::AutoCommit`] as one change, or leaves it untouched.
pub fn apply_and_commit(doc: &mut automerge::AutoCommit, op: &EditOp) -> Result<(), EditError> {
    apply(doc, op)?;
    doc.commit();
    Ok(())
}
