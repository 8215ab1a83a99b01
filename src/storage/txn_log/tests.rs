//! Log writer and recovery: round trips over several segments, a cut at every offset of
//! the last records, flipped bytes in the middle, the cross-segment rules of the decision
//! table in `recovery.rs`.

use super::*;
use crate::storage::recovery::{recover_log, RecoveryError, RecoveryMode};
use crate::storage::tests::support::{run, TempDir, Workload};
use crate::tree::TxnRecord;

fn small_opts() -> LogOptions {
    LogOptions {
        pre_alloc_bytes: 4096,
        force_sync: true,
        fsync_warning_threshold_ms: 1000,
        segment_bytes_max: None,
    }
}

/// Writes `batches` of records from a seeded workload into `dir`; returns them.
fn write_log(dir: &Path, opts: LogOptions, batches: &[usize], seed: u64) -> Vec<TxnRecord> {
    let dir = dir.to_path_buf();
    let batches = batches.to_vec();
    run(move || async move {
        let mut w = Workload::new(seed);
        let mut writer = LogWriter::open(&dir, opts, 0).await.unwrap();
        let mut all = Vec::new();
        for n in batches {
            let recs: Vec<TxnRecord> = (0..n).map(|_| w.next()).collect();
            writer.append(&recs);
            all.extend(recs);
            let synced = writer.sync().await.unwrap();
            assert_eq!(synced, all.last().unwrap().zxid);
        }
        writer.close().await.unwrap();
        all
    })
}

/// Frame offsets of every record of a segment.
fn frame_offsets(seg: &[u8]) -> Vec<(usize, usize)> {
    let scan = scan_segment(seg).unwrap();
    assert_eq!(scan.end, ScanEnd::Clean);
    let mut out = Vec::new();
    for (off, _) in &scan.records {
        let Frame::Record { frame_bytes, .. } = read_frame(seg, *off) else {
            panic!()
        };
        out.push((*off, off + frame_bytes));
    }
    out
}

#[test]
fn records_round_trip_across_segments() {
    let dir = TempDir::new("log-rt");
    let opts = LogOptions {
        segment_bytes_max: Some(2048),
        ..small_opts()
    };
    let written = write_log(&dir.0, opts, &[1, 5, 20, 64, 3, 1, 40], 1);
    let segs = list_segments(&dir.0).unwrap();
    assert!(segs.len() >= 3, "rolled into several segments: {segs:?}");
    let r = recover_log(&dir.0, 0, RecoveryMode::Repair).unwrap();
    assert_eq!(r.records, written);
    assert_eq!(r.last_zxid, written.last().unwrap().zxid);
    assert!(r.torn.is_none());
    // After a zxid: only the later records, and old segments are skipped.
    let r = recover_log(&dir.0, 100, RecoveryMode::ReadOnly).unwrap();
    assert_eq!(r.records, written[100..]);
    assert!(r.segments.len() < segs.len());
    // Names are the first zxid in hex; each file is a multiple of the preallocation size.
    for (zxid, p) in &segs {
        assert_eq!(
            p.file_name().unwrap().to_str().unwrap(),
            format!("log.{zxid:x}")
        );
        assert_eq!(std::fs::metadata(p).unwrap().len() % 4096, 0);
    }
}

/// A segment is never extended: a batch that does not fit in what is left of it goes to
/// a new segment, made with room for it (whole multiples of the preallocation size,
/// several for a batch larger than one), and a batch that fits goes on in the same segment.
#[test]
fn a_batch_that_does_not_fit_rolls_to_a_segment_made_for_it() {
    let dir = TempDir::new("log-ext");
    let written = write_log(&dir.0, small_opts(), &[200, 300, 1], 2);
    let segs = list_segments(&dir.0).unwrap();
    assert_eq!(
        segs.iter().map(|(z, _)| *z).collect::<Vec<_>>(),
        vec![1, 201],
        "the third batch fits after the second"
    );
    for (_, path) in &segs {
        let len = std::fs::metadata(path).unwrap().len();
        assert!(len > 4096 && len.is_multiple_of(4096), "{len}");
    }
    assert_eq!(
        recover_log(&dir.0, 0, RecoveryMode::Repair)
            .unwrap()
            .records,
        written
    );
}

/// Cut the newest segment at every offset of its last three records, both as a shorter
/// file and as zeros from the cut on: recovery keeps exactly the whole records before the
/// cut, repairs the tail, and a second recovery finds a clean log.
#[test]
fn cut_at_every_offset_of_the_last_records() {
    let dir = TempDir::new("log-cut");
    let written = write_log(&dir.0, small_opts(), &[4, 3, 1, 1, 1], 3);
    let segs = list_segments(&dir.0).unwrap();
    let (_, seg_path) = segs.last().unwrap().clone();
    let original = std::fs::read(&seg_path).unwrap();
    let frames = frame_offsets(&original);
    let from = frames[frames.len() - 3].0;
    let to = frames.last().unwrap().1;
    for cut in from..=to {
        for zero_fill in [false, true] {
            let work = TempDir::new("log-cut-case");
            let p = work.0.join(seg_path.file_name().unwrap());
            let mut bytes = original.clone();
            if zero_fill {
                bytes[cut..].fill(0);
            } else {
                bytes.truncate(cut);
            }
            std::fs::write(&p, &bytes).unwrap();
            // A record survives if its bytes do (zeroing can leave a record whose last bytes
            // were zeros already intact).
            let kept = frames
                .iter()
                .take_while(|(start, end)| bytes.get(*start..*end) == original.get(*start..*end))
                .count();
            let r = recover_log(&work.0, 0, RecoveryMode::Repair)
                .unwrap_or_else(|e| panic!("cut {cut} zero_fill {zero_fill}: {e}"));
            assert_eq!(r.records, written[..kept], "cut {cut}");
            let at_boundary = frames.get(kept).is_none_or(|(start, _)| {
                bytes.len() <= *start || bytes[*start..].iter().all(|&b| b == 0)
            });
            assert_eq!(
                r.torn.is_some(),
                !at_boundary,
                "cut {cut} zero_fill {zero_fill}"
            );
            let again = recover_log(&work.0, 0, RecoveryMode::Repair).unwrap();
            assert!(again.torn.is_none(), "repaired at cut {cut}");
            assert_eq!(again.records, written[..kept]);
        }
    }
}

