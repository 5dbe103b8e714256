//! Pinning instances to free cores. A fuzzer and its target pinned to one
//! core run faster and steadier than floating ones; two fuzzers pinned to the
//! same core halve each other. A core counts as taken when some other process
//! is already bound to it alone (as afl-fuzz and our instances are).

use std::collections::BTreeSet;

/// Cores this process may run on.
pub fn allowed() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
    }
}

/// Parses a `Cpus_allowed_list` value ("3", "0-3", "0,2-3").
fn parse_list(s: &str) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
                    out.extend(a..=b.min(a + 4096));
                }
            }
            None => {
                if let Ok(c) = part.trim().parse() {
                    out.insert(c);
                }
            }
        }
    }
    out
}

/// Cores some other process is bound to alone.
pub fn taken() -> BTreeSet<usize> {
    let me = std::process::id().to_string();
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(e.path().join("status")) else { continue };
        if let Some(list) = text.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")) {
            let cpus = parse_list(list);
            if cpus.len() == 1 {
                out.extend(cpus);
            }
        }
    }
    out
}

/// The physical core a CPU belongs to (SMT siblings share one), from sysfs.
fn physical_core(cpu: usize) -> Option<(u32, u32)> {
    let dir = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
    let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok()?.trim().parse::<u32>().ok();
    Some((read("physical_package_id").unwrap_or(0), read("core_id")?))
}

/// Orders CPUs so that one hardware thread of every physical core comes
/// before any second thread of a core: instances get whole cores first.
fn spread_over_cores(cpus: Vec<usize>) -> Vec<usize> {
    let mut seen = BTreeSet::new();
    let (mut first, mut rest) = (Vec::new(), Vec::new());
    for c in cpus {
        match physical_core(c) {
            Some(core) if !seen.insert(core) => rest.push(c),
            _ => first.push(c),
        }
    }
    first.extend(rest);
    first
}

/// A core for each of `n` instances: free cores first, one hardware thread
/// per physical core before SMT siblings; `None` where there are not enough
/// (those float).
pub fn assign(n: usize) -> Vec<Option<usize>> {
    let taken = taken();
    let free = spread_over_cores(allowed().into_iter().filter(|c| !taken.contains(c)).collect());
    (0..n).map(|i| free.get(i).copied()).collect()
}

/// Pins the calling process to `cpu` (async-signal-safe: used between fork
/// and exec).
pub fn pin_self(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET stays in bounds for
    // cpu < CPU_SETSIZE.
    unsafe {
        if cpu >= libc::CPU_SETSIZE as usize {
            return;
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_lists() {
        assert_eq!(parse_list("3\n"), BTreeSet::from([3]));
        assert_eq!(parse_list("0-2,5"), BTreeSet::from([0, 1, 2, 5]));
        assert!(parse_list("").is_empty());
    }

    #[test]
    fn assigns_at_most_the_free_cores() {
        let a = assign(10_000);
        let pinned: Vec<usize> = a.iter().flatten().copied().collect();
        assert!(pinned.len() <= allowed().len());
        let unique: BTreeSet<usize> = pinned.iter().copied().collect();
        assert_eq!(unique.len(), pinned.len(), "no core twice");
    }
}
