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
