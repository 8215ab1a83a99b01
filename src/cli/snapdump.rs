//! `corral snapdump [--json] FILE`: print a snapshot, like ZooKeeper's
//! `zkSnapShotToolkit` (`SnapshotFormatter`): the header, every znode with its stat, data
//! length and ACL, and the session table. The file is validated first (header, length,
//! crc32c, archive structure); exit 1 when it does not validate, 2 on usage or I/O errors.

use super::logdump::{json_data, json_str};
use crate::storage::snapshot::{SnapshotError, SnapshotFile};
use std::path::Path;

pub fn run(path: &Path, json: bool) -> i32 {
    let file = match SnapshotFile::read(path) {
        Ok(f) => f,
        Err(SnapshotError::Io { path, op, source }) => {
            eprintln!("corral snapdump: {op} {}: {source}", path.display());
            return 2;
        }
        Err(e) => {
            println!("CORRUPT: {e}");
            return 1;
        }
    };
    let a = file.archived();
    if json {
        let acls: Vec<String> = a
            .acls
            .iter()
            .map(|list| {
                let items: Vec<String> = list
                    .iter()
                    .map(|e| {
                        format!(
                            "{{\"perms\":{},\"scheme\":{},\"id\":{}}}",
                            e.perms.to_native(),
                            json_str(e.scheme.as_str()),
                            json_str(e.id.as_str())
                        )
                    })
                    .collect();
                format!("[{}]", items.join(","))
            })
            .collect();
        println!(
            "{{\"zxid\":\"0x{:x}\",\"acls\":[{}],\"nodes\":[",
            file.zxid,
            acls.join(",")
        );
        let n = a.nodes.len();
        for (i, node) in a.nodes.iter().enumerate() {
            println!(
                "{{\"path\":{},\"data\":{},\"acl\":{},\"czxid\":\"0x{:x}\",\"mzxid\":\"0x{:x}\",\"pzxid\":\"0x{:x}\",\"ctime_ms\":{},\"mtime_ms\":{},\"version\":{},\"cversion_creations\":{},\"aversion\":{},\"ephemeral_owner\":\"0x{:x}\"}}{}",
                json_str(node.path.as_str()),
                json_data(node.data.as_ref().map(|d| d.as_slice())),
                node.acl.to_native(),
                node.czxid.to_native(),
                node.mzxid.to_native(),
                node.pzxid.to_native(),
                node.ctime_ms.to_native(),
                node.mtime_ms.to_native(),
                node.version.to_native(),
                node.cversion_creations.to_native(),
                node.aversion.to_native(),
                node.ephemeral_owner.to_native(),
                if i + 1 < n { "," } else { "" }
            );
        }
        let sessions: Vec<String> = a
            .sessions
            .iter()
            .map(|s| {
                format!(
                    "{{\"id\":\"0x{:x}\",\"timeout_ms\":{}}}",
                    s.id.to_native(),
                    s.timeout_ms.to_native()
                )
            })
            .collect();
        println!("],\"sessions\":[{}]}}", sessions.join(","));
        return 0;
    }
    println!(
        "Corral snapshot {} (format {}, zxid 0x{:x}): {} znodes, {} ACL lists, {} sessions",
        path.display(),
        crate::storage::snapshot::SNAPSHOT_FORMAT_VERSION,
        file.zxid,
        a.nodes.len(),
        a.acls.len(),
        a.sessions.len()
    );
    println!("----");
    for node in a.nodes.iter() {
        println!("{}", node.path.as_str());
        println!("  cZxid = 0x{:x}", node.czxid.to_native());
        println!(
            "  ctime = {}",
            crate::util::java_date(node.ctime_ms.to_native())
        );
        println!("  mZxid = 0x{:x}", node.mzxid.to_native());
        println!(
            "  mtime = {}",
            crate::util::java_date(node.mtime_ms.to_native())
        );
        println!("  pZxid = 0x{:x}", node.pzxid.to_native());
        println!(
            "  cversion (creations) = {}",
            node.cversion_creations.to_native()
        );
        println!("  dataVersion = {}", node.version.to_native());
        println!("  aclVersion = {}", node.aversion.to_native());
        println!(
            "  ephemeralOwner = 0x{:x}",
            node.ephemeral_owner.to_native()
        );
        match node.data.as_ref() {
            None => println!("  data = null"),
            Some(d) => println!("  dataLength = {}", d.len()),
        }
        let acl: Vec<String> = a
            .acls
            .get(node.acl.to_native() as usize)
            .map(|l| {
                l.iter()
                    .map(|e| {
                        format!(
                            "{}:{}:{}",
                            e.scheme.as_str(),
                            e.id.as_str(),
                            e.perms.to_native()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        println!("  acl = [{}]", acl.join(","));
    }
    println!("----");
    println!("Session Details (sid, timeout):");
    for s in a.sessions.iter() {
        println!("0x{:x}, {}", s.id.to_native(), s.timeout_ms.to_native());
    }
    0
}
