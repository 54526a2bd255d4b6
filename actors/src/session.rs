//! [`SessionActor`]: one per `/sync` WebSocket connection.
//!
//! Transport: `actix-ws` (the maintained successor of the deprecated `actix-web-actors`, which
//! also cannot reassemble fragmented messages) wrapped in an actix actor: the aggregated frame
//! stream is added to the actor with `ctx.add_stream`, and a writer task owns the socket and
//! drains a bounded [`Outbox`]. A peer that lets the outbox fill up is disconnected rather than
//! allowed to grow the server's memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix::prelude::*;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError};
use moviola_crdt::wire::{self, DecodeError, DocumentId, PeerMetadata};
use moviola_store::{Role, UserId};
use tokio::sync::{Notify, mpsc};

use crate::hub::{Hub, SessionSlot};
use crate::project::{EphemeralIn, Join, JoinRefused, Leave, ProjectActor, SyncIn};

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

pub(crate) enum Outgoing {
    Frame(Vec<u8>),
    Text(Arc<str>),
    Ping,
    Pong(Vec<u8>),
    Close(CloseReason),
}

/// The bounded queue of frames towards one client.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Outgoing>,
    overflow: Arc<Notify>,
}

impl Outbox {
    /// Queues a frame. Returns false if the client is gone or too slow (it is then closed).
    pub fn send(&self, frame: Vec<u8>) -> bool {
        self.push(Outgoing::Frame(frame))
    }

    /// Queues a text frame (the JSON `/events` stream).
    pub fn send_text(&self, text: Arc<str>) -> bool {
        self.push(Outgoing::Text(text))
    }

    pub(crate) fn push(&self, item: Outgoing) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Starts the writer task that owns the socket and returns the outbox feeding it.
pub(crate) fn spawn_writer(mut session: actix_ws::Session, capacity: usize) -> Outbox {
    let (tx, mut rx) = mpsc::channel::<Outgoing>(capacity);
    let overflow = Arc::new(Notify::new());
    let overflowed = overflow.clone();
    actix_web::rt::spawn(async move {
        loop {
            tokio::select! {
                item = rx.recv() => {
                    let res = match item {
                        Some(Outgoing::Frame(frame)) => session.binary(frame).await,
                        Some(Outgoing::Text(text)) => session.text(text.to_string()).await,
                        Some(Outgoing::Ping) => session.ping(b"moviola").await,
                        Some(Outgoing::Pong(data)) => session.pong(&data).await,
                        Some(Outgoing::Close(reason)) => {
                            let _ = session.close(Some(reason)).await;
                            break;
                        }
                        None => {
                            let _ = session.close(None).await;
                            break;
                        }
                    };
                    if res.is_err() {
                        break;
                    }
                }
                _ = overflowed.notified() => {
                    tracing::warn!("closing a client that cannot keep up (outbound queue full)");
                    let _ = session.close(Some(CloseReason { code: CloseCode::Again, description: Some("client too slow: outbound queue full".into()) })).await;
                    break;
                }
            }
        }
        rx.close();
    });
    Outbox { tx, overflow }
}

/// Accepts the upgrade, sends one `error` message and closes. Used for a missing or bad
/// token: refusing the HTTP upgrade itself makes the Node client throw an uncaught exception,
/// while an `error` message is shown and the client can retry later.
pub fn reject(
    req: &HttpRequest,
    payload: web::Payload,
    server_peer_id: &str,
    message: &str,
    code: CloseCode,
) -> actix_web::Result<HttpResponse> {
    let (response, mut session, _stream) = actix_ws::handle(req, payload)?;
    let frame = wire::Message::Error {
        sender_id: Some(server_peer_id.to_owned()),
        target_id: None,
        message: message.to_owned(),
    }
    .encode();
    let description = message.chars().take(120).collect::<String>();
    actix_web::rt::spawn(async move {
        let _ = session.binary(frame).await;
        let _ = session
            .close(Some(CloseReason {
                code,
                description: Some(description),
            }))
            .await;
    });
    Ok(response)
}

/// Upgrades an authenticated request to a `/sync` session.
pub fn start(req: &HttpRequest, payload: web::Payload, hub: Hub, user: UserId, slot: SessionSlot) -> actix_web::Result<HttpResponse> {
    let limits = hub.limits().clone();
    let (response, session, stream) = actix_ws::handle(req, payload)?;
    let stream = stream
        .max_frame_size(limits.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(limits.max_message_bytes);
    let outbox = spawn_writer(session, limits.outbound_queue);
    SessionActor::create(move |ctx| {
        ctx.add_stream(stream);
        SessionActor {
            conn: NEXT_CONN.fetch_add(1, Ordering::Relaxed),
            bucket: TokenBucket::new(limits.messages_per_second),
            ephemeral_bucket: TokenBucket::new(limits.ephemeral_bytes_per_second),
            hub,
            user,
            outbox,
            _slot: slot,
            peer_id: None,
            docs: HashMap::new(),
            last_seen: Instant::now(),
            last_throttle_error: None,
            last_ephemeral_throttle_error: None,
            jitter_rng: (0x9e37_79b9_7f4a_7c15 ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)) | 1,
        }
    });
    Ok(response)
}

/// A token bucket: `rate` tokens per second, holding at most `2 * rate`.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        TokenBucket {
            rate,
            tokens: 2.0 * rate,
            at: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        self.take_n(1.0)
    }

    fn take_n(&mut self, n: f64) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(2.0 * self.rate);
        self.at = now;
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

