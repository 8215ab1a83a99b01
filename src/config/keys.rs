//! Which zoo.cfg keys ZooKeeper 3.8 knows, and under which name.
//!
//! ZooKeeper reads zoo.cfg in two ways. `QuorumPeerConfig.parseProperties` handles a fixed set
//! of keys by their exact spelling ([`PEER_CONFIG_KEYS`], plus the `server.`, `group.`,
//! `weight.`, `quorum.auth.`, `jvm.pause.` and `metricsProvider.` families); every other key
//! `k` becomes the JVM system property `zookeeper.k`, which is how `snapCount`, `admin.*`,
//! `4lw.commands.whitelist`, `ssl.*` and the rest take effect. Corral has no JVM, so a system
//! property is a zoo.cfg key here, spelled with or without `zookeeper.` (both reach the same
//! setting). That includes the properties ZooKeeper only reads without the prefix
//! (`jute.maxbuffer`, `readonlymode.enabled`, `znode.container.*`), which in ZooKeeper cannot
//! be set from zoo.cfg at all.
//!
//! The builder (`build.rs`) matches the keys Corral uses; this module lists the keys Corral
//! knows but does not use ([`is_not_applicable`]), which the server logs once, and whatever is
//! in neither list is an unknown key (a warning: ZooKeeper ignores those too).

/// Keys `QuorumPeerConfig` reads by exact name (no `zookeeper.` prefix form).
pub(crate) const PEER_CONFIG_KEYS: &[&str] = &[
    "autopurge.purgeInterval",
    "autopurge.snapRetainCount",
    "client.portUnification",
    "clientPort",
    "clientPortAddress",
    "clientPortListenBacklog",
    "connectToLearnerMasterLimit",
    "dataDir",
    "dataLogDir",
    "dynamicConfigFile",
    "electionAlg",
    "initLimit",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "maxClientCnxns",
    "maxCnxns",
    "maxSessionTimeout",
    "minSessionTimeout",
    "multiAddress.enabled",
    "multiAddress.reachabilityCheckEnabled",
    "multiAddress.reachabilityCheckTimeoutMs",
    "observerMasterPort",
    "oraclePath",
    "peerType",
    "portUnification",
    "quorum.cnxn.threads.size",
    "quorumListenOnAllIPs",
    "reconfigEnabled",
    "secureClientPort",
    "secureClientPortAddress",
    "sslQuorum",
    "sslQuorumReloadCertFiles",
    "standaloneEnabled",
    "syncEnabled",
    "syncLimit",
    "tickTime",
];

/// Families `QuorumPeerConfig` reads by prefix.
const PEER_CONFIG_PREFIXES: &[&str] = &["quorum.auth.", "jvm.pause.", "metricsProvider."];

