fn main() -> std::process::ExitCode {
    agent_replay::cli::main()
}
