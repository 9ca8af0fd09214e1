//! What changed in the workspace: `state_transitions` and `mutations`.

use super::{read_json, show, Context};
use crate::verdict::{Reason, ReasonCode};

pub fn transitions(ctx: &Context<'_>, out: &mut Vec<Reason>) {
    for (i, t) in ctx.fixture.contract.state_transitions.iter().enumerate() {
        let at = format!("/state_transitions/{i}");
        let reason = |msg: String| {
            Reason::new(
                ReasonCode::StateTransitionMismatch,
                "state_transitions",
                at.clone(),
                msg,
            )
        };
        let before = ctx
            .state_before
            .iter()
            .find(|(f, _)| f == &t.file)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| Err(format!("{} was not read before the run", t.file)));
        let before_value = match &before {
            Ok(doc) => crate::json::get_pointer(doc, &t.pointer),
            Err(_) => None,
        };
        match (&before, before_value) {
            (Err(e), _) => {
                out.push(reason(format!("before the run: {e}")));
                continue;
            }
            (Ok(_), None) => {
                out.push(reason(format!(
                    "before the run {} has no value at {} (expected {})",
                    t.file,
                    t.pointer,
                    show(&t.from)
                )));
                continue;
            }
            (Ok(_), Some(v)) if !crate::json::values_equal(v, &t.from) => {
                out.push(reason(format!(
                    "before the run {}{} is {}, expected {}: the fixture's workspace does not start where the contract says",
                    t.file, t.pointer, show(v), show(&t.from)
                )));
                continue;
            }
            _ => {}
        }
        let after = read_json(ctx.workspace, &t.file);
        let found = match &after {
            Ok(doc) => crate::json::get_pointer(doc, &t.pointer).cloned(),
            Err(e) => {
                out.push(reason(format!("after the run: {e}")));
                continue;
            }
        };
        match found {
            Some(v) if crate::json::values_equal(&v, &t.to) => {}
            Some(v) => out.push(
                reason(format!(
                    "{}{} went from {} to {}, expected {}",
                    t.file,
                    t.pointer,
                    show(&t.from),
                    show(&v),
                    show(&t.to)
                ))
                .with_detail(format!(
                    "expected: {}\n   found: {}",
                    show(&t.to),
                    show(&v)
                )),
            ),
            None => out.push(reason(format!(
                "after the run {} has no value at {} (expected {})",
                t.file,
                t.pointer,
                show(&t.to)
            ))),
        }
    }
}

pub fn mutations(ctx: &Context<'_>, out: &mut Vec<Reason>) {
    let Some(rule) = &ctx.fixture.contract.mutations else {
        return;
    };
    // Globs were validated when the fixture was loaded.
    let compile = |globs: &[String]| -> Vec<(String, globset::GlobMatcher)> {
        globs
            .iter()
            .filter_map(|g| Some((g.clone(), crate::sandbox::glob(g).ok()?)))
            .collect()
    };
    let allowed = rule.allowed.as_deref().map(compile);
    let forbidden = compile(&rule.forbidden);
    for change in ctx.changes {
        let path = &change.path;
        if let Some((glob, _)) = forbidden.iter().find(|(_, m)| m.is_match(path)) {
            out.push(Reason::new(
                ReasonCode::ForbiddenMutation,
                "mutations",
                path.clone(),
                format!(
                    "`{path}` was {} but matches forbidden glob \"{glob}\"",
                    change.kind.as_str()
                ),
            ));
            continue;
        }
        if let Some(allowed) = &allowed {
            if !allowed.iter().any(|(_, m)| m.is_match(path)) {
                out.push(Reason::new(
                    ReasonCode::ForbiddenMutation,
                    "mutations",
                    path.clone(),
                    format!(
                        "`{path}` was {} but matches no allowed glob ({})",
                        change.kind.as_str(),
                        allowed
                            .iter()
                            .map(|(g, _)| format!("\"{g}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
}
