//! The timeline document's schema: key names, the one-time creation of shared containers, and
//! lenient typed reads of automerge values.
//!
//! Layout (all containers are maps keyed by a random id, see "Why maps keyed by id?" in
//! `docs/architecture.md`):
//!
//! ```text
//! ROOT
//! ├─ schema: int                  SCHEMA_VERSION
//! ├─ title: str
//! ├─ settings: { width, height, fps_num, fps_den, sample_rate }
//! ├─ tracks:   { <track id>:   { kind, name, order, muted, locked } }
//! ├─ clips:    { <clip id>:    { track, asset, source_in, source_out, start,
//! │                              speed_num, speed_den, volume, effects: {..},
//! │                              transition_in: { kind, duration } | null } }
//! ├─ markers:  { <marker id>:  { time, label, color } }
//! └─ comments: { <comment id>: { author, text, start, end, created_at } }
//! ```
//!
//! Every time is an integer in ticks (see [`crate::time`]).

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};

use crate::time::FrameRate;

/// Version of the layout above, stored at `ROOT.schema`.
pub const SCHEMA_VERSION: i64 = 1;

pub const KEY_SCHEMA: &str = "schema";
pub const KEY_TITLE: &str = "title";
pub const KEY_SETTINGS: &str = "settings";
pub const KEY_TRACKS: &str = "tracks";
pub const KEY_CLIPS: &str = "clips";
pub const KEY_MARKERS: &str = "markers";
pub const KEY_COMMENTS: &str = "comments";

/// Output settings of a timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    pub width: i64,
    pub height: i64,
    pub frame_rate: FrameRate,
    pub sample_rate: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            width: 1920,
            height: 1080,
            frame_rate: FrameRate { num: 30, den: 1 },
            sample_rate: 48_000,
        }
    }
}

/// Creates a new timeline document with all of its shared containers.
///
/// This runs exactly once per project, on the server, when the project is created. Clients
/// never create `tracks`, `clips`, … themselves: two clients creating `tracks` concurrently
/// would make two conflicting maps, and the edits in the losing one would vanish from view.
pub fn new_document(actor: ActorId, title: &str, settings: Settings) -> AutoCommit {
    let mut doc = AutoCommit::new().with_actor(actor);
    doc.put(ROOT, KEY_SCHEMA, SCHEMA_VERSION).expect("put on a fresh document");
    doc.put(ROOT, KEY_TITLE, title).expect("put on a fresh document");
    let settings_obj = doc.put_object(ROOT, KEY_SETTINGS, ObjType::Map).expect("put on a fresh document");
    write_settings(&mut doc, &settings_obj, settings).expect("put on a fresh document");
    for key in [KEY_TRACKS, KEY_CLIPS, KEY_MARKERS, KEY_COMMENTS] {
        doc.put_object(ROOT, key, ObjType::Map).expect("put on a fresh document");
    }
    doc.commit();
    doc
}

pub(crate) fn write_settings<T: Transactable>(tx: &mut T, obj: &ObjId, settings: Settings) -> Result<(), automerge::AutomergeError> {
    tx.put(obj, "width", settings.width)?;
    tx.put(obj, "height", settings.height)?;
    tx.put(obj, "fps_num", settings.frame_rate.num)?;
    tx.put(obj, "fps_den", settings.frame_rate.den)?;
    tx.put(obj, "sample_rate", settings.sample_rate)?;
    Ok(())
}

/// The object id of a map stored at `obj[key]`, if there is one.
pub(crate) fn get_map<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(obj, key).ok()?? {
        (Value::Object(ObjType::Map), id) => Some(id),
        _ => None,
    }
}

/// A string at `obj[key]`: a plain string scalar, or a text object (what the JavaScript
/// automerge writes for a plain string assignment).
pub(crate) fn get_str<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Option<String> {
    match doc.get(obj, key).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        (Value::Object(ObjType::Text), id) => doc.text(&id).ok(),
        _ => None,
    }
}

/// An integer at `obj[key]`. JavaScript numbers may arrive as `f64`; whole ones are accepted.
pub(crate) fn get_i64<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Option<i64> {
    match doc.get(obj, key).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Int(i) => Some(*i),
            ScalarValue::Uint(u) => i64::try_from(*u).ok(),
            ScalarValue::F64(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
            ScalarValue::Counter(c) => Some(i64::from(c)),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn get_f64<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Option<f64> {
    match doc.get(obj, key).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Int(i) => Some(*i as f64),
            ScalarValue::Uint(u) => Some(*u as f64),
            ScalarValue::F64(f) if f.is_finite() => Some(*f),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn get_bool<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Option<bool> {
    match doc.get(obj, key).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Boolean(b) => Some(*b),
            _ => None,
        },
        _ => None,
    }
}

/// Reads the settings map, falling back to defaults field by field.
pub(crate) fn read_settings<D: ReadDoc>(doc: &D) -> Settings {
    let default = Settings::default();
    let Some(obj) = get_map(doc, &ROOT, KEY_SETTINGS) else {
        return default;
    };
    let frame_rate = FrameRate {
        num: get_i64(doc, &obj, "fps_num").unwrap_or(default.frame_rate.num),
        den: get_i64(doc, &obj, "fps_den").unwrap_or(default.frame_rate.den),
    };
    Settings {
        width: get_i64(doc, &obj, "width").unwrap_or(default.width),
        height: get_i64(doc, &obj, "height").unwrap_or(default.height),
        frame_rate: if frame_rate.is_valid() { frame_rate } else { default.frame_rate },
        sample_rate: get_i64(doc, &obj, "sample_rate").unwrap_or(default.sample_rate),
    }
}
