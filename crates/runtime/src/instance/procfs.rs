//! Reading `/proc`: process identity (pid plus start time) and mount tables.

use std::fs;
use std::path::PathBuf;

/// `starttime` (field 22 of `/proc/PID/stat`, clock ticks after boot) of `pid`.
pub fn process_start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, start)| start)
}

/// Whether `pid` is still the process that started at `pid_start` and has not exited
/// (a zombie counts as exited).
pub fn process_alive(pid: u32, pid_start: u64) -> bool {
    stat(pid).is_some_and(|(state, start)| start == pid_start && state != 'Z' && state != 'X')
}

fn stat(pid: u32) -> Option<(char, u64)> {
    if pid == 0 {
        return None;
    }
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// State and start time from a `stat` line. The command (field 2) is in parentheses and
/// may hold spaces and parentheses itself: fields are counted after the last `)`.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 was the state; starttime is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Kills `pid` (if it is still the process started at `start`) together with its
/// process group when it leads one (the shim does, after `setsid`), so that a
/// `runc run` it started goes too; never a group it merely belongs to.
pub(crate) fn kill_leader_and_group(pid: u32, start: u64) {
    use rustix::process::{Pid, Signal, kill_process, kill_process_group};
    if !process_alive(pid, start) {
        return;
    }
    let Some(target) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    let leads_group = fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| process_group(&stat))
        == Some(pid);
    if leads_group {
        let _ = kill_process_group(target, Signal::KILL);
    } else {
        let _ = kill_process(target, Signal::KILL);
    }
}

/// The process group (field 5) from a `stat` line.
fn process_group(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields 3 (state) and 4 (ppid) come first.
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// `CAP_SYS_RESOURCE`: raising a hard resource limit.
const CAP_SYS_RESOURCE: u32 = 24;

/// The highest `RLIMIT_NOFILE` up to `wanted` that runc, running with this process's
/// privileges, can give a container: raising a hard limit needs `CAP_SYS_RESOURCE`
/// (without it, our own hard limit), and nothing goes beyond `fs.nr_open`.
pub(crate) fn allowed_nofile(wanted: u64) -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut allowed = if has_capability(&status, CAP_SYS_RESOURCE) {
        wanted
    } else {
        let own = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        own.maximum.map_or(wanted, |hard| hard.min(wanted))
    };
    if let Some(nr_open) = fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
    {
        allowed = allowed.min(nr_open);
    }
    allowed
}

/// Whether capability number `cap` is in the `CapEff` set of a `status` file.
fn has_capability(status: &str, cap: u32) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|set| set & (1 << cap) != 0)
}

/// The mount points of a `mountinfo` table (octal escapes such as `\040` decoded).
pub fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(unescape_mountinfo(point)))
        .collect()
}

/// The mount points of this process's mount namespace (empty if unreadable).
pub fn own_mount_points() -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .map(|table| mount_points(&table))
        .unwrap_or_default()
}

/// Whether the (last, so visible) mount at `/` is read-only; `None` if there is none.
pub(crate) fn root_read_only(mountinfo: &str) -> Option<bool> {
    mountinfo
        .lines()
        .map(|line| line.split(' ').collect::<Vec<_>>())
        .rfind(|fields| fields.get(4) == Some(&"/"))
        .and_then(|fields| {
            fields
                .get(5)
                .map(|options| options.split(',').any(|o| o == "ro"))
        })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\134` for a backslash).
pub fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|digits| bytes[i] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match octal {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_process_group_is_field_five() {
        assert_eq!(process_group("42 (a) b) S 1 42 42 0 -1"), Some(42));
        assert_eq!(process_group("garbage"), None);
    }

    #[test]
    fn stat_fields_are_counted_after_the_command() {
        let line = "4242 (a (weird) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 0 0";
        assert_eq!(parse_stat(line), Some(('S', 987_654)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = std::process::id();
        let start = process_start_time(me).unwrap();
        assert!(process_alive(me, start));
        assert!(!process_alive(me, start + 1));
        assert!(!process_alive(0, 0));
    }

    #[test]
    fn capabilities_are_read_from_cap_eff() {
        let status = "Name:\tkiln\nCapPrm:\t000001ffffffffff\nCapEff:\t000001fffeffffff\n";
        assert!(!has_capability(status, CAP_SYS_RESOURCE));
        assert!(has_capability(status, 21));
        assert!(!has_capability("", 0));
        assert!(allowed_nofile(64) <= 64);
    }

    #[test]
    fn mount_tables_are_parsed() {
        let table = "\
22 1 0:21 / / ro,relatime - overlay overlay ro,lowerdir=/a:/b
23 22 0:22 / /proc rw,nosuid - proc proc rw
24 22 0:23 / /with\\040space rw - tmpfs tmpfs rw
";
        assert_eq!(root_read_only(table), Some(true));
        assert_eq!(
            mount_points(table),
            [PathBuf::from("/"), "/proc".into(), "/with space".into()]
        );
        assert_eq!(
            root_read_only("22 1 0:21 / / rw,relatime - ext4 /dev/vda rw\n"),
            Some(false)
        );
        assert_eq!(root_read_only(""), None);
    }
}
