//! A scripted in-memory [`Source`]: hands out prepared batches, then waits forever; records
//! commits and dead letters, so a test can stage exactly what the pipeline reads.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use processor::source::{Checkpoint, Rejected, Source, SourceBatch, SourceError};
use processor::BoxFuture;

#[derive(Default)]
pub struct ScriptedSource {
    pub batches: Mutex<VecDeque<SourceBatch>>,
    pub commits: Mutex<Vec<Checkpoint>>,
    pub dead: Mutex<Vec<Rejected>>,
}

impl ScriptedSource {
    pub fn push(&self, batch: SourceBatch) {
        self.batches.lock().expect("lock").push_back(batch);
    }

    pub fn commit_count(&self) -> usize {
        self.commits.lock().expect("lock").len()
    }

    pub fn dead_letters(&self) -> Vec<Rejected> {
        self.dead.lock().expect("lock").clone()
    }
}

impl Source for ScriptedSource {
    fn next_batch(
        &self,
        _max: usize,
        _linger: Duration,
    ) -> BoxFuture<'_, Result<SourceBatch, SourceError>> {
        Box::pin(async move {
            let next = self.batches.lock().expect("lock").pop_front();
            match next {
                Some(batch) => Ok(batch),
                None => std::future::pending().await,
            }
        })
    }

    fn dead_letter<'a>(&'a self, rejected: &'a Rejected) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            self.dead.lock().expect("lock").push(rejected.clone());
            Ok(())
        })
    }

    fn commit<'a>(&'a self, checkpoint: &'a Checkpoint) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            self.commits.lock().expect("lock").push(checkpoint.clone());
            Ok(())
        })
    }
}