enum DocAccess {
    Joined { addr: Addr<ProjectActor> },
    Unavailable,
}

pub struct SessionActor {
    hub: Hub,
    user: UserId,
    conn: u64,
    outbox: Outbox,
    _slot: SessionSlot,
    /// The client's automerge-repo peer id, known after `join`.
    peer_id: Option<String>,
    docs: HashMap<DocumentId, DocAccess>,
    bucket: TokenBucket,
    /// Ephemeral payload bytes.
    ephemeral_bucket: TokenBucket,
    last_seen: Instant,
    last_throttle_error: Option<Instant>,
    last_ephemeral_throttle_error: Option<Instant>,
    /// State of the `test_jitter` delays.
    jitter_rng: u64,
}

impl SessionActor {
    fn send(&self, msg: wire::Message) {
        self.outbox.send(msg.encode());
    }

    fn send_error(&self, message: impl Into<String>) {
        self.send(wire::Message::Error {
            sender_id: Some(self.hub.peer_id().to_owned()),
            target_id: self.peer_id.clone(),
            message: message.into(),
        });
    }

    fn close(&self, code: CloseCode, description: &str) {
        self.outbox.push(Outgoing::Close(CloseReason {
            code,
            description: Some(description.to_owned()),
        }));
    }

    fn handle_frame(&mut self, bytes: &[u8], ctx: &mut Context<Self>) {
        if !self.bucket.take() {
            // Report at most once a second, so a flood does not turn into a flood of errors.
            if self.last_throttle_error.is_none_or(|t| t.elapsed().as_secs() >= 1) {
                self.last_throttle_error = Some(Instant::now());
                self.send_error(format!(
                    "rate limit exceeded: at most {} messages per second; messages past the limit were dropped",
                    self.hub.limits().messages_per_second
                ));
            }
            return;
        }
        let msg = match wire::Message::decode(bytes) {
            Ok(msg) => msg,
            Err(err) => {
                let hint = match err {
                    DecodeError::UnknownType(_) => "; this server speaks automerge-repo protocol version 1",
                    _ => "",
                };
                self.send_error(format!("{err}{hint}; the message was ignored"));
                return;
            }
        };
        match msg {
            wire::Message::Join {
                sender_id,
                supported_protocol_versions,
                ..
            } => {
                if supported_protocol_versions.is_some_and(|v| !v.iter().any(|v| v == wire::PROTOCOL_VERSION)) {
                    self.send_error("unsupported protocol version: this server speaks version 1");
                    self.close(CloseCode::Protocol, "unsupported protocol version");
                    return;
                }
                match &self.peer_id {
                    // A repeated join as the same peer is answered again; nothing changes.
                    Some(current) if *current == sender_id => {}
                    Some(current) => {
                        self.send_error(format!(
                            "this connection already joined as peer {current}: one peer per connection; open another connection for peer {sender_id}"
                        ));
                        return;
                    }
                    None => self.peer_id = Some(sender_id.clone()),
                }
                self.send(wire::Message::Peer {
                    sender_id: self.hub.peer_id().to_owned(),
                    target_id: sender_id,
                    peer_metadata: PeerMetadata {
                        storage_id: None,
                        is_ephemeral: Some(false),
                    },
                    selected_protocol_version: wire::PROTOCOL_VERSION.to_owned(),
                });
            }
            _ if self.peer_id.is_none() => self.send_error(format!("send join before {}; the message was ignored", msg.kind())),
            wire::Message::Request { document_id, data, .. } | wire::Message::Sync { document_id, data, .. } => {
                self.route_maybe_later(document_id, Routed::Sync(data), ctx);
            }
            wire::Message::Ephemeral {
                sender_id,
                document_id,
                count,
                session_id,
                data,
                ..
            } => {
                let limits = self.hub.limits();
                if data.len() > limits.max_ephemeral_bytes {
                    self.send_error(format!(
                        "ephemeral message of {} bytes for document {document_id} exceeds the limit of {} bytes; it was not relayed",
                        data.len(),
                        limits.max_ephemeral_bytes
                    ));
                    return;
                }
                if !self.ephemeral_bucket.take_n(data.len() as f64) {
                    if self.last_ephemeral_throttle_error.is_none_or(|t| t.elapsed().as_secs() >= 1) {
                        self.last_ephemeral_throttle_error = Some(Instant::now());
                        self.send_error(format!(
                            "presence rate limit exceeded: at most {} ephemeral bytes per second; messages past the limit were dropped",
                            limits.ephemeral_bytes_per_second
                        ));
                    }
                    return;
                }
                self.route_maybe_later(
                    document_id,
                    Routed::Ephemeral {
                        sender_id,
                        session_id,
                        count,
                        data,
                    },
                    ctx,
                );
            }
            // No other server shares our storage, so there are no remote heads to gossip.
            wire::Message::RemoteSubscriptionChange { .. } | wire::Message::RemoteHeadsChanged { .. } | wire::Message::Leave { .. } => {}
            wire::Message::DocUnavailable { .. } | wire::Message::Peer { .. } => {}
            wire::Message::Error { message, .. } => tracing::info!(conn = self.conn, %message, "client reported an error"),
        }
    }

