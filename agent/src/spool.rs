//! The event spool (docs/protocol.md §6): every `PotEvent` gets the next `seq`,
//! is appended to a file in the state dir and kept until an `EventAck`
//! covers it; after every reconnect the unacknowledged ones are sent again,
//! in order.
//!
//! On disk the spool is a run of segment files, `spool/<first seq>.spool`,
//! each line `<seq> <envelope>\n`, and `spool/acked` (the highest seq the
//! core acknowledged). A segment is deleted once everything in it is
//! acknowledged. Past `max_bytes` the oldest segment is deleted even so: its
//! unacknowledged events are counted as dropped for a NodeEvent Alarm.
//!
//! In memory, a ring holds the newest encoded events so that a connected
//! agent sends without reading its own file; an agent that fell behind (a
//! reconnect, a long outage) reads the segments back instead.
//!
//! Each batch is written with one `write` before it is offered for sending,
//! so a crash of the agent (not of the machine) loses nothing it accepted;
//! [`Spool::sync`] makes it survive a power cut too and runs every second.
//!
//! `spool/epoch` names this spool's run of seqs. A spool created from
//! nothing (a new node, or one whose spool was lost while its identity was
//! kept) draws a new epoch and numbers from 1 again; the core keeps one mark
//! per (node, epoch), so those events are not taken for replays of the old
//! ones. A spool written before epochs existed keeps epoch 0.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use honeybee_proto::{encode_into, Envelope, NodeMessage, PotEvent};

use crate::state;

/// The most bytes read from a segment at once when replaying; a longer line
/// (there should be none: pot lines are capped at 64 KiB) is skipped.
const READ_CHUNK: usize = 256 * 1024;
/// The ring's byte bound, whatever its event bound.
const RING_BYTES: usize = 1024 * 1024;
/// The largest segment: what a full disk drops at once, at most.
const SEGMENT_MAX: u64 = 1024 * 1024;
/// The file that keeps counted, not yet reported losses across a crash:
/// `<dropped> <damaged>`.
const UNREPORTED: &str = "unreported";
/// The smallest segment a full disk shrinks segments to.
const SEGMENT_MIN: u64 = 4096;
/// The file naming this spool's epoch.
const EPOCH: &str = "epoch";

#[derive(Debug)]
struct Segment {
    first_seq: u64,
    bytes: u64,
}

/// Where a replay stands in the segment files.
#[derive(Debug, Clone, Copy)]
struct FilePos {
    segment_first: u64,
    offset: u64,
}

/// The spool. Single-threaded: the agent's executor owns it.
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_max: u64,
    segments: VecDeque<Segment>,
    active: Option<File>,
    next_seq: u64,
    epoch: u64,
    acked: u64,
    acked_on_disk: u64,
    /// The next seq to send.
    cursor: u64,
    file_pos: Option<FilePos>,
    ring: VecDeque<(u64, Vec<u8>)>,
    ring_bytes: usize,
    ring_max: usize,
    dropped_unreported: u64,
    /// Records torn or damaged on disk, not yet reported.
    damaged_unreported: u64,
    dropped_total: u64,
    /// Why the unreported drops happened (the last reason), for the Alarm.
    dropped_why: String,
    dirty: bool,
    read_buf: Vec<u8>,
    read_chunk: usize,
    /// Tests: the bytes the disk holds; a write past it is cut short with
    /// ENOSPC, as a full disk does.
    #[cfg(test)]
    disk_room: Option<u64>,
}

/// The spool's epoch: as recorded, else 0 for a spool older than epochs
/// (`written` says it holds seqs already), else a new random one, recorded
/// before any event is numbered in it.
///
/// A damaged epoch file gets a new epoch too: the core may then store a
/// few events twice, which is better than taking new ones for replays.
fn load_epoch(dir: &Path, written: bool) -> io::Result<u64> {
    let path = dir.join(EPOCH);
    let recorded = match fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse() {
            Ok(epoch) => return Ok(epoch),
            Err(_) => {
                log::warn!(
                    "spool: {} is damaged; starting a new epoch (the core may store \
                     unacknowledged events twice)",
                    path.display()
                );
                false
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => written,
        Err(e) => return Err(e),
    };
    let epoch = if recorded { 0 } else { new_epoch()? };
    state::write_private(&path, format!("{epoch}\n").as_bytes())?;
    Ok(epoch)
}

/// A random epoch in 1..2^53, exact in every JSON reader.
fn new_epoch() -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("choosing an epoch: {e}")))?;
    Ok((u64::from_le_bytes(bytes) >> 11).max(1))
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.spool"))
}

/// The seq at the front of a spool line, and the envelope after it.
fn split_line(line: &[u8]) -> Option<(u64, &[u8])> {
    let space = line.iter().position(|&b| b == b' ')?;
    let seq = std::str::from_utf8(line.get(..space)?).ok()?.parse().ok()?;
    Some((seq, line.get(space + 1..)?))
}

