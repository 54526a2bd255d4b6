//! `moviola-crdt`: the collaborative timeline of a Moviola project, on automerge.
//!
//! Sans-IO: this crate knows nothing of sockets, actors or databases. It owns
//! - [`schema`]: the document layout and its one-time creation ([`schema::new_document`]);
//! - [`ops`]: typed edit operations ([`EditOp`]) applied inside an automerge transaction;
//! - [`timeline`]: a typed, validated view ([`Timeline`]) and the deterministic render rule;
//! - [`plan`]: the export plan — what every output frame and sample is made of;
//! - [`time`]: the one integer timebase (flicks);
//! - [`wire`]: the automerge-repo network protocol messages and document ids, shared by the
//!   server and every Rust client.
//!
//! # Crate features
//! None.

pub mod ops;
pub mod order;
pub mod plan;
pub mod schema;
pub mod time;
pub mod timeline;
pub mod wire;

pub use ops::{EditError, EditOp, apply, apply_and_commit};
pub use plan::ExportPlan;
pub use schema::{Settings, new_document};
pub use timeline::{Issue, Timeline};
