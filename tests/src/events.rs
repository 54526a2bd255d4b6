//! A client of the `/events` WebSocket (JSON text frames).

use std::time::Duration;

use anyhow::{Result, bail};
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::client::{Socket, connect};

pub struct Events {
    socket: Socket,
    /// Every event received so far, in order.
    pub seen: Vec<Value>,
}

impl Events {
    /// Connects and waits for the `hello` frame (so later events are not missed).
    pub async fn connect(port: u16, token: &str, project: i64) -> Result<Events> {
        let socket = connect(&format!("ws://127.0.0.1:{port}/events?token={token}&project={project}")).await?;
        let mut events = Events { socket, seen: Vec::new() };
        events.wait_for(Duration::from_secs(5), |e| e["type"] == "hello").await?;
        Ok(events)
    }

    /// Reads events until one satisfies `pred` (returned) or `timeout` passes.
    pub async fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Result<Value> {
        if let Some(e) = self.seen.iter().find(|e| pred(e)) {
            return Ok(e.clone());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.socket.next()).await {
                Ok(Some(Ok(WsMessage::Text(text)))) => {
                    let event: Value = serde_json::from_str(&text)?;
                    self.seen.push(event.clone());
                    if pred(&event) {
                        return Ok(event);
                    }
                }
                Ok(Some(Ok(_))) => continue,
                Ok(_) => bail!("events stream closed; seen: {:?}", self.events_brief()),
                Err(_) => bail!("timed out waiting for an event; seen: {:?}", self.events_brief()),
            }
        }
    }

    /// `(job id, event)` pairs seen, for messages.
    pub fn events_brief(&self) -> Vec<(i64, String)> {
        self.seen
            .iter()
            .filter(|e| e["type"] == "job")
            .map(|e| (e["job"]["id"].as_i64().unwrap_or(0), e["event"].as_str().unwrap_or("").to_owned()))
            .collect()
    }

    /// Events seen for one job, in order.
    pub fn of_job(&self, job: i64) -> Vec<&Value> {
        self.seen.iter().filter(|e| e["type"] == "job" && e["job"]["id"] == job).collect()
    }
}
