// The studio: timeline editor on the project's automerge document, presence, preview, asset
// library, jobs and export. Every panel talks to the real server: `/sync` through
// automerge-repo (IndexedDB keeps edits made offline until the socket is back), `/events` for
// job progress, the HTTP API for the rest.
import { Repo, type DocHandle } from "@automerge/automerge-repo/slim";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, upload, wsUrl, type Asset, type Job, type Project, type User } from "./api";
import * as M from "./model";
import { clipDuration, clipEnd, TICKS, type Clip, type View } from "./model";

type Progress = { fraction: number; eta_ms: number; preview?: string; stage?: string };
type Peer = { user: number; name: string; color: string; playhead: number; cursor: number | null; selection: string | null; seen: number };

const COLORS = ["#e5484d", "#30a46c", "#0091ff", "#f76b15", "#8e4ec6", "#12a594", "#d6409f"];
const colorOf = (id: number) => COLORS[id % COLORS.length];
const secs = (t: number) => t / TICKS;
const fmt = (t: number) => {
  const s = Math.max(0, secs(t));
  return `${Math.floor(s / 60)}:${(s % 60).toFixed(2).padStart(5, "0")}`;
};
const TRANSITIONS = ["none", "dissolve", "fade_black", "wipe_left", "wipe_right", "wipe_up", "wipe_down"];
const PRESETS = [
  ["youtube", "YouTube 16:9 1080p"],
  ["shorts", "Shorts / TikTok / Reels 9:16"],
  ["instagram", "Instagram 4:5"],
  ["square", "Square 1:1"],
  ["master", "Master (ProRes 422, MOV)"],
  ["web", "Web (VP9 + Opus, WebM)"],
];

