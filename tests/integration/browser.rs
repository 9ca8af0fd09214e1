//! The HTML report (§15) in a real browser: headless Chromium opens the report of the
//! example suite's broken run (tests/browser/html_report.mjs, playwright-core from
//! tests/sdk/install.sh) and the test judges what the page shows through the DOM. The
//! screenshot stays at target/html-report.png.

use crate::project::{repo_root, sdk_dirs, sdks_present};
use serde_json::Value;
use std::process::Command;

#[test]
fn the_html_report_of_the_broken_suite_shows_its_failures_in_chromium() {
    let (_, node_dir) = sdk_dirs();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let modules = node_dir.join("node_modules");
    let mut missing = Vec::new();
    if !modules.join("playwright-core").is_dir() {
        missing.push("playwright-core".to_string());
    }
    if !std::path::Path::new(&chromium).is_file() {
        missing.push(format!("{chromium} (apt-get install chromium)"));
    }
    if !sdks_present(
        "the_html_report_of_the_broken_suite_shows_its_failures_in_chromium",
        "playwright-core and Chromium",
        &missing,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let out = Command::new(crate::project::bin())
        .args(["run", "fixtures", "--html"])
        .arg(&html)
        .arg("--ledger")
        .arg(dir.path().join("ledger.jsonl"))
        .args([
            "--agent",
            "research=python3 examples/agents/research_broken.py",
            "--agent",
            "summarize=python3 examples/agents/summarize_broken.py",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let shot = crate::project::bin()
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .join("html-report.png");
    let page = Command::new("node")
        .arg(repo_root().join("tests/browser/html_report.mjs"))
        .arg(&html)
        .arg(&shot)
        .env("NODE_PATH", &modules)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    assert!(
        page.status.success(),
        "the browser script failed: {}",
        String::from_utf8_lossy(&page.stderr)
    );
    let seen: Value = serde_json::from_slice(&page.stdout).unwrap();
    let summary = seen["summary"].as_str().unwrap();
    assert!(summary.contains("failed"), "{summary}");
    let by_default: Vec<&str> = seen["byDefault"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let all: Vec<&str> = seen["all"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let total = all.len();
    assert!(total >= 20, "every fixture is in the page: {all:?}");
    // The broken build fails every fixture: the default filter shows them all, and
    // unticking `failed` hides every failed one.
    assert_eq!(
        by_default.len(),
        all.iter()
            .filter(|v| **v != "passed" && **v != "skipped")
            .count()
    );
    assert!(by_default.iter().all(|v| *v == "failed"), "{by_default:?}");
    assert!(seen["withoutFailed"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v != "failed"));
    // The first failed fixture's reasons are on the page, and its timeline unfolds.
    let text = seen["firstText"].as_str().unwrap();
    assert!(
        text.contains("FAILED") && text.contains("Reasons"),
        "{text}"
    );
    assert_eq!(
        seen["unfolded"], true,
        "a call of the timeline unfolds on click: {text}"
    );
    assert_eq!(
        seen["requests"],
        serde_json::json!([]),
        "the report loads nothing from the network"
    );
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "a screenshot at {}",
        shot.display()
    );
}
