//! The open-loop schedule: when each request is due, fixed before the run
//! and independent of how fast the target answers. A request's latency is
//! measured from its planned time, so a stall in the target (or in the
//! harness) shows up as latency instead of silently lowering the rate
//! (no coordinated omission).
//!
//! A schedule is a list of phases, each at a constant rate. Request `i` of a
//! phase that starts at `s` with rate `r` per second is due at
//! `s + i / r`; the phase holds `floor(r * duration)` requests.

use std::time::Duration;

/// One phase of constant rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// A name for reports (`steady`, `step 3`, `spike`).
    pub name: String,
    /// Requests per second.
    pub rate: u64,
    /// How long the phase lasts.
    pub duration: Duration,
}

#[derive(Debug, Clone)]
struct Slot {
    start_ns: u64,
    end_ns: u64,
    first: u64,
    count: u64,
    rate: u64,
}

/// When every request is due.
#[derive(Debug, Clone)]
pub struct Schedule {
    phases: Vec<Phase>,
    slots: Vec<Slot>,
    total: u64,
}

const NS: u128 = 1_000_000_000;

impl Schedule {
    /// The schedule of `phases`, run back to back. Phases of rate 0 are
    /// pauses.
    pub fn new(phases: Vec<Phase>) -> Schedule {
        let mut slots = Vec::with_capacity(phases.len());
        let (mut start_ns, mut first) = (0u64, 0u64);
        for p in &phases {
            let dur_ns = p.duration.as_nanos().min(u128::from(u64::MAX / 2)) as u64;
            let count = (u128::from(p.rate) * u128::from(dur_ns) / NS) as u64;
            slots.push(Slot {
                start_ns,
                end_ns: start_ns + dur_ns,
                first,
                count,
                rate: p.rate,
            });
            start_ns += dur_ns;
            first += count;
        }
        Schedule {
            phases,
            slots,
            total: first,
        }
    }

    /// The phases.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// Requests in the whole schedule.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Requests in phase `p`.
    pub fn phase_count(&self, p: usize) -> u64 {
        self.slots.get(p).map_or(0, |s| s.count)
    }