/// How a key was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum KeyKind<'a> {
    /// A `QuorumPeerConfig` key, as written.
    PeerConfig(&'a str),
    /// `server.N` (the `N` part).
    Server(&'a str),
    /// `group.N`.
    Group(&'a str),
    /// `weight.N`.
    Weight(&'a str),
    /// `corral.*`, as written.
    Corral(&'a str),
    /// Anything else: a ZooKeeper system property, `zookeeper.` stripped.
    System(&'a str),
}

/// Names the setting a key reaches. Two keys with the same kind are the same setting: the
/// later line wins, as in a Java `Properties` map.
pub(crate) fn classify(key: &str) -> KeyKind<'_> {
    if PEER_CONFIG_KEYS.contains(&key) || PEER_CONFIG_PREFIXES.iter().any(|p| key.starts_with(p)) {
        return KeyKind::PeerConfig(key);
    }
    if let Some(id) = key.strip_prefix("server.") {
        return KeyKind::Server(id);
    }
    if let Some(id) = key.strip_prefix("group.") {
        return KeyKind::Group(id);
    }
    if let Some(id) = key.strip_prefix("weight.") {
        return KeyKind::Weight(id);
    }
    if key.starts_with("corral.") {
        return KeyKind::Corral(key);
    }
    KeyKind::System(key.strip_prefix("zookeeper.").unwrap_or(key))
}

/// `QuorumPeerConfig` keys Corral accepts but does not act on.
const PEER_CONFIG_NOT_APPLICABLE: &[&str] = &[
    "client.portUnification",
    "multiAddress.reachabilityCheckEnabled",
    "multiAddress.reachabilityCheckTimeoutMs",
    "oraclePath",
    "portUnification",
    "quorum.cnxn.threads.size",
    "sslQuorum",
    "sslQuorumReloadCertFiles",
];

/// `QuorumPeerConfig` prefixes Corral accepts but does not act on (the `metricsProvider.`
/// keys Corral uses are matched before this list is consulted).
const PEER_CONFIG_NOT_APPLICABLE_PREFIXES: &[&str] =
    &["quorum.auth.", "jvm.pause.", "metricsProvider."];

/// ZooKeeper system properties (without `zookeeper.`) Corral accepts but does not act on:
/// JVM, Netty/NIO threading, Jetty, SASL/Kerberos/TLS, caches and throttles Corral does not
/// have, and test-only switches.
const SYSTEM_NOT_APPLICABLE: &[&str] = &[
    "DigestAuthenticationProvider.digestAlg",
    "admin.forceHttps",
    "admin.needClientAuth",
    "admin.portUnification",
    "admin.rateLimiterIntervalInMS",
    "client.secure",
    "clientCnxnSocket",
    "clientTcpKeepAlive",
    "closeSessionTxn.enabled",
    "datadir.autocreate",
    "db.autocreate",
    "electionPortBindRetry",
    "emulate353TTLNodes",
    "enableEagerACLCheck",
    "ensembleAuthName",
    "fips-mode",
    "flushDelay",
    "follower.nodelay",
    "jmx.log4j.disable",
    "jute.maxbuffer.extrasize",
    "leaderConnectDelayDuringRetryMs",
    "maxBatchSize",
    "maxGetChildrenResponseCacheSize",
    "maxResponseCacheSize",
    "maxWriteQueuePollTime",
    "requireClientAuthScheme",
    "server.realm",
    "serverCnxnFactory",
    "sessionRequireClientSASLAuth",
    "snapshot.compression.method",
    "snapshot.trust.empty",
    "snapshotSizeFactor",
    "superUser",
    "tcpKeepAlive",
    "testingonly.initialZxid",
    "throttledOpWaitTime",
    "watchManagerName",
    "watcherCleanIntervalInSeconds",
    "watcherCleanThreadsNum",
    "watcherCleanThreshold",
];

/// System-property families Corral accepts but does not act on.
const SYSTEM_NOT_APPLICABLE_PREFIXES: &[&str] = &[
    "admin.",
    "audit.",
    "authProvider.",
    "commitProcessor.",
    "connection_throttle_",
    "enforce.auth.",
    "fastleader.",
    "kerberos.",
    "leader.",
    "learner.",
    "messageTracker.",
    "netty.",
    "nio.",
    "observer.",
    "request_throttle_",
    "request_throttler.",
    "sasl.",
    "ssl.",
];

/// Whether ZooKeeper 3.8 knows this key but Corral has nothing it would change (TLS, SASL,
/// JVM and thread-pool knobs, ...). Called only for keys the builder did not take.
pub(crate) fn is_not_applicable(kind: KeyKind<'_>) -> bool {
    match kind {
        KeyKind::PeerConfig(key) => {
            PEER_CONFIG_NOT_APPLICABLE.contains(&key)
                || PEER_CONFIG_NOT_APPLICABLE_PREFIXES
                    .iter()
                    .any(|p| key.starts_with(p))
        }
        KeyKind::System(key) => {
            SYSTEM_NOT_APPLICABLE.contains(&key)
                || SYSTEM_NOT_APPLICABLE_PREFIXES
                    .iter()
                    .any(|p| key.starts_with(p))
        }
        KeyKind::Server(_) | KeyKind::Group(_) | KeyKind::Weight(_) | KeyKind::Corral(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_config_keys_keep_their_spelling() {
        assert_eq!(classify("tickTime"), KeyKind::PeerConfig("tickTime"));
        assert_eq!(
            classify("quorum.auth.enableSasl"),
            KeyKind::PeerConfig("quorum.auth.enableSasl")
        );
        // The prefixed form of a QuorumPeerConfig key is just a stray system property.
        assert_eq!(classify("zookeeper.tickTime"), KeyKind::System("tickTime"));
    }

    #[test]
    fn system_properties_with_or_without_prefix_are_one_setting() {
        assert_eq!(classify("snapCount"), classify("zookeeper.snapCount"));
        assert_eq!(
            classify("jute.maxbuffer"),
            classify("zookeeper.jute.maxbuffer")
        );
        assert_eq!(
            classify("4lw.commands.whitelist"),
            KeyKind::System("4lw.commands.whitelist")
        );
    }

    #[test]
    fn member_and_corral_families() {
        assert_eq!(classify("server.12"), KeyKind::Server("12"));
        assert_eq!(classify("group.1"), KeyKind::Group("1"));
        assert_eq!(classify("weight.3"), KeyKind::Weight("3"));
        assert_eq!(classify("corral.shards"), KeyKind::Corral("corral.shards"));
        assert_eq!(
            classify("zookeeper.server.realm"),
            KeyKind::System("server.realm")
        );
    }

    #[test]
    fn not_applicable_lists() {
        for key in [
            "sslQuorum",
            "quorum.auth.learnerRequireSasl",
            "metricsProvider.exportJvmInfo",
            "ssl.keyStore.location",
            "zookeeper.ssl.quorum.trustStore.location",
            "authProvider.1",
            "kerberos.removeHostFromPrincipal",
            "zookeeper.admin.forceHttps",
            "nio.numWorkerThreads",
            "connection_throttle_tokens",
        ] {
            assert!(is_not_applicable(classify(key)), "{key}");
        }
        for key in [
            "foo",
            "server.1",
            "corral.x",
            "tickTime",
            "zookeeper.dataDir",
        ] {
            assert!(!is_not_applicable(classify(key)), "{key}");
        }
    }

    #[test]
    fn tables_are_sorted_and_unique() {
        for table in [
            PEER_CONFIG_KEYS,
            PEER_CONFIG_NOT_APPLICABLE,
            SYSTEM_NOT_APPLICABLE,
        ] {
            assert!(table.windows(2).all(|w| w[0] < w[1]), "{table:?}");
        }
    }
}
