//! The bounded queue of encoded events and the batches cut from it.
//!
//! Events are encoded to JSON once, when recorded, and kept as text: a batch body is then
//! a concatenation, and the queue persists to localStorage as those texts joined by `\n`
//! (the encoder escapes every control character, so a newline never occurs inside one).
//! No JSON decoder is needed to restore it.
//!
//! An event leaves the queue only when the collector accepted it (2xx), rejected it for
//! good (400/413/415), or it was handed to `sendBeacon`. Each event has a sequence number,
//! so an answer removes exactly the events of its batch even if older ones were dropped
//! for space in the meantime.

use alloc::string::String;
use alloc::vec::Vec;

use crate::json::{write_str, write_u64};

/// The collector takes at most 100 events per request.
pub const MAX_BATCH_EVENTS: usize = 100;
/// `sendBeacon` and keepalive `fetch` share a 64 KiB in-flight budget per page; batches
/// stay well under it so an unload beacon still fits next to a request in flight.
pub const MAX_BATCH_BYTES: usize = 24 * 1024;

#[derive(Debug)]
struct Queued {
    seq: u64,
    json: String,
}

/// A request body and the sequence range it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub first: u64,
    pub last: u64,
    pub count: usize,
    pub body: String,
}

#[derive(Debug)]
pub struct Queue {
    /// Oldest first. A `Vec` rather than a `VecDeque`: dropping the oldest shifts at most
    /// `capacity` small structs, rarely, and the deque's code would cost every download.
    items: Vec<Queued>,
    next_seq: u64,
    capacity: usize,
    /// Events dropped because the queue was full (oldest first).
    pub dropped: u64,
    /// When the oldest unsent event was queued: the flush timer runs from here.
    pub waiting_since: Option<u64>,
}

