//! Whole-config tests: defaults, every error, myid, profiles, dynamic files, rendering.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A scratch directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("corral-config-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.0.join(relative)
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, text).expect("write scratch file");
        path
    }

    fn dir(&self, relative: &str) -> String {
        let path = self.path(relative);
        std::fs::create_dir_all(&path).expect("create dir");
        path.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Parses `text` as if read from `zoo.cfg` in the working directory (nothing is read from
/// disk unless the text needs a profile, dynamic file or myid).
fn parse(text: &str) -> Result<Config, ConfigError> {
    build::build(text, Path::new("zoo.cfg"), 4)
}

fn ok(text: &str) -> Config {
    match parse(text) {
        Ok(config) => config,
        Err(e) => panic!("expected a valid config, got: {e}"),
    }
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => {
            let message = e.to_string();
            assert!(!message.contains('\n'), "error spans lines: {message:?}");
            message
        }
    }
}

const MINIMAL: &str = "dataDir=/var/lib/zk\nclientPort=2181\n";

// ---------------------------------------------------------------- defaults

#[test]
fn minimal_standalone_defaults() {
    let c = ok(MINIMAL);
    assert_eq!(c.source.as_deref(), Some(Path::new("zoo.cfg")));
    assert_eq!(c.tick_ms, 3000);
    assert_eq!(c.min_session_timeout_ms, 6000);
    assert_eq!(c.max_session_timeout_ms, 60000);
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/zk"));
    assert_eq!(c.data_log_dir, PathBuf::from("/var/lib/zk"));
    assert_eq!(c.client_port, Some(2181));
    assert_eq!(c.client_port_address, None);
    assert_eq!(c.secure_client_port, None);
    assert_eq!(c.client_port_listen_backlog, -1);
    assert_eq!(c.max_client_cnxns, 60);
    assert_eq!(c.max_cnxns, 0);
    assert_eq!(c.jute_max_buffer_bytes, 0xfffff);
    assert_eq!(
        c.four_letter_whitelist,
        FourLetterWhitelist::parse(None, false)
    );
    assert!(!c.extended_types_enabled && !c.skip_acl && !c.enforce_quota);
    assert_eq!(c.super_digest, None);
    assert!(c.digest_enabled && c.digest_auth_enabled);
    assert_eq!(c.container_check_interval_ms, 60_000);
    assert_eq!(c.container_max_per_minute, 10_000);
    assert_eq!(c.container_max_never_used_interval_ms, 0);
    assert_eq!(c.global_outstanding_limit, 1000);
    assert_eq!(c.snap_count, 100_000);
    assert_eq!(c.snap_size_limit_kb, Some(4_194_304));
    assert_eq!(c.txn_log_size_limit_kb, None);
    assert_eq!(c.commit_log_count, 500);
    assert_eq!(c.pre_alloc_kb, 65_536);
    assert!(c.force_sync);
    assert_eq!(c.fsync_warning_threshold_ms, 1000);
    assert_eq!(c.autopurge_snap_retain_count, 3);
    assert_eq!(c.autopurge_purge_interval_hours, 0);
    assert!(c.standalone_enabled && !c.reconfig_enabled);
    assert_eq!(c.election_alg, 3);
    assert_eq!(c.peer_type, Role::Participant);
    assert!(c.servers.is_empty() && c.groups.is_empty() && c.weights.is_empty());
    assert_eq!(c.server_id, None);
    assert_eq!(c.init_limit_ticks, None);
    assert_eq!(c.sync_limit_ticks, None);
    assert!(c.admin_enable_server);
    assert_eq!(c.admin_server_address, Host::wildcard());
    assert_eq!(c.admin_server_port, 8080);
    assert_eq!(c.admin_idle_timeout_ms, 30_000);
    assert_eq!(c.admin_command_url, "/commands");
    assert!(!c.metrics_prometheus_enabled);
    assert_eq!(c.metrics_provider_http_port, 7000);
    assert!(!c.local_sessions_enabled && !c.local_sessions_upgrading_enabled);
    assert!(c.sync_enabled && c.leader_serves);
    assert_eq!(c.cnx_timeout_ms, 5000);
    assert_eq!(c.large_request_max_bytes, 100 * 1024 * 1024);
    assert_eq!(c.large_request_threshold_bytes, None);
    assert_eq!(c.corral.shards, 3, "4 cores: one for ZAB, three shards");
    assert_eq!(c.corral.pinning, Pinning::Off);
    assert_eq!(c.corral.io_memory_kb, 512);
    assert_eq!(c.corral.io_ring_depth, 128);
    assert_eq!(c.corral.commit_max_batch, 256);
    assert_eq!(c.corral.commit_max_wait_us, 200);
    assert_eq!(c.corral.profile, None);
    assert!(c.is_standalone());
    assert!(c.not_applicable.is_empty() && c.unknown_keys.is_empty() && c.warnings.is_empty());
}

#[test]
fn default_shards_leave_a_core_for_zab_above_two_cores() {
    assert_eq!(default_shards(0), 0);
    assert_eq!(default_shards(1), 0, "sessions on the ZAB executor");
    assert_eq!(default_shards(2), 0, "sessions on the ZAB executor");
    assert_eq!(default_shards(3), 2);
    assert_eq!(default_shards(8), 7);
    assert_eq!(default_shards(100_000), SHARDS_MAX);
}

#[test]
fn session_timeouts_follow_the_tick() {
    let c = ok("tickTime=2000\ndataDir=d\nclientPort=1\n");
    assert_eq!(
        (c.min_session_timeout_ms, c.max_session_timeout_ms),
        (4000, 40000)
    );
    let c =
        ok("tickTime=2000\ndataDir=d\nclientPort=1\nminSessionTimeout=-1\nmaxSessionTimeout=-1\n");
    assert_eq!(
        (c.min_session_timeout_ms, c.max_session_timeout_ms),
        (4000, 40000)
    );
    let c = ok(
        "tickTime=2000\ndataDir=d\nclientPort=1\nminSessionTimeout=1000\nmaxSessionTimeout=90000\n",
    );
    assert_eq!(
        (c.min_session_timeout_ms, c.max_session_timeout_ms),
        (1000, 90000)
    );
}

#[test]
fn data_log_dir_and_relative_paths_are_kept() {
    let c = ok("dataDir=data/zk1\ndataLogDir=../logs\nclientPort=1\n");
    assert_eq!(c.data_dir, PathBuf::from("data/zk1"));
    assert_eq!(c.data_log_dir, PathBuf::from("../logs"));
}

#[test]
fn client_port_forms() {
    let c = ok("dataDir=d\nclientPort=2181\nclientPortAddress=127.0.0.1\n");
    assert_eq!(
        c.client_endpoint(),
        Some((Host::Ip([127, 0, 0, 1].into()), 2181))
    );
    let c = ok("dataDir=d\nclientPort=2181\nclientPortAddress=[::1]\n");
    assert_eq!(
        c.client_port_address,
        Some(Host::Ip("::1".parse().expect("v6")))
    );
    let c = ok("dataDir=d\nclientPort=2181\n");
    assert_eq!(c.client_endpoint(), Some((Host::wildcard(), 2181)));
    let c = ok("dataDir=d\nclientPort=0\nsecureClientPort=2281\n");
    assert_eq!(
        c.client_port, None,
        "0 means no plain port, as in ZooKeeper"
    );
    assert_eq!(c.secure_client_port, Some(2281));
}

#[test]
fn embedded_default() {
    let c = Config::embedded_default();
    assert_eq!(c.source, None);
    assert_eq!(c.tick_ms, 2000);
    assert_eq!(
        (c.min_session_timeout_ms, c.max_session_timeout_ms),
        (4000, 40000)
    );
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert_eq!(c.data_log_dir, PathBuf::from("./data"));
    assert!(c.four_letter_whitelist.all);
    assert!(c.is_standalone());
    let addr = c.client_socket_addr().expect("no resolution needed");
    assert_eq!(addr, Some("127.0.0.1:2181".parse().expect("addr")));
}

// ---------------------------------------------------------------- value errors

#[test]
fn error_names_file_line_and_key() {
    assert_eq!(
        err("dataDir=d\nclientPort=1\n\n\n\n\ntickTime=abc\n"),
        "zoo.cfg:7: tickTime: expected a positive integer, got \"abc\""
    );
}

#[test]
fn tick_errors() {
    assert_eq!(
        err("tickTime=0\ndataDir=d\nclientPort=1\n"),
        "zoo.cfg:1: tickTime is not set"
    );
    assert!(err("tickTime=-5\ndataDir=d\nclientPort=1\n").contains("expected a positive integer"));
    assert!(err("tickTime=99999999999\ndataDir=d\nclientPort=1\n")
        .contains("tickTime: expected a positive integer"));
}

#[test]
fn data_dir_required() {
    assert_eq!(err("clientPort=2181\n"), "zoo.cfg: dataDir is not set");
    assert!(err("dataDir=\nclientPort=2181\n").starts_with("zoo.cfg:1: dataDir: expected a path"));
}

#[test]
fn min_above_max_is_refused() {
    let message = err(
        "tickTime=2000\ndataDir=d\nclientPort=1\nminSessionTimeout=9000\nmaxSessionTimeout=5000\n",
    );
    assert_eq!(
        message,
        "zoo.cfg:5: minSessionTimeout: minSessionTimeout (9000 ms) must not be larger than maxSessionTimeout (5000 ms)"
    );
    // Only min set, above the default max of 20 ticks.
    assert!(
        err("tickTime=100\ndataDir=d\nclientPort=1\nminSessionTimeout=5000\n")
            .contains("must not be larger")
    );
    assert!(
        err("dataDir=d\nclientPort=1\nminSessionTimeout=-2\n").contains("or -1 for the default")
    );
}

#[test]
fn address_without_port() {
    assert_eq!(
        err("dataDir=d\nclientPortAddress=127.0.0.1\nsecureClientPort=2281\n"),
        "zoo.cfg:2: clientPortAddress: clientPortAddress is set but clientPort is not set"
    );
    assert!(
        err("dataDir=d\nclientPort=1\nsecureClientPortAddress=::1\n")
            .contains("secureClientPort is not set")
    );
}

#[test]
fn ports_must_be_ports() {
    assert_eq!(
        err("dataDir=d\nclientPort=70000\n"),
        "zoo.cfg:2: clientPort: expected a port number (0-65535), got \"70000\""
    );
    assert!(err("dataDir=d\nclientPort=abc\n").contains("clientPort: expected a port number"));
    assert!(err("dataDir=d\nclientPort=1\nadmin.serverPort=0\n")
        .contains("admin.serverPort: expected a port number (1-65535)"));
}

#[test]
fn no_client_port_at_all_in_standalone() {
    assert!(err("dataDir=d\n").contains("no client port"));
}

#[test]
fn election_alg_only_3() {
    assert!(ok("dataDir=d\nclientPort=1\nelectionAlg=3\n").election_alg == 3);
    assert!(err("dataDir=d\nclientPort=1\nelectionAlg=1\n").contains("electionAlg: expected 3"));
    assert!(err("dataDir=d\nclientPort=1\nelectionAlg=x\n").contains("electionAlg: expected 3"));
}

#[test]
fn peer_type_values() {
    assert_eq!(
        ok("dataDir=d\nclientPort=1\npeerType=Observer\n").peer_type,
        Role::Observer
    );
    assert_eq!(
        err("dataDir=d\nclientPort=1\npeerType=foo\n"),
        "zoo.cfg:3: peerType: expected participant or observer, got \"foo\""
    );
}

#[test]
fn booleans_true_false_and_yes_no() {
    let c = ok("dataDir=d\nclientPort=1\nstandaloneEnabled=TRUE\nreconfigEnabled=true\nforceSync=no\nskipACL=yes\nleaderServes=No\n");
    assert!(
        c.standalone_enabled
            && c.reconfig_enabled
            && !c.force_sync
            && c.skip_acl
            && !c.leader_serves
    );
    assert_eq!(
        err("dataDir=d\nclientPort=1\nstandaloneEnabled=maybe\n"),
        "zoo.cfg:3: standaloneEnabled: expected true or false, got \"maybe\""
    );
    assert!(
        err("dataDir=d\nclientPort=1\nreconfigEnabled=yes\n").contains("expected true or false")
    );
    // ZooKeeper ignores skipACL=true (it compares with "yes"); Corral refuses to guess.
    assert!(err("dataDir=d\nclientPort=1\nskipACL=true\n").contains("skipACL: expected yes or no"));
    assert!(
        err("dataDir=d\nclientPort=1\nforceSync=maybe\n").contains("forceSync: expected yes or no")
    );
}

#[test]
fn jvm_only_properties_are_zoo_cfg_keys_in_both_spellings() {
    let bare = ok(
        "dataDir=d\nclientPort=1\njute.maxbuffer=0x3fffff\nextendedTypesEnabled=true\nenforceQuota=true\n\
         znode.container.checkIntervalMs=1000\nznode.container.maxPerMinute=50\n\
         znode.container.maxNeverUsedIntervalMs=30000\nskipACL=yes\nreadonlymode.enabled=true\n\
         DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\nsnapCount=5000\ndigest.enabled=false\n\
         4lw.commands.whitelist=ruok\n",
    );
    let prefixed = ok(
        "dataDir=d\nclientPort=1\nzookeeper.jute.maxbuffer=4194303\nzookeeper.extendedTypesEnabled=true\n\
         zookeeper.enforceQuota=true\nzookeeper.znode.container.checkIntervalMs=1000\n\
         zookeeper.znode.container.maxPerMinute=50\nzookeeper.znode.container.maxNeverUsedIntervalMs=30000\n\
         zookeeper.skipACL=yes\nzookeeper.readonlymode.enabled=true\n\
         zookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n\
         zookeeper.snapCount=5000\nzookeeper.digest.enabled=false\nzookeeper.4lw.commands.whitelist=ruok\n",
    );
    for c in [&bare, &prefixed] {
        assert_eq!(c.jute_max_buffer_bytes, 0x3fffff);
        assert!(
            c.extended_types_enabled && c.enforce_quota && c.skip_acl && c.read_only_mode_enabled
        );
        assert_eq!(c.container_check_interval_ms, 1000);
        assert_eq!(c.container_max_per_minute, 50);
        assert_eq!(c.container_max_never_used_interval_ms, 30000);
        assert_eq!(
            c.super_digest.as_deref(),
            Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
        );
        assert_eq!(c.snap_count, 5000);
        assert!(!c.digest_enabled);
        assert!(c.four_letter_whitelist.allows("ruok") && c.four_letter_whitelist.allows("isro"));
        assert!(c.unknown_keys.is_empty() && c.not_applicable.is_empty());
    }
    assert!(err("dataDir=d\nclientPort=1\njute.maxbuffer=0\n")
        .contains("jute.maxbuffer: expected a positive integer"));
    assert!(
        err("dataDir=d\nclientPort=1\nDigestAuthenticationProvider.superDigest=nocolon\n")
            .contains("user:base64digest")
    );
}

#[test]
fn quorum_peer_keys_are_not_read_with_a_prefix() {
    let c = ok("dataDir=d\nclientPort=1\nzookeeper.tickTime=5\n");
    assert_eq!(c.tick_ms, 3000);
    assert_eq!(c.unknown_keys.len(), 1);
    assert_eq!(c.unknown_keys[0].key, "zookeeper.tickTime");
}

#[test]
fn whitelist_rules() {
    assert!(!ok(MINIMAL).four_letter_whitelist.allows("ruok"));
    let c = ok("dataDir=d\nclientPort=1\n4lw.commands.whitelist=*\n");
    assert!(c.four_letter_whitelist.allows("dump"));
    let c = ok("dataDir=d\nclientPort=1\n4lw.commands.whitelist=ruok, conf\n");
    assert!(c.four_letter_whitelist.allows("conf") && c.four_letter_whitelist.allows("srvr"));
    assert!(!c.four_letter_whitelist.allows("isro"));
}

#[test]
fn adjustments_become_warnings() {
    let c = ok("dataDir=d\nclientPort=1\nautopurge.snapRetainCount=1\nsnapCount=1\nautopurge.purgeInterval=-3\n");
    assert_eq!(c.autopurge_snap_retain_count, 3);
    assert_eq!(c.snap_count, 2);
    assert_eq!(c.autopurge_purge_interval_hours, 0);
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(c.warnings[0].starts_with("zoo.cfg:3: autopurge.snapRetainCount is 1"));
}

#[test]
fn sync_enabled_false_is_a_warning_not_a_silent_no_op() {
    let c = ok("dataDir=d\nclientPort=1\nsyncEnabled=true\n");
    assert!(c.sync_enabled && c.warnings.is_empty(), "{:?}", c.warnings);
    let c = ok("dataDir=d\nclientPort=1\nsyncEnabled=FALSE\n");
    assert!(!c.sync_enabled);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].starts_with("zoo.cfg:3: syncEnabled is false, which Corral does not support"),
        "{:?}",
        c.warnings
    );
    // A later line that turns it back on leaves only the "set again" warning.
    let c = ok("dataDir=d\nclientPort=1\nsyncEnabled=false\nsyncEnabled=true\n");
    assert!(c.sync_enabled);
    assert!(
        !c.warnings.iter().any(|w| w.contains("does not support")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn a_small_log_in_memory_bound_is_a_warning() {
    let c = ok("dataDir=d\nclientPort=1\ncorral.snapshot.logInMemoryKb=512\n");
    assert_eq!(c.corral.snapshot_log_in_memory_kb, 512);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].starts_with("zoo.cfg:3: corral.snapshot.logInMemoryKb is 512"),
        "{:?}",
        c.warnings
    );
    let c = ok("dataDir=d\nclientPort=1\ncorral.snapshot.logInMemoryKb=1024\n");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn size_limits_off_when_not_positive() {
    let c = ok("dataDir=d\nclientPort=1\nsnapSizeLimitInKb=-1\ntxnLogSizeLimitInKb=1024\nlargeRequestThreshold=4096\n");
    assert_eq!(c.snap_size_limit_kb, None);
    assert_eq!(c.txn_log_size_limit_kb, Some(1024));
    assert_eq!(c.large_request_threshold_bytes, Some(4096));
}

#[test]
fn last_line_wins_with_a_warning() {
    let c = ok("dataDir=d\nclientPort=1\ntickTime=abc\ntickTime=2000\nsnapCount=10\nzookeeper.snapCount=20\n");
    assert_eq!(
        c.tick_ms, 2000,
        "the bad first value is overridden, as in a Java Properties map"
    );
    assert_eq!(c.snap_count, 20);
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("zoo.cfg:4: tickTime is set again (first on line 3)"));
}

