//! Each kind of bad input gets a clear error; the session (where it can continue) and the
//! server are otherwise unaffected and no document changes.

use std::time::Duration;

use moviola_crdt::wire::Message;
use moviola_tests::client::{connect, recv};
use moviola_tests::http::{create_project, register};
use moviola_tests::{SyncClient, TestServer};

use crate::add_track;

async fn assert_still_works(c: &mut SyncClient, track: &str) {
    c.edit(&add_track(track)).await.unwrap();
    c.pump_until(Duration::from_secs(5), |c| c.acknowledged() && c.view().track(track).is_some())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_get_errors_and_change_nothing() {
    let server = TestServer::start();
    let ana = register(server.port, "ana");
    let (_, doc) = create_project(server.port, &ana, "Bad");
    let mut c = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    c.wait_loaded().await.unwrap();
    let heads = c.doc.get_heads();

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0xff, 0xfe, 0x00], "not valid CBOR"),
        (cbor(&[("type", ciborium::Value::Text("teleport".into()))]), "unknown message type"),
        (cbor(&[("type", ciborium::Value::Text("sync".into()))]), "invalid \"sync\" message"),
        (
            Message::Sync {
                sender_id: c.peer_id.clone(),
                target_id: c.server_id.clone(),
                document_id: c.doc_id.clone(),
                data: b"definitely not automerge".to_vec(),
            }
            .encode(),
            "not an automerge sync message",
        ),
    ];
    for (frame, expected) in cases {
        c.errors.clear();
        c.send_raw(frame).await.unwrap();
        c.pump_until(Duration::from_secs(5), |c| !c.errors.is_empty()).await.unwrap();
        assert!(c.errors[0].contains(expected), "expected {expected:?} in {:?}", c.errors);
    }
    c.socket
        .send(tokio_tungstenite::tungstenite::Message::Text("hello".into()))
        .await
        .unwrap();
    c.errors.clear();
    c.pump_until(Duration::from_secs(5), |c| !c.errors.is_empty()).await.unwrap();
    assert!(c.errors[0].contains("binary"), "{:?}", c.errors);

    // Nothing changed, and the session still syncs.
    let mut fresh = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    fresh.wait_loaded().await.unwrap();
    fresh.pump(Duration::from_millis(200)).await.unwrap();
    assert_eq!(fresh.doc.get_heads(), heads);
    assert_still_works(&mut c, "after-bad-frames").await;
}

use futures_util::SinkExt;

