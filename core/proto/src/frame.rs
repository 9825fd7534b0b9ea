//! Splitting a byte stream into NDJSON lines, sans I/O.

use std::fmt;

/// The default `max_message_bytes`: 1 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// The smallest read window handed out; also the initial allocation.
const MIN_WINDOW: usize = 256;
/// A buffer grown past this is released once it is empty again, so one large
/// message does not pin memory for the life of the connection.
const KEEP_CAPACITY: usize = 16 * 1024;

/// A line broke the framing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A line is longer than `max_message_bytes`.
    TooLong {
        /// The limit that was exceeded.
        max: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            FrameError::TooLong { max } => write!(f, "message longer than {max} bytes"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Splits bytes into lines terminated by `\n` (a `\r` before it is dropped).
///
/// Framing is by newline, never by read: any number of lines may arrive in
/// one read and a line may arrive over many reads. Blank lines are skipped.
/// The decoder never holds more than `max + 2` bytes of an unfinished line
/// (the line, a `\r` and the byte that proves it too long); after a
/// [`FrameError`] it refuses all further input.
#[derive(Debug)]
pub struct LineDecoder {
    buf: Vec<u8>,
    /// Start of the first unconsumed byte.
    start: usize,
    /// End of the filled region.
    end: usize,
    /// Bytes of `buf[start..end]` already searched for a newline.
    scanned: usize,
    max: usize,
    failed: bool,
}

impl LineDecoder {
    /// A decoder that accepts lines of at most `max_message_bytes` bytes.
    pub fn new(max_message_bytes: usize) -> Self {
        LineDecoder {
            buf: Vec::new(),
            start: 0,
            end: 0,
            scanned: 0,
            max: max_message_bytes.max(1),
            failed: false,
        }
    }

    /// The line limit.
    pub fn max_message_bytes(&self) -> usize {
        self.max
    }

    /// Bytes buffered and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Memory currently held by the buffer (its allocation, not its length).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Space to read into; call [`LineDecoder::filled`] with the number of
    /// bytes written. Returns an empty slice only after a framing error.
    ///
    /// The window never lets the unfinished line grow past the limit: the
    /// decoder reports the error before asking for more.
    pub fn window(&mut self) -> &mut [u8] {
        if self.failed {
            return &mut [];
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.scanned = 0;
            if self.buf.len() > KEEP_CAPACITY {
                self.buf = Vec::new();
            }
        }
        let pending = self.end - self.start;
        let allowed = (self.max + 2).saturating_sub(pending);
        if self.buf.len() - self.end < MIN_WINDOW.min(allowed) {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end = pending;
                self.start = 0;
            }
            if self.buf.len() - self.end < MIN_WINDOW.min(allowed) {
                let grown = (self.buf.len() * 2)
                    .max(MIN_WINDOW)
                    .min(self.max + 2)
                    .max(self.end + MIN_WINDOW.min(allowed));
                // `resize` alone may double the allocation past the limit.
                self.buf.reserve_exact(grown - self.buf.len());
                self.buf.resize(grown, 0);
            }
        }
        let room = (self.buf.len() - self.end).min(allowed);
        &mut self.buf[self.end..self.end + room]
    }

    /// Marks `n` bytes of the last [`LineDecoder::window`] as filled.
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Copies `bytes` in. For tests and fuzzing; readers use `window`.
    ///
    /// Complete lines may pile up here until taken out; the unfinished tail
    /// is held to the same limit as with `window`.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        if self.failed {
            return Err(FrameError::TooLong { max: self.max });
        }
        let unfinished = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(i) => bytes.len() - i - 1,
            None => self.unfinished_len() + bytes.len(),
        };
        if unfinished > self.max + 1 {
            self.failed = true;
            return Err(FrameError::TooLong { max: self.max });
        }
        self.buf.truncate(self.end);
        self.buf.extend_from_slice(bytes);
        self.end = self.buf.len();
        Ok(())
    }

    fn unfinished_len(&self) -> usize {
        let pending = &self.buf[self.start..self.end];
        match pending.iter().rposition(|&b| b == b'\n') {
            Some(i) => pending.len() - i - 1,
            None => pending.len(),
        }
    }

    fn find_newline(&mut self) -> Option<usize> {
        let from = self.start + self.scanned;
        match self.buf[from..self.end].iter().position(|&b| b == b'\n') {
            Some(i) => Some(from + i),
            None => {
                self.scanned = self.end - self.start;
                None
            }
        }
    }

    /// The next complete line, without `\n` or `\r\n`.
    ///
    /// `Ok(None)` means more bytes are needed. An unfinished line longer than
    /// the limit, or a finished one, is an error, and so is every call after it.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        loop {
            if self.failed {
                return Err(FrameError::TooLong { max: self.max });
            }
            let Some(nl) = self.find_newline() else {
                if self.buffered() > self.max + 1 {
                    self.failed = true;
                    return Err(FrameError::TooLong { max: self.max });
                }
                return Ok(None);
            };
            let begin = self.start;
            let mut stop = nl;
            if stop > begin && self.buf[stop - 1] == b'\r' {
                stop -= 1;
            }
            self.start = nl + 1;
            self.scanned = 0;
            if stop - begin > self.max {
                self.failed = true;
                return Err(FrameError::TooLong { max: self.max });
            }
            if stop == begin {
                continue;
            }
            return Ok(Some(&self.buf[begin..stop]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(d: &mut LineDecoder) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(l) = d.next_frame().unwrap() {
            out.push(l.to_vec());
        }
        out
    }

    #[test]
    fn two_lines_in_one_feed() {
        let mut d = LineDecoder::new(100);
        d.feed(b"{\"a\":1}\n{\"b\":2}\r\n").unwrap();
        assert_eq!(
            lines(&mut d),
            vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]
        );
    }

    #[test]
    fn one_line_over_many_feeds() {
        let mut d = LineDecoder::new(100);
        for b in b"{\"abc\": 12}\r" {
            d.feed(&[*b]).unwrap();
            assert_eq!(d.next_frame().unwrap(), None);
        }
        d.feed(b"\n").unwrap();
        assert_eq!(lines(&mut d), vec![b"{\"abc\": 12}".to_vec()]);
    }

    #[test]
    fn blank_lines_are_skipped() {
        let mut d = LineDecoder::new(100);
        d.feed(b"\n\r\n{}\n\n").unwrap();
        assert_eq!(lines(&mut d), vec![b"{}".to_vec()]);
    }

    #[test]
    fn line_at_the_limit_passes_and_one_over_fails() {
        let mut d = LineDecoder::new(10);
        d.feed(b"0123456789\r\n").unwrap();
        assert_eq!(lines(&mut d), vec![b"0123456789".to_vec()]);
        let mut d = LineDecoder::new(10);
        let r = d
            .feed(b"0123456789A\n")
            .and_then(|_| d.next_frame().map(|_| ()));
        assert_eq!(r, Err(FrameError::TooLong { max: 10 }));
        assert!(d.next_frame().is_err(), "a failed decoder stays failed");
    }

    #[test]
    fn an_endless_line_never_buffers_past_the_limit() {
        let max = 4096;
        let mut d = LineDecoder::new(max);
        let chunk = [b'x'; 1000];
        let mut err = None;
        for _ in 0..100 {
            if let Err(e) = d.feed(&chunk) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(FrameError::TooLong { max }));
        assert!(d.capacity() <= max + 2, "capacity {}", d.capacity());
        assert!(d.window().is_empty());
    }

    #[test]
    fn window_reads_stop_at_the_limit() {
        let max = 2000;
        let mut d = LineDecoder::new(max);
        let mut total = 0;
        loop {
            let w = d.window();
            if w.is_empty() {
                break;
            }
            let n = w.len();
            w.fill(b'y');
            d.filled(n);
            total += n;
            if d.next_frame().is_err() {
                break;
            }
        }
        assert!(total <= max + 2, "read {total} bytes");
        assert!(d.next_frame().is_err());
    }

    #[test]
    fn large_buffer_is_released_after_use() {
        let mut d = LineDecoder::new(1 << 20);
        let big = vec![b'z'; 100_000];
        d.feed(&big).unwrap();
        d.feed(b"\n").unwrap();
        assert_eq!(lines(&mut d).len(), 1);
        d.window();
        assert!(d.capacity() <= KEEP_CAPACITY, "capacity {}", d.capacity());
    }
}
