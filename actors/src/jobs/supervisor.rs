//! GpuSupervisor: one per server. Holds the queue (mirroring the store, which is the truth),
//! schedules jobs onto idle devices by priority and per-user fair share, persists every
//! transition, settles credits through the store, and fans job events out to every watcher
//! of the job's project.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use moviola_store::{AssetId, Job, JobId, JobState, NewAsset, Outcome, ProjectId, Store, UserId};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::device::{DeviceActor, DeviceInfo, DeviceReport, RunJob};
use super::kinds::{JobKind, RunError};
use super::{JobEvent, job_view};
use crate::hub::Hub;
use crate::now_ms;
use crate::project::ServerEdit;

#[derive(Clone, Debug)]
pub struct JobSettings {
    /// A job interrupted by a crash is started at most this many times in all.
    pub max_attempts: i32,
    /// Progress events per job at most this often.
    pub progress_interval: Duration,
    /// Queued + running jobs one user may have.
    pub max_live_jobs_per_user: u64,
    /// Where job results are written (the media folder).
    pub media_dir: PathBuf,
}

struct DeviceSlot {
    info: DeviceInfo,
    addr: Addr<DeviceActor>,
    busy: Option<JobId>,
}

struct Running {
    job: Job,
    device: usize,
    cancel: Arc<AtomicBool>,
    cancel_reason: Option<String>,
    started: Instant,
    last_event: Option<Instant>,
    stage: &'static str,
    step: u64,
    total: u64,
}

pub struct GpuSupervisor {
    store: Store,
    hub: Hub,
    settings: JobSettings,
    devices: Vec<DeviceSlot>,
    /// Queued jobs (state `queued` in the store).
    queue: Vec<Job>,
    /// Jobs picked for a device whose `start_job` is being persisted.
    starting: HashMap<JobId, usize>,
    running: HashMap<JobId, Running>,
    paused: bool,
    ready: bool,
    watchers: HashMap<ProjectId, HashMap<u64, Recipient<JobEvent>>>,
    /// Jobs started per user since this process began: the fair-share tie breaker.
    served: HashMap<UserId, u64>,
    /// Measured milliseconds per output megapixel, per kind (exponential moving average).
    speed: HashMap<JobKind, f64>,
}

impl GpuSupervisor {
    pub fn new(hub: Hub, settings: JobSettings, devices: Vec<(DeviceInfo, Addr<DeviceActor>)>) -> GpuSupervisor {
        GpuSupervisor {
            store: hub.store().clone(),
            hub,
            settings,
            devices: devices
                .into_iter()
                .map(|(info, addr)| DeviceSlot { info, addr, busy: None })
                .collect(),
            queue: Vec::new(),
            starting: HashMap::new(),
            running: HashMap::new(),
            paused: false,
            ready: false,
            watchers: HashMap::new(),
            served: HashMap::new(),
            speed: HashMap::new(),
        }
    }

    fn ms_per_megapixel(&self, kind: JobKind) -> f64 {
        self.speed.get(&kind).copied().unwrap_or_else(|| kind.default_ms_per_megapixel())
    }

    fn emit(&self, project: ProjectId, event: Value) {
        let Some(watchers) = self.watchers.get(&project) else { return };
        let text: Arc<str> = event.to_string().into();
        for w in watchers.values() {
            w.do_send(JobEvent {
                project,
                json: text.clone(),
            });
        }
    }

    fn emit_state(&self, job: &Job, event: &str) {
        self.emit(job.project_id, json!({ "type": "job", "event": event, "job": job_view(job) }));
    }

