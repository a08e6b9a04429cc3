//! The embedded command log: append-only segment files in the data
//! directory, written before a command is acknowledged.
//!
//! Why files and not a table: a group commit is one `write` on the journal
//! writer's own task, where an SQLite transaction was a round trip to the
//! store's worker thread plus B-tree and WAL page writes. Durability is the
//! same as the store's (SQLite in WAL mode with `synchronous = NORMAL`):
//! the bytes are in the kernel when the command is acknowledged, so they
//! survive the process being killed, not the machine losing power.
//!
//! A segment is `journal/NNNNNNNNNNNNNNNN.log`, a sequence of records:
//!
//! ```text
//! u32 LE payload length | u64 LE FNV-1a of the payload | payload
//! payload, a pair's run:  u8 pair length (1..) | pair | u64 LE first position | u32 LE count | commands (proto encodings back to back)
//! payload, a risk run:    u8 0 | u16 LE shard | u64 LE first position | u32 LE count | inputs (proto encodings of accounts::Input back to back)
//! ```
//!
//! The risk stage's input stream (deposits, withdrawals, the checks of
//! orders and amends, and the settlement of every engine event) is a stream
//! of its own beside the pairs' runs, with its own positions from 1. Its
//! records are marked by a pair length of 0, which no pair run can have (a
//! symbol is never empty), so journals written before the risk stage read as
//! they always did; a version without the risk stage refuses a journal with
//! risk records (a bad pair) instead of skipping them. In a group commit the
//! risk run comes first and the whole group is one `write`, so a killed
//! process keeps both a command and the check that admitted it, or neither.
//!
//! A crash can leave the last record of the last segment torn; opening the
//! journal cuts it off (it was never acknowledged: the write had not
//! returned). A bad record anywhere else is corruption and stops the start.
//! Segments are deleted once the stored snapshots cover every command in
//! them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use accounts::Input;
use proto::{Command, Symbol, fnv1a};

/// A new segment is started past this size.
const SEGMENT_BYTES: u64 = 64 << 20;

/// Bytes before a record's payload.
const HEADER: usize = 12;

/// Why the journal cannot be opened or written.
#[derive(Debug)]
pub enum JournalError {
    /// The file system failed.
    Io(PathBuf, io::Error),
    /// A record before the end does not check out.
    Corrupt(PathBuf, u64, BadRecord),
}

/// What is wrong with a record whose checksum checks out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRecord {
    /// It holds no bytes.
    Empty,
    /// It ends inside its header.
    ShortHeader,
    /// Its pair is not a symbol.
    BadPair,
    /// It holds no commands, or starts at position 0.
    NoCommands,
    /// A risk record of a shard other than 0 (the only one embedded runs).
    UnknownShard(u16),
    /// Its positions run past the end of the range.
    PastRange,
    /// Its commands do not decode.
    Undecodable(String),
    /// It holds another number of commands than it says.
    Count {
        /// Commands decoded.
        holds: usize,
        /// Commands the header says.
        says: u32,
    },
    /// A segment before the last one ends in a torn record.
    TornBeforeLast,
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadRecord::Empty => f.write_str("empty record"),
            BadRecord::ShortHeader => f.write_str("record shorter than its header"),
            BadRecord::BadPair => f.write_str("bad pair"),
            BadRecord::NoCommands => f.write_str("a record without commands or at position 0"),
            BadRecord::UnknownShard(s) => write!(f, "a risk record of unknown shard {s}"),
            BadRecord::PastRange => f.write_str("positions past the end of the range"),
            BadRecord::Undecodable(e) => write!(f, "{e}"),
            BadRecord::Count { holds, says } => write!(f, "holds {holds} commands, says {says}"),
            BadRecord::TornBeforeLast => f.write_str("a bad record before the last segment"),
        }
    }
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Io(p, e) => write!(f, "journal {}: {e}", p.display()),
            JournalError::Corrupt(p, at, m) => {
                write!(f, "journal {} at byte {at}: {m}", p.display())
            }
        }
    }
}

impl std::error::Error for JournalError {}

/// Commands of one pair at contiguous positions, encoded back to back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) pair: Symbol,
    pub(crate) first_position: u64,
    pub(crate) count: u32,
    pub(crate) body: Vec<u8>,
}

