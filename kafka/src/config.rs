//! librdkafka settings per client role. Every client of a deployment starts from [`base`];
//! each role adds what its contract needs, and callers add only their own tunables (a linger,
//! a timeout). Why each setting is there is said once, here.

use std::time::Duration;

use rdkafka::ClientConfig;

/// Settings every client shares: the brokers, quick failover between them and noticing a
/// returning broker within a second (reconnect backoff 50 ms, at most 1 s), and librdkafka's
/// own log at warnings and above.
pub fn base(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "1000")
        .set("log_level", "4");
    config
}

/// A producer whose acknowledgement means durable: `acks=all` and idempotence (retries inside
/// librdkafka can neither duplicate nor reorder). For events, dead letters and salts.
/// `delivery_timeout` is `message.timeout.ms`: how long one message may be retried before its
/// delivery fails.
pub fn durable_producer(brokers: &str, delivery_timeout: Duration) -> ClientConfig {
    let mut config = base(brokers);
    config
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", millis(delivery_timeout));
    config
}

/// The live-metrics producer: deltas are a view, not the record (that is the store), so one
/// acknowledgement is enough and a lost delta only dents the live view until its minute
/// scrolls out; batched for a few milliseconds and compressed.
pub fn live_producer(brokers: &str) -> ClientConfig {
    let mut config = base(brokers);
    config
        .set("acks", "1")
        .set("compression.type", "lz4")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "5000");
    config
}

/// A member of consumer group `group` whose offsets move only when the caller commits them
/// (after the store has the batch): auto-commit and auto offset store off; a partition
/// without a committed offset is read from the start (`earliest`: never skip events a
/// collector acknowledged); cooperative rebalancing, so adding or losing a member moves only
/// the partitions that must move. `session` is how long a silent member (kill -9) keeps its
/// partitions.
pub fn group_consumer(brokers: &str, group: &str, session: Duration) -> ClientConfig {
    let session_ms = session.as_millis().max(1000);
    let mut config = base(brokers);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", session_ms.to_string())
        .set("heartbeat.interval.ms", (session_ms / 3).to_string());
    // fetch.wait.max.ms stays at librdkafka's default: with 20 ms, the consumer stopped
    // fetching after a broker restart (footfall/tests/distributed.rs,
    // broker_outage_gives_503_and_loses_nothing) and gained no throughput.
    config
}

/// A reader of whole topics that never commits (the live-metrics subscriber, the salt log):
/// every run starts from the earliest retained message. `group` only names it to the
/// brokers; it never stores an offset there.
pub fn topic_reader(brokers: &str, group: &str) -> ClientConfig {
    let mut config = base(brokers);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    config
}

fn millis(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_the_shared_settings() {
        let configs = [
            base("b:1"),
            durable_producer("b:1", Duration::from_secs(5)),
            live_producer("b:1"),
            group_consumer("b:1", "g", Duration::from_secs(10)),
            topic_reader("b:1", "g"),
        ];
        for c in &configs {
            assert_eq!(c.get("bootstrap.servers"), Some("b:1"));
            assert_eq!(c.get("reconnect.backoff.ms"), Some("50"));
            assert_eq!(c.get("reconnect.backoff.max.ms"), Some("1000"));
        }
        let durable = &configs[1];
        assert_eq!(durable.get("acks"), Some("all"));
        assert_eq!(durable.get("enable.idempotence"), Some("true"));
        assert_eq!(durable.get("message.timeout.ms"), Some("5000"));
        let group = &configs[3];
        assert_eq!(group.get("enable.auto.commit"), Some("false"));
        assert_eq!(group.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(group.get("heartbeat.interval.ms"), Some("3333"));
    }
}
