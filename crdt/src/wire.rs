//! The automerge-repo network protocol, version "1": CBOR messages exchanged over a WebSocket
//! by `@automerge/automerge-repo-network-websocket` and by Moviola's server and Rust clients.
//! `docs/protocol.md` describes every message and what Moviola does with it.
//!
//! Every message is one binary WebSocket frame holding one CBOR map with text keys and a
//! `type`. Byte fields are plain CBOR byte strings; absent values may arrive as CBOR
//! `undefined`, and counters as floats (JavaScript numbers), both accepted here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The only protocol version there is.
pub const PROTOCOL_VERSION: &str = "1";

/// An automerge-repo document id: bs58check of 16 random bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocumentId(String);

impl DocumentId {
    pub fn random() -> Self {
        DocumentId::from_bytes(*uuid::Uuid::new_v4().as_bytes())
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        DocumentId(bs58::encode(bytes).with_check().into_string())
    }

    pub fn parse(s: &str) -> Result<Self, InvalidDocumentId> {
        let s = s.strip_prefix("automerge:").unwrap_or(s);
        let s = s.split('#').next().unwrap_or(s);
        match bs58::decode(s).with_check(None).into_vec() {
            Ok(bytes) if bytes.len() == 16 => Ok(DocumentId(s.to_owned())),
            _ => Err(InvalidDocumentId(s.chars().take(64).collect())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `automerge:` URL a client passes to `repo.find`.
    pub fn url(&self) -> String {
        format!("automerge:{}", self.0)
    }
}

impl std::fmt::Display for DocumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for DocumentId {
    type Error = InvalidDocumentId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        DocumentId::parse(&s)
    }
}

impl From<DocumentId> for String {
    fn from(id: DocumentId) -> String {
        id.0
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0:?} is not an automerge document id (bs58check of 16 bytes)")]
pub struct InvalidDocumentId(String);

/// What a peer says about its storage in `join` and `peer`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_ephemeral: Option<bool>,
}

/// Heads of a document in one storage, as gossiped by `remote-heads-changed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoteHeads {
    pub heads: Vec<String>,
    #[serde(deserialize_with = "number_as_f64")]
    pub timestamp: f64,
}

/// One protocol message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum Message {
    /// Client → server, first message on a connection.
    Join {
        sender_id: String,
        #[serde(default)]
        peer_metadata: Option<PeerMetadata>,
        #[serde(default)]
        supported_protocol_versions: Option<Vec<String>>,
    },
    /// Server → client, the answer to `join`.
    Peer {
        sender_id: String,
        target_id: String,
        peer_metadata: PeerMetadata,
        selected_protocol_version: String,
    },
    /// Sent by 1.x clients on disconnect; ignored.
    Leave {
        #[serde(default)]
        sender_id: Option<String>,
    },
    /// Either way: something went wrong; `message` says what.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sender_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_id: Option<String>,
        message: String,
    },
    /// The first sync message from a peer that does not have the document.
    Request {
        sender_id: String,
        target_id: String,
        document_id: DocumentId,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// An automerge sync message for `document_id`.
    Sync {
        sender_id: String,
        target_id: String,
        document_id: DocumentId,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// The sender does not have the document (or will not share it).
    DocUnavailable {
        sender_id: String,
        target_id: String,
        document_id: DocumentId,
    },
    /// Presence and other transient data, relayed but never stored.
    Ephemeral {
        sender_id: String,
        target_id: String,
        document_id: DocumentId,
        #[serde(deserialize_with = "number_as_u64")]
        count: u64,
        session_id: String,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    RemoteSubscriptionChange {
        sender_id: String,
        target_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        add: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remove: Option<Vec<String>>,
    },
    RemoteHeadsChanged {
        sender_id: String,
        target_id: String,
        document_id: DocumentId,
        new_heads: BTreeMap<String, RemoteHeads>,
    },
}

/// The message types this module knows, as they appear in `type`.
pub const MESSAGE_TYPES: &[&str] = &[
    "join",
    "peer",
    "leave",
    "error",
    "request",
    "sync",
    "doc-unavailable",
    "ephemeral",
    "remote-subscription-change",
    "remote-heads-changed",
];

/// Why a frame could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    #[error("frame is not valid CBOR: {0}")]
    NotCbor(String),
    #[error("frame is not a CBOR map with a text \"type\" field")]
    NotAMessage,
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("invalid {kind:?} message: {reason}")]
    Invalid { kind: String, reason: String },
}

