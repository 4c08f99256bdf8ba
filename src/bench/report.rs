//! The final table (or CSV), one row per workload, printed as each workload ends.

use super::stats::jain_index;
use super::workload::Outcome;

pub const CSV_HEADER: &str = "\"workload\",\"clients\",\"pipeline\",\"ops\",\"seconds\",\"ops_per_sec\",\"p50_ms\",\"p99_ms\",\"p999_ms\",\"max_ms\",\"errors\",\"jain\",\"min_per_client\",\"max_per_client\",\"note\"";

pub fn table_header() -> String {
    format!(
        "{:<16} {:>10} {:>8} {:>8} {:>8} {:>8} {:>9} {:>6} {:>6} {:>14}  notes",
        "workload",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "ops",
        "errors",
        "jain",
        "min/max/client"
    )
}

/// Fairness of the ops (grants) across clients: Jain's index, fewest, most.
fn fairness(outcome: &Outcome) -> (Option<f64>, u64, u64) {
    let min = outcome.per_client.iter().copied().min().unwrap_or(0);
    let max = outcome.per_client.iter().copied().max().unwrap_or(0);
    (jain_index(&outcome.per_client), min, max)
}

pub fn table_row(o: &Outcome) -> String {
    if o.skipped {
        return format!("{:<16} {:>10}  {}", o.workload.name(), "-", o.note);
    }
    let (jain, min, max) = fairness(o);
    let jain = jain.map_or("-".to_string(), |j| format!("{j:.4}"));
    format!(
        "{:<16} {:>10.0} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>9} {:>6} {:>6} {:>14}  {}",
        o.workload.name(),
        o.ops_per_sec(),
        o.latency.p50_ms,
        o.latency.p99_ms,
        o.latency.p999_ms,
        o.latency.max_ms,
        o.ops,
        o.errors,
        jain,
        format!("{min}/{max}"),
        o.note
    )
}

/// Quotes a CSV field as redis-benchmark does (always), doubling inner quotes.
fn quoted(field: &str) -> String {
    format!("\"{}\"", field.replace('"', "\"\""))
}

pub fn csv_row(o: &Outcome) -> String {
    let (jain, min, max) = fairness(o);
    [
        o.workload.name().to_string(),
        o.clients.to_string(),
        o.pipeline.to_string(),
        o.ops.to_string(),
        format!("{:.3}", o.elapsed.as_secs_f64()),
        format!("{:.1}", o.ops_per_sec()),
        format!("{:.3}", o.latency.p50_ms),
        format!("{:.3}", o.latency.p99_ms),
        format!("{:.3}", o.latency.p999_ms),
        format!("{:.3}", o.latency.max_ms),
        o.errors.to_string(),
        jain.map_or(String::new(), |j| format!("{j:.4}")),
        min.to_string(),
        max.to_string(),
        o.note.clone(),
    ]
    .iter()
    .map(|f| quoted(f))
    .collect::<Vec<_>>()
    .join(",")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bench::args::Workload;
    use crate::bench::stats::LatencySummary;

    fn outcome() -> Outcome {
        Outcome {
            workload: Workload::LockContended,
            clients: 4,
            pipeline: 1,
            ops: 40,
            elapsed: Duration::from_secs(2),
            latency: LatencySummary {
                count: 40,
                p50_ms: 1.5,
                p99_ms: 3.25,
                p999_ms: 4.0,
                max_ms: 4.125,
            },
            per_client: vec![10, 10, 20, 0],
            errors: 0,
            first_error: None,
            note: "resources=8, \"x\"".to_string(),
            skipped: false,
        }
    }

    #[test]
    fn csv_row_has_every_column_quoted() {
        let row = csv_row(&outcome());
        assert_eq!(
            row,
            "\"lock-contended\",\"4\",\"1\",\"40\",\"2.000\",\"20.0\",\"1.500\",\"3.250\",\
             \"4.000\",\"4.125\",\"0\",\"0.6667\",\"0\",\"20\",\"resources=8, \"\"x\"\"\""
        );
        assert_eq!(CSV_HEADER.split(',').count(), 15);
    }

    #[test]
    fn table_row_shows_rate_latency_and_a_starved_client() {
        let row = table_row(&outcome());
        assert!(row.starts_with("lock-contended"), "{row}");
        assert!(row.contains(" 20 "), "{row}");
        assert!(row.contains("3.250"), "{row}");
        assert!(row.contains("0.6667"), "{row}");
        assert!(row.contains("0/20"), "{row}");
    }

    #[test]
    fn a_skipped_workload_says_why() {
        let row = table_row(&Outcome::skipped(Workload::Lock, 4, "no LOCK command"));
        assert!(row.contains("skipped: no LOCK command"), "{row}");
    }
}
