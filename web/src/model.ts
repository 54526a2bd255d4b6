// The timeline document (crdt/src/schema.rs) as the studio reads and edits it. Edits mirror
// `moviola_crdt::EditOp` (crdt/src/ops.rs) field for field, so the server's view, the export
// plan and every peer agree. Strings Moviola's server writes arrive as automerge
// ImmutableString objects: every read goes through `str()`.

export const TICKS = 705_600_000; // flicks per second

export type Transition = { kind: string; duration: number } | null;
export type Clip = {
  id: string;
  track: string;
  asset: string;
  source_in: number;
  source_out: number;
  start: number;
  speed_num: number;
  speed_den: number;
  volume: number;
  transition_in: Transition;
  transition_out: Transition;
  text: string | null;
  job: { id: number; state: string; error: string | null } | null;
};
export type Track = { id: string; kind: "video" | "audio" | "text"; name: string; order: string; muted: boolean; locked: boolean };
export type Marker = { id: string; time: number; label: string; color: string };
export type Comment = { id: string; author: string; text: string; start: number; end: number | null; created_at: number };
export type View = {
  title: string;
  settings: { width: number; height: number; fps_num: number; fps_den: number };
  tracks: Track[];
  clips: Clip[];
  markers: Marker[];
  comments: Comment[];
};

const str = (v: unknown): string => (v === null || v === undefined ? "" : String(v));
const num = (v: unknown, d = 0): number => (typeof v === "number" && Number.isFinite(v) ? v : d);

export function clipDuration(c: Clip): number {
  return Math.floor(((c.source_out - c.source_in) * c.speed_den) / Math.max(1, c.speed_num));
}
export const clipEnd = (c: Clip) => c.start + clipDuration(c);

function transition(v: any): Transition {
  if (!v || typeof v !== "object") return null;
  return { kind: str(v.kind), duration: num(v.duration) };
}

export function read(doc: any): View {
  const tracks: Track[] = Object.entries(doc?.tracks ?? {}).map(([id, t]: [string, any]) => ({
    id,
    kind: str(t.kind) as Track["kind"],
    name: str(t.name),
    order: str(t.order),
    muted: !!t.muted,
    locked: !!t.locked,
  }));
  tracks.sort((a, b) => (a.order === b.order ? (a.id < b.id ? -1 : 1) : a.order < b.order ? -1 : 1));
  const clips: Clip[] = Object.entries(doc?.clips ?? {}).map(([id, c]: [string, any]) => ({
    id,
    track: str(c.track),
    asset: str(c.asset),
    source_in: num(c.source_in),
    source_out: num(c.source_out),
    start: num(c.start),
    speed_num: num(c.speed_num, 1),
    speed_den: num(c.speed_den, 1),
    volume: num(c.volume, 1),
    transition_in: transition(c.transition_in),
    transition_out: transition(c.transition_out),
    text: c.text === undefined || c.text === null ? null : str(c.text),
    job: c.job ? { id: num(c.job.id), state: str(c.job.state), error: c.job.error ? str(c.job.error) : null } : null,
  }));
  clips.sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : 1));
  const markers: Marker[] = Object.entries(doc?.markers ?? {}).map(([id, m]: [string, any]) => ({
    id,
    time: num(m.time),
    label: str(m.label),
    color: str(m.color),
  }));
  const comments: Comment[] = Object.entries(doc?.comments ?? {}).map(([id, c]: [string, any]) => ({
    id,
    author: str(c.author),
    text: str(c.text),
    start: num(c.start),
    end: c.end === undefined || c.end === null ? null : num(c.end),
    created_at: num(c.created_at),
  }));
  const s = doc?.settings ?? {};
  return {
    title: str(doc?.title),
    settings: { width: num(s.width, 1920), height: num(s.height, 1080), fps_num: num(s.fps_num, 30), fps_den: num(s.fps_den, 1) },
    tracks,
    clips,
    markers: markers.sort((a, b) => a.time - b.time),
    comments: comments.sort((a, b) => a.start - b.start),
  };
}

export const newId = (prefix: string) => `${prefix}-${crypto.randomUUID().replace(/-/g, "").slice(0, 12)}`;

/** Fractional order key strictly between `a` and `b` (crdt/src/order.rs, base 36). */
export function keyBetween(a: string | null, b: string | null): string {
  const digits = "0123456789abcdefghijklmnopqrstuvwxyz";
  const lower = a ?? "";
  let upper: string | null = b !== null && b > lower ? b : null;
  let out = "";
  for (let i = 0; ; i++) {
    const lo = i < lower.length ? digits.indexOf(lower[i]) : 0;
    const hi = upper !== null ? (i < upper.length ? digits.indexOf(upper[i]) : 36) : 36;
    if (hi > lo + 1) return out + digits[lo + Math.floor((hi - lo) / 2)];
    out += digits[lo];
    if (hi === lo + 1) upper = null;
  }
}

// ---- edits (each runs inside handle.change) -------------------------------------------------

export function newClip(d: any, c: { id: string; track: string; asset: string; source_in: number; source_out: number; start: number }) {
  d.clips[c.id] = {
    track: c.track,
    asset: c.asset,
    source_in: c.source_in,
    source_out: c.source_out,
    start: c.start,
    speed_num: 1,
    speed_den: 1,
    volume: 1.0,
    effects: {},
    transition_in: null,
  };
}

