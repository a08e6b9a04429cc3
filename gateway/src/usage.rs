//! Binance's request-weight and order-count limits.
//!
//! - `REQUEST_WEIGHT`, per IP: each request adds its endpoint's weight to
//!   the IP's count for the current minute; windows are fixed and aligned
//!   to the minute, as Binance counts them (a request at 00:01:23.456
//!   counts towards the 00:01:00 minute). Every answer carries
//!   `X-MBX-USED-WEIGHT-1M`. Past the limit the answer is 429, code -1003,
//!   with `Retry-After` (seconds until the minute ends). A client that
//!   keeps sending after [`Usage`]'s tolerance of 429s in one window is
//!   banned: 418, code -1003, the message naming when the ban ends and
//!   `Retry-After` the seconds until then. Bans escalate for repeat
//!   offenders from 2 minutes to 3 days (see [`Usage::ban_secs`]).
//! - `ORDERS`, per account: new orders in the current 10-second window and
//!   UTC day. Every order answer carries `X-MBX-ORDER-COUNT-10S` and
//!   `X-MBX-ORDER-COUNT-1D`; past either limit the order is refused with
//!   429, code -1015, and `Retry-After` (seconds until that window ends).
//!   An order counts when it is admitted, before the risk stage and the
//!   engine see it, so one they reject still counts (Binance's rules say
//!   rejected orders "might or might not" count; counting them is the
//!   deterministic choice, as for cancel-replace's new order that was not
//!   attempted). One refused here (429) adds nothing to either window. An
//!   order's first fill takes one off the current windows' counts
//!   ([`Usage::order_filled`]), down to zero, as Binance's unfilled-order
//!   rules do; cancels and expiries change nothing.
//!
//! Time is passed in, as Unix milliseconds, so windows, bans and their
//! escalation are deterministic. State lives in sharded maps: a request
//! takes one shard's mutex for a counter update and allocates nothing
//! once its IP or account is known. Each map holds at most a configured
//! number of entries: when a shard is full it first drops the entries
//! whose windows are over (and whose ban record has lapsed), at most once
//! a second; a newcomer that still finds no room is answered as if it had
//! no history (counted for this request alone), so a flood of distinct
//! IPs or accounts can neither grow memory nor lock others out.
//!
//! An IPv6 client is counted by its /64 prefix: one subscriber usually
//! holds a whole /64, and counting single addresses would let it escape
//! the limit and fill the map. IPv4-mapped IPv6 addresses count as IPv4.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use proto::UserId;
use serde::Serialize;

use crate::GatewayConfig;
use crate::errors::{ApiError, code};

/// The header with the IP's used weight in the current minute.
pub(crate) const USED_WEIGHT_1M: HeaderName = HeaderName::from_static("x-mbx-used-weight-1m");
/// The header with the account's new orders in the current 10 seconds.
pub(crate) const ORDER_COUNT_10S: HeaderName = HeaderName::from_static("x-mbx-order-count-10s");
/// The header with the account's new orders in the current UTC day.
pub(crate) const ORDER_COUNT_1D: HeaderName = HeaderName::from_static("x-mbx-order-count-1d");

/// Map shards: requests for different IPs or accounts rarely wait on the
/// same mutex.
const SHARDS: usize = 32;

/// A full shard looks for lapsed entries at most this often.
const SWEEP_EVERY_MS: u64 = 1_000;

/// What a rate limit counts, as `exchangeInfo` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum RateLimitType {
    /// Request weight, per IP.
    RequestWeight,
    /// New orders, per account.
    Orders,
}

/// A rate limit's interval unit, as `exchangeInfo` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Interval {
    /// One second.
    Second,
    /// One minute.
    Minute,
    /// One UTC day.
    Day,
}

impl Interval {
    fn millis(self) -> u64 {
        match self {
            Interval::Second => 1_000,
            Interval::Minute => 60_000,
            Interval::Day => 86_400_000,
        }
    }

    /// Binance's `intervalLetter`, as used in the header names.
    #[cfg(test)]
    fn letter(self) -> char {
        match self {
            Interval::Second => 'S',
            Interval::Minute => 'M',
            Interval::Day => 'D',
        }
    }

    fn name(self) -> &'static str {
        match self {
            Interval::Second => "SECOND",
            Interval::Minute => "MINUTE",
            Interval::Day => "DAY",
        }
    }
}

/// One entry of `exchangeInfo`'s `rateLimits`, shaped as Binance's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RateLimit {
    /// What is counted.
    pub rate_limit_type: RateLimitType,
    /// The window's unit.
    pub interval: Interval,
    /// The window's length in units.
    pub interval_num: u32,
    /// The most allowed in one window.
    pub limit: u32,
}

impl RateLimit {
    fn window_ms(&self) -> u64 {
        self.interval.millis() * u64::from(self.interval_num)
    }

    /// The window `now_ms` falls in, counted from the Unix epoch, so
    /// windows align to the minute, the 10 seconds, the UTC day.
    fn window_of(&self, now_ms: u64) -> u64 {
        now_ms / self.window_ms()
    }

    fn window_end_ms(&self, window: u64) -> u64 {
        window.saturating_add(1).saturating_mul(self.window_ms())
    }

    /// `10 SECOND`, as Binance's messages write the window.
    fn per(&self) -> String {
        format!("{} {}", self.interval_num, self.interval.name())
    }

    /// The header suffix Binance writes: `(intervalNum)(intervalLetter)`.
    #[cfg(test)]
    fn header_suffix(&self) -> String {
        format!("{}{}", self.interval_num, self.interval.letter())
    }
}