/// A flipped byte in a record followed by good ones is corruption, named by file and
/// offset; in the last record it is a torn tail.
#[test]
fn flipped_bytes_in_the_middle_refuse_to_start() {
    let dir = TempDir::new("log-flip");
    let written = write_log(&dir.0, small_opts(), &[10, 10], 4);
    let (_, seg_path) = list_segments(&dir.0).unwrap().pop().unwrap();
    let original = std::fs::read(&seg_path).unwrap();
    let frames = frame_offsets(&original);
    for (i, (start, end)) in frames.iter().enumerate() {
        for at in [*start, start + 2, start + 5, start + 9, end - 1] {
            let mut bytes = original.clone();
            bytes[at] ^= 0x10;
            std::fs::write(&seg_path, &bytes).unwrap();
            let r = recover_log(&dir.0, 0, RecoveryMode::ReadOnly);
            if i + 1 < frames.len() {
                match r {
                    Err(RecoveryError::CorruptRecord { file, offset, .. }) => {
                        assert_eq!(file, seg_path);
                        assert_eq!(offset, *start, "flip at {at}");
                    }
                    other => panic!("flip at {at} of record {i}: {other:?}"),
                }
            } else {
                let r = r.unwrap();
                assert_eq!(r.records, written[..i]);
                assert_eq!(r.torn.unwrap().offset, *start);
            }
        }
    }
    std::fs::write(&seg_path, &original).unwrap();
    assert_eq!(
        recover_log(&dir.0, 0, RecoveryMode::ReadOnly)
            .unwrap()
            .records,
        written
    );
}

#[test]
fn a_torn_tail_before_a_newer_segment_is_corruption() {
    let dir = TempDir::new("log-old-torn");
    let opts = LogOptions {
        segment_bytes_max: Some(1024),
        ..small_opts()
    };
    write_log(&dir.0, opts, &[10, 10, 10, 10], 5);
    let segs = list_segments(&dir.0).unwrap();
    assert!(segs.len() >= 2);
    let first = &segs[0].1;
    let mut bytes = std::fs::read(first).unwrap();
    let frames = frame_offsets(&bytes);
    let (start, end) = *frames.last().unwrap();
    bytes[start..end].fill(0);
    bytes[start] = 7;
    std::fs::write(first, &bytes).unwrap();
    assert!(matches!(
        recover_log(&dir.0, 0, RecoveryMode::Repair),
        Err(RecoveryError::TornTailBeforeNewerSegment { .. })
    ));
}

#[test]
fn a_missing_segment_is_a_gap() {
    let dir = TempDir::new("log-gap");
    let opts = LogOptions {
        segment_bytes_max: Some(1024),
        ..small_opts()
    };
    write_log(&dir.0, opts, &[10, 10, 10, 10], 6);
    let segs = list_segments(&dir.0).unwrap();
    assert!(segs.len() >= 3);
    std::fs::remove_file(&segs[1].1).unwrap();
    assert!(matches!(
        recover_log(&dir.0, 0, RecoveryMode::Repair),
        Err(RecoveryError::LogGap { .. })
    ));
}

#[test]
fn header_and_name_are_checked() {
    let dir = TempDir::new("log-hdr");
    write_log(&dir.0, small_opts(), &[3], 7);
    let (_, p) = list_segments(&dir.0).unwrap().pop().unwrap();
    std::fs::rename(&p, segment_path(&dir.0, 2)).unwrap();
    assert!(matches!(
        recover_log(&dir.0, 0, RecoveryMode::Repair),
        Err(RecoveryError::SegmentNameMismatch { .. })
    ));
    let p = segment_path(&dir.0, 2);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[17] ^= 1;
    std::fs::write(&p, &bytes).unwrap();
    assert!(matches!(
        recover_log(&dir.0, 0, RecoveryMode::Repair),
        Err(RecoveryError::BadSegmentHeader { .. })
    ));
}

