//! Load benchmark for live timeline sync (issue 2): N clients in one project edit at a set rate;
//! we measure edit throughput, the time until an edit is visible at each other client, the time
//! until the server acknowledges it (for Moviola that is after it is durable), and server RSS.
//! The same clients run against Moviola and against `@automerge/automerge-repo-sync-server`.
//!
//! Run through `scripts/bench.sh` (builds in release, installs the npm sync server), or:
//! `bench-sync [--server moviola|sync-server|both] [--clients 10,100] [--rate R] [--seconds S]`
//! where R is edits per second per client (0 = closed loop: edit again as soon as acknowledged).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use automerge::sync::{self, SyncDoc};
use automerge::{ActorId, AutoCommit, ChangeHash};
use futures_util::{SinkExt, StreamExt};
use moviola_crdt::wire::{DocumentId, Message};
use moviola_crdt::{EditOp, Settings};
use moviola_tests::client::{Socket, connect};
use moviola_tests::{TestServer, http};
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Moviola,
    SyncServer,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Moviola => "moviola",
            Target::SyncServer => "automerge-repo-sync-server 0.2.8",
        }
    }
}

struct Args {
    targets: Vec<Target>,
    clients: Vec<usize>,
    rates: Vec<f64>,
    seconds: f64,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        targets: vec![Target::Moviola, Target::SyncServer],
        clients: vec![10, 100],
        rates: vec![],
        seconds: 10.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--server" => {
                args.targets = match value.as_str() {
                    "moviola" => vec![Target::Moviola],
                    "sync-server" => vec![Target::SyncServer],
                    "both" => vec![Target::Moviola, Target::SyncServer],
                    other => bail!("unknown server {other:?}"),
                }
            }
            "--clients" => args.clients = value.split(',').map(|v| v.parse()).collect::<Result<_, _>>()?,
            "--rate" => args.rates = value.split(',').map(|v| v.parse()).collect::<Result<_, _>>()?,
            "--seconds" => args.seconds = value.parse()?,
            other => bail!("unknown flag {other:?}"),
        }
    }
    Ok(args)
}

/// What every client records about one edit, shared by all clients of a run.
struct EditRecord {
    sent: Instant,
    /// Time until visible, at each other client.
    visible: Vec<Duration>,
    acked: Option<Duration>,
}

type Records = Arc<Mutex<HashMap<ChangeHash, EditRecord>>>;

struct RunResult {
    edits: usize,
    acked: usize,
    elapsed: Duration,
    visible: Vec<Duration>,
    visible_all: Vec<Duration>,
    incomplete: usize,
    ack: Vec<Duration>,
    rss_kib: u64,
    hwm_kib: u64,
    dropped_clients: usize,
    server_cpu: Duration,
}

/// A server under test: its sync URL for a client and the process to watch.
enum Server {
    Moviola {
        server: TestServer,
        token: String,
        doc_id: String,
    },
    SyncServer {
        child: Child,
        port: u16,
        doc_id: String,
        _dir: TempDir,
    },
}