export function Studio({ user, project, onClose }: { user: User; project: Project; onClose: () => void }) {
  const [handle, setHandle] = useState<DocHandle<any> | null>(null);
  const [view, setView] = useState<View | null>(null);
  const [error, setError] = useState("");
  const [assets, setAssets] = useState<Asset[]>([]);
  const [jobs, setJobs] = useState<Record<number, Job>>({});
  const [progress, setProgress] = useState<Record<number, Progress>>({});
  const [peers, setPeers] = useState<Record<number, Peer>>({});
  const [playhead, setPlayhead] = useState(0);
  const [cursor, setCursor] = useState<number | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [pps, setPps] = useState(80); // pixels per second
  const [playing, setPlaying] = useState(false);
  const [, bump] = useState(0);
  const canEdit = project.role !== "viewer";

  // The document, over /sync, cached in IndexedDB.
  const repo = useMemo(
    () =>
      new Repo({
        network: [new WebSocketClientAdapter(wsUrl("/sync"))],
        storage: new IndexedDBStorageAdapter(`moviola-${user.id}`),
      }),
    [project.id],
  );
  useEffect(() => {
    let live = true;
    repo
      .find<any>(project.doc_url as any)
      .then((h) => {
        if (!live) return;
        setHandle(h);
        setView(M.read(h.doc()));
        h.on("change", () => setView(M.read(h.doc())));
        h.on("ephemeral-message", ({ message }: any) => {
          if (message?.type !== "presence" || message.user === user.id) return;
          setPeers((p) => ({ ...p, [message.user]: { ...message, seen: Date.now() } }));
        });
      })
      .catch((e) => setError(`The timeline could not be opened: ${e}`));
    return () => {
      live = false;
      repo.shutdown();
    };
  }, [repo]);
  const history = useMemo(() => (handle ? new M.History(handle as any) : null), [handle]);
  const edit = (f: (d: any) => void) => {
    if (!history || !canEdit) return;
    history.edit(f);
    bump((n) => n + 1);
  };

  // Presence: what I look at, broadcast on change and every 2 s; peers silent for 6 s leave.
  useEffect(() => {
    if (!handle) return;
    const send = () =>
      handle.broadcast({ type: "presence", user: user.id, name: user.display_name || user.email, color: colorOf(user.id), playhead, cursor, selection: selected });
    send();
    const t = setInterval(send, 2000);
    return () => clearInterval(t);
  }, [handle, playhead, cursor, selected]);
  useEffect(() => {
    const t = setInterval(() => setPeers((p) => Object.fromEntries(Object.entries(p).filter(([, v]) => Date.now() - v.seen < 6000))), 1000);
    return () => clearInterval(t);
  }, []);

  // Assets and jobs, kept live by /events.
  // Signed links change on the hour; a link still good for an hour is kept, so a playing
  // video's source does not change under it.
  const loadAssets = () =>
    api("GET", `/projects/${project.id}/assets`)
      .then((r) =>
        setAssets((old) =>
          r.assets.map((a: Asset) => {
            const prev = old.find((o) => o.id === a.id);
            return prev?.links && prev.links.expires_at > Date.now() + 3_600_000 ? { ...a, links: prev.links } : a;
          }),
        ),
      )
      .catch(() => {});
  useEffect(() => {
    const t = setInterval(loadAssets, 30 * 60_000);
    return () => clearInterval(t);
  }, [project.id]);
  const loadJobs = () =>
    api("GET", `/projects/${project.id}/jobs`)
      .then((r) => setJobs(Object.fromEntries(r.jobs.map((j: Job) => [j.id, j]))))
      .catch(() => {});
  useEffect(() => {
    loadAssets();
    loadJobs();
    let ws: WebSocket | null = null;
    let closed = false;
    const connect = () => {
      ws = new WebSocket(wsUrl(`/events?project=${project.id}`));
      ws.onmessage = (m) => {
        const e = JSON.parse(m.data);
        if (e.type !== "job") return;
        setJobs((js) => ({ ...js, [e.job.id]: e.job }));
        if (e.event === "progress") setProgress((p) => ({ ...p, [e.job.id]: { ...p[e.job.id], ...e.progress } }));
        if (["succeeded", "failed", "cancelled"].includes(e.event)) {
          setProgress((p) => ({ ...p, [e.job.id]: { ...p[e.job.id], fraction: e.event === "succeeded" ? 1 : p[e.job.id]?.fraction ?? 0, eta_ms: 0 } }));
          loadAssets();
        }
      };
      ws.onclose = () => !closed && setTimeout(connect, 1000);
    };
    connect();
    return () => {
      closed = true;
      ws?.close();
    };
  }, [project.id]);

  // Playback: the playhead advances in real time; the preview follows it.
  useEffect(() => {
    if (!playing) return;
    let raf = 0;
    let last = performance.now();
    const tick = (now: number) => {
      setPlayhead((p) => p + Math.round(((now - last) / 1000) * TICKS));
      last = now;
      raf = requestAnimationFrame(tick);
    };
    raf = requestAnimationFrame(tick);
    return () => cancelAnimationFrame(raf);
  }, [playing]);
  const duration = view ? Math.max(0, ...view.clips.map(clipEnd)) : 0;
  useEffect(() => {
    if (playing && playhead >= duration) setPlaying(false);
  }, [playhead, playing, duration]);

  const selectedClip = view?.clips.find((c) => c.id === selected) ?? null;
  const assetById = (id: string | number) => assets.find((a) => String(a.id) === String(id));

  // Keyboard shortcuts (not while typing).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
      const mod = e.ctrlKey || e.metaKey;
      if (e.key === " ") {
        e.preventDefault();
        setPlaying((p) => !p);
      } else if (mod && e.key.toLowerCase() === "z") {
        e.preventDefault();
        e.shiftKey ? history?.redo() : history?.undo();
        bump((n) => n + 1);
      } else if (mod && e.key.toLowerCase() === "y") {
        e.preventDefault();
        history?.redo();
      } else if (!mod && e.key.toLowerCase() === "s") {
        split();
      } else if (e.key === "Delete" || e.key === "Backspace") {
        e.shiftKey ? ripple() : remove();
      } else if (!mod && e.key.toLowerCase() === "m") {
        edit((d) => M.addMarker(d, playhead, `Marker ${fmt(playhead)}`));
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  });

  // A clip on a locked track is not edited (as the server's own edits refuse it).
  const lockedClip = (c: Clip | null) => !!c && !!view?.tracks.find((t) => t.id === c.track)?.locked;
  const split = () => {
    if (!view) return;
    const c = selectedClip && !lockedClip(selectedClip) && selectedClip.start < playhead && playhead < clipEnd(selectedClip)
      ? selectedClip
      : view.clips.find((c) => c.start < playhead && playhead < clipEnd(c) && !view.tracks.find((t) => t.id === c.track)?.locked);
    if (c) edit((d) => M.splitClip(d, c, playhead));
  };
  const remove = () => selectedClip && !lockedClip(selectedClip) && (edit((d) => M.removeClip(d, selectedClip.id)), setSelected(null));
  const ripple = () =>
    selectedClip && view && !lockedClip(selectedClip) && (edit((d) => M.rippleDelete(d, selectedClip, view)), setSelected(null));

  if (error) return <p class="error" role="alert">{error}</p>;
  if (!view) return <p class="muted" aria-busy="true">Opening {project.name}…</p>;

  return (
    <div class="studio">
      <header class="bar">
        <button onClick={onClose} aria-label="Back to projects">←</button>
        <h1>{project.name}</h1>
        <span class="muted">{project.role}</span>
        <Presence me={user} peers={Object.values(peers)} />
        <Share project={project} />
      </header>
      <div class="panes">
        <Library project={project} assets={assets} canEdit={canEdit} onUploaded={loadAssets} jobs={jobs} />
        <section class="center">
          <Preview view={view} playhead={playhead} assetById={assetById} playing={playing} />
          <Toolbar
            playing={playing}
            onPlay={() => setPlaying(!playing)}
            playhead={playhead}
            canEdit={canEdit}
            history={history}
            onSplit={split}
            onDelete={remove}
            onRipple={ripple}
            pps={pps}
            setPps={setPps}
            onAddTrack={(kind) => edit((d) => M.addTrack(d, kind, `${kind[0].toUpperCase()}${view.tracks.filter((t) => t.kind === kind).length + 1}`, view))}
            onMarker={() => edit((d) => M.addMarker(d, playhead, `Marker ${fmt(playhead)}`))}
            onTitle={() => {
              const track = view.tracks.find((t) => t.kind === "text");
              const text = prompt("Title text", "Title");
              if (track && text) edit((d) => M.insertText(d, track.id, text, playhead, 3 * TICKS));
            }}
            onComment={() => {
              // On the selected clip's range, or on the frame at the playhead.
              const range = selectedClip ? ([selectedClip.start, clipEnd(selectedClip)] as const) : ([playhead, null] as const);
              const text = prompt(selectedClip ? "Comment on the selected clip's range" : "Comment on the frame at the playhead");
              if (text) edit((d) => M.addComment(d, user.display_name || user.email, text, range[0], range[1]));
            }}
          />
          <Timeline
            view={view}
            assets={assets}
            jobs={jobs}
            progress={progress}
            pps={pps}
            playhead={playhead}
            setPlayhead={setPlayhead}
            setCursor={setCursor}
            selected={selected}
            setSelected={setSelected}
            setPps={setPps}
            peers={Object.values(peers)}
            edit={edit}
            canEdit={canEdit}
          />
        </section>
        <aside class="side">
          <Inspector clip={selectedClip} view={view} edit={edit} assetById={assetById} canEdit={canEdit && !lockedClip(selectedClip)} />
          <Jobs project={project} view={view} clip={selectedClip} assets={assets} jobs={jobs} progress={progress} playhead={playhead} canEdit={canEdit} />
          <Export project={project} jobs={jobs} progress={progress} canEdit={canEdit} />
          <Notes view={view} />
        </aside>
      </div>
    </div>
  );
}

