//! The bounded queue of encoded events and the batches cut from it.
//!
//! The queue *is* its storage format: the encoded events, oldest first, one per line. The
//! JSON encoder escapes every control character, so a newline never occurs inside an
//! event. Persisting is handing over that text, restoring is taking it back, and a batch
//! body is a run of lines joined by commas; no JSON decoder and no per-event allocation.
//!
//! Events are addressed by position: requests and beacons always take a run of lines at a
//! known position, and the tracker keeps those positions right when lines go (see
//! `Tracker`).

use alloc::string::String;

use crate::json::{write_str, write_u64};

/// The collector takes at most 100 events per request.
pub const MAX_BATCH_EVENTS: usize = 100;
/// `sendBeacon` and keepalive `fetch` share a 64 KiB in-flight budget per page; batches
/// stay well under it so an unload beacon still fits next to a request in flight.
pub const MAX_BATCH_BYTES: usize = 24 * 1024;

/// A request body and how many events it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub count: usize,
    pub body: String,
}

#[derive(Debug)]
pub struct Queue {
    /// Encoded events, oldest first, separated by `\n`.
    lines: String,
    len: usize,
    capacity: usize,
    /// Events dropped because the queue was full (oldest first) or unreadable on restore.
    pub dropped: u64,
    /// When the oldest unsent event was queued: the flush timer runs from here.
    pub waiting_since: Option<u64>,
}

