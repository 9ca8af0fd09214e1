//! Facts about the machine that cost a system call or a file read to learn, learned once.

use std::sync::OnceLock;

/// CPUs this process may run on (affinity and cgroup quota included). The standard library
/// reads cgroup files each time it is asked; runs ask often.
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