/// A crash after the log switched to a spare segment and wrote records in it, before the
/// spare's rename to `log.<zxid>` reached the disk: recovery adopts the spare by its header
/// (renames it in Repair mode, reads it in place in ReadOnly mode), and removes a spare that
/// holds only zeros.
#[test]
fn a_spare_the_log_switched_to_is_adopted_by_its_header() {
    let dir = TempDir::new("log-spare-adopt");
    let opts = LogOptions {
        segment_bytes_max: Some(1024),
        ..small_opts()
    };
    let written = write_log(&dir.0, opts, &[10, 10, 10, 10], 9);
    let segs = list_segments(&dir.0).unwrap();
    assert!(segs.len() >= 2);
    let (newest_zxid, newest) = segs.last().unwrap().clone();
    let switched = dir.0.join(layout::spare_segment_name(3));
    std::fs::rename(&newest, &switched).unwrap();
    let unused = dir.0.join(layout::spare_segment_name(4));
    std::fs::write(&unused, vec![0u8; 4096]).unwrap();

    let read_only = recover_log(&dir.0, 0, RecoveryMode::ReadOnly).unwrap();
    assert_eq!(read_only.records, written, "read in place");
    assert!(
        switched.exists() && unused.exists(),
        "read-only touches nothing"
    );

    let repaired = recover_log(&dir.0, 0, RecoveryMode::Repair).unwrap();
    assert_eq!(repaired.records, written);
    assert!(!switched.exists() && !unused.exists());
    assert_eq!(
        list_segments(&dir.0).unwrap(),
        segs,
        "renamed to log.{newest_zxid:x}"
    );
}

/// Rolls switch to the spare segment made ahead: the log reads back whole, each segment
/// under its own name, and closing the writer leaves no spare behind.
#[test]
fn rolls_switch_to_the_spare_made_ahead() {
    let dir = TempDir::new("log-spare-roll");
    let log_dir = dir.0.clone();
    let (written, switched) = run(move || async move {
        let opts = LogOptions {
            segment_bytes_max: Some(2048),
            ..small_opts()
        };
        let mut w = Workload::new(10);
        let mut writer = LogWriter::open(&log_dir, opts, 0).await.unwrap();
        let mut all = Vec::new();
        let mut switched = 0;
        for _ in 0..12 {
            let recs: Vec<TxnRecord> = (0..8).map(|_| w.next()).collect();
            writer.append(&recs);
            all.extend(recs);
            writer.sync().await.unwrap();
            switched += usize::from(writer.on_spare_segment());
            writer.spare_ready().await;
        }
        writer.close().await.unwrap();
        (all, switched)
    });
    assert!(switched > 0, "no roll used a spare");
    let segs = list_segments(&dir.0).unwrap();
    assert!(segs.len() >= 3, "{segs:?}");
    let recovered = recover_log(&dir.0, 0, RecoveryMode::ReadOnly).unwrap();
    assert_eq!(recovered.records, written);
    let names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".tmp")),
        "left behind: {names:?}"
    );
}

/// A spare's zeros keep pace with the log (`SparePace`): while the log writes, they are
/// never more than twice the log's bytes since the spare was begun (and one chunk) ahead,
/// and once the log has written half the spare's size the spare is made with no more log
/// and nobody hurrying it.
#[test]
fn a_spare_is_zero_filled_at_the_pace_of_the_log() {
    const SPARE_BYTES: u64 = 1 << 20;
    let dir = TempDir::new("log-spare-pace");
    let log_dir = dir.0.clone();
    run(move || async move {
        let opts = LogOptions {
            pre_alloc_bytes: SPARE_BYTES,
            ..small_opts()
        };
        let mut w = Workload::new(12);
        let mut writer = LogWriter::open(&log_dir, opts, 0).await.unwrap();
        // Only the log's bytes give credit here, however slow this machine is.
        writer.set_spare_idle_after(std::time::Duration::from_secs(3600));
        // The first batch takes the spare made since the open (a roll hurries it); the
        // next spare is begun then. Log bytes are counted from before it: at most what
        // that spare counts from.
        let (start, _) = writer.spare_pace_seen();
        writer.append(&[w.next()]);
        writer.sync().await.unwrap();
        let chunk = layout::DIRECT_ZERO_CHUNK_BYTES as u64;
        // The spare being made: a `log.next.*` file still all zeros. The one the log
        // switched to has a header, and may keep that name a moment longer: its rename
        // runs in the background, so it may also be gone between the listing and the open.
        let spare_bytes = || {
            use std::io::Read;
            let mut found = Vec::new();
            for e in std::fs::read_dir(&log_dir).unwrap() {
                let e = e.unwrap();
                if !e.file_name().to_string_lossy().starts_with("log.next.") {
                    continue;
                }
                let Ok(file) = std::fs::File::open(e.path()) else {
                    continue;
                };
                let len = file.metadata().unwrap().len();
                let mut head = Vec::new();
                file.take(SEGMENT_HEADER_BYTES as u64)
                    .read_to_end(&mut head)
                    .unwrap();
                if head.iter().all(|&b| b == 0) {
                    found.push(len);
                }
            }
            assert!(found.len() <= 1, "one spare at a time: {found:?}");
            found.first().copied().unwrap_or(0)
        };
        let mut logged = 0;
        while 2 * logged + chunk < SPARE_BYTES {
            let recs: Vec<TxnRecord> = (0..20).map(|_| w.next()).collect();
            writer.append(&recs);
            writer.sync().await.unwrap();
            let (log_bytes, made) = writer.spare_pace_seen();
            logged = log_bytes - start;
            let zeros = spare_bytes();
            assert!(
                zeros <= 2 * logged + chunk,
                "{zeros} bytes of zeros after {logged} bytes of log"
            );
            assert!(!made, "made after {logged} bytes of log");
        }
        // Enough log for the whole spare: it is made without another byte of log.
        let made = glommio::timer::timeout(std::time::Duration::from_secs(60), async {
            Ok(writer.spare_made_unhurried().await)
        })
        .await;
        assert!(made.is_ok(), "not made after {logged} bytes of log");
        assert_eq!(writer.spare_pace_seen(), (start + logged, true));
        assert_eq!(spare_bytes(), SPARE_BYTES);
        writer.close().await.unwrap();
    });
}