impl Spool {
    /// Opens (creating) the spool in `dir`, repairing a segment that a crash
    /// left with a torn last line.
    pub fn open(dir: &Path, max_bytes: u64, ring_max: usize) -> Result<Spool, String> {
        let ctx = |e: io::Error| format!("opening the spool {}: {e}", dir.display());
        state::private_dir(dir).map_err(ctx)?;
        let mut firsts: Vec<u64> = Vec::new();
        for entry in fs::read_dir(dir).map_err(ctx)? {
            let name = entry.map_err(ctx)?.file_name();
            let name = name.to_string_lossy();
            if let Some(first) = name.strip_suffix(".spool").and_then(|n| n.parse().ok()) {
                firsts.push(first);
            }
        }
        firsts.sort_unstable();
        let acked_text = fs::read_to_string(dir.join("acked")).ok();
        let epoch = load_epoch(dir, acked_text.is_some() || !firsts.is_empty()).map_err(ctx)?;
        let acked = acked_text
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_max: (max_bytes / 4).clamp(1024, SEGMENT_MAX),
            segments: VecDeque::new(),
            active: None,
            next_seq: acked + 1,
            epoch,
            acked,
            acked_on_disk: acked,
            cursor: acked + 1,
            file_pos: None,
            ring: VecDeque::new(),
            ring_bytes: 0,
            ring_max: ring_max.max(1),
            dropped_unreported: 0,
            damaged_unreported: 0,
            dropped_total: 0,
            dropped_why: String::new(),
            dirty: false,
            read_buf: Vec::new(),
            read_chunk: READ_CHUNK,
            #[cfg(test)]
            disk_room: None,
        };
        // Losses counted by an earlier run that died before reporting them.
        if let Some((dropped, damaged)) =
            fs::read_to_string(dir.join(UNREPORTED)).ok().and_then(|s| {
                let mut f = s.split_whitespace().map(|n| n.parse::<u64>().ok());
                Some((f.next()??, f.next()??))
            })
        {
            spool.dropped_unreported = dropped;
            spool.damaged_unreported = damaged;
            spool.dropped_total = dropped + damaged;
        }
        for first in firsts {
            let path = segment_path(dir, first);
            let (last_seq, torn) = repair_segment(&path).map_err(ctx)?;
            if torn {
                spool.count_damaged("a record torn by a crash mid-write was cut");
            }
            let bytes = fs::metadata(&path).map_err(ctx)?.len();
            spool.next_seq = spool.next_seq.max(first).max(last_seq.map_or(0, |s| s + 1));
            spool.segments.push_back(Segment {
                first_seq: first,
                bytes,
            });
        }
        spool.remove_acked_segments();
        Ok(spool)
    }

    /// The seq the next event gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The epoch the seqs count in (sent at registration).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The highest seq the core acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Events accepted and not yet acknowledged.
    pub fn pending(&self) -> u64 {
        self.next_seq - 1 - self.acked
    }

    /// Events dropped because a bound was exceeded, since the agent started.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// Dropped events not yet reported to the core; reading resets it.
    pub fn take_dropped(&mut self) -> u64 {
        self.take_dropped_why().0
    }

    /// Like [`Spool::take_dropped`], with why the last of them were dropped.
    pub fn take_dropped_why(&mut self) -> (u64, String) {
        let taken = (
            std::mem::take(&mut self.dropped_unreported),
            std::mem::take(&mut self.dropped_why),
        );
        if taken.0 > 0 {
            self.save_unreported();
        }
        taken
    }

    /// Records torn (a crash mid-write) or damaged on disk, dropped instead
    /// of sent, not yet reported; reading resets it.
    pub fn take_damaged(&mut self) -> u64 {
        let taken = std::mem::take(&mut self.damaged_unreported);
        if taken > 0 {
            self.save_unreported();
        }
        taken
    }

    /// Keeps the counts not yet reported on disk, so that an agent that
    /// dies before it reports them still does after its restart.
    fn save_unreported(&self) {
        let path = self.dir.join(UNREPORTED);
        let result = if self.dropped_unreported == 0 && self.damaged_unreported == 0 {
            match fs::remove_file(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        } else {
            let text = format!("{} {}\n", self.dropped_unreported, self.damaged_unreported);
            state::write_private(&path, text.as_bytes())
        };
        if let Err(e) = result {
            log::debug!("spool: keeping the unreported loss counts: {e}");
        }
    }

    /// Gives each event its seq and appends them all with one write. On a
    /// write error the events are still sent from memory (and counted as
    /// dropped should the ring lose them before an ack).
    pub fn push_all(&mut self, node_id: u64, events: Vec<PotEvent>) -> io::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut file_bytes = Vec::with_capacity(events.len() * 256);
        let first = self.next_seq;
        for mut event in events {
            let seq = self.next_seq;
            self.next_seq += 1;
            event.seq = Some(seq);
            event.node_id = node_id;
            let mut line = Vec::with_capacity(256);
            encode_into(&Envelope::new(NodeMessage::PotEvent(event)), &mut line);
            file_bytes.extend_from_slice(seq.to_string().as_bytes());
            file_bytes.push(b' ');
            file_bytes.extend_from_slice(&line);
            self.ring_push(seq, line);
        }
        let written = self.append(first, &file_bytes);
        self.enforce_bound();
        written
    }

    fn ring_push(&mut self, seq: u64, line: Vec<u8>) {
        self.ring_bytes += line.len();
        self.ring.push_back((seq, line));
        while self.ring.len() > self.ring_max || self.ring_bytes > RING_BYTES {
            match self.ring.pop_front() {
                Some((_, l)) => self.ring_bytes -= l.len(),
                None => break,
            }
        }
    }

    /// Appends `bytes` (whole lines, seqs from `first_seq`) to the active
    /// segment. A failed write leaves no part of a line behind (the file is
    /// cut back); on a full disk the oldest segments are dropped, counted,
    /// to make room, down to the active one itself.
    fn append(&mut self, first_seq: u64, bytes: &[u8]) -> io::Result<()> {
        loop {
            let err = match self.try_append(first_seq, bytes) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            // ENOSPC, EDQUOT.
            let full = err.kind() == io::ErrorKind::StorageFull
                || matches!(err.raw_os_error(), Some(28 | 122));
            if !full {
                return Err(err);
            }
            let Some(oldest) = self.segments.front() else {
                return Err(err);
            };
            let only = self.segments.len() == 1;
            if only && oldest.bytes == 0 {
                // Nothing of ours left to make room with.
                return Err(err);
            }
            let end = if only {
                first_seq
            } else {
                self.segments.get(1).map_or(first_seq, |s| s.first_seq)
            };
            // Smaller segments from now on: a full disk then drops less at
            // a time, and acknowledged events free it sooner.
            self.segment_max = (self.disk_bytes() / 4)
                .max(SEGMENT_MIN)
                .min(self.segment_max);
            let why = format!("the disk under the spool is full ({err})");
            self.drop_front_segment(end, &why);
        }
    }

    fn try_append(&mut self, first_seq: u64, bytes: &[u8]) -> io::Result<()> {
        if self
            .segments
            .back()
            .is_none_or(|s| s.bytes >= self.segment_max)
        {
            self.segments.push_back(Segment {
                first_seq,
                bytes: 0,
            });
            self.active = None;
        }
        if self.active.is_none() {
            let first = self.segments.back().map_or(first_seq, |s| s.first_seq);
            self.active = Some(
                state::owner_only(OpenOptions::new().append(true).create(true))
                    .open(segment_path(&self.dir, first))?,
            );
        }
        let before = self.segments.back().map_or(0, |s| s.bytes);
        #[cfg(test)]
        let room = self.disk_room.map(|r| r.saturating_sub(self.disk_bytes()));
        let file = self
            .active
            .as_mut()
            .ok_or_else(|| io::Error::other("no segment"))?;
        #[cfg(test)]
        let written = match room {
            Some(room) if room < bytes.len() as u64 => file
                .write_all(bytes.get(..room as usize).unwrap_or_default())
                .and_then(|()| Err(io::Error::from_raw_os_error(28))),
            _ => file.write_all(bytes),
        };
        #[cfg(not(test))]
        let written = file.write_all(bytes);
        if let Err(e) = written {
            // Part of the batch may be written: cut it off, or the next
            // line would be glued to half of one.
            if let Err(cut) = file.set_len(before) {
                log::warn!("spool: cutting a failed write off: {cut}");
                // Unknown length: the next batch goes into a new segment.
                self.active = None;
                if let Some(s) = self.segments.back_mut() {
                    s.bytes = self.segment_max.max(before);
                }
            }
            return Err(e);
        }
        if let Some(s) = self.segments.back_mut() {
            s.bytes += bytes.len() as u64;
        }
        self.dirty = true;
        Ok(())
    }

    /// Drops the oldest segments while the spool is over its byte bound.
    fn enforce_bound(&mut self) {
        while self.segments.len() > 1 && self.disk_bytes() > self.max_bytes {
            let end = self.segments.get(1).map_or(self.next_seq, |s| s.first_seq);
            let why = format!("the spool went over {} bytes", self.max_bytes);
            self.drop_front_segment(end, &why);
        }
    }

    /// Deletes the oldest segment, whose events are those before `end`;
    /// counts those not acknowledged as dropped.
    fn drop_front_segment(&mut self, end: u64, why: &str) {
        let Some(oldest) = self.segments.pop_front() else {
            return;
        };
        if self.segments.is_empty() {
            self.active = None;
        }
        let last = end.saturating_sub(1);
        let unacked = last.saturating_sub(self.acked.max(oldest.first_seq.saturating_sub(1)));
        let _ = fs::remove_file(segment_path(&self.dir, oldest.first_seq));
        if unacked > 0 {
            let why = format!(
                "{why} (seq {}..={last})",
                oldest.first_seq.max(self.acked + 1)
            );
            self.count_dropped(unacked, &why);
        }
        // What was dropped is neither sent nor acknowledged any more.
        self.acked = self.acked.max(last);
        self.cursor = self.cursor.max(end);
        while self.ring.front().is_some_and(|(s, _)| *s <= last) {
            if let Some((_, l)) = self.ring.pop_front() {
                self.ring_bytes -= l.len();
            }
        }
        if self
            .file_pos
            .is_some_and(|p| p.segment_first == oldest.first_seq)
        {
            self.file_pos = None;
        }
    }

    fn count_dropped(&mut self, n: u64, why: &str) {
        self.dropped_unreported += n;
        self.dropped_total += n;
        self.dropped_why = why.to_owned();
        self.save_unreported();
        log::warn!("spool: dropped {n} unacknowledged events: {why}");
    }

    fn count_damaged(&mut self, why: &str) {
        self.damaged_unreported += 1;
        self.dropped_total += 1;
        self.save_unreported();
        log::warn!("spool: dropped 1 record: {why}");
    }

    fn disk_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Records an `EventAck`: everything up to `seq` is stored at the core.
    pub fn ack(&mut self, seq: u64) {
        let seq = seq.min(self.next_seq - 1);
        if seq <= self.acked {
            return;
        }
        self.acked = seq;
        self.cursor = self.cursor.max(seq + 1);
        while self.ring.front().is_some_and(|(s, _)| *s <= seq) {
            if let Some((_, l)) = self.ring.pop_front() {
                self.ring_bytes -= l.len();
            }
        }
        // A wholly acknowledged active segment half full (segments are
        // smaller once the disk was full) gives way to an empty one:
        // acknowledged events must not hold the disk, or a small, full disk
        // would make room only by dropping newer ones.
        if seq + 1 == self.next_seq
            && self
                .segments
                .back()
                .is_some_and(|s| s.bytes >= self.segment_max / 2)
        {
            self.start_empty_segment();
        }
        self.remove_acked_segments();
    }

    /// Starts a new, empty active segment for the next seq (its file made
    /// at once: the newest segment file is what a restart numbers on from),
    /// so that the one before it can go once acknowledged.
    fn start_empty_segment(&mut self) {
        let opened = state::owner_only(OpenOptions::new().append(true).create(true))
            .open(segment_path(&self.dir, self.next_seq));
        match opened {
            Ok(f) => {
                self.active = Some(f);
                self.segments.push_back(Segment {
                    first_seq: self.next_seq,
                    bytes: 0,
                });
            }
            Err(e) => log::warn!("spool: starting a segment: {e}"),
        }
    }

    /// Deletes segments wholly acknowledged, the `acked` file first written
    /// so that a restart never takes their events for unsent ones. Should
    /// that write fail (a full disk), they go all the same: the newest
    /// segment always stays, so a restart still numbers on from it and at
    /// worst sends acknowledged events again, which the core does not store
    /// twice; keeping them would keep the disk full for good.
    fn remove_acked_segments(&mut self) {
        let removable = |s: &VecDeque<Segment>, acked: u64| {
            s.len() > 1 && s.get(1).is_some_and(|next| next.first_seq <= acked + 1)
        };
        if !removable(&self.segments, self.acked) {
            return;
        }
        let _ = self.save_acked();
        while removable(&self.segments, self.acked) {
            if let Some(old) = self.segments.pop_front() {
                let _ = fs::remove_file(segment_path(&self.dir, old.first_seq));
                if self
                    .file_pos
                    .is_some_and(|p| p.segment_first == old.first_seq)
                {
                    self.file_pos = None;
                }
            }
        }
    }

    fn save_acked(&mut self) -> io::Result<()> {
        if self.acked_on_disk != self.acked {
            state::write_private(&self.dir.join("acked"), self.acked.to_string().as_bytes())
                .inspect_err(|e| log::warn!("spool: writing {}/acked: {e}", self.dir.display()))?;
            self.acked_on_disk = self.acked;
        }
        Ok(())
    }

    /// Syncs the active segment and the acknowledged seq to disk; called
    /// about once a second.
    pub fn sync(&mut self) {
        if self.dirty {
            if let Some(f) = &self.active {
                if let Err(e) = f.sync_data() {
                    log::warn!("spool: syncing {}: {e}", self.dir.display());
                }
            }
            self.dirty = false;
        }
        let _ = self.save_acked();
    }

    /// After a (re)connection: send again from the oldest unacknowledged event.
    pub fn rewind(&mut self) {
        let oldest = self.segments.front().map_or(self.next_seq, |s| s.first_seq);
        self.cursor = (self.acked + 1).max(oldest.min(self.next_seq));
        self.file_pos = None;
    }

    /// True when there are events to send.
    pub fn has_unsent(&self) -> bool {
        self.cursor < self.next_seq
    }

    /// Appends up to `max_events` events to send, in seq order, to `out`;
    /// returns how many.
    pub fn next_batch(&mut self, out: &mut Vec<u8>, max_events: usize) -> usize {
        let mut n = 0;
        while n < max_events && self.has_unsent() {
            let from_ring = self.ring.front().is_some_and(|(s, _)| *s <= self.cursor);
            let (cursor, segment) = (self.cursor, self.file_pos.map(|p| p.segment_first));
            let got = if from_ring {
                self.take_from_ring(out, max_events - n)
            } else {
                self.take_from_file(out, max_events - n)
            };
            // Reaching the end of a segment moves on to the next without
            // taking anything: go on reading there (each segment once).
            let next_segment = self
                .file_pos
                .is_some_and(|p| Some(p.segment_first) != segment);
            if got == 0 && self.cursor == cursor && !next_segment {
                break;
            }
            n += got;
        }
        n
    }

    fn take_from_ring(&mut self, out: &mut Vec<u8>, max: usize) -> usize {
        let Some(front) = self.ring.front().map(|(s, _)| *s) else {
            return 0;
        };
        let skip = (self.cursor - front) as usize;
        let mut n = 0;
        for (seq, line) in self.ring.iter().skip(skip).take(max) {
            out.extend_from_slice(line);
            self.cursor = seq + 1;
            n += 1;
        }
        n
    }

    /// Reads events at the cursor back from the segment files.
    fn take_from_file(&mut self, out: &mut Vec<u8>, max: usize) -> usize {
        let pos = match self.file_pos {
            Some(p) => p,
            None => {
                let Some(seg) = self
                    .segments
                    .iter()
                    .rev()
                    .find(|s| s.first_seq <= self.cursor)
                    .or(self.segments.front())
                else {
                    return 0;
                };
                FilePos {
                    segment_first: seg.first_seq,
                    offset: 0,
                }
            }
        };
        let mut buf = std::mem::take(&mut self.read_buf);
        buf.clear();
        let read = File::open(segment_path(&self.dir, pos.segment_first)).and_then(|mut f| {
            f.seek(SeekFrom::Start(pos.offset))?;
            f.take(self.read_chunk as u64).read_to_end(&mut buf)
        });
        let n = match read {
            Ok(_) => self.take_lines(&buf, pos, out, max),
            Err(e) => {
                log::warn!("spool: reading segment {}: {e}", pos.segment_first);
                self.next_segment(pos);
                0
            }
        };
        if buf.capacity() <= self.read_chunk + 1024 {
            self.read_buf = buf;
        }
        n
    }

    fn take_lines(&mut self, buf: &[u8], pos: FilePos, out: &mut Vec<u8>, max: usize) -> usize {
        let mut consumed = 0usize;
        let mut n = 0;
        let mut rest = buf;
        while n < max {
            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                break;
            };
            let (line, after) = rest.split_at(nl + 1);
            consumed += line.len();
            rest = after;
            if let Some((seq, envelope)) = split_line(line) {
                if seq >= self.cursor && seq < self.next_seq {
                    if is_event_line(seq, envelope) {
                        out.extend_from_slice(envelope);
                        n += 1;
                    } else {
                        self.count_damaged("a damaged record in the spool was skipped");
                    }
                    self.cursor = seq + 1;
                }
            }
        }
        // Only a short read says the file ends here; a full one that ends
        // on a line break is just that.
        let eof = buf.len() < self.read_chunk;
        if consumed == 0 && !eof {
            // One line longer than a read: not ours to send; skip past it.
            log::warn!(
                "spool: skipping an over-long line in segment {}",
                pos.segment_first
            );
            consumed = buf.len();
        }
        let offset = pos.offset + consumed as u64;
        let is_active = self
            .segments
            .back()
            .is_some_and(|s| s.first_seq == pos.segment_first);
        let drained = eof && n < max;
        if drained && !is_active {
            self.next_segment(pos);
        } else {
            self.file_pos = Some(FilePos {
                segment_first: pos.segment_first,
                offset,
            });
        }
        if drained && is_active && n == 0 {
            // Everything on file is sent; unsent events not on file are in
            // the ring (their write failed). Any the ring lost are gone.
            self.file_pos = None;
            if let Some(&(front, _)) = self.ring.front() {
                let front = front.min(self.next_seq);
                if front > self.cursor {
                    self.count_dropped(front - self.cursor, "neither written nor kept in memory");
                    self.cursor = front;
                }
            }
        }
        n
    }

    fn next_segment(&mut self, pos: FilePos) {
        let next = self
            .segments
            .iter()
            .find(|s| s.first_seq > pos.segment_first);
        self.file_pos = next.map(|s| FilePos {
            segment_first: s.first_seq,
            offset: 0,
        });
        if let Some(s) = next {
            self.cursor = self.cursor.max(s.first_seq.min(self.next_seq));
        } else {
            self.cursor = self.next_seq;
        }
    }
}

