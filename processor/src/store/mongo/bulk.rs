//! Many upserts in one round trip: the `update` command with a list of statements, which
//! every MongoDB version takes (the driver's own multi-collection `bulkWrite` needs 8.0).
//!
//! `run_command` hands back the server's reply as it is, so the reply's `writeErrors` and
//! `writeConcernError` are turned into errors here ([`WriteRefused`], with the server's
//! code, so [`super::errors`] can classify them like any driver error).

use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};
use mongodb::error::Error as MongoError;
use mongodb::{ClientSession, Database};

/// One upsert: a filter and an update (operators) or a replacement document.
#[derive(Debug, Clone)]
pub(super) struct Upsert {
    pub filter: Document,
    pub update: Document,
}

/// A statement of an `update` command that the server refused.
#[derive(Debug, Clone)]
pub(super) struct WriteRefused {
    pub code: i32,
    pub message: String,
}

/// Statements per command, and bytes: well below the server's 100,000 statements and
/// 16 MiB per command, so a command never needs splitting by the server.
const MAX_STATEMENTS: usize = 1000;
const MAX_COMMAND_BYTES: usize = 8 << 20;

/// Applies `statements` to `collection`, in order, in as few `update` commands as their size
/// allows — inside `session`'s transaction when given one. `write_concern` is for writes
/// outside a transaction (a command sent with `run_command` gets no default).
pub(super) async fn upsert_all(
    db: &Database,
    collection: &str,
    statements: &[Upsert],
    mut session: Option<&mut ClientSession>,
    write_concern: Option<&Document>,
) -> Result<(), MongoError> {
    let mut chunk: Vec<Bson> = Vec::new();
    let mut bytes = 0;
    for (i, s) in statements.iter().enumerate() {
        let statement = doc! { "q": &s.filter, "u": &s.update, "upsert": true };
        let size = RawDocumentBuf::from_document(&statement)
            .map(|raw| raw.as_bytes().len())
            .unwrap_or(MAX_COMMAND_BYTES);
        if !chunk.is_empty() && (chunk.len() >= MAX_STATEMENTS || bytes + size > MAX_COMMAND_BYTES)
        {
            send(
                db,
                collection,
                std::mem::take(&mut chunk),
                &mut session,
                write_concern,
            )
            .await?;
            bytes = 0;
        }
        bytes += size;
        chunk.push(Bson::Document(statement));
        if i + 1 == statements.len() {
            send(
                db,
                collection,
                std::mem::take(&mut chunk),
                &mut session,
                write_concern,
            )
            .await?;
        }
    }
    Ok(())
}

async fn send(
    db: &Database,
    collection: &str,
    updates: Vec<Bson>,
    session: &mut Option<&mut ClientSession>,
    write_concern: Option<&Document>,
) -> Result<(), MongoError> {
    let mut command = doc! { "update": collection, "updates": updates, "ordered": true };
    if let Some(wc) = write_concern {
        command.insert("writeConcern", wc.clone());
    }
    let reply = match session {
        Some(s) => db.run_command(command).session(&mut **s).await?,
        None => db.run_command(command).await?,
    };
    let refused = reply
        .get_array("writeErrors")
        .ok()
        .and_then(|errors| errors.first())
        .and_then(Bson::as_document)
        .or_else(|| reply.get_document("writeConcernError").ok());
    match refused {
        Some(e) => Err(MongoError::custom(WriteRefused {
            code: e.get_i32("code").unwrap_or(0),
            message: e.get_str("errmsg").unwrap_or("write refused").to_string(),
        })),
        None => Ok(()),
    }
}
