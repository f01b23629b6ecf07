//! The CPU priority of background threads.
//!
//! Work that may lag behind requests without breaking a promise — standalone's indexing,
//! whose input is already durable in the journal — runs at a lower priority: under a burst it
//! yields the CPU to the requests it would otherwise slow down, and catches up once the burst
//! is over; when the machine is idle, the lower priority costs it nothing.
//!
//! How low is a [`Background`]'s choice, and standalone changes it with the journal
//! ([`ShareControl`]):
//! - [`Share::Idle`] (`SCHED_IDLE`): only CPU time nothing else wants, while requests come in
//!   a burst. The burst then costs the requests nothing; the journal takes it at
//!   sequential-write speed and the store catches up after.
//! - [`Share::Low`] (niceness 10): a tenth of a normal thread's share when both want the CPU,
//!   the rest of the time. Without a burst the CPU that is busy is another program's, and
//!   the store must not wait for it to finish; and once the journal is half full the store
//!   takes this share even in a burst, so it always progresses and a machine kept busy cannot
//!   fill the journal by starving it.
//!
//! Leaving `SCHED_IDLE` again needs `CAP_SYS_NICE` (or an `RLIMIT_NICE` of at least 10).
//! Without it a [`Background`] never enters it and stays at niceness 10.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How much of the CPU a background thread takes when requests want it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// `SCHED_IDLE`: only time no other thread wants.
    Idle,
    /// Niceness 10, `SCHED_OTHER`.
    Low,
}

/// The priority of a group of background threads, switched together: each thread puts
/// itself at the current [`Share`] between units of work ([`Background::apply`]).
#[derive(Clone)]
pub struct Background {
    shared: Arc<Shared>,
}

struct Shared {
    idle: AtomicBool,
    can_leave_idle: bool,
}

thread_local! {
    /// The share this thread last put itself at.
    static APPLIED: Cell<Option<Share>> = const { Cell::new(None) };
}

impl Background {
    /// Starts at [`Share::Low`]; [`Share::Idle`] is taken only where the process may leave
    /// it again (see the module docs).
    pub fn new() -> Background {
        let can_leave_idle = std::thread::spawn(|| {
            set_niceness_10().is_ok()
                && set_policy(Share::Idle).is_ok()
                && set_policy(Share::Low).is_ok()
        })
        .join()
        .unwrap_or(false);
        if !can_leave_idle {
            tracing::info!(
                "background work runs at niceness 10 (SCHED_IDLE needs CAP_SYS_NICE to be left again)"
            );
        }
        Background {
            shared: Arc::new(Shared {
                idle: AtomicBool::new(false),
                can_leave_idle,
            }),
        }
    }

    /// The share the threads are asked to take.
    pub fn share(&self) -> Share {
        if self.shared.idle.load(Ordering::Relaxed) {
            Share::Idle
        } else {
            Share::Low
        }
    }

    /// Asks the threads to take only idle time (`true`, where the process may leave that
    /// again) or their low share (`false`), from their next unit of work on.
    pub fn set_idle(&self, idle: bool) {
        let idle = idle && self.shared.can_leave_idle;
        if self.shared.idle.swap(idle, Ordering::Relaxed) != idle {
            // At every burst's start and end: debug, not info.
            tracing::debug!(share = ?self.share(), "background work changes its CPU share");
        }
    }

    /// Puts the calling thread at the current share unless it is there already: cheap, so
    /// background threads call it before each unit of work. Failing only costs throughput,
    /// so it is logged, not returned.
    pub fn apply(&self) {
        let wanted = self.share();
        let applied = APPLIED.with(Cell::get);
        if applied == Some(wanted) {
            return;
        }
        let result = match applied {
            None => set_niceness_10().and_then(|()| set_policy(wanted)),
            Some(_) => set_policy(wanted),
        };
        match result {
            Ok(()) => APPLIED.with(|a| a.set(Some(wanted))),
            Err(e) => {
                // Not retried: the thread keeps the priority it has.
                APPLIED.with(|a| a.set(Some(wanted)));
                tracing::warn!(error = %e, "cannot change the CPU priority of a background thread");
            }
        }
    }
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background")
            .field("share", &self.share())
            .field("can_leave_idle", &self.shared.can_leave_idle)
            .finish()
    }
}

impl Default for Background {
    fn default() -> Self {
        Background::new()
    }
}

/// Bytes the journal must take within one sample of its backlog for the store to defer to
/// requests: about 8,000 events a second. Below that the store keeps up at any share, and
/// the CPU that is busy is someone else's, whom the store must not wait for.
pub const BURST_BYTES: u64 = 256 * 1024;

/// Which share the store should take, sample by sample of the journal (see the module docs).
#[derive(Debug, Default)]
pub struct ShareControl {
    /// The journal got half full and has not been down to a quarter since: the hysteresis
    /// that keeps the share from flipping at every sample around one line.
    filling: bool,
}

