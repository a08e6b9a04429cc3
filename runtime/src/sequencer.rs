//! The journal writer with the risk stage on: the sequencer of every pair's
//! commands and the single writer of the accounts shard, whose only input
//! is its own stream in the same journal.
//!
//! Each turn gathers what arrived: the actors' outputs (their events are
//! settled) and requests (orders and amends are checked and locked, cancels
//! pass, movements and audits are applied), in arrival order. One group
//! commit then journals the risk run and the pairs' runs with one `write`.
//! Only after it, in this order: the balances it changed are read from the
//! shard and handed to the dispatcher, the commands go to their actors and
//! their requests are acknowledged, and the answers to its movements and
//! audits and the records whose settlement it journaled go to the
//! dispatcher too, behind those balances, with each pair's snapshots behind
//! that pair's earlier records. The dispatcher takes them in that order:
//! `Observer::on_account` for the balances, then answers, records (observer,
//! waiting requests, persister) and snapshots. So balances are published
//! before any RESULT answer, record, movement or audit answer that reflects
//! them, while the observer's work stays off this task's turn; an ACK
//! (`Submitted`) is the writer's own answer, after the commit, and may reach
//! its caller before the dispatcher has published the hold it took. A stored
//! pair snapshot at seq `E` implies the journal holds the settlement of
//! every event up to `E`, and recovery never needs an event older than a
//! pair's snapshot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use commandlog::{
    AuditReport, Movement, MovementOutcome, PairStatus, SubmitError, Submitted, Waiters,
};
use pipeline::{Output, PipelineMetrics, Ticks};
use proto::{Command, Symbol};
use store::{RiskSnapshotRow, Store};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, warn};

use crate::dispatch::Settled;
use crate::journal::{Journal, Run};
use crate::listing::NewPair;
use crate::writer::JournalRequest;
use pipeline::RiskStage;

/// Group commits between looks for journal segments the snapshots cover.
const TRIM_EVERY: u64 = 1_024;

/// Actor outputs taken per turn (a turn's settlements are one risk run).
const OUTPUT_BATCH: usize = 4_096;

/// What reaches the writer with the risk stage on.
pub(crate) enum Request {
    /// A command for a pair.
    Submit(JournalRequest),
    /// An operator's deposit or withdrawal.
    Move(
        Movement,
        oneshot::Sender<Result<MovementOutcome, SubmitError>>,
    ),
    /// An audit of the live shard.
    Audit(oneshot::Sender<AuditReport>),
}

/// The writer's tasks besides the journal: where its outputs go.
pub(crate) struct Sequencer {
    pub(crate) journal: Journal,
    pub(crate) actors: HashMap<Symbol, mpsc::Sender<(u64, Command)>>,
    pub(crate) pairs: HashMap<Symbol, Arc<PairStatus>>,
    /// Pairs listed while running.
    pub(crate) listings: mpsc::Receiver<NewPair>,
    pub(crate) waiters: Arc<Mutex<Waiters>>,
    pub(crate) max_batch: usize,
    pub(crate) metrics: PipelineMetrics,
    pub(crate) risk: RiskStage,
    pub(crate) outputs: mpsc::Receiver<Output>,
    /// The dispatcher: balances, then answers, RESULT waiters, the
    /// persister.
    pub(crate) settled: mpsc::Sender<Settled>,
    pub(crate) snapshots: mpsc::Sender<RiskSnapshotRow>,
    /// The position of the latest stored risk snapshot.
    pub(crate) risk_stored: Arc<AtomicU64>,
    /// When idle pairs get an `AdvanceTime` (it passes the risk stage
    /// unchecked: it holds nothing).
    pub(crate) ticks: Ticks,
}

/// The loop's buffers and flags, reused from turn to turn.
#[derive(Default)]
struct Turn {
    requests: Vec<Request>,
    /// Actor outputs received, not yet settled.
    arrived: Vec<Output>,
    /// Outputs settled in this turn's group, handed on after its commit.
    pending: Vec<Output>,
    runs: Vec<Run>,
    assigned: Vec<(u64, JournalRequest)>,
    moved: Vec<(
        oneshot::Sender<Result<MovementOutcome, SubmitError>>,
        MovementOutcome,
    )>,
    audits: Vec<oneshot::Sender<AuditReport>>,
    next: HashMap<Symbol, u64>,
    open: bool,
    /// The listing channel is open.
    listing: bool,
    stopping: bool,
    actors_done: bool,
    /// A journal write failed: the shard holds inputs the log does not.
    broken: bool,
    commits: u64,
}