/// A roll asked for while the spare is still being made waits for it as
/// long as the segment has room (rolling would hold the batch until the spare is made); a
/// batch that does not fit rolls at once; once the spare is made, the roll happens.
#[test]
fn a_requested_roll_waits_for_the_spare_while_the_segment_has_room() {
    let dir = TempDir::new("log-roll-waits");
    let log_dir = dir.0.clone();
    run(move || async move {
        let mut writer = LogWriter::open(&log_dir, small_opts(), 0).await.unwrap();
        writer.append(&records_from(1, 2));
        writer.sync().await.unwrap();
        let first = writer.segment_path().unwrap().to_path_buf();
        writer.spare_ready().await;
        writer.spare_in_progress();
        writer.roll();
        writer.append(&records_from(3, 2));
        assert_eq!(writer.sync().await.unwrap(), 4);
        assert_eq!(
            writer.segment_path(),
            Some(first.as_path()),
            "the roll waits"
        );
        writer.spare_ready().await;
        writer.append(&records_from(5, 2));
        assert_eq!(writer.sync().await.unwrap(), 6);
        let second = segment_path(&log_dir, 5);
        assert_eq!(
            writer.segment_path(),
            Some(second.as_path()),
            "then it happens"
        );
        writer.spare_ready().await;
        writer.spare_in_progress();
        writer.roll();
        writer.append(&records_from(7, 60));
        assert_eq!(writer.sync().await.unwrap(), 66);
        let third = segment_path(&log_dir, 7);
        assert_eq!(
            writer.segment_path(),
            Some(third.as_path()),
            "no room: it rolls"
        );
        writer.close().await.unwrap();
        let r = recover_log(&log_dir, 0, RecoveryMode::ReadOnly).unwrap();
        assert_eq!(r.records, records_from(1, 66));
    });
}

#[test]
fn force_sync_off_still_writes() {
    let dir = TempDir::new("log-nosync");
    let opts = LogOptions {
        force_sync: false,
        ..small_opts()
    };
    let written = write_log(&dir.0, opts, &[5, 5], 8);
    assert_eq!(
        recover_log(&dir.0, 0, RecoveryMode::Repair)
            .unwrap()
            .records,
        written
    );
}

/// Writes `batches` into a `version-2` under `parent`; returns the write path the writer
/// took and every segment's bytes.
fn write_segments(
    parent: &Path,
    opts: LogOptions,
    batches: &[Vec<TxnRecord>],
) -> (&'static str, Vec<(String, Vec<u8>)>) {
    write_segments_aligned(parent, opts, batches, None)
}

/// [`write_segments`], with direct writes aligned to `direct_block_bytes` if given.
fn write_segments_aligned(
    parent: &Path,
    opts: LogOptions,
    batches: &[Vec<TxnRecord>],
    direct_block_bytes: Option<u64>,
) -> (&'static str, Vec<(String, Vec<u8>)>) {
    let dir = parent.join("version-2");
    let log_dir = dir.clone();
    let batches = batches.to_vec();
    let kind = run(move || async move {
        let mut writer = LogWriter::open(&log_dir, opts, 0).await.unwrap();
        if let Some(bytes) = direct_block_bytes {
            writer.set_direct_block_bytes(bytes);
        }
        let mut kind = None;
        for batch in batches {
            writer.append(&batch);
            writer.sync().await.unwrap();
            kind = writer.durable_kind();
        }
        writer.close().await.unwrap();
        kind.unwrap()
    });
    let segments = list_segments(&dir)
        .unwrap()
        .into_iter()
        .map(|(_, p)| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    (kind, segments)
}

/// The first difference between two sets of segment files, if any. How far a file was
/// zero-filled ahead depends on timing, so the longer file's extra bytes need only be zeros.
fn first_difference(a: &[(String, Vec<u8>)], b: &[(String, Vec<u8>)]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("{} segments against {}", a.len(), b.len()));
    }
    a.iter().zip(b).find_map(|((name_a, a), (name_b, b))| {
        if name_a != name_b {
            return Some(format!("{name_a} against {name_b}"));
        }
        let common = a.len().min(b.len());
        if let Some(at) = a[..common].iter().zip(b).position(|(x, y)| x != y) {
            return Some(format!("{name_a}: first difference at offset {at}"));
        }
        let longer = if a.len() > b.len() { a } else { b };
        let at = longer[common..].iter().position(|&x| x != 0)?;
        Some(format!(
            "{name_a}: a non-zero byte at {} past the shorter file",
            common + at
        ))
    })
}

