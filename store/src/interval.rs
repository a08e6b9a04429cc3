//! Kline intervals with Binance's names and bucket rules, in a time zone
//! given as a fixed offset: buckets are aligned in local time (`utc +
//! offset`) and named by their UTC open time in ms. Fixed-length intervals
//! are multiples of their length since the (local) epoch, as Binance's 3d
//! candles are; 1w starts on Monday 00:00; 1M is the calendar month.

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// 1970-01-01 was a Thursday: the first Monday is day 4.
const FIRST_MONDAY: i64 = 4;

/// A kline interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interval {
    /// `1s`
    S1,
    /// `1m`
    M1,
    /// `3m`
    M3,
    /// `5m`
    M5,
    /// `15m`
    M15,
    /// `30m`
    M30,
    /// `1h`
    H1,
    /// `2h`
    H2,
    /// `4h`
    H4,
    /// `6h`
    H6,
    /// `8h`
    H8,
    /// `12h`
    H12,
    /// `1d`
    D1,
    /// `3d`: multiples of 3 days since the epoch.
    D3,
    /// `1w`: from Monday 00:00.
    W1,
    /// `1M`: calendar months.
    Mo1,
}

impl Interval {
    /// Every interval, shortest first.
    pub const ALL: [Interval; 16] = [
        Interval::S1,
        Interval::M1,
        Interval::M3,
        Interval::M5,
        Interval::M15,
        Interval::M30,
        Interval::H1,
        Interval::H2,
        Interval::H4,
        Interval::H6,
        Interval::H8,
        Interval::H12,
        Interval::D1,
        Interval::D3,
        Interval::W1,
        Interval::Mo1,
    ];

    /// The interval a Binance name stands for; exact, case-sensitive
    /// (`1m` is a minute, `1M` a month).
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.as_str() == s)
    }

    /// Binance's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::S1 => "1s",
            Interval::M1 => "1m",
            Interval::M3 => "3m",
            Interval::M5 => "5m",
            Interval::M15 => "15m",
            Interval::M30 => "30m",
            Interval::H1 => "1h",
            Interval::H2 => "2h",
            Interval::H4 => "4h",
            Interval::H6 => "6h",
            Interval::H8 => "8h",
            Interval::H12 => "12h",
            Interval::D1 => "1d",
            Interval::D3 => "3d",
            Interval::W1 => "1w",
            Interval::Mo1 => "1M",
        }
    }

    /// The length in ms; `None` for `1M`, whose months differ.
    pub fn duration_ms(self) -> Option<u64> {
        self.fixed_ms().map(i64::unsigned_abs)
    }

    fn fixed_ms(self) -> Option<i64> {
        Some(match self {
            Interval::S1 => SECOND,
            Interval::M1 => MINUTE,
            Interval::M3 => 3 * MINUTE,
            Interval::M5 => 5 * MINUTE,
            Interval::M15 => 15 * MINUTE,
            Interval::M30 => 30 * MINUTE,
            Interval::H1 => HOUR,
            Interval::H2 => 2 * HOUR,
            Interval::H4 => 4 * HOUR,
            Interval::H6 => 6 * HOUR,
            Interval::H8 => 8 * HOUR,
            Interval::H12 => 12 * HOUR,
            Interval::D1 => DAY,
            Interval::D3 => 3 * DAY,
            Interval::W1 => 7 * DAY,
            Interval::Mo1 => return None,
        })
    }

    /// The UTC open time (ms) of the bucket holding `t` (UTC ms), with local
    /// time `offset` ms ahead of UTC.
    pub(crate) fn open_of(self, t: i64, offset: i64) -> i64 {
        let local = t + offset;
        let open = match self {
            Interval::W1 => {
                let day = local.div_euclid(DAY);
                (day - (day - FIRST_MONDAY).rem_euclid(7)) * DAY
            }
            Interval::Mo1 => month_start(month_of(local.div_euclid(DAY))) * DAY,
            _ => {
                let d = self.fixed_ms().unwrap_or(DAY);
                local.div_euclid(d) * d
            }
        };
        open - offset
    }

    /// The open time of the bucket after the one opening at `open`.
    pub(crate) fn next_open(self, open: i64, offset: i64) -> i64 {
        match self.fixed_ms() {
            Some(d) => open + d,
            None => month_start(month_of((open + offset).div_euclid(DAY)) + 1) * DAY - offset,
        }
    }

    /// The open time of the bucket before the one opening at `open`.
    pub(crate) fn prev_open(self, open: i64, offset: i64) -> i64 {
        match self.fixed_ms() {
            Some(d) => open - d,
            None => month_start(month_of((open + offset).div_euclid(DAY)) - 1) * DAY - offset,
        }
    }
}

