//! Splitting a byte stream into NDJSON lines, sans I/O.
//!
//! [`LineDecoder`] turns reads of any size into complete lines while holding at
//! most one line's worth of an unfinished line. Two policies for a line over
//! the limit: by default the stream is broken for good (a peer speaking the
//! protocol never sends one, so the connection is dropped); with
//! [`LineDecoder::dropping_long_lines`] the line is discarded and decoding goes
//! on with the next one (for local producers such as honeypots, where one odd
//! event must not cost the rest).

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
/// [`FrameError`] it refuses all further input, unless it was made with
/// [`LineDecoder::dropping_long_lines`].
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
    /// Drop over-long lines instead of failing.
    drop_long: bool,
    /// Dropping mode: `buf[start..]` continues a line already reported as too
    /// long; it is discarded up to and including its `\n`.
    skipping: bool,
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
            drop_long: false,
            skipping: false,
        }
    }

    /// A decoder that discards lines longer than `max_message_bytes` and goes
    /// on with the next line.
    ///
    /// [`LineDecoder::next_frame`] reports each discarded line once as
    /// [`FrameError::TooLong`]; keep calling it after that error. While a
    /// line is being discarded no more than `max_message_bytes + 2` bytes of
    /// it are held, however long it turns out to be.
    pub fn dropping_long_lines(max_message_bytes: usize) -> Self {
        LineDecoder {
            drop_long: true,
            ..LineDecoder::new(max_message_bytes)
        }
    }

    /// The line limit.
    pub fn max_message_bytes(&self) -> usize {
        self.max
    }

    /// Changes the line limit for lines not yet complete: a server reads
    /// an unauthenticated peer's first line under a small limit and raises
    /// it once the peer is known.
    pub fn set_max_message_bytes(&mut self, max_message_bytes: usize) {
        self.max = max_message_bytes.max(1);
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
    /// bytes written. Returns an empty slice only after a framing error, or
    /// when [`LineDecoder::next_frame`] has frames or an error to hand out
    /// first (complete lines left unread count against the same `max + 2`
    /// bytes; the fuzz target `proto_frame` checks this).
    ///
    /// The window never lets the unfinished line grow past the limit: the
    /// decoder reports the error before asking for more.
    pub fn window(&mut self) -> &mut [u8] {
        if self.failed {
            return &mut [];
        }
        if self.skipping {
            // Frees the room even if the caller has not drained `next_frame`.
            self.skip_dropped();
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

    /// Copies `bytes` in, for a reader with a buffer of its own (and tests).
    ///
    /// Complete lines may pile up here until taken out; the unfinished tail
    /// is held to the same limit as with `window`.
    ///
    /// In dropping mode this never fails: an over-long line is cut down to
    /// `max + 2` bytes here, enough for `next_frame` to report it.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        if self.drop_long {
            self.feed_dropping(bytes);
            return Ok(());
        }
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
        self.compact();
        self.buf.extend_from_slice(bytes);
        self.end = self.buf.len();
        Ok(())
    }

    /// Moves what is still buffered to the front, so that a decoder fed
    /// forever holds only its unread lines, never everything it was fed.
    fn compact(&mut self) {
        self.buf.truncate(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.scanned = 0;
            self.buf.clear();
            if self.buf.capacity() > KEEP_CAPACITY {
                self.buf = Vec::new();
            }
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            self.buf.truncate(self.end);
        }
    }

    fn feed_dropping(&mut self, mut bytes: &[u8]) {
        self.compact();
        if self.skipping {
            self.skip_dropped();
        }
        let mut tail = self.unfinished_len();
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|&b| b == b'\n');
            if self.skipping {
                // `skip_dropped` left nothing buffered, so the reported line
                // goes on at the start of `bytes`.
                let Some(i) = newline else { return };
                bytes = bytes.get(i + 1..).unwrap_or_default();
                self.skipping = false;
                tail = 0;
                continue;
            }
            if tail > self.max + 1 {
                // The `max + 2` bytes already held prove the line too long;
                // the rest of it is not kept, its `\n` is, so that
                // `next_frame` sees where the line ends.
                let Some(i) = newline else { return };
                self.push(b"\n");
                bytes = bytes.get(i + 1..).unwrap_or_default();
                tail = 0;
                continue;
            }
            let room = self.max + 2 - tail;
            let take = match newline {
                Some(i) if i < room => i + 1,
                _ => room.min(bytes.len()),
            };
            let (head, rest) = bytes.split_at(take);
            self.push(head);
            tail = if head.last() == Some(&b'\n') {
                0
            } else {
                tail + take
            };
            bytes = rest;
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.end = self.buf.len();
    }

    /// Dropping mode: discards the rest of a line already reported as too
    /// long, up to and including its `\n`. Returns whether the `\n` was seen.
    fn skip_dropped(&mut self) -> bool {
        let pending = self.buf.get(self.start..self.end).unwrap_or_default();
        self.scanned = 0;
        match pending.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.start += i + 1;
                self.skipping = false;
                true
            }
            None => {
                self.start = self.end;
                false
            }
        }
    }

    /// Reports a line over the limit: the end of the stream by default, one
    /// dropped line in dropping mode. `unfinished` says its `\n` is yet to come.
    fn too_long(&mut self, unfinished: bool) -> FrameError {
        if self.drop_long {
            if unfinished {
                self.start = self.end;
                self.scanned = 0;
                self.skipping = true;
            }
        } else {
            self.failed = true;
        }
        FrameError::TooLong { max: self.max }
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
    /// In dropping mode the error stands for that one line only: call again
    /// for the lines after it.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        loop {
            if self.failed {
                return Err(FrameError::TooLong { max: self.max });
            }
            if self.skipping && !self.skip_dropped() {
                return Ok(None);
            }
            let Some(nl) = self.find_newline() else {
                if self.buffered() > self.max + 1 {
                    return Err(self.too_long(true));
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
                return Err(self.too_long(false));
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

    /// Everything `next_frame` has to say until it needs more bytes.
    fn drain(d: &mut LineDecoder) -> Vec<Result<Vec<u8>, FrameError>> {
        let mut out = Vec::new();
        loop {
            match d.next_frame() {
                Ok(Some(l)) => out.push(Ok(l.to_vec())),
                Ok(None) => return out,
                Err(e) => out.push(Err(e)),
            }
        }
    }

    fn ok(line: &[u8]) -> Result<Vec<u8>, FrameError> {
        Ok(line.to_vec())
    }

    /// What a dropping decoder must produce for `input`, by plain splitting.
    fn model(input: &[u8], max: usize) -> Vec<Result<Vec<u8>, FrameError>> {
        let mut parts: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
        let unfinished = parts.pop().unwrap_or_default();
        let mut out = Vec::new();
        for p in parts {
            let p = p.strip_suffix(b"\r").unwrap_or(p);
            if p.len() > max {
                out.push(Err(FrameError::TooLong { max }));
            } else if !p.is_empty() {
                out.push(ok(p));
            }
        }
        if unfinished.len() > max + 1 {
            out.push(Err(FrameError::TooLong { max }));
        }
        out
    }

    /// Feeds `input` in chunks of the given sizes (cycled), draining after each.
    fn by_feeds(
        d: &mut LineDecoder,
        input: &[u8],
        sizes: &[usize],
    ) -> Vec<Result<Vec<u8>, FrameError>> {
        let mut out = Vec::new();
        let mut rest = input;
        for &n in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (head, tail) = rest.split_at(n.clamp(1, rest.len()));
            d.feed(head).unwrap();
            assert!(d.buffered() <= head.len() + d.max_message_bytes() + 2);
            out.extend(drain(d));
            assert!(d.buffered() <= d.max_message_bytes() + 1);
            rest = tail;
        }
        out
    }

    /// Reads `input` through `window`/`filled` at most `sizes` (cycled) at a time.
    fn by_windows(
        d: &mut LineDecoder,
        input: &[u8],
        sizes: &[usize],
    ) -> Vec<Result<Vec<u8>, FrameError>> {
        let mut out = Vec::new();
        let mut rest = input;
        for &n in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let w = d.window();
            assert!(!w.is_empty(), "a drained dropping decoder always has room");
            let n = n.clamp(1, w.len()).min(rest.len());
            w[..n].copy_from_slice(&rest[..n]);
            d.filled(n);
            rest = &rest[n..];
            out.extend(drain(d));
            assert!(
                d.capacity() <= d.max_message_bytes() + 2,
                "capacity {}",
                d.capacity()
            );
        }
        out
    }

    #[test]
    fn dropping_long_line_between_two_good_lines() {
        let mut d = LineDecoder::dropping_long_lines(10);
        d.feed(b"{\"a\":1}\n0123456789ABCDEF\r\n{\"b\":2}\n")
            .unwrap();
        assert_eq!(
            drain(&mut d),
            vec![
                ok(b"{\"a\":1}"),
                Err(FrameError::TooLong { max: 10 }),
                ok(b"{\"b\":2}")
            ]
        );
        assert_eq!(d.next_frame(), Ok(None));
    }

    #[test]
    fn dropping_line_at_the_limit_passes_and_one_over_is_dropped() {
        let mut d = LineDecoder::dropping_long_lines(10);
        d.feed(b"0123456789\r\n0123456789A\n0123456789\n").unwrap();
        assert_eq!(
            drain(&mut d),
            vec![
                ok(b"0123456789"),
                Err(FrameError::TooLong { max: 10 }),
                ok(b"0123456789")
            ]
        );
    }

    #[test]
    fn dropping_long_line_over_many_feeds() {
        let max = 64;
        let mut input = b"first\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 50 * max));
        input.extend_from_slice(b"\r\nsecond\n");
        for size in [1, 7, max, max + 1, max + 2, 3 * max] {
            let mut d = LineDecoder::dropping_long_lines(max);
            assert_eq!(
                by_feeds(&mut d, &input, &[size]),
                vec![
                    ok(b"first"),
                    Err(FrameError::TooLong { max }),
                    ok(b"second")
                ],
                "feeds of {size}"
            );
        }
    }

    #[test]
    fn dropping_long_line_over_many_windows() {
        let max = 300;
        let mut input = b"first\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100 * max));
        input.extend_from_slice(b"\nsecond\n");
        for size in [1, 13, max + 1, usize::MAX] {
            let mut d = LineDecoder::dropping_long_lines(max);
            assert_eq!(
                by_windows(&mut d, &input, &[size]),
                vec![
                    ok(b"first"),
                    Err(FrameError::TooLong { max }),
                    ok(b"second")
                ],
                "windows of {size}"
            );
        }
    }

    #[test]
    fn dropping_long_line_at_the_end_without_newline() {
        let max = 16;
        let mut d = LineDecoder::dropping_long_lines(max);
        d.feed(b"good\n").unwrap();
        d.feed(&[b'x'; 100]).unwrap();
        assert_eq!(
            drain(&mut d),
            vec![ok(b"good"), Err(FrameError::TooLong { max })]
        );
        assert_eq!(d.next_frame(), Ok(None), "reported once");
        // More of the same line is dropped silently, and nothing is held.
        d.feed(&[b'y'; 1000]).unwrap();
        assert_eq!(d.buffered(), 0);
        assert_eq!(drain(&mut d), vec![]);
        d.feed(b"yyy\nafter\n").unwrap();
        assert_eq!(drain(&mut d), vec![ok(b"after")]);
    }

    #[test]
    fn dropping_several_long_lines_in_a_row() {
        let max = 8;
        let long = [b'z'; 20];
        let mut input = Vec::new();
        for _ in 0..3 {
            input.extend_from_slice(&long);
            input.push(b'\n');
        }
        input.extend_from_slice(b"\n123456789\r\nok\n");
        let mut d = LineDecoder::dropping_long_lines(max);
        d.feed(&input).unwrap();
        let err = Err(FrameError::TooLong { max });
        assert_eq!(
            drain(&mut d),
            vec![err.clone(), err.clone(), err.clone(), err, ok(b"ok")]
        );
    }

    #[test]
    fn dropping_holds_little_of_a_long_line_fed_without_draining() {
        let max = 32;
        let mut d = LineDecoder::dropping_long_lines(max);
        d.feed(b"a\n").unwrap();
        for _ in 0..1000 {
            d.feed(&[b'q'; 10]).unwrap();
            assert!(d.buffered() <= 2 + max + 2, "buffered {}", d.buffered());
        }
        d.feed(b"q\nb\n").unwrap();
        assert_eq!(
            drain(&mut d),
            vec![ok(b"a"), Err(FrameError::TooLong { max }), ok(b"b")]
        );
    }

    #[test]
    fn dropping_mode_window_after_an_undrained_error_has_room() {
        let max = 10;
        let mut d = LineDecoder::dropping_long_lines(max);
        d.feed(&[b'x'; 50]).unwrap();
        assert_eq!(d.next_frame(), Err(FrameError::TooLong { max }));
        let w = d.window();
        assert!(!w.is_empty());
        w[0] = b'\n';
        d.filled(1);
        d.feed(b"next\n").unwrap();
        assert_eq!(drain(&mut d), vec![ok(b"next")]);
    }

    proptest::proptest! {
        #[test]
        fn dropping_matches_plain_splitting(
            max in 1usize..24,
            input in proptest::collection::vec(
                proptest::prop_oneof![20 => proptest::strategy::Just(b'a'),
                    1 => proptest::strategy::Just(b'\r'), 2 => proptest::strategy::Just(b'\n')],
                0..600,
            ),
            sizes in proptest::collection::vec(1usize..80, 1..8),
        ) {
            let want = model(&input, max);
            let mut d = LineDecoder::dropping_long_lines(max);
            proptest::prop_assert_eq!(&by_feeds(&mut d, &input, &sizes), &want);
            let mut d = LineDecoder::dropping_long_lines(max);
            proptest::prop_assert_eq!(&by_windows(&mut d, &input, &sizes), &want);
        }
    }

    /// Fed forever, a decoder holds what is unread, not what it was fed.
    #[test]
    fn feeding_does_not_keep_what_was_taken() {
        for mut d in [
            LineDecoder::new(1024),
            LineDecoder::dropping_long_lines(1024),
        ] {
            let chunk = b"{\"a\":1}\n{\"b\":2}\n{\"c\"";
            for _ in 0..10_000 {
                d.feed(chunk).unwrap();
                while let Ok(Some(_)) = d.next_frame() {}
                d.feed(b":3}\n").unwrap();
                while let Ok(Some(_)) = d.next_frame() {}
            }
            assert!(d.capacity() <= 4096, "holds {} bytes", d.capacity());
        }
    }
}