/// The three ways a batch reaches the file (direct I/O rewriting its first block's head,
/// `O_DSYNC` through the page cache, plain writes with `forceSync=no`) leave the same bytes,
/// batches of every size against block boundaries included.
#[test]
fn every_write_path_leaves_the_same_bytes() {
    // Batches from 1 to 300 records: some end inside a block, some span many. The segment
    // limit forces rolls.
    let mut workload = Workload::new(21);
    let batches: Vec<Vec<TxnRecord>> = [1, 2, 3, 7, 1, 64, 300, 1, 1, 33, 128, 5, 250, 1]
        .iter()
        .map(|&n| (0..n).map(|_| workload.next()).collect())
        .collect();
    let opts = LogOptions {
        pre_alloc_bytes: 64 << 10,
        segment_bytes_max: Some(32 << 10),
        ..small_opts()
    };
    let plain_opts = LogOptions {
        force_sync: false,
        ..opts.clone()
    };
    let (plain_kind, plain) =
        write_segments(&TempDir::new("log-paths-plain").0, plain_opts, &batches);
    assert_eq!(plain_kind, "buffered");
    assert!(
        plain.len() >= 2,
        "the limit rolled the log: {}",
        plain.len()
    );

    let (synced_kind, synced) =
        write_segments(&TempDir::new("log-paths-synced").0, opts.clone(), &batches);
    // The temp directory's file system decides: direct I/O where it has it.
    assert!(
        matches!(synced_kind, "direct" | "buffered-dsync"),
        "{synced_kind}"
    );
    assert_eq!(first_difference(&synced, &plain), None, "{synced_kind}");

    // Direct writes the device refuses (aligned to 8 bytes, below any device's block): the
    // first one fails with EINVAL before writing anything, and the segment goes on through
    // the page cache with the same bytes. (Where the file system has no direct I/O the
    // writer took the page cache from the start.)
    let (misaligned_kind, misaligned) = write_segments_aligned(
        &TempDir::new("log-paths-misaligned").0,
        opts.clone(),
        &batches,
        Some(8),
    );
    assert_eq!(misaligned_kind, "buffered-dsync");
    assert_eq!(first_difference(&misaligned, &plain), None);

    // A preallocation size that is not a whole number of blocks: O_DSYNC through the page cache.
    let odd_opts = LogOptions {
        pre_alloc_bytes: 1000,
        ..opts.clone()
    };
    let (odd_kind, odd) =
        write_segments(&TempDir::new("log-paths-odd").0, odd_opts.clone(), &batches);
    assert_eq!(odd_kind, "buffered-dsync");
    let odd_plain_opts = LogOptions {
        force_sync: false,
        ..odd_opts
    };
    let (_, odd_plain) = write_segments(
        &TempDir::new("log-paths-odd-plain").0,
        odd_plain_opts,
        &batches,
    );
    assert_eq!(first_difference(&odd, &odd_plain), None);

    // tmpfs (O_DIRECT only since Linux 6.6): whichever path it takes, the same bytes.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        let shm_dir = shm.join(format!("corral-log-paths-{}", std::process::id()));
        let (shm_kind, on_shm) = write_segments(&shm_dir, opts, &batches);
        let _ = std::fs::remove_dir_all(&shm_dir);
        assert!(
            matches!(shm_kind, "direct" | "buffered-dsync"),
            "{shm_kind}"
        );
        assert_eq!(
            first_difference(&on_shm, &plain),
            None,
            "{shm_kind} on tmpfs"
        );
    }
}

/// A record whose frame is exactly `frame_bytes` long (a setData with filler data).
fn record_of_frame_size(zxid: i64, frame_bytes: usize) -> TxnRecord {
    let mut rec = bench_record(zxid);
    let overhead = encode_frame(&rec, &mut Vec::new()) - 100;
    let fill: Vec<u8> = (0..frame_bytes - overhead)
        .map(|i| (i % 251) as u8 | 1)
        .collect();
    if let crate::tree::Txn::SetData { data, .. } = &mut rec.txn {
        *data = Some(bytes::Bytes::from(fill));
    }
    assert_eq!(encode_frame(&rec, &mut Vec::new()), frame_bytes);
    rec
}

/// A segment with frames of the given sizes, zero-filled to `file_bytes`; returns it and
/// the frame offsets.
fn segment_with_frames(
    sizes: &[usize],
    file_bytes: usize,
) -> (Vec<u8>, Vec<usize>, Vec<TxnRecord>) {
    let mut seg = encode_segment_header(1).to_vec();
    let (mut offsets, mut recs) = (Vec::new(), Vec::new());
    for (i, &size) in sizes.iter().enumerate() {
        let rec = record_of_frame_size(i as i64 + 1, size);
        offsets.push(seg.len());
        encode_frame(&rec, &mut seg);
        recs.push(rec);
    }
    seg.resize(file_bytes, 0);
    (seg, offsets, recs)
}

fn recover_bytes(seg: &[u8]) -> Result<crate::storage::LogRecovery, RecoveryError> {
    let dir = TempDir::new("log-sector");
    std::fs::write(segment_path(&dir.0, 1), seg).unwrap();
    let r = recover_log(&dir.0, 0, RecoveryMode::Repair);
    if r.is_ok() {
        let again = recover_log(&dir.0, 0, RecoveryMode::Repair).unwrap();
        assert!(again.torn.is_none(), "the repair leaves a clean log");
    }
    r
}

/// Regression (found by the power-loss check `storage::sim`, seed 9): the last, unsynced
/// write spans several pages; power fails after a later page landed but before an earlier
/// one did. The hole reads as zeros and whole records follow it. That is a torn tail
/// (truncated), not corruption: it was refused before.
#[test]
fn a_write_whose_later_pages_landed_first_is_a_torn_tail() {
    // Synced: frames 0..2. The unsynced write: frames 2..6, spanning pages 1 to 3.
    let sizes = [700, 900, 1500, 3000, 2500, 2000];
    let (original, offsets, recs) = segment_with_frames(&sizes, 16384);
    let write_start = offsets[2];
    for lost_page in 0..4usize {
        let mut seg = original.clone();
        let from = (lost_page * 4096).max(write_start);
        let to = ((lost_page + 1) * 4096).min(seg.len());
        if from >= to {
            continue;
        }
        seg[from..to].fill(0);
        let r = recover_bytes(&seg).unwrap_or_else(|e| panic!("page {lost_page} lost: {e}"));
        let kept = offsets
            .iter()
            .take_while(|&&o| o < from)
            .count()
            .min(recs.len());
        // Frames that lie wholly before the hole survive; nothing after it does.
        let whole = (0..kept)
            .take_while(|&i| offsets[i] + sizes[i] <= from)
            .count();
        assert_eq!(r.records, recs[..whole], "page {lost_page} lost");
        assert!(
            whole == recs.len() || r.torn.is_some(),
            "page {lost_page} lost"
        );
    }
    // One lost sector inside a record, the rest of the write landed.
    let mut seg = original.clone();
    seg[4096..4608].fill(0);
    let r = recover_bytes(&seg).unwrap();
    assert_eq!(
        r.records.len(),
        offsets.iter().filter(|&&o| o + 1 < 4096).count() - 1
    );
}

