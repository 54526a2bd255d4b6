//! Jobs end to end: uploads, estimates, both job kinds on the CPU device, live progress to every
//! watcher, queue control, cancellation, a crash mid-job, credits, and bad input.

use std::time::Duration;

use moviola_tests::TestServer;
use moviola_tests::events::Events;
use moviola_tests::http::{Account, Response, add_member, create_project, register, request, upload};
use serde_json::{Value, json};

/// A PNG with a colourful pattern (so compression and kernels have work to do).
fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 7 % 256) as u8, (y * 5 % 256) as u8, ((x ^ y) % 256) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn post(port: u16, who: &Account, path: &str, body: Value) -> Response {
    request(port, "POST", path, Some(&who.token), Some(&body)).unwrap()
}

fn get(port: u16, who: &Account, path: &str) -> Response {
    request(port, "GET", path, Some(&who.token), None).unwrap()
}

fn submit(port: u16, who: &Account, project: i64, body: Value) -> Response {
    post(port, who, &format!("/api/v1/projects/{project}/jobs"), body)
}

fn job_id(res: &Response) -> i64 {
    res.body["job"]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no job in {} {}", res.status, res.body))
}

/// Polls a job until it is final.
async fn wait_final(port: u16, who: &Account, job: i64, timeout: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let res = get(port, who, &format!("/api/v1/jobs/{job}"));
        let state = res.body["job"]["state"].as_str().unwrap_or("").to_owned();
        if ["succeeded", "failed", "cancelled"].contains(&state.as_str()) {
            return res.body["job"].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "job {job} still {state} after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The ledger invariant, and nothing left reserved once every job is final.
fn assert_settled(port: u16, who: &Account) -> Value {
    let res = get(port, who, "/api/v1/credits");
    let b = &res.body["balance"];
    let (granted, available, reserved, settled) = (
        b["granted"].as_i64().unwrap(),
        b["available"].as_i64().unwrap(),
        b["reserved"].as_i64().unwrap(),
        b["settled"].as_i64().unwrap(),
    );
    assert_eq!(granted, available + reserved + settled, "ledger does not balance: {b}");
    assert_eq!(reserved, 0, "credits left reserved: {b}");
    res.body
}

fn identity_cube() -> String {
    let mut s = String::from("TITLE \"identity\"\nLUT_3D_SIZE 2\n");
    for b in 0..2 {
        for g in 0..2 {
            for r in 0..2 {
                s.push_str(&format!("{r} {g} {b}\n"));
            }
        }
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_kinds_run_and_every_member_watching_sees_progress() {
    let server = TestServer::start();
    let port = server.port;
    let ana = register(port, "ana");
    let bo = register(port, "bo");
    let (project, _) = create_project(port, &ana, "Jobs");
    add_member(port, &ana, project, &bo, "viewer");
    // Bo only watches: he is a viewer, not the submitter.
    let mut bo_events = Events::connect(port, &bo.token, project).await.unwrap();

    let image = png(64, 48);
    let up = upload(port, &ana, project, &image, "pattern.png");
    assert_eq!(up.status, 201, "{}", up.body);
    let asset = up.body["asset"]["id"].as_i64().unwrap();
    assert_eq!(
        (up.body["asset"]["width"].as_i64(), up.body["asset"]["height"].as_i64()),
        (Some(64), Some(48))
    );
    let again = upload(port, &ana, project, &image, "same-content.png");
    assert_eq!(
        (
            again.status,
            again.body["asset"]["id"].as_i64(),
            again.body["deduplicated"].as_bool()
        ),
        (200, Some(asset), Some(true))
    );

    let est = post(
        port,
        &ana,
        &format!("/api/v1/projects/{project}/jobs/estimate"),
        json!({ "kind": "enhance.upscale", "input": asset, "params": { "scale": 2 } }),
    );
    assert_eq!(est.status, 200, "{}", est.body);
    assert_eq!(
        (est.body["output"]["width"].as_i64(), est.body["output"]["height"].as_i64()),
        (Some(128), Some(96))
    );
    assert!(est.body["credits"].as_i64().unwrap() >= 1 && est.body["eta_ms"].as_i64().unwrap() > 0);
    assert_eq!(est.body["needs_confirmation"], false);

    let color = submit(
        port,
        &ana,
        project,
        json!({ "kind": "enhance.color", "input": asset, "params": { "white_balance": true, "lut": identity_cube() } }),
    );
    assert_eq!(color.status, 201, "{}", color.body);
    let upscale = submit(
        port,
        &ana,
        project,
        json!({ "kind": "enhance.upscale", "input": asset, "params": { "scale": 2, "filter": "bicubic" } }),
    );
    assert_eq!(upscale.status, 201, "{}", upscale.body);
    let (color, upscale) = (job_id(&color), job_id(&upscale));

    for job in [color, upscale] {
        bo_events
            .wait_for(Duration::from_secs(60), |e| e["job"]["id"] == job && e["event"] == "succeeded")
            .await
            .unwrap();
        let kinds: Vec<&str> = bo_events.of_job(job).iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(kinds.first(), Some(&"queued"), "{kinds:?}");
        assert!(kinds.contains(&"started") && kinds.contains(&"progress"), "{kinds:?}");
        let progress = bo_events
            .of_job(job)
            .into_iter()
            .find(|e| e["event"] == "progress")
            .unwrap()
            .clone();
        let p = &progress["progress"];
        assert!(
            p["fraction"].as_f64().unwrap() >= 0.0 && p["fraction"].as_f64().unwrap() <= 1.0,
            "{p}"
        );
        assert!(p["stage"].is_string() && p["eta_ms"].is_i64() && p["total"].is_u64(), "{p}");
    }

    // One progress event carries a small preview of the result (a data URL of a PNG).
    let preview = bo_events
        .of_job(upscale)
        .into_iter()
        .find_map(|e| e["progress"]["preview"].as_str().map(str::to_owned));
    let preview = preview.expect("a preview in the upscale's progress");
    assert!(preview.starts_with("data:image/png;base64,"), "{preview}");

    let done = wait_final(port, &ana, upscale, Duration::from_secs(5)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let result = done["result_asset"].as_i64().unwrap();
    let content = get(port, &bo, &format!("/api/v1/assets/{result}/content"));
    assert_eq!((content.status, content.content_type.as_str()), (200, "image/png"));
    let out = image::load_from_memory(&content.bytes).unwrap();
    assert_eq!((out.width(), out.height()), (128, 96));
    let done_color = wait_final(port, &ana, color, Duration::from_secs(5)).await;
    let color_out = get(
        port,
        &ana,
        &format!("/api/v1/assets/{}/content", done_color["result_asset"].as_i64().unwrap()),
    );
    let color_img = image::load_from_memory(&color_out.bytes).unwrap();
    assert_eq!((color_img.width(), color_img.height()), (64, 48));

    let credits = assert_settled(port, &ana);
    let charged = done["actual_credits"].as_i64().unwrap() + done_color["actual_credits"].as_i64().unwrap();
    assert_eq!(credits["balance"]["settled"].as_i64(), Some(charged));
    let mut kinds: Vec<&str> = credits["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["grant", "release", "release", "reserve", "reserve"]);
    // The results are assets of the project, listed for every member.
    let assets = get(port, &bo, &format!("/api/v1/projects/{project}/assets"));
    assert_eq!(assets.body["assets"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let server = TestServer::start_with(&[("MOVIOLA_CREDITS_SIGNUP_GRANT", "5")]);
    let port = server.port;
    let ana = register(port, "ana");
    let bo = register(port, "bo");
    let (project, _) = create_project(port, &ana, "Bad");
    let (other, _) = create_project(port, &ana, "Other");
    add_member(port, &ana, project, &bo, "viewer");
    let small = upload(port, &ana, project, &png(32, 24), "s.png").body["asset"]["id"]
        .as_i64()
        .unwrap();
    let big = upload(port, &ana, project, &png(1200, 1000), "b.png").body["asset"]["id"]
        .as_i64()
        .unwrap();
    let elsewhere = upload(port, &ana, other, &png(16, 16), "o.png").body["asset"]["id"]
        .as_i64()
        .unwrap();

    let cases: Vec<(&Account, Value, u16, &str)> = vec![
        (
            &bo,
            json!({ "kind": "enhance.upscale", "input": small, "params": { "scale": 2 } }),
            403,
            "forbidden",
        ),
        (&ana, json!({ "kind": "enhance.teleport", "input": small }), 400, "unknown_kind"),
        (
            &ana,
            json!({ "kind": "enhance.upscale", "input": small, "params": { "scale": 9 } }),
            400,
            "invalid_params",
        ),
        (
            &ana,
            json!({ "kind": "enhance.upscale", "input": small, "params": { "scale": 2, "bogus": 1 } }),
            400,
            "invalid_params",
        ),
        (
            &ana,
            json!({ "kind": "enhance.color", "input": small, "params": { "lut": "LUT_3D_SIZE 2\n0 0 0\n" } }),
            400,
            "invalid_params",
        ),
        (
            &ana,
            json!({ "kind": "enhance.upscale", "input": elsewhere, "params": { "scale": 2 } }),
            404,
            "not_found",
        ),
        (
            &ana,
            json!({ "kind": "enhance.upscale", "input": big, "params": { "scale": 4 } }),
            400,
            "beyond_capability",
        ),
        (
            &ana,
            json!({ "kind": "enhance.upscale", "input": big, "params": { "scale": 2 } }),
            402,
            "insufficient_credits",
        ),
    ];
    for (who, body, status, code) in cases {
        let res = submit(port, who, project, body.clone());
        assert_eq!(
            (res.status, res.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{body} -> {}",
            res.body
        );
        assert!(!res.body["error"]["message"].as_str().unwrap().is_empty());
    }
    for (bytes, what) in [
        (b"just some text, not a video or image".to_vec(), "text"),
        (png(40, 30)[..60].to_vec(), "truncated PNG"),
        (Vec::new(), "empty file"),
    ] {
        let res = upload(port, &ana, project, &bytes, "evil.png");
        assert_eq!(
            (res.status, res.body["error"]["code"].as_str()),
            (415, Some("not_media")),
            "{what}: {}",
            res.body
        );
    }
    // A path in the name is reduced to its last component.
    let named = upload(port, &ana, project, &png(8, 8), "..%2F..%2Fetc%2Fpasswd");
    assert_eq!(named.status, 201, "{}", named.body);
    assert!(!named.body["asset"]["name"].as_str().unwrap().contains('/'));

    assert_eq!(
        get(port, &ana, &format!("/api/v1/projects/{project}/jobs")).body["jobs"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        get(port, &ana, &format!("/api/v1/projects/{project}/assets")).body["assets"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let credits = assert_settled(port, &ana);
    assert_eq!(credits["balance"]["available"].as_i64(), Some(5));

    // Confirmation above the user's threshold, and idempotent re-submits.
    let res = request(
        port,
        "PUT",
        "/api/v1/me/settings",
        Some(&ana.token),
        Some(&json!({ "confirm_above_credits": 0 })),
    )
    .unwrap();
    assert_eq!(res.status, 200, "{}", res.body);
    let body = json!({ "kind": "enhance.upscale", "input": small, "params": { "scale": 2 }, "idempotency_key": "once" });
    let res = submit(port, &ana, project, body.clone());
    assert_eq!(
        (res.status, res.body["error"]["code"].as_str()),
        (409, Some("confirmation_required")),
        "{}",
        res.body
    );
    assert_eq!(res.body["error"]["details"]["credits"].as_i64(), Some(1));
    let mut confirmed = body.clone();
    confirmed["confirm"] = json!(true);
    let first = submit(port, &ana, project, confirmed.clone());
    let second = submit(port, &ana, project, confirmed);
    assert_eq!((first.status, second.status), (201, 200), "{} / {}", first.body, second.body);
    assert_eq!(job_id(&first), job_id(&second));
    assert_eq!(second.body["created"], false);
    wait_final(port, &ana, job_id(&first), Duration::from_secs(30)).await;
    let credits = assert_settled(port, &ana);
    let reserves = credits["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "reserve")
        .count();
    assert_eq!(reserves, 1, "an idempotent re-submit must not reserve again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_priority_fair_share_and_cancel() {
    let server = TestServer::start();
    let port = server.port;
    let ana = register(port, "ana");
    let bo = register(port, "bo");
    let (project, _) = create_project(port, &ana, "Queue");
    add_member(port, &ana, project, &bo, "editor");
    server.admin(&["promote", &ana.email]);
    let mut events = Events::connect(port, &bo.token, project).await.unwrap();
    let asset = upload(port, &ana, project, &png(48, 32), "q.png").body["asset"]["id"]
        .as_i64()
        .unwrap();
    let job = |who: &Account| submit(port, who, project, json!({ "kind": "enhance.color", "input": asset }));

    assert_eq!(
        post(port, &bo, "/api/v1/queue/pause", json!({})).status,
        403,
        "only administrators control the queue"
    );
    assert_eq!(post(port, &ana, "/api/v1/queue/pause", json!({})).status, 200);
    let a1 = job_id(&job(&ana));
    let a2 = job_id(&job(&ana));
    let b1 = job_id(&job(&bo));
    let a3 = job_id(&job(&ana));
    // Cancel a queued job: it never starts and is refunded.
    let res = post(port, &ana, &format!("/api/v1/jobs/{a3}/cancel"), json!({}));
    assert_eq!((res.status, res.body["cancel"].as_str()), (202, Some("cancelled")), "{}", res.body);
    // Bo may not cancel Ana's job (he is an editor, not an owner).
    assert_eq!(post(port, &bo, &format!("/api/v1/jobs/{a1}/cancel"), json!({})).status, 403);
    // Reorder: a2 jumps the queue.
    let res = request(
        port,
        "PUT",
        &format!("/api/v1/jobs/{a2}/priority"),
        Some(&ana.token),
        Some(&json!({ "priority": 5 })),
    )
    .unwrap();
    assert_eq!(res.status, 200, "{}", res.body);
    let queue = get(port, &ana, "/api/v1/queue");
    assert_eq!(queue.body["paused"], true);
    assert_eq!(queue.body["queued"].as_array().unwrap().len(), 3, "{}", queue.body);
    assert_eq!(post(port, &ana, "/api/v1/queue/resume", json!({})).status, 200);

    for j in [a1, a2, b1] {
        assert_eq!(wait_final(port, &ana, j, Duration::from_secs(60)).await["state"], "succeeded");
    }
    let a3_final = wait_final(port, &ana, a3, Duration::from_secs(5)).await;
    assert_eq!(
        (a3_final["state"].as_str(), a3_final["started_at"].is_null()),
        (Some("cancelled"), true)
    );
    events
        .wait_for(Duration::from_secs(5), |e| e["job"]["id"] == a3 && e["event"] == "cancelled")
        .await
        .unwrap();
    events
        .wait_for(Duration::from_secs(5), |e| e["job"]["id"] == a1 && e["event"] == "succeeded")
        .await
        .unwrap();
    // One CPU device: priority first (a2), then fair share gives Bo's job before Ana's second.
    let started: Vec<i64> = events
        .seen
        .iter()
        .filter(|e| e["event"] == "started")
        .map(|e| e["job"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(started, [a2, b1, a1]);

    // Cancel a running job: a large upscale, cancelled once it reports progress.
    let big = upload(port, &ana, project, &png(1900, 1080), "big.png").body["asset"]["id"]
        .as_i64()
        .unwrap();
    let res = submit(
        port,
        &ana,
        project,
        json!({ "kind": "enhance.upscale", "input": big, "params": { "scale": 4, "tier": "pro" } }),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let running = job_id(&res);
    events
        .wait_for(Duration::from_secs(30), |e| e["job"]["id"] == running && e["event"] == "progress")
        .await
        .unwrap();
    let res = post(port, &ana, &format!("/api/v1/jobs/{running}/cancel"), json!({}));
    assert_eq!((res.status, res.body["cancel"].as_str()), (202, Some("stopping")), "{}", res.body);
    events
        .wait_for(Duration::from_secs(60), |e| e["job"]["id"] == running && e["event"] == "cancelled")
        .await
        .unwrap();
    let fin = wait_final(port, &ana, running, Duration::from_secs(5)).await;
    assert_eq!(fin["state"], "cancelled");
    assert!(fin["error"].as_str().unwrap().contains("cancelled by"), "{fin}");
    assert_eq!(post(port, &ana, &format!("/api/v1/jobs/{running}/cancel"), json!({})).status, 409);
    assert_settled(port, &ana);
    assert_settled(port, &bo);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_running_at_kill_9_is_retried_and_settled_once() {
    let mut server = TestServer::start();
    let port = server.port;
    let ana = register(port, "ana");
    let (project, _) = create_project(port, &ana, "Crash");
    let big = upload(port, &ana, project, &png(1900, 1080), "big.png").body["asset"]["id"]
        .as_i64()
        .unwrap();
    let res = submit(
        port,
        &ana,
        project,
        json!({ "kind": "enhance.upscale", "input": big, "params": { "scale": 4, "tier": "pro" } }),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let job = job_id(&res);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while get(port, &ana, &format!("/api/v1/jobs/{job}")).body["job"]["state"] != "running" {
        assert!(tokio::time::Instant::now() < deadline, "job never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.restart();
    let port = server.port;
    let fin = wait_final(port, &ana, job, Duration::from_secs(120)).await;
    assert_eq!(fin["state"], "succeeded", "{fin}");
    assert_eq!(fin["attempts"].as_i64(), Some(2), "{fin}");
    let credits = assert_settled(port, &ana);
    let of_job: Vec<&str> = credits["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["job_id"] == job)
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(of_job, ["reserve", "release"], "reserved and settled exactly once");
    let result = fin["result_asset"].as_i64().unwrap();
    let img = image::load_from_memory(&get(port, &ana, &format!("/api/v1/assets/{result}/content")).bytes).unwrap();
    assert_eq!((img.width(), img.height()), (7600, 4320));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_shows_on_the_timeline_and_turns_into_its_result() {
    use moviola_tests::SyncClient;
    let server = TestServer::start();
    let port = server.port;
    let ana = register(port, "ana");
    let bo = register(port, "bo");
    let (project, doc) = create_project(port, &ana, "Timeline jobs");
    add_member(port, &ana, project, &bo, "editor");
    let mut ana_sync = SyncClient::open(&server.ws_url(&ana.token), &doc).await.unwrap();
    ana_sync.wait_loaded().await.unwrap();
    ana_sync.edit(&crate::add_track("v1")).await.unwrap();
    ana_sync.pump_until(Duration::from_secs(10), |c| c.acknowledged()).await.unwrap();
    let mut bo_sync = SyncClient::open(&server.ws_url(&bo.token), &doc).await.unwrap();
    bo_sync.wait_loaded().await.unwrap();
    let asset = upload(port, &ana, project, &png(40, 30), "t.png").body["asset"]["id"]
        .as_i64()
        .unwrap();

    // A placeholder on a track that does not exist: refused, nothing queued.
    let bad = submit(
        port,
        &ana,
        project,
        json!({ "kind": "enhance.upscale", "input": asset, "params": { "scale": 2 },
        "placeholder": { "track": "nope", "start": 0, "duration": 1_411_200_000 } }),
    );
    assert_eq!(
        (bad.status, bad.body["error"]["code"].as_str()),
        (400, Some("invalid_placeholder")),
        "{}",
        bad.body
    );
    assert!(
        get(port, &ana, &format!("/api/v1/projects/{project}/jobs")).body["jobs"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let res = submit(
        port,
        &ana,
        project,
        json!({ "kind": "enhance.upscale", "input": asset, "params": { "scale": 2 },
        "placeholder": { "track": "v1", "start": 705_600_000, "duration": 1_411_200_000 } }),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let job = job_id(&res);
    let clip_id = res.body["job"]["timeline_clip"].as_str().unwrap().to_owned();
    let find = |c: &SyncClient| c.view().tracks.iter().flat_map(|t| t.clips.clone()).find(|c| c.id == clip_id);
    // Bo, another editor, sees the placeholder, then the result in its place.
    bo_sync.pump_until(Duration::from_secs(30), |c| find(c).is_some()).await.unwrap();
    let placeholder = find(&bo_sync).unwrap();
    assert_eq!(
        (
            placeholder.track.as_str(),
            placeholder.start,
            placeholder.job.as_ref().map(|j| j.id)
        ),
        ("v1", 705_600_000, Some(job))
    );
    let fin = wait_final(port, &ana, job, Duration::from_secs(30)).await;
    let result = fin["result_asset"].as_i64().unwrap().to_string();
    bo_sync
        .pump_until(Duration::from_secs(30), |c| find(c).is_some_and(|c| c.asset == result))
        .await
        .unwrap();
    let done = find(&bo_sync).unwrap();
    assert_eq!(done.job.as_ref().map(|j| j.state.as_str()), Some("succeeded"));
    assert!(!done.is_placeholder());
    assert_eq!(
        bo_sync.view().render_plan()[0].segments.len(),
        1,
        "the result is rendered once it exists"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_project_refunds_its_live_jobs() {
    let server = TestServer::start();
    let port = server.port;
    let ana = register(port, "ana");
    server.admin(&["promote", &ana.email]);
    let (project, _) = create_project(port, &ana, "Doomed");
    let asset = upload(port, &ana, project, &png(16, 16), "d.png").body["asset"]["id"]
        .as_i64()
        .unwrap();
    assert_eq!(post(port, &ana, "/api/v1/queue/pause", json!({})).status, 200);
    let res = submit(
        port,
        &ana,
        project,
        json!({ "kind": "enhance.upscale", "input": asset, "params": { "scale": 2 } }),
    );
    assert_eq!(res.status, 201, "{}", res.body);
    let before = get(port, &ana, "/api/v1/credits").body["balance"]["reserved"].as_i64();
    assert_eq!(before, Some(1));
    let del = request(port, "DELETE", &format!("/api/v1/projects/{project}"), Some(&ana.token), None).unwrap();
    assert_eq!(del.status, 204, "{}", del.body);
    assert_eq!(post(port, &ana, "/api/v1/queue/resume", json!({})).status, 200);
    let credits = assert_settled(port, &ana);
    assert_eq!(credits["balance"]["available"].as_i64(), Some(100));
    assert!(
        !server.data_dir.join(format!("media/projects/{project}")).exists(),
        "the project's media are removed"
    );
}