/// The limits `config` sets, in the order and shape of Binance's
/// `exchangeInfo` `rateLimits`.
pub(crate) fn rate_limits(config: &GatewayConfig) -> [RateLimit; 3] {
    [
        request_weight(config.request_weight_per_minute),
        orders_10s(config.orders_per_10s),
        orders_day(config.orders_per_day),
    ]
}

fn request_weight(limit: u32) -> RateLimit {
    RateLimit {
        rate_limit_type: RateLimitType::RequestWeight,
        interval: Interval::Minute,
        interval_num: 1,
        limit,
    }
}

fn orders_10s(limit: u32) -> RateLimit {
    RateLimit {
        rate_limit_type: RateLimitType::Orders,
        interval: Interval::Second,
        interval_num: 10,
        limit,
    }
}

fn orders_day(limit: u32) -> RateLimit {
    RateLimit {
        rate_limit_type: RateLimitType::Orders,
        interval: Interval::Day,
        interval_num: 1,
        limit,
    }
}

/// The weight an IP has used in the current minute, this request included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UsedWeight {
    /// Weight used.
    pub used: u32,
}

impl UsedWeight {
    /// `X-MBX-USED-WEIGHT-1M`.
    pub(crate) fn headers(&self) -> [(HeaderName, HeaderValue); 1] {
        [(USED_WEIGHT_1M, HeaderValue::from(self.used))]
    }
}

/// An account's new orders in the current windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct OrderCounts {
    /// In the current 10 seconds.
    pub ten_seconds: u32,
    /// In the current UTC day.
    pub day: u32,
}

impl OrderCounts {
    /// `X-MBX-ORDER-COUNT-10S` and `X-MBX-ORDER-COUNT-1D`.
    pub(crate) fn headers(&self) -> [(HeaderName, HeaderValue); 2] {
        [
            (ORDER_COUNT_10S, HeaderValue::from(self.ten_seconds)),
            (ORDER_COUNT_1D, HeaderValue::from(self.day)),
        ]
    }
}

/// A request refused by a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LimitError {
    /// 429 -1003: the IP's weight for this minute is spent.
    RequestWeight {
        /// The IP's weight this minute, the refused request's included.
        used: UsedWeight,
        /// The limit per minute.
        limit: u32,
        /// Seconds until the minute ends.
        retry_after_secs: u32,
    },
    /// 418 -1003: the IP is banned.
    Banned {
        /// The IP's weight this minute (requests during a ban add none).
        used: UsedWeight,
        /// When the ban ends, in Unix milliseconds.
        until_ms: u64,
        /// Seconds until then.
        retry_after_secs: u32,
    },
    /// 429 -1015: the account placed too many new orders.
    TooManyOrders {
        /// The account's counts, which the refused order did not change.
        counts: OrderCounts,
        /// The limit that was reached.
        limit: RateLimit,
        /// Seconds until that limit's window ends.
        retry_after_secs: u32,
    },
}

impl LimitError {
    /// The usage headers the refusal carries: the used weight, or the
    /// order counts.
    pub(crate) fn headers(&self) -> HeaderMap {
        match self {
            LimitError::RequestWeight { used, .. } | LimitError::Banned { used, .. } => {
                used.headers().into_iter().collect()
            }
            LimitError::TooManyOrders { counts, .. } => counts.headers().into_iter().collect(),
        }
    }
}

impl From<LimitError> for ApiError {
    fn from(e: LimitError) -> Self {
        match e {
            LimitError::RequestWeight {
                limit,
                retry_after_secs,
                ..
            } => ApiError::retry(
                code::TOO_MANY_REQUESTS,
                format!(
                    "Too much request weight used; current limit is {limit} request weight \
                     per {}. Please use WebSocket Streams for live updates to avoid polling \
                     the API.",
                    request_weight(limit).per()
                ),
                retry_after_secs,
            ),
            LimitError::Banned {
                until_ms,
                retry_after_secs,
                ..
            } => ApiError::retry(
                code::TOO_MANY_REQUESTS,
                format!(
                    "Way too much request weight used; IP banned until {until_ms}. \
                     Please use WebSocket Streams for live updates to avoid bans."
                ),
                retry_after_secs,
            )
            .with_status(StatusCode::IM_A_TEAPOT),
            LimitError::TooManyOrders {
                limit,
                retry_after_secs,
                ..
            } => ApiError::retry(
                code::TOO_MANY_ORDERS,
                format!(
                    "Too many new orders; current limit is {} orders per {}.",
                    limit.limit,
                    limit.per()
                ),
                retry_after_secs,
            ),
        }
    }
}

impl IntoResponse for LimitError {
    /// The `{code,msg}` answer with `Retry-After` and the usage headers.
    fn into_response(self) -> Response {
        let headers = self.headers();
        let mut resp = ApiError::from(self).into_response();
        resp.headers_mut().extend(headers);
        resp
    }
}

/// One IP's (or IPv6 /64's) weight and ban record.
#[derive(Debug, Clone, Copy, Default)]
struct IpUsage {
    /// The minute `used` and `refused` count in.
    window: u64,
    used: u32,
    /// 429s answered in `window`.
    refused: u32,
    /// The end of the latest ban (0: never banned).
    banned_until_ms: u64,
    /// Bans so far, for escalation; forgotten after a clean spell.
    bans: u32,
}