fn cbor(fields: &[(&str, ciborium::Value)]) -> Vec<u8> {
    let map = ciborium::Value::Map(
        fields
            .iter()
            .map(|(k, v)| (ciborium::Value::Text((*k).into()), v.clone()))
            .collect(),
    );
    let mut out = Vec::new();
    ciborium::into_writer(&map, &mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_is_refused_and_the_server_carries_on() {
    let server = TestServer::start_with(&[
        ("MOVIOLA_LIMITS_MAX_FRAME_BYTES", "65536"),
        ("MOVIOLA_LIMITS_MAX_MESSAGE_BYTES", "65536"),
    ]);
    let ana = register(server.port, "ana");
    let (_, doc) = create_project(server.port, &ana, "Big");
    let mut c = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    c.wait_loaded().await.unwrap();
    let huge = Message::Ephemeral {
        sender_id: c.peer_id.clone(),
        target_id: c.server_id.clone(),
        document_id: c.doc_id.clone(),
        count: 1,
        session_id: "s".into(),
        data: vec![0u8; 200_000],
    };
    c.send_raw(huge.encode()).await.unwrap();
    let _ = c.pump_until(Duration::from_secs(5), |c| !c.errors.is_empty()).await;
    assert!(
        c.errors.iter().any(|e| e.contains("frame too large") && e.contains("65536")),
        "{:?}",
        c.errors
    );
    let mut other = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    other.wait_loaded().await.unwrap();
    assert_still_works(&mut other, "after-huge").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_the_rate_limit_is_dropped_with_an_error() {
    let server = TestServer::start_with(&[("MOVIOLA_LIMITS_MESSAGES_PER_SECOND", "20")]);
    let ana = register(server.port, "ana");
    let (_, doc) = create_project(server.port, &ana, "Flood");
    let mut c = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    c.wait_loaded().await.unwrap();
    for count in 1..=300 {
        c.send_ephemeral(count, vec![0xa0]).await.unwrap();
    }
    c.pump_until(Duration::from_secs(5), |c| c.errors.iter().any(|e| e.contains("rate limit")))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.pump(Duration::from_millis(50)).await.unwrap();
    assert_still_works(&mut c, "after-flood").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_forged_tokens_are_refused() {
    let server = TestServer::start();
    for url in [
        format!("ws://127.0.0.1:{}/sync", server.port),
        server.ws_url("forged-0123456789abcdef"),
    ] {
        let mut socket = connect(&url).await.unwrap();
        match recv(&mut socket, Duration::from_secs(5)).await {
            Some(Message::Error { message, .. }) => assert!(message.contains("authentication failed"), "{message}"),
            other => panic!("expected an error, got {other:?}"),
        }
        assert!(recv(&mut socket, Duration::from_secs(5)).await.is_none(), "connection stayed open");
    }
    let _ = register(server.port, "still-up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_presence_is_refused_and_presence_bytes_are_bounded() {
    let server = TestServer::start_with(&[
        ("MOVIOLA_LIMITS_MAX_EPHEMERAL_BYTES", "1024"),
        ("MOVIOLA_LIMITS_EPHEMERAL_BYTES_PER_SECOND", "4096"),
    ]);
    let ana = register(server.port, "ana");
    let (_, doc) = create_project(server.port, &ana, "Presence");
    let mut a = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    a.wait_loaded().await.unwrap();
    let mut b = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    b.wait_loaded().await.unwrap();
    // One MiB of "presence": refused, never relayed.
    a.send_ephemeral(1, vec![0x40; 1 << 20]).await.unwrap();
    a.pump_until(Duration::from_secs(5), |c| !c.errors.is_empty()).await.unwrap();
    assert!(a.errors[0].contains("exceeds the limit of 1024 bytes"), "{:?}", a.errors);
    b.pump(Duration::from_millis(300)).await.unwrap();
    assert!(b.ephemeral.is_empty(), "an oversized presence message was relayed");
    // Within the size limit but past the byte rate: at most the burst (2 × 4096 bytes) passes.
    a.errors.clear();
    for count in 2..52 {
        a.send_ephemeral(count, vec![0x40; 1000]).await.unwrap();
    }
    a.pump_until(Duration::from_secs(5), |c| c.errors.iter().any(|e| e.contains("presence rate limit")))
        .await
        .unwrap();
    b.pump(Duration::from_millis(300)).await.unwrap();
    assert!(
        (1..=9).contains(&b.ephemeral.len()),
        "{} of 50 presence messages relayed",
        b.ephemeral.len()
    );
    assert_still_works(&mut a, "after-presence").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_join_on_one_socket_is_refused() {
    let server = TestServer::start();
    let ana = register(server.port, "ana");
    let (_, doc) = create_project(server.port, &ana, "Join");
    let mut c = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    c.wait_loaded().await.unwrap();
    let join = |sender: &str| Message::Join {
        sender_id: sender.to_owned(),
        peer_metadata: None,
        supported_protocol_versions: Some(vec!["1".into()]),
    };
    c.send_raw(join("someone-else").encode()).await.unwrap();
    c.pump_until(Duration::from_secs(5), |c| !c.errors.is_empty()).await.unwrap();
    assert!(c.errors[0].contains("one peer per connection"), "{:?}", c.errors);
    // The first peer id still holds: the session syncs as before.
    assert_still_works(&mut c, "after-second-join").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_change_gets_an_error_and_changes_nothing() {
    use automerge::sync::{self, BloomFilter, ChunkList, Have};
    let server = TestServer::start();
    let ana = register(server.port, "ana");
    let (_, doc) = create_project(server.port, &ana, "Corrupt");
    let mut c = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    c.wait_loaded().await.unwrap();
    c.pump(Duration::from_millis(100)).await.unwrap();
    let heads = c.doc.get_heads();
    // A real change, one byte flipped in its middle, in an otherwise well-formed sync message.
    let mut fork = c.doc.fork();
    moviola_crdt::apply_and_commit(&mut fork, &add_track("corrupt")).unwrap();
    let change = fork.get_last_local_change().unwrap();
    let mut bytes = change.raw_bytes().to_vec();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    let message = sync::Message {
        heads: vec![change.hash()],
        need: vec![],
        have: vec![Have {
            last_sync: c.server_heads.clone(),
            bloom: BloomFilter::default(),
        }],
        changes: ChunkList::from(vec![bytes]),
        flags: None,
        version: sync::MessageVersion::V1,
    };
    c.send_raw(
        Message::Sync {
            sender_id: c.peer_id.clone(),
            target_id: c.server_id.clone(),
            document_id: c.doc_id.clone(),
            data: message.encode(),
        }
        .encode(),
    )
    .await
    .unwrap();
    c.pump_until(Duration::from_secs(5), |c| !c.errors.is_empty()).await.unwrap();
    assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
    assert!(c.errors[0].contains("cannot be applied"), "{:?}", c.errors);
    let mut fresh = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    fresh.wait_loaded().await.unwrap();
    fresh.pump(Duration::from_millis(200)).await.unwrap();
    assert_eq!(fresh.doc.get_heads(), heads, "the corrupted change was stored");
    assert!(fresh.view().track("corrupt").is_none());
    // The connection stays usable.
    assert_still_works(&mut c, "after-corrupt").await;
}

#[test]
fn an_upload_declaring_a_body_past_the_limit_is_refused_from_its_header() {
    use std::io::{Read, Write};
    let server = TestServer::start();
    let ana = register(server.port, "ana");
    let (project, _) = create_project(server.port, &ana, "Huge");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Headers only: the server must answer without waiting for (or reading) any body.
    write!(
        stream,
        "POST /api/v1/projects/{project}/assets?name=huge.mp4 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Length: 5000000000\r\n\r\n",
        ana.token
    )
    .unwrap();
    let mut head = [0u8; 512];
    let n = stream.read(&mut head).expect("an answer within 5 s, before any body was sent");
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("too_large"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_websockets_are_accepted_only_from_allowed_origins() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::start_with(&[("MOVIOLA_SERVER_ALLOWED_ORIGINS", "http://localhost:5173")]);
    let ana = register(server.port, "ana");
    let (project, _) = create_project(server.port, &ana, "Origins");
    let sync = server.ws_url(&ana.token);
    let events = format!("ws://127.0.0.1:{}/events?project={project}&token={}", server.port, ana.token);
    let own = format!("http://127.0.0.1:{}", server.port);
    for url in [&sync, &events] {
        for (origin, allowed) in [
            (None, true),
            (Some(own.as_str()), true),
            (Some("http://localhost:5173"), true),
            (Some("https://evil.example"), false),
            (Some("null"), false),
        ] {
            let mut req = url.as_str().into_client_request().unwrap();
            if let Some(origin) = origin {
                req.headers_mut().insert("origin", origin.parse().unwrap());
            }
            match tokio_tungstenite::connect_async(req).await {
                Ok(_) => assert!(allowed, "{origin:?} was allowed on {url}"),
                Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                    assert!(!allowed, "{origin:?} was refused on {url}");
                    assert_eq!(res.status(), 403);
                }
                Err(other) => panic!("{origin:?} on {url}: {other}"),
            }
        }
    }
}