function Presence({ me, peers }: { me: User; peers: Peer[] }) {
  return (
    <ul class="presence" aria-label="Who is here">
      <li style={{ background: colorOf(me.id) }} title="you">{(me.display_name || me.email)[0].toUpperCase()}</li>
      {peers.map((p) => (
        <li key={p.user} class="peer" data-peer={p.name} style={{ background: p.color }} title={p.name}>
          {p.name[0]?.toUpperCase()}
        </li>
      ))}
    </ul>
  );
}

function Share({ project }: { project: Project }) {
  const [open, setOpen] = useState(false);
  const [email, setEmail] = useState("");
  const [role, setRole] = useState("editor");
  const [msg, setMsg] = useState("");
  if (project.role !== "owner") return null;
  const share = async (e: Event) => {
    e.preventDefault();
    try {
      await api("POST", `/projects/${project.id}/members`, { email, role });
      setMsg(`${email} can now ${role === "viewer" ? "watch" : "edit"}`);
      setEmail("");
    } catch (err) {
      setMsg((err as Error).message);
    }
  };
  return (
    <div class="share">
      <button onClick={() => setOpen(!open)} aria-expanded={open}>Share</button>
      {open && (
        <form onSubmit={share} class="popover" aria-label="Share">
          <input name="share-email" type="email" placeholder="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
          <select name="share-role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
            <option value="editor">editor</option>
            <option value="viewer">viewer</option>
            <option value="owner">owner</option>
          </select>
          <button type="submit" class="primary">Add</button>
          {msg && <p role="status">{msg}</p>}
        </form>
      )}
    </div>
  );
}

function Library({ project, assets, canEdit, onUploaded, jobs }: { project: Project; assets: Asset[]; canEdit: boolean; onUploaded: () => void; jobs: Record<number, Job> }) {
  const [uploads, setUploads] = useState<Record<string, number>>({});
  const [error, setError] = useState("");
  // Derived media (filmstrips, waveforms, proxies) are shown on their sources, not listed.
  const derived = new Set(assets.flatMap((a) => Object.values(a.derived ?? {})));
  const exports = new Set(Object.values(jobs).filter((j) => j.kind === "export.render").map((j) => j.result_asset));
  const visible = assets.filter((a) => !derived.has(a.id) && a.kind !== "data" && !exports.has(a.id));
  const onFiles = async (files: FileList | null) => {
    setError("");
    for (const file of Array.from(files ?? [])) {
      setUploads((u) => ({ ...u, [file.name]: 0 }));
      try {
        await upload(project.id, file, (f) => setUploads((u) => ({ ...u, [file.name]: f })));
      } catch (e) {
        setError(`${file.name}: ${(e as Error).message}`);
      }
      setUploads((u) => {
        const { [file.name]: _, ...rest } = u;
        return rest;
      });
      onUploaded();
    }
  };
  return (
    <aside class="library" aria-label="Assets">
      <h2>Assets</h2>
      {canEdit && (
        <label class="upload button">
          Upload media
          <input type="file" name="upload" multiple accept="video/*,audio/*,image/png,image/jpeg" onChange={(e) => onFiles(e.currentTarget.files)} />
        </label>
      )}
      {Object.entries(uploads).map(([name, f]) => (
        <div key={name} class="uploading">
          <span>{name}</span>
          <progress value={f} max={1} aria-label={`Uploading ${name}`} />
        </div>
      ))}
      {error && <p class="error" role="alert">{error}</p>}
      <ul>
        {visible.map((a) => (
          <li
            key={a.id}
            class="asset"
            data-asset={a.id}
            draggable={canEdit}
            onDragStart={(e) => e.dataTransfer?.setData("application/x-moviola-asset", String(a.id))}
            title={`${a.name} — drag onto the timeline`}
          >
            {a.kind !== "audio" ? (
              <img src={a.links?.thumbnail} alt="" loading="lazy" />
            ) : (
              <div class="audio-icon">{a.derived?.waveform ? <Waveform url={linkOf(assets, a.derived.waveform)} /> : "♪"}</div>
            )}
            <span class="name">{a.name}</span>
            <span class="muted">
              {a.kind}
              {a.duration_ms ? ` · ${(a.duration_ms / 1000).toFixed(1)} s` : ""}
              {a.derived?.proxy ? " · proxy" : ""}
            </span>
          </li>
        ))}
      </ul>
    </aside>
  );
}

