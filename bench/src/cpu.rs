//! CPU time used during a run, from `/proc`: this process (the load driver, the engine and,
//! for HTTP, the server), its waited-for children (pgbench), and the Postgres cluster (the
//! postmaster, the backends it has reaped, and its live children).
//!
//! On a 2-core machine the client, the engine and Postgres share the CPUs, so CPU time per
//! transition says where the time goes. Resolution is one clock tick (10 ms): fine over runs
//! of seconds.

use std::fs;

/// `USER_HZ`: the unit of the times in `/proc/*/stat`. Fixed at 100 by the kernel ABI on the
/// architectures we run on (it is not `CONFIG_HZ`).
const TICKS_PER_SECOND: u64 = 100;

/// CPU times in clock ticks at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// This process (all threads).
    pub own: u64,
    /// This process's terminated and waited-for children (pgbench).
    pub children: u64,
    /// The Postgres cluster: postmaster, reaped backends, live backends.
    pub postgres: u64,
}

/// CPU time spent between two snapshots, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub own_us: u64,
    pub children_us: u64,
    pub postgres_us: u64,
}

impl Snapshot {
    /// Reads the times now. `postmaster`: the cluster's pid (0 when unknown: postgres counts 0).
    pub fn take(postmaster: i32) -> Snapshot {
        let own = stat_times("self").map(|t| (t.utime + t.stime, t.cutime + t.cstime));
        let (own, children) = own.unwrap_or((0, 0));
        let postgres = if postmaster > 0 { cluster_ticks(postmaster) } else { 0 };
        Snapshot { own, children, postgres }
    }

    /// What was used from `self` to `later`.
    pub fn until(&self, later: &Snapshot) -> Usage {
        let us = |a: u64, b: u64| b.saturating_sub(a) * 1_000_000 / TICKS_PER_SECOND;
        Usage {
            own_us: us(self.own, later.own),
            children_us: us(self.children, later.children),
            postgres_us: us(self.postgres, later.postgres),
        }
    }
}

/// CPU time of one process (all its threads) so far, in microseconds; 0 when it is gone.
pub fn process_us(pid: u32) -> u64 {
    stat_times(&pid.to_string()).map_or(0, |t| (t.utime + t.stime) * 1_000_000 / TICKS_PER_SECOND)
}

#[derive(Debug, Clone, Copy)]
struct Times {
    ppid: i32,
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
}

/// Fields of `/proc/<pid>/stat` (see proc(5)); the command name may contain spaces, so fields
/// are counted from the last `)`.
fn stat_times(pid: &str) -> Option<Times> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<Times> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) … utime(14) stime(15) cutime(16) cstime(17).
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(Times { ppid: f.get(1)?.parse().ok()?, utime: num(11)?, stime: num(12)?, cutime: num(13)?, cstime: num(14)? })
}

/// The postmaster's own and reaped children's time, plus every live child's own time.
fn cluster_ticks(postmaster: i32) -> u64 {
    let mut total = stat_times(&postmaster.to_string()).map_or(0, |t| t.utime + t.stime + t.cutime + t.cstime);
    let Ok(entries) = fs::read_dir("/proc") else { return total };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
        if let Some(t) = stat_times(pid).filter(|t| t.ppid == postmaster) {
            total += t.utime + t.stime;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_spaces_in_the_name() {
        let line = "4242 (postgres: a b) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 30 7 3 20 0 1 0 100 0 0";
        let t = parse_stat(line).expect("parses");
        assert_eq!((t.ppid, t.utime, t.stime, t.cutime, t.cstime), (17, 250, 30, 7, 3));
    }

    #[test]
    fn own_times_are_readable() {
        assert!(stat_times("self").is_some());
    }
}
