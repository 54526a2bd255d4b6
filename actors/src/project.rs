//! [`ProjectActor`]: one per open project. Owns the project's automerge document and one sync
//! state per connected peer.
//!
//! Invariant — acknowledged ⇒ durable: incoming sync messages are queued and handled together
//! on a short tick. The batch is applied, the document's new changes are appended to the store's
//! journal and **committed**, and only then are sync messages generated for anyone — the sender's
//! acknowledgement (a sync message whose heads include its changes) and the relay to every other
//! peer alike. While the commit is in flight the actor processes nothing else (`ctx.wait`). If the
//! commit fails, the in-memory document is reloaded from the store and every peer's sync state is
//! reset, so nothing unpersisted is ever shown to anyone.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Instant;

use actix::prelude::*;
use automerge::sync::{self, SyncDoc};
use automerge::{Automerge, ReadDoc};
use moviola_crdt::wire::{self, DocumentId};
use moviola_store::{ProjectId, Role, StoredDocument, UserId};

use crate::hub::Hub;
use crate::limits::ProjectSettings;
use crate::now_ms;
use crate::session::Outbox;

/// Mailbox size of a project actor; sessions use `try_send` and report "server busy" past it.
pub const PROJECT_MAILBOX: usize = 4096;

struct Peer {
    peer_id: String,
    user: UserId,
    role: Role,
    outbox: Outbox,
    state: sync::State,
    /// Set once the peer sent `request` or `sync`: only then does it get sync messages.
    syncing: bool,
    /// The peer was told once that its changes are refused.
    told_read_only: bool,
    /// Our heads in the last sync message actually sent to this peer (see `process_batch`).
    told_heads: Vec<automerge::ChangeHash>,
}

impl Peer {
    /// A fresh sync state, as after a (re)join.
    fn reset_sync(&mut self) {
        self.state = sync::State::new();
        self.state.set_read_only(!self.role.can_edit());
        self.told_heads.clear();
    }
}

struct PendingSync {
    conn: u64,
    data: Vec<u8>,
}

enum Phase {
    Loading,
    Ready,
    Failed(String),
    Stopping,
}

pub struct ProjectActor {
    hub: Hub,
    project: ProjectId,
    doc_id: DocumentId,
    settings: ProjectSettings,
    doc: Automerge,
    phase: Phase,
    peers: HashMap<u64, Peer>,
    pending: Vec<PendingSync>,
    /// Edits the server itself makes (job placeholders and results), applied with the next batch.
    server_edits: Vec<moviola_crdt::EditOp>,
    tick_scheduled: bool,
    /// Sequence number of the newest journal entry covered by `doc`.
    last_seq: i64,
    entries_since_compaction: u64,
    idle_since: Option<Instant>,
    /// Highest ephemeral `count` seen per `(senderId, sessionId)`, to drop echoes.
    ephemeral_seen: HashMap<(String, String), u64>,
}

impl ProjectActor {
    pub(crate) fn new(hub: Hub, project: ProjectId, doc_id: DocumentId, settings: ProjectSettings) -> Self {
        ProjectActor {
            hub,
            project,
            doc_id,
            settings,
            doc: Automerge::new(),
            phase: Phase::Loading,
            peers: HashMap::new(),
            pending: Vec::new(),
            server_edits: Vec::new(),
            tick_scheduled: false,
            last_seq: 0,
            entries_since_compaction: 0,
            idle_since: Some(Instant::now()),
            ephemeral_seen: HashMap::new(),
        }
    }

    fn send_error(&self, peer: &Peer, message: String) {
        let frame = wire::Message::Error {
            sender_id: Some(self.hub.peer_id().to_owned()),
            target_id: Some(peer.peer_id.clone()),
            message,
        }
        .encode();
        peer.outbox.send(frame);
    }

    /// Loads the document from the store; `ctx.wait` keeps every message queued meanwhile.
    fn load(&mut self, ctx: &mut Context<Self>) {
        let store = self.hub.store().clone();
        let project = self.project;
        ctx.wait(
            async move { store.load_document(project).await }
                .into_actor(self)
                .map(|res, act, ctx| {
                    match res
                        .map_err(|e| e.to_string())
                        .and_then(|stored| rebuild(&stored).map(|doc| (doc, stored)))
                    {
                        Ok((doc, stored)) => {
                            act.doc = doc;
                            act.last_seq = stored.changes.last().map_or(stored.upto_seq, |(seq, _)| *seq);
                            act.entries_since_compaction = stored.changes.len() as u64;
                            act.phase = Phase::Ready;
                            tracing::debug!(project = %act.project, entries = stored.changes.len(), "project loaded");
                        }
                        Err(err) => {
                            tracing::error!(project = %act.project, %err, "cannot load project document");
                            act.phase = Phase::Failed(err);
                            act.hub.deregister(act.project, &ctx.address());
                            ctx.stop();
                        }
                    }
                }),
        );
    }