    /// The next job for a device: highest priority, then the user with the fewest running
    /// jobs, then the user served least, then the oldest.
    fn pick(&self) -> Option<usize> {
        let mut running_per_user: HashMap<UserId, u64> = HashMap::new();
        for r in self.running.values() {
            *running_per_user.entry(r.job.user_id).or_default() += 1;
        }
        self.queue
            .iter()
            .enumerate()
            .min_by_key(|(_, j)| {
                (
                    -j.priority,
                    running_per_user.get(&j.user_id).copied().unwrap_or(0),
                    self.served.get(&j.user_id).copied().unwrap_or(0),
                    j.id,
                )
            })
            .map(|(i, _)| i)
    }

    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        if self.paused || !self.ready {
            return;
        }
        for d in 0..self.devices.len() {
            if self.devices[d].busy.is_some() {
                continue;
            }
            // The next job this server can run; stored jobs it cannot (a kind removed in an
            // upgrade) are failed on the way, and this device still gets a job.
            let (job, kind, params) = loop {
                let Some(i) = self.pick() else { return };
                let job = self.queue.remove(i);
                let parsed = JobKind::parse(&job.kind).and_then(|k| {
                    k.load(&serde_json::from_str(&job.params).unwrap_or(Value::Null))
                        .ok()
                        .map(|p| (k, p))
                });
                if let Some((kind, params)) = parsed {
                    break (job, kind, params);
                }
                let reason = format!("job kind {} with these parameters is not supported by this server", job.kind);
                self.finish(ctx, job.id, Outcome::Failed { reason });
            };
            *self.served.entry(job.user_id).or_default() += 1;
            self.devices[d].busy = Some(job.id);
            self.starting.insert(job.id, d);
            let store = self.store.clone();
            let device_name = self.devices[d].info.name.clone();
            let id = job.id;
            ctx.spawn(
                async move { store.start_job(id, &device_name, now_ms()).await }
                    .into_actor(self)
                    .map(move |res, act, ctx| {
                        act.starting.remove(&id);
                        match res {
                            Ok(Some(job)) => act.run_on(ctx, job, d, kind, params),
                            Ok(None) => {
                                // Cancelled between pick and start.
                                act.devices[d].busy = None;
                                act.dispatch(ctx);
                            }
                            Err(err) => {
                                tracing::error!(job = %id, %err, "could not mark job running; will retry");
                                act.devices[d].busy = None;
                                act.queue.push(job);
                                ctx.run_later(Duration::from_secs(1), |act, ctx| act.dispatch(ctx));
                            }
                        }
                    }),
            );
        }
    }

    fn run_on(&mut self, ctx: &mut Context<Self>, job: Job, device: usize, kind: JobKind, params: super::kinds::Params) {
        let cancel = Arc::new(AtomicBool::new(false));
        let store = self.store.clone();
        let input = job.input_asset;
        let media = self.settings.media_dir.clone();
        self.running.insert(
            job.id,
            Running {
                job: job.clone(),
                device,
                cancel: cancel.clone(),
                cancel_reason: None,
                started: Instant::now(),
                last_event: None,
                stage: "queued",
                step: 0,
                total: 0,
            },
        );
        self.emit_state(&job, "started");
        let reply = ctx.address().recipient();
        let addr = self.devices[device].addr.clone();
        let id = job.id;
        let estimate_credits = job.estimate_credits;
        let scratch = self.settings.media_dir.join("tmp");
        // An export reads the timeline's assets from the media folder, not one input.
        let export_ms = match &params {
            super::kinds::Params::Export(j) => Some(j.plan.duration / (moviola_crdt::time::TICKS_PER_SECOND / 1000)),
            _ => None,
        };
        ctx.spawn(
            async move {
                match (input, export_ms) {
                    (Some(a), _) => store.asset(a).await.map(|a| {
                        a.map(|a| {
                            let footage = matches!(a.kind.as_str(), "video" | "audio");
                            (media.join(&a.path), a.duration_ms.unwrap_or(0), footage)
                        })
                    }),
                    (None, Some(ms)) => Ok(Some((media, ms, true))),
                    (None, None) => Ok(None),
                }
            }
            .into_actor(self)
            .map(move |res, act, _| match res {
                Ok(Some((input_path, duration_ms, footage))) => addr.do_send(RunJob {
                    job: id,
                    kind,
                    params,
                    input_path,
                    duration_ms,
                    footage,
                    estimate_credits,
                    scratch,
                    cancel,
                    reply,
                }),
                other => {
                    let why = match other {
                        Err(e) => format!("cannot read the input asset: {e}"),
                        _ => "the input asset no longer exists".to_string(),
                    };
                    if let Some(r) = act.running.get(&id) {
                        let device = r.device;
                        reply.do_send(DeviceReport::Finished {
                            job: id,
                            device,
                            elapsed: Duration::ZERO,
                            result: Err(RunError::Failed(why)),
                        });
                    }
                }
            }),
        );
    }

    /// Persists a final state, then tells the watchers. The store closes the credit
    /// reservation in the same transaction. A failed write is retried a few times; if the
    /// database stays unreachable the job stays live in the store and is recovered (retried)
    /// at the next start, so it is never lost.
    fn finish(&mut self, ctx: &mut Context<Self>, id: JobId, outcome: Outcome) {
        self.finish_attempt(ctx, id, outcome, 0);
    }

    fn finish_attempt(&mut self, ctx: &mut Context<Self>, id: JobId, outcome: Outcome, attempt: u32) {
        let store = self.store.clone();
        let o = outcome.clone();
        ctx.spawn(
            async move { store.finish_job(id, o, now_ms()).await }
                .into_actor(self)
                .map(move |res, act, ctx| match res {
                    Ok(Some(job)) => {
                        let event = job.state.as_str().to_owned();
                        act.emit_state(&job, &event);
                        act.resolve_on_timeline(ctx, &job);
                    }
                    Ok(None) => {}
                    // The job went with its project: nothing left to finish.
                    Err(err) if err.is_not_found() => tracing::debug!(job = %id, "job gone with its project"),
                    Err(err) if attempt < 5 => {
                        tracing::warn!(job = %id, %err, attempt, "could not persist the end of a job; retrying");
                        ctx.run_later(Duration::from_millis(200 << attempt), move |act, ctx| {
                            act.finish_attempt(ctx, id, outcome, attempt + 1)
                        });
                    }
                    Err(err) => {
                        tracing::error!(job = %id, %err, "could not persist the end of a job; it will be recovered at the next start")
                    }
                }),
        );
    }

    /// Turns the job's placeholder clip into its result (or shows the failure) for everyone.
    fn resolve_on_timeline(&mut self, ctx: &mut Context<Self>, job: &Job) {
        let Some(clip) = job.timeline_clip.clone() else { return };
        let op = moviola_crdt::EditOp::ResolveJob {
            clip,
            state: job.state.as_str().to_owned(),
            asset: job.result_asset.map(|a| a.to_string()),
            error: job.error.clone(),
        };
        let (store, hub, project, id) = (self.store.clone(), self.hub.clone(), job.project_id, job.id);
        ctx.spawn(
            async move {
                project_actor(&store, &hub, project)
                    .await?
                    .send(ServerEdit { op, dry_run: false })
                    .await
                    .map_err(|e| e.to_string())?
            }
            .into_actor(self)
            .map(move |res: Result<(), String>, _, _| {
                if let Err(err) = res {
                    tracing::warn!(job = %id, %err, "could not update the job's clip on the timeline");
                }
            }),
        );
    }

    /// At every cut (source ticks) that falls inside a clip of the analysed footage: a marker,
    /// and/or a split of the clip, for everyone. Clips on locked tracks are not split (their markers still
    /// come); an edit the document refuses is logged and the rest go on.
    fn mark_scenes(&mut self, ctx: &mut Context<Self>, job: JobId, project: ProjectId, input: AssetId, todo: SceneEdits, cuts: Vec<i64>) {
        let (store, hub) = (self.store.clone(), self.hub.clone());
        ctx.spawn(
            async move {
                let actor = project_actor(&store, &hub, project).await?;
                let asset = input.to_string();
                let timeline = actor.send(crate::project::ReadTimeline).await.map_err(|e| e.to_string())??;
                let clips: Vec<String> = timeline
                    .tracks
                    .iter()
                    .flat_map(|t| &t.clips)
                    .filter(|c| c.asset == asset)
                    .map(|c| c.id.clone())
                    .collect();
                for id in clips {
                    // Each clip as it is now (a collaborator may have moved or trimmed it since),
                    // its edits sent right after.
                    let timeline = actor.send(crate::project::ReadTimeline).await.map_err(|e| e.to_string())??;
                    let Some((track, clip)) = timeline
                        .tracks
                        .iter()
                        .find_map(|t| t.clips.iter().find(|c| c.id == id && c.asset == asset).map(|c| (t, c)))
                    else {
                        continue;
                    };
                    // Timeline times of the cuts strictly inside the clip, at most
                    // MAX_SCENE_MARKERS per clip: noisy footage at a low threshold must not flood
                    // everyone's timeline (the full list is the asset).
                    let inside: Vec<(usize, i64)> = cuts
                        .iter()
                        .enumerate()
                        .filter(|(_, source)| **source > clip.source_in && **source < clip.source_out)
                        .map(|(i, source)| {
                            let at = clip.start
                                + (i128::from(source - clip.source_in) * i128::from(clip.speed_den) / i128::from(clip.speed_num.max(1)))
                                    as i64;
                            (i, at)
                        })
                        .filter(|(_, at)| *at > clip.start && *at < clip.start + clip.duration())
                        .take(MAX_SCENE_MARKERS)
                        .collect();
                    let mut ops = Vec::new();
                    if todo.markers {
                        for (i, at) in &inside {
                            ops.push(moviola_crdt::EditOp::AddMarker {
                                id: format!("scene-{job}-{}-{i}", clip.id),
                                time: *at,
                                label: format!("Cut {}", i + 1),
                                color: "#4dabf7".into(),
                            });
                        }
                    }
                    if todo.split && !track.locked {
                        // From the last cut back, so the clip keeps its id and each split falls
                        // inside what is left of it.
                        for (i, at) in inside.iter().rev() {
                            ops.push(moviola_crdt::EditOp::SplitClip {
                                id: clip.id.clone(),
                                at: *at,
                                new_id: format!("{}-shot-{job}-{i}", clip.id),
                            });
                        }
                    }
                    for op in ops {
                        if let Err(err) = actor.send(ServerEdit { op, dry_run: false }).await.map_err(|e| e.to_string())? {
                            tracing::warn!(job = %job, %err, "a scene edit was refused");
                        }
                    }
                }
                Ok::<(), String>(())
            }
            .into_actor(self)
            .map(move |res, _, _| {
                if let Err(err) = res {
                    tracing::warn!(job = %job, %err, "could not put the scene cuts on the timeline");
                }
            }),
        );
    }

    fn progress_event(&self, r: &Running) -> Value {
        let stages = JobKind::parse(&r.job.kind).map_or(&["decode", "process", "encode"][..], JobKind::stages);
        let (base, width) = match (r.stage, stages.len()) {
            // Media kinds have one stage: its steps are the whole job.
            ("process", 1) => (0.0, 1.0),
            ("decode", _) => (0.0, 0.05),
            ("process", _) => (0.05, 0.85),
            ("encode", _) => (0.90, 0.10),
            _ => (0.0, 0.0),
        };
        let within = if r.total > 0 { r.step as f64 / r.total as f64 } else { 0.0 };
        let fraction = (base + width * within).clamp(0.0, 1.0);
        let elapsed = r.started.elapsed().as_millis() as f64;
        let eta_ms = if fraction > 0.02 {
            (elapsed / fraction * (1.0 - fraction)) as i64
        } else {
            (r.job.estimate_ms as f64 - elapsed).max(0.0) as i64
        };
        json!({
            "type": "job",
            "event": "progress",
            "job": job_view(&r.job),
            "progress": {
                "stage": r.stage,
                "stage_index": stages.iter().position(|s| *s == r.stage).unwrap_or(0),
                "stages": stages,
                "step": r.step,
                "total": r.total,
                "fraction": fraction,
                "eta_ms": eta_ms,
            }
        })
    }
}

