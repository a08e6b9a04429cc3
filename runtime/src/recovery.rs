//! Recovery, in stages: refuse a data directory this version cannot read,
//! restore each book from its snapshot, then replay the journal after it.
//! With the risk stage on: restore the shard from its snapshot and replay
//! the risk stream after it, replay the pairs, settle every replayed event
//! the shard has not settled yet (journaled before anything new), and only
//! then snapshot the replayed pairs.

use std::collections::HashMap;

use accounts::{Input, Output, Shard};
use engine::OrderBook;
use pipeline::restore_book;
use proto::{Command, PairConfig, Seq, Symbol};
use store::{Batch, Store};
use tracing::{info, warn};

use crate::error::StartError;
use crate::journal::RiskTail;
use pipeline::RiskStage;

/// Replayed commands whose events are stored per transaction.
const REPLAY_BATCH: usize = 4_096;

/// A pair that runs: its book, where its snapshot and its log are, and the
/// last event seq the store holds.
pub(crate) struct PairBook {
    pub(crate) config: PairConfig,
    pub(crate) book: OrderBook,
    pub(crate) snapshot_position: u64,
    pub(crate) position: u64,
    pub(crate) stored_seq: Seq,
}

/// A pair the store records as halted: restored, not replayed (its journal
/// is kept for when it resumes), and started halted.
pub(crate) struct HeldPair {
    pub(crate) config: PairConfig,
    pub(crate) book: OrderBook,
    pub(crate) position: u64,
    pub(crate) stored_seq: Seq,
    pub(crate) reason: String,
}

/// Every configured pair, restored from its snapshot.
pub(crate) struct Restored {
    pub(crate) running: Vec<PairBook>,
    pub(crate) held: Vec<HeldPair>,
}

impl Restored {
    /// The position each pair's journal is read after.
    pub(crate) fn positions(&self) -> HashMap<Symbol, u64> {
        let running = self.running.iter().map(|p| (p.config.symbol, p.position));
        let held = self.held.iter().map(|p| (p.config.symbol, p.position));
        running.chain(held).collect()
    }
}

/// Refuses a store whose legacy journal table still holds commands: this
/// version replays only the file journal, so those commands would be lost.
pub(crate) async fn refuse_legacy_journal(store: &Store) -> Result<(), StartError> {
    if store.has_legacy_journal().await? {
        return Err(StartError::LegacyJournal);
    }
    Ok(())
}

/// Restores every pair's book from its latest snapshot.
pub(crate) async fn restore(
    store: &Store,
    pairs: &[PairConfig],
    capacity: usize,
) -> Result<Restored, StartError> {
    let stored = store.last_seqs().await?;
    let mut halts: HashMap<Symbol, String> = store
        .halted_pairs()
        .await?
        .into_iter()
        .map(|h| (h.pair, h.reason))
        .collect();
    let mut restored = Restored {
        running: Vec::with_capacity(pairs.len()),
        held: Vec::new(),
    };
    for config in pairs {
        let sym = config.symbol;
        let stored_seq = stored.get(&sym).copied().unwrap_or_default();
        let pipeline::Restored { book, position, .. } =
            restore_book(store, config, capacity).await?;
        if let Some(reason) = halts.remove(&sym) {
            warn!(pair = %sym, %reason, "the pair is halted; `exchange pairs resume` restarts it");
            restored.held.push(HeldPair {
                config: *config,
                book,
                position,
                stored_seq,
                reason,
            });
            continue;
        }
        restored.running.push(PairBook {
            config: *config,
            book,
            snapshot_position: position,
            position,
            stored_seq,
        });
    }
    Ok(restored)
}

/// Applies the journal's commands after each running pair's snapshot,
/// storing the events the persister had not stored before the stop; with
/// `risk`, settling the events its shard has not settled (into its run).
pub(crate) async fn replay_tail(
    store: &Store,
    running: &mut [PairBook],
    mut tail: HashMap<Symbol, Vec<(u64, Command)>>,
    mut risk: Option<&mut RiskStage>,
) -> Result<(), StartError> {
    for p in running.iter_mut() {
        let sym = p.config.symbol;
        let cmds = tail.remove(&sym).unwrap_or_default();
        if let Some(risk) = risk.as_deref_mut() {
            let settled = risk.shard.last_seq(sym).unwrap_or_default();
            if settled < p.book.last_seq() {
                warn!(
                    pair = %sym,
                    settled = settled.0,
                    snapshot = p.book.last_seq().0,
                    "the pair's snapshot covers events the risk stage never settled (was it off?)"
                );
            }
        }
        replay(store, p, cmds, risk.as_deref_mut()).await?;
        if p.stored_seq > p.book.last_seq() {
            return Err(StartError::Recovery(format!(
                "pair {sym}: the store holds events up to seq {} but the journal rebuilds only {}",
                p.stored_seq,
                p.book.last_seq()
            )));
        }
    }
    Ok(())
}