/// Only the first bytes of a frame header were in the sector that did not land (the
/// header straddles a sector boundary): the frame is whole but for its length bytes, and
/// valid records follow. A torn tail; the same layout with a flipped byte elsewhere in the
/// frame is corruption.
#[test]
fn a_lost_sector_holding_only_length_bytes_is_a_torn_tail() {
    for lost in 1..=7usize {
        // Frame 1 starts `lost` bytes before the first sector boundary.
        let first = 512 - lost - SEGMENT_HEADER_BYTES;
        let sizes = [first, 300, 200, 180];
        let (original, offsets, recs) = segment_with_frames(&sizes, 4096);
        assert_eq!(offsets[1], 512 - lost);
        let mut seg = original.clone();
        seg[512 - lost..512].fill(0);
        let r = recover_bytes(&seg).unwrap_or_else(|e| panic!("{lost} bytes lost: {e}"));
        assert_eq!(r.records, recs[..1], "{lost} bytes lost");
        assert_eq!(r.torn.map(|t| t.offset), Some(offsets[1]));
        // Corruption: the same zeros would not explain a flipped payload byte.
        let mut seg = original.clone();
        seg[512 - lost..512].fill(0);
        seg[offsets[1] + 40] ^= 0x04;
        match recover_bytes(&seg) {
            Err(RecoveryError::CorruptRecord { offset, .. }) if lost < 5 => {
                assert_eq!(offset, offsets[1])
            }
            // From 5 bytes on the whole length and part of the crc are zeros: a flipped
            // byte cannot do that, so it reads as a lost sector.
            Ok(r) if lost >= 5 => assert_eq!(r.records, recs[..1]),
            other => panic!("{lost} bytes lost and a flip: {other:?}"),
        }
    }
}

/// The evidence is zeros: a flipped byte in the middle of a multi-page write that landed
/// whole is still corruption, wherever the record sits relative to pages and sectors.
#[test]
fn a_flip_near_sector_boundaries_is_still_corruption() {
    let sizes = [500, 3000, 4100, 700, 1200];
    let (original, offsets, _) = segment_with_frames(&sizes, 16384);
    for i in 0..sizes.len() - 1 {
        for at in [
            offsets[i],
            offsets[i] + 3,
            offsets[i] + 7,
            offsets[i] + sizes[i] - 1,
        ] {
            let mut seg = original.clone();
            seg[at] = if seg[at] == 0 {
                0x80
            } else {
                seg[at] ^ 0x01 | 0x02
            };
            match recover_bytes(&seg) {
                Err(RecoveryError::CorruptRecord { offset, .. }) => assert_eq!(offset, offsets[i]),
                other => panic!("flip at {at} (record {i}): {other:?}"),
            }
        }
    }
}

fn bench_record(zxid: i64) -> TxnRecord {
    TxnRecord {
        zxid,
        time_ms: 0,
        session_id: 1,
        cxid: 1,
        txn: crate::tree::Txn::SetData {
            path: std::sync::Arc::from("/bench/node"),
            data: Some(bytes::Bytes::from(vec![7u8; 100])),
            version: 1,
        },
    }
}

fn bench_report(
    what: &str,
    per_sync: usize,
    records: usize,
    elapsed: std::time::Duration,
    mut l: Vec<u64>,
) {
    l.sort_unstable();
    let pct = |q: f64| l[((l.len() as f64 * q) as usize).min(l.len() - 1)];
    println!(
        "{what:<22} records/sync {per_sync:>3}: {:>8.0} records/s, sync p50 {:>4} us, p99 {:>5} us, max {:>6} us ({} syncs)",
        records as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        l.last().unwrap(),
        l.len()
    );
}