impl ShareControl {
    /// The share at a backlog of `backlog` of at most `capacity` bytes, the journal having
    /// taken `appended` bytes since the last sample: idle only in a burst of requests while
    /// the journal has room; low from half full on until it is down to a quarter, and low
    /// whenever there is no burst.
    pub fn next(&mut self, backlog: u64, capacity: u64, appended: u64) -> Share {
        if backlog >= capacity / 2 {
            self.filling = true;
        } else if backlog <= capacity / 4 {
            self.filling = false;
        }
        if appended >= BURST_BYTES && !self.filling {
            Share::Idle
        } else {
            Share::Low
        }
    }
}

fn set_niceness_10() -> Result<(), String> {
    // The crate maps 0..=99 onto niceness 19..=-20; 22 is niceness 10.
    let value = thread_priority::ThreadPriorityValue::try_from(22u8).map_err(|e| e.to_string())?;
    thread_priority::set_thread_priority_and_policy(
        thread_priority::thread_native_id(),
        thread_priority::ThreadPriority::Crossplatform(value),
        thread_priority::ThreadSchedulePolicy::Normal(
            thread_priority::NormalThreadSchedulePolicy::Other,
        ),
    )
    .map_err(|e| format!("{e:?}"))
}

/// Switches the calling thread between `SCHED_IDLE` and `SCHED_OTHER`, keeping its niceness.
/// (The thread-priority crate sets the niceness too whenever it sets a normal policy, and
/// `SCHED_IDLE` admits only 0, so this one call is made directly.)
#[cfg(target_os = "linux")]
fn set_policy(share: Share) -> Result<(), String> {
    let policy = match share {
        Share::Idle => libc::SCHED_IDLE,
        Share::Low => libc::SCHED_OTHER,
    };
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is the calling
    // thread. The call reads nothing else.
    #[allow(unsafe_code)]
    let result = unsafe { libc::sched_setscheduler(0, policy, &param) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_policy(share: Share) -> Result<(), String> {
    match share {
        Share::Low => Ok(()),
        Share::Idle => Err("SCHED_IDLE is Linux's".into()),
    }
}

/// (niceness, scheduling policy) of the calling thread, from `/proc`.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn thread_priority() -> (i64, i64) {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
    // Fields after the parenthesised command name: niceness is field 19, policy 41.
    let rest: Vec<&str> = stat.rsplit_once(") ").expect("comm").1.split(' ').collect();
    let field = |n: usize| rest[n - 3].parse().expect("number");
    (field(19), field(41))
}

#[cfg(test)]
impl Background {
    /// Whether [`Share::Idle`] is taken at all here (see [`Background::new`]).
    pub(crate) fn can_leave_idle(&self) -> bool {
        self.shared.can_leave_idle
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    use super::thread_priority as priority;

    #[test]
    fn threads_follow_the_share_they_are_asked_for_and_others_keep_theirs() {
        let background = Background::new();
        let before = priority();
        let (ask, asked) = std::sync::mpsc::channel::<bool>();
        let (tell, told) = std::sync::mpsc::channel();
        let thread = {
            let background = background.clone();
            std::thread::spawn(move || {
                while let Ok(idle) = asked.recv() {
                    background.set_idle(idle);
                    background.apply();
                    tell.send(priority()).expect("send");
                }
            })
        };
        ask.send(false).expect("ask");
        assert_eq!(
            told.recv().expect("priority"),
            (10, libc::SCHED_OTHER as i64)
        );
        ask.send(true).expect("ask");
        let idle = told.recv().expect("priority");
        if background.shared.can_leave_idle {
            assert_eq!(idle, (10, libc::SCHED_IDLE as i64));
            ask.send(false).expect("ask");
            assert_eq!(
                told.recv().expect("priority"),
                (10, libc::SCHED_OTHER as i64)
            );
        } else {
            // Unprivileged: never idle, so never stuck there.
            assert_eq!(idle, (10, libc::SCHED_OTHER as i64));
        }
        drop(ask);
        thread.join().expect("thread");
        assert_eq!(priority(), before, "only the background thread changed");
    }

    #[test]
    fn the_share_is_idle_in_a_burst_until_half_full_and_again_at_a_quarter() {
        let (cap, burst) = (1000, BURST_BYTES);
        let mut control = ShareControl::default();
        // A burst begins with some backlog already: still the requests' turn.
        assert_eq!(control.next(300, cap, burst), Share::Idle);
        assert_eq!(control.next(499, cap, burst), Share::Idle);
        assert_eq!(control.next(500, cap, burst), Share::Low);
        assert_eq!(control.next(300, cap, burst), Share::Low);
        assert_eq!(control.next(250, cap, burst), Share::Idle);
        // No burst: the CPU is busy with something else, which the store must not wait for.
        assert_eq!(control.next(0, cap, burst - 1), Share::Low);
        assert_eq!(control.next(100, cap, 0), Share::Low);
        assert_eq!(control.next(100, cap, burst), Share::Idle);
    }
}