function Toolbar(p: {
  playing: boolean;
  onPlay: () => void;
  playhead: number;
  canEdit: boolean;
  history: M.History | null;
  onSplit: () => void;
  onDelete: () => void;
  onRipple: () => void;
  pps: number;
  setPps: (n: number) => void;
  onAddTrack: (k: "video" | "audio" | "text") => void;
  onMarker: () => void;
  onTitle: () => void;
  onComment: () => void;
}) {
  return (
    <div class="toolbar" role="toolbar" aria-label="Timeline tools">
      <button onClick={p.onPlay} aria-label={p.playing ? "Pause" : "Play"} title="Space">{p.playing ? "❚❚" : "▶"}</button>
      <span class="time" aria-label="Playhead">{fmt(p.playhead)}</span>
      {p.canEdit && (
        <>
          <button onClick={p.onSplit} title="S">Split</button>
          <button onClick={p.onDelete} title="Delete">Delete</button>
          <button onClick={p.onRipple} title="Shift+Delete">Ripple delete</button>
          <button onClick={() => p.history?.undo()} disabled={!p.history?.canUndo} title="Ctrl/Cmd+Z">Undo</button>
          <button onClick={() => p.history?.redo()} disabled={!p.history?.canRedo} title="Shift+Ctrl/Cmd+Z">Redo</button>
          <button onClick={() => p.onAddTrack("video")}>+ Video track</button>
          <button onClick={() => p.onAddTrack("audio")}>+ Audio track</button>
          <button onClick={() => p.onAddTrack("text")}>+ Text track</button>
          <button onClick={p.onTitle}>Title</button>
          <button onClick={p.onMarker} title="M">Marker</button>
          <button onClick={p.onComment}>Comment</button>
        </>
      )}
      <span class="spacer" />
      <button onClick={() => p.setPps(Math.max(5, p.pps / 1.5))} aria-label="Zoom out">−</button>
      <button onClick={() => p.setPps(Math.min(1000, p.pps * 1.5))} aria-label="Zoom in">+</button>
    </div>
  );
}

