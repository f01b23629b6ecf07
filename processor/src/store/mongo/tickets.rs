//! Exactly-once rollups through insert-attempt tickets (see the module docs of
//! [`super`]): one attempt, recovering the tickets of attempts that are over, and applying a
//! ticket's rollups in the transaction that retires it.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::PoisonError;
use std::time::Duration;

use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime, Document};
use mongodb::error::{Error as MongoError, ErrorKind};
use mongodb::ClientSession;
use protocol::Event;

use super::codec::{delta_docs, doc_to_event, visit_partials};
use super::compact::is_conflict;
use super::errors::{code_of, AttemptError, DUPLICATE_KEY, ILLEGAL_OPERATION};
use super::schema::BATCH_FIELD;
use super::Inner;
use crate::store::InsertOutcome;

/// How often one apply is run again after losing a write conflict before the attempt fails
/// (and the pipeline retries the whole batch).
const TRANSACTION_CONFLICT_RETRIES: u32 = 8;

impl Inner {
    /// One attempt at storing a batch (see the module docs).
    pub(super) async fn insert_once(
        &self,
        batch: ObjectId,
        events: &[Event],
        base_docs: &[Document],
    ) -> Result<InsertOutcome, AttemptError> {
        let docs: Vec<Document> = base_docs
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.insert("_id", ObjectId::new());
                d.insert(BATCH_FIELD, batch);
                d
            })
            .collect();
        let ids: Vec<Bson> = docs.iter().filter_map(|d| d.get("_id").cloned()).collect();
        // 1. The ticket: names this attempt's documents until their rollups are applied.
        self.batches
            .insert_one(doc! { "_id": batch, "ids": &ids, "at": DateTime::now() })
            .await?;
        // 2. The events; duplicate ids are expected and ignored.
        let mut duplicates = HashSet::new();
        if let Err(e) = self.events.insert_many(&docs).ordered(false).await {
            let ErrorKind::InsertMany(failure) = e.kind.as_ref() else {
                return Err(e.into());
            };
            let write_errors = failure.write_errors.as_deref().unwrap_or_default();
            let other = write_errors.iter().any(|w| w.code != DUPLICATE_KEY);
            if other || failure.write_concern_error.is_some() {
                // What did go in is named by the ticket: a retry or the sweep rolls it up.
                return Err(e.into());
            }
            duplicates.extend(write_errors.iter().map(|w| w.index));
        }
        // 3. Duplicates stored by an attempt that failed before its rollups: finish that
        //    attempt's ticket first (exactly once, whoever gets there first).
        let dups: Vec<&Event> = events
            .iter()
            .enumerate()
            .filter(|(i, _)| duplicates.contains(i))
            .map(|(_, e)| e)
            .collect();
        if !dups.is_empty() {
            let mut earlier = Vec::new();
            for filter in super::schema::stored_filters(dups.iter().copied()) {
                let mut cursor = self
                    .events
                    .find(filter)
                    .projection(doc! { BATCH_FIELD: 1 })
                    .await?;
                while cursor.advance().await? {
                    let doc: Document = cursor.deserialize_current()?;
                    if let Ok(b) = doc.get_object_id(BATCH_FIELD) {
                        if !earlier.contains(&b) {
                            earlier.push(b);
                        }
                    }
                }
            }
            self.finish_tickets(Some(batch), earlier).await?;
        }
        // 4. This attempt's new events.
        let fresh: Vec<&Event> = events
            .iter()
            .enumerate()
            .filter(|(i, _)| !duplicates.contains(i))
            .map(|(_, e)| e)
            .collect();
        if !self.apply(batch, &fresh).await? {
            // Only possible when this attempt outlived the sweep's grace period.
            tracing::warn!(%batch, "insert attempt's ticket was already finished by the sweep");
        }
        Ok(InsertOutcome {
            inserted: fresh.len(),
            duplicates: duplicates.len(),
            fresh: (0..events.len())
                .filter(|i| !duplicates.contains(i))
                .collect(),
            // Without transactions no live-pending marker is kept (see `transact`).
            ..InsertOutcome::default()
        })
    }

    /// Finishes the tickets `earlier` that still exist (other than `own`): their events are
    /// stored and their rollups not applied yet, so whoever meets those events as duplicates
    /// applies them first (exactly once, whoever gets there first).
    /// [`AttemptError::Busy`] when one may still be running.
    pub(super) async fn finish_tickets(
        &self,
        own: Option<ObjectId>,
        mut earlier: Vec<ObjectId>,
    ) -> Result<(), AttemptError> {
        earlier.retain(|b| Some(*b) != own);
        if earlier.is_empty() {
            return Ok(());
        }
        let mut cursor = self
            .batches
            .find(doc! { "_id": { "$in": &earlier } })
            .await?;
        let mut tickets = Vec::new();
        while cursor.advance().await? {
            tickets.push(cursor.deserialize_current()?);
        }
        for ticket in tickets {
            // A young ticket of another writer may be mid-insert: finishing it now could miss
            // events it has yet to write. Come back later instead.
            if !self.may_recover(&ticket) {
                return Err(AttemptError::Busy);
            }
            self.recover_ticket(&ticket).await?;
        }
        Ok(())
    }

    /// Whether a ticket's attempt is over: it failed in this process, or it is older than
    /// the grace period (longer than any attempt may run).
    fn may_recover(&self, ticket: &Document) -> bool {
        let Ok(id) = ticket.get_object_id("_id") else {
            return false;
        };
        let grace = i64::try_from(self.config.pending_grace_ms).unwrap_or(i64::MAX);
        let old = ticket.get_datetime("at").is_ok_and(|at| {
            at.timestamp_millis() <= DateTime::now().timestamp_millis().saturating_sub(grace)
        });
        old || self
            .abandoned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&id)
    }

    /// Applies the rollups of the events a ticket names (those its attempt did insert).
    async fn recover_ticket(&self, ticket: &Document) -> Result<usize, MongoError> {
        let Ok(batch) = ticket.get_object_id("_id") else {
            return Ok(0);
        };
        let ids = ticket
            .get_array("ids")
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut events = Vec::new();
        let mut cursor = self
            .events
            .find(doc! { "_id": { "$in": ids }, BATCH_FIELD: batch })
            .await?;
        while cursor.advance().await? {
            let doc: Document = cursor.deserialize_current()?;
            events.extend(doc_to_event(&doc));
        }
        let refs: Vec<&Event> = events.iter().collect();
        let applied = self.apply(batch, &refs).await?;
        self.abandoned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&batch);
        Ok(if applied { events.len() } else { 0 })
    }

    /// Finishes tickets older than the grace period; returns how many events it rolled up.
    pub(super) async fn recover_pending(&self) -> Result<usize, MongoError> {
        let grace = i64::try_from(self.config.pending_grace_ms).unwrap_or(i64::MAX);
        let cutoff =
            DateTime::from_millis(DateTime::now().timestamp_millis().saturating_sub(grace));
        let mut found = 0;
        loop {
            let abandoned: Vec<ObjectId> = self
                .abandoned
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .copied()
                .collect();
            let filter = doc! { "$or": [
                { "at": { "$lte": cutoff } },
                { "_id": { "$in": &abandoned } },
            ] };
            let mut cursor = self.batches.find(filter).limit(100).await?;
            let mut tickets = Vec::new();
            while cursor.advance().await? {
                tickets.push(cursor.deserialize_current()?);
            }
            if tickets.is_empty() {
                // Abandoned attempts whose ticket never got written (or is done): forget them.
                let mut set = self
                    .abandoned
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for id in &abandoned {
                    set.remove(id);
                }
                return Ok(found);
            }
            for ticket in &tickets {
                found += self.recover_ticket(ticket).await?;
            }
        }
    }

    /// Applies the rollups of `events` and retires ticket `batch`, atomically. `Ok(false)`
    /// when the ticket was already retired: someone else applied these rollups.
    ///
    /// The rollups are *deltas*: one small document per bucket for this attempt (the day
    /// buckets' also carry the site counters' increments), written with one `insert_many` —
    /// one round trip per batch, whatever its size, no read or rewrite of a growing document,
    /// and no document that another processor writes too, so concurrent processors never
    /// conflict here. The compactor (`compact`) folds deltas into the buckets later.
    async fn apply(&self, batch: ObjectId, events: &[&Event]) -> Result<bool, MongoError> {
        if events.is_empty() {
            let gone = self.batches.delete_one(doc! { "_id": batch }).await?;
            return Ok(gone.deleted_count == 1);
        }
        let deltas = delta_docs(batch, events);
        // Partial visits (`codec::visit_partials`), ids derived from the ticket like the
        // deltas', in the same transaction as the ticket's delete.
        let visits = visit_partials(batch, events);
        // Two writers may meet on one ticket (a retry and the sweep), and the server aborts
        // one transaction (TransientTransactionError). Nothing of an aborted transaction
        // stays, so it is simply run again, after a short random pause, as drivers'
        // withTransaction does.
        let mut conflicts = 0;
        while self.transactions.load(Ordering::Relaxed) {
            match self.apply_in_transaction(batch, &deltas, &visits).await {
                Err(e) if code_of(&e) == Some(ILLEGAL_OPERATION) => {
                    tracing::warn!(
                        "MongoDB refuses transactions (not a replica set): rollups are applied \
                         without one; a crash mid-compaction may count that round's rollups \
                         twice"
                    );
                    self.transactions.store(false, Ordering::Relaxed);
                }
                Err(e) if is_conflict(&e) && conflicts < TRANSACTION_CONFLICT_RETRIES => {
                    conflicts += 1;
                    let pause = 5u64 << conflicts.min(6);
                    tokio::time::sleep(Duration::from_millis(pause + rand::random_range(0..pause)))
                        .await;
                }
                other => return other,
            }
        }
        if self
            .batches
            .find_one(doc! { "_id": batch })
            .await?
            .is_none()
        {
            return Ok(false);
        }
        // Without a transaction the deltas and partial visits are still exactly once: their
        // ids come from the ticket, so a second attempt at the same ticket only meets
        // duplicates.
        for (docs, coll) in [(&deltas, &self.deltas), (&visits, &self.visits)] {
            if docs.is_empty() {
                continue;
            }
            if let Err(e) = coll.insert_many(docs).ordered(false).await {
                let only_duplicates = matches!(e.kind.as_ref(), ErrorKind::InsertMany(f)
                    if f.write_concern_error.is_none()
                        && f.write_errors.as_deref().unwrap_or_default().iter().all(|w| w.code == DUPLICATE_KEY));
                if !only_duplicates {
                    return Err(e);
                }
            }
        }
        self.batches.delete_one(doc! { "_id": batch }).await?;
        Ok(true)
    }

    async fn apply_in_transaction(
        &self,
        batch: ObjectId,
        deltas: &[Document],
        visits: &[Document],
    ) -> Result<bool, MongoError> {
        let mut session = self.client.start_session().await?;
        session.start_transaction().await?;
        match self
            .transaction_body(&mut session, batch, deltas, visits)
            .await
        {
            Ok(true) => session.commit_transaction().await.map(|()| true),
            Ok(false) => {
                session.abort_transaction().await?;
                Ok(false)
            }
            Err(e) => {
                let _ = session.abort_transaction().await;
                Err(e)
            }
        }
    }

    /// Retires the ticket (the claim: a single-document delete) and writes the claim's
    /// deltas; `false` when the ticket was already gone.
    async fn transaction_body(
        &self,
        session: &mut ClientSession,
        batch: ObjectId,
        deltas: &[Document],
        visits: &[Document],
    ) -> Result<bool, MongoError> {
        let claimed = self
            .batches
            .delete_one(doc! { "_id": batch })
            .session(&mut *session)
            .await?;
        if claimed.deleted_count != 1 {
            return Ok(false);
        }
        self.deltas
            .insert_many(deltas)
            .session(&mut *session)
            .await?;
        if !visits.is_empty() {
            self.visits
                .insert_many(visits)
                .session(&mut *session)
                .await?;
        }
        Ok(true)
    }
}