#[test]
fn not_applicable_and_unknown_keys_are_recorded_with_lines() {
    let c = ok(
        "dataDir=d\nclientPort=1\nsslQuorumReloadCertFiles=true\nssl.ciphersuites=X\nauthProvider.1=org.x.Sasl\n\
         metricsProvider.exportJvmInfo=false\nquorum.auth.enableSasl=true\nfoo.bar=1\nkerberos.removeRealmFromPrincipal=true\n\
         metricsProvider.className=com.example.Custom\nzookeeper.admin.forceHttps=true\nmaxResponseCacheSize=0\n",
    );
    let na: Vec<(&str, Option<u32>)> = c
        .not_applicable
        .iter()
        .map(|k| (k.key.as_str(), k.at.line))
        .collect();
    assert_eq!(
        na,
        vec![
            ("sslQuorumReloadCertFiles", Some(3)),
            ("ssl.ciphersuites", Some(4)),
            ("authProvider.1", Some(5)),
            ("metricsProvider.exportJvmInfo", Some(6)),
            ("quorum.auth.enableSasl", Some(7)),
            ("kerberos.removeRealmFromPrincipal", Some(9)),
            ("metricsProvider.className", Some(10)),
            ("zookeeper.admin.forceHttps", Some(11)),
            ("maxResponseCacheSize", Some(12)),
        ]
    );
    assert_eq!(c.unknown_keys.len(), 1);
    assert_eq!(c.unknown_keys[0].to_string(), "zoo.cfg:8: foo.bar");
}

