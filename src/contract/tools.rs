//! Tool calls as the gateway saw them: refusals (`unrecorded_call`,
//! `unrecorded_side_effect`, `forbidden_call`) and the contract's `tools` rules.

use super::Context;
use crate::fixture::format::Effect;
use crate::transcript::CallOutcome;
use crate::verdict::{Reason, ReasonCode};

/// Calls the gateway refused. Every refused call is a reason: each is a path the fixture
/// does not describe or a side effect that was stopped.
pub fn gateway(ctx: &Context<'_>, out: &mut Vec<Reason>) {
    for call in &ctx.transcript.calls {
        match &call.outcome {
            CallOutcome::Replayed { .. } => {}
            CallOutcome::NotAllowed => out.push(Reason::new(
                ReasonCode::ForbiddenCall,
                "tool_allowlist",
                "/tool_allowlist",
                format!(
                    "the agent called `{}`, which is not in the task's tool_allowlist",
                    call.tool
                ),
            )),
            CallOutcome::Unrecorded { closest, blocked } => {
                let (code, what) = match call.effect {
                    Effect::Read => (ReasonCode::UnrecordedCall, "read"),
                    Effect::Write => (ReasonCode::UnrecordedSideEffect, "write (side effect)"),
                };
                let near = match closest {
                    None => " and the cassette has no recording of that tool".to_string(),
                    Some(c) if c.pointer.is_empty() => {
                        format!("; recording `{}` matches but was already used (set \"repeat\": true to reuse it)", c.id)
                    }
                    Some(c) => format!("; nearest recording `{}` differs at {}", c.id, c.pointer),
                };
                out.push(Reason::new(
                    code,
                    "cassette",
                    closest
                        .as_ref()
                        .map(|c| format!("/interactions/{}", c.index))
                        .unwrap_or_default(),
                    format!(
                        "unrecorded {what} call to `{}` with arguments {}{}{near}",
                        call.tool,
                        super::show(&call.arguments),
                        if *blocked {
                            " was blocked"
                        } else {
                            " was refused"
                        },
                    ),
                ));
            }
        }
    }
}

pub fn rules(ctx: &Context<'_>, out: &mut Vec<Reason>) {
    let Some(rules) = &ctx.fixture.contract.tools else {
        return;
    };
    let calls = &ctx.transcript.calls;
    for (i, tool) in rules.required.iter().enumerate() {
        if !calls.iter().any(|c| &c.tool == tool) {
            out.push(Reason::new(
                ReasonCode::MissingCall,
                "tools",
                format!("/tools/required/{i}"),
                format!("the agent never called required tool `{tool}`"),
            ));
        }
    }
    for (i, tool) in rules.forbidden.iter().enumerate() {
        let n = calls.iter().filter(|c| &c.tool == tool).count();
        if n > 0 {
            out.push(Reason::new(
                ReasonCode::ForbiddenCall,
                "tools",
                format!("/tools/forbidden/{i}"),
                format!("the agent called forbidden tool `{tool}` {n} time(s)"),
            ));
        }
    }
    if let Some(max) = rules.max_calls {
        if calls.len() as u64 > max {
            out.push(Reason::new(
                ReasonCode::TooManyCalls,
                "tools",
                "/tools/max_calls",
                format!(
                    "the agent made {} tool calls, more than max_calls = {max}",
                    calls.len()
                ),
            ));
        }
    }
    if rules.all_recorded_used {
        let cassette = ctx.fixture.cassette.as_ref();
        let answered: std::collections::HashSet<usize> = calls
            .iter()
            .filter_map(|c| match c.outcome {
                CallOutcome::Replayed { index, .. } => Some(index),
                _ => None,
            })
            .collect();
        let interactions = cassette
            .map(|c| c.interactions.as_slice())
            .unwrap_or_default();
        let unused: Vec<usize> = (0..interactions.len())
            .filter(|i| !answered.contains(i))
            .collect();
        if let Some(&first) = unused.first() {
            let it = &interactions[first];
            out.push(Reason::new(
                ReasonCode::UnusedRecording,
                "tools",
                format!("/interactions/{first}"),
                format!(
                    "recorded interaction `{}` (`{}`) was never asked for: the agent skipped a step{}",
                    it.id,
                    it.tool,
                    if unused.len() > 1 {
                        format!(" ({} unused recordings in all)", unused.len())
                    } else {
                        String::new()
                    }
                ),
            ));
        }
    }
}