/// Snapshots every running pair the replay moved. With the risk stage on,
/// only once the replay's settlements are journaled: a stored snapshot at
/// seq `E` must imply the risk stream holds every settlement up to `E`.
pub(crate) async fn snapshot_replayed(
    store: &Store,
    running: &[PairBook],
) -> Result<(), StartError> {
    for p in running {
        if p.position > p.snapshot_position {
            let sym = p.config.symbol;
            info!(pair = %sym, from = p.snapshot_position, to = p.position, "replayed the journal");
            let mut batch = Batch::default();
            batch.add_snapshot(pipeline::snapshot_row(&p.book, p.position, 0));
            store.write_batch(&batch).await?;
        }
    }
    Ok(())
}

/// The shard from its latest snapshot (checked against its state hash and
/// the configured pairs), or a new one; and the risk-stream position it
/// covers.
pub(crate) async fn restore_shard(
    store: &Store,
    pairs: &[PairConfig],
) -> Result<(Shard, u64), StartError> {
    let Some(row) = store.latest_risk_snapshot(0).await? else {
        return Ok((Shard::new(pairs).map_err(StartError::RiskConfig)?, 0));
    };
    let bad = |reason: String| StartError::RiskSnapshot {
        position: row.position,
        reason,
    };
    let mut shard = Shard::restore(&row.bytes).map_err(|e| bad(e.to_string()))?;
    if shard.state_hash() != row.state_hash {
        return Err(bad("it does not match its state hash".into()));
    }
    // The shard's pair set is part of its state: one it does not know
    // would have every order refused. A pair listed after the snapshot is
    // listed again here, as it was then: before any input that names it.
    let fresh = Shard::new(pairs).map_err(StartError::RiskConfig)?;
    for p in pairs {
        if shard.pair_assets(p.symbol).is_none() {
            shard
                .add_pair(p)
                .map_err(|e| bad(format!("pair {} cannot be listed on it: {e}", p.symbol)))?;
        }
    }
    if shard.assets() != fresh.assets() {
        return Err(bad("its assets differ from the configured pairs'".into()));
    }
    Ok((shard, row.position))
}

/// Applies the risk stream after `position` to `shard`; returns the last
/// position applied. The stream holds only inputs the shard accepted, so
/// one it refuses now, or a gap, is corruption.
pub(crate) fn replay_risk(
    shard: &mut Shard,
    mut position: u64,
    tail: RiskTail,
) -> Result<u64, StartError> {
    let mut out = Vec::new();
    let count = tail.len();
    for (at, input) in tail {
        if at != position + 1 {
            return Err(StartError::RiskReplay {
                position: at,
                reason: format!("gap: position {at} after {position}"),
            });
        }
        out.clear();
        shard.apply(&input, &mut out);
        if let Some(Output::Rejected(code)) = out.first() {
            return Err(StartError::RiskReplay {
                position: at,
                reason: format!("{} refused with {code:?} on replay", kind(&input)),
            });
        }
        position = at;
    }
    if count > 0 {
        info!(inputs = count, to = position, "replayed the risk stream");
    }
    Ok(position)
}

fn kind(input: &Input) -> &'static str {
    match input {
        Input::Deposit { .. } => "a deposit",
        Input::Withdraw { .. } => "a withdrawal",
        Input::Place(_) => "an order's check",
        Input::PlaceList(_) => "an order list's check",
        Input::Amend(_) => "an amend's check",
        Input::Settle(_) => "a settlement",
    }
}

/// Applies `cmds` (the commands after `p.position`, in order) to `p.book`.
async fn replay(
    store: &Store,
    p: &mut PairBook,
    cmds: Vec<(u64, Command)>,
    mut risk: Option<&mut RiskStage>,
) -> Result<(), StartError> {
    let qty_scale = p.config.qty_scale;
    let mut events = Vec::new();
    let mut batch = Batch::default();
    let count = cmds.len();
    for (i, (position, cmd)) in cmds.into_iter().enumerate() {
        if position != p.position + 1 {
            return Err(StartError::Recovery(format!(
                "pair {}: journal gap: position {position} after {}",
                p.config.symbol, p.position
            )));
        }
        events.clear();
        p.book.apply(&cmd, &mut events);
        if let Some(risk) = risk.as_deref_mut() {
            // Events it settled before are duplicates: not journaled again.
            risk.settle_events(&events);
        }
        batch.add_events(qty_scale, &mut p.stored_seq, &events);
        p.position = position;
        if (i + 1) % REPLAY_BATCH == 0 || i + 1 == count {
            store.write_batch(&batch).await?;
            batch = Batch::default();
        }
    }
    Ok(())
}