/// One IP's (or IPv6 /64's) WebSocket connection attempts.
#[derive(Debug, Clone, Copy, Default)]
struct ConnectUsage {
    /// The five minutes `attempts` count in.
    window: u64,
    attempts: u32,
}

/// Binance's window for WebSocket connection attempts.
const CONNECT_WINDOW_MS: u64 = 5 * 60 * 1_000;

/// One account's new orders.
#[derive(Debug, Clone, Copy, Default)]
struct AccountUsage {
    ten_seconds_window: u64,
    day_window: u64,
    ten_seconds: u32,
    day: u32,
}

impl AccountUsage {
    /// Starts the windows `now` falls in, if they are newer.
    fn roll(&mut self, ten_seconds_window: u64, day_window: u64) {
        if ten_seconds_window > self.ten_seconds_window {
            self.ten_seconds_window = ten_seconds_window;
            self.ten_seconds = 0;
        }
        if day_window > self.day_window {
            self.day_window = day_window;
            self.day = 0;
        }
    }

    fn counts(&self) -> OrderCounts {
        OrderCounts {
            ten_seconds: self.ten_seconds,
            day: self.day,
        }
    }
}

#[derive(Debug)]
struct Shard<K, V> {
    map: HashMap<K, V>,
    /// No sweep before this time.
    next_sweep_ms: u64,
}

/// A map of at most `cap` entries per shard, sharded by a keyed hash (so
/// no client can choose keys that crowd one shard).
#[derive(Debug)]
struct Table<K, V> {
    shards: Box<[Mutex<Shard<K, V>>]>,
    pick: RandomState,
    cap: usize,
}

impl<K: Hash + Eq + Copy, V: Default> Table<K, V> {
    /// At most `max` entries in all (at least one per shard).
    fn new(max: usize) -> Self {
        let shards = max.clamp(1, SHARDS);
        Table {
            shards: (0..shards)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::new(),
                        next_sweep_ms: 0,
                    })
                })
                .collect(),
            pick: RandomState::new(),
            cap: max / shards,
        }
    }

    fn shard(&self, key: K) -> MutexGuard<'_, Shard<K, V>> {
        let i = (self.pick.hash_one(key) % self.shards.len() as u64) as usize;
        // The state is counters: a panic elsewhere leaves nothing to repair.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on `key`'s entry, made if missing. A full shard first
    /// drops the entries `lapsed` says are worthless; when it is still
    /// full, `f` runs on a fresh entry that is not kept.
    fn update<R>(
        &self,
        key: K,
        now_ms: u64,
        lapsed: impl Fn(&V) -> bool,
        f: impl FnOnce(&mut V) -> R,
    ) -> R {
        let mut shard = self.shard(key);
        if let Some(v) = shard.map.get_mut(&key) {
            return f(v);
        }
        if shard.map.len() >= self.cap && now_ms >= shard.next_sweep_ms {
            shard.map.retain(|_, v| !lapsed(v));
            shard.next_sweep_ms = now_ms.saturating_add(SWEEP_EVERY_MS);
        }
        if shard.map.len() < self.cap {
            f(shard.map.entry(key).or_default())
        } else {
            f(&mut V::default())
        }
    }

    /// Runs `f` on `key`'s entry if there is one; makes none.
    fn existing<R>(&self, key: K, f: impl FnOnce(Option<&mut V>) -> R) -> R {
        f(self.shard(key).map.get_mut(&key))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).map.len())
            .sum()
    }
}

