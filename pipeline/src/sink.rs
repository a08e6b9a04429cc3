//! Where the actors' output goes: one interface, two implementations (the
//! embedded dispatcher and the Kafka emitter), one loop feeding it.

use std::future::Future;
use std::sync::Arc;

use commandlog::EventRecord;
use store::SnapshotRow;
use tokio::sync::mpsc;

use crate::actor::Output;

/// Takes the actors' output in order per pair. Every method may wait (for
/// a bounded queue, a broker, the store): the actors then wait for room in
/// their output queue, which is how a slow sink pushes back.
pub trait EventSink: Send {
    /// One command's events.
    fn record(&mut self, record: Arc<EventRecord>) -> impl Future<Output = ()> + Send;
    /// A snapshot covering every record of its pair before it.
    fn snapshot(&mut self, row: SnapshotRow) -> impl Future<Output = ()> + Send;
    /// Everything that arrived together has been handed over: a sink that
    /// gathers records sends them now.
    fn flush(&mut self) -> impl Future<Output = ()> + Send;
}

/// Hands `input` to `sink`, up to `max_batch` outputs between flushes,
/// until every actor dropped its sender.
pub async fn drain(mut input: mpsc::Receiver<Output>, mut sink: impl EventSink, max_batch: usize) {
    let mut items = Vec::with_capacity(max_batch);
    while input.recv_many(&mut items, max_batch).await > 0 {
        for item in items.drain(..) {
            match item {
                Output::Record(r) => sink.record(r).await,
                Output::Snapshot(s) => sink.snapshot(s).await,
            }
        }
        sink.flush().await;
    }
}
