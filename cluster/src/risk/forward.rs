//! Forwarding without Kafka transactions: the risk role's records in the
//! pairs' command logs name the risk inputs they hold, so a restarted role
//! finds what its predecessor forwarded and forwards none of it again.
//!
//! A forwarded record holds the commands of one shard for one pair, in risk
//! offset order, and carries the header [`RISK_HEADER`]: the shard, then
//! each command's risk offset in the record's order (`u16`, then `i64`s,
//! little-endian). Engines ignore it (the body is an ordinary run of
//! commands). A shard's records to one pair are sent one at a time, each
//! awaited before the next run's, so if the log holds risk offset `r` of
//! shard `s` for pair `p`, it holds every earlier forward of `s` to `p`: a
//! scan of the pair's partition from the offsets the snapshot recorded
//! finds exactly the forwards the replay must not repeat.

use std::collections::BTreeMap;

use proto::{Command, Symbol};

use crate::commands::{RUN_MAX, position};
use crate::error::ClusterError;
use crate::risk::RequestId;

/// The header of a forwarded record.
pub const RISK_HEADER: &str = "risk";

/// The header's value for `offsets` of `shard`.
pub fn encode_tag(shard: u16, offsets: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + 8 * offsets.len());
    out.extend_from_slice(&shard.to_le_bytes());
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    out
}

/// The shard and risk offsets a header names; `None` when it is malformed.
pub fn decode_tag(bytes: &[u8]) -> Option<(u16, Vec<i64>)> {
    let (shard, rest) = bytes.split_first_chunk::<2>()?;
    if !rest.len().is_multiple_of(8) {
        return None;
    }
    let offsets = rest
        .chunks_exact(8)
        .map(|c| <[u8; 8]>::try_from(c).map(i64::from_le_bytes))
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Some((u16::from_le_bytes(*shard), offsets))
}

/// The forwards of `shard` a record of `pair`'s log at `record_offset`
/// holds, each as `(risk offset, (pair, position))`; nothing for another
/// shard's record or one without the header.
pub fn found_in(
    shard: u16,
    pair: Symbol,
    record_offset: i64,
    tag: Option<&[u8]>,
) -> Vec<(i64, (Symbol, u64))> {
    match tag.and_then(decode_tag) {
        Some((s, offsets)) if s == shard => offsets
            .into_iter()
            .enumerate()
            .map(|(i, r)| (r, (pair, position(record_offset, i))))
            .collect(),
        _ => Vec::new(),
    }
}

/// One record to forward: a shard's commands for one pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The pair whose log it goes to.
    pub pair: Symbol,
    /// The commands' encodings, back to back.
    pub body: Vec<u8>,
    /// Each command's risk offset, in order: the header.
    pub offsets: Vec<i64>,
    /// Who waits for each command's position, in order.
    pub from: Vec<RequestId>,
}

/// The accepted commands of a run of inputs, grouped into records per
/// pair (at most [`RUN_MAX`] commands each), in risk offset order.
#[derive(Debug, Default)]
pub struct Forwards {
    by_pair: BTreeMap<Symbol, Vec<Forward>>,
}

impl Forwards {
    /// Adds the command at risk offset `offset`.
    pub fn push(
        &mut self,
        offset: i64,
        from: RequestId,
        cmd: &Command,
    ) -> Result<(), ClusterError> {
        let records = self.by_pair.entry(cmd.pair).or_default();
        let full = records.last().is_none_or(|r| r.offsets.len() >= RUN_MAX);
        if full {
            records.push(Forward {
                pair: cmd.pair,
                body: Vec::new(),
                offsets: Vec::new(),
                from: Vec::new(),
            });
        }
        let Some(r) = records.last_mut() else {
            return Ok(());
        };
        proto::encode_into(cmd, &mut r.body)
            .map_err(|e| ClusterError::Log(format!("encoding a command: {e}")))?;
        r.offsets.push(offset);
        r.from.push(from);
        Ok(())
    }

    /// Whether nothing is to be forwarded.
    pub fn is_empty(&self) -> bool {
        self.by_pair.is_empty()
    }

    /// Each pair's records, in order: the records of one pair must be sent
    /// one after the other; different pairs' may go at once.
    pub fn take(&mut self) -> Vec<Vec<Forward>> {
        std::mem::take(&mut self.by_pair).into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use proto::{CommandBody, OrderId, OrderRef, Timestamp, UserId};

    use super::*;

    fn cmd(pair: &str, id: u64) -> Command {
        Command {
            pair: Symbol::new(pair).unwrap(),
            user: UserId(1),
            timestamp: Timestamp(id),
            body: CommandBody::Cancel {
                target: OrderRef::Id(OrderId(id)),
            },
        }
    }

    #[test]
    fn tags_round_trip_and_malformed_ones_are_refused() {
        let tag = encode_tag(3, &[7, 9, i64::MAX]);
        assert_eq!(decode_tag(&tag), Some((3, vec![7, 9, i64::MAX])));
        assert_eq!(decode_tag(&tag[..tag.len() - 1]), None);
        assert_eq!(decode_tag(&[1]), None);
        assert_eq!(decode_tag(&encode_tag(0, &[])), Some((0, vec![])));
    }

    #[test]
    fn a_scan_names_its_shards_forwards_with_their_positions() {
        let btc = Symbol::new("BTC-EUR").unwrap();
        let tag = encode_tag(1, &[4, 6]);
        assert_eq!(
            found_in(1, btc, 2, Some(&tag)),
            vec![(4, (btc, position(2, 0))), (6, (btc, position(2, 1)))]
        );
        assert!(found_in(0, btc, 2, Some(&tag)).is_empty());
        assert!(found_in(1, btc, 2, None).is_empty());
    }

    #[test]
    fn forwards_group_by_pair_in_order_and_split_at_the_run_bound() {
        let from = RequestId { gateway: 1, id: 2 };
        let mut f = Forwards::default();
        f.push(1, from, &cmd("BTC-EUR", 1)).unwrap();
        f.push(2, from, &cmd("ETH-EUR", 2)).unwrap();
        f.push(3, from, &cmd("BTC-EUR", 3)).unwrap();
        let taken = f.take();
        assert!(f.is_empty());
        assert_eq!(taken.len(), 2);
        assert_eq!(taken[0][0].offsets, [1, 3]);
        let cmds: Vec<Command> = proto::decode_run(&taken[0][0].body).unwrap();
        assert_eq!(cmds, vec![cmd("BTC-EUR", 1), cmd("BTC-EUR", 3)]);
        for i in 0..=RUN_MAX as i64 {
            f.push(i, from, &cmd("BTC-EUR", 1)).unwrap();
        }
        let taken = f.take();
        assert_eq!(taken[0].len(), 2);
        assert_eq!(taken[0][1].offsets, [RUN_MAX as i64]);
    }
}