    fn schedule_tick(&mut self, ctx: &mut Context<Self>) {
        if !self.tick_scheduled {
            self.tick_scheduled = true;
            ctx.run_later(self.settings.batch_interval, |act, ctx| {
                act.tick_scheduled = false;
                act.process_batch(ctx);
            });
        }
    }

    /// Applies every queued sync message, persists what changed, then answers and relays.
    fn process_batch(&mut self, ctx: &mut Context<Self>) {
        if !matches!(self.phase, Phase::Ready) {
            return;
        }
        let heads_before = self.doc.get_heads();
        let mut senders = Vec::new();
        for PendingSync { conn, data } in std::mem::take(&mut self.pending) {
            let Some(peer) = self.peers.get_mut(&conn) else { continue };
            let message = match sync::Message::decode(&data) {
                Ok(m) => m,
                Err(err) => {
                    let text = format!(
                        "sync data for document {} is not an automerge sync message ({err}); nothing was changed",
                        self.doc_id
                    );
                    let peer = &self.peers[&conn];
                    self.send_error(peer, text);
                    continue;
                }
            };
            let mut message = message;
            if peer.role.can_edit() {
                // A change automerge would drop silently (bad checksum) is refused out loud;
                // the rest of the message is handled, so the exchange goes on.
                let bad = message.changes.iter().find_map(|chunk| crate::chunks::verify(chunk).err());
                if let Some(bad) = bad {
                    message.changes = sync::ChunkList::empty();
                    let text = format!(
                        "sync message for document {} carries a change that cannot be applied ({bad}); its changes were not applied and nothing was stored",
                        self.doc_id
                    );
                    let peer = &self.peers[&conn];
                    self.send_error(peer, text);
                }
            }
            let peer = self.peers.get_mut(&conn).expect("peer present");
            if !peer.role.can_edit() {
                // A viewer holding changes we lack has edited locally. Refuse them: drop the
                // changes, and take as its heads what it has of ours, so that the exchange
                // settles instead of asking for those changes forever. Its own changes usually
                // sit on top of our heads, so merely dropping the unknown heads would often
                // leave none — which automerge reads as "the peer lost everything" and answers
                // with the whole document, over and over. What it has of ours is the known part
                // of its heads plus the heads of its last sync with us.
                let before = message.heads.len();
                message.heads.retain(|h| self.doc.get_change_by_hash(h).is_some());
                message.changes = sync::ChunkList::empty();
                let refused = message.heads.len() != before;
                if refused {
                    for have in &message.have {
                        for h in &have.last_sync {
                            if !message.heads.contains(h) && self.doc.get_change_by_hash(h).is_some() {
                                message.heads.push(*h);
                            }
                        }
                    }
                    if message.heads.is_empty() {
                        message.heads = peer.state.last_sent_heads.clone();
                    }
                    message.heads.sort();
                }
                if refused && !peer.told_read_only {
                    peer.told_read_only = true;
                    let text = format!(
                        "your role in this project is {}: your changes to document {} were refused and are neither stored nor shared",
                        peer.role.as_str(),
                        self.doc_id
                    );
                    let peer = &self.peers[&conn];
                    self.send_error(peer, text);
                }
            }
            let peer = self.peers.get_mut(&conn).expect("peer present");
            tracing::trace!(project = %self.project, conn, heads = ?message.heads, need = ?message.need, changes = message.changes.len(), "sync message in");
            peer.syncing = true;
            // automerge assumes every received message is answered before the next one arrives:
            // a message without changes whose heads equal ours makes it note "our heads were
            // sent" (`last_sent_heads`). In a batch that is false when an earlier message of the
            // same peer brought those heads: the peer was never told, so it was never
            // acknowledged, and both sides then waited for each other. What was sent is ours to
            // know, so it is put back.
            let may_shortcut = message.changes.is_empty() && !message.heads.is_empty();
            let received = self.doc.receive_sync_message(&mut peer.state, message);
            if may_shortcut && received.is_ok() {
                peer.state.last_sent_heads.clone_from(&peer.told_heads);
            }
            if let Err(err) = received {
                let text = format!(
                    "sync message for document {} could not be applied ({err}); nothing was changed",
                    self.doc_id
                );
                peer.reset_sync();
                let peer = &self.peers[&conn];
                self.send_error(peer, text);
                continue;
            }
            senders.push(conn);
        }
        for op in std::mem::take(&mut self.server_edits) {
            if let Err(failure) = self.doc.transact(|tx| moviola_crdt::apply(tx, &op)) {
                tracing::warn!(project = %self.project, ?op, error = %failure.error, "server edit not applied");
            }
        }
        if self.doc.get_heads() == heads_before {
            // Nothing new: only the peers that spoke may need an answer. Asking automerge about
            // every other peer costs a walk of the change graph each and yields nothing.
            self.flush(Some(&senders));
            return;
        }
        let delta = self.doc.save_after(&heads_before);
        let store = self.hub.store().clone();
        let project = self.project;
        ctx.wait(
            async move { store.append_changes(project, delta, now_ms()).await }
                .into_actor(self)
                .map(move |res, act, ctx| match res {
                    Ok(seq) => {
                        act.last_seq = seq;
                        act.entries_since_compaction += 1;
                        act.flush(None);
                        if act.entries_since_compaction >= act.settings.compact_after_entries {
                            act.compact(ctx);
                        }
                    }
                    Err(err) => {
                        tracing::error!(project = %act.project, %err, "journal append failed; reloading the document");
                        for conn in &senders {
                            if let Some(peer) = act.peers.get(conn) {
                                act.send_error(
                                    peer,
                                    format!("the server could not save your changes ({err}); they were not accepted, please retry"),
                                );
                            }
                        }
                        for peer in act.peers.values_mut() {
                            peer.reset_sync();
                        }
                        act.phase = Phase::Loading;
                        act.load(ctx);
                    }
                }),
        );
    }

