//! The ensemble-config texts zkCli handles on the client side: `config -c`
//! (`ConfigUtils.getClientConfigStr`) and the membership that `reconfig -file` builds
//! from a dynamic-config file (`QuorumPeerConfig.parseDynamicConfig` then
//! `QuorumMaj.toString`).

/// Java properties `key=value` lines (`=`, `:` or blank separates; `#`/`!` comment
/// lines; keys and values trimmed). Continuation lines and escapes are not needed for
/// config texts and are not handled.
pub fn properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split_at = line.find(|c: char| c == '=' || c == ':' || c.is_whitespace());
        let (key, value) = match split_at {
            Some(at) => {
                let rest = line[at..].trim_start();
                let rest = rest
                    .strip_prefix('=')
                    .or_else(|| rest.strip_prefix(':'))
                    .unwrap_or(rest);
                (&line[..at], rest)
            }
            None => (line, ""),
        };
        let key = key.trim().to_string();
        let value = value.trim().to_string();
        // A later line with the same key replaces the earlier one, in its place.
        match out
            .iter_mut()
            .find(|(k, _): &&mut (String, String)| *k == key)
        {
            Some(entry) => entry.1 = value,
            None => out.push((key, value)),
        }
    }
    out
}

/// Java's `String.hashCode`.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The order in which Java 17's `Properties` (a ConcurrentHashMap inside) iterates its
/// keys: by bucket of the spread hash in a table of 16 (grown as the map grows), then
/// insertion order. ConfigUtils iterates in that order, so `config -c` lists clients
/// in it.
pub fn java_properties_order(entries: &mut [(String, String)]) {
    let mut table = 16usize;
    while entries.len() * 4 > table * 3 {
        table *= 2;
    }
    let bucket = |key: &str| {
        let h = java_hash(key);
        let spread = (h ^ ((h as u32) >> 16) as i32) & 0x7fff_ffff;
        (spread as usize) & (table - 1)
    };
    entries.sort_by_key(|(k, _)| bucket(k));
}

/// The client address of a `server.N` value, if it has one: the part after `;`,
/// `port` alone meaning `0.0.0.0:port`.
fn client_address(value: &str) -> Option<String> {
    let (_, client) = value.split_once(';')?;
    let client = client.trim();
    match client.rsplit_once(':') {
        Some((host, port)) => Some(format!("{host}:{port}")),
        None => Some(format!("0.0.0.0:{client}")),
    }
}

/// `config -c`: the config version, a blank, and the clients' addresses joined by `,`.
pub fn client_config_str(config_text: &str) -> String {
    let mut entries = properties(config_text);
    java_properties_order(&mut entries);
    let version = entries
        .iter()
        .find(|(k, _)| k == "version")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut out = String::new();
    let mut first = true;
    for (key, value) in &entries {
        if !key.starts_with("server.") {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        if let Some(addr) = client_address(value) {
            out.push_str(&addr);
        }
    }
    format!("{version} {out}")
}

/// QuorumServer.toString of one `server.N` value:
/// `host:quorumPort:electionPort:role[;clientHost:clientPort]`.
fn normalize_server(value: &str) -> Result<String, String> {
    let (server, client) = match value.split_once(';') {
        Some((s, c)) => (s.trim(), Some(c.trim())),
        None => (value.trim(), None),
    };
    let parts: Vec<&str> = server.split(':').collect();
    if parts.len() < 3 || parts.len() > 4 {
        return Err(format!(
            "{value} does not have the form server_config or server_config;client_config where server_config is the pipe separated list of host:port:port or host:port:port:type and client_config is port or host:port"
        ));
    }
    for port in &parts[1..3] {
        port.parse::<u16>()
            .map_err(|_| format!("For input string: \"{port}\""))?;
    }
    let role = match parts.get(3).copied() {
        None | Some("participant") => "participant",
        Some("observer") => "observer",
        Some(other) => return Err(format!("Unrecognised peertype: {other}")),
    };
    let mut out = format!("{}:{}:{}:{role}", parts[0], parts[1], parts[2]);
    if let Some(client) = client {
        let addr = match client.rsplit_once(':') {
            Some((host, port)) => format!("{host}:{port}"),
            None => format!("0.0.0.0:{client}"),
        };
        out.push(';');
        out.push_str(&addr);
    }
    Ok(out)
}

/// The membership text `reconfig -file` sends: one `server.N=...` line per member
/// (ascending id) and `version=<hex>`.
pub fn members_from_file_text(text: &str) -> Result<String, String> {
    let entries = properties(text);
    let mut servers: Vec<(u64, String)> = Vec::new();
    let mut version = 0u64;
    for (key, value) in &entries {
        if let Some(id) = key.strip_prefix("server.") {
            let id: u64 = id
                .parse()
                .map_err(|_| format!("For input string: \"{id}\""))?;
            servers.push((id, normalize_server(value)?));
        } else if key == "version" {
            version = u64::from_str_radix(value, 16)
                .map_err(|_| format!("For input string: \"{value}\""))?;
        }
    }
    servers.sort_by_key(|(id, _)| *id);
    let mut out = String::new();
    for (id, server) in servers {
        out.push_str(&format!("server.{id}={server}\n"));
    }
    out.push_str(&format!("version={version:x}"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_config_string() {
        assert_eq!(client_config_str(""), " ");
        let text = "server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\nserver.2=10.0.0.2:2888:3888:participant;2182\nversion=100000000";
        // Java 17's Properties iterates server.2 before server.1 (checked on a JVM).
        assert_eq!(
            client_config_str(text),
            "100000000 0.0.0.0:2182,0.0.0.0:2181"
        );
        let mut keys: Vec<(String, String)> =
            ["server.1", "server.2", "server.3", "version", "server.10"]
                .iter()
                .map(|k| (k.to_string(), String::new()))
                .collect();
        java_properties_order(&mut keys);
        let order: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            order,
            ["server.10", "server.2", "server.1", "server.3", "version"]
        );
    }

    #[test]
    fn java_hash_matches() {
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("version"), 351_608_024);
    }

    #[test]
    fn members_from_a_dynamic_file() {
        let text = "server.2=h2:1:2;3\nserver.1=h1:1:2:observer\n";
        assert_eq!(
            members_from_file_text(text).unwrap(),
            "server.1=h1:1:2:observer\nserver.2=h2:1:2:participant;0.0.0.0:3\nversion=0"
        );
        assert!(members_from_file_text("server.1=h1:x:2").is_err());
    }
}
