//! `--html FILE` (§15): one self-contained HTML file — no network, no external assets.
//!
//! The summary; per fixture its verdict, reasons with their diffs, a timeline of every
//! call (tool and HTTP: arguments, answers and stream events unfold on click), tokens and
//! latency, workspace changes and the agent's stderr tail. Entries are spooled as results
//! come, like the JSON report, so memory stays flat.

use super::spool::Spool;
use super::Summary;
use crate::runner::FixtureResult;
use crate::verdict::Verdict;
use std::fmt::Write;

/// One call of a run, as the report shows it.
#[derive(Debug, Clone, Default)]
pub struct CallView {
    pub at_ms: u64,
    /// The tool (`SERVER/TOOL` through an MCP shim) or `http:METHOD host/path`.
    pub name: String,
    pub effect: &'static str,
    /// `replayed c1`, `answered live`, `refused (unrecorded)`, …
    pub outcome: String,
    pub arguments: String,
    /// The answer as sent, pretty-printed; empty when refused.
    pub answer: String,
    /// An HTTP call's status and stream events.
    pub status: Option<u16>,
    pub events: Vec<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub latency_ms: f64,
}

pub struct HtmlReport {
    title: String,
    summary: Summary,
    spool: Spool,
}

impl HtmlReport {
    pub fn create(path: &std::path::Path, mode: &str) -> HtmlReport {
        HtmlReport {
            title: format!("agent-replay report (mode {mode})"),
            summary: Summary::default(),
            spool: Spool::create(path),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        self.spool.path()
    }

    /// The section of the fixture at `index` in id order.
    pub fn add(&mut self, index: usize, r: &FixtureResult) {
        self.summary.add(r.verdict);
        self.spool.add(index, fixture(r).as_bytes());
    }

    pub fn finish(&mut self) -> std::io::Result<()> {
        let s = &self.summary;
        let head = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n<p class=\"summary\">{} fixtures: <b class=\"passed\">{} passed</b>, <b class=\"failed\">{} failed</b>, <b class=\"blocked\">{} blocked</b>, <b class=\"inconclusive\">{} inconclusive</b>, <b class=\"degraded\">{} degraded</b>, {} skipped</p>\n",
            s.total,
            s.passed,
            s.failed,
            s.blocked,
            s.inconclusive,
            s.degraded,
            s.skipped,
            t = esc(&self.title),
        );
        let mut head = head;
        head.push_str(&filter(s));
        let tail = format!("<script>{FILTER_SCRIPT}</script>\n</body></html>\n");
        self.spool.finish(head.as_bytes(), b"", tail.as_bytes())
    }
}

impl super::Reporter for HtmlReport {
    fn handle(&mut self, event: &super::Event<'_>) {
        match event {
            super::Event::FixtureFinished { index, result } => self.add(*index, result),
            super::Event::RunFinished { .. } => {
                let written = self.finish();
                super::report_write_error("HTML report", self.path(), written);
            }
            _ => {}
        }
    }
}

/// The verdict filter: a checkbox per verdict that occurred, all on but `passed` and
/// `skipped` when anything else is there (what a person opens the report for).
fn filter(s: &Summary) -> String {
    let counts = [
        ("failed", s.failed),
        ("blocked", s.blocked),
        ("inconclusive", s.inconclusive),
        ("degraded", s.degraded),
        ("passed", s.passed),
        ("skipped", s.skipped),
    ];
    let trouble = s.failed + s.blocked + s.inconclusive + s.degraded > 0;
    let mut o = String::from("<form id=\"filter\"><b>Show:</b>");
    for (v, n) in counts.into_iter().filter(|(_, n)| *n > 0) {
        let on = !trouble || !matches!(v, "passed" | "skipped");
        let _ = write!(
            o,
            " <label class=\"{v}\"><input type=\"checkbox\" name=\"{v}\"{}> {v} ({n})</label>",
            if on { " checked" } else { "" }
        );
    }
    o.push_str("</form>\n");
    o
}