    /// Routes at once, or with `test_jitter` set after a pseudo-random delay. `ctx.wait` holds
    /// back every later frame meanwhile, so the order of a session's messages is kept.
    fn route_maybe_later(&mut self, doc: DocumentId, routed: Routed, ctx: &mut Context<Self>) {
        let jitter = self.hub.limits().test_jitter;
        if jitter.is_zero() {
            return self.route(doc, routed, ctx, true);
        }
        // xorshift64: enough to spread delays, no dependency.
        self.jitter_rng ^= self.jitter_rng << 13;
        self.jitter_rng ^= self.jitter_rng >> 7;
        self.jitter_rng ^= self.jitter_rng << 17;
        let delay = std::time::Duration::from_micros(self.jitter_rng % (jitter.as_micros() as u64 + 1));
        ctx.wait(
            actix::clock::sleep(delay)
                .into_actor(self)
                .map(move |_, act, ctx| act.route(doc, routed, ctx, true)),
        );
    }

    /// Sends a document message to its project, resolving access on first use.
    fn route(&mut self, doc: DocumentId, routed: Routed, ctx: &mut Context<Self>, may_resolve: bool) {
        match self.docs.get(&doc) {
            Some(DocAccess::Joined { addr }) => {
                let res = match routed {
                    Routed::Sync(data) => addr.try_send(SyncIn { conn: self.conn, data }).map_err(|e| match e {
                        SendError::Full(m) => (true, Routed::Sync(m.data)),
                        SendError::Closed(m) => (false, Routed::Sync(m.data)),
                    }),
                    Routed::Ephemeral {
                        sender_id,
                        session_id,
                        count,
                        data,
                    } => addr
                        .try_send(EphemeralIn {
                            conn: self.conn,
                            sender_id,
                            session_id,
                            count,
                            data,
                        })
                        .map_err(|e| match e {
                            SendError::Full(m) | SendError::Closed(m) => (
                                false,
                                Routed::Ephemeral {
                                    sender_id: m.sender_id,
                                    session_id: m.session_id,
                                    count: m.count,
                                    data: m.data,
                                },
                            ),
                        }),
                };
                match res {
                    Ok(()) => {}
                    Err((true, _)) => self.send_error(format!("server busy: document {doc} has too many queued messages; retry shortly")),
                    Err((false, routed)) => {
                        // The project actor stopped (idle or shut down): join a fresh one.
                        self.docs.remove(&doc);
                        if may_resolve {
                            self.route(doc, routed, ctx, false);
                        }
                    }
                }
            }
            Some(DocAccess::Unavailable) => self.send_unavailable(doc),
            None => self.resolve(doc, routed, ctx),
        }
    }

