//! The journal writer: group commits of submissions into the file journal,
//! each command then handed to its pair's actor; and of the `AdvanceTime`
//! commands it appends itself to idle pairs (see `pipeline::Ticks`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use commandlog::{PairStatus, SubmitError, Submitted, Waiters};
use pipeline::{PipelineMetrics, Ticks};
use proto::{Command, Symbol};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, warn};

use crate::journal::{Journal, Run};
use crate::listing::NewPair;

/// Group commits between looks for journal segments the snapshots cover.
const TRIM_EVERY: u64 = 1_024;

/// One submission waiting for the journal.
pub(crate) struct JournalRequest {
    pub(crate) cmd: Command,
    pub(crate) want_outcome: bool,
    pub(crate) reply: oneshot::Sender<Result<Submitted, SubmitError>>,
}

impl JournalRequest {
    /// The writer's own `AdvanceTime` for `pair`: nobody waits for it (its
    /// reply goes nowhere, and no RESULT waiter is registered).
    pub(crate) fn advance_time(pair: Symbol) -> JournalRequest {
        JournalRequest {
            cmd: pipeline::advance_time(pair),
            want_outcome: false,
            reply: oneshot::channel().0,
        }
    }
}

/// The journal writer's state between group commits.
pub(crate) struct JournalWriter {
    pub(crate) journal: Journal,
    pub(crate) actors: HashMap<Symbol, mpsc::Sender<(u64, Command)>>,
    pub(crate) pairs: HashMap<Symbol, Arc<PairStatus>>,
    /// Pairs listed while running.
    pub(crate) listings: mpsc::Receiver<NewPair>,
    pub(crate) waiters: Arc<Mutex<Waiters>>,
    pub(crate) max_batch: usize,
    pub(crate) metrics: PipelineMetrics,
    /// When idle pairs get an `AdvanceTime`.
    pub(crate) ticks: Ticks,
}

/// What one group commit holds: a run of commands per pair, and each
/// accepted request with its position.
struct Group {
    runs: Vec<Run>,
    assigned: Vec<(u64, JournalRequest)>,
}

impl JournalWriter {
    /// Journals submissions from `rx` in group commits until `stop` turns
    /// true and what was queued before it is in.
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<JournalRequest>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut next: HashMap<Symbol, u64> = self
            .pairs
            .iter()
            .map(|(s, p)| (*s, p.logged_position()))
            .collect();
        let mut requests = Vec::with_capacity(self.max_batch);
        // The runs (one per pair) keep their buffers from batch to batch.
        let mut group = Group {
            runs: Vec::new(),
            assigned: Vec::with_capacity(self.max_batch),
        };
        let mut group_commits = 0u64;
        let mut stopping = false;
        let mut listing = true;
        loop {
            tokio::select! {
                l = self.listings.recv(), if listing => {
                    match l {
                        Some(l) => l.install(&mut self.actors, &mut self.pairs, &mut next, &mut self.ticks),
                        None => listing = false,
                    }
                    continue;
                }
                r = rx.recv() => match r {
                    Some(r) => requests.push(r),
                    None => break,
                },
                _ = stop.changed(), if !stopping => {
                    // Refuse new submissions; those already queued still go in.
                    stopping = true;
                    rx.close();
                    continue;
                }
                due = self.ticks.next_due(), if !stopping => {
                    requests.extend(due.into_iter().map(JournalRequest::advance_time));
                    if requests.is_empty() {
                        continue;
                    }
                }
            }
            while requests.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(r) => requests.push(r),
                    Err(_) => break,
                }
            }
            let now = Instant::now();
            for r in &requests {
                self.ticks.saw(&r.cmd, now);
            }
            self.assign(&mut requests, &mut next, &mut group);
            if group.assigned.is_empty() {
                continue;
            }
            if !self.commit(&mut group, &mut next) {
                continue;
            }
            self.hand_over(&mut group).await;
            group_commits += 1;
            if group_commits.is_multiple_of(TRIM_EVERY) {
                let pairs = &self.pairs;
                self.journal.trim(
                    |pair| pairs.get(&pair).map_or(0, |s| s.snapshot_position()),
                    u64::MAX,
                );
            }
        }
    }

    /// Gives each request of a pair that takes commands the next position
    /// and encodes it into its pair's run; refuses the others.
    fn assign(
        &self,
        requests: &mut Vec<JournalRequest>,
        next: &mut HashMap<Symbol, u64>,
        group: &mut Group,
    ) {
        for run in &mut group.runs {
            run.count = 0;
            run.body.clear();
        }
        for r in requests.drain(..) {
            let (Some(pos), Some(status)) =
                (next.get_mut(&r.cmd.pair), self.pairs.get(&r.cmd.pair))
            else {
                let _ = r.reply.send(Err(SubmitError::UnknownPair));
                continue;
            };
            if status.is_halted() {
                let _ = r.reply.send(Err(SubmitError::Halted));
                continue;
            }
            let position = *pos + 1;
            // One run per pair per batch: its positions are contiguous.
            let i = match group.runs.iter().position(|run| run.pair == r.cmd.pair) {
                Some(i) => i,
                None => {
                    group.runs.push(Run {
                        pair: r.cmd.pair,
                        first_position: position,
                        count: 0,
                        body: Vec::new(),
                    });
                    group.runs.len() - 1
                }
            };
            let run = &mut group.runs[i];
            if run.count == 0 {
                run.first_position = position;
            }
            if let Err(e) = proto::encode_into(&r.cmd, &mut run.body) {
                let _ = r.reply.send(Err(SubmitError::Store(e.to_string())));
                continue;
            }
            run.count += 1;
            *pos = position;
            group.assigned.push((position, r));
        }
    }

    /// Writes the group's runs; on failure refuses every request of the
    /// group (nothing of it was written) and returns false.
    fn commit(&mut self, group: &mut Group, next: &mut HashMap<Symbol, u64>) -> bool {
        self.metrics.batches.with_label_values(&["journal"]).inc();
        // A write of a few KiB into the page cache: done here, on this
        // task, rather than paying two thread switches to hand it off. With
        // fsync it waits for the device, so other tasks move off this
        // worker.
        let appended = if self.journal.syncs() {
            pipeline::off_worker(|| self.journal.append(None, &group.runs))
        } else {
            self.journal.append(None, &group.runs)
        };
        let Err(e) = appended else { return true };
        error!(error = %e, "journal write failed; the batch is refused");
        // Nothing of the batch was written: hand its positions out again.
        for (pair, pos) in next.iter_mut() {
            if let Some(status) = self.pairs.get(pair) {
                *pos = status.logged_position();
            }
        }
        for (_, r) in group.assigned.drain(..) {
            let _ = r.reply.send(Err(SubmitError::Store(e.to_string())));
        }
        false
    }

    /// Answers each journaled request and hands its command to the actor.
    async fn hand_over(&self, group: &mut Group) {
        for (position, r) in group.assigned.drain(..) {
            let pair = r.cmd.pair;
            let outcome = r.want_outcome.then(|| match self.waiters.lock() {
                Ok(mut w) => w.register(pair, position),
                Err(_) => oneshot::channel().1,
            });
            if let Some(status) = self.pairs.get(&pair) {
                status.set_logged(position);
            }
            if let Some(actor) = self.actors.get(&pair)
                && actor.send((position, r.cmd)).await.is_err()
            {
                // The actor halted after this command was journaled; a
                // restart replays it.
                warn!(%pair, position, "journaled a command for a halted pair");
            }
            let _ = r.reply.send(Ok(Submitted { position, outcome }));
        }
    }
}