impl Sequencer {
    /// Runs until `stop` turns true, every queued request is in, every
    /// actor has finished and every output was settled and handed on; then
    /// takes the shard's last snapshot.
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Request>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut t = Turn {
            next: self
                .pairs
                .iter()
                .map(|(s, p)| (*s, p.logged_position()))
                .collect(),
            open: true,
            listing: true,
            ..Turn::default()
        };
        while self.wait(&mut t, &mut rx, &mut stop).await {
            self.gather(&mut t, &mut rx);
            self.risk.start_group();
            self.settle_arrived(&mut t);
            self.assign(&mut t);
            if self.commit(&mut t) {
                self.after_commit(&mut t).await;
            }
        }
        if !t.broken && self.risk.moved_since_snapshot() {
            let _ = self.snapshots.send(self.risk.snapshot()).await;
        }
    }

    /// Waits until there is something to do; false once nothing more can come.
    async fn wait(
        &mut self,
        t: &mut Turn,
        rx: &mut mpsc::Receiver<Request>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        loop {
            // The select below prefers outputs and requests, and a busy
            // turn never reaches it: idle pairs' time is checked here too.
            if t.open && !t.stopping {
                let due = self.ticks.due_now(Instant::now());
                let time = due.into_iter().map(JournalRequest::advance_time);
                t.requests.extend(time.map(Request::Submit));
            }
            if !t.arrived.is_empty() || !t.requests.is_empty() {
                return true;
            }
            if !t.open && t.actors_done {
                return false;
            }
            tokio::select! {
                biased;
                n = self.outputs.recv_many(&mut t.arrived, OUTPUT_BATCH), if !t.actors_done => {
                    t.actors_done = n == 0;
                }
                r = rx.recv(), if t.open => match r {
                    Some(r) => t.requests.push(r),
                    None => {
                        // Every request is in: the actors finish their
                        // queues, snapshot, and drop their outputs.
                        t.open = false;
                        self.actors.clear();
                    }
                },
                l = self.listings.recv(), if t.listing => match l {
                    Some(l) => {
                        if let Some(l) = l.admit(&mut self.risk) {
                            l.install(&mut self.actors, &mut self.pairs, &mut t.next, &mut self.ticks);
                        }
                    }
                    None => t.listing = false,
                },
                _ = stop.changed(), if t.open && !t.stopping => {
                    // Refuse new requests; those already queued still go in.
                    t.stopping = true;
                    rx.close();
                }
                due = self.ticks.next_due(), if t.open && !t.stopping => {
                    let time = due.into_iter().map(JournalRequest::advance_time);
                    t.requests.extend(time.map(Request::Submit));
                }
            }
        }
    }

    /// Takes what else is there without waiting.
    fn gather(&mut self, t: &mut Turn, rx: &mut mpsc::Receiver<Request>) {
        while t.open && t.requests.len() < self.max_batch {
            match rx.try_recv() {
                Ok(r) => t.requests.push(r),
                Err(_) => break,
            }
        }
        while !t.actors_done && t.arrived.len() < OUTPUT_BATCH {
            match self.outputs.try_recv() {
                Ok(o) => t.arrived.push(o),
                Err(_) => break,
            }
        }
    }

    /// Settles the events of every record that arrived, in order.
    fn settle_arrived(&mut self, t: &mut Turn) {
        if t.broken {
            t.arrived.clear();
            return;
        }
        for o in t.arrived.drain(..) {
            if let Output::Record(r) = &o {
                self.risk.settle(r);
            }
            t.pending.push(o);
        }
    }

    /// Checks each request in order; the accepted ones join the group.
    fn assign(&mut self, t: &mut Turn) {
        for run in &mut t.runs {
            run.count = 0;
            run.body.clear();
        }
        let broken = || SubmitError::Store("the journal failed; restart to recover".into());
        // Taken out so `submit` can borrow the turn; put back empty, with
        // its capacity.
        let mut requests = std::mem::take(&mut t.requests);
        let now = Instant::now();
        for r in requests.drain(..) {
            if let Request::Submit(r) = &r {
                self.ticks.saw(&r.cmd, now);
            }
            match r {
                Request::Submit(r) if t.broken => {
                    let _ = r.reply.send(Err(broken()));
                }
                Request::Submit(r) => self.submit(t, r),
                Request::Move(_, reply) if t.broken => {
                    let _ = reply.send(Err(broken()));
                }
                Request::Move(m, reply) => match self.risk.move_funds(&m) {
                    outcome @ MovementOutcome::Applied(_) => t.moved.push((reply, outcome)),
                    outcome => {
                        let _ = reply.send(Ok(outcome));
                    }
                },
                Request::Audit(reply) => t.audits.push(reply),
            }
        }
        t.requests = requests;
    }

    /// Checks one command and, if the shard accepts it, encodes it into its
    /// pair's run at the pair's next position.
    fn submit(&mut self, t: &mut Turn, mut r: JournalRequest) {
        let pair = r.cmd.pair;
        let (Some(pos), Some(status)) = (t.next.get_mut(&pair), self.pairs.get(&pair)) else {
            let _ = r.reply.send(Err(SubmitError::UnknownPair));
            return;
        };
        if status.is_halted() {
            let _ = r.reply.send(Err(SubmitError::Halted));
            return;
        }
        if let Err(code) = self.risk.prepare(&mut r.cmd) {
            let _ = r.reply.send(Err(SubmitError::Refused(code)));
            return;
        }
        let position = *pos + 1;
        let i = match t.runs.iter().position(|run| run.pair == pair) {
            Some(i) => i,
            None => {
                t.runs.push(Run {
                    pair,
                    first_position: position,
                    count: 0,
                    body: Vec::new(),
                });
                t.runs.len() - 1
            }
        };
        let run = &mut t.runs[i];
        if run.count == 0 {
            run.first_position = position;
        }
        let before = run.body.len();
        if let Err(e) = proto::encode_into(&r.cmd, &mut run.body) {
            let _ = r.reply.send(Err(SubmitError::Store(e.to_string())));
            return;
        }
        if let Err(code) = self.risk.admit(&r.cmd) {
            run.body.truncate(before);
            let _ = r.reply.send(Err(SubmitError::Refused(code)));
            return;
        }
        run.count += 1;
        *pos = position;
        t.assigned.push((position, r));
    }

    /// Writes the group (risk run first) with one write. On failure the
    /// shard is ahead of its log, so the writer stops taking input: every
    /// pair is halted and a restart rebuilds the shard from the log.
    fn commit(&mut self, t: &mut Turn) -> bool {
        let nothing = self.risk.run.count == 0 && t.assigned.is_empty();
        if nothing || t.broken {
            return !t.broken;
        }
        self.metrics.batches.with_label_values(&["journal"]).inc();
        // With fsync the write waits for the device: other tasks move off.
        let appended = if self.journal.syncs() {
            pipeline::off_worker(|| self.journal.append(Some(&self.risk.run), &t.runs))
        } else {
            self.journal.append(Some(&self.risk.run), &t.runs)
        };
        let Err(e) = appended else { return true };
        error!(error = %e, "journal write failed with the risk stage on; every pair is halted");
        t.broken = true;
        let reason = format!("the journal failed ({e}); restart to recover");
        for status in self.pairs.values() {
            status.halt(reason.clone());
            self.metrics.observe_halt(status);
        }
        for (_, r) in t.assigned.drain(..) {
            let _ = r.reply.send(Err(SubmitError::Store(e.to_string())));
        }
        for (reply, _) in t.moved.drain(..) {
            let _ = reply.send(Err(SubmitError::Store(e.to_string())));
        }
        t.pending.clear();
        false
    }

    /// Hands the group's balances to the dispatcher, then its commands to
    /// their actors, then the rest of its output to the dispatcher.
    async fn after_commit(&mut self, t: &mut Turn) {
        let mut updates = Vec::new();
        self.risk.take_updates(&mut updates);
        if !updates.is_empty() {
            self.dispatch(Settled::Accounts(updates)).await;
        }
        self.hand_over(t).await;
        self.forward(t).await;
        self.risk.flush_metrics();
        if self.snapshots.capacity() > 0
            && let Some(row) = self.risk.due_snapshot()
        {
            let _ = self.snapshots.try_send(row);
        }
        t.commits += 1;
        if t.commits.is_multiple_of(TRIM_EVERY) {
            let pairs = &self.pairs;
            let risk = self.risk_stored.load(Ordering::Acquire);
            self.journal.trim(
                |pair| pairs.get(&pair).map_or(0, |s| s.snapshot_position()),
                risk,
            );
        }
    }

    /// Answers each journaled request and hands its command to its actor.
    /// While an actor's queue is full, the actors' outputs keep being read
    /// (into the next turn), so an actor waiting for room in its output
    /// queue never waits for this writer: what gathers meanwhile is bounded
    /// by the actors' queues (each queued command gives one record).
    async fn hand_over(&mut self, t: &mut Turn) {
        for (position, r) in t.assigned.drain(..) {
            let pair = r.cmd.pair;
            let outcome = r.want_outcome.then(|| match self.waiters.lock() {
                Ok(mut w) => w.register(pair, position),
                Err(_) => oneshot::channel().1,
            });
            if let Some(status) = self.pairs.get(&pair) {
                status.set_logged(position);
            }
            if let Some(actor) = self.actors.get(&pair) {
                let sent = send_draining(
                    actor,
                    (position, r.cmd),
                    &mut self.outputs,
                    &mut t.arrived,
                    &mut t.actors_done,
                )
                .await;
                if !sent {
                    warn!(%pair, position, "journaled a command for a halted pair");
                }
            }
            let _ = r.reply.send(Ok(Submitted { position, outcome }));
        }
    }

    /// Hands the group's answers to movements and audits and its settled
    /// outputs (in arrival order) to the dispatcher: behind the balances of
    /// their group, so none of them is ahead of those.
    async fn forward(&mut self, t: &mut Turn) {
        for (reply, outcome) in std::mem::take(&mut t.moved) {
            self.dispatch(Settled::Moved(reply, outcome)).await;
        }
        for reply in std::mem::take(&mut t.audits) {
            let report = self.risk.audit();
            self.dispatch(Settled::Audit(reply, report)).await;
        }
        let mut pending = std::mem::take(&mut t.pending);
        for o in pending.drain(..) {
            self.dispatch(Settled::Output(o)).await;
        }
        t.pending = pending;
    }

    /// Sends `item` to the dispatcher, waiting for room in its queue.
    async fn dispatch(&self, item: Settled) {
        if self.settled.send(item).await.is_err() {
            error!("the dispatcher stopped; events are no longer stored");
        }
    }
}