/// Whether `envelope` (with its line break) is the `PotEvent` of `seq`:
/// what the spool wrote, not a line damaged on disk.
fn is_event_line(seq: u64, envelope: &[u8]) -> bool {
    envelope.ends_with(b"\n")
        && matches!(
            honeybee_proto::decode::<NodeMessage>(envelope),
            Ok(NodeMessage::PotEvent(e)) if e.seq == Some(seq)
        )
}

/// Cuts a torn last line (a crash mid-write) off a segment; returns the last
/// whole line's seq and whether a torn line was cut.
fn repair_segment(path: &Path) -> io::Result<(Option<u64>, bool)> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    let whole = data.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    if whole < data.len() {
        log::warn!(
            "spool: {} ended in a torn line ({} bytes); cut",
            path.display(),
            data.len() - whole
        );
        OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(whole as u64)?;
    }
    let last = data
        .get(..whole)
        .unwrap_or_default()
        .split(|&b| b == b'\n')
        .filter_map(split_line)
        .map(|(seq, _)| seq)
        .max();
    Ok((last, whole < data.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use honeybee_proto::decode;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hb-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn event(i: u64) -> PotEvent {
        let mut data = serde_json::Map::new();
        data.insert("i".into(), i.into());
        PotEvent {
            node_id: 0,
            pot_id: "p".into(),
            pot_type: "t".into(),
            event_type: "t.x".into(),
            timestamp: "2026-11-26T00:00:00Z".into(),
            seq: None,
            data,
        }
    }

    fn seqs(out: &[u8]) -> Vec<u64> {
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| match decode::<NodeMessage>(l).unwrap() {
                NodeMessage::PotEvent(e) => e.seq.unwrap(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn drain(s: &mut Spool) -> Vec<u64> {
        let mut out = Vec::new();
        while s.next_batch(&mut out, 7) > 0 {}
        seqs(&out)
    }

    #[test]
    fn events_get_increasing_seqs_and_are_sent_once_until_a_rewind() {
        let d = dir("order");
        let mut s = Spool::open(&d, 1 << 20, 4).unwrap();
        s.push_all(9, (0..10).map(event).collect()).unwrap();
        assert_eq!(drain(&mut s), (1..=10).collect::<Vec<_>>());
        assert!(drain(&mut s).is_empty());
        s.ack(4);
        s.rewind();
        assert_eq!(
            drain(&mut s),
            (5..=10).collect::<Vec<_>>(),
            "replay from file and ring"
        );
        assert_eq!(s.pending(), 6);
        fs::remove_dir_all(&d).ok();
    }

    /// A spool made from nothing gets its own epoch, kept across restarts;
    /// one that lost its files (identity kept) gets another, so the core
    /// does not take its seqs 1, 2, … for replays of the old ones.
    #[test]
    fn a_new_spool_draws_an_epoch_that_survives_restarts_and_a_lost_spool_draws_another() {
        let d = dir("epoch");
        let first = Spool::open(&d, 1 << 20, 4).unwrap().epoch();
        assert!((1..1 << 53).contains(&first), "{first}");
        let mut s = Spool::open(&d, 1 << 20, 4).unwrap();
        assert_eq!(s.epoch(), first, "kept across a restart");
        s.push_all(9, (0..3).map(event).collect()).unwrap();
        drop(s);

        fs::remove_dir_all(&d).unwrap();
        let s = Spool::open(&d, 1 << 20, 4).unwrap();
        assert_ne!(s.epoch(), first);
        assert_eq!(s.next_seq(), 1, "a lost spool numbers from 1 again");

        // Damaged: a new epoch (duplicates at worst), not a failed start.
        fs::write(d.join(EPOCH), "not a number").unwrap();
        let damaged = Spool::open(&d, 1 << 20, 4).unwrap().epoch();
        assert!(damaged != 0 && damaged != s.epoch());
        fs::remove_dir_all(&d).ok();
    }

    /// A spool written before epochs existed keeps counting in epoch 0,
    /// which is what the core assumed for it.
    #[test]
    fn a_spool_from_before_epochs_keeps_epoch_zero() {
        let d = dir("legacy");
        let mut s = Spool::open(&d, 1 << 20, 4).unwrap();
        s.push_all(9, (0..3).map(event).collect()).unwrap();
        s.ack(2);
        s.sync();
        drop(s);
        fs::remove_file(d.join(EPOCH)).unwrap();
        let s = Spool::open(&d, 1 << 20, 4).unwrap();
        assert_eq!((s.epoch(), s.next_seq()), (0, 4));
        assert_eq!(fs::read_to_string(d.join(EPOCH)).unwrap(), "0\n");
        fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn a_restart_replays_what_was_not_acknowledged_and_keeps_counting() {
        let d = dir("restart");
        {
            let mut s = Spool::open(&d, 1 << 20, 1024).unwrap();
            s.push_all(1, (0..100).map(event).collect()).unwrap();
            drain(&mut s);
            s.ack(60);
            s.sync();
        }
        // A crash mid-write leaves half a line.
        let seg = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "spool"))
            .unwrap();
        OpenOptions::new()
            .append(true)
            .open(&seg)
            .unwrap()
            .write_all(b"101 {\"version\":2,\"mess")
            .unwrap();
        // Killed again before it reported the loss: still counted.
        drop(Spool::open(&d, 1 << 20, 1024).unwrap());
        let mut s = Spool::open(&d, 1 << 20, 1024).unwrap();
        assert_eq!(s.take_damaged(), 1, "the torn record is counted, once");
        drop(s);
        let mut s = Spool::open(&d, 1 << 20, 1024).unwrap();
        assert_eq!(s.take_damaged(), 0, "reported: not again");
        assert_eq!(s.take_dropped(), 0);
        assert_eq!(s.next_seq(), 101);
        assert_eq!(drain(&mut s), (61..=100).collect::<Vec<_>>());
        s.push_all(1, vec![event(0)]).unwrap();
        assert_eq!(drain(&mut s), vec![101], "the torn line was cut, not glued");
        fs::remove_dir_all(&d).ok();
    }

    /// A read that ends exactly on a line break is not the end of the file
    /// (this skipped events once).
    #[test]
    fn replay_reads_past_reads_that_end_on_a_line_break() {
        let d = dir("boundary");
        state::private_dir(&d).unwrap();
        // Seqs 10..=99 all have two digits: every line has the same length.
        fs::write(d.join("acked"), b"9").unwrap();
        let mut s = Spool::open(&d, 1 << 20, 4).unwrap();
        s.push_all(1, (0..80).map(|_| event(0)).collect()).unwrap();
        let seg = fs::read(segment_path(&d, 10)).unwrap();
        let line = seg.iter().position(|&b| b == b'\n').unwrap() + 1;
        assert_eq!(seg.len(), line * 80, "equal lines");
        s.read_chunk = line * 3;
        s.rewind();
        assert_eq!(drain(&mut s), (10..90).collect::<Vec<_>>());
        // The same across segments.
        let d2 = dir("boundary2");
        state::private_dir(&d2).unwrap();
        fs::write(d2.join("acked"), b"9").unwrap();
        let mut s = Spool::open(&d2, (line * 4 * 12) as u64, 4).unwrap();
        for _ in 0..30 {
            s.push_all(1, vec![event(0)]).unwrap();
        }
        s.read_chunk = line * 2;
        s.rewind();
        assert_eq!(drain(&mut s), (10..40).collect::<Vec<_>>());
        assert_eq!(s.take_dropped(), 0);
        fs::remove_dir_all(&d).ok();
        fs::remove_dir_all(&d2).ok();
    }

    #[test]
    fn acknowledged_segments_go_and_the_bound_drops_the_oldest_counted() {
        let d = dir("bound");
        let mut s = Spool::open(&d, 8192, 16).unwrap();
        for i in 0..40 {
            s.push_all(1, vec![event(i)]).unwrap();
        }
        let segments = || {
            fs::read_dir(&d)
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "spool")
                })
                .count()
        };
        assert!(segments() > 1);
        drain(&mut s);
        s.ack(40);
        assert_eq!(segments(), 1, "acknowledged segments are deleted");
        assert_eq!(s.take_dropped(), 0);
        // The core is away: far more than 8 KiB waits.
        for i in 0..400 {
            s.push_all(1, vec![event(i)]).unwrap();
        }
        let dropped = s.take_dropped();
        assert!(dropped > 0 && dropped < 400, "{dropped}");
        assert_eq!(s.take_dropped(), 0, "reported once");
        assert!(s.disk_bytes() <= 8192);
        s.rewind();
        let replay = drain(&mut s);
        assert_eq!(
            replay.len() as u64,
            400 - dropped,
            "everything not dropped is sent"
        );
        assert!(
            replay.windows(2).all(|w| w[1] == w[0] + 1),
            "in order, no gaps"
        );
        assert_eq!(replay.last(), Some(&440));
        fs::remove_dir_all(&d).ok();
    }

    /// Every line of every segment file is a whole event of its seq.
    fn assert_whole_lines(d: &Path) {
        for entry in fs::read_dir(d).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_none_or(|e| e != "spool") {
                continue;
            }
            let data = fs::read(&p).unwrap();
            assert!(data.is_empty() || data.ends_with(b"\n"), "{}", p.display());
            for line in data.split_inclusive(|&b| b == b'\n') {
                let (seq, env) = split_line(line).expect("a seq");
                assert!(
                    is_event_line(seq, env),
                    "a damaged line in {}: {}",
                    p.display(),
                    String::from_utf8_lossy(line)
                );
            }
        }
    }

    /// A full disk under the spool (ENOSPC part way through a write): the
    /// half-written batch is cut off, the oldest events are dropped to make
    /// room, counted with the reason, and the rest is sent in order.
    #[test]
    fn a_full_disk_drops_the_oldest_counted_and_leaves_no_torn_line() {
        let d = dir("diskfull");
        let mut s = Spool::open(&d, 1 << 20, 8).unwrap();
        s.segment_max = 2048;
        s.disk_room = Some(6000);
        for i in 0..200 {
            s.push_all(1, vec![event(i), event(i)]).unwrap();
        }
        assert_whole_lines(&d);
        let (dropped, why) = s.take_dropped_why();
        assert!(dropped > 0 && dropped < 400, "{dropped}");
        assert!(why.contains("disk under the spool is full"), "{why}");
        assert!(s.disk_bytes() <= 6000);
        s.rewind();
        let replay = drain(&mut s);
        assert_eq!(replay.len() as u64, 400 - dropped, "all not dropped");
        assert!(replay.windows(2).all(|w| w[1] == w[0] + 1), "in order");
        assert_eq!(replay.last(), Some(&400));
        assert_eq!(s.take_damaged(), 0);
        // Space returns when the core acknowledges: nothing more is dropped.
        s.ack(400);
        s.disk_room = Some(1 << 20);
        s.push_all(1, (0..50).map(event).collect()).unwrap();
        assert_eq!(s.take_dropped(), 0);
        assert_eq!(drain(&mut s), (401..=450).collect::<Vec<_>>());
        fs::remove_dir_all(&d).ok();
    }

    /// A disk too full for even one batch: the write fails, the events are
    /// still sent from memory, and no half line stays behind.
    #[test]
    fn a_batch_that_fits_nowhere_is_sent_from_memory() {
        let d = dir("nospace");
        let mut s = Spool::open(&d, 1 << 20, 64).unwrap();
        s.disk_room = Some(100);
        assert!(s.push_all(1, (0..5).map(event).collect()).is_err());
        assert_whole_lines(&d);
        assert_eq!(drain(&mut s), (1..=5).collect::<Vec<_>>());
        fs::remove_dir_all(&d).ok();
    }

    /// A line damaged on disk is skipped and counted, never sent.
    #[test]
    fn a_damaged_record_is_dropped_and_counted_not_sent() {
        let d = dir("damaged");
        let mut s = Spool::open(&d, 1 << 20, 4).unwrap();
        s.push_all(1, (0..10).map(event).collect()).unwrap();
        let seg = segment_path(&d, 1);
        let text = fs::read_to_string(&seg).unwrap();
        let damaged: String = text
            .lines()
            .map(|l| {
                if l.starts_with("5 ") {
                    "5 {\"version\":2,\"mess6 {}".to_owned()
                } else {
                    l.to_owned()
                }
            })
            .map(|l| l + "\n")
            .collect();
        fs::write(&seg, damaged).unwrap();
        s.rewind();
        let sent = drain(&mut s);
        assert_eq!(sent, [1, 2, 3, 4, 6, 7, 8, 9, 10]);
        assert_eq!(s.take_damaged(), 1);
        fs::remove_dir_all(&d).ok();
    }

    /// Acknowledged events hold no disk space for long: a wholly
    /// acknowledged active segment half full gives way to an empty one, and
    /// a restart numbers on after it.
    #[test]
    fn a_wholly_acknowledged_segment_gives_its_space_back() {
        let d = dir("rotate");
        {
            let mut s = Spool::open(&d, 64 << 20, 16).unwrap();
            s.segment_max = 64 * 1024;
            s.push_all(1, (0..1000).map(event).collect()).unwrap();
            assert!(s.disk_bytes() >= s.segment_max / 2);
            drain(&mut s);
            s.ack(999);
            assert!(s.disk_bytes() > 0, "not yet: one is unacknowledged");
            s.ack(1000);
            assert_eq!(s.disk_bytes(), 0);
            let files: Vec<_> = fs::read_dir(&d)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".spool"))
                .collect();
            assert_eq!(files, [format!("{:020}.spool", 1001)]);
            s.push_all(1, vec![event(0)]).unwrap();
            assert_eq!(drain(&mut s), [1001]);
        }
        let mut s = Spool::open(&d, 64 << 20, 16).unwrap();
        assert_eq!(s.next_seq(), 1002);
        assert_eq!(drain(&mut s), [1001], "unacknowledged: sent again");
        fs::remove_dir_all(&d).ok();
    }
}
