//! Checks the automerge chunks inside a sync message before the document sees them.
//!
//! automerge loads the changes of a sync message with "partial load" semantics: a chunk whose
//! checksum does not match its content is skipped with a log line and no error, so a corrupted
//! change is silently dropped and the peer is never told (it would then wait for an
//! acknowledgement that never comes). Every chunk carries the first four bytes of the SHA-256 of
//! its type, length and content (for a compressed change: of the uncompressed change, which is
//! its hash); this module checks that, so the peer gets one clear error instead.

use automerge::Change;
use sha2::{Digest, Sha256};

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const COMPRESSED_CHANGE: u8 = 2;

/// Why a chunk was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum BadChunk {
    /// Not an automerge chunk at all, truncated, or with bytes after its end.
    Malformed(String),
    /// The content does not match the checksum in the chunk's header.
    Checksum,
}

impl std::fmt::Display for BadChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadChunk::Malformed(why) => write!(f, "malformed change: {why}"),
            BadChunk::Checksum => write!(f, "a change's content does not match its checksum (corrupted in transit or by the client)"),
        }
    }
}

/// Reads an unsigned LEB128 number; returns it and the bytes it took.
fn uleb(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Checks every chunk in `bytes` (one or more, back to back).
pub fn verify(mut bytes: &[u8]) -> Result<(), BadChunk> {
    if bytes.is_empty() {
        return Err(BadChunk::Malformed("empty".into()));
    }
    while !bytes.is_empty() {
        if bytes.len() < 10 || bytes[..4] != MAGIC {
            return Err(BadChunk::Malformed("not an automerge chunk".into()));
        }
        let checksum = &bytes[4..8];
        let chunk_type = bytes[8];
        let (len, len_bytes) = uleb(&bytes[9..]).ok_or_else(|| BadChunk::Malformed("bad length".into()))?;
        let header = 9 + len_bytes;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| header.checked_add(len))
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| BadChunk::Malformed("truncated".into()))?;
        let (chunk, rest) = bytes.split_at(end);
        let actual: [u8; 4] = if chunk_type == COMPRESSED_CHANGE {
            // The checksum is that of the change before compression: its hash.
            let change = Change::try_from(chunk).map_err(|e| BadChunk::Malformed(e.to_string()))?;
            change.hash().0[..4].try_into().expect("4 bytes")
        } else {
            Sha256::digest(&chunk[8..])[..4].try_into().expect("4 bytes")
        };
        if actual != checksum {
            return Err(BadChunk::Checksum);
        }
        bytes = rest;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    use super::*;

    #[test]
    fn intact_chunks_pass_and_a_flipped_byte_is_caught() {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "title", "Trailer").unwrap();
        let change = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
        assert_eq!(verify(&change), Ok(()));
        let saved = doc.save();
        assert_eq!(verify(&saved), Ok(()), "a whole document is a chunk too");
        let mut two = change.clone();
        two.extend(&saved);
        assert_eq!(verify(&two), Ok(()));
        for at in 0..change.len() {
            let mut bad = change.clone();
            bad[at] ^= 0xff;
            assert!(verify(&bad).is_err(), "byte {at} flipped went unnoticed");
        }
        assert!(matches!(verify(&change[..change.len() - 1]), Err(BadChunk::Malformed(_))));
        let mut long = change.clone();
        long.push(0);
        assert!(matches!(verify(&long), Err(BadChunk::Malformed(_))));
        assert!(verify(b"").is_err());
    }

    #[test]
    fn compressed_changes_are_checked_against_their_hash() {
        // A fixed actor, so the compressed bytes (and this test) are the same on every run.
        let mut doc = AutoCommit::new().with_actor(automerge::ActorId::from(&[7u8; 16][..]));
        // Large enough that automerge compresses it.
        doc.put(ROOT, "notes", "x".repeat(4096)).unwrap();
        let mut change = doc.get_last_local_change().unwrap();
        let plain = change.raw_bytes().to_vec();
        let bytes = change.bytes().to_vec();
        assert_eq!(bytes[8], COMPRESSED_CHANGE, "expected a compressed chunk");
        assert_eq!(verify(&bytes), Ok(()));
        // A flipped byte is either caught, or it sat where the compressed stream ignores it
        // (deflate's padding bits) and the change reads back exactly as it was: nothing
        // corrupted gets through.
        let mut caught = 0;
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x01;
            match verify(&bad) {
                Err(_) => caught += 1,
                Ok(()) => {
                    let read = Change::try_from(&bad[..]).expect("verified chunks parse");
                    assert_eq!(read.raw_bytes(), &plain[..], "byte {at} flipped changed the change unnoticed");
                }
            }
        }
        assert!(caught * 10 >= bytes.len() * 9, "only {caught} of {} flips caught", bytes.len());
    }
}