impl Actor for GpuSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Recover before anything else: jobs a crash left `running` are re-queued (or failed
        // when out of attempts), then every queued job is loaded.
        let store = self.store.clone();
        let max = self.settings.max_attempts;
        ctx.wait(
            async move {
                let (requeued, failed) = store.recover_jobs(max, now_ms()).await?;
                let live = store.live_jobs().await?;
                Ok::<_, moviola_store::StoreError>((requeued, failed, live))
            }
            .into_actor(self)
            .map(|res, act, ctx| match res {
                Ok((requeued, failed, live)) => {
                    for j in &requeued {
                        tracing::warn!(job = %j.id, attempts = j.attempts, "job was running when the server stopped; re-queued");
                    }
                    for j in &failed {
                        tracing::warn!(job = %j.id, "job was running when the server stopped too often; failed");
                    }
                    act.queue = live.into_iter().filter(|j| j.state == JobState::Queued).collect();
                    act.ready = true;
                    act.dispatch(ctx);
                }
                Err(err) => {
                    tracing::error!(%err, "cannot load the job queue; retrying in 2 s");
                    ctx.run_later(Duration::from_secs(2), |act, ctx| act.started(ctx));
                }
            }),
        );
    }
}

/// A job was persisted as queued: schedule it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Enqueue(pub Job);