#[test]
fn metrics_and_admin_keys() {
    let c = ok(&format!(
        "dataDir=d\nclientPort=1\nmetricsProvider.className={PROMETHEUS_PROVIDER_CLASS}\nmetricsProvider.httpPort=7001\n\
         metricsProvider.httpHost=127.0.0.1\nadmin.enableServer=false\nadmin.serverPort=9090\nadmin.serverAddress=::1\n\
         admin.commandURL=/cmds\nadmin.idleTimeout=1000\n"
    ));
    assert!(c.metrics_prometheus_enabled);
    assert_eq!(c.metrics_provider_http_port, 7001);
    assert_eq!(
        c.metrics_provider_http_host,
        Host::Ip([127, 0, 0, 1].into())
    );
    assert!(!c.admin_enable_server);
    assert_eq!(c.admin_server_port, 9090);
    assert_eq!(c.admin_command_url, "/cmds");
    assert_eq!(c.admin_idle_timeout_ms, 1000);
    assert!(err("dataDir=d\nclientPort=1\nadmin.commandURL=cmds\n").contains("starting with /"));
}

#[test]
fn escapes_and_continuations_reach_typed_fields() {
    let c = ok("data\\\n    Dir=/var/zk\\u0031\nclient\\\n Port = 21\\\n  81\n");
    assert_eq!(c.data_dir, PathBuf::from("/var/zk1"));
    assert_eq!(c.client_port, Some(2181));
    assert!(err("dataDir=d\nclientPort=1\nfoo=\\u12x4\n")
        .starts_with("zoo.cfg:3: malformed \\uXXXX escape"));
}

