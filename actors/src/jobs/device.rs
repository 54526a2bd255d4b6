//! DeviceActor: one per compute device. The actor owns a dedicated OS thread that runs jobs
//! (never an actix arbiter thread), keeps a model cache for that device, checks cancellation
//! between steps, and turns a panic inside a job into that job's failure.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;
use burn::tensor::backend::Backend;
use moviola_store::JobId;

use super::cache::ModelCache;
use super::kinds::{self, JobKind, JobOutput, Params, RunError, StageProgress};
use super::worker::WorkerLimits;

/// What a device is, for scheduling and for clients.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DeviceInfo {
    /// `cpu` or `cuda:0`, …
    pub name: String,
    pub backend: &'static str,
    /// Memory a job may use on this device, in bytes.
    pub memory_budget: u64,
}

/// Runs one job on some backend. The server binary picks the backend; tests may plug in
/// their own executor.
pub trait Executor: Send + Sync + 'static {
    fn run(&self, job: &RunJob, cache: &mut ModelCache, progress: &mut dyn StageProgress) -> Result<JobOutput, RunError>;
}

/// The executor for a burn backend and device; media kinds go to the worker process.
pub struct BurnExecutor<B: Backend> {
    pub device: B::Device,
    pub worker: WorkerLimits,
    /// Learned models' weights (`moviola models fetch`).
    pub models_dir: std::path::PathBuf,
}

impl<B: Backend> Executor for BurnExecutor<B> {
    fn run(&self, job: &RunJob, cache: &mut ModelCache, progress: &mut dyn StageProgress) -> Result<JobOutput, RunError> {
        // Footage (an input with a length) is decoded only in the media worker, whatever the kind.
        if job.kind.is_media() || job.footage {
            let scratch = job.scratch.clone();
            return kinds::run_media(
                job.kind,
                &job.params,
                &job.input_path,
                job.duration_ms,
                &self.models_dir,
                &scratch,
                &self.worker,
                job.estimate_credits,
                &job.cancel,
                progress,
            );
        }
        let input = std::fs::read(&job.input_path).map_err(|e| RunError::Failed(format!("cannot read the input asset: {e}")))?;
        kinds::run::<B>(&self.device, job.kind, &job.params, &input, &self.models_dir, cache, progress)
    }
}

/// Run this job. Sent by the supervisor; the device answers with [`DeviceReport`]s.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct RunJob {
    pub job: JobId,
    pub kind: JobKind,
    pub params: Params,
    pub input_path: PathBuf,
    /// Length of the input (media kinds).
    pub duration_ms: i64,
    /// The input is video or audio (or a timeline): decoded only in the media worker.
    pub footage: bool,
    pub estimate_credits: i64,
    /// A folder for temporary files.
    pub scratch: PathBuf,
    pub cancel: Arc<AtomicBool>,
    pub reply: Recipient<DeviceReport>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub enum DeviceReport {
    Preview {
        job: JobId,
        png: Vec<u8>,
    },
    Progress {
        job: JobId,
        stage: &'static str,
        done: u64,
        total: u64,
    },
    Finished {
        job: JobId,
        device: usize,
        elapsed: Duration,
        result: Result<JobOutput, RunError>,
    },
}

pub struct DeviceActor {
    index: usize,
    info: DeviceInfo,
    executor: Arc<dyn Executor>,
    work: Option<std::sync::mpsc::Sender<RunJob>>,
}

impl DeviceActor {
    pub fn new(index: usize, info: DeviceInfo, executor: Arc<dyn Executor>) -> DeviceActor {
        DeviceActor {
            index,
            info,
            executor,
            work: None,
        }
    }

    /// Starts (or restarts) the device's worker thread.
    fn spawn_thread(&mut self) {
        let (tx, rx) = std::sync::mpsc::channel::<RunJob>();
        let executor = self.executor.clone();
        let budget = self.info.memory_budget;
        let index = self.index;
        let name = self.info.name.clone();
        std::thread::Builder::new()
            .name(format!("moviola-device-{name}"))
            .spawn(move || {
                let mut cache = ModelCache::new(budget / 4);
                while let Ok(job) = rx.recv() {
                    let started = Instant::now();
                    let mut progress = Reporter { job: &job, last: None };
                    let result = std::panic::catch_unwind(AssertUnwindSafe(|| executor.run(&job, &mut cache, &mut progress)));
                    let result = match result {
                        Ok(r) => r,
                        Err(panic) => {
                            let what = panic
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "unknown panic".into());
                            tracing::error!(job = %job.job, device = %name, "job panicked: {what}");
                            // The cache may hold half-built state; start clean.
                            cache.clear();
                            Err(RunError::Failed(format!("internal error on device {name}: {what}")))
                        }
                    };
                    job.reply.do_send(DeviceReport::Finished {
                        job: job.job,
                        device: index,
                        elapsed: started.elapsed(),
                        result,
                    });
                }
            })
            .expect("spawn device thread");
        self.work = Some(tx);
    }
}