/// Maximum nesting accepted while decoding, so a hostile frame cannot exhaust the stack.
const MAX_CBOR_DEPTH: usize = 32;

impl Message {
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        match ciborium::de::from_reader_with_recursion_limit::<Message, _>(bytes, MAX_CBOR_DEPTH) {
            Ok(msg) => Ok(msg),
            Err(err) => Err(diagnose(bytes, err.to_string())),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.data().map_or(0, <[u8]>::len));
        ciborium::into_writer(self, &mut out).expect("writing CBOR to a Vec cannot fail");
        out
    }

    /// The `type` string of this message.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Join { .. } => "join",
            Message::Peer { .. } => "peer",
            Message::Leave { .. } => "leave",
            Message::Error { .. } => "error",
            Message::Request { .. } => "request",
            Message::Sync { .. } => "sync",
            Message::DocUnavailable { .. } => "doc-unavailable",
            Message::Ephemeral { .. } => "ephemeral",
            Message::RemoteSubscriptionChange { .. } => "remote-subscription-change",
            Message::RemoteHeadsChanged { .. } => "remote-heads-changed",
        }
    }

    pub fn data(&self) -> Option<&[u8]> {
        match self {
            Message::Request { data, .. } | Message::Sync { data, .. } | Message::Ephemeral { data, .. } => Some(data),
            _ => None,
        }
    }

    pub fn document_id(&self) -> Option<&DocumentId> {
        match self {
            Message::Request { document_id, .. }
            | Message::Sync { document_id, .. }
            | Message::DocUnavailable { document_id, .. }
            | Message::Ephemeral { document_id, .. }
            | Message::RemoteHeadsChanged { document_id, .. } => Some(document_id),
            _ => None,
        }
    }
}

/// Works out which of the [`DecodeError`]s a failed frame deserves.
fn diagnose(bytes: &[u8], serde_error: String) -> DecodeError {
    let value: ciborium::Value = match ciborium::de::from_reader_with_recursion_limit(bytes, MAX_CBOR_DEPTH) {
        Ok(v) => v,
        Err(e) => return DecodeError::NotCbor(e.to_string()),
    };
    let kind = value
        .as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some("type")))
        .and_then(|(_, v)| v.as_text());
    match kind {
        None => DecodeError::NotAMessage,
        Some(kind) if !MESSAGE_TYPES.contains(&kind) => DecodeError::UnknownType(kind.chars().take(64).collect()),
        Some(kind) => DecodeError::Invalid {
            kind: kind.to_owned(),
            reason: serde_error,
        },
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    U(u64),
    F(f64),
}

fn number_as_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Number::deserialize(d)? {
        Number::U(u) => Ok(u),
        Number::F(f) if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Ok(f as u64),
        Number::F(_) => Err(serde::de::Error::custom("count must be a whole number of at least 0")),
    }
}

