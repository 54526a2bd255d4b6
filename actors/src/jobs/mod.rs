//! Jobs: every AI and post-processing feature runs as one.
//!
//! - [`kinds`] — the registry: parameters, inputs, capability guard, cost, stages, execution.
//! - [`device::DeviceActor`] — one per compute device, running jobs on its own OS thread.
//! - [`supervisor::GpuSupervisor`] — queue, scheduling, transitions, credits, events.
//! - [`events::EventsSession`] — the `/events` WebSocket: job events for watched projects.

pub mod cache;
pub mod device;
pub mod events;
pub mod kinds;
pub mod supervisor;
pub mod worker;

use std::sync::Arc;

use actix::Message;
use moviola_store::{Job, ProjectId};
use serde_json::{Value, json};

/// One job event, already serialised (built once, sent to every watcher).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct JobEvent {
    pub project: ProjectId,
    pub json: Arc<str>,
}

/// A job as clients see it (HTTP and `/events`).
pub fn job_view(job: &Job) -> Value {
    let params = serde_json::from_str::<Value>(&job.params).unwrap_or(Value::Null);
    // An export stores its whole plan; clients see what was asked and what it became.
    let params = if job.kind == "export.render" {
        json!({ "output": params["output"], "resolved": params["resolved"] })
    } else {
        params
    };
    json!({
        "id": job.id,
        "project_id": job.project_id,
        "user_id": job.user_id,
        "kind": job.kind,
        "params": params,
        "input_asset": job.input_asset,
        "state": job.state,
        "priority": job.priority,
        "estimate_credits": job.estimate_credits,
        "actual_credits": job.actual_credits,
        "estimate_ms": job.estimate_ms,
        "attempts": job.attempts,
        "error": job.error,
        "result_asset": job.result_asset,
        "device": job.device,
        "timeline_clip": job.timeline_clip,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    })
}