/// Not a test of correctness: records/s and fdatasync latency for 1, 8 and 64 records per
/// sync on this machine's disk, through the glommio writer and, for comparison, a blocking
/// std `File` (pwrite + fdatasync on the calling thread) over the same preallocated,
/// zero-filled segment. Run by hand:
/// `cargo test --lib log_sync_latency -- --ignored --nocapture --test-threads=1`
/// (CORRAL_BENCH_DIR picks the disk; default the system temp dir).
#[test]
#[ignore]
fn log_sync_latency() {
    use std::os::unix::fs::FileExt;
    use std::time::Instant;
    let base = std::env::var_os("CORRAL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    for per_sync in [1usize, 8, 64] {
        let syncs = 3000 / per_sync + 300;
        let dir = base.join(format!("corral-bench-{}-{per_sync}", std::process::id()));
        let d = dir.clone();
        let (lat, elapsed) = run(move || async move {
            let opts = LogOptions {
                pre_alloc_bytes: 64 << 20,
                ..LogOptions::default()
            };
            let mut writer = LogWriter::open(&d, opts, 0).await.unwrap();
            // The first sync creates and zero-fills the segment: not measured.
            writer.append(&[bench_record(1)]);
            writer.sync().await.unwrap();
            let mut zxid = 1;
            let mut lat_us = Vec::new();
            let started = Instant::now();
            for _ in 0..syncs {
                let recs: Vec<TxnRecord> = (0..per_sync)
                    .map(|_| {
                        zxid += 1;
                        bench_record(zxid)
                    })
                    .collect();
                writer.append(&recs);
                let t = Instant::now();
                writer.sync().await.unwrap();
                lat_us.push(t.elapsed().as_micros() as u64);
            }
            let elapsed = started.elapsed();
            writer.close().await.unwrap();
            (lat_us, elapsed)
        });
        bench_report(
            "LogWriter (glommio)",
            per_sync,
            syncs * per_sync,
            elapsed,
            lat,
        );
        let _ = std::fs::remove_dir_all(&dir);

        // The same on a blocking std file.
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.1");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        f.write_all_at(&vec![0u8; 64 << 20], 0).unwrap();
        f.sync_all().unwrap();
        let mut offset = SEGMENT_HEADER_BYTES as u64;
        let mut zxid = 0;
        let mut lat = Vec::new();
        let mut buf = Vec::new();
        let started = Instant::now();
        for _ in 0..syncs {
            buf.clear();
            for _ in 0..per_sync {
                zxid += 1;
                encode_frame(&bench_record(zxid), &mut buf);
            }
            let t = Instant::now();
            f.write_all_at(&buf, offset).unwrap();
            f.sync_data().unwrap();
            lat.push(t.elapsed().as_micros() as u64);
            offset += buf.len() as u64;
        }
        bench_report(
            "blocking std File",
            per_sync,
            syncs * per_sync,
            started.elapsed(),
            lat,
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The files in a log directory, with their sizes.
fn dir_listing(dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    out.sort();
    out
}

/// `records` numbered `from..` with frames of 500 bytes.
fn records_from(from: i64, n: usize) -> Vec<TxnRecord> {
    (0..n as i64)
        .map(|i| record_of_frame_size(from + i, 500))
        .collect()
}

/// No room for the first segment: `sync` fails with NoSpace, leaves no file behind and the
/// batch pending; the probe fails while there is no room and succeeds once there is; the
/// same batch then syncs, and the log holds exactly it.
#[test]
fn no_space_for_a_new_segment_leaves_nothing_and_keeps_the_batch() {
    let dir = TempDir::new("log-nospace-new");
    let d = dir.0.clone();
    run(move || async move {
        let mut w = LogWriter::open(&d, small_opts(), 0).await.unwrap();
        w.set_allocation_budget(Some(4095)).await;
        let recs = records_from(1, 3);
        let added = w.append(&recs);
        let err = w.sync().await.unwrap_err();
        assert!(err.is_no_space(), "{err}");
        assert!(w.out_of_space());
        assert!(
            err.to_string().contains("log.tmp") && err.to_string().contains("os error 28"),
            "{err}"
        );
        assert!(dir_listing(&d).is_empty(), "{:?}", dir_listing(&d));
        assert_eq!(w.pending_bytes(), added);
        assert_eq!(w.last_appended_zxid(), 3);
        assert_eq!(w.synced_zxid(), 0);
        assert!(w.segment_path().is_none());
        // Still no room: the probe says so and leaves nothing either.
        assert!(w.probe_space().await.unwrap_err().is_no_space());
        assert!(dir_listing(&d).is_empty());
        w.set_allocation_budget(Some(1 << 20)).await;
        w.probe_space().await.unwrap();
        assert!(!w.out_of_space());
        assert!(dir_listing(&d).is_empty(), "the probe removes its file");
        assert_eq!(w.sync().await.unwrap(), 3);
        w.close().await.unwrap();
        let r = recover_log(&d, 0, RecoveryMode::ReadOnly).unwrap();
        assert_eq!(r.records, recs);
        assert!(r.torn.is_none());
    });
}

/// A full segment and no room for the next one: nothing of the batch reaches a file (the
/// full segment keeps its size and bytes, no new segment is left), the full segment stays
/// the current one; the refused batch is discarded and its zxids are taken by the next
/// batch, which syncs to a new segment once there is room. Recovery finds exactly the
/// acknowledged records, none of the refused ones.
#[test]
fn no_space_for_the_next_segment_refuses_the_batch_and_writes_nothing() {
    let dir = TempDir::new("log-nospace-ext");
    let d = dir.0.clone();
    run(move || async move {
        let mut w = LogWriter::open(&d, small_opts(), 0).await.unwrap();
        // One 4 KiB preallocation: the first segment and nothing more.
        w.set_allocation_budget(Some(4096)).await;
        let first = records_from(1, 4);
        w.append(&first);
        assert_eq!(w.sync().await.unwrap(), 4);
        let seg = w.segment_path().unwrap().to_path_buf();
        let before = std::fs::read(&seg).unwrap();
        assert_eq!(before.len(), 4096);
        let refused = records_from(5, 60);
        w.append(&refused);
        let err = w.sync().await.unwrap_err();
        assert!(err.is_no_space(), "{err}");
        assert_ne!(err.path(), seg.as_path());
        assert_eq!(std::fs::read(&seg).unwrap(), before, "no byte written");
        assert_eq!(list_segments(&d).unwrap().len(), 1, "no new segment left");
        assert_eq!(w.segment_path(), Some(seg.as_path()));
        assert_eq!(w.synced_zxid(), 4);
        assert_eq!(w.last_appended_zxid(), 64);
        w.discard_pending();
        assert_eq!(w.pending_bytes(), 0);
        assert_eq!(w.last_appended_zxid(), 4);
        // Nothing pending: a sync is a no-op and does not touch the disk.
        assert_eq!(w.sync().await.unwrap(), 4);
        assert!(w.probe_space().await.unwrap_err().is_no_space());
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), 4096);
        w.set_allocation_budget(Some(1 << 20)).await;
        w.probe_space().await.unwrap();
        assert_eq!(
            list_segments(&d).unwrap().len(),
            1,
            "the probe removes its file"
        );
        let next = records_from(5, 60);
        w.append(&next);
        assert_eq!(w.sync().await.unwrap(), 64);
        assert_eq!(w.segment_path(), Some(segment_path(&d, 5).as_path()));
        w.close().await.unwrap();
        let r = recover_log(&d, 0, RecoveryMode::ReadOnly).unwrap();
        let mut want = first.clone();
        want.extend(next);
        assert_eq!(r.records, want);
        assert!(r.torn.is_none());
        assert_eq!(list_segments(&d).unwrap().len(), 2);
    });
}

/// A roll whose new segment finds no room: the old segment stays current (it is not
/// closed first), no `log.tmp` is left, and once there is room the batch goes to the new
/// segment.
#[test]
fn no_space_at_a_roll_keeps_the_old_segment() {
    let dir = TempDir::new("log-nospace-roll");
    let d = dir.0.clone();
    run(move || async move {
        let mut w = LogWriter::open(&d, small_opts(), 0).await.unwrap();
        w.set_allocation_budget(Some(4096)).await;
        let first = records_from(1, 2);
        w.append(&first);
        w.sync().await.unwrap();
        let old = w.segment_path().unwrap().to_path_buf();
        w.roll();
        let second = records_from(3, 2);
        w.append(&second);
        assert!(w.sync().await.unwrap_err().is_no_space());
        assert_eq!(w.segment_path(), Some(old.as_path()));
        let names: Vec<String> = dir_listing(&d).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["log.1".to_string()]);
        w.set_allocation_budget(None).await;
        assert_eq!(w.sync().await.unwrap(), 4, "the same batch, retried");
        assert_eq!(w.segment_path(), Some(segment_path(&d, 3).as_path()));
        w.close().await.unwrap();
        let r = recover_log(&d, 0, RecoveryMode::ReadOnly).unwrap();
        assert_eq!(r.records.len(), 4);
        assert_eq!(r.segments.len(), 2);
    });
}