    /// Generates and sends one sync message to every peer that needs one: all syncing peers
    /// after the document changed, else only `only`.
    fn flush(&mut self, only: Option<&[u64]>) {
        let server = self.hub.peer_id().to_owned();
        let wanted = |conn: &u64| only.is_none_or(|list| list.contains(conn));
        for (&conn, peer) in self.peers.iter_mut().filter(|(conn, p)| p.syncing && wanted(conn)) {
            let generated = self.doc.generate_sync_message(&mut peer.state);
            tracing::trace!(project = %self.project, conn, heads = ?generated.as_ref().map(|m| &m.heads), changes = generated.as_ref().map(|m| m.changes.len()), "sync message out");
            if let Some(message) = generated {
                peer.told_heads.clone_from(&message.heads);
                let frame = wire::Message::Sync {
                    sender_id: server.clone(),
                    target_id: peer.peer_id.clone(),
                    document_id: self.doc_id.clone(),
                    data: message.encode(),
                }
                .encode();
                peer.outbox.send(frame);
            }
        }
    }

    /// Folds the journal into a new snapshot; the actor waits for it.
    fn compact(&mut self, ctx: &mut Context<Self>) {
        if let Some(fut) = self.compaction() {
            ctx.wait(fut);
        }
    }

    fn compaction(&mut self) -> Option<impl ActorFuture<Self, Output = ()> + 'static> {
        if self.entries_since_compaction == 0 || !matches!(self.phase, Phase::Ready | Phase::Stopping) {
            return None;
        }
        let data = self.doc.save();
        let upto = self.last_seq;
        let store = self.hub.store().clone();
        let project = self.project;
        let n_entries = self.entries_since_compaction;
        self.entries_since_compaction = 0;
        Some(
            async move { store.compact_document(project, data, upto, now_ms()).await }
                .into_actor(self)
                .map(move |res, act: &mut Self, _| {
                    if let Err(err) = res {
                        tracing::warn!(project = %act.project, %err, "compaction failed; the journal is kept");
                        act.entries_since_compaction += n_entries;
                    }
                }),
        )
    }

    fn check_idle(&mut self, ctx: &mut Context<Self>) {
        if !self.peers.is_empty() || !matches!(self.phase, Phase::Ready) {
            return;
        }
        if self.idle_since.is_some_and(|t| t.elapsed() >= self.settings.idle_timeout) {
            self.stop_with_compaction(ctx);
        }
    }

    fn stop_with_compaction(&mut self, ctx: &mut Context<Self>) {
        self.hub.deregister(self.project, &ctx.address());
        self.phase = Phase::Stopping;
        self.compact(ctx);
        ctx.wait(fut::ready(()).map(|_, _, ctx: &mut Context<Self>| ctx.stop()));
    }
}

