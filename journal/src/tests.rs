use super::*;
use std::time::Duration;

fn config(dir: &Path) -> JournalConfig {
    JournalConfig::new(dir)
}

fn payloads(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
        .collect()
}

fn read_all(reader: &mut JournalReader) -> Vec<Record> {
    reader.read(usize::MAX, usize::MAX).expect("read")
}

#[tokio::test]
async fn records_come_back_in_order_and_reading_resumes_at_the_commit_after_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, mut reader) = open(config(dir.path())).expect("open");
    let mut ends = Vec::new();
    for i in 0..5 {
        ends.push(
            journal
                .append(format!("record {i}").into_bytes())
                .await
                .expect("append"),
        );
    }
    assert!(ends.windows(2).all(|w| w[0] < w[1]), "{ends:?}");
    assert_eq!(journal.durable_end(), ends[4]);
    let first = reader.read(2, usize::MAX).expect("read");
    assert_eq!(payloads(&first), ["record 0", "record 1"]);
    assert_eq!(first[1].end, ends[1]);
    reader.commit(first[1].end).expect("commit");
    assert_eq!(journal.backlog(), ends[4] - ends[1]);
    drop((journal, reader));

    let (journal, mut reader) = open(config(dir.path())).expect("reopen");
    assert_eq!(reader.position(), ends[1]);
    assert_eq!(
        payloads(&read_all(&mut reader)),
        ["record 2", "record 3", "record 4"]
    );
    let end = journal
        .append(b"record 5".to_vec())
        .await
        .expect("append after reopen");
    assert_eq!(payloads(&read_all(&mut reader)), ["record 5"]);
    assert_eq!(reader.position(), end);
}

#[tokio::test]
async fn a_torn_tail_is_cut_off_on_open_and_appends_follow_the_last_whole_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, reader) = open(config(dir.path())).expect("open");
    for i in 0..3 {
        journal
            .append(format!("whole {i}").into_bytes())
            .await
            .expect("append");
    }
    let durable = journal.durable_end();
    drop((journal, reader));
    // What a crash in the middle of a write leaves: a header promising more than follows.
    let segment = segment_path(dir.path(), 0);
    // The write lands right after the last whole record, over the zero-filled space.
    let file = OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("segment");
    let mut torn = 100u32.to_le_bytes().to_vec();
    torn.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    file.write_all_at(&torn, durable).expect("torn write");
    drop(file);

    let (journal, mut reader) = open(config(dir.path())).expect("reopen");
    assert_eq!(journal.durable_end(), durable);
    assert_eq!(fs::metadata(&segment).expect("meta").len(), durable);
    journal.append(b"after".to_vec()).await.expect("append");
    assert_eq!(
        payloads(&read_all(&mut reader)),
        ["whole 0", "whole 1", "whole 2", "after"]
    );
}

#[tokio::test]
async fn a_bad_checksum_at_the_tail_is_cut_off_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, reader) = open(config(dir.path())).expect("open");
    journal.append(b"kept".to_vec()).await.expect("append");
    let kept = journal.durable_end();
    let end = journal.append(b"damaged".to_vec()).await.expect("append");
    drop((journal, reader));
    let segment = segment_path(dir.path(), 0);
    let mut bytes = fs::read(&segment).expect("read");
    let last = usize::try_from(end).expect("small") - 1;
    bytes[last] ^= 0xff;
    fs::write(&segment, bytes).expect("write");

    let (journal, mut reader) = open(config(dir.path())).expect("reopen");
    assert_eq!(journal.durable_end(), kept);
    assert_eq!(payloads(&read_all(&mut reader)), ["kept"]);
}

#[tokio::test]
async fn segments_roll_and_the_stored_ones_are_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut small = config(dir.path());
    small.segment_bytes = 64;
    let (journal, mut reader) = open(small.clone()).expect("open");
    for i in 0..20 {
        journal
            .append(format!("event number {i:02}").into_bytes())
            .await
            .expect("append");
    }
    assert!(list_segments(dir.path()).expect("list").len() > 5);
    let all = read_all(&mut reader);
    assert_eq!(all.len(), 20);
    assert_eq!(payloads(&all)[19], "event number 19");
    reader.commit(all[19].end).expect("commit");
    // Only the segment being written stays.
    assert_eq!(list_segments(dir.path()).expect("list").len(), 1);
    drop((journal, reader));

    let (journal, mut reader) = open(small).expect("reopen");
    assert!(read_all(&mut reader).is_empty());
    journal.append(b"next".to_vec()).await.expect("append");
    assert_eq!(payloads(&read_all(&mut reader)), ["next"]);
}

#[tokio::test]
async fn appends_are_refused_while_the_backlog_is_full_and_taken_again_after_a_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tight = config(dir.path());
    tight.max_backlog_bytes = 100;
    let (journal, mut reader) = open(tight).expect("open");
    let mut refused = None;
    for i in 0..50 {
        match journal.append(vec![b'x'; 20]).await {
            Ok(_) => {}
            Err(e) => {
                refused = Some((i, e));
                break;
            }
        }
    }
    let (taken, error) = refused.expect("the backlog fills up");
    assert!(
        matches!(error, JournalError::Full { limit: 100, .. }),
        "{error}"
    );
    assert!(!journal.is_ready());
    let records = read_all(&mut reader);
    assert_eq!(records.len(), taken);
    reader.commit(records[taken - 1].end).expect("commit");
    assert!(journal.is_ready());
    journal
        .append(b"room again".to_vec())
        .await
        .expect("append");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_all_land_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, mut reader) = open(config(dir.path())).expect("open");
    let mut tasks = Vec::new();
    for task in 0..16 {
        let journal = journal.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                journal
                    .append(format!("{task}-{i}").into_bytes())
                    .await
                    .expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let mut seen = payloads(&read_all(&mut reader));
    seen.sort();
    let mut expected: Vec<String> = (0..16)
        .flat_map(|t| (0..50).map(move |i| format!("{t}-{i}")))
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn oversized_and_empty_records_are_refused_and_waiting_for_the_consumer_resolves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, mut reader) = open(config(dir.path())).expect("open");
    assert_eq!(
        journal.append(vec![0; MAX_RECORD + 1]).await,
        Err(JournalError::TooLarge(MAX_RECORD + 1))
    );
    // A zero header marks the end of a segment's records.
    assert_eq!(journal.append(Vec::new()).await, Err(JournalError::Empty));
    let end = journal.append(b"one".to_vec()).await.expect("append");
    let waiting = tokio::spawn({
        let journal = journal.clone();
        async move { journal.wait_committed(end).await }
    });
    journal.wait_durable_past(0).await;
    let records = read_all(&mut reader);
    reader.commit(records[0].end).expect("commit");
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("wait_committed resolves")
        .expect("task");
}