struct Reporter<'a> {
    job: &'a RunJob,
    last: Option<(&'static str, u64)>,
}

impl StageProgress for Reporter<'_> {
    fn stage(&mut self, stage: &'static str, done: u64, total: u64) {
        if self.last == Some((stage, done)) {
            return;
        }
        self.last = Some((stage, done));
        self.job.reply.do_send(DeviceReport::Progress {
            job: self.job.job,
            stage,
            done,
            total,
        });
    }

    fn cancelled(&self) -> bool {
        self.job.cancel.load(Ordering::Relaxed)
    }

    fn preview(&mut self, png: Vec<u8>) {
        self.job.reply.do_send(DeviceReport::Preview { job: self.job.job, png });
    }
}

impl Actor for DeviceActor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        self.spawn_thread();
        tracing::info!(device = %self.info.name, backend = self.info.backend, "device ready");
    }
}

impl Handler<RunJob> for DeviceActor {
    type Result = ();

    fn handle(&mut self, job: RunJob, _: &mut Self::Context) {
        let job = match self.work.as_ref().map(|w| w.send(job)) {
            Some(Ok(())) => return,
            Some(Err(std::sync::mpsc::SendError(job))) => job,
            None => unreachable!("thread spawned in started"),
        };
        // The worker thread is gone (it cannot panic past catch_unwind, but be safe): restart it.
        tracing::error!(device = %self.info.name, "device thread stopped; restarting it");
        self.spawn_thread();
        if let Some(Err(std::sync::mpsc::SendError(job))) = self.work.as_ref().map(|w| w.send(job)) {
            job.reply.do_send(DeviceReport::Finished {
                job: job.job,
                device: self.index,
                elapsed: Duration::ZERO,
                result: Err(RunError::Failed(format!("device {} is not running", self.info.name))),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::jobs::kinds::UpscaleParams;
    use moviola_models::Frame;

    /// Panics on its first job, then works.
    struct PanicsOnce(AtomicUsize);

    impl Executor for PanicsOnce {
        fn run(&self, _: &RunJob, _: &mut ModelCache, progress: &mut dyn StageProgress) -> Result<JobOutput, RunError> {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("boom in a kernel");
            }
            progress.stage("process", 1, 1);
            let _ = Frame::new(1, 1, vec![0, 0, 0]).unwrap();
            Ok(JobOutput {
                bytes: vec![1, 2, 3],
                kind: "image",
                mime: "image/png",
                ext: "png",
                width: 1,
                height: 1,
                credits: 1,
                ..Default::default()
            })
        }
    }

    struct Collector(Arc<Mutex<Vec<String>>>);

    impl Actor for Collector {
        type Context = Context<Self>;
    }

    impl Handler<DeviceReport> for Collector {
        type Result = ();
        fn handle(&mut self, report: DeviceReport, _: &mut Context<Self>) {
            let line = match report {
                DeviceReport::Progress { job, stage, .. } => format!("{job} progress {stage}"),
                DeviceReport::Preview { job, .. } => format!("{job} preview"),
                DeviceReport::Finished { job, result: Ok(_), .. } => format!("{job} ok"),
                DeviceReport::Finished { job, result: Err(e), .. } => format!("{job} err {e}"),
            };
            self.0.lock().unwrap().push(line);
        }
    }

    #[actix::test]
    async fn a_panicking_job_fails_and_the_device_keeps_serving() {
        let info = DeviceInfo {
            name: "test".into(),
            backend: "none",
            memory_budget: 1 << 20,
        };
        let device = DeviceActor::new(0, info, Arc::new(PanicsOnce(AtomicUsize::new(0)))).start();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let collector = Collector(seen.clone()).start();
        let job = |id: i64| RunJob {
            job: JobId(id),
            kind: JobKind::EnhanceUpscale,
            params: Params::Upscale(UpscaleParams {
                scale: 2.0,
                height: None,
                filter: moviola_models::resample::Filter::Bicubic,
                tier: Default::default(),
                model: None,
            }),
            input_path: PathBuf::from("/nonexistent"),
            duration_ms: 0,
            footage: false,
            estimate_credits: 1,
            scratch: std::env::temp_dir(),
            cancel: Arc::new(AtomicBool::new(false)),
            reply: collector.clone().recipient(),
        };
        device.do_send(job(1));
        device.do_send(job(2));
        for _ in 0..200 {
            if seen.lock().unwrap().len() >= 3 {
                break;
            }
            actix::clock::sleep(Duration::from_millis(10)).await;
        }
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(
            seen[0].starts_with("1 err internal error on device test: boom in a kernel"),
            "{seen:?}"
        );
        assert_eq!(&seen[1..], ["2 progress process", "2 ok"]);
    }
}
