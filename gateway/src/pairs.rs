//! The pairs this gateway serves: their names and rules as listed. Fixed by
//! the config at start and grown by a listing; requests read it under a
//! read lock.

use std::collections::HashMap;

use proto::{PairConfig, Symbol};

/// Every pair, by symbol and by Binance's name for it, in listing order.
#[derive(Debug, Default)]
pub(crate) struct PairTable {
    /// The rules each pair was configured or listed with.
    by_symbol: HashMap<Symbol, PairConfig>,
    /// Each pair by the name Binance's API gives it (`BTCEUR`).
    by_name: HashMap<String, Symbol>,
    /// In the configured order, then the listing order, for `exchangeInfo`.
    list: Vec<PairConfig>,
}

impl PairTable {
    pub(crate) fn new(pairs: &[PairConfig]) -> Self {
        let mut table = PairTable::default();
        for p in pairs {
            table.add(*p);
        }
        table
    }

    /// Adds a listed pair.
    pub(crate) fn add(&mut self, pair: PairConfig) {
        if self.by_symbol.contains_key(&pair.symbol) {
            return;
        }
        self.by_symbol.insert(pair.symbol, pair);
        self.by_name.insert(pair.symbol.joined(), pair.symbol);
        self.list.push(pair);
    }

    /// The rules `pair` was configured or listed with.
    pub(crate) fn listed(&self, pair: Symbol) -> Option<&PairConfig> {
        self.by_symbol.get(&pair)
    }

    /// The pair Binance's API names `name`.
    pub(crate) fn named(&self, name: &str) -> Option<Symbol> {
        self.by_name.get(name).copied()
    }

    /// Whether a pair has `pair`'s name once the dash is dropped.
    pub(crate) fn name_taken(&self, pair: Symbol) -> bool {
        self.by_name.contains_key(&pair.joined())
    }

    /// Every pair, configured then listed.
    pub(crate) fn list(&self) -> &[PairConfig] {
        &self.list
    }
}
