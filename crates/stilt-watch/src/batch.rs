//! Adaptive batching of changed paths.
//!
//! Tilt waits for 200 ms of quiet after every event (and flushes after at
//! most 10 s). Stilt closes a batch as soon as the event stream has been
//! quiet for a short, *adaptive* window, keeps extending it while events
//! keep arriving, and always closes it [`BatchConfig::max`] after it opened:
//!
//! * the quiet window starts at [`BatchConfig::quiet`] (default **5 ms**), so
//!   a single save (a handful of events within a millisecond or two) is
//!   delivered about 5 ms after the last event;
//! * a save in place says when it is done: the writer closes the file
//!   (`IN_CLOSE_WRITE`). Once every path of a young batch has had such a
//!   *settled* event after its last other event, the window shrinks to
//!   [`BatchConfig::settled_quiet`] (default **0.5 ms**, slept precisely,
//!   as tokio's timer ticks in whole milliseconds), so an editor's save is
//!   delivered under a millisecond after its close, while a program writing
//!   file after file (tens of microseconds apart) keeps its batch. A path
//!   still being written (a `Modify` with no close yet, a `mkdir`, a
//!   `chmod`) keeps the 5 ms. Only the first batch of a *chain* closes
//!   early: a batch that opens within `quiet` of the previous one closing
//!   gets the usual windows, so a writer that stalls right after its first
//!   file costs at most one extra batch;
//! * once a batch holds [`BatchConfig::burst_events`] events (default 32,
//!   far more than an editor's save produces), it is a *burst*, and the
//!   window grows with the burst's age, as a fifth of the time between the
//!   burst's first and latest event, up to [`BatchConfig::max_quiet`]
//!   (default **100 ms**). A burst that has lasted 300 ms must pause for
//!   60 ms to close. Measured on a busy 2-core machine, a process creating
//!   10,000 files is descheduled for 5–30 ms many times; a fixed 5 ms window
//!   cut such a burst into half a dozen batches, the growing one keeps it
//!   (nearly) whole and costs at most `max_quiet` at the end of a long burst.
//!   A burst continues across batches: when the next event arrives within
//!   `max_quiet` of a burst batch closing, the new batch keeps the burst's
//!   age. Sparse events (saves, even many in a row) always get the 5 ms
//!   window;
//! * the cap [`BatchConfig::max`] is **2 s**. It only matters when events
//!   never pause, i.e. a long burst (a `git checkout`, an `npm install`) or
//!   a process that writes into the tree non-stop. A 10,000-file checkout
//!   takes well under a second on an idle machine, so 2 s keeps it whole
//!   with 2x headroom; for a non-stop writer the cap is the worst-case
//!   latency of a real save, and Tilt's 10 s is far too long for an
//!   interactive loop. A burst longer than 2 s arrives as consecutive
//!   batches, each complete and ordered.
//!
//! The batcher also will not close a batch on quiet while the watcher still
//! has raw events it has not routed yet (the "in flight" counter), so a slow
//! router (for example while scanning a freshly created directory) does not
//! split a burst.
//!
//! All timing uses `tokio::time`, so tests can run with a paused clock.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::WatchError;

/// Batching parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Shortest quiet window: a young batch closes once no event has
    /// arrived for this long.
    pub quiet: Duration,
    /// Quiet window of a young batch whose every path has settled (its
    /// writer closed it), unless the batch opened within `quiet` of the
    /// previous one closing.
    pub settled_quiet: Duration,
    /// Longest quiet window (the window grows as a fifth of the burst's age).
    pub max_quiet: Duration,
    /// A batch with at least this many events is a burst (growing window).
    pub burst_events: usize,
    /// Close the batch at the latest this long after it opened.
    pub max: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            quiet: Duration::from_millis(5),
            settled_quiet: Duration::from_micros(500),
            max_quiet: Duration::from_millis(100),
            burst_events: 32,
            max: Duration::from_secs(2),
        }
    }
}