export function addTrack(d: any, kind: Track["kind"], name: string, view: View) {
  const last = view.tracks[view.tracks.length - 1];
  d.tracks[newId("t")] = { kind, name, order: keyBetween(last ? last.order : null, null), muted: false, locked: false };
}

export function moveClip(d: any, id: string, start: number, track?: string) {
  const c = d.clips[id];
  if (!c) return;
  c.start = Math.max(0, Math.round(start));
  if (track && track !== String(c.track)) c.track = track;
}

export function trimClip(d: any, clip: Clip, sourceIn: number, sourceOut: number) {
  const c = d.clips[clip.id];
  if (!c || sourceOut <= sourceIn || sourceIn < 0) return;
  const shift = Math.trunc(((sourceIn - clip.source_in) * clip.speed_den) / Math.max(1, clip.speed_num));
  if (sourceIn !== clip.source_in) {
    c.source_in = sourceIn;
    c.start = Math.max(0, clip.start + shift);
  }
  if (sourceOut !== clip.source_out) c.source_out = sourceOut;
}

export function splitClip(d: any, clip: Clip, at: number): string | null {
  if (at <= clip.start || at >= clipEnd(clip)) return null;
  const cut = clip.source_in + Math.trunc(((at - clip.start) * clip.speed_num) / Math.max(1, clip.speed_den));
  const id = newId("c");
  d.clips[clip.id].source_out = cut;
  d.clips[id] = {
    track: clip.track,
    asset: clip.asset,
    source_in: cut,
    source_out: clip.source_out,
    start: at,
    speed_num: clip.speed_num,
    speed_den: clip.speed_den,
    volume: clip.volume,
    effects: {},
    transition_in: null,
  };
  if (clip.text !== null) d.clips[id].text = clip.text;
  if (clip.transition_out) {
    d.clips[id].transition_out = { ...clip.transition_out };
    d.clips[clip.id].transition_out = null;
  }
  return id;
}

export function removeClip(d: any, id: string) {
  delete d.clips[id];
}

export function rippleDelete(d: any, clip: Clip, view: View) {
  const gap = clipDuration(clip);
  delete d.clips[clip.id];
  for (const c of view.clips) {
    if (c.track === clip.track && c.id !== clip.id && c.start >= clipEnd(clip)) d.clips[c.id].start = c.start - gap;
  }
}

export function setTransition(d: any, id: string, t: Transition, out = false) {
  const c = d.clips[id];
  if (!c) return;
  c[out ? "transition_out" : "transition_in"] = t ? { kind: t.kind, duration: Math.round(t.duration) } : null;
}

export function insertText(d: any, track: string, text: string, start: number, duration: number) {
  const id = newId("title");
  newClip(d, { id, track, asset: "", source_in: 0, source_out: duration, start });
  d.clips[id].text = text;
}

export function addMarker(d: any, time: number, label: string) {
  d.markers[newId("m")] = { time: Math.round(time), label, color: "#f5a524" };
}

export function addComment(d: any, author: string, text: string, start: number, end: number | null) {
  const c: any = { author, text, start: Math.round(start), created_at: Date.now() };
  if (end !== null) c.end = Math.round(end);
  d.comments[newId("k")] = c;
}

// ---- undo of one's own edits -----------------------------------------------------------------

type Snapshot = Record<string, Record<string, string | undefined>>;
const TRACKED = ["clips", "markers", "comments", "tracks"] as const;

function snapshot(doc: any): Snapshot {
  const out: Snapshot = {};
  for (const key of TRACKED) {
    out[key] = {};
    for (const [id, v] of Object.entries(doc?.[key] ?? {})) out[key][id] = JSON.stringify(v);
  }
  return out;
}

/** Entries an edit changed: `[container, id, before, after]` (JSON or undefined when absent). */
export type Delta = [string, string, string | undefined, string | undefined][];

function diff(before: Snapshot, after: Snapshot): Delta {
  const out: Delta = [];
  for (const key of TRACKED) {
    const ids = new Set([...Object.keys(before[key]), ...Object.keys(after[key])]);
    for (const id of ids) if (before[key][id] !== after[key][id]) out.push([key, id, before[key][id], after[key][id]]);
  }
  return out;
}

/** Puts the entries of a delta back to one side. Only what this user's edit touched changes,
 * so a collaborator's later edits elsewhere survive an undo. */
function applySide(d: any, delta: Delta, side: 2 | 3) {
  for (const entry of delta) {
    const [key, id] = entry;
    const v = entry[side];
    if (v === undefined) delete d[key][id];
    else d[key][id] = JSON.parse(v);
  }
}

export class History {
  private undos: Delta[] = [];
  private redos: Delta[] = [];
  constructor(private handle: { change: (f: (d: any) => void) => void; doc: () => any }) {}

  /** Runs an edit and remembers how to undo it. */
  edit(f: (d: any) => void) {
    const before = snapshot(this.handle.doc());
    this.handle.change(f);
    const delta = diff(before, snapshot(this.handle.doc()));
    if (delta.length) {
      this.undos.push(delta);
      this.redos = [];
    }
  }
  undo() {
    const delta = this.undos.pop();
    if (!delta) return;
    this.handle.change((d) => applySide(d, delta, 2));
    this.redos.push(delta);
  }
  redo() {
    const delta = this.redos.pop();
    if (!delta) return;
    this.handle.change((d) => applySide(d, delta, 3));
    this.undos.push(delta);
  }
  get canUndo() {
    return this.undos.length > 0;
  }
  get canRedo() {
    return this.redos.length > 0;
  }
}
