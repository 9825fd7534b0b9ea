//! Sources seen before, for `new_source` rules: two generations of at
//! most [`GENERATION`] addresses each, so memory is bounded and the
//! oldest half is forgotten first.

use std::collections::HashSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Addresses per generation.
pub const GENERATION: usize = 20_000;

/// The memory of sources.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Seen {
    new: HashSet<IpAddr>,
    old: HashSet<IpAddr>,
}

impl Seen {
    /// Remembers `ip`; whether it was never seen before.
    pub fn first_time(&mut self, ip: IpAddr) -> bool {
        if self.new.contains(&ip) {
            return false;
        }
        let known = self.old.contains(&ip);
        if self.new.len() >= GENERATION {
            self.old = std::mem::take(&mut self.new);
        }
        self.new.insert(ip);
        !known
    }

    /// Addresses remembered.
    pub fn len(&self) -> usize {
        self.new.len() + self.old.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_new_once_and_memory_is_bounded() {
        let mut s = Seen::default();
        let ip = |i: u32| IpAddr::from(i.to_be_bytes());
        assert!(s.first_time(ip(1)));
        assert!(!s.first_time(ip(1)));
        for i in 2..(3 * GENERATION as u32) {
            s.first_time(ip(i));
        }
        assert!(s.len() <= 2 * GENERATION);
        assert!(!s.first_time(ip(3 * GENERATION as u32 - 1)));
    }
}