function Timeline(p: {
  view: View;
  assets: Asset[];
  jobs: Record<number, Job>;
  progress: Record<number, Progress>;
  pps: number;
  playhead: number;
  setPlayhead: (t: number) => void;
  setCursor: (t: number | null) => void;
  selected: string | null;
  setSelected: (id: string | null) => void;
  setPps: (n: number) => void;
  peers: Peer[];
  edit: (f: (d: any) => void) => void;
  canEdit: boolean;
}) {
  const { view, pps } = p;
  const toX = (t: number) => (t / TICKS) * pps;
  const toT = (x: number) => Math.round((x / pps) * TICKS);
  const end = Math.max(TICKS * 30, ...view.clips.map(clipEnd)) + TICKS * 10;
  const [drag, setDrag] = useState<{ id: string; mode: "move" | "in" | "out"; x0: number; dt: number; track: string } | null>(null);
  const lanes = useRef<HTMLDivElement>(null);

  // Snapping: within 8 px of another clip's edge, the playhead or a marker.
  const snap = (t: number, exclude: string) => {
    const points = [p.playhead, 0, ...view.markers.map((m) => m.time), ...view.clips.filter((c) => c.id !== exclude).flatMap((c) => [c.start, clipEnd(c)])];
    let best = t;
    let dist = (8 / pps) * TICKS;
    for (const q of points)
      if (Math.abs(q - t) < dist) {
        dist = Math.abs(q - t);
        best = q;
      }
    return best;
  };
  const laneAt = (x: number, y: number) => (document.elementFromPoint(x, y) as HTMLElement | null)?.closest<HTMLElement>("[data-track]")?.dataset.track;
  const assetDuration = (c: Clip) => {
    const a = p.assets.find((a) => String(a.id) === c.asset);
    return a?.duration_ms ? Math.round((a.duration_ms / 1000) * TICKS) : Infinity;
  };

  const onPointerMove = (e: PointerEvent) => {
    const rect = lanes.current?.getBoundingClientRect();
    if (rect) p.setCursor(toT(e.clientX - rect.left + (lanes.current?.scrollLeft ?? 0)));
    if (!drag) return;
    const track = drag.mode === "move" ? laneAt(e.clientX, e.clientY) ?? drag.track : drag.track;
    setDrag({ ...drag, dt: toT(e.clientX - drag.x0), track });
  };
  const onPointerUp = () => {
    if (!drag) return;
    const c = view.clips.find((c) => c.id === drag.id);
    setDrag(null);
    if (!c || drag.dt === 0 && drag.track === c.track) return;
    const targetKind = view.tracks.find((t) => t.id === drag.track)?.kind;
    const sameKind = targetKind === view.tracks.find((t) => t.id === c.track)?.kind;
    if (drag.mode === "move") {
      const start = snap(Math.max(0, c.start + drag.dt), c.id);
      const targetLocked = !!view.tracks.find((t) => t.id === drag.track)?.locked;
      p.edit((d) => M.moveClip(d, c.id, start, sameKind && !targetLocked ? drag.track : undefined));
    } else if (drag.mode === "in") {
      const newStart = snap(c.start + drag.dt, c.id);
      const srcIn = Math.max(0, c.source_in + Math.round(((newStart - c.start) * c.speed_num) / c.speed_den));
      if (srcIn < c.source_out) p.edit((d) => M.trimClip(d, c, srcIn, c.source_out));
    } else {
      const newEnd = snap(clipEnd(c) + drag.dt, c.id);
      const srcOut = Math.min(assetDuration(c), c.source_in + Math.round(((newEnd - c.start) * c.speed_num) / c.speed_den));
      if (srcOut > c.source_in) p.edit((d) => M.trimClip(d, c, c.source_in, srcOut));
    }
  };
  const onDrop = (e: DragEvent, track: M.Track) => {
    e.preventDefault();
    const id = e.dataTransfer?.getData("application/x-moviola-asset");
    const a = p.assets.find((a) => String(a.id) === id);
    // Pictures go on video tracks, sound on audio tracks (a video's sound may go there too).
    const fits = track.kind === "video" ? a && a.kind !== "audio" && a.kind !== "data" : track.kind === "audio" ? a && (a.kind === "audio" || a.kind === "video") : false;
    if (!a || track.locked || !fits) return;
    const rect = (e.currentTarget as HTMLElement).getBoundingClientRect();
    const start = snap(Math.max(0, toT(e.clientX - rect.left)), "");
    const len = a.duration_ms ? Math.round((a.duration_ms / 1000) * TICKS) : 5 * TICKS;
    p.edit((d) => M.newClip(d, { id: M.newId("c"), track: track.id, asset: String(a.id), source_in: 0, source_out: len, start }));
  };

  return (
    <div
      class="timeline"
      aria-label="Timeline"
      onPointerMove={onPointerMove as any}
      onPointerUp={onPointerUp}
      onPointerLeave={() => p.setCursor(null)}
      onWheel={(e) => {
        // Ctrl/Cmd + wheel zooms around the pointer's time.
        if (!(e.ctrlKey || e.metaKey)) return;
        e.preventDefault();
        p.setPps(Math.min(1000, Math.max(5, pps * (e.deltaY < 0 ? 1.25 : 0.8))));
      }}
    >
      <div class="ruler-row">
        <div class="track-head" />
        <div class="ruler" style={{ width: toX(end) }} onPointerDown={(e) => p.setPlayhead(Math.max(0, toT(e.clientX - e.currentTarget.getBoundingClientRect().left)))}>
          {Array.from({ length: Math.ceil(secs(end)) }, (_, s) => (s % Math.max(1, Math.round(60 / pps)) === 0 ? (
            <span key={s} class="tick" style={{ left: toX(s * TICKS) }}>{s}s</span>
          ) : null))}
          {view.markers.map((m) => (
            <span key={m.id} class="marker" style={{ left: toX(m.time), borderColor: m.color || "#f5a524" }} title={m.label} />
          ))}
        </div>
      </div>
      <div class="lanes" ref={lanes}>
        {view.tracks.map((t) => (
          <div class="track-row" key={t.id}>
            <div class="track-head">
              <strong>{t.name}</strong> <span class="muted">{t.kind}</span>
              {p.canEdit && (
                <>
                  <button class="small" aria-pressed={t.muted} onClick={() => p.edit((d) => (d.tracks[t.id].muted = !t.muted))} title="Mute">M</button>
                  <button class="small" aria-pressed={t.locked} onClick={() => p.edit((d) => (d.tracks[t.id].locked = !t.locked))} title="Lock">L</button>
                </>
              )}
            </div>
            <div class={`lane ${t.kind}`} data-track={t.id} style={{ width: toX(end) }} onDragOver={(e) => e.preventDefault()} onDrop={(e) => onDrop(e, t)}>
              {view.clips
                .filter((c) => (drag?.id === c.id && drag.mode === "move" ? drag.track : c.track) === t.id)
                .map((c) => {
                  let start = c.start;
                  let len = clipDuration(c);
                  if (drag?.id === c.id) {
                    if (drag.mode === "move") start = Math.max(0, c.start + drag.dt);
                    if (drag.mode === "in") (start = c.start + drag.dt), (len -= drag.dt);
                    if (drag.mode === "out") len += drag.dt;
                  }
                  const a = p.assets.find((a) => String(a.id) === c.asset);
                  const job = c.job ? p.jobs[c.job.id] : undefined;
                  const prog = c.job ? p.progress[c.job.id] : undefined;
                  const strip = a?.derived?.filmstrip;
                  return (
                    <div
                      key={c.id}
                      class={`clip ${t.kind} ${p.selected === c.id ? "selected" : ""} ${c.job && !c.asset ? "placeholder" : ""}`}
                      data-clip={c.id}
                      tabIndex={0}
                      style={{
                        left: toX(start),
                        width: Math.max(4, toX(len)),
                        backgroundImage: strip && t.kind === "video" ? `url(${linkOf(p.assets, strip)})` : undefined,
                      }}
                      onFocus={() => p.setSelected(c.id)}
                      onPointerDown={(e) => {
                        p.setSelected(c.id);
                        if (!p.canEdit || t.locked) return;
                        const mode = (e.target as HTMLElement).dataset.handle as "in" | "out" | undefined;
                        setDrag({ id: c.id, mode: mode ?? "move", x0: e.clientX, dt: 0, track: c.track });
                      }}
                    >
                      {p.canEdit && <span class="handle in" data-handle="in" />}
                      {c.transition_in && <span class="transition" style={{ width: toX(c.transition_in.duration) }} title={c.transition_in.kind} />}
                      <span class="label">{c.text ?? a?.name ?? (c.job ? `job ${c.job.id}` : c.asset)}</span>
                      {a?.derived?.waveform && t.kind !== "video" && <Waveform url={linkOf(p.assets, a.derived.waveform)} />}
                      {c.job && !c.asset && (
                        <span class="job">
                          {job?.state ?? c.job.state}
                          <progress value={prog?.fraction ?? 0} max={1} aria-label={`job ${c.job.id} progress`} />
                        </span>
                      )}
                      {c.job?.error && <span class="error">{c.job.error}</span>}
                      {p.canEdit && <span class="handle out" data-handle="out" />}
                    </div>
                  );
                })}
              {p.peers
                .filter((peer) => peer.selection && view.clips.find((c) => c.id === peer.selection)?.track === t.id)
                .map((peer) => {
                  const c = view.clips.find((c) => c.id === peer.selection)!;
                  return <div key={peer.user} class="peer-selection" style={{ left: toX(c.start), width: toX(clipDuration(c)), borderColor: peer.color }} />;
                })}
            </div>
          </div>
        ))}
        {view.tracks.length === 0 && <p class="muted empty">No tracks yet: add a video track to start.</p>}
        <div class="playhead" style={{ left: `calc(var(--head) + ${toX(p.playhead)}px)` }} aria-hidden="true" />
        {p.peers.map((peer) => (
          <div key={peer.user}>
            <div class="peer-playhead" style={{ left: `calc(var(--head) + ${toX(peer.playhead)}px)`, background: peer.color }} />
            {peer.cursor !== null && (
              <div class="peer-cursor" data-cursor={peer.name} style={{ left: `calc(var(--head) + ${toX(peer.cursor)}px)`, color: peer.color }}>
                ▲ {peer.name}
              </div>
            )}
          </div>
        ))}
      </div>
    </div>
  );
}

