//! Test support: start the real `moviola` binary on `127.0.0.1:0`, call its HTTP API, and talk
//! the automerge-repo protocol to it with a tokio-tungstenite client.

pub mod client;
pub mod events;
pub mod http;
pub mod server;

pub use client::SyncClient;
pub use events::Events;
pub use server::TestServer;