/// The IPv4 address, or the IPv6 address's /64.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// Whole seconds from `now_ms` to `end_ms`, at least 1.
fn secs_until(end_ms: u64, now_ms: u64) -> u32 {
    let secs = end_ms.saturating_sub(now_ms).div_ceil(1_000).max(1);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// The request-weight and order-count limits of one gateway.
#[derive(Debug)]
pub(crate) struct Usage {
    weight: RateLimit,
    orders_10s: RateLimit,
    orders_day: RateLimit,
    /// 429s one IP may receive in a window; the next request is banned.
    ban_after: u32,
    ban_min_ms: u64,
    ban_max_ms: u64,
    ips: Table<IpAddr, IpUsage>,
    accounts: Table<UserId, AccountUsage>,
    /// WebSocket connection attempts per IP in five minutes.
    connect_limit: u32,
    connects: Table<IpAddr, ConnectUsage>,
}

impl Usage {
    /// Limits as `config` sets them, with no history.
    pub(crate) fn new(config: &GatewayConfig) -> Self {
        let [weight, orders_10s, orders_day] = rate_limits(config);
        Usage {
            weight,
            orders_10s,
            orders_day,
            ban_after: config.ip_ban_after_429s,
            ban_min_ms: config.ip_ban_min_secs.saturating_mul(1_000),
            ban_max_ms: config.ip_ban_max_secs.saturating_mul(1_000),
            ips: Table::new(config.max_tracked_ips),
            accounts: Table::new(config.max_tracked_accounts),
            connect_limit: config.ws_connections_per_5min,
            connects: Table::new(config.max_tracked_ips),
        }
    }

    /// Counts one WebSocket connection attempt of `ip` in the five minutes
    /// `now_ms` falls in; past the limit, the seconds until they end.
    pub(crate) fn charge_connect(&self, ip: IpAddr, now_ms: u64) -> Result<(), u32> {
        let window = now_ms / CONNECT_WINDOW_MS;
        self.connects.update(
            ip_key(ip),
            now_ms,
            |e| e.window < window,
            |e| {
                if window > e.window {
                    e.window = window;
                    e.attempts = 0;
                }
                e.attempts = e.attempts.saturating_add(1);
                if e.attempts <= self.connect_limit {
                    Ok(())
                } else {
                    let end = window.saturating_add(1).saturating_mul(CONNECT_WINDOW_MS);
                    Err(secs_until(end, now_ms))
                }
            },
        )
    }

    /// The limits, as `exchangeInfo` lists them.
    pub(crate) fn rate_limits(&self) -> [RateLimit; 3] {
        [self.weight, self.orders_10s, self.orders_day]
    }

    /// The length of an IP's ban that follows `bans` earlier ones (within
    /// the memory of bans), in seconds: the minimum, doubling with each
    /// ban, capped at the maximum. With the defaults: 2, 4, 8, ... 4,096
    /// minutes, then 3 days (the 13th ban and every one after it).
    pub(crate) fn ban_secs(&self, bans: u32) -> u64 {
        let factor = 1u64.checked_shl(bans).unwrap_or(u64::MAX);
        self.ban_min_ms.saturating_mul(factor).min(self.ban_max_ms) / 1_000
    }

    /// Charges `weight` to `ip` for the minute `now_ms` falls in. A
    /// request refused with 429 still counts (its weight is in the
    /// header), one refused with 418 does not. After `ip_ban_after_429s`
    /// refusals in one minute the next request is banned.
    pub(crate) fn charge_ip(
        &self,
        ip: IpAddr,
        weight: u32,
        now_ms: u64,
    ) -> Result<UsedWeight, LimitError> {
        let window = self.weight.window_of(now_ms);
        self.ips.update(
            ip_key(ip),
            now_ms,
            |e| self.ip_lapsed(e, window, now_ms),
            |e| self.charge(e, weight, window, now_ms),
        )
    }

    /// An entry that holds no count for the current minute and no ban
    /// worth remembering: dropping it changes no answer.
    fn ip_lapsed(&self, e: &IpUsage, window: u64, now_ms: u64) -> bool {
        e.window < window && !self.remembers_bans(e, now_ms)
    }

    /// Bans are remembered, for escalation, until the longest ban has
    /// passed again after the last one ended.
    fn remembers_bans(&self, e: &IpUsage, now_ms: u64) -> bool {
        e.bans > 0 && now_ms < e.banned_until_ms.saturating_add(self.ban_max_ms)
    }

    fn charge(
        &self,
        e: &mut IpUsage,
        weight: u32,
        window: u64,
        now_ms: u64,
    ) -> Result<UsedWeight, LimitError> {
        // Windows only move forward: a clock stepping back stays in the
        // window already counted.
        if window > e.window {
            e.window = window;
            e.used = 0;
            e.refused = 0;
        }
        if now_ms < e.banned_until_ms {
            return Err(banned(e, now_ms));
        }
        if !self.remembers_bans(e, now_ms) {
            e.bans = 0;
        }
        e.used = e.used.saturating_add(weight);
        if e.used <= self.weight.limit {
            return Ok(UsedWeight { used: e.used });
        }
        e.refused = e.refused.saturating_add(1);
        if e.refused <= self.ban_after {
            return Err(LimitError::RequestWeight {
                used: UsedWeight { used: e.used },
                limit: self.weight.limit,
                retry_after_secs: secs_until(self.weight.window_end_ms(e.window), now_ms),
            });
        }
        let secs = self.ban_secs(e.bans);
        e.bans = e.bans.saturating_add(1);
        e.banned_until_ms = now_ms.saturating_add(secs.saturating_mul(1_000));
        e.refused = 0;
        Err(banned(e, now_ms))
    }

    /// Counts `orders` new orders (1 for a single order) for `user` in the
    /// windows `now_ms` falls in, or refuses them all without counting
    /// when either window would pass its limit.
    pub(crate) fn charge_orders(
        &self,
        user: UserId,
        orders: u32,
        now_ms: u64,
    ) -> Result<OrderCounts, LimitError> {
        let ten = self.orders_10s.window_of(now_ms);
        let day = self.orders_day.window_of(now_ms);
        self.accounts.update(
            user,
            now_ms,
            |e| e.day_window < day,
            |e| {
                e.roll(ten, day);
                let counts = e.counts();
                // The day first: its Retry-After is the one that holds.
                for (limit, count, window) in [
                    (&self.orders_day, e.day, e.day_window),
                    (&self.orders_10s, e.ten_seconds, e.ten_seconds_window),
                ] {
                    if count.saturating_add(orders) > limit.limit {
                        return Err(LimitError::TooManyOrders {
                            counts,
                            limit: *limit,
                            retry_after_secs: secs_until(limit.window_end_ms(window), now_ms),
                        });
                    }
                }
                e.ten_seconds = e.ten_seconds.saturating_add(orders);
                e.day = e.day.saturating_add(orders);
                Ok(e.counts())
            },
        )
    }

    /// One of `user`'s orders traded for the first time: the current
    /// windows' counts drop by one, not below zero, whenever the order
    /// was placed. Call once per order, on its first fill.
    pub(crate) fn order_filled(&self, user: UserId, now_ms: u64) {
        let ten = self.orders_10s.window_of(now_ms);
        let day = self.orders_day.window_of(now_ms);
        self.accounts.existing(user, |e| {
            if let Some(e) = e {
                e.roll(ten, day);
                e.ten_seconds = e.ten_seconds.saturating_sub(1);
                e.day = e.day.saturating_sub(1);
            }
        });
    }

    /// `user`'s counts now, for `GET /api/v3/rateLimit/order`.
    pub(crate) fn order_counts(&self, user: UserId, now_ms: u64) -> OrderCounts {
        let ten = self.orders_10s.window_of(now_ms);
        let day = self.orders_day.window_of(now_ms);
        self.accounts.existing(user, |e| {
            e.map_or(OrderCounts::default(), |e| {
                e.roll(ten, day);
                e.counts()
            })
        })
    }
}

/// The refusal of a banned IP.
fn banned(e: &IpUsage, now_ms: u64) -> LimitError {
    LimitError::Banned {
        used: UsedWeight { used: e.used },
        until_ms: e.banned_until_ms,
        retry_after_secs: secs_until(e.banned_until_ms, now_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// 2023-11-15 00:00:00 UTC: the start of a day, so of every window.
    const DAY0: u64 = 1_700_006_400_000;
    const MINUTE: u64 = 60_000;
    const DAY: u64 = 86_400_000;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn usage(f: impl FnOnce(&mut GatewayConfig)) -> Usage {
        let mut config = GatewayConfig::default();
        f(&mut config);
        config.validate().unwrap();
        Usage::new(&config)
    }

    fn header_values(headers: &[(HeaderName, HeaderValue)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect()
    }

    fn used(n: u32) -> UsedWeight {
        UsedWeight { used: n }
    }

    #[test]
    fn the_defaults_are_binances() {
        let c = GatewayConfig::default();
        assert_eq!(c.request_weight_per_minute, 6_000);
        assert_eq!((c.orders_per_10s, c.orders_per_day), (50, 160_000));
        assert_eq!((c.ip_ban_min_secs, c.ip_ban_max_secs), (120, 259_200));
        c.validate().unwrap();
    }

    #[test]
    fn websocket_connection_attempts_are_counted_per_ip_per_5_minutes() {
        let u = usage(|c| c.ws_connections_per_5min = 2);
        let at = DAY0 + 60_000;
        assert_eq!(u.charge_connect(ip(1), at), Ok(()));
        assert_eq!(u.charge_connect(ip(1), at + 1), Ok(()));
        // The third in the window: refused until it ends (4 minutes on).
        assert_eq!(u.charge_connect(ip(1), at + 2), Err(240));
        // Another address has its own count; the next window starts over.
        assert_eq!(u.charge_connect(ip(2), at + 3), Ok(()));
        assert_eq!(u.charge_connect(ip(1), DAY0 + 5 * MINUTE), Ok(()));
        assert_eq!(GatewayConfig::default().ws_connections_per_5min, 300);
    }

    #[test]
    fn the_config_refuses_unusable_limits_by_name() {
        type Zero = fn(&mut GatewayConfig);
        let zeroed: [(&str, Zero); 8] = [
            ("request_weight_per_minute", |c| {
                c.request_weight_per_minute = 0
            }),
            ("orders_per_10s", |c| c.orders_per_10s = 0),
            ("orders_per_day", |c| c.orders_per_day = 0),
            ("ip_ban_after_429s", |c| c.ip_ban_after_429s = 0),
            ("ip_ban_min_secs", |c| c.ip_ban_min_secs = 0),
            ("ip_ban_max_secs", |c| c.ip_ban_max_secs = 0),
            ("max_tracked_ips", |c| c.max_tracked_ips = 0),
            ("max_tracked_accounts", |c| c.max_tracked_accounts = 0),
        ];
        for (name, zero) in zeroed {
            let mut c = GatewayConfig::default();
            zero(&mut c);
            assert_eq!(c.validate(), Err(crate::GatewayConfigError::Zero(name)));
        }
        let mut c = GatewayConfig::default();
        c.ip_ban_min_secs = c.ip_ban_max_secs + 1;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "gateway.ip_ban_min_secs must not exceed gateway.ip_ban_max_secs"
        );
    }

    #[test]
    fn rate_limits_are_shaped_as_binance_lists_them() {
        let u = usage(|c| {
            c.request_weight_per_minute = 1_000_000;
            c.orders_per_10s = 20_000;
        });
        let expected = serde_json::json!([
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 1_000_000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 20_000},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160_000},
        ]);
        assert_eq!(serde_json::to_value(u.rate_limits()).unwrap(), expected);
        let c = GatewayConfig::default();
        assert_eq!(rate_limits(&c), Usage::new(&c).rate_limits());
    }

    #[test]
    fn headers_are_named_as_binance_writes_them() {
        // X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter) and
        // X-MBX-ORDER-COUNT-(intervalNum)(intervalLetter), from the limits.
        let [weight, ten, day] = rate_limits(&GatewayConfig::default());
        let named = |what: &str, l: RateLimit| format!("X-MBX-{what}-{}", l.header_suffix());
        assert_eq!(named("USED-WEIGHT", weight), "X-MBX-USED-WEIGHT-1M");
        assert_eq!(named("ORDER-COUNT", ten), "X-MBX-ORDER-COUNT-10S");
        assert_eq!(named("ORDER-COUNT", day), "X-MBX-ORDER-COUNT-1D");
        assert_eq!(USED_WEIGHT_1M, named("USED-WEIGHT", weight).as_str());
        assert_eq!(ORDER_COUNT_10S, named("ORDER-COUNT", ten).as_str());
        assert_eq!(ORDER_COUNT_1D, named("ORDER-COUNT", day).as_str());
        assert_eq!(
            header_values(&used(7).headers()),
            [("x-mbx-used-weight-1m".into(), "7".into())]
        );
        let counts = OrderCounts {
            ten_seconds: 3,
            day: 1_234,
        };
        assert_eq!(
            header_values(&counts.headers()),
            [
                ("x-mbx-order-count-10s".into(), "3".into()),
                ("x-mbx-order-count-1d".into(), "1234".into())
            ]
        );
    }

    #[test]
    fn weight_is_counted_per_minute_aligned_to_the_clock() {
        let u = usage(|c| c.request_weight_per_minute = 10);
        let late = DAY0 + 59_999;
        assert_eq!(u.charge_ip(ip(1), 3, late - 30_000), Ok(used(3)));
        assert_eq!(u.charge_ip(ip(1), 4, late), Ok(used(7)));
        // Another IP has its own count.
        assert_eq!(u.charge_ip(ip(2), 2, late), Ok(used(2)));
        // 00:01:00.000 is a new window, however recent the last request.
        assert_eq!(u.charge_ip(ip(1), 1, late + 1), Ok(used(1)));
        assert_eq!(u.charge_ip(ip(1), 9, late + 1 + 59_999), Ok(used(10)));
        // A clock stepping back stays in the window already counted.
        assert!(u.charge_ip(ip(1), 1, late).is_err());
        // Several minutes later, as after any idle spell: fresh.
        assert_eq!(u.charge_ip(ip(1), 5, DAY0 + 7 * MINUTE + 1), Ok(used(5)));
    }

    #[test]
    fn weight_past_the_limit_is_429_until_the_minute_ends() {
        let u = usage(|c| c.request_weight_per_minute = 10);
        let t = DAY0 + 15_500;
        assert_eq!(u.charge_ip(ip(1), 10, t), Ok(used(10)));
        let refused = u.charge_ip(ip(1), 1, t).unwrap_err();
        assert_eq!(
            refused,
            LimitError::RequestWeight {
                used: used(11),
                limit: 10,
                retry_after_secs: 45,
            }
        );
        let api = ApiError::from(refused.clone());
        assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(api.code, -1003);
        assert_eq!(api.retry_after, Some(45));
        assert_eq!(
            api.msg,
            "Too much request weight used; current limit is 10 request weight per 1 MINUTE. \
             Please use WebSocket Streams for live updates to avoid polling the API."
        );
        let resp = refused.into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["retry-after"], "45");
        assert_eq!(resp.headers()["x-mbx-used-weight-1m"], "11");
        // Refused requests count too: the header says what was sent.
        assert!(matches!(
            u.charge_ip(ip(1), 2, DAY0 + MINUTE - 1),
            Err(LimitError::RequestWeight {
                used: UsedWeight { used: 13 },
                retry_after_secs: 1,
                ..
            })
        ));
        assert_eq!(u.charge_ip(ip(1), 10, DAY0 + MINUTE), Ok(used(10)));
    }

    /// Sends weight-1 requests from `ip` at `now` until it is banned,
    /// checking that exactly `allowed` pass and `warned` get a 429 first;
    /// the ban's end.
    fn provoke_ban(u: &Usage, ip: IpAddr, now: u64, allowed: u32, warned: u32) -> u64 {
        for _ in 0..allowed {
            assert!(u.charge_ip(ip, 1, now).is_ok());
        }
        for _ in 0..warned {
            assert!(matches!(
                u.charge_ip(ip, 1, now),
                Err(LimitError::RequestWeight { .. })
            ));
        }
        match u.charge_ip(ip, 1, now) {
            Err(LimitError::Banned { until_ms, .. }) => until_ms,
            other => panic!("expected a ban, got {other:?}"),
        }
    }

    #[test]
    fn continuing_after_429s_is_a_418_ban_that_ends_when_it_says() {
        let u = usage(|c| {
            c.request_weight_per_minute = 5;
            c.ip_ban_after_429s = 3;
        });
        let t = DAY0 + 10_000;
        let until = provoke_ban(&u, ip(1), t, 5, 3);
        assert_eq!(until, t + 120_000);
        // Every request during the ban is refused the same way, even in a
        // later minute, and adds no weight.
        let banned = u.charge_ip(ip(1), 1, t + 1).unwrap_err();
        assert_eq!(
            banned,
            LimitError::Banned {
                used: used(9),
                until_ms: until,
                retry_after_secs: 120,
            }
        );
        let api = ApiError::from(banned.clone());
        assert_eq!(api.status, StatusCode::IM_A_TEAPOT);
        assert_eq!(api.code, -1003);
        assert_eq!(api.retry_after, Some(120));
        assert_eq!(
            api.msg,
            format!(
                "Way too much request weight used; IP banned until {until}. \
                 Please use WebSocket Streams for live updates to avoid bans."
            )
        );
        let resp = banned.into_response();
        assert_eq!(resp.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(resp.headers()["retry-after"], "120");
        assert_eq!(resp.headers()["x-mbx-used-weight-1m"], "9");
        assert_eq!(
            u.charge_ip(ip(1), 1, until - 1),
            Err(LimitError::Banned {
                used: used(0),
                until_ms: until,
                retry_after_secs: 1,
            })
        );
        // Other IPs are untouched.
        assert_eq!(u.charge_ip(ip(2), 1, t + 1), Ok(used(1)));
        // At the stated time the ban is over, and the minute is fresh.
        assert_eq!(u.charge_ip(ip(1), 1, until), Ok(used(1)));
    }

    #[test]
    fn bans_escalate_from_2_minutes_to_3_days_and_are_forgotten_after_a_clean_spell() {
        let u = usage(|c| {
            c.request_weight_per_minute = 1;
            c.ip_ban_after_429s = 1;
        });
        let ladder: Vec<u64> = (0..15).map(|b| u.ban_secs(b)).collect();
        let minutes = [2, 4, 8, 16, 32, 64, 128, 256, 512, 1_024, 2_048, 4_096];
        let mut expected: Vec<u64> = minutes.iter().map(|m| m * 60).collect();
        expected.extend([259_200; 3]);
        assert_eq!(ladder, expected);
        assert_eq!(u.ban_secs(u32::MAX), 259_200);
        // Each ban of one IP is the next on the ladder, counted from when
        // it starts.
        let mut now = DAY0;
        for secs in &ladder {
            let until = provoke_ban(&u, ip(9), now, 1, 1);
            assert_eq!(until, now + secs * 1_000);
            now = until;
        }
        // A clean spell as long as the longest ban: the next is the first
        // again. One millisecond short of it still escalates.
        let u = usage(|c| {
            c.request_weight_per_minute = 1;
            c.ip_ban_after_429s = 1;
        });
        let until = provoke_ban(&u, ip(9), DAY0, 1, 1);
        let again = until + 3 * DAY - 1;
        let until = provoke_ban(&u, ip(9), again, 1, 1);
        assert_eq!(until - again, 240_000);
        let clean = until + 3 * DAY;
        assert_eq!(provoke_ban(&u, ip(9), clean, 1, 1) - clean, 120_000);
    }

    #[test]
    fn a_new_minute_forgives_its_429s() {
        let u = usage(|c| {
            c.request_weight_per_minute = 1;
            c.ip_ban_after_429s = 2;
        });
        // Two 429s a minute, backing off after them: never banned.
        for m in 0..5 {
            let t = DAY0 + m * MINUTE;
            assert!(u.charge_ip(ip(1), 1, t).is_ok());
            for _ in 0..2 {
                assert!(matches!(
                    u.charge_ip(ip(1), 1, t),
                    Err(LimitError::RequestWeight { .. })
                ));
            }
        }
    }

    #[test]
    fn ipv6_is_counted_by_its_64_and_mapped_ipv4_as_ipv4() {
        let u = usage(|c| c.request_weight_per_minute = 100);
        let v6 = |s: &str| IpAddr::V6(s.parse().unwrap());
        assert_eq!(u.charge_ip(v6("2001:db8::1"), 1, DAY0), Ok(used(1)));
        assert_eq!(u.charge_ip(v6("2001:db8::ffff:2"), 1, DAY0), Ok(used(2)));
        assert_eq!(u.charge_ip(v6("2001:db8:0:1::1"), 1, DAY0), Ok(used(1)));
        assert_eq!(u.charge_ip(ip(7), 1, DAY0), Ok(used(1)));
        assert_eq!(u.charge_ip(v6("::ffff:192.0.2.7"), 1, DAY0), Ok(used(2)));
        assert_eq!(u.charge_ip(v6("::1"), 1, DAY0), Ok(used(1)));
    }

    #[test]
    fn orders_are_counted_per_10_seconds_and_day_with_their_headers() {
        let u = usage(|_| {});
        let alice = UserId(1);
        let t = DAY0 + 1_000;
        for n in 1..=50 {
            let counts = u.charge_orders(alice, 1, t).unwrap();
            assert_eq!(
                counts,
                OrderCounts {
                    ten_seconds: n,
                    day: n
                }
            );
        }
        let counts = u.order_counts(alice, t);
        assert_eq!(
            header_values(&counts.headers()),
            [
                ("x-mbx-order-count-10s".into(), "50".into()),
                ("x-mbx-order-count-1d".into(), "50".into())
            ]
        );
        // The 51st is refused, and counts nowhere.
        let refused = u.charge_orders(alice, 1, t).unwrap_err();
        assert_eq!(
            refused,
            LimitError::TooManyOrders {
                counts: OrderCounts {
                    ten_seconds: 50,
                    day: 50
                },
                limit: orders_10s(50),
                retry_after_secs: 9,
            }
        );
        let api = ApiError::from(refused.clone());
        assert_eq!(api.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(api.code, -1015);
        assert_eq!(api.retry_after, Some(9));
        assert_eq!(
            api.msg,
            "Too many new orders; current limit is 50 orders per 10 SECOND."
        );
        let resp = refused.into_response();
        assert_eq!(resp.headers()["x-mbx-order-count-10s"], "50");
        assert_eq!(resp.headers()["x-mbx-order-count-1d"], "50");
        assert_eq!(resp.headers()["retry-after"], "9");
        // Another account has its own counts.
        assert_eq!(
            u.charge_orders(UserId(2), 1, t),
            Ok(OrderCounts {
                ten_seconds: 1,
                day: 1
            })
        );
        // The next 10 seconds start at :10.000.
        assert!(u.charge_orders(alice, 1, DAY0 + 9_999).is_err());
        assert_eq!(
            u.charge_orders(alice, 1, DAY0 + 10_000),
            Ok(OrderCounts {
                ten_seconds: 1,
                day: 51
            })
        );
        // A request for several orders (an order list) counts them all, or
        // none.
        assert!(u.charge_orders(alice, 50, DAY0 + 10_000).is_err());
        assert_eq!(
            u.charge_orders(alice, 49, DAY0 + 10_000),
            Ok(OrderCounts {
                ten_seconds: 50,
                day: 100
            })
        );
    }

    #[test]
    fn the_daily_limit_refuses_without_counting_the_10_seconds() {
        let u = usage(|c| {
            c.orders_per_10s = 3;
            c.orders_per_day = 5;
        });
        let alice = UserId(1);
        for _ in 0..3 {
            u.charge_orders(alice, 1, DAY0).unwrap();
        }
        let t = DAY0 + 12 * 3_600_000;
        for _ in 0..2 {
            u.charge_orders(alice, 1, t).unwrap();
        }
        let refused = u.charge_orders(alice, 1, t).unwrap_err();
        assert_eq!(
            refused,
            LimitError::TooManyOrders {
                counts: OrderCounts {
                    ten_seconds: 2,
                    day: 5
                },
                limit: orders_day(5),
                retry_after_secs: 12 * 3_600,
            }
        );
        assert_eq!(
            ApiError::from(refused).msg,
            "Too many new orders; current limit is 5 orders per 1 DAY."
        );
        assert_eq!(
            u.order_counts(alice, t),
            OrderCounts {
                ten_seconds: 2,
                day: 5
            }
        );
        // Midnight UTC starts a new day.
        assert_eq!(
            u.charge_orders(alice, 1, DAY0 + DAY),
            Ok(OrderCounts {
                ten_seconds: 1,
                day: 1
            })
        );
    }

    #[test]
    fn a_first_fill_gives_an_order_back_down_to_zero() {
        let u = usage(|_| {});
        let alice = UserId(1);
        for _ in 0..50 {
            u.charge_orders(alice, 1, DAY0).unwrap();
        }
        assert!(u.charge_orders(alice, 1, DAY0).is_err());
        u.order_filled(alice, DAY0 + 1);
        assert_eq!(
            u.order_counts(alice, DAY0 + 1),
            OrderCounts {
                ten_seconds: 49,
                day: 49
            }
        );
        assert_eq!(
            u.charge_orders(alice, 1, DAY0 + 1),
            Ok(OrderCounts {
                ten_seconds: 50,
                day: 50
            })
        );
        // Fills of earlier orders lower only the current windows, and not
        // below zero: no credit is banked.
        u.order_filled(alice, DAY0 + 10_000);
        assert_eq!(
            u.order_counts(alice, DAY0 + 10_000),
            OrderCounts {
                ten_seconds: 0,
                day: 49
            }
        );
        u.order_filled(alice, DAY0 + DAY);
        assert_eq!(u.order_counts(alice, DAY0 + DAY), OrderCounts::default());
        // An account with no orders: nothing to lower, and nothing kept.
        u.order_filled(UserId(2), DAY0);
        assert_eq!(u.order_counts(UserId(3), DAY0), OrderCounts::default());
        assert_eq!(u.accounts.len(), 1);
    }

    #[test]
    fn a_flood_of_distinct_ips_holds_bounded_memory() {
        let u = usage(|c| {
            c.max_tracked_ips = 64;
            c.request_weight_per_minute = 2;
            c.ip_ban_after_429s = 1;
        });
        // Tracked before the flood: a known IP keeps its count, a banned
        // one its ban.
        assert_eq!(u.charge_ip(ip(1), 1, DAY0), Ok(used(1)));
        let until = provoke_ban(&u, ip(2), DAY0, 2, 1);
        let flood = |from: u32, now: u64| {
            for n in from..from + 10_000 {
                let addr = IpAddr::V4(Ipv4Addr::from_bits(0x0a00_0000 + n));
                // Untracked or not, each is answered for its own request.
                assert_eq!(u.charge_ip(addr, 1, now), Ok(used(1)));
            }
        };
        flood(0, DAY0);
        assert!(u.ips.len() <= 64, "{}", u.ips.len());
        assert_eq!(u.charge_ip(ip(1), 1, DAY0), Ok(used(2)));
        // A minute later the old entries lapse and make room: the bound
        // holds, and the ban (2 minutes) outlives the sweep.
        flood(10_000, DAY0 + MINUTE);
        assert!(u.ips.len() <= 64, "{}", u.ips.len());
        assert!(matches!(
            u.charge_ip(ip(2), 1, DAY0 + MINUTE),
            Err(LimitError::Banned { until_ms, .. }) if until_ms == until
        ));
        // A newcomer finds room once the shard's sweep lapses old entries.
        assert_eq!(u.charge_ip(ip(3), 1, DAY0 + 5 * MINUTE), Ok(used(1)));
        assert_eq!(u.charge_ip(ip(3), 1, DAY0 + 5 * MINUTE), Ok(used(2)));
    }

    #[test]
    fn a_flood_of_accounts_holds_bounded_memory() {
        let u = usage(|c| c.max_tracked_accounts = 8);
        for n in 0..1_000 {
            assert_eq!(
                u.charge_orders(UserId(n), 1, DAY0),
                Ok(OrderCounts {
                    ten_seconds: 1,
                    day: 1
                })
            );
        }
        assert!(u.accounts.len() <= 8, "{}", u.accounts.len());
        // The next UTC day the entries lapse and new accounts are tracked.
        let tomorrow = DAY0 + DAY;
        u.charge_orders(UserId(5_000), 1, tomorrow).unwrap();
        assert_eq!(
            u.charge_orders(UserId(5_000), 1, tomorrow),
            Ok(OrderCounts {
                ten_seconds: 2,
                day: 2
            })
        );
        assert!(u.accounts.len() <= 8);
    }
}
