//! What a device keeps warm between jobs (resampling taps now, model weights later), bounded
//! by a memory budget; the least recently used entries go first.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

pub struct ModelCache {
    budget: u64,
    used: u64,
    clock: u64,
    entries: HashMap<String, Entry>,
}

struct Entry {
    value: Arc<dyn Any + Send + Sync>,
    bytes: u64,
    last_used: u64,
}

impl ModelCache {
    pub fn new(budget: u64) -> ModelCache {
        ModelCache {
            budget,
            used: 0,
            clock: 0,
            entries: HashMap::new(),
        }
    }

    /// The cached value under `key`, or `make()` cached under it (evicting least recently used
    /// entries to stay within the budget; a value larger than the whole budget is not kept).
    pub fn get_or_insert<T: Any + Send + Sync>(&mut self, key: &str, bytes: u64, make: impl FnOnce() -> Arc<T>) -> Arc<T> {
        self.clock += 1;
        if let Some(entry) = self.entries.get_mut(key) {
            if let Ok(value) = entry.value.clone().downcast::<T>() {
                entry.last_used = self.clock;
                return value;
            }
        }
        let value = make();
        if bytes > self.budget {
            return value;
        }
        if let Some(old) = self.entries.remove(key) {
            self.used -= old.bytes;
        }
        while self.used + bytes > self.budget {
            let oldest = self.entries.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| k.clone());
            let Some(oldest) = oldest else { break };
            let e = self.entries.remove(&oldest).expect("present");
            self.used -= e.bytes;
        }
        self.entries.insert(
            key.to_owned(),
            Entry {
                value: value.clone(),
                bytes,
                last_used: self.clock,
            },
        );
        self.used += bytes;
        value
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.used = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let mut c = ModelCache::new(100);
        let a = c.get_or_insert("a", 40, || Arc::new(1u32));
        c.get_or_insert("b", 40, || Arc::new(2u32));
        // Touch a, so b is the least recently used.
        assert_eq!(*c.get_or_insert("a", 40, || Arc::new(99u32)), *a);
        c.get_or_insert("c", 40, || Arc::new(3u32));
        assert!(c.contains("a") && c.contains("c") && !c.contains("b"));
        assert_eq!(c.used(), 80);
        // Too big for the budget: returned, not kept.
        assert_eq!(*c.get_or_insert("huge", 1000, || Arc::new(7u32)), 7);
        assert!(!c.contains("huge"));
    }
}