#[test]
fn value_with_control_characters_stays_on_one_line() {
    let message = err("dataDir=d\nclientPort=1\ntickTime=1\\n2\n");
    assert_eq!(
        message,
        "zoo.cfg:3: tickTime: expected a positive integer, got \"1\\n2\""
    );
}

// ---------------------------------------------------------------- corral keys

#[test]
fn corral_client_max_output_bytes() {
    let default = ok("dataDir=d\nclientPort=1\n");
    assert_eq!(default.corral.client_max_output_bytes, 16 << 20);
    let c = ok("dataDir=d\nclientPort=1\ncorral.client.maxOutputBytes=1048576\n");
    assert_eq!(c.corral.client_max_output_bytes, 1 << 20);
    assert!(
        err("dataDir=d\nclientPort=1\ncorral.client.maxOutputBytes=100\n")
            .contains("corral.client.maxOutputBytes")
    );
}

#[test]
fn release_startup_code_is_on_unless_turned_off() {
    assert!(ok("dataDir=d\nclientPort=1\n").corral.release_startup_code);
    let off = ok("dataDir=d\nclientPort=1\ncorral.releaseStartupCode=false\n");
    assert!(!off.corral.release_startup_code);
    assert!(
        err("dataDir=d\nclientPort=1\ncorral.releaseStartupCode=maybe\n")
            .contains("corral.releaseStartupCode")
    );
}

#[test]
fn corral_keys() {
    let c = ok(
        "dataDir=d\nclientPort=1\ncorral.shards=2\ncorral.pinning=0,1,2\ncorral.ioMemoryKb=192\n\
                corral.ioRingDepth=512\ncorral.commit.maxBatch=64\ncorral.commit.maxWaitUs=0\ncorral.snapshot.stepNodes=16\ncorral.zab.spinUs=300\n\
                corral.snapshot.logInMemoryKb=2048\n",
    );
    assert_eq!(c.corral.snapshot_step_nodes, 16);
    assert_eq!(c.corral.snapshot_log_in_memory_kb, 2048);
    assert_eq!(c.corral.zab_spin_us, 300);
    assert_eq!(c.corral.shards, 2);
    assert_eq!(c.corral.pinning, Pinning::Cores(vec![0, 1, 2]));
    assert_eq!(c.corral.io_memory_kb, 192);
    assert_eq!(c.corral.io_ring_depth, 512);
    assert_eq!(c.corral.commit_max_batch, 64);
    assert_eq!(c.corral.commit_max_wait_us, 0);
    assert_eq!(
        ok("dataDir=d\nclientPort=1\ncorral.pinning=ON\n")
            .corral
            .pinning,
        Pinning::On
    );
    assert_eq!(
        ok("dataDir=d\nclientPort=1\ncorral.pinning=off\n")
            .corral
            .pinning,
        Pinning::Off
    );
}