impl Handler<Enqueue> for GpuSupervisor {
    type Result = ();

    fn handle(&mut self, Enqueue(job): Enqueue, ctx: &mut Self::Context) {
        if job.state != JobState::Queued || self.queue.iter().any(|j| j.id == job.id) || self.running.contains_key(&job.id) {
            return;
        }
        self.emit_state(&job, "queued");
        self.queue.push(job);
        self.dispatch(ctx);
    }
}

/// Cancel a queued or running job. Answers what happened.
#[derive(Message)]
#[rtype(result = "CancelResult")]
pub struct Cancel {
    pub job: JobId,
    pub reason: String,
}

#[derive(Debug, PartialEq, Eq, MessageResponse)]
pub enum CancelResult {
    /// It was queued; it is cancelled (persisted asynchronously, the event follows).
    Dequeued,
    /// It is running; the device stops at its next step.
    Stopping,
    /// It is not live here.
    NotLive,
}

impl Handler<Cancel> for GpuSupervisor {
    type Result = CancelResult;

    fn handle(&mut self, msg: Cancel, ctx: &mut Self::Context) -> CancelResult {
        if let Some(i) = self.queue.iter().position(|j| j.id == msg.job) {
            let job = self.queue.remove(i);
            self.finish(ctx, job.id, Outcome::Cancelled { reason: msg.reason });
            return CancelResult::Dequeued;
        }
        if let Some(r) = self.running.get_mut(&msg.job) {
            r.cancel.store(true, Ordering::Relaxed);
            r.cancel_reason.get_or_insert(msg.reason);
            return CancelResult::Stopping;
        }
        if self.starting.contains_key(&msg.job) {
            // Being started: cancel in the store; `start_job` then finds it final.
            let store = self.store.clone();
            let id = msg.job;
            let reason = msg.reason;
            ctx.wait(
                async move { store.finish_job(id, Outcome::Cancelled { reason }, now_ms()).await }
                    .into_actor(self)
                    .map(|res, act, _| {
                        if let Ok(Some(job)) = res {
                            act.emit_state(&job, "cancelled");
                        }
                    }),
            );
            return CancelResult::Dequeued;
        }
        CancelResult::NotLive
    }
}