#[test]
fn an_unreadable_consumer_position_means_reading_from_the_oldest_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let (journal, reader) = open(config(dir.path())).expect("open");
    runtime
        .block_on(journal.append(b"again".to_vec()))
        .expect("append");
    drop((journal, reader));
    fs::write(dir.path().join(CONSUMER_FILE), b"garbage").expect("write");
    let (_journal, mut reader) = open(config(dir.path())).expect("reopen");
    assert_eq!(reader.position(), 0);
    assert_eq!(payloads(&read_all(&mut reader)), ["again"]);
}

#[tokio::test]
async fn a_segment_left_with_zeros_after_its_records_is_read_past() {
    // What a crash between cutting a full segment back and starting the next can leave: the
    // older segment still ends in zero-filled space.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut small = config(dir.path());
    small.segment_bytes = 64;
    let (journal, reader) = open(small.clone()).expect("open");
    for i in 0..6 {
        journal
            .append(format!("event number {i:02}").into_bytes())
            .await
            .expect("append");
    }
    drop((journal, reader));
    let first = list_segments(dir.path()).expect("list")[0];
    let file = OpenOptions::new()
        .append(true)
        .open(segment_path(dir.path(), first))
        .expect("segment");
    file.set_len(file.metadata().expect("meta").len() + 4096)
        .expect("zeros");
    drop(file);
    let (_journal, mut reader) = open(small).expect("reopen");
    assert_eq!(read_all(&mut reader).len(), 6);
}

#[tokio::test]
async fn the_space_ahead_of_the_records_is_zero_filled_and_cut_back_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, reader) = open(config(dir.path())).expect("open");
    let end = journal.append(b"first".to_vec()).await.expect("append");
    let segment = segment_path(dir.path(), 0);
    assert!(
        fs::metadata(&segment).expect("meta").len() > end,
        "zero-filled ahead"
    );
    drop((journal, reader));
    let (journal, mut reader) = open(config(dir.path())).expect("reopen");
    assert_eq!(fs::metadata(&segment).expect("meta").len(), end);
    journal.append(b"second".to_vec()).await.expect("append");
    assert_eq!(payloads(&read_all(&mut reader)), ["first", "second"]);
}

#[tokio::test]
async fn a_segment_the_consumer_has_taken_is_deleted_once_the_journal_goes_quiet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, mut reader) = open(config(dir.path())).expect("open");
    let record = vec![b'e'; 64 * 1024];
    for _ in 0..17 {
        journal.append(record.clone()).await.expect("append");
    }
    let all = read_all(&mut reader);
    // Everything taken and no append after it: the commit itself has the segment closed.
    reader.commit(all[16].end).expect("commit");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while list_segments(dir.path()).expect("list") != [all[16].end] {
        assert!(
            std::time::Instant::now() < deadline,
            "still on disk: {:?}",
            list_segments(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The journal goes on where it was, in a segment of its own.
    let end = journal.append(b"next".to_vec()).await.expect("append");
    assert_eq!(payloads(&read_all(&mut reader)), ["next"]);
    assert_eq!(end, all[16].end + 12);
    reader.commit(end).expect("commit");
    let on_disk = fs::metadata(segment_path(dir.path(), all[16].end))
        .expect("meta")
        .len();
    assert!(on_disk <= 12 + ZERO_AHEAD, "{on_disk} bytes left on disk");
    drop((journal, reader));
    let (journal, mut reader) = open(config(dir.path())).expect("reopen");
    assert_eq!(reader.position(), end);
    journal.append(b"more".to_vec()).await.expect("append");
    assert_eq!(payloads(&read_all(&mut reader)), ["more"]);
}

/// Waiting takes no lock while the position is already past (the appends' path), and a wait
/// that is given up (a timeout drops it) neither misses later changes nor leaves a waiter
/// counted, so the writer goes back to advancing without waking anybody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_given_up_is_forgotten_and_later_waits_are_woken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, _reader) = open(config(dir.path())).expect("open");
    let end = journal.append(b"one".to_vec()).await.expect("append");
    journal.wait_durable_past(0).await;

    let given_up =
        tokio::time::timeout(Duration::from_millis(20), journal.wait_durable_past(end)).await;
    assert!(given_up.is_err(), "nothing past {end} yet");
    assert_eq!(journal.shared.durable.waiters.load(Ordering::SeqCst), 0);

    for round in 0..50 {
        let position = journal.durable_end();
        let waiting = tokio::spawn({
            let journal = journal.clone();
            async move { journal.wait_durable_past(position).await }
        });
        journal
            .append(format!("round {round}").into_bytes())
            .await
            .expect("append");
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("task");
    }
    assert_eq!(journal.shared.durable.waiters.load(Ordering::SeqCst), 0);
}