#[test]
fn corral_key_errors() {
    assert_eq!(
        err("dataDir=d\nclientPort=1\ncorral.shard=2\n")
            .split(" (known")
            .next(),
        Some("zoo.cfg:3: corral.shard: unknown Corral key")
    );
    assert!(err("dataDir=d\nclientPort=1\ncorral.shards=-1\n")
        .contains("corral.shards: expected a shard count"));
    assert_eq!(
        ok("dataDir=d\nclientPort=1\ncorral.shards=0\n")
            .corral
            .shards,
        0,
        "0: client sessions on the ZAB executor"
    );
    assert!(err("dataDir=d\nclientPort=1\ncorral.shards=5000\n").contains("corral.shards"));
    assert!(err("dataDir=d\nclientPort=1\ncorral.pinning=0,0\n").contains("distinct core ids"));
    assert!(err("dataDir=d\nclientPort=1\ncorral.pinning=sometimes\n").contains("corral.pinning"));
    assert_eq!(
        err("dataDir=d\nclientPort=1\ncorral.pinning=1,9\n"),
        "zoo.cfg:3: corral.pinning: core 9 does not exist (this host has 4 cores)"
    );
    assert!(err("dataDir=d\nclientPort=1\ncorral.ioMemoryKb=0\n").contains("corral.ioMemoryKb"));
    for bad in ["4", "100", "65536", "-128"] {
        assert!(
            err(&format!(
                "dataDir=d\nclientPort=1\ncorral.ioRingDepth={bad}\n"
            ))
            .contains("corral.ioRingDepth: expected a power of two from 8 to 32768"),
            "{bad}"
        );
    }
    assert!(err("dataDir=d\nclientPort=1\ncorral.commit.maxBatch=0\n")
        .contains("corral.commit.maxBatch"));
    assert!(err("dataDir=d\nclientPort=1\ncorral.commit.maxWaitUs=-1\n")
        .contains("corral.commit.maxWaitUs"));
    assert!(
        err("dataDir=d\nclientPort=1\ncorral.snapshot.stepNodes=0\n")
            .contains("corral.snapshot.stepNodes")
    );
    assert!(
        err("dataDir=d\nclientPort=1\ncorral.snapshot.logInMemoryKb=0\n")
            .contains("corral.snapshot.logInMemoryKb")
    );
    assert_eq!(
        ok("dataDir=d\nclientPort=1\n")
            .corral
            .snapshot_log_in_memory_kb,
        1 << 20,
        "1 GiB by default"
    );
}

// ---------------------------------------------------------------- profiles

#[test]
fn profile_applies_first_and_explicit_keys_override() {
    let s = Scratch::new("profile");
    s.write("conf/profiles/nvme.cfg", "corral.commit.maxBatch=512\ncorral.commit.maxWaitUs=50\npreAllocSize=131072\nmysteryKey=1\n");
    let cfg = s.write(
        "conf/zoo.cfg",
        "dataDir=d\nclientPort=1\ncorral.profile=profiles/nvme.cfg\ncorral.commit.maxWaitUs=75\n",
    );
    let c = Config::load(&cfg).expect("valid");
    assert_eq!(c.corral.profile, Some(s.path("conf/profiles/nvme.cfg")));
    assert_eq!(c.corral.commit_max_batch, 512, "from the profile");
    assert_eq!(c.pre_alloc_kb, 131072, "from the profile");
    assert_eq!(
        c.corral.commit_max_wait_us, 75,
        "the cfg overrides the profile"
    );
    assert!(
        c.warnings.is_empty(),
        "overriding a profile is not a warning: {:?}",
        c.warnings
    );
    let unknown = &c.unknown_keys[0];
    assert_eq!(
        unknown.at.file,
        s.path("conf/profiles/nvme.cfg").display().to_string()
    );
    assert_eq!(unknown.at.line, Some(4));
}

#[test]
fn profile_errors_name_the_profile() {
    let s = Scratch::new("profile-errors");
    s.write("conf/bad.profile", "corral.commit.maxBatch=lots\n");
    let cfg = s.write(
        "conf/zoo.cfg",
        "dataDir=d\nclientPort=1\ncorral.profile=bad.profile\n",
    );
    let message = Config::load(&cfg).expect_err("bad profile").to_string();
    assert_eq!(
        message,
        format!(
            "{}:1: corral.commit.maxBatch: expected a record count from 1 to 65536, got \"lots\"",
            s.path("conf/bad.profile").display()
        )
    );

    s.write("conf/nested.profile", "corral.profile=other\n");
    let cfg = s.write(
        "conf/zoo2.cfg",
        "dataDir=d\nclientPort=1\ncorral.profile=nested.profile\n",
    );
    assert!(Config::load(&cfg)
        .expect_err("nested")
        .to_string()
        .contains("cannot include another profile"));

    let cfg = s.write(
        "conf/zoo3.cfg",
        "dataDir=d\nclientPort=1\ncorral.profile=missing.profile\n",
    );
    let message = Config::load(&cfg).expect_err("missing").to_string();
    assert!(
        message.contains("missing.profile: cannot read"),
        "{message}"
    );
}

// ---------------------------------------------------------------- quorum and myid

/// The walkthrough's four configs, in a scratch dir; returns the cfg paths.
fn walkthrough(s: &Scratch) -> Vec<PathBuf> {
    (1..=4)
        .map(|n| {
            let data = s.dir(&format!("data/zk{n}"));
            s.write(&format!("data/zk{n}/myid"), &format!("{n}\n"));
            s.write(
                &format!("zoo{n}.cfg"),
                &format!(
                    "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={data}\nclientPort={}\n\
                     server.1=127.0.0.1:2188:3188\nserver.2=127.0.0.1:2189:3189\n\
                     server.3=127.0.0.1:2190:3190\nserver.4=127.0.0.1:2191:3191:observer\n",
                    2180 + n
                ),
            )
        })
        .collect()
}

#[test]
fn walkthrough_quorum() {
    let s = Scratch::new("walkthrough");
    let cfgs = walkthrough(&s);
    for (index, cfg) in cfgs.iter().enumerate() {
        let c = Config::load(cfg).expect("walkthrough config");
        let id = index as u64 + 1;
        assert!(!c.is_standalone());
        assert_eq!(c.server_id, Some(id));
        assert_eq!(c.init_limit_ticks, Some(10));
        assert_eq!(c.sync_limit_ticks, Some(5));
        assert_eq!(
            c.peer_type,
            if id == 4 {
                Role::Observer
            } else {
                Role::Participant
            }
        );
        assert_eq!(c.own_server().map(|s| s.id), Some(id));
        assert_eq!(
            c.client_endpoint(),
            Some((Host::wildcard(), 2180 + id as u16))
        );
        assert_eq!(
            c.config_node_data(),
            "server.1=127.0.0.1:2188:3188:participant\n\
             server.2=127.0.0.1:2189:3189:participant\n\
             server.3=127.0.0.1:2190:3190:participant\n\
             server.4=127.0.0.1:2191:3191:observer\n\
             version=0"
        );
    }
}

