//! Append throughput and memory bound of the log store. Prints numbers; asserts nothing.

use std::time::Instant;
use stilt_logs::{Level, LogOptions, LogStore};

fn main() {
    let logs = LogStore::new(LogOptions::default());
    let n = 1_000_000;
    let start = Instant::now();
    for i in 0..n {
        logs.line(
            if i % 2 == 0 { "web" } else { "api" },
            "s",
            Level::Info,
            &format!("2026-11-23 request {i} served in 3ms"),
        );
    }
    let elapsed = start.elapsed();
    println!(
        "append: {n} lines in {:.1} ms ({:.0} lines/s)",
        elapsed.as_secs_f64() * 1e3,
        n as f64 / elapsed.as_secs_f64()
    );
    println!(
        "held: {:.1} MB (cap {:.1} MB)",
        logs.bytes() as f64 / 1e6,
        LogOptions::default().max_bytes as f64 / 1e6
    );
    let start = Instant::now();
    let read = logs.read(0, Some("web"));
    println!(
        "read one resource: {} lines in {:.1} ms",
        read.lines.len(),
        start.elapsed().as_secs_f64() * 1e3
    );
}
