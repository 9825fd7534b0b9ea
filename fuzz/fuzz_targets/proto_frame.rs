//! `LineDecoder` (docs/protocol.md §1) against a model of its framing rules.
//!
//! Input: `[max, flags, seed, stream...]`. `max` (1..=64) is the line limit,
//! `flags` picks strict or dropping mode, `feed` or `window`/`filled`, and
//! whether frames are drained after every chunk; `seed` cuts the stream into
//! chunks of 1..=37 bytes. The frames that come out are compared with the
//! model: lines end at `\n`, one `\r` before it is dropped, blank lines are
//! skipped, a line over `max` is one `TooLong` (dropping mode) or the end of
//! the stream (strict mode). Whatever arrives, an unfinished line never holds
//! more than `max + 2` bytes.
#![no_main]

use honeybee_proto::{FrameError, LineDecoder};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq, Eq, Clone)]
enum Out {
    Line(Vec<u8>),
    TooLong,
}

/// What the decoder must say about `stream`: one entry per terminated line,
/// then whether the unterminated tail is over the limit (reported only if
/// `next_frame` is asked once `max + 2` of it are held, so it may or may not
/// appear).
fn model(stream: &[u8], max: usize) -> (Vec<Out>, bool) {
    let mut out = Vec::new();
    let mut parts: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    let tail = parts.pop().unwrap_or_default();
    for line in parts {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > max {
            out.push(Out::TooLong);
        } else if !line.is_empty() {
            out.push(Out::Line(line.to_vec()));
        }
    }
    (out, tail.len() > max + 1)
}

struct Chunks<'a> {
    rest: &'a [u8],
    state: u32,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        // xorshift: cheap, deterministic chunk sizes from the seed byte.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        let n = (self.state % 37 + 1) as usize;
        let (head, tail) = self.rest.split_at(n.min(self.rest.len()));
        self.rest = tail;
        Some(head)
    }
}

/// Takes every frame out; returns whether the decoder is broken for good.
fn drain(d: &mut LineDecoder, out: &mut Vec<Out>, strict: bool) -> bool {
    loop {
        match d.next_frame() {
            Ok(Some(line)) => out.push(Out::Line(line.to_vec())),
            Ok(None) => {
                // Everything left is one unfinished line: bounded.
                assert!(
                    d.buffered() <= d.max_message_bytes() + 2,
                    "{} bytes held with max {}",
                    d.buffered(),
                    d.max_message_bytes()
                );
                return false;
            }
            Err(FrameError::TooLong { max }) => {
                assert_eq!(max, d.max_message_bytes());
                out.push(Out::TooLong);
                if strict {
                    return true;
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [max, flags, seed, stream @ ..] = data else {
        return;
    };
    let max = usize::from(max % 64) + 1;
    let strict = flags & 1 == 0;
    let use_window = flags & 2 != 0;
    let drain_each = flags & 4 != 0;
    let mut d = if strict {
        LineDecoder::new(max)
    } else {
        LineDecoder::dropping_long_lines(max)
    };
    let mut out = Vec::new();
    let mut broken = false;
    let chunks = Chunks {
        rest: stream,
        state: u32::from(*seed) | 0x100,
    };
    'feed: for chunk in chunks {
        if use_window {
            let mut rest = chunk;
            while !rest.is_empty() {
                let w = d.window();
                if w.is_empty() {
                    // The window closes only while frames or an error
                    // wait in `next_frame`: taking them must reopen it.
                    broken = drain(&mut d, &mut out, strict);
                    if broken {
                        break 'feed;
                    }
                    assert!(!d.window().is_empty(), "the window stays shut once drained");
                    continue;
                }
                let n = w.len().min(rest.len());
                let (head, tail) = rest.split_at(n);
                if let Some(dst) = w.get_mut(..n) {
                    dst.copy_from_slice(head);
                }
                d.filled(n);
                rest = tail;
                if drain_each {
                    broken = drain(&mut d, &mut out, strict);
                    if broken {
                        break 'feed;
                    }
                }
            }
        } else if d.feed(chunk).is_err() {
            assert!(strict, "feed failed in dropping mode");
            out.push(Out::TooLong);
            broken = true;
            break;
        }
        if drain_each || !use_window {
            broken = drain(&mut d, &mut out, strict);
            if broken {
                break;
            }
        }
    }
    if !broken {
        broken = drain(&mut d, &mut out, strict);
    }
    if broken {
        assert!(d.next_frame().is_err(), "a failed decoder stays failed");
        assert!(d.feed(b"{}\n").is_err(), "a failed decoder refuses input");
        assert!(d.window().is_empty(), "a failed decoder offers no window");
    }

    let (want, tail_too_long) = model(stream, max);
    if strict {
        // Lines come out in order up to the first error; the error is
        // justified by an over-long line somewhere in the stream (strict
        // `feed` may refuse a chunk before the good lines in it are read).
        let lines: Vec<&Out> = out.iter().filter(|o| **o != Out::TooLong).collect();
        let first_bad = want.iter().position(|o| *o == Out::TooLong);
        let good = want
            .get(..first_bad.unwrap_or(want.len()))
            .unwrap_or_default();
        assert!(
            lines.len() <= good.len() && lines.iter().zip(good).all(|(a, b)| *a == b),
            "strict lines {out:?} are not a prefix of {want:?}"
        );
        if broken {
            assert!(
                first_bad.is_some() || tail_too_long,
                "strict decoder failed on a stream without a long line"
            );
        } else {
            assert_eq!(first_bad, None, "a long line went unreported");
            assert_eq!(lines.len(), good.len(), "lines lost");
        }
    } else {
        // Dropping mode: exactly the model, plus at most one error for an
        // over-long unterminated tail.
        let mut got = out.clone();
        if tail_too_long && got.len() == want.len() + 1 && got.last() == Some(&Out::TooLong) {
            got.pop();
        }
        assert_eq!(got, want, "dropping mode differs from the model");
    }
});
