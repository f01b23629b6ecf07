//! The visit: a session id that lives in `sessionStorage` (one per tab, no cookies) and
//! ends after 30 minutes without activity.

use alloc::string::String;

use crate::ids::Rng;
use crate::json::write_u64;

/// Inactivity after which the next event starts a new session (the usual web-analytics
/// definition, and what the dashboard's "visits" assume).
pub const SESSION_TIMEOUT_MS: u64 = 30 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    /// Time of the last recorded event.
    pub last_activity: u64,
    /// A `session_end` was sent for it (page hidden for good). Activity afterwards (bfcache
    /// restore, next page in the same tab) continues the same session.
    pub ended: bool,
}

impl Session {
    pub fn start(now: u64, rng: &mut Rng) -> Self {
        Session {
            id: rng.id(now),
            last_activity: now,
            ended: false,
        }
    }

    pub fn is_expired(&self, now: u64) -> bool {
        now.saturating_sub(self.last_activity) > SESSION_TIMEOUT_MS
    }

    /// `id|last_activity|ended|user_id` for sessionStorage, with the tab's `identify()`
    /// user id. Ids never contain `|`; the user id comes last, so it may.
    pub fn encode(&self, user_id: Option<&str>) -> String {
        let mut s = String::with_capacity(48);
        s.push_str(&self.id);
        s.push('|');
        write_u64(&mut s, self.last_activity);
        s.push_str(if self.ended { "|1|" } else { "|0|" });
        if let Some(u) = user_id {
            s.push_str(u);
        }
        s
    }

    /// Anything unexpected (another script's value, an old format) gives `None`, which
    /// simply starts a new session.
    pub fn decode(s: &str) -> Option<(Self, Option<String>)> {
        // id|last|ended|user — the user id may itself contain `|`.
        let (id, rest) = crate::text::split_once(s, b'|')?;
        let (last, rest) = crate::text::split_once(rest, b'|')?;
        let (ended, user_id) = crate::text::split_once(rest, b'|')?;
        if !crate::ids::is_valid(id) || !last.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let last_activity = crate::json::parse_u64(last.as_bytes())?;
        let ended = ended == "1";
        let user_id = Some(user_id).filter(|u| !u.is_empty()).map(String::from);
        let session = Session {
            id: String::from(id),
            last_activity,
            ended,
        };
        Some((session, user_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_after_thirty_idle_minutes() {
        let s = Session::start(1_000, &mut Rng::new(1));
        assert!(!s.is_expired(1_000 + SESSION_TIMEOUT_MS));
        assert!(s.is_expired(1_000 + SESSION_TIMEOUT_MS + 1));
        // A clock that went backwards (user changed it) never expires a session.
        assert!(!s.is_expired(0));
    }

    #[test]
    fn storage_round_trip() {
        let mut s = Session::start(1_701_234_567_890, &mut Rng::new(9));
        assert_eq!(Session::decode(&s.encode(None)), Some((s.clone(), None)));
        s.ended = true;
        let user = Some("user|42 é".to_string());
        assert_eq!(Session::decode(&s.encode(user.as_deref())), Some((s, user)));
    }

    #[test]
    fn garbage_is_ignored() {
        for bad in ["", "abc", "has space|1|0|", "AAAAAAAA|x|0|", "AAAAAAAA|1"] {
            assert_eq!(Session::decode(bad), None, "{bad}");
        }
    }
}