#[test]
fn conf_output_quorum() {
    let s = Scratch::new("conf-quorum");
    let cfgs = walkthrough(&s);
    let c = Config::load(&cfgs[3]).expect("zoo4");
    let data = s.path("data/zk4").join("version-2").display().to_string();
    let expected = format!(
        "clientPort=2184\nsecureClientPort=-1\ndataDir={data}\ndataDirSize=457\ndataLogDir={data}\ndataLogSize=511\n\
         tickTime=2000\nmaxClientCnxns=60\nminSessionTimeout=4000\nmaxSessionTimeout=40000\nclientPortListenBacklog=-1\n\
         serverId=4\ninitLimit=10\nsyncLimit=5\nelectionAlg=3\nelectionPort=3191\nquorumPort=2191\npeerType=1\n\
         membership: \nserver.1=127.0.0.1:2188:3188:participant\nserver.2=127.0.0.1:2189:3189:participant\n\
         server.3=127.0.0.1:2190:3190:participant\nserver.4=127.0.0.1:2191:3191:observer\nversion=0"
    );
    assert_eq!(c.conf_lines(457, 511, &c.membership()), expected);
}

#[test]
fn conf_output_standalone() {
    let c = ok("tickTime=2000\ndataDir=/tmp/zk\nclientPort=27411\n");
    assert_eq!(
        c.conf_lines(457, 457, &c.membership()),
        "clientPort=27411\nsecureClientPort=-1\ndataDir=/tmp/zk/version-2\ndataDirSize=457\n\
         dataLogDir=/tmp/zk/version-2\ndataLogSize=457\ntickTime=2000\nmaxClientCnxns=60\n\
         minSessionTimeout=4000\nmaxSessionTimeout=40000\nclientPortListenBacklog=-1\nserverId=0\n"
    );
    assert_eq!(c.config_node_data(), "");
}

fn quorum_text(data: &str, extra: &str) -> String {
    format!(
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={data}\nclientPort=2181\n\
         server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n{extra}"
    )
}

#[test]
fn myid_missing_names_the_path() {
    let s = Scratch::new("myid-missing");
    let data = s.dir("data");
    let message = err(&quorum_text(&data, ""));
    assert_eq!(
        message,
        format!(
            "zoo.cfg:4: myid file is missing: {}",
            s.path("data/myid").display()
        )
    );
}

#[test]
fn myid_contents() {
    let s = Scratch::new("myid-contents");
    let data = s.dir("data");
    for (content, fragment) in [
        (
            "abc\n",
            "myid: expected a server id from 1 to 255, got \"abc\"",
        ),
        ("300\n", "got \"300\""),
        ("0\n", "got \"0\""),
        ("", "got \"\""),
        ("-1", "got \"-1\""),
    ] {
        s.write("data/myid", content);
        let message = err(&quorum_text(&data, ""));
        assert!(message.contains(fragment), "{content:?}: {message}");
        assert!(
            message.starts_with(&format!("{}:1: ", s.path("data/myid").display())),
            "{message}"
        );
    }
    s.write("data/myid", " 2 \r\nignored second line\n");
    assert_eq!(ok(&quorum_text(&data, "")).server_id, Some(2));
    s.write("data/myid", "3\n");
    assert_eq!(
        err(&quorum_text(&data, "")),
        format!(
            "zoo.cfg:4: myid 3 (from {}) matches no server.N line: my id 3 is not in the peer list",
            s.path("data/myid").display()
        )
    );
}

#[test]
fn extended_types_cap_server_ids_at_254() {
    let s = Scratch::new("myid-extended");
    let data = s.dir("data");
    s.write("data/myid", "255\n");
    let text = format!(
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={data}\nclientPort=2181\nextendedTypesEnabled=true\n\
         server.1=127.0.0.1:2888:3888\nserver.255=127.0.0.1:2889:3889\n"
    );
    assert_eq!(
        err(&text),
        "zoo.cfg:8: server.255: expected a server id from 1 to 254 (extendedTypesEnabled), got \"255\""
    );
    let text = text.replace("server.255", "server.254");
    assert!(err(&text)
        .contains("expected a server id from 1 to 254 (extendedTypesEnabled), got \"255\""));
}

#[test]
fn quorum_needs_init_and_sync_limits() {
    let s = Scratch::new("limits");
    let data = s.dir("data");
    s.write("data/myid", "1\n");
    let base =
        format!("tickTime=2000\ndataDir={data}\nclientPort=2181\nserver.1=h:1:2\nserver.2=h:3:4\n");
    assert_eq!(
        err(&format!("{base}syncLimit=2\n")),
        "zoo.cfg: initLimit is not set"
    );
    assert_eq!(
        err(&format!("{base}initLimit=2\n")),
        "zoo.cfg: syncLimit is not set"
    );
    assert_eq!(
        err(&format!("{base}initLimit=0\nsyncLimit=2\n")),
        "zoo.cfg:6: initLimit is not set"
    );
    assert!(ok(&format!("{base}initLimit=2\nsyncLimit=2\n"))
        .connect_to_learner_master_limit_ticks
        .is_none());
}

#[test]
fn single_participant_is_standalone_without_myid() {
    let c = ok(
        "tickTime=2000\ndataDir=/nonexistent/zk\nclientPort=2181\nserver.1=127.0.0.1:2888:3888\n",
    );
    assert!(c.is_standalone());
    assert_eq!(c.server_id, None);
    // Observers do not count: still standalone, as ZooKeeper's isDistributed.
    let c =
        ok("dataDir=/nonexistent/zk\nclientPort=2181\nserver.1=h:1:2\nserver.2=h:3:4:observer\n");
    assert!(c.is_standalone());
}

#[test]
fn single_participant_with_myid_uses_its_own_client_part() {
    let s = Scratch::new("standalone-myid");
    let data = s.dir("data");
    s.write("data/myid", "1\n");
    let text = format!("dataDir={data}\nserver.1=127.0.0.1:2888:3888;127.0.0.1:2185\n");
    let c = ok(&text);
    assert!(c.is_standalone());
    assert_eq!(c.server_id, Some(1));
    assert_eq!(
        c.client_endpoint(),
        Some((Host::Ip([127, 0, 0, 1].into()), 2185))
    );
    assert!(c.conf_lines(0, 0, &c.membership()).contains("serverId=0\n"));
    s.write("data/myid", "7\n");
    let c = ok(&format!("{text}clientPort=2185\n"));
    assert_eq!(c.server_id, None);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    s.write("data/myid", "x\n");
    assert!(err(&text).contains("myid: expected a server id"));
}

#[test]
fn a_quorum_member_may_serve_no_clients() {
    let s = Scratch::new("no-client-port");
    let data = s.dir("data");
    s.write("data/myid", "1\n");
    let text = quorum_text(&data, "").replace("clientPort=2181\n", "");
    let c = ok(&text);
    assert_eq!(c.client_endpoint(), None);
    assert_eq!(c.client_socket_addr().expect("nothing to resolve"), None);
}

