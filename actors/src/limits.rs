//! Named bounds on everything a client can grow, and the project actor's timing. Values come
//! from `config/default.toml` (see the server's config module).

use std::time::Duration;

/// Per-connection limits of the `/sync` WebSocket.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest single WebSocket frame accepted.
    pub max_frame_bytes: usize,
    /// Largest message after reassembling continuation frames. The first sync of a large
    /// timeline arrives as one message, so this is generous.
    pub max_message_bytes: usize,
    /// Sustained protocol messages per second per session; bursts up to twice this pass.
    pub messages_per_second: u32,
    /// Concurrent `/sync` sessions per user.
    pub sessions_per_user: usize,
    /// Frames queued towards one client before it is judged too slow and disconnected.
    pub outbound_queue: usize,
    /// How often the server pings each client.
    pub heartbeat_interval: Duration,
    /// A client that sent nothing (not even a pong) for this long is disconnected.
    pub client_timeout: Duration,
    /// Largest `ephemeral` (presence) payload relayed; larger ones are refused with an `error`.
    pub max_ephemeral_bytes: usize,
    /// Sustained ephemeral payload bytes per second per session (bursts up to twice this);
    /// presence past it is dropped.
    pub ephemeral_bytes_per_second: u32,
    /// Testing only: each incoming document message waits a pseudo-random 0..this before it is
    /// routed to its project (order kept). Zero in production.
    pub test_jitter: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 16 << 20,
            max_message_bytes: 64 << 20,
            messages_per_second: 200,
            sessions_per_user: 16,
            outbound_queue: 1024,
            heartbeat_interval: Duration::from_secs(5),
            client_timeout: Duration::from_secs(30),
            max_ephemeral_bytes: 4096,
            ephemeral_bytes_per_second: 65536,
            test_jitter: Duration::ZERO,
        }
    }
}

/// Timing of the project actor.
#[derive(Clone, Debug)]
pub struct ProjectSettings {
    /// Incoming sync messages are applied, persisted and fanned out together this often.
    pub batch_interval: Duration,
    /// A project with no peers for this long is compacted and stopped.
    pub idle_timeout: Duration,
    /// How often a running project folds its journal into a snapshot.
    pub compact_interval: Duration,
    /// Compact earlier once this many journal entries have accumulated.
    pub compact_after_entries: u64,
}

impl Default for ProjectSettings {
    fn default() -> Self {
        ProjectSettings {
            batch_interval: Duration::from_millis(5),
            idle_timeout: Duration::from_secs(60),
            compact_interval: Duration::from_secs(60),
            compact_after_entries: 1000,
        }
    }
}