/// Parses Binance's `timeZone`: hours (`8`, `-3`) or hours and minutes
/// (`05:45`, `-1:00`, `+14:00`), within -12:00..=+14:00. The offset in
/// minutes ahead of UTC.
pub fn parse_time_zone(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'-' => (-1, &s[1..]),
        b'+' => (1, &s[1..]),
        _ => (1, s),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let digits = |x: &str, max_len: usize| {
        (!x.is_empty() && x.len() <= max_len && x.bytes().all(|b| b.is_ascii_digit()))
            .then(|| x.parse::<i32>().ok())
            .flatten()
    };
    let (h, m) = (digits(h, 2)?, digits(m, 2)?);
    if m >= 60 {
        return None;
    }
    let minutes = sign * (h * 60 + m);
    (-12 * 60..=14 * 60).contains(&minutes).then_some(minutes)
}

/// `year * 12 + month - 1` of the civil date `days` after the epoch
/// (proleptic Gregorian): months as consecutive integers.
fn month_of(days: i64) -> i64 {
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    year * 12 + month - 1
}

/// The day (since the epoch) on which month `m` (as [`month_of`]) starts.
fn month_start(m: i64) -> i64 {
    // Howard Hinnant's days_from_civil, for the 1st.
    let (year, month) = (m.div_euclid(12), m.rem_euclid(12) + 1);
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-03-05T10:20:30.400Z, a Tuesday.
    const T: i64 = 1_709_634_030_400;

    #[test]
    fn names_round_trip() {
        for i in Interval::ALL {
            assert_eq!(Interval::from_name(i.as_str()), Some(i));
        }
        assert_eq!(Interval::from_name("1H"), None);
        assert_eq!(Interval::M1.duration_ms(), Some(60_000));
        assert_eq!(Interval::Mo1.duration_ms(), None);
    }

    #[test]
    fn buckets_align_in_local_time() {
        assert_eq!(Interval::M15.open_of(T, 0), 1_709_633_700_000); // 10:15
        assert_eq!(Interval::D1.open_of(T, 0), 1_709_596_800_000); // 03-05 00:00
        // At +05:45 the local day started at 03-04 18:15 UTC.
        assert_eq!(Interval::D1.open_of(T, 345 * MINUTE), 1_709_576_100_000);
        assert_eq!(Interval::W1.open_of(T, 0), 1_709_510_400_000); // Monday 03-04
        assert_eq!(Interval::Mo1.open_of(T, 0), 1_709_251_200_000); // 03-01
        // At -1:00 March starts at 01:00 UTC.
        assert_eq!(Interval::Mo1.open_of(T, -HOUR), 1_709_254_800_000);
        // 3d: day 19787 is 03-05; 19785 is the multiple of 3 before it.
        assert_eq!(Interval::D3.open_of(T, 0), 19_785 * DAY);
    }

    #[test]
    fn months_step_over_year_ends_and_leap_days() {
        let feb = Interval::Mo1.open_of(1_707_000_000_000, 0); // 2024-02
        assert_eq!(feb, 1_706_745_600_000);
        assert_eq!(Interval::Mo1.next_open(feb, 0), 1_709_251_200_000);
        let dec = Interval::Mo1.open_of(1_703_000_000_000, 0); // 2023-12
        assert_eq!(Interval::Mo1.next_open(dec, 0), 1_704_067_200_000);
        assert_eq!(Interval::Mo1.prev_open(1_704_067_200_000, 0), dec);
        for day in [-800_000, -1, 0, 59, 60, 11_016, 19_787, 2_000_000] {
            let m = month_of(day);
            assert!(month_start(m) <= day && day < month_start(m + 1), "{day}");
        }
    }

    #[test]
    fn time_zones_parse_like_binance() {
        assert_eq!(parse_time_zone("0"), Some(0));
        assert_eq!(parse_time_zone("8"), Some(480));
        assert_eq!(parse_time_zone("-1:00"), Some(-60));
        assert_eq!(parse_time_zone("05:45"), Some(345));
        assert_eq!(parse_time_zone("+14:00"), Some(840));
        assert_eq!(parse_time_zone("-12:00"), Some(-720));
        for bad in [
            "", "-", "14:01", "-12:30", "5:60", "1:2:3", "a", "123", "+-1", "1:",
        ] {
            assert_eq!(parse_time_zone(bad), None, "{bad}");
        }
    }
}