#[test]
fn standalone_disabled_makes_a_quorum_of_one() {
    let s = Scratch::new("quorum-of-one");
    let data = s.dir("data");
    s.write("data/myid", "1\n");
    let text = format!(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={data}\nclientPort=27411\nclientPortAddress=127.0.0.1\n\
         standaloneEnabled=false\nserver.1=127.0.0.1:27888:27988\n"
    );
    let c = ok(&text);
    assert!(!c.is_standalone());
    assert_eq!(c.server_id, Some(1));
    let conf = c.conf_lines(511, 511, &c.membership());
    assert!(conf.contains("serverId=1\ninitLimit=10\nsyncLimit=5\nelectionAlg=3\nelectionPort=27988\nquorumPort=27888\npeerType=0\nmembership: \nserver.1=127.0.0.1:27888:27988:participant\nversion=0"), "{conf}");
}

#[test]
fn server_line_errors_carry_file_and_line() {
    let s = Scratch::new("server-errors");
    let data = s.dir("data");
    s.write("data/myid", "1\n");
    let with = |line: &str| quorum_text(&data, &format!("{line}\n"));
    assert_eq!(
        err(&with("server.3=127.0.0.1:2888")),
        "zoo.cfg:8: server.3: expected host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort]: \"127.0.0.1:2888\""
    );
    assert!(err(&with("server.3=127.0.0.1:2890:2890"))
        .contains("quorum port and election port must differ"));
    assert!(err(&with("server.3=[::1:2890:3890")).contains("no matching ']:'"));
    assert!(err(&with("server.3=h:2890:3890:leader")).contains("unrecognised peer type"));
    assert_eq!(
        err(&with("server.x=h:2890:3890")),
        "zoo.cfg:8: server.x: expected a server id from 1 to 255, got \"x\""
    );
    assert!(err(&with("server.0=h:2890:3890")).contains("got \"0\""));
    assert!(err(&with("server.256=h:2890:3890")).contains("got \"256\""));
    assert!(err(&with("server.3=127.0.0.1:2888:3999"))
        .contains("port 2888 on 127.0.0.1 is also used by server.1"));
}

#[test]
fn ipv6_members() {
    let s = Scratch::new("ipv6");
    let data = s.dir("data");
    s.write("data/myid", "1\n");
    let text = format!(
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={data}\n\
         server.1=[::1]:2888:3888;[::1]:2181\nserver.2=[::1]:2889:3889:participant;2182\n"
    );
    let c = ok(&text);
    assert_eq!(
        c.client_endpoint(),
        Some((Host::Ip("::1".parse().expect("v6")), 2181))
    );
    assert_eq!(
        c.client_socket_addr().expect("ip"),
        Some("[::1]:2181".parse().expect("addr"))
    );
    assert_eq!(
        c.config_node_data(),
        "server.1=[0:0:0:0:0:0:0:1]:2888:3888:participant;[0:0:0:0:0:0:0:1]:2181\n\
         server.2=[0:0:0:0:0:0:0:1]:2889:3889:participant;0.0.0.0:2182\nversion=0"
    );
}

#[test]
fn own_client_part_must_agree_with_client_port() {
    let s = Scratch::new("client-conflict");
    let data = s.dir("data");
    s.write("data/myid", "1\n");
    let text = format!(
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={data}\nclientPort=2181\n\
         server.1=127.0.0.1:2888:3888;2182\nserver.2=127.0.0.1:2889:3889\n"
    );
    assert_eq!(
        err(&text),
        "zoo.cfg:6: server.1: client address 0.0.0.0:2182 differs from clientPort/clientPortAddress 0.0.0.0:2181"
    );
    assert!(ok(&text.replace(";2182", ";2181")).client_port == Some(2181));
}

#[test]
fn observers_alone_are_refused() {
    assert!(err("dataDir=d\nclientPort=1\nserver.1=h:1:2:observer\n")
        .contains("observers without participants"));
}

#[test]
fn peer_type_mismatch_warns_and_the_server_line_wins() {
    let s = Scratch::new("peer-type");
    let data = s.dir("data");
    s.write("data/myid", "1\n");
    let c = ok(&quorum_text(&data, "peerType=observer\n"));
    assert_eq!(c.peer_type, Role::Participant);
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("the server line wins"));
}

#[test]
fn groups_and_weights() {
    let s = Scratch::new("groups");
    let data = s.dir("data");
    s.write("data/myid", "1\n");
    let text = quorum_text(
        &data,
        "server.3=127.0.0.1:2890:3890\ngroup.1=1:2\ngroup.2=3\nweight.1=2\n",
    );
    let c = ok(&text);
    assert_eq!(c.groups.len(), 2);
    assert_eq!(c.weights.get(&1), Some(&2));
    assert!(c
        .config_node_data()
        .ends_with("group.1=1:2\ngroup.2=3\nweight.1=2\nweight.2=1\nweight.3=1\nversion=0"));
    let text = quorum_text(&data, "server.3=127.0.0.1:2890:3890\ngroup.1=1:2\n");
    assert!(err(&text).contains("server 3 is not in a group"));
}

#[test]
fn multi_address_members() {
    let s = Scratch::new("multi-address");
    let data = s.dir("data");
    s.write("data/myid", "1\n");
    let text = quorum_text(&data, "server.3=127.0.0.1:2890:3890|127.0.0.2:2890:3890\n");
    assert!(err(&text).contains("multiAddress.enabled"));
    let c = ok(&format!("{text}multiAddress.enabled=true\n"));
    assert!(c
        .config_node_data()
        .contains("server.3=127.0.0.1:2890:3890|127.0.0.2:2890:3890:participant"));
}