/// Risk-stage inputs at contiguous positions of the risk stream, encoded
/// back to back (the pipeline's run of a shard's log).
pub(crate) use pipeline::RiskRun;

/// The one shard the embedded runtime runs.
const SHARD: u16 = 0;

fn encode_record(run: &Run, out: &mut Vec<u8>) {
    let pair = run.pair.as_str().as_bytes();
    frame(out, |out| {
        out.push(pair.len() as u8);
        out.extend_from_slice(pair);
        out.extend_from_slice(&run.first_position.to_le_bytes());
        out.extend_from_slice(&run.count.to_le_bytes());
        out.extend_from_slice(&run.body);
    });
}

fn encode_risk_record(run: &RiskRun, out: &mut Vec<u8>) {
    frame(out, |out| {
        out.push(0);
        out.extend_from_slice(&SHARD.to_le_bytes());
        out.extend_from_slice(&run.first_position.to_le_bytes());
        out.extend_from_slice(&run.count.to_le_bytes());
        out.extend_from_slice(&run.body);
    });
}

/// Appends a record whose payload `payload` writes: header, then payload.
fn frame(out: &mut Vec<u8>, payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    payload(out);
    let payload_len = (out.len() - start - HEADER) as u32;
    let sum = fnv1a(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + HEADER].copy_from_slice(&sum.to_le_bytes());
}

/// A record as read back.
enum Record {
    Pair(Run, Vec<Command>),
    Risk(u64, Vec<Input>),
}

/// Checks a record's first position and count: positions start at 1, and
/// the one after the last must exist (it is the next to write), or the
/// reader's position arithmetic would overflow.
fn check_range(first: u64, count: u32) -> Result<(), BadRecord> {
    if first == 0 || count == 0 {
        return Err(BadRecord::NoCommands);
    }
    if first.checked_add(u64::from(count)).is_none() {
        return Err(BadRecord::PastRange);
    }
    Ok(())
}

/// A risk record's payload after its 0 marker.
fn decode_risk(payload: &[u8]) -> Result<Record, BadRecord> {
    let head = payload.get(..14).ok_or(BadRecord::ShortHeader)?;
    let shard = u16::from_le_bytes([head[0], head[1]]);
    if shard != SHARD {
        return Err(BadRecord::UnknownShard(shard));
    }
    let mut first = [0u8; 8];
    first.copy_from_slice(&head[2..10]);
    let first = u64::from_le_bytes(first);
    let count = u32::from_le_bytes([head[10], head[11], head[12], head[13]]);
    check_range(first, count)?;
    let inputs: Vec<Input> =
        proto::decode_run(&payload[14..]).map_err(|e| BadRecord::Undecodable(e.to_string()))?;
    if inputs.len() != count as usize {
        return Err(BadRecord::Count {
            holds: inputs.len(),
            says: count,
        });
    }
    Ok(Record::Risk(first, inputs))
}

/// The record at the start of `bytes` and its length; `None` when the
/// bytes end before the record does or its checksum fails (a torn write);
/// an error when it checks out but does not decode.
fn decode_record(bytes: &[u8]) -> Result<Option<(Record, usize)>, BadRecord> {
    if bytes.len() < HEADER {
        return Ok(None);
    }
    let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&bytes[4..HEADER]);
    let Some(payload) = bytes.get(HEADER..HEADER + len) else {
        return Ok(None);
    };
    if fnv1a(payload) != u64::from_le_bytes(sum) {
        return Ok(None);
    }
    let pair_len = *payload.first().ok_or(BadRecord::Empty)? as usize;
    if pair_len == 0 {
        return decode_risk(&payload[1..]).map(|r| Some((r, HEADER + len)));
    }
    let fixed = 1 + pair_len + 12;
    let head = payload.get(..fixed).ok_or(BadRecord::ShortHeader)?;
    let pair = std::str::from_utf8(&head[1..1 + pair_len])
        .ok()
        .and_then(|s| Symbol::new(s).ok())
        .ok_or(BadRecord::BadPair)?;
    let mut first = [0u8; 8];
    first.copy_from_slice(&head[1 + pair_len..1 + pair_len + 8]);
    let mut count = [0u8; 4];
    count.copy_from_slice(&head[1 + pair_len + 8..fixed]);
    let run = Run {
        pair,
        first_position: u64::from_le_bytes(first),
        count: u32::from_le_bytes(count),
        body: payload[fixed..].to_vec(),
    };
    check_range(run.first_position, run.count)?;
    let cmds: Vec<Command> =
        proto::decode_run(&run.body).map_err(|e| BadRecord::Undecodable(e.to_string()))?;
    if cmds.len() != run.count as usize {
        return Err(BadRecord::Count {
            holds: cmds.len(),
            says: run.count,
        });
    }
    Ok(Some((Record::Pair(run, cmds), HEADER + len)))
}

