//! `agent-replay generate` and `agent-replay prove`.

use crate::cli::args::{GenerateArgs, ProveArgs, RunArgs, TierArg, TraceFormatArg};
use crate::cli::usage_error;
use crate::exit;
use crate::generate::{self, Options, TraceFormat};
use crate::runner::{self, FixtureResult};
use crate::verdict::Verdict;
use serde_json::{json, Value};

pub fn generate(args: GenerateArgs) -> u8 {
    let cwd = std::env::current_dir().unwrap_or_default();
    let config = match crate::config::Config::discover(&cwd) {
        Ok(c) => c,
        Err(e) => return usage_error(e, None),
    };
    let redactor = match config.as_ref().map(|c| c.redactor()).transpose() {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => return usage_error(e, None),
    };
    let opts = Options {
        out: args.out.clone(),
        force: args.force,
        allow_lossy: args.allow_lossy,
        failure_class: args.failure_class.clone(),
        tier: match args.tier {
            TierArg::Critical => "critical",
            TierArg::Hourly => "hourly",
            TierArg::Daily => "daily",
        }
        .into(),
        redactor,
        credential_headers: config
            .as_ref()
            .map(|c| c.redact.headers.clone())
            .unwrap_or_default(),
        read_tools: config
            .as_ref()
            .map(|c| c.generate.read_tools.clone())
            .unwrap_or_default(),
        format: match args.format {
            TraceFormatArg::Auto => TraceFormat::Auto,
            TraceFormatArg::Native => TraceFormat::Native,
            TraceFormatArg::Otel => TraceFormat::Otel,
            TraceFormatArg::Mcp => TraceFormat::Mcp,
            TraceFormatArg::Inspect => TraceFormat::Inspect,
        },
    };
    match generate::generate(&args.trace, &opts) {
        // A trace that cannot be read is a usage error; one that is read and refused
        // (lossy, malformed) is a failed generation.
        Err(e @ generate::GenerateError::Unreadable { .. }) => usage_error(e, None),
        Err(generate::GenerateError::Trace(e)) => {
            eprintln!("error: {e}");
            exit::FIXTURES_FAILED
        }
        Err(e) => usage_error(e, None),
        Ok(g) => {
            for w in &g.warnings {
                eprintln!("warning: {w}");
            }
            crate::outln!(
                "generated {} from {}",
                g.dir.display(),
                args.trace.display()
            );
            crate::outln!(
                "  failure class: {}",
                g.failure_class.as_deref().unwrap_or("(none)")
            );
            crate::outln!("  contract:      {}", g.contract);
            crate::outln!(
                "  cassette:      {} recorded call(s), tool and HTTP",
                g.calls
            );
            if g.redactions.is_empty() {
                crate::outln!("  redacted:      nothing");
            } else {
                let parts: Vec<String> = g
                    .redactions
                    .iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect();
                crate::outln!("  redacted:      {}", parts.join(", "));
            }
            crate::outln!(
                "next: agent-replay prove {} --broken {}=\"<command of the build that produced the trace>\"",
                g.dir.display(),
                g.agent
            );
            exit::OK
        }
    }
}

fn proof(r: &FixtureResult, command: &str) -> Value {
    let mut codes: Vec<&str> = r.reasons.iter().map(|x| x.code.as_str()).collect();
    codes.dedup();
    json!({"at": crate::time::now(), "command": command, "verdict": r.verdict.as_str(), "reasons": codes})
}

pub fn prove(args: ProveArgs) -> u8 {
    let Some((name, command)) = args.broken.split_once('=') else {
        return usage_error(
            format!("--broken {:?}: expected NAME=COMMAND", args.broken),
            None,
        );
    };
    let found = match crate::fixture::discover(std::slice::from_ref(&args.fixture)) {
        Ok(f) => f,
        Err(e) => return usage_error(e, None),
    };
    if found.len() != 1 {
        return usage_error(
            format!(
                "{} holds {} fixtures; prove takes one fixture directory",
                args.fixture.display(),
                found.len()
            ),
            None,
        );
    }
    let loaded = crate::fixture::load(&found[0].id, &found[0].dir);
    let Some(fixture) = loaded.fixture else {
        for d in loaded.errors() {
            eprintln!("{d}");
        }
        return exit::FIXTURES_FAILED;
    };
    if fixture.input.agent != name {
        return usage_error(
            format!(
                "--broken names agent `{name}`, but the fixture runs agent `{}`",
                fixture.input.agent
            ),
            Some(&format!("use --broken {}=COMMAND", fixture.input.agent)),
        );
    }
    let base = RunArgs::for_paths(
        vec![args.fixture.clone()],
        args.ledger.clone(),
        args.grace,
        Some(1),
    );
    crate::signals::install();
    crate::process::tree::become_subreaper();
    let broken_settings = match crate::cli::run::resolve(&RunArgs {
        agents: vec![args.broken.clone()],
        ..base.clone()
    }) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let fixed_settings = match crate::cli::run::resolve(&base) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let configured = fixed_settings
        .config
        .as_ref()
        .and_then(|c| c.agents.get(name))
        .map(|a| shell_words::join(&a.command))
        .unwrap_or_else(|| "(not configured)".into());
    let run = |settings| {
        let mut results = Vec::new();
        let _ = runner::run_fixtures(settings, &found, |e| results.extend(e.into_result()));
        results
    };
    let broken = run(&broken_settings);
    let fixed = run(&fixed_settings);
    crate::process::tree::sweep_orphans();
    let (Some(b), Some(f)) = (broken.first(), fixed.first()) else {
        eprintln!("agent-replay: interrupted");
        return exit::interrupted(crate::process::interrupted().unwrap_or(libc::SIGINT));
    };
    let show = |r: &FixtureResult| {
        let mut codes: Vec<&str> = r.reasons.iter().map(|x| x.code.as_str()).collect();
        codes.dedup();
        if codes.is_empty() {
            r.verdict.to_string()
        } else {
            format!("{} ({})", r.verdict, codes.join(", "))
        }
    };
    let reproduced = b.verdict == Verdict::Failed;
    let passes = matches!(f.verdict, Verdict::Passed | Verdict::Degraded);
    crate::outln!("prove {}", fixture.id);
    crate::outln!(
        "  broken     `{command}`: {}  {}",
        show(b),
        if reproduced {
            "reproduced"
        } else {
            "NOT reproduced: the fixture does not catch this build"
        }
    );
    crate::outln!(
        "  configured `{configured}`: {}  {}",
        show(f),
        if passes { "passes" } else { "does NOT pass" }
    );

    let notes_path = fixture.dir.join("notes.json");
    let mut notes: Value = std::fs::read(&notes_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({"format": "agent-replay/notes@1"}));
    notes["reproduced"] = proof(b, command);
    notes["fixed"] = proof(f, &configured);
    let mut text = serde_json::to_vec_pretty(&notes).expect("notes serialize");
    text.push(b'\n');
    if let Err(e) = std::fs::write(&notes_path, text) {
        return usage_error(format!("cannot write {}: {e}", notes_path.display()), None);
    }
    crate::outln!("  recorded in {}", notes_path.display());
    if reproduced && passes {
        exit::OK
    } else {
        exit::FIXTURES_FAILED
    }
}
