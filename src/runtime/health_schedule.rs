//! When a container's health check runs, and whether a failed probe counts.
//!
//! Docker's rules (`daemon/health.go`, Docker 25 and later;
//! <https://docs.docker.com/reference/dockerfile/#healthcheck>):
//! - the probe runs `interval` after the previous one ended (30 s by default),
//!   the first one `interval` after the start;
//! - while the container is still `starting` and within its `start_period`,
//!   the gap is `start_interval` instead (5 s by default), and a failed probe
//!   that began in the start period does not count towards `retries`.
//!
//! Under those rules a service that is ready 50 ms after its start is
//! reported healthy only one interval later, and everything that waits for
//! it (`depends_on` with `service_healthy`, `up --wait`) waits that long too.
//!
//! berth adds one rule for containers without a start period: while the
//! container is `starting` and its first regular probe is not yet due, it
//! probes early, [`FIRST_EARLY`] after the start and then at doubling gaps,
//! and an early failure does not count. A service therefore turns healthy
//! about when it is ready, and never turns unhealthy sooner than under
//! Docker's rules. From the first regular probe on, the schedule is Docker's.

use std::time::Duration;

use super::container::HealthConfig;

/// The gap before the first early probe; each further early gap doubles.
pub const FIRST_EARLY: Duration = Duration::from_millis(50);

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);

/// The timings of one container's health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub interval: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
}

impl Schedule {
    /// Docker's defaults for the zero values of a container's config.
    pub fn of(cfg: &HealthConfig) -> Schedule {
        let or = |ns: u64, default: Duration| {
            if ns == 0 {
                default
            } else {
                // Docker refuses intervals under 1 ms; so does the clock here.
                Duration::from_nanos(ns).max(Duration::from_millis(1))
            }
        };
        Schedule {
            interval: or(cfg.interval_ns, DEFAULT_INTERVAL),
            start_period: Duration::from_nanos(cfg.start_period_ns),
            start_interval: or(cfg.start_interval_ns, DEFAULT_START_INTERVAL),
        }
    }

    /// How long to wait before the next probe, `since_start` after the
    /// container started, with its health still `starting` or not, after
    /// `probes` probes.
    pub fn next(&self, since_start: Duration, starting: bool, probes: u32) -> Duration {
        if starting && since_start < self.start_period {
            return self.start_interval;
        }
        if starting && self.start_period.is_zero() && since_start < self.interval {
            let early = FIRST_EARLY.saturating_mul(1u32.checked_shl(probes).unwrap_or(u32::MAX));
            let regular = self.interval - since_start;
            return early.min(regular);
        }
        self.interval
    }

    /// Whether a failed probe that began `since_start` after the start
    /// counts towards `retries`, the health being `starting` or not.
    pub fn failure_counts(&self, since_start: Duration, starting: bool) -> bool {
        if !starting {
            return true;
        }
        if since_start < self.start_period {
            return false;
        }
        // An early probe: Docker would not have run it yet.
        !(self.start_period.is_zero() && since_start < self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn schedule(interval: u64, start_period: u64, start_interval: u64) -> Schedule {
        Schedule::of(&HealthConfig {
            interval_ns: interval * 1_000_000,
            start_period_ns: start_period * 1_000_000,
            start_interval_ns: start_interval * 1_000_000,
            ..Default::default()
        })
    }

    #[test]
    fn zero_values_take_dockers_defaults() {
        let s = schedule(0, 0, 0);
        assert_eq!(s.interval, Duration::from_secs(30));
        assert_eq!(s.start_interval, Duration::from_secs(5));
        assert_eq!(s.start_period, Duration::ZERO);
    }

    #[test]
    fn without_a_start_period_probes_early_until_the_first_regular_probe() {
        let s = schedule(1000, 0, 0);
        // (since start, probes so far) -> next gap
        let cases = [
            (0, 0, 50),
            (60, 1, 100),
            (170, 2, 200),
            (380, 3, 400),
            // The fifth gap (800 ms) would pass the first regular probe.
            (790, 4, 210),
        ];
        for (since, probes, want) in cases {
            assert_eq!(
                s.next(ms(since), true, probes),
                ms(want),
                "{since} ms, {probes}"
            );
        }
        // From the first regular probe on, Docker's interval.
        assert_eq!(s.next(ms(1000), true, 5), ms(1000));
        assert_eq!(s.next(ms(1500), true, 6), ms(1000));
        // Once healthy, no early probes.
        assert_eq!(s.next(ms(60), false, 1), ms(1000));
        // Many probes do not overflow the doubling.
        assert_eq!(s.next(ms(999), true, 40), ms(1));
    }

    #[test]
    fn a_start_period_keeps_dockers_start_interval() {
        let s = schedule(1000, 3000, 200);
        assert_eq!(s.next(ms(0), true, 0), ms(200));
        assert_eq!(s.next(ms(2900), true, 14), ms(200));
        assert_eq!(s.next(ms(3000), true, 15), ms(1000));
        assert_eq!(s.next(ms(100), false, 1), ms(1000));
    }

    #[test]
    fn which_failures_count() {
        let early = schedule(1000, 0, 0);
        assert!(!early.failure_counts(ms(60), true), "an early probe");
        assert!(
            early.failure_counts(ms(1000), true),
            "the first regular probe"
        );
        assert!(early.failure_counts(ms(60), false), "healthy before");
        let period = schedule(1000, 3000, 0);
        assert!(!period.failure_counts(ms(2999), true));
        assert!(
            period.failure_counts(ms(2999), false),
            "as Docker: only while starting"
        );
        assert!(period.failure_counts(ms(3000), true));
    }
}