    /// The planned length of the whole schedule.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.slots.last().map_or(0, |s| s.end_ns))
    }

    /// When phase `p` starts and ends, from the start of the run.
    pub fn phase_bounds(&self, p: usize) -> Option<(Duration, Duration)> {
        let s = self.slots.get(p)?;
        Some((
            Duration::from_nanos(s.start_ns),
            Duration::from_nanos(s.end_ns),
        ))
    }

    /// The phase of request `n` (0-based over the whole schedule) and when it
    /// is due, from the start of the run; `None` past the end.
    pub fn planned(&self, n: u64) -> Option<(usize, Duration)> {
        if n >= self.total {
            return None;
        }
        // The first slot whose range ends after n; empty slots are skipped.
        let p = self.slots.partition_point(|s| s.first + s.count <= n);
        let s = self.slots.get(p)?;
        let i = n - s.first;
        let off = (u128::from(i) * NS / u128::from(s.rate)) as u64;
        Some((p, Duration::from_nanos(s.start_ns + off)))
    }

    /// How many requests are due at `elapsed` from the start: those planned
    /// at or before it.
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        let t = elapsed.as_nanos().min(u128::from(u64::MAX)) as u64;
        let p = self.slots.partition_point(|s| s.start_ns <= t);
        if p == 0 {
            return 0;
        }
        let s = &self.slots[p - 1];
        if s.count == 0 {
            return s.first;
        }
        let since = u128::from(t - s.start_ns);
        let due = (since * u128::from(s.rate) / NS) as u64 + 1;
        s.first + due.min(s.count)
    }

    /// The phase running at `elapsed`, if any.
    pub fn phase_at(&self, elapsed: Duration) -> Option<usize> {
        let t = elapsed.as_nanos().min(u128::from(u64::MAX)) as u64;
        self.slots
            .iter()
            .position(|s| s.start_ns <= t && t < s.end_ns)
    }

    /// The offered rate (requests per second) at `elapsed`.
    pub fn rate_at(&self, elapsed: Duration) -> u64 {
        self.phase_at(elapsed).map_or(0, |p| self.slots[p].rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(rate: u64, ms: u64) -> Phase {
        Phase {
            name: format!("{rate}/s"),
            rate,
            duration: Duration::from_millis(ms),
        }
    }

    #[test]
    fn evenly_spaced_at_the_rate() {
        let s = Schedule::new(vec![phase(1_000, 2_000)]);
        assert_eq!(s.total(), 2_000);
        assert_eq!(s.planned(0), Some((0, Duration::ZERO)));
        assert_eq!(s.planned(1), Some((0, Duration::from_millis(1))));
        assert_eq!(s.planned(1_999), Some((0, Duration::from_millis(1_999))));
        assert_eq!(s.planned(2_000), None);
        // 27,000/s: 37.037 us apart, exact in integer nanoseconds.
        let s = Schedule::new(vec![phase(27_000, 60_000)]);
        assert_eq!(s.total(), 1_620_000);
        assert_eq!(
            s.planned(1).map(|p| p.1),
            Some(Duration::from_nanos(37_037))
        );
        assert_eq!(s.planned(27_000).map(|p| p.1), Some(Duration::from_secs(1)));
    }

    #[test]
    fn due_counts_follow_the_clock_not_the_answers() {
        let s = Schedule::new(vec![phase(1_000, 1_000)]);
        assert_eq!(s.due_by(Duration::ZERO), 1);
        assert_eq!(s.due_by(Duration::from_micros(999)), 1);
        assert_eq!(s.due_by(Duration::from_millis(1)), 2);
        assert_eq!(s.due_by(Duration::from_millis(500)), 501);
        // A harness that wakes late owes every request planned meanwhile,
        // each still stamped with its own planned time.
        assert_eq!(s.due_by(Duration::from_millis(10)), 11);
        assert_eq!(s.due_by(Duration::from_secs(5)), 1_000);
        for n in [0, 1, 7, 499, 999] {
            let (_, at) = s.planned(n).expect("in range");
            assert_eq!(s.due_by(at), n + 1, "request {n} is due at its own time");
            if let Some(before) = at.checked_sub(Duration::from_nanos(1)) {
                assert_eq!(s.due_by(before), n, "and not before");
            }
        }
    }

    #[test]
    fn phases_run_back_to_back() {
        // The step shape: 5k/s then 10k/s, 10 s each, and a pause.
        let s = Schedule::new(vec![
            phase(5_000, 10_000),
            phase(0, 1_000),
            phase(10_000, 10_000),
        ]);
        assert_eq!(s.total(), 150_000);
        assert_eq!(s.phase_count(0), 50_000);
        assert_eq!(s.phase_count(1), 0);
        assert_eq!(s.duration(), Duration::from_secs(21));
        assert_eq!(
            s.planned(49_999),
            Some((0, Duration::from_micros(9_999_800)))
        );
        assert_eq!(s.planned(50_000), Some((2, Duration::from_secs(11))));
        assert_eq!(
            s.planned(50_001),
            Some((2, Duration::from_micros(11_000_100)))
        );
        assert_eq!(s.due_by(Duration::from_millis(10_500)), 50_000);
        assert_eq!(s.due_by(Duration::from_secs(11)), 50_001);
        assert_eq!(s.rate_at(Duration::from_secs(3)), 5_000);
        assert_eq!(s.rate_at(Duration::from_millis(10_500)), 0);
        assert_eq!(s.rate_at(Duration::from_secs(15)), 10_000);
        assert_eq!(s.phase_at(Duration::from_secs(30)), None);
        assert_eq!(
            s.phase_bounds(2),
            Some((Duration::from_secs(11), Duration::from_secs(21)))
        );
    }

    #[test]
    fn fractional_counts_round_down() {
        let s = Schedule::new(vec![phase(3, 1_500), phase(7, 100)]);
        assert_eq!(s.phase_count(0), 4);
        assert_eq!(s.phase_count(1), 0);
        assert_eq!(s.total(), 4);
        assert_eq!(s.due_by(Duration::from_secs(100)), 4);
    }
}