/** The signed link of asset `id`'s file (derived media are in the project's asset list). */
function linkOf(assets: Asset[], id: number | string): string | undefined {
  return assets.find((a) => String(a.id) === String(id))?.links?.file;
}

function Waveform({ url }: { url?: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!url) return;
    fetch(url)
      .then((r) => r.json())
      .then((w) => {
        const c = canvas.current;
        if (!c) return;
        const g = c.getContext("2d")!;
        const peaks: [number, number][] = w.peaks;
        c.width = Math.max(1, peaks.length);
        g.fillStyle = "rgba(255,255,255,0.7)";
        peaks.forEach(([lo, hi], i) => g.fillRect(i, ((1 - hi) / 2) * c.height, 1, Math.max(1, ((hi - lo) / 2) * c.height)));
      })
      .catch(() => {});
  }, [url]);
  return <canvas class="waveform" ref={canvas} height={40} />;
}

function Preview({ view, playhead, assetById, playing }: { view: View; playhead: number; assetById: (id: string) => Asset | undefined; playing: boolean }) {
  const video = useRef<HTMLVideoElement>(null);
  // The topmost video track showing something at the playhead, as the exporter decides.
  const tracks = view.tracks.filter((t) => t.kind === "video").reverse();
  let shown: { clip: Clip; asset?: Asset } | null = null;
  for (const t of tracks) {
    const c = view.clips.filter((c) => c.track === t.id && c.asset && c.start <= playhead && playhead < clipEnd(c)).pop();
    if (c) {
      shown = { clip: c, asset: assetById(c.asset) };
      break;
    }
  }
  const titles = view.clips.filter((c) => c.text && c.start <= playhead && playhead < clipEnd(c));
  const src = shown?.asset ? (shown.asset.kind === "image" ? null : shown.asset.derived?.proxy ?? shown.asset.id) : null;
  const srcUrl = src === null ? undefined : assetById(String(src))?.links?.file;
  const sourceTime = shown ? secs(shown.clip.source_in + ((playhead - shown.clip.start) * shown.clip.speed_num) / shown.clip.speed_den) : 0;
  useEffect(() => {
    const v = video.current;
    if (!v || !srcUrl) return;
    if (Math.abs(v.currentTime - sourceTime) > (playing ? 0.3 : 0.02)) v.currentTime = sourceTime;
    if (playing && v.paused) v.play().catch(() => {});
    if (!playing && !v.paused) v.pause();
  });
  return (
    <div class="preview" style={{ aspectRatio: `${view.settings.width} / ${view.settings.height}` }} aria-label="Preview">
      {srcUrl && <video ref={video} src={srcUrl} muted={!playing} preload="auto" />}
      {shown?.asset?.kind === "image" && <img src={shown.asset.links?.file} alt="" />}
      {titles.map((t) => (
        <div key={t.id} class="title-overlay">{t.text}</div>
      ))}
    </div>
  );
}

function Inspector({ clip, view, edit, assetById, canEdit }: { clip: Clip | null; view: View; edit: (f: (d: any) => void) => void; assetById: (id: string) => Asset | undefined; canEdit: boolean }) {
  if (!clip) return <section class="panel"><h2>Clip</h2><p class="muted">Select a clip.</p></section>;
  const t = clip.transition_in;
  const a = assetById(clip.asset);
  return (
    <section class="panel" aria-label="Clip">
      <h2>Clip</h2>
      <p>
        {clip.text ? `Title “${clip.text}”` : a?.name ?? clip.asset} <br />
        <span class="muted">{fmt(clip.start)} → {fmt(clipEnd(clip))}</span>
      </p>
      {canEdit && (
        <>
          {clip.text !== null && (
            <label>
              Text <input value={clip.text} onChange={(e) => edit((d) => (d.clips[clip.id].text = e.currentTarget.value))} />
            </label>
          )}
          <label>
            Volume <input type="range" min={0} max={2} step={0.05} value={clip.volume} onChange={(e) => edit((d) => (d.clips[clip.id].volume = Number(e.currentTarget.value)))} />
          </label>
          <label>
            Transition in{" "}
            <select
              name="transition"
              value={t?.kind ?? "none"}
              onChange={(e) => {
                const kind = e.currentTarget.value;
                edit((d) => M.setTransition(d, clip.id, kind === "none" ? null : { kind, duration: t?.duration ?? TICKS / 2 }));
              }}
            >
              {TRANSITIONS.map((k) => (
                <option key={k} value={k}>{k.replace("_", " ")}</option>
              ))}
            </select>
          </label>
          {t && (
            <label>
              Duration (s){" "}
              <input type="number" min={0.1} step={0.1} value={secs(t.duration)} onChange={(e) => edit((d) => M.setTransition(d, clip.id, { kind: t.kind, duration: Number(e.currentTarget.value) * TICKS }))} />
            </label>
          )}
          <label>
            <input
              type="checkbox"
              checked={!!clip.transition_out}
              onChange={(e) => edit((d) => M.setTransition(d, clip.id, e.currentTarget.checked ? { kind: "fade_black", duration: TICKS / 2 } : null, true))}
            />{" "}
            Fade out to black
          </label>
        </>
      )}
    </section>
  );
}

