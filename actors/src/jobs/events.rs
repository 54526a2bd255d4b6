//! [`EventsSession`]: one per `/events` WebSocket. Registers with the supervisor as a watcher
//! of the projects the (already authorised) user asked for and forwards their job events as
//! JSON text frames through the same bounded outbox as `/sync`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix::prelude::*;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use moviola_store::{ProjectId, UserId};

use super::JobEvent;
use super::supervisor::{GpuSupervisor, Watch};
use crate::limits::Limits;
use crate::session::{Outbox, Outgoing, spawn_writer};

static NEXT_WATCHER: AtomicU64 = AtomicU64::new(1);

pub struct EventsSession {
    id: u64,
    user: UserId,
    projects: Vec<ProjectId>,
    supervisor: Addr<GpuSupervisor>,
    outbox: Outbox,
    limits: Limits,
    last_seen: Instant,
}

/// Upgrades a request whose user may watch `projects`.
pub fn start(
    req: &HttpRequest,
    payload: web::Payload,
    supervisor: Addr<GpuSupervisor>,
    limits: Limits,
    user: UserId,
    projects: Vec<ProjectId>,
) -> actix_web::Result<HttpResponse> {
    let (response, session, stream) = actix_ws::handle(req, payload)?;
    let stream = stream
        .max_frame_size(64 * 1024)
        .aggregate_continuations()
        .max_continuation_size(64 * 1024);
    let outbox = spawn_writer(session, limits.outbound_queue);
    EventsSession::create(move |ctx| {
        ctx.add_stream(stream);
        EventsSession {
            id: NEXT_WATCHER.fetch_add(1, Ordering::Relaxed),
            user,
            projects,
            supervisor,
            outbox,
            limits,
            last_seen: Instant::now(),
        }
    });
    Ok(response)
}

impl Actor for EventsSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for &project in &self.projects {
            self.supervisor.do_send(Watch {
                project,
                watcher: self.id,
                recipient: Some(ctx.address().recipient()),
            });
        }
        let hello = serde_json::json!({ "type": "hello", "user_id": self.user, "projects": self.projects });
        self.outbox.send_text(hello.to_string().into());
        ctx.run_interval(self.limits.heartbeat_interval, |act, ctx| {
            if act.outbox.is_closed() || act.last_seen.elapsed() > act.limits.client_timeout {
                ctx.stop();
                return;
            }
            act.outbox.push(Outgoing::Ping);
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        for &project in &self.projects {
            self.supervisor.do_send(Watch {
                project,
                watcher: self.id,
                recipient: None,
            });
        }
    }
}

impl Handler<JobEvent> for EventsSession {
    type Result = ();

    fn handle(&mut self, event: JobEvent, ctx: &mut Context<Self>) {
        if !self.outbox.send_text(event.json) {
            ctx.stop();
        }
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for EventsSession {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        self.last_seen = Instant::now();
        match item {
            Ok(AggregatedMessage::Ping(data)) => {
                self.outbox.push(Outgoing::Pong(data.to_vec()));
            }
            Ok(AggregatedMessage::Close(_)) => ctx.stop(),
            // The stream is one-way; anything a client sends is ignored.
            Ok(_) => {}
            Err(_) => {
                self.outbox.push(Outgoing::Close(CloseReason {
                    code: CloseCode::Size,
                    description: Some("frame too large or malformed".into()),
                }));
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