/// Reads one segment's bytes, calling `each(pair, position, command)` for
/// every command in order. Returns how many bytes are whole
/// records: less than `bytes.len()` when the rest is a torn write (which
/// only the last segment may have). An error is a record that checks out
/// but does not decode, with its offset. Public for the fuzz target
/// `journal_segment`.
pub fn scan_segment(
    bytes: &[u8],
    each: impl FnMut(Symbol, u64, Command),
) -> Result<usize, (usize, BadRecord)> {
    scan(bytes, each, |_, _| {})
}

/// [`scan_segment`], with `each_input(position, input)` for every input of
/// the risk stream.
fn scan(
    bytes: &[u8],
    mut each: impl FnMut(Symbol, u64, Command),
    mut each_input: impl FnMut(u64, Input),
) -> Result<usize, (usize, BadRecord)> {
    let mut at = 0usize;
    while at < bytes.len() {
        match decode_record(&bytes[at..]).map_err(|m| (at, m))? {
            // `decode_record` checked that every position fits.
            Some((Record::Pair(run, cmds), used)) => {
                for (i, cmd) in (0u64..).zip(cmds) {
                    each(run.pair, run.first_position + i, cmd);
                }
                at += used;
            }
            Some((Record::Risk(first, inputs), used)) => {
                for (i, input) in (0u64..).zip(inputs) {
                    each_input(first + i, input);
                }
                at += used;
            }
            None => break,
        }
    }
    Ok(at)
}

/// Per segment: each pair's last position, and the risk stream's.
#[derive(Debug, Default)]
struct Segment {
    pairs: HashMap<Symbol, u64>,
    risk: Option<u64>,
}

/// The open journal: the segment being appended to, and what the earlier
/// ones hold.
#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    file: File,
    index: u64,
    size: u64,
    /// Per segment (the current one included): each stream's last position.
    segments: BTreeMap<u64, Segment>,
    buf: Vec<u8>,
    /// Set when a failed write could not be cut off: anything written after
    /// a torn record would be lost at the next start, so nothing is.
    broken: bool,
    /// Whether each append returns only once the data is on the device.
    fsync: bool,
}

/// What opening the journal found: per pair, the commands after the
/// position given for it, in order.
pub(crate) type Tail = HashMap<Symbol, Vec<(u64, Command)>>;

/// The risk stream's inputs after a given position, in order.
pub(crate) type RiskTail = Vec<(u64, Input)>;

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:016}.log"))
}

