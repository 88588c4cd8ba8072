//! Host resource usage from `/proc` text (pure parsers, sampled by the caller).

use straddle_proto::Usage;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("/proc/stat has no aggregate `cpu` line")]
    NoCpuLine,
    #[error("/proc/meminfo has no {0} line")]
    NoMemField(&'static str),
    #[error("{file}: cannot read {what} in line {line:?}")]
    Bad { file: &'static str, what: &'static str, line: String },
}

/// CPU time counters (jiffies) of the aggregate `cpu` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    pub busy: u64,
    pub total: u64,
}

pub fn parse_stat(text: &str) -> Result<CpuTimes, ParseError> {
    let line = text.lines().find(|l| l.starts_with("cpu ")).ok_or(ParseError::NoCpuLine)?;
    let vals: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| ParseError::Bad { file: "/proc/stat", what: "a counter", line: line.into() })?;
    if vals.len() < 4 {
        return Err(ParseError::Bad { file: "/proc/stat", what: "four counters", line: line.into() });
    }
    // user nice system idle iowait irq softirq steal (guest time is inside user/nice).
    let total: u64 = vals.iter().take(8).sum();
    let idle = vals[3] + vals.get(4).copied().unwrap_or(0);
    Ok(CpuTimes { busy: total - idle, total })
}

/// Fraction of CPU time busy between two samples.
pub fn utilisation(before: CpuTimes, after: CpuTimes) -> f64 {
    let total = after.total.saturating_sub(before.total);
    if total == 0 {
        return 0.0;
    }
    after.busy.saturating_sub(before.busy) as f64 / total as f64
}

/// (total, used) bytes of memory; used = total − available.
pub fn parse_meminfo(text: &str) -> Result<(u64, u64), ParseError> {
    let field = |name: &'static str| -> Result<u64, ParseError> {
        let line = text.lines().find(|l| l.starts_with(name)).ok_or(ParseError::NoMemField(name))?;
        let kib = line.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).ok_or_else(|| ParseError::Bad {
            file: "/proc/meminfo",
            what: name,
            line: line.into(),
        })?;
        Ok(kib * 1024)
    };
    let total = field("MemTotal:")?;
    let avail = field("MemAvailable:")?;
    Ok((total, total.saturating_sub(avail)))
}

/// Received and sent bytes over every interface but loopback.
pub fn parse_net_dev(text: &str) -> Result<(u64, u64), ParseError> {
    let mut rx = 0;
    let mut tx = 0;
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else { continue };
        if name.trim() == "lo" {
            continue;
        }
        let v: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if v.len() < 16 {
            return Err(ParseError::Bad { file: "/proc/net/dev", what: "16 counters", line: line.into() });
        }
        rx += v[0];
        tx += v[8];
    }
    Ok((rx, tx))
}

/// One usage report from two `/proc/stat` samples and the current memory and network text.
pub fn report(host: &str, unix_ms: u64, before: CpuTimes, after: CpuTimes, meminfo: &str, net_dev: &str) -> Result<Usage, ParseError> {
    let (_, used) = parse_meminfo(meminfo)?;
    let (rx, tx) = parse_net_dev(net_dev)?;
    Ok(Usage {
        host: host.into(),
        unix_ms,
        cpu_utilisation: utilisation(before, after),
        memory_used_bytes: used,
        net_rx_bytes: rx,
        net_tx_bytes: tx,
        vms: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT_A: &str = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n";
    const STAT_B: &str = "cpu  160 0 70 900 70 0 0 0 0 0\n";
    const MEM: &str = "MemTotal:       24000000 kB\nMemFree:        1000 kB\nMemAvailable:   20000000 kB\n";
    const NET: &str = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n  eth1: 1 1 0 0 0 0 0 0 2 1 0 0 0 0 0 0\n";

    #[test]
    fn cpu_utilisation_between_samples() {
        let a = parse_stat(STAT_A).unwrap();
        let b = parse_stat(STAT_B).unwrap();
        assert_eq!(a, CpuTimes { busy: 150, total: 1000 });
        // 80 busy jiffies of 200.
        assert!((utilisation(a, b) - 0.4).abs() < 1e-9);
        assert_eq!(utilisation(b, b), 0.0);
    }

    #[test]
    fn memory_and_network() {
        assert_eq!(parse_meminfo(MEM).unwrap(), (24_000_000 * 1024, 4_000_000 * 1024));
        assert_eq!(parse_net_dev(NET).unwrap(), (1001, 2002));
        let u = report("h1", 5, parse_stat(STAT_A).unwrap(), parse_stat(STAT_B).unwrap(), MEM, NET).unwrap();
        assert_eq!(u.host, "h1");
        assert_eq!(u.net_tx_bytes, 2002);
    }

    #[test]
    fn bad_text_names_what_is_wrong() {
        assert_eq!(parse_stat("intr 5\n"), Err(ParseError::NoCpuLine));
        assert_eq!(parse_meminfo("MemTotal: 5 kB\n"), Err(ParseError::NoMemField("MemAvailable:")));
        assert!(parse_stat("cpu  1 x 3 4\n").unwrap_err().to_string().contains("/proc/stat"));
    }
}