function Jobs({ project, view, clip, assets, jobs, progress, playhead, canEdit }: { project: Project; view: View; clip: Clip | null; assets: Asset[]; jobs: Record<number, Job>; progress: Record<number, Progress>; playhead: number; canEdit: boolean }) {
  const [kinds, setKinds] = useState<any[]>([]);
  const [kind, setKind] = useState("enhance.upscale");
  // Upscale: "2", "4" (factors) or "h1080", "h2160" (target heights).
  const [scale, setScale] = useState("2");
  // Upscale model: "" (the server's choice), "realesrgan", "realesrgan_x4plus" or "classical".
  const [upModel, setUpModel] = useState("");
  // Interpolate: "2", "4" (factors) or "fps60", "fps50" (target rates).
  const [factor, setFactor] = useState("2");
  const [scenes, setScenes] = useState("markers");
  const [estimate, setEstimate] = useState<any>(null);
  const [place, setPlace] = useState(true);
  const [error, setError] = useState("");
  useEffect(() => {
    api("GET", "/job-kinds").then((r) => setKinds(r.kinds.filter((k: any) => !k.kind.startsWith("media.") && k.kind !== "export.render")));
  }, []);
  const input = clip?.asset ? assets.find((a) => String(a.id) === clip.asset) : undefined;
  const request = () => {
    // Each kind's own parameters (the defaults where it has any).
    const params: Record<string, object> = {
      "enhance.upscale": {
        ...(scale.startsWith("h") ? { height: Number(scale.slice(1)) } : { scale: Number(scale) }),
        ...(upModel ? { model: upModel } : {}),
      },
      "enhance.color": { auto_levels: true, white_balance: true },
      "audio.cleanup": { denoise: true, loudness: "streaming" },
      "enhance.interpolate": factor.startsWith("fps") ? { fps: Number(factor.slice(3)) } : { factor: Number(factor) },
      "analyze.scenes": { markers: scenes !== "split", split: scenes !== "markers" },
    };
    const body: any = { kind, input: input?.id, params: params[kind] ?? {} };
    // Pictures can stand in a placeholder on a video track; sound results and data cannot.
    const placeable = ["enhance.upscale", "enhance.color", "enhance.stabilize", "enhance.interpolate", "enhance.denoise"].includes(kind) && input?.kind !== "audio";
    const track = view.tracks.find((t) => t.kind === "video" && !t.locked);
    if (place && placeable && track) body.placeholder = { track: track.id, start: playhead, duration: clip ? clipDuration(clip) : 5 * TICKS };
    return body;
  };
  const doEstimate = async () => {
    setError("");
    setEstimate(null);
    try {
      setEstimate(await api("POST", `/projects/${project.id}/jobs/estimate`, request()));
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const submit = async () => {
    setError("");
    try {
      await api("POST", `/projects/${project.id}/jobs`, { ...request(), confirm: true });
      setEstimate(null);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  // Derived media are the studio's own work and exports have their panel.
  const list = Object.values(jobs)
    .filter((j) => !j.kind.startsWith("media.") && j.kind !== "export.render")
    .sort((a, b) => b.id - a.id);
  return (
    <section class="panel" aria-label="Jobs">
      <h2>Jobs</h2>
      {canEdit && (
        <div class="job-form">
          <select name="job-kind" value={kind} onChange={(e) => (setKind(e.currentTarget.value), setEstimate(null))}>
            {kinds.map((k) => (
              <option key={k.kind} value={k.kind}>{k.kind}</option>
            ))}
          </select>
          {kind === "enhance.upscale" && (
            <select name="scale" value={scale} onChange={(e) => setScale(e.currentTarget.value)} aria-label="Size">
              <option value="2">2×</option>
              <option value="4">4×</option>
              <option value="h1080">to 1080p</option>
              <option value="h2160">to 4K (2160p)</option>
            </select>
          )}
          {kind === "enhance.upscale" && (
            <select name="upscale-model" value={upModel} onChange={(e) => setUpModel(e.currentTarget.value)} aria-label="Model">
              <option value="">best installed</option>
              <option value="realesrgan">Real-ESRGAN (drawings, anime)</option>
              <option value="realesrgan_x4plus">Real-ESRGAN x4plus (photos, live action)</option>
              <option value="classical">Lanczos (no model)</option>
            </select>
          )}
          {kind === "enhance.interpolate" && (
            <select name="factor" value={factor} onChange={(e) => setFactor(e.currentTarget.value)} aria-label="Frame rate">
              <option value="2">2× frame rate</option>
              <option value="4">4× frame rate</option>
              <option value="fps50">to 50 fps</option>
              <option value="fps60">to 60 fps</option>
            </select>
          )}
          {kind === "analyze.scenes" && (
            <select name="scenes" value={scenes} onChange={(e) => setScenes(e.currentTarget.value)} aria-label="At the cuts">
              <option value="markers">markers at the cuts</option>
              <option value="split">split clips at the cuts</option>
              <option value="both">markers and splits</option>
            </select>
          )}
          <label>
            <input type="checkbox" checked={place} onChange={(e) => setPlace(e.currentTarget.checked)} /> place on timeline
          </label>
          <p class="muted">Input: {input ? input.name : "select a clip (a picture or footage for enhance.*, sound for audio.cleanup)"}</p>
          <button onClick={doEstimate} disabled={!input}>Estimate</button>
          {estimate && (
            <div class="estimate" role="status">
              {estimate.credits} credits (you have {estimate.available_credits}), about {Math.ceil((estimate.eta_ms + estimate.queue_wait_ms) / 1000)} s
              <button class="primary" onClick={submit}>Run job</button>
            </div>
          )}
        </div>
      )}
      {error && <p class="error" role="alert">{error}</p>}
      <ul class="jobs">
        {list.map((j) => (
          <JobRow key={j.id} job={j} progress={progress[j.id]} />
        ))}
      </ul>
    </section>
  );
}

function JobRow({ job, progress }: { job: Job; progress?: Progress }) {
  const live = job.state === "queued" || job.state === "running";
  const fraction = job.state === "succeeded" ? 1 : progress?.fraction ?? 0;
  return (
    <li class={`job ${job.state}`} data-job={job.id}>
      <span>
        #{job.id} {job.kind} <strong class="state">{job.state}</strong>
      </span>
      <progress value={fraction} max={1} aria-label={`job ${job.id} progress`} />
      {live && progress?.eta_ms ? <span class="muted">{Math.ceil(progress.eta_ms / 1000)} s left</span> : null}
      {progress?.preview && live && <img class="job-preview" src={progress.preview} alt="preview" />}
      {job.error && <span class="error">{job.error}</span>}
      {live && <button class="small" onClick={() => api("POST", `/jobs/${job.id}/cancel`).catch(() => {})}>Cancel</button>}
    </li>
  );
}

function Export({ project, jobs, progress, canEdit }: { project: Project; jobs: Record<number, Job>; progress: Record<number, Progress>; canEdit: boolean }) {
  const [preset, setPreset] = useState("youtube");
  const [fit, setFit] = useState("pad");
  const [quality, setQuality] = useState("standard");
  const [format, setFormat] = useState("preset");
  const [error, setError] = useState("");
  const [links, setLinks] = useState<Record<number, string>>({});
  const asked = useRef(new Set<number>());
  const exports = Object.values(jobs).filter((j) => j.kind === "export.render").sort((a, b) => b.id - a.id);
  useEffect(() => {
    for (const j of exports)
      if (j.state === "succeeded" && j.result_asset && !asked.current.has(j.id)) {
        asked.current.add(j.id);
        api("GET", `/assets/${j.result_asset}/url`)
          .then((r) => setLinks((l) => ({ ...l, [j.id]: r.url })))
          .catch(() => asked.current.delete(j.id));
      }
  });
  const run = async () => {
    setError("");
    try {
      // A format other than the preset's own overrides its container and codecs.
      const formats: Record<string, object> = {
        preset: {},
        h264: { container: "mp4", video_codec: "h264", audio_codec: "aac" },
        h265: { container: "mp4", video_codec: "h265", audio_codec: "aac" },
        vp9: { container: "webm", video_codec: "vp9", audio_codec: "opus" },
        prores: { container: "mov", video_codec: "prores", audio_codec: "pcm" },
      };
      await api("POST", `/projects/${project.id}/jobs`, { kind: "export.render", params: { preset, fit, quality, ...formats[format] } });
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <section class="panel" aria-label="Export">
      <h2>Export</h2>
      {canEdit && (
        <div class="export-form">
          <select name="preset" value={preset} onChange={(e) => setPreset(e.currentTarget.value)}>
            {PRESETS.map(([v, label]) => (
              <option key={v} value={v}>{label}</option>
            ))}
          </select>
          <select name="fit" value={fit} onChange={(e) => setFit(e.currentTarget.value)} aria-label="Other aspect ratios">
            <option value="pad">pad (bars)</option>
            <option value="crop">crop (fill)</option>
          </select>
          <select name="format" value={format} onChange={(e) => setFormat(e.currentTarget.value)} aria-label="Format and codec">
            <option value="preset">preset's format</option>
            <option value="h264">MP4 · H.264 + AAC</option>
            <option value="h265">MP4 · H.265 + AAC</option>
            <option value="vp9">WebM · VP9 + Opus</option>
            <option value="prores">MOV · ProRes 422 + PCM</option>
          </select>
          <select name="quality" value={quality} onChange={(e) => setQuality(e.currentTarget.value)}>
            <option value="draft">draft</option>
            <option value="standard">standard</option>
            <option value="high">high</option>
          </select>
          <button class="primary" onClick={run}>Export</button>
        </div>
      )}
      {error && <p class="error" role="alert">{error}</p>}
      <ul class="jobs">
        {exports.map((j) => (
          <li key={j.id} class={`job ${j.state}`} data-export={j.id}>
            <span>
              {j.params?.output?.preset ?? "custom"} <strong class="state">{j.state}</strong>
            </span>
            <progress value={j.state === "succeeded" ? 1 : progress[j.id]?.fraction ?? 0} max={1} aria-label={`export ${j.id} progress`} />
            {links[j.id] && (
              <a class="download" href={links[j.id]} download={`${project.name}-${j.params?.output?.preset ?? "export"}.${j.params?.resolved?.container ?? "mp4"}`}>
                Download
              </a>
            )}
            {j.error && <span class="error">{j.error}</span>}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Notes({ view }: { view: View }) {
  if (!view.comments.length && !view.markers.length) return null;
  return (
    <section class="panel" aria-label="Markers and comments">
      <h2>Notes</h2>
      <ul>
        {view.markers.map((m) => (
          <li key={m.id}>⚑ {fmt(m.time)} {m.label}</li>
        ))}
        {view.comments.map((c) => (
          <li key={c.id}>
            💬 {fmt(c.start)}
            {c.end !== null ? `–${fmt(c.end)}` : ""} <strong>{c.author}</strong>: {c.text}
          </li>
        ))}
      </ul>
    </section>
  );
}
