//! MongoDB driver errors in the store's terms: which are transient (retry the attempt), which
//! mean the server is unreachable (not ready), and the [`StoreError`] each becomes.

use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};

use crate::store::StoreError;

/// A duplicate `eventId`: the event is already stored, which is never a failure.
pub(super) const DUPLICATE_KEY: i32 = 11000;
/// "Transaction numbers are only allowed on a replica set member or mongos".
pub(super) const ILLEGAL_OPERATION: i32 = 20;

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
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        _ => None,
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
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}
