//! The store's layout in MongoDB: collection and field names, indexes and TTLs, created (or
//! adjusted to the configured retention) on start-up.

use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::error::Error as MongoError;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};

/// The database used when the URI names none.
pub const DEFAULT_DATABASE: &str = "footfall";
pub(super) const EVENTS: &str = "events";
pub(super) const ROLLUPS: &str = "rollups";
pub(super) const SITES: &str = "sites";
/// Rollup increments not yet folded into `rollups`: one document per insert attempt,
/// site and minute (see the module docs).
pub(super) const DELTAS: &str = "rollup_deltas";
/// Leases: which processor runs the compactor.
pub(super) const LEASES: &str = "leases";
/// WebSocket tickets already used, until they expire (see `live::tickets`).
pub(super) const SPENT_TICKETS: &str = "spent_tickets";
/// The site registry: `{_id: site, addedAt: date}` (see `crate::sites`).
pub(super) const KNOWN_SITES: &str = "known_sites";
/// Partial visits: one document per site and write (see `codec::visit_partials`).
pub(super) const VISITS: &str = "visits";
/// Settings records (goals, share links).
pub(super) const RECORDS: &str = "records";
/// Unapplied-rollup tickets, one per insert attempt (see the module docs).
pub(super) const BATCHES: &str = "batches";
/// Field of an event naming the insert attempt (ticket) that stored it.
pub(super) const BATCH_FIELD: &str = "b";
/// Field of an event naming the transaction (write) that stored it; see [`LIVE_PENDING`].
pub(super) const WRITE_FIELD: &str = "w";
/// Live-pending markers: `{_id: write, keys: [{site, ids: [eventId…]}], at}`, one per write,
/// inserted in its transaction and deleted once its live deltas are published. A marker still
/// there when a redelivery meets the write's events means they may never have been published
/// (see `transact`). Forgotten after a day, when the live view has moved on.
pub(super) const LIVE_PENDING: &str = "live_pending";

pub(super) async fn ensure_indexes(
    db: &Database,
    retention_days: Option<u32>,
) -> Result<(), MongoError> {
    let events: Collection<Document> = db.collection(EVENTS);
    let rollups: Collection<Document> = db.collection(ROLLUPS);
    let index = |keys: Document, name: &str, unique: bool| {
        IndexModel::builder()
            .keys(keys)
            .options(
                IndexOptions::builder()
                    .name(name.to_string())
                    .unique(unique.then_some(true))
                    .build(),
            )
            .build()
    };
    // Unique per site: `{site, eventId}` is also the shard key docs/scaling.md plans for, and
    // a sharded collection's unique index must start with the shard key. It replaces the
    // older `{eventId}` index, dropped once this one exists.
    events
        .create_index(index(
            doc! { "site": 1, "eventId": 1 },
            "site_eventId_unique",
            true,
        ))
        .await?;
    // `{site, ts}` reads use its prefix; the raw-event export pages in `(ts, eventId)` order,
    // which the index gives without a sort. It replaces the older `{site, ts}` index.
    events
        .create_index(index(
            doc! { "site": 1, "ts": 1, "eventId": 1 },
            "site_ts_eventId",
            false,
        ))
        .await?;
    let names = events.list_index_names().await?;
    for old in ["site_ts", "eventId_unique"] {
        if names.iter().any(|n| n == old) {
            events.drop_index(old).await?;
        }
    }
    rollups
        .create_index(index(
            doc! { "site": 1, "res": 1, "t": 1 },
            "site_res_t",
            false,
        ))
        .await?;
    let deltas: Collection<Document> = db.collection(DELTAS);
    deltas
        .create_index(index(
            doc! { "site": 1, "res": 1, "t": 1 },
            "site_res_t",
            false,
        ))
        .await?;
    let visits: Collection<Document> = db.collection(VISITS);
    visits
        .create_index(index(doc! { "site": 1, "start": 1 }, "site_start", false))
        .await?;
    visits
        .create_index(index(
            doc! { "site": 1, "p.start": 1 },
            "site_partial_start",
            false,
        ))
        .await?;
    visits
        .create_index(index(
            doc! { "site": 1, "p.s": 1 },
            "site_partial_session",
            false,
        ))
        .await?;
    let records: Collection<Document> = db.collection(RECORDS);
    records
        .create_index(index(doc! { "kind": 1, "site": 1 }, "kind_site", false))
        .await?;
    let secs = retention_days.map(|d| u64::from(d) * 86_400);
    ensure_ttl(db, EVENTS, "ts", secs).await?;
    ensure_ttl(db, VISITS, "t", secs).await?;
    // Rollups live a day longer, so a day bucket is not dropped while its events remain.
    ensure_ttl(db, ROLLUPS, "t", secs.map(|s| s + 86_400)).await?;
    // A spent ticket is forgotten once it has expired (it is refused as expired anyway).
    ensure_ttl(db, SPENT_TICKETS, "expires", Some(0)).await?;
    ensure_ttl(db, LIVE_PENDING, "at", Some(86_400)).await?;
    Ok(())
}