/// Pause or resume starting new jobs (running ones continue).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetPaused(pub bool);

impl Handler<SetPaused> for GpuSupervisor {
    type Result = ();

    fn handle(&mut self, SetPaused(paused): SetPaused, ctx: &mut Self::Context) {
        self.paused = paused;
        self.dispatch(ctx);
    }
}

/// A queued job's priority changed (already persisted): reorder.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reprioritized(pub Job);

impl Handler<Reprioritized> for GpuSupervisor {
    type Result = ();

    fn handle(&mut self, Reprioritized(job): Reprioritized, _: &mut Self::Context) {
        if let Some(j) = self.queue.iter_mut().find(|j| j.id == job.id) {
            j.priority = job.priority;
            self.emit_state(&job, "queued");
        }
    }
}

/// Start or stop sending a project's job events to a watcher.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch {
    pub project: ProjectId,
    pub watcher: u64,
    pub recipient: Option<Recipient<JobEvent>>,
}

impl Handler<Watch> for GpuSupervisor {
    type Result = ();

    fn handle(&mut self, msg: Watch, _: &mut Self::Context) {
        match msg.recipient {
            Some(r) => {
                self.watchers.entry(msg.project).or_default().insert(msg.watcher, r);
            }
            None => {
                if let Some(w) = self.watchers.get_mut(&msg.project) {
                    w.remove(&msg.watcher);
                    if w.is_empty() {
                        self.watchers.remove(&msg.project);
                    }
                }
            }
        }
    }
}

