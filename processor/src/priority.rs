//! The CPU priority of background threads.
//!
//! Work that may lag behind requests without breaking a promise — standalone's indexing,
//! whose input is already durable in the journal — runs at a lower priority: under a burst it
//! yields the CPU to the requests it would otherwise slow down, and catches up once the burst
//! is over; when the machine is idle, the lower priority costs it nothing.

/// Lowers the calling thread's CPU priority to niceness 10 (see the module docs). Failing to
/// lower it only costs throughput, so it is logged, not returned.
pub fn lower_current_thread() {
    // The crate maps 0..=99 onto niceness 19..=-20; 22 is niceness 10 (a tenth of the CPU
    // share of a normal thread when both want it, so the store never stops altogether).
    let lowered = thread_priority::ThreadPriorityValue::try_from(22u8)
        .map_err(|e| e.to_string())
        .and_then(|value| {
            thread_priority::set_current_thread_priority(
                thread_priority::ThreadPriority::Crossplatform(value),
            )
            .map_err(|e| format!("{e:?}"))
        });
    if let Err(e) = lowered {
        tracing::warn!(error = %e, "cannot lower the CPU priority of a background thread");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_thread_runs_at_niceness_10_and_others_keep_theirs() {
        let niceness = || -> i64 {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
            // Fields after the parenthesised command name; niceness is field 19.
            let rest = stat.rsplit_once(") ").expect("comm").1;
            rest.split(' ')
                .nth(16)
                .expect("field")
                .parse()
                .expect("number")
        };
        let before = niceness();
        let lowered = std::thread::spawn(move || {
            super::lower_current_thread();
            niceness()
        })
        .join()
        .expect("thread");
        assert_eq!(lowered, 10);
        assert_eq!(niceness(), before, "only the calling thread is lowered");
    }
}
