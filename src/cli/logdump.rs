//! `corral logdump [--json] [--verify] FILE|DIR`: print the records of log segments, like
//! ZooKeeper's `zkTxnLogToolkit` (`TxnLogToolkit`).
//!
//! One line per record: time, session, cxid, zxid, type and the txn's fields. `--json`
//! prints one JSON object per line instead. `--verify` prints nothing per record: it
//! checks every frame's length and crc32c and every record's decoding, and reports the
//! first bad offset. Exit status: 0 = clean (a torn tail in the newest segment is reported,
//! it is what a crash leaves and a start repairs), 1 = corruption (the server would refuse
//! to start), 2 = usage or I/O error. Never modifies a file.

use crate::storage::recovery::{recover_log, RecoveryMode};
use crate::storage::txn_log::{list_segments, scan_segment, ScanEnd};
use crate::tree::txn::{Txn, TxnRecord};
use std::path::{Path, PathBuf};

pub fn run(path: &Path, json: bool, verify: bool) -> i32 {
    let (files, dir) = match targets(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("corral logdump: {e}");
            return 2;
        }
    };
    if files.is_empty() {
        eprintln!(
            "corral logdump: no log segments (log.*) in {}",
            path.display()
        );
        return 2;
    }
    let mut status = 0;
    let mut records = 0usize;
    for (i, file) in files.iter().enumerate() {
        let newest = i + 1 == files.len();
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("corral logdump: reading {}: {e}", file.display());
                return 2;
            }
        };
        let scan = match scan_segment(&bytes) {
            Ok(s) => s,
            Err(e) => {
                println!("{}: bad segment header: {e}", file.display());
                return 1;
            }
        };
        if !verify && !json {
            println!(
                "Corral transaction log segment {} (format {}, first zxid 0x{:x})",
                file.display(),
                crate::storage::txn_log::SEGMENT_FORMAT_VERSION,
                scan.first_zxid
            );
        }
        records += scan.records.len();
        if !verify {
            for (offset, rec) in &scan.records {
                if json {
                    println!("{}", record_json(file, *offset, rec));
                } else {
                    println!("{}", record_line(rec));
                }
            }
        }
        match &scan.end {
            ScanEnd::Clean => {}
            ScanEnd::Torn { fault, .. } if newest => {
                println!(
                    "{}: torn tail at offset {} ({fault}): a write that was never acknowledged; a server start truncates it",
                    file.display(),
                    scan.end_offset
                );
            }
            ScanEnd::Torn { fault, .. } => {
                println!(
                    "{}: CORRUPT: torn record at offset {} ({fault}) before a newer segment",
                    file.display(),
                    scan.end_offset
                );
                status = 1;
            }
            ScanEnd::Corrupt { fault, next_valid } => {
                println!(
                    "{}: CORRUPT: bad record at offset {} ({fault}); a valid record follows at offset {next_valid}",
                    file.display(),
                    scan.end_offset
                );
                status = 1;
            }
            ScanEnd::Invalid { fault } => {
                println!(
                    "{}: CORRUPT: record at offset {}: {fault}",
                    file.display(),
                    scan.end_offset
                );
                status = 1;
            }
        }
        if status != 0 {
            return status;
        }
    }
    // Across segments: zxid order and gaps, as a start would check them.
    if let Some(dir) = dir {
        if let Err(e) = recover_log(&dir, i64::MIN, RecoveryMode::ReadOnly) {
            println!("CORRUPT: {e}");
            return 1;
        }
    }
    if verify {
        println!("{} segment(s), {records} record(s): ok", files.len());
    }
    status
}

/// The segment files to read, and the directory when a directory was given.
fn targets(path: &Path) -> std::io::Result<(Vec<PathBuf>, Option<PathBuf>)> {
    if !path.is_dir() {
        return Ok((vec![path.to_path_buf()], None));
    }
    let nested = path.join(crate::storage::VERSION_DIR);
    let dir = if nested.is_dir() {
        nested
    } else {
        path.to_path_buf()
    };
    let files = list_segments(&dir)?.into_iter().map(|(_, p)| p).collect();
    Ok((files, Some(dir)))
}

fn data_text(data: &Option<bytes::Bytes>) -> String {
    match data {
        None => "null".into(),
        Some(d) => format!("{:?}", String::from_utf8_lossy(d)),
    }
}

fn acl_text(acl: &[crate::proto::Acl]) -> String {
    let items: Vec<String> = acl
        .iter()
        .map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, a.perms))
        .collect();
    format!("[{}]", items.join(","))
}

