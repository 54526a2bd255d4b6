//! A Rust automerge-repo client over tokio-tungstenite: joins, requests a document, keeps it
//! in sync, and records everything the server says.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use automerge::sync::{self, SyncDoc};
use automerge::{AutoCommit, ChangeHash};
use futures_util::{SinkExt, StreamExt};
use moviola_crdt::wire::{DocumentId, Message};
use moviola_crdt::{EditOp, Timeline};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct SyncClient {
    pub socket: Socket,
    pub peer_id: String,
    pub server_id: String,
    pub doc_id: DocumentId,
    pub doc: AutoCommit,
    state: sync::State,
    /// The server's heads from its last sync message: what it has acknowledged.
    pub server_heads: Vec<ChangeHash>,
    pub errors: Vec<String>,
    pub unavailable: bool,
    pub ephemeral: Vec<Vec<u8>>,
    pub closed: bool,
    /// Heads of `doc` after the last local edit or received sync message.
    pub local_heads: Vec<ChangeHash>,
}

/// Opens a WebSocket to `url` with limits large enough for tests.
pub async fn connect(url: &str) -> Result<Socket> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(256 << 20))
        .max_frame_size(Some(256 << 20));
    let (socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
        .await
        .context("connect")?;
    Ok(socket)
}

pub async fn send(socket: &mut Socket, msg: &Message) -> Result<()> {
    socket.send(WsMessage::Binary(msg.encode().into())).await?;
    Ok(())
}

/// Next protocol message, skipping pings; `None` on close or timeout. The timeout is for the
/// whole wait: the server's heartbeat pings do not restart it.
pub async fn recv(socket: &mut Socket, timeout: Duration) -> Option<Message> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(WsMessage::Binary(bytes)))) => return Some(Message::decode(&bytes).expect("server sent an undecodable frame")),
            Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

impl SyncClient {
    /// Connects, joins and requests `doc_id`, without waiting for the document.
    pub async fn open(url: &str, doc_id: &str) -> Result<SyncClient> {
        SyncClient::open_with(url, doc_id, AutoCommit::new()).await
    }

    /// Like [`SyncClient::open`], starting from a document the client already holds (a
    /// reconnect after offline edits).
    pub async fn open_with(url: &str, doc_id: &str, doc: AutoCommit) -> Result<SyncClient> {
        let mut socket = connect(url).await?;
        let peer_id = format!("rust-{}", uuid::Uuid::new_v4().simple());
        send(
            &mut socket,
            &Message::Join {
                sender_id: peer_id.clone(),
                peer_metadata: None,
                supported_protocol_versions: Some(vec!["1".into()]),
            },
        )
        .await?;
        let server_id = match recv(&mut socket, Duration::from_secs(5)).await {
            Some(Message::Peer { sender_id, .. }) => sender_id,
            Some(Message::Error { message, .. }) => bail!("server refused: {message}"),
            other => bail!("expected peer, got {other:?}"),
        };
        let mut client = SyncClient {
            socket,
            peer_id,
            server_id,
            doc_id: DocumentId::parse(doc_id)?,
            doc,
            state: sync::State::new(),
            server_heads: Vec::new(),
            errors: Vec::new(),
            unavailable: false,
            ephemeral: Vec::new(),
            closed: false,
            local_heads: Vec::new(),
        };
        client.local_heads = client.doc.get_heads();
        let first = client
            .doc
            .sync()
            .generate_sync_message(&mut client.state)
            .expect("first sync message");
        let data = first.encode();
        let msg = if client.doc.get_heads().is_empty() {
            Message::Request {
                sender_id: client.peer_id.clone(),
                target_id: client.server_id.clone(),
                document_id: client.doc_id.clone(),
                data,
            }
        } else {
            Message::Sync {
                sender_id: client.peer_id.clone(),
                target_id: client.server_id.clone(),
                document_id: client.doc_id.clone(),
                data,
            }
        };
        send(&mut client.socket, &msg).await?;
        Ok(client)
    }