/// What preflight needs from the live queue: the measured speed of a kind and the expected
/// wait before a new job starts.
#[derive(Message)]
#[rtype(result = "QueueOutlook")]
pub struct Outlook(pub JobKind);

#[derive(Debug, MessageResponse)]
pub struct QueueOutlook {
    pub ms_per_megapixel: f64,
    pub wait_ms: i64,
    pub paused: bool,
    pub max_device_memory: u64,
}

impl Handler<Outlook> for GpuSupervisor {
    type Result = QueueOutlook;

    fn handle(&mut self, Outlook(kind): Outlook, _: &mut Self::Context) -> QueueOutlook {
        let queued: i64 = self.queue.iter().map(|j| j.estimate_ms).sum();
        let running: i64 = self
            .running
            .values()
            .map(|r| (r.job.estimate_ms - r.started.elapsed().as_millis() as i64).max(0))
            .sum();
        let devices = self.devices.len().max(1) as i64;
        QueueOutlook {
            ms_per_megapixel: self.ms_per_megapixel(kind),
            wait_ms: (queued + running) / devices,
            paused: self.paused,
            max_device_memory: self.devices.iter().map(|d| d.info.memory_budget).max().unwrap_or(0),
        }
    }
}

/// The whole queue, for administrators.
#[derive(Message)]
#[rtype(result = "Value")]
pub struct Snapshot;

impl Handler<Snapshot> for GpuSupervisor {
    type Result = MessageResult<Snapshot>;

    fn handle(&mut self, _: Snapshot, _: &mut Self::Context) -> Self::Result {
        let mut queued: Vec<&Job> = self.queue.iter().collect();
        queued.sort_by_key(|j| (-j.priority, j.id));
        MessageResult(json!({
            "paused": self.paused,
            "devices": self.devices.iter().map(|d| json!({ "device": d.info, "job": d.busy })).collect::<Vec<_>>(),
            "queued": queued.iter().map(|j| job_view(j)).collect::<Vec<_>>(),
            "running": self.running.values().map(|r| self.progress_event(r)["progress"].clone().as_object().cloned().map(|mut p| {
                p.insert("job".into(), job_view(&r.job));
                Value::Object(p)
            })).collect::<Vec<_>>(),
        }))
    }
}

impl Handler<DeviceReport> for GpuSupervisor {
    type Result = ();

