//! Topic bootstrap: on start-up every service makes sure its topics exist, so a fresh cluster
//! works without a manual step, while an operator's existing topics are never changed (their
//! partition count and retention are the operator's decision; a mismatch is only logged).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::base;
use crate::KafkaError;

/// A topic as Footfall wants it created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
    /// Topic-level settings, e.g. `("retention.ms", "604800000")`.
    pub config: Vec<(String, String)>,
}

impl TopicSpec {
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i32) -> Self {
        TopicSpec {
            name: name.into(),
            partitions,
            replication_factor,
            config: Vec::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl ToString) -> Self {
        self.config.push((key.to_string(), value.to_string()));
        self
    }

    /// Retention in hours, as `retention.ms`.
    pub fn retention_hours(self, hours: u64) -> Self {
        self.with("retention.ms", hours.saturating_mul(3_600_000))
    }

    fn validate(&self) -> Result<(), KafkaError> {
        validate_topic_name(&self.name)?;
        if self.partitions < 1 {
            return Err(KafkaError::InvalidSetting(format!(
                "topic {} needs at least 1 partition (got {})",
                self.name, self.partitions
            )));
        }
        if self.replication_factor < 1 {
            return Err(KafkaError::InvalidSetting(format!(
                "topic {} needs a replication factor of at least 1 (got {})",
                self.name, self.replication_factor
            )));
        }
        Ok(())
    }
}

/// Kafka's own rule for topic names: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), KafkaError> {
    let legal = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if name.is_empty() || name.len() > 249 || !legal || name == "." || name == ".." {
        return Err(KafkaError::InvalidSetting(format!(
            "{name:?} is not a valid Kafka topic name (1-249 characters of a-z A-Z 0-9 . _ -)"
        )));
    }
    Ok(())
}

/// Creates the topics of `specs` that do not exist yet; existing ones are left as they are.
///
/// # Errors
/// [`KafkaError::InvalidSetting`] for a bad spec (checked before any network traffic),
/// [`KafkaError::Unreachable`] when no broker answers within `timeout`, and
/// [`KafkaError::CreateTopic`] when the cluster refuses a topic (e.g. a replication factor
/// larger than the number of brokers).
pub async fn ensure_topics(
    brokers: &str,
    specs: &[TopicSpec],
    timeout: Duration,
) -> Result<(), KafkaError> {
    for spec in specs {
        spec.validate()?;
    }
    let admin: AdminClient<DefaultClientContext> = base(brokers)
        .create()
        .map_err(|e| KafkaError::InvalidSetting(format!("brokers {brokers:?}: {e}")))?;

    // Metadata first: it tells "unreachable" apart from "refused", and which topics exist.
    // `fetch_metadata` blocks, so it runs off the async workers.
    let admin = std::sync::Arc::new(admin);
    let probe = admin.clone();
    let existing = tokio::task::spawn_blocking(move || {
        probe.inner().fetch_metadata(None, timeout).map(|m| {
            m.topics()
                .iter()
                .filter(|t| t.error().is_none())
                .map(|t| (t.name().to_string(), t.partitions().len()))
                .collect::<Vec<_>>()
        })
    })
    .await
    .map_err(|e| KafkaError::Client(e.to_string()))?
    .map_err(|e| KafkaError::Unreachable {
        brokers: brokers.to_string(),
        timeout,
        reason: e.to_string(),
    })?;

    let mut missing = Vec::new();
    for spec in specs {
        match existing.iter().find(|(name, _)| *name == spec.name) {
            Some((_, partitions)) => {
                if *partitions != spec.partitions as usize {
                    tracing::warn!(
                        topic = %spec.name,
                        existing = partitions,
                        configured = spec.partitions,
                        "topic exists with a different partition count; leaving it as it is"
                    );
                } else {
                    tracing::debug!(topic = %spec.name, "topic exists");
                }
            }
            None => missing.push(spec),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let new_topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|spec| {
            spec.config.iter().fold(
                NewTopic::new(
                    &spec.name,
                    spec.partitions,
                    TopicReplication::Fixed(spec.replication_factor),
                ),
                |topic, (k, v)| topic.set(k, v),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let results = tokio::time::timeout(
        timeout + Duration::from_secs(1),
        admin.create_topics(&new_topics, &options),
    )
    .await
    .map_err(|_| KafkaError::Unreachable {
        brokers: brokers.to_string(),
        timeout,
        reason: "topic creation did not complete".into(),
    })?
    .map_err(|e| KafkaError::Client(e.to_string()))?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(%topic, "created topic"),
            // Another instance starting at the same time won the race: fine.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(KafkaError::CreateTopic {
                    topic,
                    reason: format!("{code} ({code:?})"),
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("footfall.events").is_ok());
        assert!(validate_topic_name("a-b_c.9").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("bad topic").is_err());
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }

    #[test]
    fn bad_specs_are_refused_before_any_network_traffic() {
        assert!(TopicSpec::new("t", 0, 1).validate().is_err());
        assert!(TopicSpec::new("t", 1, 0).validate().is_err());
        assert!(TopicSpec::new("t", 6, 1)
            .retention_hours(168)
            .validate()
            .is_ok());
        assert_eq!(
            TopicSpec::new("t", 6, 1).retention_hours(168).config,
            vec![("retention.ms".to_string(), "604800000".to_string())]
        );
    }
}