/// Rebuilds a document from its snapshot and journal.
pub fn rebuild(stored: &StoredDocument) -> Result<Automerge, String> {
    let mut doc = Automerge::load(&stored.snapshot).map_err(|e| format!("snapshot is corrupt: {e}"))?;
    for (seq, data) in &stored.changes {
        doc.load_incremental(data)
            .map_err(|e| format!("journal entry {seq} is corrupt: {e}"))?;
    }
    Ok(doc)
}

impl Actor for ProjectActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(PROJECT_MAILBOX);
        self.load(ctx);
        let check = (self.settings.idle_timeout / 4).max(std::time::Duration::from_millis(50));
        ctx.run_interval(check, |act, ctx| act.check_idle(ctx));
        ctx.run_interval(self.settings.compact_interval, |act, ctx| act.compact(ctx));
    }
}

/// Why a session could not join a project.
#[derive(Debug, PartialEq, Eq)]
pub enum JoinRefused {
    /// The actor is shutting down; ask the hub again for a fresh one.
    Stopping,
    /// The document could not be loaded.
    Unavailable(String),
}

/// Sent by a [`crate::session::SessionActor`] the first time its peer asks for this project's
/// document.
#[derive(Clone, Message)]
#[rtype(result = "Result<(), JoinRefused>")]
pub struct Join {
    pub conn: u64,
    pub peer_id: String,
    pub user: UserId,
    pub role: Role,
    pub outbox: Outbox,
}

impl Handler<Join> for ProjectActor {
    type Result = Result<(), JoinRefused>;

    fn handle(&mut self, msg: Join, _: &mut Context<Self>) -> Self::Result {
        match &self.phase {
            Phase::Ready | Phase::Loading => {}
            Phase::Stopping => return Err(JoinRefused::Stopping),
            Phase::Failed(err) => return Err(JoinRefused::Unavailable(err.clone())),
        }
        let mut state = sync::State::new();
        // A viewer's sync state is read-only: automerge ignores any changes it sends.
        state.set_read_only(!msg.role.can_edit());
        self.peers.insert(
            msg.conn,
            Peer {
                peer_id: msg.peer_id,
                user: msg.user,
                role: msg.role,
                outbox: msg.outbox,
                state,
                syncing: false,
                told_read_only: false,
                told_heads: Vec::new(),
            },
        );
        self.idle_since = None;
        Ok(())
    }
}

/// Sent by a session when its connection ends.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub conn: u64,
}

impl Handler<Leave> for ProjectActor {
    type Result = ();

    fn handle(&mut self, msg: Leave, _: &mut Context<Self>) {
        self.peers.remove(&msg.conn);
        if self.peers.is_empty() {
            self.idle_since = Some(Instant::now());
        }
    }
}

/// A `request` or `sync` message's automerge data, from a joined session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SyncIn {
    pub conn: u64,
    pub data: Vec<u8>,
}

impl Handler<SyncIn> for ProjectActor {
    type Result = ();

    fn handle(&mut self, msg: SyncIn, ctx: &mut Context<Self>) {
        if self.peers.contains_key(&msg.conn) {
            self.pending.push(PendingSync {
                conn: msg.conn,
                data: msg.data,
            });
            self.schedule_tick(ctx);
        }
    }
}

/// An `ephemeral` message (presence: cursors, selections, playheads) to relay, never store.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EphemeralIn {
    pub conn: u64,
    pub sender_id: String,
    pub session_id: String,
    pub count: u64,
    pub data: Vec<u8>,
}

impl Handler<EphemeralIn> for ProjectActor {
    type Result = ();

    fn handle(&mut self, msg: EphemeralIn, _: &mut Context<Self>) {
        if !self.peers.contains_key(&msg.conn) {
            return;
        }
        // Clients re-forward what they receive; only the first copy of each count is relayed.
        let seen = self
            .ephemeral_seen
            .entry((msg.sender_id.clone(), msg.session_id.clone()))
            .or_insert(0);
        if msg.count <= *seen {
            return;
        }
        *seen = msg.count;
        for (conn, peer) in &self.peers {
            if *conn == msg.conn || peer.peer_id == msg.sender_id || !peer.syncing {
                continue;
            }
            let frame = wire::Message::Ephemeral {
                sender_id: msg.sender_id.clone(),
                target_id: peer.peer_id.clone(),
                document_id: self.doc_id.clone(),
                count: msg.count,
                session_id: msg.session_id.clone(),
                data: msg.data.clone(),
            }
            .encode();
            peer.outbox.send(frame);
        }
    }
}