    fn handle(&mut self, report: DeviceReport, ctx: &mut Self::Context) {
        match report {
            DeviceReport::Progress { job, stage, done, total } => {
                let interval = self.settings.progress_interval;
                let Some(r) = self.running.get_mut(&job) else { return };
                r.stage = stage;
                r.step = done;
                r.total = total;
                let due = r.last_event.is_none_or(|t| t.elapsed() >= interval) || (stage == "process" && done == total);
                if due {
                    r.last_event = Some(Instant::now());
                    let event = self.progress_event(&self.running[&job]);
                    self.emit(self.running[&job].job.project_id, event);
                }
            }
            DeviceReport::Preview { job, png } => {
                use base64::Engine as _;
                let Some(r) = self.running.get(&job) else { return };
                let mut event = self.progress_event(r);
                event["progress"]["preview"] = json!(format!(
                    "data:image/png;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(&png)
                ));
                self.emit(r.job.project_id, event);
            }
            DeviceReport::Finished {
                job,
                device,
                elapsed,
                result,
            } => {
                if let Some(slot) = self.devices.get_mut(device) {
                    if slot.busy == Some(job) {
                        slot.busy = None;
                    }
                }
                let Some(r) = self.running.remove(&job) else {
                    self.dispatch(ctx);
                    return;
                };
                let kind = JobKind::parse(&r.job.kind).expect("known kind");
                match result {
                    Ok(output) => {
                        // Speed per megapixel is learnt from single images only.
                        let mp = if kind.is_media() || output.duration_ms.is_some() {
                            0.0
                        } else {
                            output.width as f64 * output.height as f64 / 1e6
                        };
                        if mp > 0.05 {
                            let measured = elapsed.as_millis() as f64 / mp;
                            let avg = self.speed.entry(kind).or_insert(measured);
                            *avg = 0.7 * *avg + 0.3 * measured;
                        }
                        self.store_result(ctx, r.job, output);
                    }
                    Err(RunError::Cancelled) => {
                        let reason = r.cancel_reason.unwrap_or_else(|| "cancelled".into());
                        self.finish(ctx, r.job.id, Outcome::Cancelled { reason });
                    }
                    Err(RunError::Failed(reason)) => self.finish(ctx, r.job.id, Outcome::Failed { reason }),
                }
                self.dispatch(ctx);
            }
        }
    }
}

