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
            CallOutcome::Replayed { .. } | CallOutcome::Forwarded { .. } => {}
            CallOutcome::Unavailable { message } => out.push(Reason::new(
                ReasonCode::LiveUnavailable,
                "live",
                "",
                format!("`{}`: {message}", call.tool),
            )),
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
                if let Some(h) = &call.http {
                    let near = match closest {
                        None => " and the cassette has no recording of that method and URL".to_string(),
                        Some(c) if c.used_up() => format!("; recording `{}` matches but was already used (set \"repeat\": true to reuse it)", c.id),
                        Some(c) => match (&c.detail, c.pointer.as_str()) {
                            (Some(d), _) if c.recorded.is_none() => format!("; recording `{}` has the same body but {d}", c.id),
                            (_, "") => format!("; nearest recording `{}` has another body", c.id),
                            (_, p) => format!("; nearest recording `{}` differs at body pointer {p}", c.id),
                        },
                    };
                    out.push(Reason::new(
                        code,
                        "cassette",
                        closest
                            .as_ref()
                            .map(|c| format!("/interactions/{}", c.index))
                            .unwrap_or_default(),
                        format!(
                            "unrecorded {what} request {} {} (`{}`){}{near}",
                            h.method,
                            h.url,
                            call.tool,
                            if *blocked {
                                " was blocked"
                            } else {
                                " was refused: it was not sent"
                            },
                        ),
                    ));
                    continue;
                }
                let near = match closest {
                    None => " and the cassette has no recording of that tool".to_string(),
                    Some(c) if c.used_up() => {
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
    // Names and globs over them: `*` stays within a path segment, `**` crosses `/` (rule 26).
    let matcher = |name: &str| {
        let glob = crate::sandbox::glob(name).ok();
        let name = name.to_string();
        move |call: &str| call == name || glob.as_ref().is_some_and(|g| g.is_match(call))
    };
    for (i, tool) in rules.required.iter().enumerate() {
        let is = matcher(tool);
        if !calls.iter().any(|c| c.named(&is)) {
            out.push(Reason::new(
                ReasonCode::MissingCall,
                "tools",
                format!("/tools/required/{i}"),
                format!("the agent never called required tool `{tool}`"),
            ));
        }
    }
    for (i, tool) in rules.forbidden.iter().enumerate() {
        let is = matcher(tool);
        let hits: Vec<&str> = calls
            .iter()
            .filter(|c| c.named(&is))
            .map(|c| c.tool.as_str())
            .collect();
        let n = hits.len();
        if n > 0 {
            out.push(Reason::new(
                ReasonCode::ForbiddenCall,
                "tools",
                format!("/tools/forbidden/{i}"),
                if hits.iter().all(|h| h == tool) {
                    format!("the agent called forbidden tool `{tool}` {n} time(s)")
                } else {
                    let mut named: Vec<&str> = hits.clone();
                    named.dedup();
                    format!(
                        "the agent made {n} call(s) forbidden by `{tool}`: {}",
                        named
                            .iter()
                            .map(|h| format!("`{h}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
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
                    "the agent made {} calls (tool and HTTP), more than max_calls = {max}",
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
                    it.name(),
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
