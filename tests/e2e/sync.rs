use std::time::Duration;

use moviola_crdt::EditOp;
use moviola_tests::http::{add_member, create_project, register};
use moviola_tests::{SyncClient, TestServer};

use crate::add_track;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_clients_edit_concurrently_and_converge() {
    let server = TestServer::start();
    let (ana, bo, cy) = (
        register(server.port, "ana"),
        register(server.port, "bo"),
        register(server.port, "cy"),
    );
    let (project, doc) = create_project(server.port, &ana, "Trailer");
    add_member(server.port, &ana, project, &bo, "editor");
    add_member(server.port, &ana, project, &cy, "editor");
    let mut clients = Vec::new();
    for who in [&ana, &bo, &cy] {
        let mut c = SyncClient::open(&server.ws_url(&who.token), &doc).await.unwrap();
        c.wait_loaded().await.unwrap();
        clients.push(c);
    }
    // Everyone starts from the server's containers, so every track lands in one map.
    for round in 0..15 {
        for (idx, c) in clients.iter_mut().enumerate() {
            c.edit(&add_track(&format!("t{idx}-{round}"))).await.unwrap();
            if round % 5 == 0 {
                c.edit(&EditOp::SetTitle {
                    title: format!("title by {idx} in {round}"),
                })
                .await
                .unwrap();
            }
        }
        for c in clients.iter_mut() {
            c.pump(Duration::from_millis(2)).await.unwrap();
        }
    }
    // Converged: every client has all 45 tracks and the same heads.
    for c in clients.iter_mut() {
        c.pump_until(Duration::from_secs(20), |c| c.view().tracks.len() == 45)
            .await
            .unwrap();
    }
    for c in clients.iter_mut() {
        c.pump_until(Duration::from_secs(10), |c| c.server_heads.len() > 0).await.unwrap();
        c.pump(Duration::from_millis(200)).await.unwrap();
    }
    let views: Vec<_> = clients.iter().map(|c| c.view()).collect();
    assert_eq!(views[0], views[1]);
    assert_eq!(views[1], views[2]);
    let mut heads: Vec<_> = clients
        .iter_mut()
        .map(|c| {
            let mut h = c.doc.get_heads();
            h.sort();
            h
        })
        .collect();
    heads.dedup();
    assert_eq!(heads.len(), 1, "clients hold different heads");
    for c in &clients {
        assert!(c.errors.is_empty(), "{:?}", c.errors);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_merge_on_reconnect() {
    let server = TestServer::start();
    let (ana, bo) = (register(server.port, "ana"), register(server.port, "bo"));
    let (project, doc) = create_project(server.port, &ana, "Offline");
    add_member(server.port, &ana, project, &bo, "editor");
    let mut a = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    a.wait_loaded().await.unwrap();
    let mut b = SyncClient::open(&server.ws_url(&bo.token), &doc).await.unwrap();
    b.wait_loaded().await.unwrap();
    // A goes offline and keeps editing; B edits online meanwhile.
    let mut offline_doc = a.doc.fork();
    drop(a);
    for i in 0..5 {
        moviola_crdt::apply_and_commit(&mut offline_doc, &add_track(&format!("offline{i}"))).unwrap();
    }
    b.edit(&add_track("online")).await.unwrap();
    b.pump_until(Duration::from_secs(5), |c| c.server_heads.len() > 0 && c.view().tracks.len() == 1)
        .await
        .unwrap();
    // A reconnects with its document: both sides end with all six tracks.
    let mut a = SyncClient::open_with(&server.ws_url(&ana.token), &doc, offline_doc).await.unwrap();
    a.pump_until(Duration::from_secs(10), |c| c.view().tracks.len() == 6).await.unwrap();
    b.pump_until(Duration::from_secs(10), |c| c.view().tracks.len() == 6).await.unwrap();
    assert_eq!(a.view(), b.view());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_receives_changes_but_its_own_are_refused() {
    let server = TestServer::start();
    let (ana, vi) = (register(server.port, "ana"), register(server.port, "vi"));
    let (project, doc) = create_project(server.port, &ana, "Review");
    add_member(server.port, &ana, project, &vi, "viewer");
    let mut owner = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    owner.wait_loaded().await.unwrap();
    let mut viewer = SyncClient::open(&server.ws_url(&vi.token), &doc).await.unwrap();
    viewer.wait_loaded().await.unwrap();
    owner.edit(&add_track("by-owner")).await.unwrap();
    viewer
        .pump_until(Duration::from_secs(5), |c| c.view().track("by-owner").is_some())
        .await
        .unwrap();
    viewer.edit(&add_track("by-viewer")).await.unwrap();
    viewer.pump_until(Duration::from_secs(5), |c| !c.errors.is_empty()).await.unwrap();
    assert!(viewer.errors[0].contains("viewer"), "{:?}", viewer.errors);
    // Never relayed, never stored: the owner and a fresh client do not see it.
    owner.pump(Duration::from_millis(300)).await.unwrap();
    assert!(owner.view().track("by-viewer").is_none());
    let mut fresh = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    fresh
        .pump_until(Duration::from_secs(5), |c| c.view().track("by-owner").is_some())
        .await
        .unwrap();
    assert!(fresh.view().track("by-viewer").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_and_other_projects_get_doc_unavailable() {
    let server = TestServer::start();
    let (ana, eve) = (register(server.port, "ana"), register(server.port, "eve"));
    let (_, doc) = create_project(server.port, &ana, "Secret");
    let (_, eves_doc) = create_project(server.port, &eve, "Eve's own");
    let mut outsider = SyncClient::open(&server.ws_url(&eve.token), &doc).await.unwrap();
    outsider.pump_until(Duration::from_secs(5), |c| c.unavailable).await.unwrap();
    assert_eq!(outsider.view().schema, 0, "outsider received document content");
    // A member of one project asking for another project's document through the same session.
    let mut c = SyncClient::open(&server.ws_url(&eve.token), &eves_doc).await.unwrap();
    c.wait_loaded().await.unwrap();
    let mut other = SyncClient::open(&server.ws_url(&eve.token), &doc).await.unwrap();
    other.pump_until(Duration::from_secs(5), |c| c.unavailable).await.unwrap();
    // Unknown (but well-formed) document ids look exactly the same.
    let unknown = moviola_crdt::wire::DocumentId::random();
    let mut u = SyncClient::open(&server.ws_url(&eve.token), unknown.as_str()).await.unwrap();
    u.pump_until(Duration::from_secs(5), |c| c.unavailable).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_relayed_not_stored() {
    let server = TestServer::start();
    let (ana, bo) = (register(server.port, "ana"), register(server.port, "bo"));
    let (project, doc) = create_project(server.port, &ana, "Presence");
    add_member(server.port, &ana, project, &bo, "viewer");
    let mut a = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    a.wait_loaded().await.unwrap();
    let mut b = SyncClient::open(&server.ws_url(&bo.token), &doc).await.unwrap();
    b.wait_loaded().await.unwrap();
    let heads_before = a.doc.get_heads();
    // CBOR {"cursor": 42}
    let presence = vec![0xa1, 0x66, b'c', b'u', b'r', b's', b'o', b'r', 0x18, 42];
    b.send_ephemeral(1, presence.clone()).await.unwrap();
    b.send_ephemeral(1, presence.clone()).await.unwrap(); // an echo: dropped
    a.pump_until(Duration::from_secs(5), |c| !c.ephemeral.is_empty()).await.unwrap();
    a.pump(Duration::from_millis(200)).await.unwrap();
    assert_eq!(a.ephemeral, vec![presence]);
    assert_eq!(a.doc.get_heads(), heads_before, "presence changed the document");
}