fn number_as_f64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(match Number::deserialize(d)? {
        Number::U(u) => u as f64,
        Number::F(f) => f,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_ids_round_trip_and_match_javascript() {
        // Produced by @automerge/automerge-repo 2.5.6 for these 16 bytes.
        let bytes: [u8; 16] = [
            0xf1, 0xc2, 0x9c, 0x84, 0x74, 0xc8, 0x4a, 0xde, 0xb8, 0x00, 0xbe, 0x47, 0x62, 0x7d, 0x33, 0xbf,
        ];
        assert_eq!(DocumentId::from_bytes(bytes).as_str(), "4NMNnkMhL8jXrdJ9jamS58PAVdXu");
        let id = DocumentId::random();
        assert_eq!(DocumentId::parse(&id.url()).unwrap(), id);
        assert!(DocumentId::parse("4NMNnkMhL8jXrdJ9jamS58PAVdXv").is_err());
        assert!(DocumentId::parse("").is_err());
    }

    #[test]
    fn messages_round_trip() {
        let doc = DocumentId::random();
        for msg in [
            Message::Join {
                sender_id: "a".into(),
                peer_metadata: Some(PeerMetadata::default()),
                supported_protocol_versions: Some(vec!["1".into()]),
            },
            Message::Sync {
                sender_id: "a".into(),
                target_id: "b".into(),
                document_id: doc.clone(),
                data: vec![1, 2, 3],
            },
            Message::Ephemeral {
                sender_id: "a".into(),
                target_id: "b".into(),
                document_id: doc.clone(),
                count: 7,
                session_id: "s".into(),
                data: vec![0xa0],
            },
            Message::Error {
                sender_id: None,
                target_id: Some("b".into()),
                message: "no".into(),
            },
        ] {
            assert_eq!(Message::decode(&msg.encode()).unwrap(), msg);
        }
    }

    #[test]
    fn accepts_what_cbor_x_writes() {
        // cbor-x: 16-bit map headers, `undefined` for an absent storage id.
        let mut frame = vec![0xb9, 0x00, 0x03];
        frame.extend([0x64, b't', b'y', b'p', b'e', 0x64, b'j', b'o', b'i', b'n']);
        frame.extend([0x68, b's', b'e', b'n', b'd', b'e', b'r', b'I', b'd', 0x61, b'x']);
        frame.extend([0x6c]);
        frame.extend(b"peerMetadata");
        frame.extend([0xb9, 0x00, 0x02, 0x69]);
        frame.extend(b"storageId");
        frame.push(0xf7);
        frame.push(0x6b);
        frame.extend(b"isEphemeral");
        frame.push(0xf5);
        let msg = Message::decode(&frame).unwrap();
        assert_eq!(
            msg,
            Message::Join {
                sender_id: "x".into(),
                peer_metadata: Some(PeerMetadata {
                    storage_id: None,
                    is_ephemeral: Some(true)
                }),
                supported_protocol_versions: None
            }
        );
    }

    #[test]
    fn bad_frames_get_specific_errors() {
        assert!(matches!(Message::decode(&[0xff, 0x00]), Err(DecodeError::NotCbor(_))));
        assert!(matches!(Message::decode(&[0x01]), Err(DecodeError::NotAMessage)));
        let mut unknown = Vec::new();
        ciborium::into_writer(&ciborium::Value::Map(vec![("type".into(), "dance".into())]), &mut unknown).unwrap();
        assert_eq!(Message::decode(&unknown), Err(DecodeError::UnknownType("dance".into())));
        let mut missing = Vec::new();
        ciborium::into_writer(&ciborium::Value::Map(vec![("type".into(), "sync".into())]), &mut missing).unwrap();
        assert!(matches!(Message::decode(&missing), Err(DecodeError::Invalid { .. })));
        // Deeply nested input is refused, not recursed into.
        let deep: Vec<u8> = std::iter::repeat_n(0x81, 10_000).chain([0x00]).collect();
        assert!(Message::decode(&deep).is_err());
    }

    #[test]
    fn random_and_mutated_frames_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let valid = Message::Sync {
            sender_id: "a".into(),
            target_id: "b".into(),
            document_id: DocumentId::random(),
            data: vec![0x42; 40],
        }
        .encode();
        for _ in 0..20_000 {
            let frame: Vec<u8> = if rng.random_bool(0.5) {
                (0..rng.random_range(0..64)).map(|_| rng.random()).collect()
            } else {
                let mut f = valid.clone();
                for _ in 0..rng.random_range(1..4) {
                    let idx = rng.random_range(0..f.len());
                    f[idx] = rng.random();
                }
                f.truncate(rng.random_range(1..=f.len()));
                f
            };
            let _ = Message::decode(&frame);
        }
    }
}
