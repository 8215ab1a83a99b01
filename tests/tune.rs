//! `corral tune` end to end: real fdatasync probes on a temp dir (1 s each), the
//! report's shape, the written config loading through the config layer, and `--check`'s
//! exit codes and `file:line` warnings.

use corral::config::Config;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest any one `corral tune` run may take here (three 1 s probes plus zero-filling).
const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// A scratch directory, removed when dropped (also when a test fails).
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(tag: &str) -> TempDir {
    let p = std::env::temp_dir().join(format!("corral-tune-it-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("temp dir");
    TempDir(p)
}

fn tuning_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tuning")
}

/// Runs `corral tune ARGS` in `cwd`, killed if it outlives [`RUN_DEADLINE`].
fn tune(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("tune")
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn corral");
    let start = Instant::now();
    loop {
        match child.try_wait().expect("wait") {
            Some(_) => break,
            None if start.elapsed() > RUN_DEADLINE => {
                let _ = child.kill();
                panic!("corral tune {args:?} ran longer than {RUN_DEADLINE:?}");
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("output");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

const PROFILES: [&str; 5] = ["nvme", "sata-ssd", "cloud-block", "hdd", "small-vm"];

#[test]
fn tune_measures_reports_and_writes_a_config_that_loads() {
    let dir = temp_dir("write");
    std::fs::create_dir_all(dir.join("conf")).expect("conf dir");
    // A deployment's layout: conf/ and tuning/ side by side.
    let tuning = dir.join("tuning");
    std::fs::create_dir_all(&tuning).expect("tuning dir");
    for name in PROFILES {
        let file = format!("{name}.cfg");
        std::fs::copy(tuning_dir().join(&file), tuning.join(&file)).expect("copy profile");
    }
    let (code, out, err) = tune(
        &dir,
        &[
            "--data-log-dir",
            dir.to_str().expect("utf-8 temp dir"),
            "--duration-s",
            "1",
            "--out",
            "conf/zoo.cfg",
            "--profiles-dir",
            "tuning",
            "--client-port",
            "2399",
        ],
    );
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");

    // The report's shape.
    for expected in [
        "directory: ",
        "device: ",
        "fdatasync after a write into a zero-filled file (busy: ",
        "what the measurements imply:",
        "  - disk class ",
        "wrote conf/zoo.cfg (corral.profile=",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    for block in ["  4 KiB busy ", "  64 KiB busy ", "  4 KiB idle "] {
        let row = out
            .lines()
            .find(|l| l.starts_with(block))
            .unwrap_or_else(|| panic!("no {block:?} row in:\n{out}"));
        let syncs: u64 = row
            .split_whitespace()
            .nth(3)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no sync count in {row:?}"));
        assert!(syncs > 0, "{row}");
    }
    let profile = out
        .lines()
        .find_map(|l| l.strip_prefix("profile: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no profile line in:\n{out}"));
    assert!(PROFILES.contains(&profile), "{profile}");
    assert!(out.contains("  because "), "{out}");

    // The config loads, includes the chosen profile by a relative path, and names the dirs.
    let cfg = dir.join("conf/zoo.cfg");
    let c = Config::load(&cfg).unwrap_or_else(|e| panic!("written config: {e}"));
    let text = std::fs::read_to_string(&cfg).expect("read cfg");
    assert!(
        text.contains(&format!("corral.profile=../tuning/{profile}.cfg\n")),
        "relative include expected:\n{text}"
    );
    let included = c.corral.profile.clone().expect("a profile is included");
    assert_eq!(
        std::fs::canonicalize(&included).expect("profile exists"),
        std::fs::canonicalize(tuning.join(format!("{profile}.cfg"))).expect("profile")
    );
    let canonical = std::fs::canonicalize(&dir).expect("canonical");
    assert_eq!(c.data_dir, canonical);
    assert_eq!(c.data_log_dir, canonical);
    assert_eq!(c.client_port, Some(2399));
    assert!(c.warnings.is_empty() && c.unknown_keys.is_empty(), "{c:?}");

    // The probe file is gone: only conf/ is left.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(left, ["conf", "tuning"], "{left:?}");

    // Not overwritten without --force.
    let (code, _, err) = tune(&dir, &["--out", "conf/zoo.cfg", "--duration-s", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exists"), "{err}");

    // --check on what tune wrote: it measured this very device, so at most warnings.
    let (code, out, err) = tune(&dir, &["--check", "conf/zoo.cfg", "--duration-s", "1"]);
    assert!(code == 0 || code == 1, "code {code}\n{out}\n{err}");
    assert!(out.contains("4 KiB fdatasync p50"), "{out}");
}

#[test]
fn tune_json_and_inlined_profile_without_the_profile_files() {
    let dir = temp_dir("json");
    // The working directory has no tuning/: the profile's keys are written in.
    let (code, out, err) = tune(&dir, &["--duration-s", "1", "--out", "zoo.cfg", "--json"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let json = out.trim();
    assert!(json.starts_with('{') && json.ends_with('}'), "{json}");
    assert_eq!(json.lines().count(), 1, "one line of JSON");
    for key in [
        "\"fdatasync\":[{\"mode\":\"busy\",\"block_bytes\":4096,",
        "{\"mode\":\"busy\",\"block_bytes\":65536,",
        "{\"mode\":\"idle\",\"block_bytes\":4096,",
        "\"p99_us\":",
        "\"cores_available\":",
        "\"memlock_bytes\":",
        "\"disk_class\":\"",
        "\"include\":\"inlined\"",
    ] {
        assert!(json.contains(key), "missing {key} in {json}");
    }
    let profile = json
        .split("\"profile\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("profile field");
    assert!(PROFILES.contains(&profile), "{profile}");

    let cfg = dir.join("zoo.cfg");
    let c = Config::load(&cfg).unwrap_or_else(|e| panic!("written config: {e}"));
    assert_eq!(c.corral.profile, None, "inlined, not included");
    let text = std::fs::read_to_string(&cfg).expect("read");
    assert!(
        text.contains("# Profile: "),
        "the profile's own comments come along:\n{text}"
    );
    let profile_cfg = tuning_dir().join(format!("{profile}.cfg"));
    let bare = std::fs::read_to_string(profile_cfg).expect("profile");
    if bare.contains("corral.pinning=on") {
        assert_eq!(c.corral.pinning, corral::config::Pinning::On);
    } else {
        assert_eq!(c.corral.pinning, corral::config::Pinning::Off);
    }
}

#[test]
fn check_warns_with_file_and_line_and_exit_codes() {
    let dir = temp_dir("check");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(
        dir.join("fast.cfg"),
        "# a profile\n# that is silly\nsnapCount=100\n",
    )
    .expect("profile");
    std::fs::write(
        dir.join("zoo.cfg"),
        format!(
            "dataDir={}\nclientPort=2181\ncorral.profile=fast.cfg\nforceSync=no\npreAllocSize=64\ncorral.commit.maxBatch=1\n",
            data.display()
        ),
    )
    .expect("cfg");
    let (code, out, err) = tune(&dir, &["--check", "zoo.cfg", "--duration-s", "1"]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    for expected in [
        "zoo.cfg:4: forceSync: no: ",
        "zoo.cfg:5: preAllocSize: 64 KiB",
        "zoo.cfg:6: corral.commit.maxBatch: 1 turns group commit off",
        "fast.cfg:3: snapCount: 100",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(out.trim_end().ends_with("warning(s)"), "{out}");
    assert!(
        std::fs::read_dir(&data).expect("data").next().is_none(),
        "the probe file is removed from dataLogDir"
    );

    // Unreadable and invalid configs: exit 2, the config layer's one-line message.
    let (code, _, err) = tune(&dir, &["--check", "missing.cfg"]);
    assert_eq!(code, 2);
    assert!(err.contains("missing.cfg: cannot read"), "{err}");
    std::fs::write(
        dir.join("bad.cfg"),
        "dataDir=d\nclientPort=1\ncorral.shards=x\n",
    )
    .expect("bad");
    let (code, _, err) = tune(&dir, &["--check", "bad.cfg"]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.cfg:3: corral.shards"), "{err}");
}
