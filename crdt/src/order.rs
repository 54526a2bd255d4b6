//! Fractional order keys, so that reordering a track is one field write instead of a
//! delete-and-reinsert that would drop a concurrent edit to the moved track.
//!
//! A key is a non-empty string of base-36 digits (`0-9a-z`), compared as bytes. Between any two
//! keys there is always another. Two peers that pick the same key concurrently produce equal
//! keys; readers break the tie by the item's id, so every peer shows the same order.

const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

fn digit(key: &[u8], idx: usize) -> Option<u32> {
    key.get(idx).map(|&b| match b {
        b'0'..=b'9' => u32::from(b - b'0'),
        b'a'..=b'z' => u32::from(b - b'a') + 10,
        // Foreign characters (a key written by some other client) sort as the largest digit.
        _ => 35,
    })
}

/// Returns a key strictly between `lower` and `upper` (either may be absent, meaning the start
/// or the end of the list). If `lower >= upper` (possible after concurrent edits), returns a
/// key just after `lower`.
pub fn key_between(lower: Option<&str>, upper: Option<&str>) -> String {
    let lower = lower.unwrap_or("").as_bytes();
    let mut upper = upper.map(str::as_bytes).filter(|u| *u > lower);
    let mut out = Vec::new();
    let mut idx = 0;
    loop {
        let lo = digit(lower, idx).unwrap_or(0);
        let hi = match upper {
            Some(u) => digit(u, idx).unwrap_or(36),
            None => 36,
        };
        if hi > lo + 1 {
            out.push(DIGITS[(lo + (hi - lo) / 2) as usize]);
            break;
        }
        out.push(DIGITS[lo as usize]);
        if hi == lo + 1 {
            // Everything longer than our prefix is now below `upper`.
            upper = None;
        }
        idx += 1;
    }
    String::from_utf8(out).expect("digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::key_between;

    #[test]
    fn keys_stay_between_their_bounds() {
        let mut keys = vec![key_between(None, None)];
        // Always insert right after the first key: the worst case for key length.
        for _ in 0..200 {
            let next = key_between(Some(&keys[0]), keys.get(1).map(String::as_str));
            assert!(next > keys[0], "{next} > {}", keys[0]);
            if let Some(upper) = keys.get(1) {
                assert!(&next < upper, "{next} < {upper}");
            }
            keys.insert(1, next);
        }
        for _ in 0..200 {
            let first = key_between(None, Some(&keys[0]));
            assert!(first < keys[0]);
            keys.insert(0, first);
        }
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys);
    }

    #[test]
    fn inverted_bounds_still_give_a_key_after_lower() {
        assert!(key_between(Some("m"), Some("c")).as_str() > "m");
    }
}