    /// With `MOVIOLA_TEST_TRACE` set, prints each sync message sent or received to stderr
    /// (nextest shows it for a failing test).
    fn trace(&self, direction: &str, m: &sync::Message) {
        if std::env::var_os("MOVIOLA_TEST_TRACE").is_some() {
            let have: Vec<_> = m.have.iter().map(|h| &h.last_sync).collect();
            eprintln!(
                "{} {direction} heads {:?} need {:?} have {have:?} changes {}",
                &self.peer_id[..10],
                m.heads,
                m.need,
                m.changes.len()
            );
        }
    }

    async fn send_pending_sync(&mut self) -> Result<()> {
        let message = self.doc.sync().generate_sync_message(&mut self.state);
        if let Some(m) = message {
            self.trace("->", &m);
            let msg = Message::Sync {
                sender_id: self.peer_id.clone(),
                target_id: self.server_id.clone(),
                document_id: self.doc_id.clone(),
                data: m.encode(),
            };
            send(&mut self.socket, &msg).await?;
        }
        Ok(())
    }

    /// Handles messages until none arrives for `quiet`.
    pub async fn pump(&mut self, quiet: Duration) -> Result<()> {
        while let Some(msg) = recv(&mut self.socket, quiet).await {
            self.handle(msg).await?;
        }
        Ok(())
    }

    async fn handle(&mut self, msg: Message) -> Result<()> {
        match msg {
            Message::Sync { data, .. } => {
                let m = sync::Message::decode(&data)?;
                self.trace("<-", &m);
                self.server_heads = m.heads.clone();
                self.doc.sync().receive_sync_message(&mut self.state, m)?;
                self.local_heads = self.doc.get_heads();
                self.send_pending_sync().await?;
            }
            Message::Error { message, .. } => self.errors.push(message),
            Message::DocUnavailable { .. } => self.unavailable = true,
            Message::Ephemeral { data, .. } => self.ephemeral.push(data),
            _ => {}
        }
        Ok(())
    }

    /// Handles messages until `done` holds or `timeout` passes.
    pub async fn pump_until(&mut self, timeout: Duration, mut done: impl FnMut(&SyncClient) -> bool) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while !done(self) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                bail!("timed out; errors so far: {:?}", self.errors);
            }
            match recv(&mut self.socket, left).await {
                Some(msg) => self.handle(msg).await?,
                None => {
                    self.closed = true;
                    if !done(self) {
                        bail!("connection closed or timed out; errors so far: {:?}", self.errors);
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits until the timeline document has arrived.
    pub async fn wait_loaded(&mut self) -> Result<()> {
        self.pump_until(Duration::from_secs(10), |c| c.view().schema > 0).await
    }

    /// Applies one edit locally and sends it.
    pub async fn edit(&mut self, op: &EditOp) -> Result<()> {
        moviola_crdt::apply_and_commit(&mut self.doc, op).map_err(|e| anyhow::anyhow!("{e}"))?;
        self.local_heads = self.doc.get_heads();
        self.send_pending_sync().await
    }

    /// True when the server acknowledged everything this client has.
    pub fn acknowledged(&self) -> bool {
        let mut ours = self.local_heads.clone();
        let mut theirs = self.server_heads.clone();
        ours.sort();
        theirs.sort();
        ours == theirs
    }

    pub fn view(&self) -> Timeline {
        Timeline::read(&self.doc)
    }

    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.socket.send(WsMessage::Binary(bytes.into())).await?;
        Ok(())
    }

    pub async fn send_ephemeral(&mut self, count: u64, data: Vec<u8>) -> Result<()> {
        let msg = Message::Ephemeral {
            sender_id: self.peer_id.clone(),
            target_id: self.server_id.clone(),
            document_id: self.doc_id.clone(),
            count,
            session_id: "s1".into(),
            data,
        };
        send(&mut self.socket, &msg).await
    }
}
