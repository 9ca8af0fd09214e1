//! Files the agent produced: `artifact_refs` and `artifacts`.

use super::Context;
use crate::fixture::format::ArtifactCheck;
use crate::verdict::{Reason, ReasonCode};

const DIFF_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub fn refs(ctx: &Context<'_>, out: &mut Vec<Reason>) {
    let Some(rule) = &ctx.fixture.contract.artifact_refs else {
        return;
    };
    let refs = ctx.transcript.artifact_refs();
    if let Some(v) = ctx.transcript.output().get("artifact_refs") {
        let well_formed = v
            .as_array()
            .is_some_and(|a| a.iter().all(serde_json::Value::is_string));
        if !well_formed {
            out.push(Reason::new(
                ReasonCode::MissingArtifactRef,
                "artifact_refs",
                "/artifact_refs",
                format!(
                    "output.artifact_refs must be an array of workspace paths, found {}",
                    super::show(v)
                ),
            ));
        }
    }
    for r in &refs {
        let problem = match ctx.file(r) {
            None => Some("is outside the workspace"),
            Some(p) => match std::fs::metadata(&p) {
                Err(_) => Some("does not exist"),
                Ok(m) if !m.is_file() => Some("is not a file"),
                Ok(m) if m.len() == 0 => Some("is empty"),
                Ok(_) => None,
            },
        };
        if let Some(problem) = problem {
            out.push(Reason::new(
                ReasonCode::MissingArtifactRef,
                "artifact_refs",
                r.clone(),
                format!("artifact ref `{r}` {problem}: every reported artifact must be a non-empty file in the workspace"),
            ));
        }
    }
    if (refs.len() as u64) < rule.min {
        out.push(
            Reason::new(
                ReasonCode::MissingArtifactRef,
                "artifact_refs",
                "/artifact_refs/min",
                format!(
                    "expected at least {} artifact ref(s) (run/artifact or output.artifact_refs), found {}",
                    rule.min,
                    refs.len()
                ),
            )
            .with_detail(format!("expected: >= {}\n   found: {:?}", rule.min, refs)),
        );
    }
}

pub fn files(ctx: &Context<'_>, out: &mut Vec<Reason>) {
    for (i, check) in ctx.fixture.contract.artifacts.iter().enumerate() {
        one(ctx, i, check, out);
    }
}

fn one(ctx: &Context<'_>, i: usize, check: &ArtifactCheck, out: &mut Vec<Reason>) {
    let path = &check.path;
    let reason = |code, msg: String| Reason::new(code, "artifacts", path.clone(), msg);
    let Some(real) = ctx.file(path).filter(|p| p.is_file()) else {
        out.push(reason(
            ReasonCode::MissingArtifact,
            format!("expected the agent to write `{path}` (expected.json /artifacts/{i}), but it does not exist after the run"),
        ));
        return;
    };
    let bytes = match std::fs::read(&real) {
        Ok(b) => b,
        Err(e) => {
            out.push(reason(
                ReasonCode::MissingArtifact,
                format!("cannot read `{path}`: {e}"),
            ));
            return;
        }
    };
    if check.non_empty && bytes.iter().all(u8::is_ascii_whitespace) {
        out.push(reason(
            ReasonCode::EmptyOutput,
            format!(
                "`{path}` is empty{}",
                if bytes.is_empty() {
                    ""
                } else {
                    " (whitespace only)"
                }
            ),
        ));
        return;
    }
    let text = String::from_utf8_lossy(&bytes);
    let missing: Vec<&String> = check
        .contains
        .iter()
        .filter(|s| !text.contains(s.as_str()))
        .collect();
    if !missing.is_empty() {
        out.push(
            reason(
                ReasonCode::ContentMismatch,
                format!(
                    "`{path}` does not contain {}",
                    missing
                        .iter()
                        .map(|s| format!("{s:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .with_detail(format!(
                "expected substrings: {:?}\n   found text: {}",
                missing,
                crate::diagnostic::truncate(&text, 400)
            )),
        );
    }
    if let Some(re) = &check.regex {
        // Checked to compile when the fixture was loaded.
        if let Ok(re) = regex::Regex::new(re) {
            if !re.is_match(&text) {
                out.push(
                    reason(
                        ReasonCode::ContentMismatch,
                        format!("`{path}` has no match for regex {:?}", re.as_str()),
                    )
                    .with_detail(format!(
                        "   found text: {}",
                        crate::diagnostic::truncate(&text, 400)
                    )),
                );
            }
        }
    }
    if let Some(schema) = check.json_schema.as_ref().filter(|s| !s.is_null()) {
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Err(e) => out.push(reason(
                ReasonCode::SchemaMismatch,
                format!("`{path}` is not valid JSON ({e}), so it cannot match json_schema"),
            )),
            Ok(doc) => {
                if let Ok(v) = jsonschema::validator_for(schema) {
                    if let Some(err) = v.iter_errors(&doc).next() {
                        out.push(reason(
                            ReasonCode::SchemaMismatch,
                            format!(
                                "`{path}` does not match json_schema at {:?}: {}",
                                err.instance_path().as_str(),
                                crate::diagnostic::truncate(&err.to_string(), 200)
                            ),
                        ));
                    }
                }
            }
        }
    }
    if let Some(sim) = &check.similar_to {
        let golden_path = ctx.fixture.dir.join(&sim.golden);
        match std::fs::read(&golden_path) {
            Err(e) => out.push(reason(
                ReasonCode::ContentMismatch,
                format!("cannot read golden file {}: {e}", golden_path.display()),
            )),
            Ok(golden) => {
                let golden = String::from_utf8_lossy(&golden);
                // Bounded: an agent's huge output must not stall the harness after the run.
                // Past the deadline the diff is coarser, so the ratio can only be lower.
                let diff = similar::TextDiff::configure()
                    .timeout(DIFF_TIMEOUT)
                    .diff_words(golden.as_ref(), text.as_ref());
                let ratio = diff.ratio() as f64;
                if ratio < sim.min_ratio {
                    let unified = similar::TextDiff::configure()
                        .timeout(DIFF_TIMEOUT)
                        .diff_lines(golden.as_ref(), text.as_ref())
                        .unified_diff()
                        .context_radius(2)
                        .header(&sim.golden, path)
                        .to_string();
                    out.push(
                        reason(
                            ReasonCode::ContentMismatch,
                            format!(
                                "`{path}` is {:.2} similar to {} (word-level), below min_ratio {:.2}",
                                ratio, sim.golden, sim.min_ratio
                            ),
                        )
                        .with_detail(truncate_lines(&unified, 40)),
                    );
                }
            }
        }
    }
}

fn truncate_lines(text: &str, max: usize) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|l| crate::diagnostic::truncate(l, 160))
        .collect();
    if lines.len() <= max {
        return text.trim_end().to_string();
    }
    format!(
        "{}\n… {} more diff lines",
        lines[..max].join("\n"),
        lines.len() - max
    )
}