/// Hides the fixtures whose verdict is unticked; runs without any network.
const FILTER_SCRIPT: &str = "(function(){var f=document.getElementById('filter');function apply(){var on={};f.querySelectorAll('input').forEach(function(i){on[i.name]=i.checked});document.querySelectorAll('section.fixture').forEach(function(s){s.hidden=!on[s.dataset.verdict]})}f.addEventListener('change',apply);apply()})();";

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}pre{background:#f6f6f6;padding:.5em;overflow:auto;max-height:30em}summary{cursor:pointer}.passed{color:#17702a}.failed{color:#b00020}.blocked{color:#8a4b00}.inconclusive{color:#5a3ea8}.degraded{color:#8a6d00}.skipped{color:#777}table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.2em .6em;text-align:left;vertical-align:top}section.fixture{border-left:4px solid #ccc;padding-left:1em;margin:1em 0}#filter label{margin-right:.8em}";

fn fixture(r: &FixtureResult) -> String {
    let v = r.verdict.as_str();
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<section class=\"fixture\" data-verdict=\"{v}\"><details{}><summary><b class=\"{v}\">{}</b> {} <small>{:.3}s, {} call(s){}</small></summary>",
        if matches!(r.verdict, Verdict::Passed | Verdict::Skipped) { "" } else { " open" },
        v.to_uppercase(),
        esc(&r.id),
        r.duration_ms as f64 / 1000.0,
        r.tool_calls,
        r.run_id.as_ref().map(|id| format!(", run {}", esc(id))).unwrap_or_default()
    );
    // What every report says of a fixture beside its verdict (§12, §15).
    if let Some(x) = &r.repeats {
        let _ = writeln!(o, "<p class=\"repeats\">{}</p>", esc(&x.to_string()));
    }
    if let Some(c) = &r.recording {
        let _ = writeln!(o, "<p class=\"recording\">{}</p>", esc(&c.to_string()));
    }
    if !r.drift.is_empty() {
        let changed: Vec<_> = r.drift.iter().filter(|d| !d.changes.is_empty()).collect();
        let _ = write!(
            o,
            "<p class=\"drift\">{}</p>",
            esc(&crate::drift::headline(&r.drift))
        );
        if !changed.is_empty() {
            o.push_str("<ul>");
            for d in changed {
                let diff = crate::drift::human_diff(&d.recorded, &d.live);
                let _ = write!(o, "<li>{}: {}", esc(&d.id), esc(&d.summary()));
                if !diff.is_empty() {
                    let _ = write!(o, "<pre>{}</pre>", esc(&diff));
                }
                o.push_str("</li>");
            }
            o.push_str("</ul>");
        }
        o.push('\n');
    }
    if !r.reasons.is_empty() {
        o.push_str("<h3>Reasons</h3><ul>");
        for x in &r.reasons {
            let _ = write!(
                o,
                "<li><b>{}</b> [{}{}] {}",
                esc(x.code.as_str()),
                esc(&x.check),
                if x.pointer.is_empty() {
                    String::new()
                } else {
                    format!(" at {}", esc(&x.pointer))
                },
                esc(&x.message)
            );
            if let Some(d) = &x.detail {
                let _ = write!(o, "<pre>{}</pre>", esc(d));
            }
            o.push_str("</li>");
        }
        o.push_str("</ul>\n");
    }
    let u = &r.usage;
    if u.model_calls > 0 {
        let _ = writeln!(
            o,
            "<p>Model calls: {}, input tokens {}, output tokens {}, recorded latency {} ms</p>",
            u.model_calls,
            u.input_tokens
                .map(|t| t.to_string())
                .unwrap_or_else(|| "–".into()),
            u.output_tokens
                .map(|t| t.to_string())
                .unwrap_or_else(|| "–".into()),
            u.model_latency_ms
        );
    }
    if !r.timeline.is_empty() {
        o.push_str("<h3>Timeline</h3><table><tr><th>at</th><th>call</th><th>effect</th><th>outcome</th><th>details</th></tr>\n");
        for c in &r.timeline {
            let mut details = String::new();
            let _ = write!(
                details,
                "<details><summary>arguments</summary><pre>{}</pre></details>",
                esc(&c.arguments)
            );
            if !c.answer.is_empty() {
                let _ = write!(
                    details,
                    "<details><summary>answer{}</summary><pre>{}</pre></details>",
                    c.status.map(|s| format!(" ({s})")).unwrap_or_default(),
                    esc(&c.answer)
                );
            }
            if !c.events.is_empty() {
                let _ = write!(
                    details,
                    "<details><summary>{} stream event(s)</summary><pre>{}</pre></details>",
                    c.events.len(),
                    esc(&c.events.join("\n"))
                );
            }
            if c.input_tokens.is_some() || c.output_tokens.is_some() {
                let _ = write!(
                    details,
                    "<small>tokens in {} / out {}, {} ms</small>",
                    c.input_tokens.unwrap_or(0),
                    c.output_tokens.unwrap_or(0),
                    c.latency_ms
                );
            }
            let _ = writeln!(
                o,
                "<tr><td>{} ms</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{details}</td></tr>",
                c.at_ms,
                esc(&c.name),
                c.effect,
                esc(&c.outcome)
            );
        }
        o.push_str("</table>\n");
    }
    if !r.changes.is_empty() {
        o.push_str("<h3>Workspace changes</h3><ul>");
        for (path, kind) in &r.changes {
            let _ = write!(o, "<li>{} <code>{}</code></li>", esc(kind), esc(path));
        }
        o.push_str("</ul>\n");
    }
    if !r.stderr_tail.trim().is_empty() {
        let _ = writeln!(
            o,
            "<h3>Agent stderr (last lines)</h3><pre>{}</pre>",
            esc(&r.stderr_tail)
        );
    }
    o.push_str("</details></section>\n");
    o
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::esc("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
