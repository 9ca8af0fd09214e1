//! `agent-replay monitor`: replay a tier, write the health report, gate on it.

use crate::cli::args::{MonitorArgs, RunArgs, TierArg};
use crate::cli::usage_error;
use crate::exit;
use crate::runner;

pub fn monitor(args: MonitorArgs) -> u8 {
    let tier = args.tier.map(|t| match t {
        TierArg::Critical => "critical",
        TierArg::Hourly => "hourly",
        TierArg::Daily => "daily",
    });
    let max_age_ms = args.max_age.map(|d| d.as_millis() as i64);
    let run_args = RunArgs::for_paths(
        args.paths.clone(),
        args.ledger.clone(),
        args.grace,
        args.jobs,
    );
    crate::signals::install();
    crate::process::tree::become_subreaper();
    let settings = match crate::cli::run::resolve(&run_args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let found = match crate::fixture::discover(&args.paths) {
        Ok(f) => f,
        Err(e) => return usage_error(e, None),
    };
    let mut selected = Vec::new();
    let mut fixtures = Vec::new();
    for d in found {
        let loaded = crate::fixture::load(&d.id, &d.dir);
        let fixture_tier = loaded
            .fixture
            .as_ref()
            .and_then(|f| f.notes.as_ref())
            .and_then(|n| n.tier);
        let wanted = match (tier, fixture_tier) {
            (None, _) => true,
            (Some(t), Some(ft)) => serde_json::to_value(ft)
                .ok()
                .and_then(|v| v.as_str().map(|s| s == t))
                .unwrap_or(false),
            (Some(_), None) => false,
        };
        // An invalid fixture is run anyway so it shows up blocked, not silently dropped.
        if wanted || loaded.fixture.is_none() {
            if let Some(f) = loaded.fixture {
                fixtures.push(f);
            }
            selected.push(d);
        }
    }
    if selected.is_empty() {
        return usage_error(
            format!(
                "no fixture{} found",
                tier.map(|t| format!(" of tier {t}")).unwrap_or_default()
            ),
            Some("the tier comes from notes.json \"tier\": critical, hourly or daily"),
        );
    }
    // The health report needs every result: collected here.
    let mut results = Vec::with_capacity(selected.len());
    let mut lines = crate::report::Reporters::new().with(crate::report::human::Human::new(
        crate::report::human::Closing::LinesOnly,
    ));
    let started = std::time::Instant::now();
    let _ = runner::run_fixtures(&settings, &selected, |e| {
        if let runner::RunEvent::Finished { index, result } = e {
            lines.handle(&crate::report::Event::FixtureFinished {
                index,
                result: &result,
            });
            results.push((index, *result));
        }
    });
    lines.handle(&crate::report::Event::RunFinished {
        seconds: started.elapsed().as_secs_f64(),
        interrupted: crate::process::interrupted(),
    });
    results.sort_by_key(|(i, _)| *i);
    let results: Vec<_> = results.into_iter().map(|(_, r)| r).collect();
    crate::process::tree::sweep_orphans();
    let now_ms = crate::ledger::read::millis(Some(&crate::time::now()));
    let health = crate::monitor::health(
        tier,
        &fixtures,
        &results,
        &settings.ledger,
        max_age_ms,
        now_ms,
    );
    crate::outln!(
        "\nhealth{}: {} passing, {} failing, {} stale",
        tier.map(|t| format!(" ({t})")).unwrap_or_default(),
        health.fixtures_passing,
        health.fixtures_failing,
        health.fixtures_stale
    );
    for f in health.fixtures.iter().filter(|f| !f.stale.is_empty()) {
        crate::outln!("  stale {}: {}", f.id, f.stale.join("; "));
    }
    for (class, w) in &health.silent_failure_window_minutes {
        match w {
            Some(m) => crate::outln!("  silent-failure window {class}: {m:.1} min"),
            None => crate::outln!("  silent-failure window {class}: unknown (no production run or failing replay of it in the ledger)"),
        }
    }
    if let Some(path) = &args.json {
        let mut text = serde_json::to_vec_pretty(&health).expect("health serializes");
        text.push(b'\n');
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("error: cannot write {}: {e}", path.display());
        }
    }
    if let Some(sig) = crate::process::interrupted() {
        return exit::interrupted(sig);
    }
    if health.healthy() {
        exit::OK
    } else {
        exit::FIXTURES_FAILED
    }
}