fn txn_fields(txn: &Txn) -> String {
    match txn {
        Txn::CreateSession { timeout_ms } => format!("{timeout_ms}"),
        Txn::CloseSession { ephemerals } => {
            let list: Vec<&str> = ephemerals.iter().map(|p| &**p).collect();
            format!("[{}]", list.join(","))
        }
        Txn::Create(c) => format!(
            "'{},{},{},{:#x},{}",
            c.path,
            data_text(&c.data),
            acl_text(&c.acl),
            c.ephemeral_owner,
            c.parent_cversion
        ),
        Txn::Delete { path } | Txn::DeleteContainer { path } | Txn::Check { path } => {
            format!("'{path}")
        }
        Txn::SetData {
            path,
            data,
            version,
        } => format!("'{path},{},{version}", data_text(data)),
        Txn::SetAcl {
            path,
            acl,
            aversion,
        } => format!("'{path},{},{aversion}", acl_text(acl)),
        Txn::Error { err } => format!("{}", err.code()),
        Txn::Multi { ops } => {
            let parts: Vec<String> = ops
                .iter()
                .map(|op| {
                    format!(
                        "{}:{}",
                        crate::storage::record::txn_type_name(op),
                        txn_fields(op)
                    )
                })
                .collect();
            format!("{}[{}]", ops.len(), parts.join("; "))
        }
    }
}

/// zkTxnLogToolkit's line: `<date> session 0x.. cxid 0x.. zxid 0x.. <type> <fields>`.
pub fn record_line(rec: &TxnRecord) -> String {
    format!(
        "{} session 0x{:x} cxid 0x{:x} zxid 0x{:x} {} {}",
        crate::util::java_date(rec.time_ms),
        rec.session_id,
        rec.cxid,
        rec.zxid,
        crate::storage::record::txn_type_name(&rec.txn),
        txn_fields(&rec.txn)
    )
}

pub use crate::util::json_str;

/// Data as JSON: null, or the bytes as a UTF-8 string when they are text, else as hex.
pub fn json_data(data: Option<&[u8]>) -> String {
    match data {
        None => "null".into(),
        Some(d) => match std::str::from_utf8(d) {
            Ok(s) => format!("{{\"utf8\":{}}}", json_str(s)),
            Err(_) => {
                let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
                format!("{{\"hex\":\"{hex}\"}}")
            }
        },
    }
}

fn json_acl(acl: &[crate::proto::Acl]) -> String {
    let items: Vec<String> = acl
        .iter()
        .map(|a| {
            format!(
                "{{\"perms\":{},\"scheme\":{},\"id\":{}}}",
                a.perms,
                json_str(&a.id.scheme),
                json_str(&a.id.id)
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn json_txn(txn: &Txn) -> String {
    let ty = json_str(crate::storage::record::txn_type_name(txn));
    match txn {
        Txn::CreateSession { timeout_ms } => format!("{{\"type\":{ty},\"timeout_ms\":{timeout_ms}}}"),
        Txn::CloseSession { ephemerals } => {
            let list: Vec<String> = ephemerals.iter().map(|p| json_str(p)).collect();
            format!("{{\"type\":{ty},\"ephemerals\":[{}]}}", list.join(","))
        }
        Txn::Create(c) => format!(
            "{{\"type\":{ty},\"path\":{},\"data\":{},\"acl\":{},\"ephemeral_owner\":{},\"parent_cversion\":{},\"with_stat\":{}}}",
            json_str(&c.path),
            json_data(c.data.as_deref()),
            json_acl(&c.acl),
            c.ephemeral_owner,
            c.parent_cversion,
            c.with_stat
        ),
        Txn::Delete { path } | Txn::DeleteContainer { path } | Txn::Check { path } => {
            format!("{{\"type\":{ty},\"path\":{}}}", json_str(path))
        }
        Txn::SetData {
            path,
            data,
            version,
        } => format!(
            "{{\"type\":{ty},\"path\":{},\"data\":{},\"version\":{version}}}",
            json_str(path),
            json_data(data.as_deref())
        ),
        Txn::SetAcl {
            path,
            acl,
            aversion,
        } => format!(
            "{{\"type\":{ty},\"path\":{},\"acl\":{},\"aversion\":{aversion}}}",
            json_str(path),
            json_acl(acl)
        ),
        Txn::Error { err } => format!("{{\"type\":{ty},\"err\":{}}}", err.code()),
        Txn::Multi { ops } => {
            let list: Vec<String> = ops.iter().map(json_txn).collect();
            format!("{{\"type\":{ty},\"ops\":[{}]}}", list.join(","))
        }
    }
}

fn record_json(file: &Path, offset: usize, rec: &TxnRecord) -> String {
    format!(
        "{{\"file\":{},\"offset\":{offset},\"zxid\":\"0x{:x}\",\"time_ms\":{},\"session\":\"0x{:x}\",\"cxid\":{},\"txn\":{}}}",
        json_str(&file.display().to_string()),
        rec.zxid,
        rec.time_ms,
        rec.session_id,
        rec.cxid,
        json_txn(&rec.txn)
    )
}
