//! zkCli's text renderings: Java's `Date.toString()`, the StatPrinter lines, getAcl's
//! lines (the jute `Id.toString()` quirk), Java's `List.toString()`, and the watcher's
//! event block.

use crate::client::WatchedEvent;
use crate::proto::acl::perms_to_letters;
use crate::proto::{Acl, Stat};

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Broken-down local time of a moment, as `Date.toString()` needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i64,
    /// 0..=11
    pub month: usize,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday
    pub weekday: usize,
    /// The zone's short name (`UTC`, `CET`, ...).
    pub zone: String,
}

/// Days since 1970-01-01 to a civil date (proleptic Gregorian), for the UTC fallback.
fn civil_from_days(days: i64) -> (i64, usize, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, (month - 1) as usize, day)
}

/// UTC broken-down time of `epoch_ms`.
pub fn utc_time(epoch_ms: i64) -> LocalTime {
    let secs = epoch_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    LocalTime {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: (rem / 60 % 60) as u32,
        second: (rem % 60) as u32,
        weekday: (days + 4).rem_euclid(7) as usize,
        zone: "UTC".to_string(),
    }
}

/// The local broken-down time of `epoch_ms` in the process's time zone (TZ or
/// /etc/localtime, as the JVM picks its default zone).
#[cfg(unix)]
pub fn local_time(epoch_ms: i64) -> LocalTime {
    let secs = epoch_ms.div_euclid(1000) as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers are valid for
    // the call, and tm_zone (when set) points at static zone-name storage of libc.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return utc_time(epoch_ms);
        }
        let zone = if tm.tm_zone.is_null() {
            "UTC".to_string()
        } else {
            std::ffi::CStr::from_ptr(tm.tm_zone)
                .to_string_lossy()
                .into_owned()
        };
        LocalTime {
            year: i64::from(tm.tm_year) + 1900,
            month: tm.tm_mon.clamp(0, 11) as usize,
            day: tm.tm_mday as u32,
            hour: tm.tm_hour as u32,
            minute: tm.tm_min as u32,
            second: tm.tm_sec as u32,
            weekday: tm.tm_wday.clamp(0, 6) as usize,
            zone,
        }
    }
}

#[cfg(not(unix))]
pub fn local_time(epoch_ms: i64) -> LocalTime {
    utc_time(epoch_ms)
}

/// Java's `Date.toString()`: `EEE MMM dd HH:mm:ss zzz yyyy`.
pub fn java_date_text(t: &LocalTime) -> String {
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} {} {}",
        DAYS[t.weekday], MONTHS[t.month], t.day, t.hour, t.minute, t.second, t.zone, t.year
    )
}

/// `new Date(epoch_ms).toString()` in the local zone.
pub fn java_date(epoch_ms: i64) -> String {
    java_date_text(&local_time(epoch_ms))
}

/// StatPrinter.print: eleven lines, hex for zxids and the owner (as Long.toHexString,
/// i.e. two's complement for negative values).
pub fn stat_lines(stat: &Stat, date: impl Fn(i64) -> String) -> Vec<String> {
    vec![
        format!("cZxid = 0x{:x}", stat.czxid),
        format!("ctime = {}", date(stat.ctime)),
        format!("mZxid = 0x{:x}", stat.mzxid),
        format!("mtime = {}", date(stat.mtime)),
        format!("pZxid = 0x{:x}", stat.pzxid),
        format!("cversion = {}", stat.cversion),
        format!("dataVersion = {}", stat.version),
        format!("aclVersion = {}", stat.aversion),
        format!("ephemeralOwner = 0x{:x}", stat.ephemeral_owner),
        format!("dataLength = {}", stat.data_length),
        format!("numChildren = {}", stat.num_children),
    ]
}

/// jute's ToStringOutputArchive escaping of a string field.
fn jute_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\0' => out.push_str("%00"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            ',' => out.push_str("%2C"),
            '}' => out.push_str("%7D"),
            '%' => out.push_str("%25"),
            other => out.push(other),
        }
    }
    out
}