    fn send_unavailable(&self, document_id: DocumentId) {
        self.send(wire::Message::DocUnavailable {
            sender_id: self.hub.peer_id().to_owned(),
            target_id: self.peer_id.clone().unwrap_or_default(),
            document_id,
        });
    }

    /// Looks up the document's project and the user's role, joins the project actor, then
    /// routes the message. The session handles nothing else meanwhile, so order is kept.
    fn resolve(&mut self, doc: DocumentId, routed: Routed, ctx: &mut Context<Self>) {
        let hub = self.hub.clone();
        let user = self.user;
        let join = Join {
            conn: self.conn,
            peer_id: self.peer_id.clone().unwrap_or_default(),
            user,
            role: Role::Viewer,
            outbox: self.outbox.clone(),
        };
        let doc_for_lookup = doc.clone();
        let fut = async move {
            let Some(project) = hub
                .store()
                .project_by_doc_id(doc_for_lookup.as_str())
                .await
                .map_err(|e| e.to_string())?
            else {
                return Ok(None);
            };
            let Some(role) = hub.store().role_of(project.id, user).await.map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            for _ in 0..3 {
                let addr = hub.project(project.id, doc_for_lookup.clone());
                match addr.send(Join { role, ..join.clone() }).await {
                    Ok(Ok(())) => return Ok(Some(addr)),
                    Ok(Err(JoinRefused::Stopping)) | Err(_) => continue,
                    Ok(Err(JoinRefused::Unavailable(reason))) => return Err(reason),
                }
            }
            Err("the project could not be opened; retry shortly".to_owned())
        };
        ctx.wait(
            fut.into_actor(self)
                .map(move |res: Result<Option<Addr<ProjectActor>>, String>, act, ctx| match res {
                    Ok(Some(addr)) => {
                        act.docs.insert(doc.clone(), DocAccess::Joined { addr });
                        act.route(doc, routed, ctx, false);
                    }
                    Ok(None) => {
                        // Unknown document or not a member: indistinguishable on purpose.
                        act.docs.insert(doc.clone(), DocAccess::Unavailable);
                        act.send_unavailable(doc);
                    }
                    Err(reason) => {
                        act.send_error(format!("document {doc} is unavailable: {reason}"));
                        act.send_unavailable(doc);
                    }
                }),
        );
    }
}

enum Routed {
    Sync(Vec<u8>),
    Ephemeral {
        sender_id: String,
        session_id: String,
        count: u64,
        data: Vec<u8>,
    },
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let interval = self.hub.limits().heartbeat_interval;
        ctx.run_interval(interval, |act, ctx| {
            if act.outbox.is_closed() {
                ctx.stop();
                return;
            }
            if act.last_seen.elapsed() > act.hub.limits().client_timeout {
                tracing::info!(conn = act.conn, "client timed out");
                act.close(CloseCode::Away, "heartbeat timeout");
                ctx.stop();
                return;
            }
            act.outbox.push(Outgoing::Ping);
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        for access in self.docs.values() {
            if let DocAccess::Joined { addr } = access {
                addr.do_send(Leave { conn: self.conn });
            }
        }
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for SessionActor {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        self.last_seen = Instant::now();
        match item {
            Ok(AggregatedMessage::Binary(bytes)) => self.handle_frame(&bytes, ctx),
            Ok(AggregatedMessage::Text(_)) => {
                self.send_error("text frames are not part of the protocol: send each message as one binary CBOR frame")
            }
            Ok(AggregatedMessage::Ping(data)) => {
                self.outbox.push(Outgoing::Pong(data.to_vec()));
            }
            Ok(AggregatedMessage::Pong(_)) => {}
            Ok(AggregatedMessage::Close(_)) => ctx.stop(),
            Err(err) => {
                let limits = self.hub.limits();
                let message = match err {
                    ProtocolError::Overflow => format!(
                        "frame too large: the limit is {} bytes per frame and {} bytes per message",
                        limits.max_frame_bytes, limits.max_message_bytes
                    ),
                    other => format!("WebSocket protocol error: {other}"),
                };
                tracing::info!(conn = self.conn, %message, "closing session");
                self.send_error(message.clone());
                self.close(CloseCode::Size, "frame too large or malformed");
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