impl Queue {
    pub fn new(capacity: usize) -> Self {
        Queue {
            lines: String::new(),
            len: 0,
            capacity: capacity.max(1),
            dropped: 0,
            waiting_since: None,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Appends an encoded event. When full, the oldest event goes first (recent behaviour
    /// is worth more than old, and the queue must stay small enough for localStorage);
    /// returns whether that happened.
    pub fn push(&mut self, json: &str, now: u64) -> bool {
        let full = self.len >= self.capacity;
        if full {
            self.remove(0, 1);
            self.dropped += 1;
        }
        if self.len > 0 {
            self.lines.push('\n');
        }
        self.lines.push_str(json);
        self.len += 1;
        self.waiting_since.get_or_insert(now);
        full
    }

    /// Byte offset where line `n` starts (the end of the text for `n >= len`).
    fn offset(&self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        self.lines
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .nth(n - 1)
            .map_or(self.lines.len(), |(i, _)| i + 1)
    }

    /// The events from position `skip` on, as one request body of at most `max_events`
    /// events and [`MAX_BATCH_BYTES`] (one event always fits, whatever its size).
    pub fn batch(&self, skip: usize, max_events: usize, site: &str, sent_at: u64) -> Option<Batch> {
        let mut body = String::with_capacity(256);
        body.push_str("{\"site\":");
        write_str(&mut body, site);
        body.push_str(",\"sentAt\":");
        write_u64(&mut body, sent_at);
        body.push_str(",\"events\":[");
        let mut count = 0;
        let rest = self.lines.get(self.offset(skip)..).unwrap_or_default();
        for line in crate::text::split(rest, b'\n').filter(|l| !l.is_empty()) {
            if count == max_events || (count > 0 && body.len() + line.len() + 3 > MAX_BATCH_BYTES) {
                break;
            }
            if count > 0 {
                body.push(',');
            }
            body.push_str(line);
            count += 1;
        }
        body.push_str("]}");
        (count > 0).then_some(Batch { count, body })
    }

    /// Removes `count` events from position `start`.
    pub fn remove(&mut self, start: usize, count: usize) {
        let count = count.min(self.len.saturating_sub(start));
        if count == 0 {
            return;
        }
        let (from, to) = (self.offset(start), self.offset(start + count));
        // Remove the separator on one side too: the one after a run, or before it at the end.
        let (from, to) = if to < self.lines.len() || from == 0 {
            (from, to)
        } else {
            (from - 1, to)
        };
        let mut kept = String::with_capacity(self.lines.len() - (to - from));
        kept.push_str(self.lines.get(..from).unwrap_or_default());
        kept.push_str(self.lines.get(to..).unwrap_or_default());
        self.lines = kept;
        self.len -= count;
        if self.len == 0 {
            self.clear();
        }
    }

    pub fn clear(&mut self) {
        self.lines.clear();
        self.len = 0;
        self.waiting_since = None;
    }

    /// The queue as stored in localStorage.
    pub fn to_storage(&self) -> &str {
        &self.lines
    }

    /// Queues events saved by an earlier page; lines that are not an encoded event
    /// (another script's data, a cut-off write) are skipped and counted as dropped. They
    /// are due at once: they already waited. Returns how many were skipped.
    pub fn restore(&mut self, stored: &str) -> u64 {
        let mut skipped = 0;
        for line in crate::text::split(stored, b'\n').filter(|l| !l.is_empty()) {
            if line.starts_with("{\"event\":") && line.ends_with('}') {
                self.push(line, 0);
            } else {
                skipped += 1;
            }
        }
        self.dropped += skipped;
        skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn ev(n: usize) -> String {
        format!("{{\"event\":\"e{n}\"}}")
    }

    fn names(body: &str) -> Vec<String> {
        let v: Value = serde_json::from_str(body).unwrap();
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect()
    }

    fn all(q: &Queue) -> Vec<String> {
        q.batch(0, 1000, "s", 0).map_or(vec![], |b| names(&b.body))
    }

    #[test]
    fn full_queue_drops_oldest_and_counts() {
        let mut q = Queue::new(3);
        let dropped: Vec<bool> = (0..5).map(|i| q.push(&ev(i), 10)).collect();
        assert_eq!(dropped, [false, false, false, true, true]);
        assert_eq!((q.len(), q.dropped), (3, 2));
        assert_eq!(all(&q), ["e2", "e3", "e4"]);
    }

    #[test]
    fn batch_body_shape_and_limits() {
        let mut q = Queue::new(500);
        for i in 0..150 {
            q.push(&ev(i), 10);
        }
        let b = q
            .batch(0, MAX_BATCH_EVENTS, "example.com", 1_701_234_567_890)
            .unwrap();
        let v: Value = serde_json::from_str(&b.body).unwrap();
        assert_eq!(v["site"], "example.com");
        assert_eq!(v["sentAt"], 1_701_234_567_890u64);
        assert_eq!(b.count, 100);
        let next = q.batch(100, MAX_BATCH_EVENTS, "s", 1).unwrap();
        assert_eq!(next.count, 50);
        assert_eq!(names(&next.body)[0], "e100");
        assert_eq!(q.batch(150, MAX_BATCH_EVENTS, "s", 1), None);
    }

    #[test]
    fn batch_respects_byte_limit_but_always_takes_one() {
        let mut q = Queue::new(100);
        let big = format!("{{\"event\":\"{}\"}}", "x".repeat(MAX_BATCH_BYTES));
        q.push(&big, 0);
        q.push(&ev(1), 0);
        let b = q.batch(0, 100, "s", 0).unwrap();
        assert_eq!(b.count, 1);
        assert_eq!(q.batch(1, 100, "s", 0).unwrap().count, 1);
        let mut q = Queue::new(1000);
        for _ in 0..100 {
            q.push(&format!("{{\"event\":\"{}\"}}", "y".repeat(1000)), 0);
        }
        let b = q.batch(0, 100, "s", 0).unwrap();
        assert!(b.body.len() <= MAX_BATCH_BYTES, "{}", b.body.len());
        assert!(b.count > 10 && b.count < 100);
    }

    #[test]
    fn empty_queue_has_no_batch() {
        assert_eq!(Queue::new(5).batch(0, 100, "s", 0), None);
    }

    #[test]
    fn remove_runs_anywhere() {
        let mut q = Queue::new(10);
        for i in 0..6 {
            q.push(&ev(i), 7);
        }
        q.remove(2, 2);
        assert_eq!(all(&q), ["e0", "e1", "e4", "e5"]);
        q.remove(3, 5); // past the end: only what exists
        assert_eq!(all(&q), ["e0", "e1", "e4"]);
        q.remove(0, 1);
        assert_eq!(all(&q), ["e1", "e4"]);
        assert_eq!(q.to_storage(), format!("{}\n{}", ev(1), ev(4)));
        assert_eq!(q.waiting_since, Some(7));
        q.remove(0, 2);
        assert_eq!(q.len(), 0);
        assert_eq!((q.to_storage(), q.waiting_since), ("", None));
    }

    #[test]
    fn storage_round_trip_skips_garbage() {
        let mut q = Queue::new(10);
        q.push("{\"event\":\"a\",\"title\":\"x\\ny\"}", 5);
        q.push("{\"event\":\"b\"}", 5);
        let stored = q.to_storage().to_string();
        let mut r = Queue::new(10);
        let skipped = r.restore(&format!("{stored}\nnot json\n{{\"event\":\"cut"));
        assert_eq!((r.len(), skipped, r.dropped), (2, 2, 2));
        assert_eq!(r.to_storage(), stored);
        assert_eq!(r.waiting_since, Some(0), "restored events are due at once");
        let mut e = Queue::new(10);
        assert_eq!(e.restore(""), 0);
        assert!(e.len() == 0 && e.waiting_since.is_none());
    }
}