impl Queue {
    pub fn new(capacity: usize) -> Self {
        Queue {
            items: Vec::new(),
            next_seq: 1,
            capacity: capacity.max(1),
            dropped: 0,
            waiting_since: None,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Appends an encoded event. When full, the oldest event goes: recent behaviour is worth
    /// more than old, and the queue must stay small enough for localStorage.
    pub fn push(&mut self, json: String, now: u64) {
        if self.items.len() >= self.capacity {
            if let Some(oldest) = self.items.first().map(|q| q.seq) {
                self.remove(oldest, oldest);
                self.dropped += 1;
            }
        }
        self.items.push(Queued {
            seq: self.next_seq,
            json,
        });
        self.next_seq += 1;
        self.waiting_since.get_or_insert(now);
    }

    /// The oldest events after sequence `after`, as one request body of at most
    /// `max_events` events and [`MAX_BATCH_BYTES`] (one event always fits, whatever its size).
    pub fn batch(&self, after: u64, max_events: usize, site: &str, sent_at: u64) -> Option<Batch> {
        let mut body = String::with_capacity(256);
        body.push_str("{\"site\":");
        write_str(&mut body, site);
        body.push_str(",\"sentAt\":");
        write_u64(&mut body, sent_at);
        body.push_str(",\"events\":[");
        let mut range: Option<(u64, u64)> = None;
        let mut count = 0;
        for q in self.items.iter().filter(|q| q.seq > after) {
            if count == max_events || (count > 0 && body.len() + q.json.len() + 3 > MAX_BATCH_BYTES)
            {
                break;
            }
            if count > 0 {
                body.push(',');
            }
            body.push_str(&q.json);
            count += 1;
            range = Some((range.map_or(q.seq, |r| r.0), q.seq));
        }
        body.push_str("]}");
        let (first, last) = range?;
        Some(Batch {
            first,
            last,
            count,
            body,
        })
    }

    /// Removes the events with sequence numbers in `first..=last`.
    pub fn remove(&mut self, first: u64, last: u64) {
        self.items.retain(|q| q.seq < first || q.seq > last);
        if self.items.is_empty() {
            self.waiting_since = None;
        }
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.waiting_since = None;
    }

    /// The queue as stored in localStorage.
    pub fn to_storage(&self) -> String {
        let mut s = String::new();
        for (i, q) in self.items.iter().enumerate() {
            if i > 0 {
                s.push('\n');
            }
            s.push_str(&q.json);
        }
        s
    }

    /// Queues events saved by an earlier page, except those recorded before `oldest`
    /// (too old for the collector) and lines that are not an encoded event (another
    /// script's data, a cut-off write). They are due at once: they already waited.
    /// Returns how many were skipped; those count as dropped.
    pub fn restore(&mut self, stored: &str, oldest: u64) -> u64 {
        let mut skipped = 0;
        for line in crate::text::split(stored, b'\n').filter(|l| !l.is_empty()) {
            let fresh = line.starts_with("{\"event\":")
                && line.ends_with('}')
                && timestamp_of(line).is_some_and(|ts| ts >= oldest);
            if fresh {
                self.push(String::from(line), 0);
            } else {
                skipped += 1;
            }
        }
        self.dropped += skipped;
        skipped
    }
}

/// The `timestamp` of an encoded event.
fn timestamp_of(json: &str) -> Option<u64> {
    const KEY: &str = "\"timestamp\":";
    let at = crate::text::find(json, KEY)? + KEY.len();
    crate::json::parse_u64(json.as_bytes().get(at..)?)
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

    #[test]
    fn full_queue_drops_oldest_and_counts() {
        let mut q = Queue::new(3);
        for i in 0..5 {
            q.push(ev(i), 10);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.dropped, 2);
        let b = q.batch(0, 100, "s", 1).unwrap();
        assert_eq!(names(&b.body), ["e2", "e3", "e4"]);
    }

    #[test]
    fn batch_body_shape_and_limits() {
        let mut q = Queue::new(500);
        for i in 0..150 {
            q.push(ev(i), 10);
        }
        let b = q
            .batch(0, MAX_BATCH_EVENTS, "example.com", 1_701_234_567_890)
            .unwrap();
        let v: Value = serde_json::from_str(&b.body).unwrap();
        assert_eq!(v["site"], "example.com");
        assert_eq!(v["sentAt"], 1_701_234_567_890u64);
        assert_eq!(b.count, 100);
        assert_eq!((b.first, b.last), (1, 100));
        let next = q.batch(b.last, MAX_BATCH_EVENTS, "s", 1).unwrap();
        assert_eq!(next.count, 50);
        assert_eq!(names(&next.body)[0], "e100");
    }

    #[test]
    fn batch_respects_byte_limit_but_always_takes_one() {
        let mut q = Queue::new(100);
        let big = format!("{{\"event\":\"{}\"}}", "x".repeat(MAX_BATCH_BYTES));
        q.push(big, 0);
        q.push(ev(1), 0);
        let b = q.batch(0, 100, "s", 0).unwrap();
        assert_eq!(b.count, 1);
        let b = q.batch(b.last, 100, "s", 0).unwrap();
        assert_eq!(b.count, 1);
        let mut q = Queue::new(1000);
        for _ in 0..100 {
            q.push(format!("{{\"event\":\"{}\"}}", "y".repeat(1000)), 0);
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
    fn remove_is_by_sequence_even_after_drops() {
        let mut q = Queue::new(3);
        q.push(ev(0), 0);
        q.push(ev(1), 0);
        let b = q.batch(0, 100, "s", 0).unwrap(); // seq 1..=2 in flight
        q.push(ev(2), 0);
        q.push(ev(3), 0); // drops e0 (seq 1) while in flight
        q.remove(b.first, b.last);
        assert_eq!(names(&q.batch(0, 100, "s", 0).unwrap().body), ["e2", "e3"]);
        q.remove(0, u64::MAX);
        assert!(q.is_empty());
        assert_eq!(q.waiting_since, None);
    }

    #[test]
    fn storage_round_trip_skips_garbage_and_stale_events() {
        let mut q = Queue::new(10);
        q.push(
            "{\"event\":\"a\",\"timestamp\":100,\"title\":\"x\\ny\"}".into(),
            5,
        );
        q.push("{\"event\":\"b\",\"timestamp\":200}".into(), 5);
        let stored = q.to_storage();
        let mut r = Queue::new(10);
        let skipped = r.restore(&format!("{stored}\nnot json\n{{\"event\":\"cut"), 100);
        assert_eq!((r.len(), skipped, r.dropped), (2, 2, 2));
        assert_eq!(r.to_storage(), stored);
        assert_eq!(r.waiting_since, Some(0), "restored events are due at once");
        let mut old = Queue::new(10);
        assert_eq!(old.restore(&stored, 150), 1);
        assert_eq!(old.len(), 1);
        let mut e = Queue::new(10);
        assert_eq!(e.restore("", 1), 0);
        assert!(e.is_empty() && e.waiting_since.is_none());
    }
}
