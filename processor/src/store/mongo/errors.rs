//! MongoDB driver errors in the store's terms: which are transient (retry the attempt), which
//! mean the server is unreachable (not ready), and the [`StoreError`] each becomes.

use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};

use super::bulk::WriteRefused;
use crate::store::StoreError;

/// A duplicate `eventId`: the event is already stored, which is never a failure.
pub(super) const DUPLICATE_KEY: i32 = 11000;
/// "Transaction numbers are only allowed on a replica set member or mongos".
pub(super) const ILLEGAL_OPERATION: i32 = 20;
/// A collection that does not exist yet (listing its indexes, on a fresh database).
pub(super) const NAMESPACE_NOT_FOUND: i32 = 26;

/// Server codes that say "this document can never be written", whatever the retry: bad
/// values and field names, documents or index keys over the limits.
const REFUSALS: &[i32] = &[
    2,     // BadValue
    14,    // TypeMismatch
    16,    // InvalidLength
    52,    // DollarPrefixedFieldName
    53,    // InvalidIdField
    55,    // InvalidDBRef
    56,    // EmptyFieldName
    57,    // DottedFieldName
    10334, // BSONObjectTooLarge
    17280, // KeyTooLong
    17419, // document too large after update
    17420, // document too large to insert
];

/// Why one insert attempt failed.
#[derive(Debug)]
pub(super) enum AttemptError {
    Mongo(MongoError),
    /// Some events belong to another writer's attempt that may still be running.
    Busy,
    /// The attempt took longer than `attempt_timeout_ms`.
    TimedOut,
}

impl From<MongoError> for AttemptError {
    fn from(e: MongoError) -> Self {
        AttemptError::Mongo(e)
    }
}

impl AttemptError {
    pub(super) fn is_transient(&self) -> bool {
        match self {
            AttemptError::Mongo(e) => is_connection_error(e),
            AttemptError::Busy | AttemptError::TimedOut => true,
        }
    }

    pub(super) fn into_store_error(self) -> StoreError {
        match self {
            AttemptError::Mongo(e) if is_refusal(&e) => StoreError::Refused(describe(&e)),
            AttemptError::Mongo(e) => store_error(&e),
            AttemptError::Busy => StoreError::Unavailable(
                "another writer is storing some of these events; retry shortly".into(),
            ),
            AttemptError::TimedOut => {
                StoreError::Unavailable("MongoDB did not finish the insert in time".into())
            }
        }
    }
}

/// The server error code of a driver error, if it has one.
pub(super) fn code_of(e: &MongoError) -> Option<i32> {
    if let Some(refused) = e.get_custom::<WriteRefused>() {
        return Some(refused.code);
    }
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        _ => None,
    }
}

/// Whether the data itself is what the server (or the driver, before sending) refuses, so
/// retrying it can never succeed. For an `insert_many` every failed document must be refused
/// for such a reason (or be a duplicate).
pub(super) fn is_refusal(e: &MongoError) -> bool {
    match e.kind.as_ref() {
        ErrorKind::InvalidArgument { .. } | ErrorKind::BsonSerialization(_) => true,
        ErrorKind::InsertMany(failure) => {
            failure.write_concern_error.is_none()
                && failure.write_errors.as_deref().is_some_and(|errors| {
                    errors.iter().any(|w| REFUSALS.contains(&w.code))
                        && errors
                            .iter()
                            .all(|w| w.code == DUPLICATE_KEY || REFUSALS.contains(&w.code))
                })
        }
        _ => code_of(e).is_some_and(|c| REFUSALS.contains(&c)),
    }
}

/// Whether the server could not be reached (as opposed to refusing the operation).
pub(super) fn is_connection_error(e: &MongoError) -> bool {
    matches!(
        e.kind.as_ref(),
        ErrorKind::Io(_)
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
    ) || e.contains_label("RetryableWriteError")
        || e.contains_label("TransientTransactionError")
        || e.contains_label("UnknownTransactionCommitResult")
}

pub(super) fn store_error(e: &MongoError) -> StoreError {
    if is_connection_error(e) {
        StoreError::Unavailable(describe(e))
    } else if is_refusal(e) {
        StoreError::Refused(describe(e))
    } else {
        StoreError::Backend(describe(e))
    }
}

/// A driver error as text, with the server's message for a refused `update` statement.
fn describe(e: &MongoError) -> String {
    match e.get_custom::<WriteRefused>() {
        Some(w) => format!("{} (code {})", w.message, w.code),
        None => e.to_string(),
    }
}
