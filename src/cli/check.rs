//! `agent-replay check`: validate fixtures without running anything.

use crate::cli::args::CheckArgs;
use crate::cli::usage_error;
use crate::exit;

pub fn check(args: CheckArgs) -> u8 {
    let found = match crate::fixture::discover(&args.paths) {
        Ok(f) => f,
        Err(e) => return usage_error(e, None),
    };
    if found.is_empty() {
        return usage_error(
            format!("no fixture found under {}", show_paths(&args.paths)),
            Some("a fixture is a directory holding input.json and expected.json"),
        );
    }
    let (mut invalid, mut warnings) = (0, 0);
    for d in &found {
        let loaded = crate::fixture::load(&d.id, &d.dir);
        let errors = loaded.errors().count();
        if errors > 0 {
            invalid += 1;
        }
        crate::outln!("{:>8} {}", if errors > 0 { "INVALID" } else { "ok" }, d.id);
        for diag in &loaded.diagnostics {
            if !diag.is_error() {
                warnings += 1;
            }
            for line in diag.to_string().lines() {
                crate::outln!("  {line}");
            }
        }
    }
    crate::outln!(
        "\nchecked {} fixture{}: {} valid, {invalid} invalid, {warnings} warning{}",
        found.len(),
        if found.len() == 1 { "" } else { "s" },
        found.len() - invalid,
        if warnings == 1 { "" } else { "s" }
    );
    if invalid > 0 {
        exit::FIXTURES_FAILED
    } else {
        exit::OK
    }
}

pub(crate) fn show_paths(paths: &[std::path::PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