impl Journal {
    /// Opens (creating) the journal in `dir`: reads every segment, cuts a
    /// torn tail off the last one, and starts a new segment. Returns the
    /// commands of each pair after `after[pair]` (0 when absent), and the
    /// risk stream's inputs after `risk_after`.
    pub(crate) fn open(
        dir: &Path,
        after: &HashMap<Symbol, u64>,
        risk_after: u64,
    ) -> Result<(Journal, Tail, RiskTail), JournalError> {
        let io = |p: &Path, e| JournalError::Io(p.to_path_buf(), e);
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut indexes: Vec<u64> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name();
                let name = name.to_str()?;
                name.strip_suffix(".log")?.parse().ok()
            })
            .collect();
        indexes.sort_unstable();
        let mut segments = BTreeMap::new();
        let mut tail: Tail = HashMap::new();
        let mut risk_tail = RiskTail::new();
        for (i, &index) in indexes.iter().enumerate() {
            let path = segment_path(dir, index);
            let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
            let mut last = HashMap::new();
            let mut risk_last = None;
            let whole = scan(
                &bytes,
                |pair, position, cmd| {
                    last.insert(pair, position);
                    if position > after.get(&pair).copied().unwrap_or(0) {
                        tail.entry(pair).or_default().push((position, cmd));
                    }
                },
                |position, input| {
                    risk_last = Some(position);
                    if position > risk_after {
                        risk_tail.push((position, input));
                    }
                },
            )
            .map_err(|(at, m)| JournalError::Corrupt(path.clone(), at as u64, m))?;
            if whole < bytes.len() {
                if i + 1 < indexes.len() {
                    let m = BadRecord::TornBeforeLast;
                    return Err(JournalError::Corrupt(path, whole as u64, m));
                }
                // A torn last write: never acknowledged.
                tracing::warn!(
                    segment = %path.display(),
                    at = whole,
                    cut = bytes.len() - whole,
                    "cutting a torn record off the journal"
                );
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| io(&path, e))?;
                f.set_len(whole as u64).map_err(|e| io(&path, e))?;
                f.sync_all().map_err(|e| io(&path, e))?;
            }
            segments.insert(
                index,
                Segment {
                    pairs: last,
                    risk: risk_last,
                },
            );
        }
        let index = indexes.last().map_or(0, |i| i + 1);
        let path = segment_path(dir, index);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        segments.insert(index, Segment::default());
        let journal = Journal {
            dir: dir.to_path_buf(),
            file,
            index,
            size: 0,
            segments,
            buf: Vec::new(),
            broken: false,
            fsync: false,
        };
        Ok((journal, tail, risk_tail))
    }

    /// With `on`, every append returns only after `fdatasync`: an
    /// acknowledged command then survives a power loss, not only the
    /// process being killed. New segments are made durable in the directory too.
    pub(crate) fn set_fsync(&mut self, on: bool) -> Result<(), JournalError> {
        self.fsync = on;
        if on {
            self.sync_dir()?;
        }
        Ok(())
    }

    /// Whether appends wait for the device.
    pub(crate) fn syncs(&self) -> bool {
        self.fsync
    }

    /// Makes the segment files' names durable (a new file is in its
    /// directory only once the directory is synced).
    fn sync_dir(&self) -> Result<(), JournalError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| JournalError::Io(self.dir.clone(), e))
    }

    /// Appends `risk` (when it holds inputs), then `runs` (those with
    /// commands), with one write. On failure nothing of them stays in the
    /// journal: a partial write is cut off again.
    pub(crate) fn append(
        &mut self,
        risk: Option<&RiskRun>,
        runs: &[Run],
    ) -> Result<(), JournalError> {
        let runs = || runs.iter().filter(|run| run.count > 0);
        let risk = risk.filter(|r| r.count > 0);
        self.buf.clear();
        if let Some(r) = risk {
            encode_risk_record(r, &mut self.buf);
        }
        for run in runs() {
            encode_record(run, &mut self.buf);
        }
        // Named only for an error: a path is an allocation per group commit.
        let path = || segment_path(&self.dir, self.index);
        if self.broken {
            return Err(JournalError::Io(
                path(),
                io::Error::other("an earlier write failed and could not be cut off"),
            ));
        }
        let written = self.file.write_all(&self.buf);
        // After a failed fdatasync the kernel may have dropped the dirty
        // pages: the bytes are treated as not written, and cut off.
        let synced = || {
            if self.fsync {
                self.file.sync_data()
            } else {
                Ok(())
            }
        };
        if let Err(e) = written.and_then(|()| synced()) {
            if let Err(cut) = self.file.set_len(self.size) {
                self.broken = true;
                return Err(JournalError::Io(
                    path(),
                    io::Error::other(format!("{e}; cutting it off failed: {cut}")),
                ));
            }
            return Err(JournalError::Io(path(), e));
        }
        self.size += self.buf.len() as u64;
        let last = self.segments.entry(self.index).or_default();
        for run in runs() {
            last.pairs
                .insert(run.pair, run.first_position + u64::from(run.count) - 1);
        }
        if let Some(r) = risk {
            last.risk = Some(r.first_position + u64::from(r.count) - 1);
        }
        if self.size >= SEGMENT_BYTES {
            self.rotate()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), JournalError> {
        let index = self.index + 1;
        let path = segment_path(&self.dir, index);
        self.file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| JournalError::Io(path, e))?;
        self.index = index;
        self.size = 0;
        self.segments.insert(index, Segment::default());
        if self.fsync {
            self.sync_dir()?;
        }
        Ok(())
    }

    /// Deletes the earlier segments whose every command is covered by a
    /// stored snapshot (`covered(pair)` is the snapshot's position) and
    /// whose every risk input is covered by the stored risk snapshot
    /// (`risk_covered`, its position).
    pub(crate) fn trim(&mut self, covered: impl Fn(Symbol) -> u64, risk_covered: u64) {
        let done: Vec<u64> = self
            .segments
            .iter()
            .filter(|(i, last)| {
                **i != self.index
                    && last.pairs.iter().all(|(p, pos)| *pos <= covered(*p))
                    && last.risk.is_none_or(|r| r <= risk_covered)
            })
            .map(|(i, _)| *i)
            .collect();
        for index in done {
            let path = segment_path(&self.dir, index);
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    self.segments.remove(&index);
                }
                Err(e) => {
                    tracing::warn!(segment = %path.display(), error = %e, "deleting a journal segment failed")
                }
            }
        }
    }

    /// How many segment files there are.
    #[cfg(test)]
    fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::{CommandBody, OrderId, OrderRef, Timestamp, UserId};

    fn cancel(pair: Symbol, id: u64) -> Command {
        Command {
            pair,
            user: UserId(1),
            timestamp: Timestamp(id),
            body: CommandBody::Cancel {
                target: OrderRef::Id(OrderId(id)),
            },
        }
    }

    fn run(pair: Symbol, first: u64, n: u64) -> Run {
        let mut body = Vec::new();
        for p in first..first + n {
            proto::encode_into(&cancel(pair, p), &mut body).unwrap();
        }
        Run {
            pair,
            first_position: first,
            count: n as u32,
            body,
        }
    }

    #[test]
    fn reopening_returns_the_commands_after_each_pairs_position() {
        let dir = tempfile::tempdir().unwrap();
        let (btc, eth) = (
            Symbol::new("BTC-EUR").unwrap(),
            Symbol::new("ETH-EUR").unwrap(),
        );
        let (mut j, tail, _) = Journal::open(dir.path(), &HashMap::new(), 0).unwrap();
        assert!(tail.is_empty());
        j.append(None, &[run(btc, 1, 3), run(eth, 1, 2)]).unwrap();
        // A run without commands (a pair with none in this group) is not
        // written.
        j.append(None, &[run(btc, 4, 1), run(eth, 3, 0)]).unwrap();
        drop(j);
        let after = HashMap::from([(btc, 2)]);
        let (mut j, tail, _) = Journal::open(dir.path(), &after, 0).unwrap();
        let positions = |p: Symbol| tail[&p].iter().map(|(pos, _)| *pos).collect::<Vec<_>>();
        assert_eq!(positions(btc), [3, 4]);
        assert_eq!(positions(eth), [1, 2]);
        assert_eq!(tail[&btc][0].1, cancel(btc, 3));
        // Each open starts a segment; the snapshots cover the first one
        // only once both pairs' commands in it are covered.
        assert_eq!(j.segment_count(), 2);
        j.trim(|p| if p == btc { 4 } else { 1 }, 0);
        assert_eq!(j.segment_count(), 2);
        j.trim(|_| 4, 0);
        assert_eq!(j.segment_count(), 1);
        drop(j);
        let (_, tail, _) = Journal::open(dir.path(), &HashMap::new(), 0).unwrap();
        assert!(tail.is_empty());
    }

    #[test]
    fn a_torn_last_record_is_cut_off_and_a_bad_earlier_one_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let btc = Symbol::new("BTC-EUR").unwrap();
        let (mut j, _, _) = Journal::open(dir.path(), &HashMap::new(), 0).unwrap();
        j.append(None, &[run(btc, 1, 2)]).unwrap();
        j.append(None, &[run(btc, 3, 2)]).unwrap();
        drop(j);
        let seg = segment_path(dir.path(), 0);
        let full = std::fs::read(&seg).unwrap();
        // Every cut inside the second record loses exactly that record.
        let first_len = full.len() / 2;
        for cut in [first_len + 1, first_len + HEADER, full.len() - 1] {
            let d = tempfile::tempdir().unwrap();
            std::fs::write(segment_path(d.path(), 0), &full[..cut]).unwrap();
            let (_, tail, _) = Journal::open(d.path(), &HashMap::new(), 0).unwrap();
            let got: Vec<u64> = tail[&btc].iter().map(|(p, _)| *p).collect();
            assert_eq!(got, [1, 2], "cut at {cut}");
            assert_eq!(
                std::fs::metadata(segment_path(d.path(), 0)).unwrap().len() as usize,
                first_len
            );
        }
        // A flipped byte in a segment that is not the last is corruption.
        let d = tempfile::tempdir().unwrap();
        let mut bad = full.clone();
        bad[first_len + HEADER + 3] ^= 0xff;
        std::fs::write(segment_path(d.path(), 0), &bad).unwrap();
        std::fs::write(segment_path(d.path(), 1), b"").unwrap();
        let err = Journal::open(d.path(), &HashMap::new(), 0).unwrap_err();
        assert!(
            matches!(err, JournalError::Corrupt(_, at, _) if at as usize == first_len),
            "{err}"
        );
    }

    #[test]
    fn the_risk_stream_reads_back_after_its_position_and_holds_its_segments() {
        let dir = tempfile::tempdir().unwrap();
        let btc = Symbol::new("BTC-EUR").unwrap();
        let input = |r: u64| Input::Deposit {
            user: UserId(1),
            asset: accounts::AssetId(0),
            amount: 5,
            reference: accounts::Reference(r),
        };
        let risk = |first: u64, n: u64| {
            let mut run = RiskRun {
                first_position: first,
                count: n as u32,
                body: Vec::new(),
            };
            for r in first..first + n {
                proto::encode_into(&input(r), &mut run.body).unwrap();
            }
            run
        };
        let (mut j, _, _) = Journal::open(dir.path(), &HashMap::new(), 0).unwrap();
        j.append(Some(&risk(1, 2)), &[run(btc, 1, 1)]).unwrap();
        j.append(Some(&risk(3, 1)), &[]).unwrap();
        drop(j);
        let (mut j, tail, risk_tail) = Journal::open(dir.path(), &HashMap::new(), 1).unwrap();
        assert_eq!(tail[&btc].len(), 1);
        let got: Vec<(u64, Input)> = risk_tail;
        assert_eq!(got, vec![(2, input(2)), (3, input(3))]);
        // The pairs' snapshots cover the first segment, the risk snapshot
        // not yet: it stays until that does too.
        j.trim(|_| 1, 2);
        assert_eq!(j.segment_count(), 2);
        j.trim(|_| 1, 3);
        assert_eq!(j.segment_count(), 1);
    }

    #[test]
    fn with_fsync_every_append_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let btc = Symbol::new("BTC-EUR").unwrap();
        let (mut j, _, _) = Journal::open(dir.path(), &HashMap::new(), 0).unwrap();
        j.set_fsync(true).unwrap();
        assert!(j.syncs());
        for first in (1..=30).step_by(3) {
            j.append(None, &[run(btc, first, 3)]).unwrap();
        }
        j.rotate().unwrap();
        j.append(None, &[run(btc, 31, 1)]).unwrap();
        drop(j);
        let (_, tail, _) = Journal::open(dir.path(), &HashMap::new(), 0).unwrap();
        let got: Vec<u64> = tail[&btc].iter().map(|(p, _)| *p).collect();
        assert_eq!(got, (1..=31).collect::<Vec<_>>());
    }
}

#[cfg(test)]
mod scan_tests {
    use super::*;

    fn record(first: u64, count: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let run = Run {
            pair: Symbol::new("BTC-EUR").unwrap(),
            first_position: first,
            count,
            body: Vec::new(),
        };
        encode_record(&run, &mut out);
        out
    }

    /// Found while writing the fuzz target: a checksummed record at
    /// position 0 or without commands made `first + count - 1` underflow,
    /// and one ending past `u64::MAX` overflowed the position range, a
    /// panic at start instead of a corruption error.
    #[test]
    fn records_whose_positions_do_not_exist_are_corrupt_not_a_panic() {
        for (first, count) in [(0, 0), (1, 0), (0, 1), (u64::MAX, 1), (u64::MAX - 1, 2)] {
            let bytes = record(first, count);
            let got = scan_segment(&bytes, |_, _, _| panic!("nothing decodes"));
            assert!(got.is_err(), "{first} {count}: {got:?}");
        }
    }

    #[test]
    fn a_scan_stops_at_a_torn_record() {
        assert_eq!(scan_segment(&[1, 2, 3], |_, _, _| {}), Ok(0));
        assert_eq!(scan_segment(&[], |_, _, _| {}), Ok(0));
    }
}