/// One getAcl entry: `Id.toString()` (jute's record text, which ends in a newline)
/// then `": "` and the permission letters, so each entry spans two lines:
/// `'world,'anyone` / `: cdrwa`.
pub fn acl_entry(acl: &Acl) -> String {
    format!(
        "{},{}\n: {}",
        jute_string(&acl.id.scheme),
        jute_string(&acl.id.id),
        perms_to_letters(acl.perms)
    )
}

/// Java's `AbstractCollection.toString()`: `[a, b]`.
pub fn java_list<S: AsRef<str>>(items: &[S]) -> String {
    let parts: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("[{}]", parts.join(", "))
}

/// What zkCli's watcher prints for an event: `printMessage` twice, each a newline then
/// the text.
pub fn event_block(event: &WatchedEvent) -> String {
    format!("\nWATCHER::\n\n{event}\n")
}

/// Sorts names as Java's `String.compareTo` does (by UTF-16 code units).
pub fn java_sort(names: &mut [String]) {
    names.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::state;

    #[test]
    fn dates_read_as_java_date_to_string() {
        assert_eq!(java_date_text(&utc_time(0)), "Thu Jan 01 00:00:00 UTC 1970");
        // 2026-11-25T10:31:02Z, a Wednesday.
        assert_eq!(
            java_date_text(&utc_time(1_795_602_662_000)),
            "Wed Nov 25 10:31:02 UTC 2026"
        );
        assert_eq!(
            java_date_text(&utc_time(951_782_400_000)),
            "Tue Feb 29 00:00:00 UTC 2000"
        );
        // Before the epoch: floor, not truncation.
        assert_eq!(
            java_date_text(&utc_time(-1)),
            "Wed Dec 31 23:59:59 UTC 1969"
        );
    }

    #[test]
    fn stat_lines_match_stat_printer() {
        let stat = Stat {
            czxid: 4,
            mzxid: 0x2c,
            ctime: 0,
            mtime: 0,
            version: 2,
            cversion: 0,
            aversion: 1,
            ephemeral_owner: 0x0010_000a_3f2b_0000,
            data_length: 5,
            num_children: 0,
            pzxid: 4,
        };
        let lines = stat_lines(&stat, |ms| java_date_text(&utc_time(ms)));
        assert_eq!(
            lines,
            vec![
                "cZxid = 0x4",
                "ctime = Thu Jan 01 00:00:00 UTC 1970",
                "mZxid = 0x2c",
                "mtime = Thu Jan 01 00:00:00 UTC 1970",
                "pZxid = 0x4",
                "cversion = 0",
                "dataVersion = 2",
                "aclVersion = 1",
                "ephemeralOwner = 0x10000a3f2b0000",
                "dataLength = 5",
                "numChildren = 0",
            ]
        );
        let negative = Stat {
            ephemeral_owner: -1,
            ..Stat::default()
        };
        assert_eq!(
            stat_lines(&negative, |_| String::new())[8],
            "ephemeralOwner = 0xffffffffffffffff"
        );
    }

    #[test]
    fn acl_entries_read_as_zkcli() {
        assert_eq!(
            acl_entry(&Acl::new(31, "world", "anyone")),
            "'world,'anyone\n: cdrwa"
        );
        assert_eq!(
            acl_entry(&Acl::new(1, "digest", "u:a,b%")),
            "'digest,'u:a%2Cb%25\n: r"
        );
        assert_eq!(acl_entry(&Acl::new(0, "ip", "1.2.3.4")), "'ip,'1.2.3.4\n: ");
    }

    #[test]
    fn lists_and_events() {
        assert_eq!(java_list::<&str>(&[]), "[]");
        assert_eq!(java_list(&["a", "b"]), "[a, b]");
        let e = WatchedEvent::state_change(state::SYNC_CONNECTED);
        assert_eq!(
            event_block(&e),
            "\nWATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null\n"
        );
        let mut names = vec!["b".to_string(), "B".into(), "a".into()];
        java_sort(&mut names);
        assert_eq!(names, vec!["B", "a", "b"]);
    }
}
