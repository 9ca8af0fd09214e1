//! What the agent claimed at close: `status`, `output_schema`, `evidence`, `claims`.

use super::{show, Context};
use crate::verdict::{Reason, ReasonCode};
use serde_json::Value;

pub fn status(ctx: &Context<'_>, out: &mut Vec<Reason>) {
    let Some(allowed) = &ctx.fixture.contract.status else {
        return;
    };
    match &ctx.transcript.close {
        None => out.push(Reason::new(
            ReasonCode::NotClosed,
            "status",
            "/status",
            format!(
                "the run never closed: the agent exited without run/close, so it claimed no status (expected one of {})",
                list(allowed)
            ),
        )),
        Some(close) if !allowed.iter().any(|s| s == &close.status) => out.push(
            Reason::new(
                ReasonCode::StatusMismatch,
                "status",
                "/status",
                format!(
                    "the agent closed with status \"{}\", expected one of {}{}",
                    close.status,
                    list(allowed),
                    close
                        .failure_reason
                        .as_ref()
                        .map(|r| format!(" (its failure_reason: {r})"))
                        .unwrap_or_default()
                ),
            )
            .with_detail(format!("expected: {}\n   found: \"{}\"", list(allowed), close.status)),
        ),
        Some(_) => {}
    }
}

fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn schema(ctx: &Context<'_>, out: &mut Vec<Reason>) {
    let Some(schema) = &ctx.fixture.contract.output_schema else {
        return;
    };
    let Some(close) = &ctx.transcript.close else {
        out.push(Reason::new(
            ReasonCode::SchemaMismatch,
            "output_schema",
            "",
            "no output to validate: the run never closed",
        ));
        return;
    };
    // Checked to compile when the fixture was loaded; compiled again here, once per run.
    let Ok(validator) = jsonschema::validator_for(schema) else {
        return;
    };
    let errors: Vec<_> = validator.iter_errors(&close.output).collect();
    if let Some(first) = errors.first() {
        let all: Vec<String> = errors
            .iter()
            .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
            .collect();
        out.push(
            Reason::new(
                ReasonCode::SchemaMismatch,
                "output_schema",
                first.instance_path().as_str(),
                format!(
                    "the closed output does not match output_schema: {}{}",
                    crate::diagnostic::truncate(&first.to_string(), 200),
                    if errors.len() > 1 {
                        format!(" (and {} more)", errors.len() - 1)
                    } else {
                        String::new()
                    }
                ),
            )
            .with_detail(format!(
                "output: {}\n{}",
                show(&close.output),
                all.join("\n")
            )),
        );
    }
}

pub fn evidence(ctx: &Context<'_>, out: &mut Vec<Reason>) {
    let Some(rule) = &ctx.fixture.contract.evidence else {
        return;
    };
    let reason = |msg: String| {
        Reason::new(
            ReasonCode::MissingEvidence,
            "evidence",
            rule.pointer.clone(),
            msg,
        )
    };
    let Some(value) = crate::json::get_pointer(ctx.transcript.output(), &rule.pointer) else {
        out.push(reason(format!(
            "the closed output has no value at {} (expected an array of at least {} evidence path(s))",
            rule.pointer, rule.min
        )));
        return;
    };
    let Value::Array(items) = value else {
        out.push(reason(format!(
            "expected an array of evidence paths at {}, found {}",
            rule.pointer,
            show(value)
        )));
        return;
    };
    let state_refs = &ctx.fixture.input.state_refs;
    let mut bad = Vec::new();
    let mut good = 0u64;
    for item in items {
        let ok = match item.as_str() {
            Some(p) => {
                let p = p.trim_start_matches("./");
                state_refs.iter().any(|s| s == p) || ctx.file(p).is_some_and(|f| f.exists())
            }
            None => false,
        };
        if ok {
            good += 1;
        } else {
            bad.push(show(item));
        }
    }
    if !bad.is_empty() {
        out.push(reason(format!(
            "evidence path(s) that exist neither in the workspace nor in state_refs: {}",
            bad.join(", ")
        )));
    }
    if good < rule.min {
        out.push(reason(format!(
            "expected at least {} evidence path(s) at {}, found {good} valid of {}",
            rule.min,
            rule.pointer,
            items.len()
        )));
    }
}

pub fn claims(ctx: &Context<'_>, out: &mut Vec<Reason>) {
    for (i, claim) in ctx.fixture.contract.claims.iter().enumerate() {
        let Some(value) = crate::json::get_pointer(ctx.transcript.output(), &claim.pointer) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let confirmed = ctx
            .transcript
            .calls
            .iter()
            .any(|c| c.tool == claim.requires_call && c.succeeded());
        if !confirmed {
            let calls: Vec<&crate::transcript::CallRecord> = ctx
                .transcript
                .calls
                .iter()
                .filter(|c| c.tool == claim.requires_call)
                .collect();
            let what = if calls.is_empty() {
                "it was never called".to_string()
            } else {
                format!(
                    "its {} call(s) were refused or answered with isError",
                    calls.len()
                )
            };
            out.push(Reason::new(
                ReasonCode::SideEffectUnconfirmed,
                "claims",
                format!("/claims/{i}"),
                format!(
                    "the output claims {} = {} but no `{}` call succeeded: {what}",
                    claim.pointer,
                    show(value),
                    claim.requires_call
                ),
            ));
        }
    }
}