impl BatchConfig {
    /// A fixed quiet window (no growth), e.g. Tilt's 200 ms / 10 s.
    pub fn fixed(quiet: Duration, max: Duration) -> Self {
        BatchConfig {
            quiet,
            settled_quiet: quiet,
            max_quiet: quiet,
            burst_events: usize::MAX,
            max,
        }
    }

    /// The quiet window for a batch whose latest event came `age` after it opened.
    pub fn quiet_for(&self, age: Duration) -> Duration {
        (age / 5).clamp(self.quiet, self.max_quiet.max(self.quiet))
    }
}

/// A set of changed paths delivered together.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Changed paths (files and directories that were created, modified,
    /// deleted, or renamed from/to), de-duplicated and sorted.
    pub paths: Vec<PathBuf>,
    /// When the first event of this batch was seen by the watcher.
    pub first_event: Instant,
    /// When the batch was closed (just before delivery).
    pub closed: Instant,
    /// Wall-clock time of `first_event`, for status timestamps.
    pub first_event_wall: SystemTime,
    /// The kernel event queue overflowed; `paths` include the result of the
    /// rescan that followed (see the watcher docs for what it reports).
    pub rescanned: bool,
    /// Runtime errors (for example the inotify watch limit reached while
    /// adding a new directory). The watch keeps running.
    pub errors: Vec<WatchError>,
}

/// What the watcher feeds to a batcher.
#[derive(Debug, Clone)]
pub enum Change {
    Path {
        path: PathBuf,
        at: Instant,
        wall: SystemTime,
        /// The event says the writer is done with this path: it closed it
        /// after writing. Renames and deletions are often the first step of a
        /// larger change, so they do not settle.
        settled: bool,
    },
    Rescan {
        at: Instant,
        wall: SystemTime,
    },
    Error {
        error: WatchError,
        at: Instant,
        wall: SystemTime,
    },
}

impl Change {
    /// A path change observed now.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Self::observed(path, false)
    }
    /// A writer closing `path`, observed now.
    pub fn closed(path: impl Into<PathBuf>) -> Self {
        Self::observed(path, true)
    }
    fn observed(path: impl Into<PathBuf>, settled: bool) -> Self {
        Change::Path {
            path: path.into(),
            at: Instant::now(),
            wall: SystemTime::now(),
            settled,
        }
    }
    fn at(&self) -> (Instant, SystemTime) {
        match self {
            Change::Path { at, wall, .. }
            | Change::Rescan { at, wall }
            | Change::Error { at, wall, .. } => (*at, *wall),
        }
    }
}

struct Builder {
    paths: BTreeSet<PathBuf>,
    /// Paths whose latest event did not settle them (see [`Change::Path`]).
    /// Kept only until the batch is a burst: a burst's window ignores it.
    unsettled: BTreeSet<PathBuf>,
    /// Events so far (a burst carried over from the previous batch counts
    /// as `burst_events` from the start).
    events: usize,
    burst_events: usize,
    first: Instant,
    first_wall: SystemTime,
    rescanned: bool,
    errors: Vec<WatchError>,
}

impl Builder {
    fn new(c: Change, carries_burst: bool, burst_events: usize) -> Self {
        let (first, first_wall) = c.at();
        let mut b = Builder {
            paths: BTreeSet::new(),
            unsettled: BTreeSet::new(),
            events: if carries_burst {
                burst_events.saturating_sub(1)
            } else {
                0
            },
            burst_events,
            first,
            first_wall,
            rescanned: false,
            errors: Vec::new(),
        };
        b.add(c);
        b
    }
    fn add(&mut self, c: Change) {
        let (at, wall) = c.at();
        if at < self.first {
            self.first = at;
            self.first_wall = wall;
        }
        self.events = self.events.saturating_add(1);
        match c {
            Change::Path { path, settled, .. } => {
                if !self.is_burst() {
                    if settled {
                        self.unsettled.remove(&path);
                    } else {
                        self.unsettled.insert(path.clone());
                    }
                }
                self.paths.insert(path);
            }
            Change::Rescan { .. } => self.rescanned = true,
            Change::Error { error, .. } => self.errors.push(error),
        }
    }
    fn is_burst(&self) -> bool {
        self.events >= self.burst_events
    }
    fn settled(&self) -> bool {
        self.unsettled.is_empty() && !self.rescanned
    }
    fn finish(self) -> Batch {
        Batch {
            paths: self.paths.into_iter().collect(),
            first_event: self.first,
            closed: Instant::now(),
            first_event_wall: self.first_wall,
            rescanned: self.rescanned,
            errors: self.errors,
        }
    }
}