/// Sends `item` to `actor`, reading `outputs` into `arrived` while its queue
/// is full. False when the actor is gone.
async fn send_draining(
    actor: &mpsc::Sender<(u64, Command)>,
    item: (u64, Command),
    outputs: &mut mpsc::Receiver<Output>,
    arrived: &mut Vec<Output>,
    actors_done: &mut bool,
) -> bool {
    let item = match actor.try_send(item) {
        Ok(()) => return true,
        Err(mpsc::error::TrySendError::Closed(_)) => return false,
        Err(mpsc::error::TrySendError::Full(item)) => item,
    };
    loop {
        tokio::select! {
            biased;
            permit = actor.reserve() => {
                return match permit {
                    Ok(p) => {
                        p.send(item);
                        true
                    }
                    Err(_) => false,
                };
            }
            n = outputs.recv_many(arrived, OUTPUT_BATCH), if !*actors_done => {
                *actors_done = n == 0;
            }
        }
    }
}

/// Stores the risk snapshots the writer sends, retrying failures that may
/// pass; records each stored position (journal segments before it may go).
pub(crate) async fn store_risk_snapshots(
    store: Store,
    mut rx: mpsc::Receiver<RiskSnapshotRow>,
    stored: Arc<AtomicU64>,
) {
    while let Some(row) = rx.recv().await {
        loop {
            match store.save_risk_snapshot(&row).await {
                Ok(()) => {
                    stored.fetch_max(row.position, Ordering::AcqRel);
                    break;
                }
                Err(e) if e.is_permanent() => {
                    error!(error = %e, position = row.position, "a risk snapshot cannot be stored");
                    break;
                }
                Err(e) => {
                    error!(error = %e, "storing a risk snapshot failed; retrying");
                    tokio::time::sleep(pipeline::RETRY_DELAY).await;
                }
            }
        }
    }
}
