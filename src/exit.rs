//! Exit statuses, in one place (§5): a fixture that failed is not the tool that broke.

/// Every fixture passed, degraded or was skipped; or `check` found every fixture valid.
pub const OK: u8 = 0;
/// A fixture failed, was blocked or inconclusive; or `check` found an invalid fixture.
pub const FIXTURES_FAILED: u8 = 1;
/// Usage or configuration error: bad flag, unreadable config, no fixture found.
pub const USAGE: u8 = 2;

/// The harness was interrupted by `signal`: 128 + its number.
pub fn interrupted(signal: i32) -> u8 {
    (128 + signal).clamp(0, 255) as u8
}