/// The first batch of a new segment fits in it with its end marker, whatever its size:
/// no extension (which could fail after the segment exists) is ever needed for it.
#[test]
fn a_new_segment_holds_its_first_batch_and_the_end_marker() {
    for step in [512u64, 4096, 1 << 20] {
        for batch in [0u64, 1, 100, 4056, 4064, 4096, 5000, 1 << 20] {
            let size = layout::new_segment_bytes(step, batch);
            assert!(size.is_multiple_of(step));
            assert!(
                layout::bytes_needed(SEGMENT_HEADER_BYTES as u64, batch) <= size,
                "step {step} batch {batch}"
            );
            assert!(size - step < layout::bytes_needed(SEGMENT_HEADER_BYTES as u64, batch));
        }
    }
}

/// A replicated server appends the next batch while the last one's write is in flight
/// (`start_sync` / `SyncJob::run` / `finish_sync`): each job makes exactly its own records
/// durable, the records appended meanwhile are the next job's, and the log reads back whole
/// and in order, rolls included.
#[test]
fn records_appended_while_a_sync_is_in_flight_are_the_next_batch() {
    let dir = TempDir::new("log-inflight");
    let path = dir.0.clone();
    let opts = LogOptions {
        segment_bytes_max: Some(2048),
        ..small_opts()
    };
    let written = run(move || async move {
        let mut w = Workload::new(7);
        let mut writer = LogWriter::open(&path, opts, 0).await.unwrap();
        let mut all: Vec<TxnRecord> = Vec::new();
        let first: Vec<TxnRecord> = (0..3).map(|_| w.next()).collect();
        writer.append(&first);
        all.extend(first);
        for n in [1, 4, 9, 2, 30, 1] {
            let job = writer
                .start_sync()
                .await
                .unwrap()
                .expect("records were appended");
            assert!(writer.sync_in_flight());
            let covered = all.last().unwrap().zxid;
            // The next batch, while the write runs.
            let next: Vec<TxnRecord> = (0..n).map(|_| w.next()).collect();
            writer.append(&next);
            all.extend(next);
            let done = glommio::spawn_local(job.run()).await;
            assert_eq!(writer.finish_sync(done).unwrap(), covered);
            assert_eq!(writer.synced_zxid(), covered, "only the job's records");
            assert!(!writer.sync_in_flight());
        }
        let last = writer.sync().await.unwrap();
        assert_eq!(last, all.last().unwrap().zxid);
        assert!(writer.start_sync().await.unwrap().is_none(), "nothing left");
        writer.close().await.unwrap();
        all
    });
    assert!(list_segments(&dir.0).unwrap().len() >= 2, "rolled");
    let r = recover_log(&dir.0, 0, RecoveryMode::ReadOnly).unwrap();
    assert_eq!(r.records, written);
    assert!(r.torn.is_none());
}
