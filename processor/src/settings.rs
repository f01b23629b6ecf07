//! Per-site settings kept in the store: goals and share links, as [`Record`]s (the store keeps
//! their JSON without reading it), checked and shaped here into the [`protocol::stats`] types.
//!
//! A share link's token is `<id>.<signature>`: the signature ([`Signer`], keyed by the admin
//! token) binds the id to its site, and the stored record makes it revocable — deleting it
//! makes the next request with the token a 401.

use protocol::stats::{Goal, GoalKind, NewGoal, NewShareLink, ShareLink};
use protocol::time::format_rfc3339_millis;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::signer::Signer;
use crate::store::{Record, RecordKind, Store, StoreError};

/// Goals one site may have.
pub const MAX_GOALS_PER_SITE: usize = 100;
/// Share links one site may have.
pub const MAX_SHARES_PER_SITE: usize = 100;
/// Longest goal value (event name or path pattern) and share label.
pub const MAX_SETTING_LEN: usize = 256;

/// Why a setting was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        field,
        message: message.into(),
    }
}

fn new_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn site(site: &str) -> Result<String, SettingsError> {
    protocol::validate::site(site.trim()).map_err(|e| invalid("site", e.message))
}

#[derive(Serialize, Deserialize)]
struct GoalBody {
    kind: GoalKind,
    value: String,
}

fn goal_of(r: Record) -> Option<Goal> {
    let body: GoalBody = serde_json::from_str(&r.body).ok()?;
    Some(Goal {
        id: r.id,
        site: r.site,
        kind: body.kind,
        value: body.value,
        created_at: format_rfc3339_millis(r.created),
    })
}

/// The goals of a site, oldest first.
pub async fn goals<S: Store + ?Sized>(store: &S, site: &str) -> Result<Vec<Goal>, StoreError> {
    Ok(store
        .records(RecordKind::Goal, Some(site.to_string()))
        .await?
        .into_iter()
        .filter_map(goal_of)
        .collect())
}

/// Adds a goal; the same kind and value again gives the existing goal and `false`.
pub async fn add_goal<S: Store + ?Sized>(
    store: &S,
    new: NewGoal,
    now_ms: i64,
) -> Result<(Goal, bool), SettingsError> {
    let site = site(&new.site)?;
    let value = new.value.trim().to_string();
    if value.is_empty() || value.chars().count() > MAX_SETTING_LEN {
        return Err(invalid(
            "value",
            format!("must be 1 to {MAX_SETTING_LEN} characters"),
        ));
    }
    if new.kind == GoalKind::Page && !value.starts_with('/') && !value.starts_with('*') {
        return Err(invalid(
            "value",
            "a page goal is a path: /thanks or /thanks/*",
        ));
    }
    let existing = goals(store, &site).await?;
    if let Some(g) = existing
        .iter()
        .find(|g| g.kind == new.kind && g.value == value)
    {
        return Ok((g.clone(), false));
    }
    if existing.len() >= MAX_GOALS_PER_SITE {
        return Err(invalid(
            "site",
            format!("at most {MAX_GOALS_PER_SITE} goals per site"),
        ));
    }
    let body = serde_json::to_string(&GoalBody {
        kind: new.kind,
        value,
    })
    .map_err(|e| StoreError::Backend(e.to_string()))?;
    let record = Record {
        kind: RecordKind::Goal,
        id: new_id(),
        site,
        created: now_ms,
        body,
    };
    store.put_record(record.clone()).await?;
    let goal = goal_of(record).ok_or_else(|| StoreError::Backend("unreadable goal".into()))?;
    Ok((goal, true))
}

#[derive(Serialize, Deserialize)]
struct ShareBody {
    #[serde(default)]
    label: Option<String>,
}

fn share_message(id: &str, site: &str) -> Vec<u8> {
    format!("{id}\n{site}").into_bytes()
}

fn share_of(signer: &Signer, r: Record) -> ShareLink {
    let label = serde_json::from_str::<ShareBody>(&r.body)
        .ok()
        .and_then(|b| b.label);
    let token = format!("{}.{}", r.id, signer.sign(&share_message(&r.id, &r.site)));
    ShareLink {
        url: format!(
            "/dashboard/?site={}#share={token}",
            url::form_urlencoded::byte_serialize(r.site.as_bytes()).collect::<String>()
        ),
        token,
        id: r.id,
        site: r.site,
        label,
        created_at: format_rfc3339_millis(r.created),
    }
}

/// Share links of one site, or of every site, oldest first.
pub async fn shares<S: Store + ?Sized>(
    store: &S,
    signer: &Signer,
    site: Option<&str>,
) -> Result<Vec<ShareLink>, StoreError> {
    Ok(store
        .records(RecordKind::Share, site.map(str::to_string))
        .await?
        .into_iter()
        .map(|r| share_of(signer, r))
        .collect())
}

/// Creates a share link.
pub async fn add_share<S: Store + ?Sized>(
    store: &S,
    signer: &Signer,
    new: NewShareLink,
    now_ms: i64,
) -> Result<ShareLink, SettingsError> {
    let site = site(&new.site)?;
    let label = new
        .label
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty());
    if label
        .as_ref()
        .is_some_and(|l| l.chars().count() > MAX_SETTING_LEN)
    {
        return Err(invalid(
            "label",
            format!("at most {MAX_SETTING_LEN} characters"),
        ));
    }
    if shares(store, signer, Some(&site)).await?.len() >= MAX_SHARES_PER_SITE {
        return Err(invalid(
            "site",
            format!("at most {MAX_SHARES_PER_SITE} share links per site"),
        ));
    }
    let body = serde_json::to_string(&ShareBody { label })
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    let record = Record {
        kind: RecordKind::Share,
        id: new_id(),
        site,
        created: now_ms,
        body,
    };
    store.put_record(record.clone()).await?;
    Ok(share_of(signer, record))
}

/// Revokes a share link; `false` when there was none.
pub async fn delete_share<S: Store + ?Sized>(store: &S, id: &str) -> Result<bool, StoreError> {
    match store.record(RecordKind::Share, id.to_string()).await? {
        Some(r) => store.delete_record(RecordKind::Share, r.site, r.id).await,
        None => Ok(false),
    }
}

/// The site a share token reads, if its signature holds and its link still exists.
pub async fn share_site<S: Store + ?Sized>(
    store: &S,
    signer: &Signer,
    token: &str,
) -> Result<Option<String>, StoreError> {
    let Some((id, signature)) = token.split_once('.') else {
        return Ok(None);
    };
    // Only well-formed ids reach the store.
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let Some(record) = store.record(RecordKind::Share, id.to_string()).await? else {
        return Ok(None);
    };
    Ok(signer
        .verify(&share_message(&record.id, &record.site), signature)
        .then_some(record.site))
}
