//! A cursor over attacker bytes, shared by the fingerprinters and the
//! responders: every read is bounds-checked and returns `None` at the end
//! instead of panicking.

/// A cursor over attacker bytes: every read is bounds-checked and returns
/// `None` at the end instead of panicking.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    pub(crate) rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Exactly `n` bytes, or `None` (and nothing consumed) if fewer remain.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let head = self.rest.get(..n)?;
        self.rest = self.rest.get(n..)?;
        Some(head)
    }

    /// Up to `n` bytes: all of them when the input was cut short.
    pub(crate) fn take_up_to(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        self.take(n).unwrap_or_default()
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(crate) fn u16be(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    pub(crate) fn u16le(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    pub(crate) fn u24be(&mut self) -> Option<usize> {
        let [a, b, c] = self.array()?;
        Some(usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c))
    }

    pub(crate) fn u24le(&mut self) -> Option<usize> {
        let [a, b, c] = self.array()?;
        Some(usize::from(c) << 16 | usize::from(b) << 8 | usize::from(a))
    }

    pub(crate) fn u32be(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    pub(crate) fn u32le(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    /// A NUL-terminated string (without the NUL), or `None` if no NUL
    /// arrives before the end.
    pub(crate) fn cstr(&mut self) -> Option<&'a [u8]> {
        let end = self.rest.iter().position(|&b| b == 0)?;
        let s = self.take(end)?;
        self.u8()?;
        Some(s)
    }
}