/// Counts raw events the watcher has accepted but not routed yet. While it
/// is non-zero, batches are not closed on quiet (only on the cap).
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    pub fn incr(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    pub fn decr(&self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A tokio channel allocates its first block of 32 slots when it is made, and every watch has a
/// batcher with an input and an output channel: with `Change` and `Batch` inline those blocks
/// were ~6 KB per idle watch, 6 MB at 1,000 resources. Boxed, a block holds 32 pointers.
pub fn change_channel() -> (ChangeSender, ChangeReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (ChangeSender(tx), ChangeReceiver(rx))
}

/// The sending half of a batcher's input.
#[derive(Clone, Debug)]
pub struct ChangeSender(mpsc::UnboundedSender<Box<Change>>);

impl ChangeSender {
    pub fn send(&self, change: Change) -> Result<(), mpsc::error::SendError<Box<Change>>> {
        self.0.send(Box::new(change))
    }
}

/// The receiving half of a batcher's input.
#[derive(Debug)]
pub struct ChangeReceiver(mpsc::UnboundedReceiver<Box<Change>>);

impl ChangeReceiver {
    /// Cancel-safe, like the channel's own `recv`.
    pub async fn recv(&mut self) -> Option<Change> {
        self.0.recv().await.map(|c| *c)
    }

    pub fn try_recv(&mut self) -> Option<Change> {
        self.0.try_recv().ok().map(|c| *c)
    }
}

/// Run a batcher until `input` closes (after flushing) or `output` is dropped.
pub async fn run_batcher(
    mut input: ChangeReceiver,
    output: mpsc::Sender<Box<Batch>>,
    config: BatchConfig,
    in_flight: InFlight,
) {
    // A burst goes on across batches: when the next event comes soon after a
    // burst batch closed, the next batch keeps the burst's age.
    let mut burst: Option<(Instant, Instant)> = None; // (burst opened, burst batch closed)
    let mut last_closed: Option<Instant> = None;
    loop {
        let Some(first) = input.recv().await else {
            return;
        };
        let opened = Instant::now();
        let chained = last_closed.is_some_and(|c| opened.duration_since(c) <= config.quiet);
        let cap = opened + config.max;
        let (burst_opened, carries_burst) = match burst.take() {
            Some((start, closed)) if opened.duration_since(closed) <= config.max_quiet => {
                (start, true)
            }
            _ => (opened, false),
        };
        let mut batch = Builder::new(first, carries_burst, config.burst_events);
        let mut last = opened;
        let mut closed_input = false;
        // Set when the quiet timer fires: a sub-millisecond sleep is slept in
        // real time, which a paused test clock does not show.
        let mut quiet_fired = false;
        loop {
            // Take everything already queued without touching the timer.
            while let Some(c) = input.try_recv() {
                batch.add(c);
                last = Instant::now();
                quiet_fired = false;
            }
            let now = Instant::now();
            if now >= cap {
                break;
            }
            let quiet = if batch.is_burst() {
                config.quiet_for(last - burst_opened)
            } else if batch.settled() && !chained {
                config.settled_quiet
            } else {
                config.quiet
            };
            let quiet_at = last + quiet;
            let quiet_elapsed = quiet_fired || now >= quiet_at;
            if quiet_elapsed && in_flight.get() == 0 {
                break;
            }
            let wake = if quiet_elapsed {
                // Quiet elapsed but the router still has work: re-check soon.
                (now + config.quiet).min(cap)
            } else {
                quiet_at.min(cap)
            };
            tokio::select! {
                biased;
                c = input.recv() => match c {
                    Some(c) => {
                        batch.add(c);
                        last = Instant::now();
                        quiet_fired = false;
                    }
                    None => {
                        closed_input = true;
                        break;
                    }
                },
                _ = sleep_until(wake) => quiet_fired |= wake == quiet_at,
            }
        }
        if batch.is_burst() {
            burst = Some((burst_opened, Instant::now()));
        }
        last_closed = Some(Instant::now());
        if output.send(Box::new(batch.finish())).await.is_err() || closed_input {
            return;
        }
    }
}

/// `tokio::time::sleep_until`, but precise below a millisecond: tokio's timer
/// rounds a deadline up to its next 1 ms tick, which would double the
/// settled window.
async fn sleep_until(deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return;
    }
    if left < Duration::from_millis(1) {
        // A blocking-pool thread sleeps (nanosleep) without holding a worker.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(left)).await;
    } else {
        tokio::time::sleep_until(deadline).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawn(config: BatchConfig) -> (ChangeSender, mpsc::Receiver<Box<Batch>>, InFlight) {
        let (tx, rx) = change_channel();
        let (otx, orx) = mpsc::channel(16);
        let inflight = InFlight::default();
        tokio::spawn(run_batcher(rx, otx, config, inflight.clone()));
        (tx, orx, inflight)
    }

    fn p(s: &str) -> Change {
        Change::path(s)
    }

    #[tokio::test(start_paused = true)]
    async fn single_save_is_delivered_after_the_quiet_window() {
        let (tx, mut rx, _) = spawn(BatchConfig::default());
        let t0 = Instant::now();
        tx.send(p("/a")).unwrap();
        let b = rx.recv().await.unwrap();
        assert_eq!(b.paths, vec![PathBuf::from("/a")]);
        assert_eq!(b.first_event, t0);
        assert_eq!(b.closed - t0, Duration::from_millis(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_save_closed_by_its_writer_is_delivered_after_the_settled_window() {
        let (tx, mut rx, _) = spawn(BatchConfig::default());
        let t0 = Instant::now();
        tx.send(p("/a")).unwrap();
        tx.send(Change::closed("/a")).unwrap();
        let b = rx.recv().await.unwrap();
        assert_eq!(b.paths, vec![PathBuf::from("/a")]);
        // The 0.5 ms are slept in real time; the paused clock shows none of it.
        assert!(b.closed - t0 < Duration::from_millis(1));
        // A batch right behind it (a checkout going on) waits the full window.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let t1 = Instant::now();
        tx.send(Change::closed("/b")).unwrap();
        let b = rx.recv().await.unwrap();
        assert_eq!(b.paths, vec![PathBuf::from("/b")]);
        assert_eq!(b.closed - t1, Duration::from_millis(5));
        // A later save, after a pause, is early again.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t2 = Instant::now();
        tx.send(Change::closed("/c")).unwrap();
        assert!(rx.recv().await.unwrap().closed - t2 < Duration::from_millis(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_settled_batch_waits_for_events_the_router_has_not_routed() {
        let (tx, mut rx, inflight) = spawn(BatchConfig::default());
        let t0 = Instant::now();
        inflight.incr();
        tx.send(Change::closed("/a")).unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
        tx.send(p("/b")).unwrap();
        inflight.decr();
        let b = rx.recv().await.unwrap();
        assert_eq!(b.paths, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(b.closed - t0, Duration::from_millis(6));
    }

    #[tokio::test(start_paused = true)]
    async fn a_path_still_being_written_keeps_the_full_window() {
        let (tx, mut rx, _) = spawn(BatchConfig::default());
        let t0 = Instant::now();
        tx.send(p("/a")).unwrap();
        tx.send(Change::closed("/b")).unwrap();
        // The close of /b does not settle /a, whose writer is still at work.
        tokio::time::sleep(Duration::from_millis(3)).await;
        tx.send(Change::closed("/a")).unwrap();
        let b = rx.recv().await.unwrap();
        assert_eq!(b.paths, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        assert!(b.closed - t0 < Duration::from_millis(4));
        // A write after the close unsettles the path again.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t1 = Instant::now();
        tx.send(Change::closed("/c")).unwrap();
        tx.send(p("/c")).unwrap();
        let b = rx.recv().await.unwrap();
        assert_eq!(b.paths, vec![PathBuf::from("/c")]);
        assert_eq!(b.closed - t1, Duration::from_millis(5));
    }

    #[tokio::test(start_paused = true)]
    async fn events_closer_than_quiet_extend_the_batch() {
        let (tx, mut rx, _) = spawn(BatchConfig::default());
        let t0 = Instant::now();
        for i in 0..50 {
            tx.send(p(&format!("/f{i}"))).unwrap();
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let b = rx.recv().await.unwrap();
        assert_eq!(b.paths.len(), 50);
        // last event at 147 ms; the window has grown to 29.4 ms (timer
        // resolution is 1 ms)
        let took = b.closed - t0;
        assert!(
            took >= Duration::from_micros(176_400) && took <= Duration::from_millis(178),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hiccup_in_a_long_burst_does_not_split() {
        let (tx, mut rx, _) = spawn(BatchConfig::default());
        for i in 0..300 {
            tx.send(p(&format!("/a{i}"))).unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // descheduled writer: 20 ms gap, well above 5 ms
        tokio::time::sleep(Duration::from_millis(20)).await;
        for i in 0..100 {
            tx.send(p(&format!("/b{i}"))).unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let b = rx.recv().await.unwrap();
        assert_eq!(b.paths.len(), 400);
    }

    #[tokio::test(start_paused = true)]
    async fn burst_age_carries_over_a_cap_split() {
        let (tx, mut rx, _) = spawn(BatchConfig::default());
        // 2.5 s of events every 1 ms, a 20 ms hiccup, then more.
        for i in 0..2500 {
            tx.send(p(&format!("/a{i}"))).unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        for i in 0..100 {
            tx.send(p(&format!("/b{i}"))).unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let first = rx.recv().await.unwrap();
        let second = rx.recv().await.unwrap();
        assert_eq!(first.paths.len() + second.paths.len(), 2600);
    }

    #[tokio::test(start_paused = true)]
    async fn burst_age_carries_over_a_quiet_split() {
        let (tx, mut rx, _) = spawn(BatchConfig::default());
        for i in 0..100 {
            tx.send(p(&format!("/a{i}"))).unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // 25 ms > the 20 ms window of a 100 ms burst: splits
        tokio::time::sleep(Duration::from_millis(25)).await;
        for i in 0..50 {
            tx.send(p(&format!("/b{i}"))).unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // 15 ms would split a fresh 50 ms batch (10 ms window) but not the
        // continuing 175 ms burst (35 ms window)
        tokio::time::sleep(Duration::from_millis(15)).await;
        for i in 0..10 {
            tx.send(p(&format!("/c{i}"))).unwrap();
        }
        assert_eq!(rx.recv().await.unwrap().paths.len(), 100);
        assert_eq!(rx.recv().await.unwrap().paths.len(), 60);
    }

    #[tokio::test(start_paused = true)]
    async fn rapid_separate_saves_stay_fast() {
        let (tx, mut rx, _) = spawn(BatchConfig::default());
        for i in 0..20 {
            let t0 = Instant::now();
            for _ in 0..3 {
                tx.send(p(&format!("/s{i}"))).unwrap();
            }
            let b = rx.recv().await.unwrap();
            assert_eq!(b.paths.len(), 1);
            assert_eq!(b.closed - t0, Duration::from_millis(5), "save {i}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn quiet_window_growth() {
        let c = BatchConfig::default();
        assert_eq!(c.quiet_for(Duration::ZERO), Duration::from_millis(5));
        assert_eq!(
            c.quiet_for(Duration::from_millis(200)),
            Duration::from_millis(40)
        );
        assert_eq!(
            c.quiet_for(Duration::from_secs(5)),
            Duration::from_millis(100)
        );
        let f = BatchConfig::fixed(Duration::from_millis(200), Duration::from_secs(10));
        assert_eq!(
            f.quiet_for(Duration::from_secs(5)),
            Duration::from_millis(200)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_longer_than_quiet_splits() {
        let (tx, mut rx, _) = spawn(BatchConfig::default());
        tx.send(p("/a")).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send(p("/b")).unwrap();
        assert_eq!(rx.recv().await.unwrap().paths, vec![PathBuf::from("/a")]);
        assert_eq!(rx.recv().await.unwrap().paths, vec![PathBuf::from("/b")]);
    }

    #[tokio::test(start_paused = true)]
    async fn continuous_stream_is_capped() {
        let cfg = BatchConfig::default();
        let (tx, mut rx, _) = spawn(cfg);
        let t0 = Instant::now();
        let feeder = tokio::spawn(async move {
            for i in 0..2000 {
                if tx.send(p(&format!("/f{i}"))).is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        let b = rx.recv().await.unwrap();
        assert_eq!(b.closed - t0, cfg.max);
        assert!(
            b.paths.len() >= 990 && b.paths.len() <= 1010,
            "{}",
            b.paths.len()
        );
        feeder.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn duplicates_are_merged_and_sorted() {
        let (tx, mut rx, _) = spawn(BatchConfig::default());
        for s in ["/b", "/a", "/b", "/a"] {
            tx.send(p(s)).unwrap();
        }
        let b = rx.recv().await.unwrap();
        assert_eq!(b.paths, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_work_holds_the_batch_open() {
        let (tx, mut rx, inflight) = spawn(BatchConfig::default());
        let t0 = Instant::now();
        inflight.incr();
        tx.send(p("/a")).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(p("/b")).unwrap();
        inflight.decr();
        let b = rx.recv().await.unwrap();
        assert_eq!(b.paths.len(), 2);
        assert!(b.closed - t0 >= Duration::from_millis(55));
    }

    #[tokio::test(start_paused = true)]
    async fn rescan_and_errors_are_carried() {
        let (tx, mut rx, _) = spawn(BatchConfig::default());
        tx.send(Change::Rescan {
            at: Instant::now(),
            wall: SystemTime::now(),
        })
        .unwrap();
        tx.send(Change::Error {
            error: WatchError::Io {
                path: "/x".into(),
                message: "boom".into(),
            },
            at: Instant::now(),
            wall: SystemTime::now(),
        })
        .unwrap();
        let b = rx.recv().await.unwrap();
        assert!(b.rescanned);
        assert_eq!(b.errors.len(), 1);
        assert!(b.paths.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn custom_quiet_window() {
        let cfg = BatchConfig::fixed(Duration::from_millis(50), Duration::from_secs(10));
        let (tx, mut rx, _) = spawn(cfg);
        let t0 = Instant::now();
        tx.send(p("/a")).unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        tx.send(p("/b")).unwrap();
        let b = rx.recv().await.unwrap();
        assert_eq!(b.paths.len(), 2);
        assert_eq!(b.closed - t0, Duration::from_millis(80));
    }

    #[tokio::test(start_paused = true)]
    async fn closing_input_flushes() {
        let (tx, mut rx, _) = spawn(BatchConfig::default());
        tx.send(p("/a")).unwrap();
        drop(tx);
        assert_eq!(rx.recv().await.unwrap().paths.len(), 1);
        assert!(rx.recv().await.is_none());
    }
}
