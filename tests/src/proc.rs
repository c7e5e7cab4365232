//! Resident memory and CPU time of a process, as the benches report them (read from `/proc`
//! through the `procfs` crate).

use anyhow::Context as _;
use procfs::process::Process;

fn process(pid: u32) -> anyhow::Result<Process> {
    Ok(Process::new(i32::try_from(pid)?)?)
}

/// Resident set size (`VmRSS`), in bytes.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    Ok(process(pid)?.status()?.vmrss.context("no VmRSS")? * 1024)
}

/// Peak resident set size (`VmHWM`), in bytes.
pub fn peak_rss_bytes(pid: u32) -> anyhow::Result<u64> {
    Ok(process(pid)?.status()?.vmhwm.context("no VmHWM")? * 1024)
}

/// User plus system CPU seconds the process has used so far.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = process(pid)?.stat()?;
    Ok((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        let rss = rss_bytes(pid).unwrap();
        assert!(rss > 0);
        assert!(peak_rss_bytes(pid).unwrap() >= rss);
        let before = cpu_seconds(pid).unwrap();
        assert!(before >= 0.0);
        let started = Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        assert!(cpu_seconds(pid).unwrap() >= before);
        assert!(process(u32::MAX).is_err(), "no such pid");
    }
}
