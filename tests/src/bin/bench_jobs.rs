//! Job system benchmark (issue 3): submit-to-running latency on an idle device, event fan-out
//! latency to 100 watchers, and queue throughput with trivial jobs, against the release server.
//! Run through `scripts/bench.sh jobs`, or `target/release/bench_jobs`. Figures:
//! docs/benchmarks.md. (The kernels' frames per second: `cargo bench -p moviola-models`.)

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use moviola_tests::TestServer;
use moviola_tests::events::Events;
use moviola_tests::http::{create_project, register, request, request_bytes};
use serde_json::json;

fn tiny_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([(x * 30) as u8, (y * 30) as u8, 128]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let server = TestServer::start_with(&[
        ("MOVIOLA_JOBS_MAX_LIVE_JOBS_PER_USER", "100000"),
        ("MOVIOLA_JOBS_PROGRESS_INTERVAL_MS", "0"),
    ]);
    let port = server.port;
    let ana = register(port, "bench");
    server.admin(&["promote", &ana.email]);
    server.admin(&["grant", &ana.email, "1000000"]);
    let (project, _) = create_project(port, &ana, "bench");
    let up = request_bytes(
        port,
        "POST",
        &format!("/api/v1/projects/{project}/assets?name=t.png"),
        Some(&ana.token),
        Some(&tiny_png()),
        None,
    )?;
    let asset = up.body["asset"]["id"].as_i64().unwrap();
    let job = json!({ "kind": "enhance.color", "input": asset, "params": { "white_balance": true } });
    let path = format!("/api/v1/projects/{project}/jobs");

    // 1. Submit → started, one job at a time on an idle device.
    let mut events = Events::connect(port, &ana.token, project).await?;
    let mut to_running = Vec::new();
    let mut submit_http = Vec::new();
    for _ in 0..100 {
        let t0 = Instant::now();
        let res = request(port, "POST", &path, Some(&ana.token), Some(&job))?;
        submit_http.push(t0.elapsed());
        let id = res.body["job"]["id"].as_i64().unwrap();
        events
            .wait_for(Duration::from_secs(10), |e| e["job"]["id"] == id && e["event"] == "started")
            .await?;
        to_running.push(t0.elapsed());
        events
            .wait_for(Duration::from_secs(10), |e| e["job"]["id"] == id && e["event"] == "succeeded")
            .await?;
        events.seen.clear();
    }
    to_running.sort();
    submit_http.sort();
    println!("| measure | p50 ms | p99 ms |");
    println!("|---|---|---|");
    println!(
        "| submit HTTP round trip (preflight + reserve + queue) | {:.2} | {:.2} |",
        pct(&submit_http, 0.5),
        pct(&submit_http, 0.99)
    );
    println!(
        "| submit → `started` event, idle CPU device | {:.2} | {:.2} |",
        pct(&to_running, 0.5),
        pct(&to_running, 0.99)
    );
    drop(events);

    // 2. Fan-out: 100 watchers; time from the submit answer to each watcher's `queued` event.
    let mut watchers = Vec::new();
    for _ in 0..100 {
        watchers.push(Events::connect(port, &ana.token, project).await?);
    }
    let mut fanout = Vec::new();
    for _ in 0..20 {
        let res = request(port, "POST", &path, Some(&ana.token), Some(&job))?;
        let answered = Instant::now();
        let id = res.body["job"]["id"].as_i64().unwrap();
        let waits = watchers.iter_mut().map(|w| async move {
            w.wait_for(Duration::from_secs(10), |e| e["job"]["id"] == id && e["event"] == "queued")
                .await
                .map(|_| Instant::now())
        });
        for at in futures_util::future::join_all(waits).await {
            fanout.push(at?.saturating_duration_since(answered));
        }
        for w in watchers.iter_mut() {
            w.wait_for(Duration::from_secs(10), |e| e["job"]["id"] == id && e["event"] == "succeeded")
                .await?;
            w.seen.clear();
        }
    }
    fanout.sort();
    println!(
        "| `queued` event at each of 100 watchers after the submit answer | {:.2} | {:.2} |",
        pct(&fanout, 0.5),
        pct(&fanout, 0.99)
    );
    drop(watchers);

    // 3. Throughput: 500 trivial jobs queued while paused, then run.
    let n = 500;
    request(port, "POST", "/api/v1/queue/pause", Some(&ana.token), Some(&json!({})))?;
    let mut ids = Vec::new();
    let t0 = Instant::now();
    for _ in 0..n {
        ids.push(
            request(port, "POST", &path, Some(&ana.token), Some(&job))?.body["job"]["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let submit_rate = n as f64 / t0.elapsed().as_secs_f64();
    let mut events = Events::connect(port, &ana.token, project).await?;
    let last = *ids.last().unwrap();
    let t1 = Instant::now();
    request(port, "POST", "/api/v1/queue/resume", Some(&ana.token), Some(&json!({})))?;
    let mut done = 0;
    while done < n {
        let e = events
            .wait_for(Duration::from_secs(60), |e| e["event"] == "succeeded" || e["event"] == "failed")
            .await?;
        if e["event"] == "failed" {
            bail!("a job failed: {e}");
        }
        done += 1;
        events.seen.clear();
    }
    let run_rate = n as f64 / t1.elapsed().as_secs_f64();
    let _ = last;
    println!();
    println!("| throughput ({n} trivial 8×8 `enhance.color` jobs, one CPU device) | jobs/s |");
    println!("|---|---|");
    println!("| submitted (sequential HTTP, preflight + transaction each) | {submit_rate:.0} |");
    println!("| run to `succeeded` (start + run + result file + asset + settle, events to 1 watcher) | {run_rate:.0} |");
    Ok(())
}