impl GpuSupervisor {
    /// Writes the result file (to a temporary name, then renamed), records it as an asset and
    /// finishes the job. A retried job reuses the asset an earlier attempt recorded.
    fn store_result(&mut self, ctx: &mut Context<Self>, job: Job, output: super::kinds::JobOutput) {
        let store = self.store.clone();
        let media = self.settings.media_dir.clone();
        let actual = output.credits;
        let id = job.id;
        let leftover = output.file.clone();
        // Scene cuts become markers on the timeline and/or split its clips (as asked), once the
        // job has succeeded.
        let scene_marks = (job.kind == "analyze.scenes")
            .then(|| {
                let p = serde_json::from_str::<Value>(&job.params).unwrap_or(Value::Null);
                let todo = SceneEdits {
                    markers: p["markers"].as_bool() != Some(false),
                    split: p["split"].as_bool() == Some(true),
                };
                // Each cut's exact source time in ticks (from its milliseconds for older lists).
                let per_ms = moviola_crdt::time::TICKS_PER_SECOND / 1000;
                let cuts = serde_json::from_slice::<Value>(&output.bytes).ok()?["cuts"]
                    .as_array()
                    .map(|c| {
                        c.iter()
                            .filter_map(|c| c["ticks"].as_i64().or_else(|| c["time_ms"].as_i64()?.checked_mul(per_ms)))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                (todo.markers || todo.split).then_some((todo, cuts))
            })
            .flatten()
            .zip(job.input_asset)
            .map(|((todo, cuts), input)| (job.project_id, input, todo, cuts));
        let fut = async move {
            if let Some(existing) = store.asset_of_job(id).await? {
                if let Some(file) = &output.file {
                    let _ = tokio::fs::remove_file(file).await;
                    let _ = tokio::fs::remove_file(file.with_extension("thumb.png")).await;
                }
                return Ok::<AssetId, anyhow::Error>(existing.id);
            }
            let ext = output.ext;
            let rel = format!("projects/{}/job-{}.{ext}", job.project_id, id);
            let path = media.join(&rel);
            tokio::fs::create_dir_all(path.parent().expect("has parent")).await?;
            let (sha, bytes) = match &output.file {
                // A large result: hashed as a stream, then moved (same file system) into place.
                Some(file) => {
                    let file = file.clone();
                    let (sha, bytes) = tokio::task::spawn_blocking(move || -> std::io::Result<(String, i64)> {
                        let mut f = std::fs::File::open(&file)?;
                        let mut hasher = Sha256::new();
                        let bytes = std::io::copy(&mut f, &mut hasher)?;
                        Ok((hex(&hasher.finalize()), bytes as i64))
                    })
                    .await??;
                    let file = output.file.as_ref().expect("matched");
                    tokio::fs::rename(file, &path).await?;
                    // The still the worker made, beside the video like an upload's.
                    let _ = tokio::fs::rename(file.with_extension("thumb.png"), path.with_extension("thumb.png")).await;
                    (sha, bytes)
                }
                None => {
                    let tmp = path.with_extension(format!("{ext}.part"));
                    tokio::fs::write(&tmp, &output.bytes).await?;
                    tokio::fs::rename(&tmp, &path).await?;
                    (hex(&Sha256::digest(&output.bytes)), output.bytes.len() as i64)
                }
            };
            let (asset, _) = store
                .insert_asset(
                    NewAsset {
                        project: job.project_id,
                        kind: output.kind.into(),
                        mime: output.mime.into(),
                        name: output.name.clone().unwrap_or_else(|| format!("{} of job {}.{ext}", job.kind, id)),
                        width: output.width as i32,
                        height: output.height as i32,
                        bytes,
                        sha256: sha,
                        path: rel,
                        created_by: job.user_id,
                        source_job: Some(id),
                        duration_ms: output.duration_ms,
                        info: output.info.clone(),
                    },
                    now_ms(),
                )
                .await?;
            Ok(asset.id)
        };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            if res.is_err() {
                // Nothing half-stored stays behind.
                if let Some(file) = &leftover {
                    let _ = std::fs::remove_file(file);
                    let _ = std::fs::remove_file(file.with_extension("thumb.png"));
                }
            }
            let outcome = match res {
                Ok(asset) => Outcome::Succeeded {
                    actual_credits: actual,
                    result_asset: Some(asset),
                },
                Err(err) => Outcome::Failed {
                    reason: format!("could not store the result: {err}"),
                },
            };
            let succeeded = matches!(outcome, Outcome::Succeeded { .. });
            act.finish(ctx, id, outcome);
            if let (true, Some((project, input, todo, cuts))) = (succeeded, scene_marks) {
                act.mark_scenes(ctx, id, project, input, todo, cuts);
            }
        }));
    }
}

/// The running actor of `project` (started if need be), for server edits to its timeline.
async fn project_actor(store: &Store, hub: &Hub, project: ProjectId) -> Result<Addr<crate::project::ProjectActor>, String> {
    let p = store
        .project_by_id(project)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("project deleted")?;
    let doc = moviola_crdt::wire::DocumentId::parse(&p.doc_id).map_err(|e| e.to_string())?;
    Ok(hub.project(project, doc))
}

/// What an `analyze.scenes` job does on the timeline with its cuts.
#[derive(Clone, Copy, Debug)]
pub struct SceneEdits {
    pub markers: bool,
    pub split: bool,
}

/// Markers (and splits) one `analyze.scenes` job puts on one clip at most.
pub const MAX_SCENE_MARKERS: usize = 500;

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
