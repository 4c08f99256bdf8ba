//! Latency histograms and the fairness of grants across clients.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Longest latency recorded exactly, in microseconds (an hour); longer ones saturate.
const MAX_RECORDED_US: u64 = 3_600_000_000;

/// Latencies in microseconds, 3 significant digits (HDR histogram).
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(
            Histogram::new_with_bounds(1, MAX_RECORDED_US, 3)
                .expect("constant histogram bounds are valid"),
        )
    }
}

impl Latencies {
    /// Records `count` operations that each took `took`.
    pub fn record_n(&mut self, took: Duration, count: u64) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        self.0.saturating_record_n(us, count);
    }

    pub fn record(&mut self, took: Duration) {
        self.record_n(took, 1);
    }

    pub fn merge(&mut self, other: &Latencies) {
        self.0
            .add(&other.0)
            .expect("histograms with the same bounds always add");
    }

    pub fn summary(&self) -> LatencySummary {
        let ms = |us: u64| us as f64 / 1000.0;
        if self.0.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.0.len(),
            p50_ms: ms(self.0.value_at_quantile(0.50)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            p999_ms: ms(self.0.value_at_quantile(0.999)),
            max_ms: ms(self.0.max()),
        }
    }
}

/// Percentiles of a set of latencies, in milliseconds (all 0 when nothing was recorded).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// Jain's fairness index of the grants each client got: (Σx)² / (n·Σx²). 1.0 when every
/// client got the same, 1/n when one client got everything; `None` for no grants at all.
pub fn jain_index(per_client: &[u64]) -> Option<f64> {
    let sum: f64 = per_client.iter().map(|&x| x as f64).sum();
    let sum_sq: f64 = per_client.iter().map(|&x| (x as f64) * (x as f64)).sum();
    if per_client.is_empty() || sum_sq == 0.0 {
        return None;
    }
    Some(sum * sum / (per_client.len() as f64 * sum_sq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn percentiles_of_a_uniform_spread() {
        let mut lat = Latencies::default();
        for ms in 1..=1000u64 {
            lat.record(Duration::from_millis(ms));
        }
        let s = lat.summary();
        assert_eq!(s.count, 1000);
        // Three significant digits: within 0.1% of the exact value.
        assert!(close(s.p50_ms, 500.0, 0.5), "{s:?}");
        assert!(close(s.p99_ms, 990.0, 1.0), "{s:?}");
        assert!(close(s.p999_ms, 999.0, 1.0), "{s:?}");
        assert!(close(s.max_ms, 1000.0, 1.0), "{s:?}");
    }

    #[test]
    fn a_rare_outlier_shows_in_the_tail_only() {
        let mut lat = Latencies::default();
        lat.record_n(Duration::from_micros(200), 9_980);
        lat.record_n(Duration::from_millis(50), 20);
        let s = lat.summary();
        assert!(close(s.p50_ms, 0.2, 0.001), "{s:?}");
        assert!(close(s.p99_ms, 0.2, 0.001), "{s:?}");
        assert!(close(s.p999_ms, 50.0, 0.1), "{s:?}");
        assert!(close(s.max_ms, 50.0, 0.1), "{s:?}");
    }

    #[test]
    fn merged_histograms_count_everything() {
        let mut a = Latencies::default();
        let mut b = Latencies::default();
        a.record_n(Duration::from_millis(1), 3);
        b.record_n(Duration::from_millis(9), 1);
        a.merge(&b);
        let s = a.summary();
        assert_eq!(s.count, 4);
        assert!(close(s.p50_ms, 1.0, 0.01), "{s:?}");
        assert!(close(s.max_ms, 9.0, 0.01), "{s:?}");
    }

    #[test]
    fn sub_microsecond_and_huge_latencies_are_kept_in_range() {
        let mut lat = Latencies::default();
        lat.record(Duration::from_nanos(10));
        lat.record(Duration::from_secs(100_000));
        let s = lat.summary();
        assert_eq!(s.count, 2);
        assert!(s.p50_ms > 0.0);
        assert!(s.max_ms >= 3_600_000.0 * 0.999, "{s:?}");
    }

    #[test]
    fn an_empty_histogram_summarises_to_zeroes() {
        assert_eq!(Latencies::default().summary(), LatencySummary::default());
    }

    #[test]
    fn jain_index_is_one_for_equal_shares() {
        assert_eq!(jain_index(&[5, 5, 5, 5]), Some(1.0));
    }

    #[test]
    fn jain_index_is_one_over_n_when_one_client_gets_everything() {
        let j = jain_index(&[0, 0, 0, 12]).unwrap();
        assert!(close(j, 0.25, 1e-12), "{j}");
    }

    #[test]
    fn jain_index_of_an_uneven_split() {
        // (1+2+3)² / (3·(1+4+9)) = 36/42.
        let j = jain_index(&[1, 2, 3]).unwrap();
        assert!(close(j, 36.0 / 42.0, 1e-12), "{j}");
    }

    #[test]
    fn jain_index_is_undefined_without_grants() {
        assert_eq!(jain_index(&[]), None);
        assert_eq!(jain_index(&[0, 0]), None);
    }
}