#[test]
fn dynamic_config_file() {
    let s = Scratch::new("dynamic");
    let data = s.dir("data");
    s.write("data/myid", "2\n");
    let dynamic = s.write(
        "zoo.cfg.dynamic.100000000",
        "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\nserver.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n",
    );
    let text = format!(
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={data}\ndynamicConfigFile={}\n",
        dynamic.display()
    );
    let c = ok(&text);
    assert_eq!(c.config_version, 0x1_0000_0000);
    assert_eq!(c.servers.len(), 2);
    assert_eq!(c.client_endpoint(), Some((Host::wildcard(), 2182)));
    assert!(c.config_node_data().ends_with("version=100000000"));

    let message = err(&format!("{text}server.3=127.0.0.1:2890:3890\n"));
    assert!(
        message.starts_with("zoo.cfg:6: server.3: must be in the dynamic config file"),
        "{message}"
    );

    s.write(
        "zoo.cfg.dynamic.100000000",
        "version=100000000\nserver.1=127.0.0.1:2888:3888\n",
    );
    assert!(err(&text).contains("has no version line"));
    s.write(
        "zoo.cfg.dynamic.100000000",
        "server.1=127.0.0.1:2888:3888\nfoo=bar\n",
    );
    let message = err(&text);
    assert!(
        message.starts_with(&format!("{}:2: foo: only server.N", dynamic.display())),
        "{message}"
    );
    std::fs::remove_file(&dynamic).expect("remove");
    assert!(err(&text).contains("cannot read"));
}

// ---------------------------------------------------------------- files and robustness

#[test]
fn load_reports_unreadable_and_oversized_files() {
    let s = Scratch::new("files");
    let missing = s.path("nope.cfg");
    let message = Config::load(&missing).expect_err("missing").to_string();
    assert!(
        message.starts_with(&format!("{}: cannot read: ", missing.display())),
        "{message}"
    );
    let big = s.write("big.cfg", &"# padding\n".repeat(120_000));
    let message = Config::load(&big).expect_err("too large").to_string();
    assert!(
        message.contains("more than the 1048576 a config may have"),
        "{message}"
    );
}

#[test]
fn load_reads_latin1_files() {
    let s = Scratch::new("latin1");
    let path = s.path("zoo.cfg");
    std::fs::write(&path, b"dataDir=/d\xe9\nclientPort=1\n").expect("write");
    assert_eq!(
        Config::load(&path).expect("latin-1").data_dir,
        PathBuf::from("/d\u{e9}")
    );
}

#[test]
fn garbage_never_panics() {
    // Lines drawn from a pool of valid, invalid and hostile fragments.
    let pool = [
        "tickTime=",
        "tickTime=-1",
        "dataDir=d",
        "clientPort=2181",
        "clientPort=99999",
        "server.1=h:1:2",
        "server.2=[::1]:3:4;5",
        "server.=x",
        "server.1=|||",
        "group.1=1:2",
        "weight.9=x",
        "initLimit=5",
        "syncLimit=0",
        "minSessionTimeout=999999999999",
        "corral.pinning=,",
        "corral.profile=",
        "jute.maxbuffer=-0x",
        "4lw.commands.whitelist=,*,",
        "standaloneEnabled=false",
        "\\u",
        "=",
        ":",
        "server.1=h:1:2;[",
        "server.1=[::1]:",
        "peerType=",
        "dynamicConfigFile=",
        "a\\",
        "#x",
        "electionAlg=3",
    ];
    let mut text = String::new();
    for seed in 0u64..5000 {
        text.clear();
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for _ in 0..(seed % 7) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            text.push_str(pool[(x % pool.len() as u64) as usize]);
            text.push('\n');
        }
        let _ = build::build(&text, Path::new("/nonexistent/zoo.cfg"), 2);
    }
}

// ---------------------------------------------------------------- shipped files

#[test]
fn shipped_zoo_cfg_is_the_embedded_default() {
    let shipped = ok(include_str!("../../scripts/conf/zoo.cfg"));
    let mut embedded = Config::embedded_default();
    embedded.source = shipped.source.clone();
    embedded.corral.shards = shipped.corral.shards;
    assert_eq!(shipped, embedded);
}

#[test]
fn shipped_sample_parses() {
    let c = ok(include_str!("../../scripts/conf/zoo_sample.cfg"));
    assert_eq!(c.tick_ms, 2000);
    assert_eq!(c.init_limit_ticks, Some(10));
    assert_eq!(c.sync_limit_ticks, Some(5));
    assert!(c.unknown_keys.is_empty() && c.not_applicable.is_empty());
}

#[test]
fn tls_keys() {
    let c = ok("dataDir=d\nclientPort=1\nsecureClientPort=2\nssl.keyStore.location=k.pem\n\
         zookeeper.ssl.trustStore.location=t.pem\nssl.clientAuth=WANT\nssl.keyStore.type=PEM\n\
         sslQuorum=true\nssl.quorum.keyStore.location=q.pem\nssl.quorum.hostnameVerification=false\n\
         X509AuthenticationProvider.superUser=CN=admin,O=Corral\n");
    assert_eq!(
        c.ssl_client.key_store_location,
        Some(PathBuf::from("k.pem"))
    );
    assert_eq!(
        c.ssl_client.trust_store_location,
        Some(PathBuf::from("t.pem"))
    );
    assert_eq!(c.ssl_client.client_auth, crate::config::ClientAuth::Want);
    assert!(c.ssl_quorum);
    assert_eq!(
        c.ssl_quorum_stores.key_store_location,
        Some(PathBuf::from("q.pem"))
    );
    assert!(!c.ssl_quorum_stores.hostname_verification);
    assert_eq!(
        c.ssl_quorum_stores.client_auth,
        crate::config::ClientAuth::Need
    );
    assert_eq!(c.x509_super_user.as_deref(), Some("CN=admin,O=Corral"));
    assert!(c.not_applicable.is_empty() && c.unknown_keys.is_empty());
    assert!(err("dataDir=d\nclientPort=1\nssl.keyStore.type=JKS\n").contains("PEM"));
    assert!(err("dataDir=d\nclientPort=1\nssl.clientAuth=maybe\n").contains("none, want or need"));
}

#[test]
fn two_cores_serve_on_the_zab_executor_standalone_or_replicated() {
    let two_cores = |text: &str| build::build(text, Path::new("zoo.cfg"), 2);
    let standalone = two_cores("dataDir=d\nclientPort=1\n").map(|c| c.corral.shards);
    assert!(matches!(standalone, Ok(0)), "{standalone:?}");
    let s = Scratch::new("two-cores");
    let data = s.dir("data");
    s.write("data/myid", "1\n");
    let replicated = two_cores(&quorum_text(&data, "")).map(|c| c.corral.shards);
    assert!(matches!(replicated, Ok(0)), "{replicated:?}");
    let asked = two_cores(&quorum_text(&data, "corral.shards=1\n")).map(|c| c.corral.shards);
    assert!(matches!(asked, Ok(1)), "an explicit 1 stands: {asked:?}");
    let four = build::build(&quorum_text(&data, ""), Path::new("zoo.cfg"), 4);
    assert!(matches!(four.map(|c| c.corral.shards), Ok(3)));
}