/// A folder removed when the run ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Server {
    fn url(&self) -> String {
        match self {
            Server::Moviola { server, token, .. } => server.ws_url(token),
            Server::SyncServer { port, .. } => format!("ws://127.0.0.1:{port}/"),
        }
    }
    fn doc_id(&self) -> &str {
        match self {
            Server::Moviola { doc_id, .. } | Server::SyncServer { doc_id, .. } => doc_id,
        }
    }
    fn pid(&self) -> u32 {
        match self {
            Server::Moviola { server, .. } => server.pid().expect("server running"),
            Server::SyncServer { child, .. } => child.id(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Server::SyncServer { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn sync_server_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    root.join("bench/node_modules/@automerge/automerge-repo-sync-server")
}

async fn start(target: Target, clients: usize) -> Result<Server> {
    match target {
        Target::Moviola => {
            let sessions = (clients + 8).to_string();
            let server = TestServer::start_with(&[
                ("MOVIOLA_LIMITS_SESSIONS_PER_USER", sessions.as_str()),
                ("MOVIOLA_LIMITS_MESSAGES_PER_SECOND", "100000"),
            ]);
            let owner = http::register(server.port, "bench");
            let (_, doc_id) = http::create_project(server.port, &owner, "bench");
            Ok(Server::Moviola {
                server,
                token: owner.token,
                doc_id,
            })
        }
        Target::SyncServer => {
            let dir = sync_server_dir();
            if !dir.exists() {
                bail!(
                    "{} missing: run scripts/bench.sh (it runs npm install in tests/bench)",
                    dir.display()
                );
            }
            let data = std::env::temp_dir().join(format!("moviola-bench-ss-{}", uuid::Uuid::new_v4().simple()));
            let port = free_port();
            let child = Command::new("node")
                .arg(dir.join("src/index.js"))
                .current_dir(std::env::temp_dir())
                .env("PORT", port.to_string())
                .env("DATA_DIR", &data)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .context("spawn node sync server")?;
            let deadline = Instant::now() + Duration::from_secs(20);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                if Instant::now() > deadline {
                    bail!("sync server did not start");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // The sync server only holds documents clients bring: create the timeline the way
            // Moviola's project API does and hand it over.
            let doc_id = DocumentId::random();
            let mut doc = moviola_crdt::new_document(ActorId::random(), "bench", Settings::default());
            let mut socket = connect(&format!("ws://127.0.0.1:{port}/")).await?;
            let (peer, server_peer) = handshake(&mut socket).await?;
            let mut state = sync::State::new();
            let heads = doc.get_heads();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(m) = doc.sync().generate_sync_message(&mut state) {
                    send(&mut socket, &sync_msg(&peer, &server_peer, &doc_id, m.encode())).await?;
                }
                if state.shared_heads == heads {
                    break;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, next(&mut socket)).await {
                    Ok(Some(Message::Sync { data, .. })) => doc.sync().receive_sync_message(&mut state, sync::Message::decode(&data)?)?,
                    Ok(Some(_)) => {}
                    _ => bail!("sync server did not take the document"),
                }
            }
            Ok(Server::SyncServer {
                child,
                port,
                doc_id: doc_id.as_str().to_string(),
                _dir: TempDir(data),
            })
        }
    }
}

fn sync_msg(peer: &str, server: &str, doc_id: &DocumentId, data: Vec<u8>) -> Message {
    Message::Sync {
        sender_id: peer.to_string(),
        target_id: server.to_string(),
        document_id: doc_id.clone(),
        data,
    }
}

async fn send(socket: &mut Socket, msg: &Message) -> Result<()> {
    socket.send(WsMessage::Binary(msg.encode().into())).await?;
    Ok(())
}

async fn next(socket: &mut Socket) -> Option<Message> {
    loop {
        match socket.next().await? {
            Ok(WsMessage::Binary(bytes)) => match Message::decode(&bytes) {
                Ok(m) => return Some(m),
                Err(e) => eprintln!("  skipping a frame this client cannot decode: {e}"),
            },
            Ok(WsMessage::Close(frame)) => {
                eprintln!("  closed by the server: {frame:?}");
                return None;
            }
            Err(e) => {
                eprintln!("  connection error: {e}");
                return None;
            }
            Ok(_) => continue,
        }
    }
}

async fn handshake(socket: &mut Socket) -> Result<(String, String)> {
    let peer = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let join = Message::Join {
        sender_id: peer.clone(),
        peer_metadata: None,
        supported_protocol_versions: Some(vec!["1".into()]),
    };
    send(socket, &join).await?;
    match tokio::time::timeout(Duration::from_secs(10), next(socket)).await {
        Ok(Some(Message::Peer { sender_id, .. })) => Ok((peer, sender_id)),
        other => bail!("expected peer, got {other:?}"),
    }
}

/// One client's whole run: connect, load the document, then edit at `rate` until `stop`.
#[allow(clippy::too_many_arguments)]
async fn client(
    index: usize,
    url: String,
    doc_id: String,
    rate: f64,
    records: Records,
    loaded: Arc<tokio::sync::Barrier>,
    mut window: tokio::sync::watch::Receiver<Option<(Instant, Instant)>>,
) -> Result<usize> {
    let mut socket = connect(&url).await?;
    let (peer, server_peer) = handshake(&mut socket).await?;
    let doc_id = DocumentId::parse(&doc_id)?;
    let mut doc = AutoCommit::new();
    let mut state = sync::State::new();
    let first = doc.sync().generate_sync_message(&mut state).expect("first message");
    send(
        &mut socket,
        &Message::Request {
            sender_id: peer.clone(),
            target_id: server_peer.clone(),
            document_id: doc_id.clone(),
            data: first.encode(),
        },
    )
    .await?;
    // Load the document before the clock starts.
    while moviola_crdt::Timeline::read(&doc).schema == 0 {
        match tokio::time::timeout(Duration::from_secs(30), next(&mut socket)).await {
            Ok(Some(Message::Sync { data, .. })) => {
                doc.sync().receive_sync_message(&mut state, sync::Message::decode(&data)?)?;
                if let Some(m) = doc.sync().generate_sync_message(&mut state) {
                    send(&mut socket, &sync_msg(&peer, &server_peer, &doc_id, m.encode())).await?;
                }
            }
            Ok(Some(Message::DocUnavailable { .. })) => bail!("client {index}: document unavailable"),
            Ok(Some(_)) => {}
            _ => bail!("client {index}: did not load the document"),
        }
    }
    loaded.wait().await;
    let (start, stop_at) = loop {
        if let Some(w) = *window.borrow() {
            break w;
        }
        window.changed().await?;
    };
    // Spread the clients' edits over one period so they do not all fire together.
    let period = if rate > 0.0 {
        Duration::from_secs_f64(1.0 / rate)
    } else {
        Duration::ZERO
    };
    let offset = if rate > 0.0 {
        period.mul_f64(index as f64 / 997.0 % 1.0)
    } else {
        Duration::ZERO
    };
    let mut next_edit = tokio::time::Instant::from_std(start + offset);
    let mut seq = 0usize;
    let mut pending: Vec<ChangeHash> = Vec::new();
    let mut own: HashSet<ChangeHash> = HashSet::new();
    let stop = tokio::time::Instant::from_std(stop_at);
    loop {
        let closed_loop_ready = rate == 0.0 && pending.is_empty();
        let edit_due = if closed_loop_ready {
            tokio::time::Instant::now()
        } else {
            next_edit
        };
        let may_edit = (rate > 0.0 || closed_loop_ready) && edit_due < stop;
        tokio::select! {
            _ = tokio::time::sleep_until(edit_due), if may_edit => {
                let op = EditOp::AddMarker { id: format!("m{index}-{seq}"), time: seq as i64 * 1000, label: format!("c{index}"), color: String::new() };
                seq += 1;
                moviola_crdt::apply_and_commit(&mut doc, &op).map_err(|e| anyhow::anyhow!("{e}"))?;
                let hash = doc.get_heads().into_iter().find(|h| !own.contains(h) && doc.get_change_by_hash(h).map(|c| c.actor_id() == doc.get_actor()).unwrap_or(false));
                if let Some(hash) = hash {
                    own.insert(hash);
                    pending.push(hash);
                    records.lock().unwrap().insert(hash, EditRecord { sent: Instant::now(), visible: Vec::new(), acked: None });
                }
                if rate > 0.0 {
                    next_edit += period;
                }
                if let Some(m) = doc.sync().generate_sync_message(&mut state) {
                    send(&mut socket, &sync_msg(&peer, &server_peer, &doc_id, m.encode())).await?;
                }
            }
            _ = tokio::time::sleep_until(stop + Duration::from_secs(3)) => break,
            msg = next(&mut socket) => {
                let Some(msg) = msg else { bail!("client {index}: connection closed") };
                let Message::Sync { data, .. } = msg else { continue };
                let m = sync::Message::decode(&data)?;
                let heads_now = m.heads.clone();
                let before = doc.get_heads();
                doc.sync().receive_sync_message(&mut state, m)?;
                let now = Instant::now();
                let new: Vec<ChangeHash> = doc.get_changes(&before).iter().map(|c| c.hash()).filter(|h| !own.contains(h)).collect();
                let server_heads = heads_now;
                let mut acked = Vec::new();
                if !pending.is_empty() {
                    // Cheap acknowledgement test (a full ancestry walk per message would make the
                    // load generator the bottleneck): the server's heads equal ours, so it has
                    // every pending edit; or a pending edit is itself one of its heads.
                    let mut ours = doc.get_heads();
                    let mut theirs = server_heads.clone();
                    ours.sort();
                    theirs.sort();
                    if ours == theirs {
                        acked.append(&mut pending);
                    } else {
                        pending.retain(|h| if theirs.contains(h) { acked.push(*h); false } else { true });
                    }
                }
                if !new.is_empty() || !acked.is_empty() {
                    let mut recs = records.lock().unwrap();
                    for h in new {
                        if let Some(r) = recs.get_mut(&h) {
                            let d = now - r.sent;
                            r.visible.push(d);
                        }
                    }
                    for h in acked {
                        if let Some(r) = recs.get_mut(&h) {
                            r.acked = Some(now - r.sent);
                        }
                    }
                }
                if let Some(m) = doc.sync().generate_sync_message(&mut state) {
                    send(&mut socket, &sync_msg(&peer, &server_peer, &doc_id, m.encode())).await?;
                }
            }
        }
    }
    let _ = socket.close(None).await;
    Ok(seq)
}

/// CPU time the process has used (user + system), from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn run(target: Target, clients: usize, rate: f64, seconds: f64) -> Result<RunResult> {
    let server = start(target, clients).await?;
    let records: Records = Arc::new(Mutex::new(HashMap::new()));
    let loaded = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let (window_tx, window_rx) = tokio::sync::watch::channel(None);
    let mut handles = Vec::new();
    for i in 0..clients {
        let (url, doc_id, records, loaded, window) = (
            server.url(),
            server.doc_id().to_string(),
            records.clone(),
            loaded.clone(),
            window_rx.clone(),
        );
        handles.push(tokio::spawn(async move {
            // Connect in waves so the server's accept backlog is not what is measured.
            tokio::time::sleep(Duration::from_millis((i as u64 / 10) * 20)).await;
            client(i, url, doc_id, rate, records, loaded, window).await
        }));
    }
    tokio::time::timeout(Duration::from_secs(120), loaded.wait())
        .await
        .context("clients did not load the document")?;
    let start = Instant::now() + Duration::from_millis(200);
    let stop = start + Duration::from_secs_f64(seconds);
    window_tx.send(Some((start, stop)))?;
    let cpu_before = cpu_time(server.pid());
    let mut dropped_clients = 0;
    for h in handles {
        match h.await? {
            Ok(_) => {}
            Err(e) => {
                eprintln!("  {e:#}");
                dropped_clients += 1;
            }
        }
    }
    let (rss_kib, hwm_kib) = memory_kib(server.pid());
    let server_cpu = cpu_time(server.pid()) - cpu_before;
    let recs = std::mem::take(&mut *records.lock().unwrap());
    let mut visible = Vec::new();
    let mut visible_all = Vec::new();
    let mut ack = Vec::new();
    let mut incomplete = 0;
    let mut acked = 0;
    let mut last_ack = start;
    for r in recs.values() {
        visible.extend(r.visible.iter().copied());
        if r.visible.len() + 1 >= clients - dropped_clients {
            visible_all.push(r.visible.iter().copied().max().unwrap_or_default());
        } else {
            incomplete += 1;
        }
        if let Some(a) = r.acked {
            ack.push(a);
            acked += 1;
            last_ack = last_ack.max(r.sent + a);
        }
    }
    visible.sort();
    visible_all.sort();
    ack.sort();
    Ok(RunResult {
        edits: recs.len(),
        acked,
        elapsed: last_ack.max(stop) - start,
        visible,
        visible_all,
        incomplete,
        ack,
        rss_kib,
        hwm_kib,
        dropped_clients,
        server_cpu,
    })
}

fn pct(sorted: &[Duration], p: f64) -> String {
    if sorted.is_empty() {
        return "–".into();
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    format!("{:.1}", sorted[i].as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    println!(
        "| server | clients | rate/client | edits | acked edits/s | delivered/s | visible p50 ms | visible p99 ms | all-peers p99 ms | ack p50 ms | ack p99 ms | server CPU µs/delivery | RSS MiB (peak) | dropped |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &clients in &args.clients {
        let rates = if args.rates.is_empty() {
            vec![100.0 / clients as f64, 0.0]
        } else {
            args.rates.clone()
        };
        for &rate in &rates {
            for &target in &args.targets {
                match run(target, clients, rate, args.seconds).await {
                    Ok(r) => {
                        let secs = r.elapsed.as_secs_f64();
                        println!(
                            "| {} | {} | {} | {} | {:.0} | {:.0} | {} | {} | {}{} | {} | {} | {:.0} | {:.0} ({:.0}) | {} |",
                            target.name(),
                            clients,
                            if rate > 0.0 { format!("{rate}/s") } else { "closed loop".into() },
                            r.edits,
                            r.acked as f64 / secs,
                            r.visible.len() as f64 / secs,
                            pct(&r.visible, 0.50),
                            pct(&r.visible, 0.99),
                            pct(&r.visible_all, 0.99),
                            if r.incomplete > 0 {
                                format!(" ({} not seen by all)", r.incomplete)
                            } else {
                                String::new()
                            },
                            pct(&r.ack, 0.50),
                            pct(&r.ack, 0.99),
                            r.server_cpu.as_secs_f64() * 1e6 / r.visible.len().max(1) as f64,
                            r.rss_kib as f64 / 1024.0,
                            r.hwm_kib as f64 / 1024.0,
                            r.dropped_clients,
                        );
                    }
                    Err(e) => println!("| {} | {} | {} | failed: {e:#} |", target.name(), clients, rate),
                }
            }
        }
    }
    Ok(())
}