/// Sent by the HTTP API when a member's role changes (`None`: the member was removed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct MemberChanged {
    pub user: UserId,
    pub role: Option<Role>,
}

impl Handler<MemberChanged> for ProjectActor {
    type Result = ();

    fn handle(&mut self, msg: MemberChanged, _: &mut Context<Self>) {
        let server = self.hub.peer_id().to_owned();
        let doc_id = self.doc_id.clone();
        self.peers.retain(|_, peer| {
            if peer.user != msg.user {
                return true;
            }
            match msg.role {
                Some(role) => {
                    // Turning read-write resets the state with a sync-reset flag, so the peer
                    // resends what it had sent in vain.
                    if peer.role.can_edit() != role.can_edit() {
                        peer.told_heads.clear();
                    }
                    peer.role = role;
                    peer.state.set_read_only(!role.can_edit());
                    peer.told_read_only = false;
                    true
                }
                None => {
                    peer.outbox.send(
                        wire::Message::DocUnavailable {
                            sender_id: server.clone(),
                            target_id: peer.peer_id.clone(),
                            document_id: doc_id.clone(),
                        }
                        .encode(),
                    );
                    false
                }
            }
        });
    }
}

/// Sent by the HTTP API after the project was deleted from the store.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ProjectDeleted;

impl Handler<ProjectDeleted> for ProjectActor {
    type Result = ();

    fn handle(&mut self, _: ProjectDeleted, ctx: &mut Context<Self>) {
        for peer in self.peers.values() {
            peer.outbox.send(
                wire::Message::DocUnavailable {
                    sender_id: self.hub.peer_id().to_owned(),
                    target_id: peer.peer_id.clone(),
                    document_id: self.doc_id.clone(),
                }
                .encode(),
            );
        }
        self.peers.clear();
        self.hub.deregister(self.project, &ctx.address());
        self.phase = Phase::Stopping;
        self.entries_since_compaction = 0;
        ctx.stop();
    }
}

/// Graceful shutdown: compact, then stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for ProjectActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) -> Self::Result {
        self.hub.deregister(self.project, &ctx.address());
        let ready = matches!(self.phase, Phase::Ready);
        self.phase = Phase::Stopping;
        let compaction = if ready { self.compaction() } else { None };
        Box::pin(
            async {}
                .into_actor(self)
                .then(move |_, _, _| {
                    let done: Pin<Box<dyn ActorFuture<Self, Output = ()>>> = match compaction {
                        Some(f) => Box::pin(f),
                        None => Box::pin(fut::ready(())),
                    };
                    done
                })
                .map(|_, _, ctx: &mut Context<Self>| ctx.stop()),
        )
    }
}

/// An edit the server makes to the timeline itself (a job's placeholder clip and its result).
/// With `dry_run`, only checks that it would apply now. Persisted and relayed like a client's
/// edit, with the next batch.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct ServerEdit {
    pub op: moviola_crdt::EditOp,
    pub dry_run: bool,
}

impl Handler<ServerEdit> for ProjectActor {
    type Result = Result<(), String>;

    fn handle(&mut self, msg: ServerEdit, ctx: &mut Context<Self>) -> Self::Result {
        if !matches!(self.phase, Phase::Ready) {
            return Err("the project's timeline is not available right now".into());
        }
        if msg.dry_run {
            let mut tx = self.doc.transaction();
            let res = moviola_crdt::apply(&mut tx, &msg.op);
            tx.rollback();
            return res.map_err(|e| e.to_string());
        }
        self.server_edits.push(msg.op);
        self.schedule_tick(ctx);
        Ok(())
    }
}

/// The timeline as it is now (for an export's plan).
#[derive(Message)]
#[rtype(result = "Result<moviola_crdt::Timeline, String>")]
pub struct ReadTimeline;

impl Handler<ReadTimeline> for ProjectActor {
    type Result = Result<moviola_crdt::Timeline, String>;

    fn handle(&mut self, _: ReadTimeline, _: &mut Context<Self>) -> Self::Result {
        if !matches!(self.phase, Phase::Ready) {
            return Err("the project's timeline is not available right now".into());
        }
        Ok(moviola_crdt::Timeline::read(&self.doc))
    }
}