/// Creates the site registry the first time a deployment runs a build that has one, starting
/// it with every site the store has data for, so an upgrade keeps accepting those sites. The
/// collection's existence marks that this happened: a registry emptied on purpose stays empty.
pub(super) async fn ensure_known_sites(db: &Database) -> Result<(), MongoError> {
    if db
        .list_collection_names()
        .await?
        .iter()
        .any(|c| c == KNOWN_SITES)
    {
        return Ok(());
    }
    if let Err(e) = db.create_collection(KNOWN_SITES).await {
        // Another processor starting at the same moment created it: it adopts the sites.
        tracing::debug!(error = %e, "site registry created concurrently");
        return Ok(());
    }
    let sites: Collection<Document> = db.collection(SITES);
    let known: Collection<Document> = db.collection(KNOWN_SITES);
    let mut cursor = sites.find(doc! {}).await?;
    let mut adopted = Vec::new();
    while cursor.advance().await? {
        let site: Document = cursor.deserialize_current()?;
        if let (Ok(name), Ok(last)) = (site.get_str("_id"), site.get_datetime("lastSeen")) {
            adopted.push(doc! { "_id": name, "addedAt": *last });
        }
    }
    if !adopted.is_empty() {
        tracing::info!(
            sites = adopted.len(),
            "site registry started with the sites that have data"
        );
        let _ = known.insert_many(adopted).ordered(false).await;
    }
    Ok(())
}

/// Creates, changes (`collMod`) or drops the TTL index `<field>_ttl` to match the setting.
async fn ensure_ttl(
    db: &Database,
    collection: &str,
    field: &str,
    secs: Option<u64>,
) -> Result<(), MongoError> {
    let coll: Collection<Document> = db.collection(collection);
    let name = format!("{field}_ttl");
    let exists = match coll.list_index_names().await {
        Ok(names) => names.contains(&name),
        // A collection nothing has written to yet has no indexes.
        Err(e) if super::errors::code_of(&e) == Some(super::errors::NAMESPACE_NOT_FOUND) => false,
        Err(e) => return Err(e),
    };
    match (secs, exists) {
        (None, false) => {}
        (None, true) => coll.drop_index(name.as_str()).await?,
        (Some(secs), false) => {
            let model = IndexModel::builder()
                .keys(doc! { field: 1 })
                .options(
                    IndexOptions::builder()
                        .name(name)
                        .expire_after(Duration::from_secs(secs))
                        .build(),
                )
                .build();
            coll.create_index(model).await?;
        }
        (Some(secs), true) => {
            db.run_command(doc! {
                "collMod": collection,
                "index": { "name": name, "expireAfterSeconds": secs as i64 },
            })
            .await?;
        }
    }
    Ok(())
}

/// The filters that find which of `events` are stored, by the unique key `{site, eventId}`:
/// one `{site, eventId: {$in}}` per site, each a range of `site_eventId_unique`. One query
/// per filter rather than one `$or`: servers need not plan an `$or` well (SecantusDB scans
/// the collection for it).
pub(super) fn stored_filters<'a>(
    events: impl Iterator<Item = &'a protocol::Event>,
) -> Vec<Document> {
    let mut by_site: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for e in events {
        by_site.entry(&e.site).or_default().push(&e.event_id);
    }
    by_site
        .into_iter()
        .map(|(site, ids)| doc! { "site": site, "eventId": { "$in": ids } })
        .collect()
}
