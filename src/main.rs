fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    agent_replay::cli::main()
}

/// glibc gives threads that meet on a lock arenas of their own, up to 8 per core, and
/// keeps each once made. A run starts threads for every fixture (jobs, the gateway,
/// output pumps), so more and more arenas appear as a long suite goes on: about 130 KiB
/// of resident memory each, which made peak RSS grow with the fixture count (goal P6).
/// Two arenas in all (the main one and one more) are plenty for threads that
/// mostly wait on child processes and sockets.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
