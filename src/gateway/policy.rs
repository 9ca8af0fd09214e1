//! The call policy: what happens to a tool call, as a function of (mode, effect, recorded?).
//!
//! Keeping this one pure function is what lets live mode and OS isolation slot in without
//! touching the gateway's transport.

use crate::fixture::format::Effect;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    Cassette,
    Live,
    Strict,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Cassette => "cassette",
            Mode::Live => "live",
            Mode::Strict => "strict",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Answer with the recorded result.
    Replay,
    /// Forward to the configured live tool and record the answer (live mode, reads only).
    Forward,
    /// Refuse with -32001; never executed. `blocked` says the mode forbade it outright.
    Refuse { blocked: bool },
}

/// What live mode may do for one call: the backend's `allow_writes`, and `--record all`
/// (which refreshes recorded reads from the live backend).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Live {
    pub allow_writes: bool,
    pub refresh_reads: bool,
}

pub fn decide(mode: Mode, effect: Effect, recorded: bool) -> Decision {
    decide_live(mode, effect, recorded, Live::default())
}

/// [`decide`] with what the live backend allows (§12, rules 34 and 39).
pub fn decide_live(mode: Mode, effect: Effect, recorded: bool, live: Live) -> Decision {
    match (mode, effect, recorded) {
        (Mode::Live, Effect::Read, true) if live.refresh_reads => Decision::Forward,
        (_, _, true) => Decision::Replay,
        (Mode::Live, Effect::Read, false) => Decision::Forward,
        (Mode::Live, Effect::Write, false) if live.allow_writes => Decision::Forward,
        (Mode::Live, Effect::Write, false) => Decision::Refuse { blocked: true },
        (Mode::Cassette, _, false) => Decision::Refuse { blocked: false },
        (Mode::Strict, _, false) => Decision::Refuse { blocked: true },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unrecorded_calls_are_never_executed_except_live_reads() {
        for mode in [Mode::Cassette, Mode::Live, Mode::Strict] {
            for effect in [Effect::Read, Effect::Write] {
                assert_eq!(decide(mode, effect, true), Decision::Replay);
            }
            assert!(matches!(
                decide(mode, Effect::Write, false),
                Decision::Refuse { .. }
            ));
        }
        assert_eq!(decide(Mode::Live, Effect::Read, false), Decision::Forward);
        assert_eq!(
            decide(Mode::Strict, Effect::Read, false),
            Decision::Refuse { blocked: true }
        );
        assert_eq!(
            decide(Mode::Cassette, Effect::Read, false),
            Decision::Refuse { blocked: false }
        );
    }

    #[test]
    fn live_writes_only_where_allowed_and_record_all_refreshes_reads_only() {
        let allow = Live {
            allow_writes: true,
            refresh_reads: false,
        };
        let refresh = Live {
            allow_writes: false,
            refresh_reads: true,
        };
        assert_eq!(
            decide_live(Mode::Live, Effect::Write, false, allow),
            Decision::Forward
        );
        assert_eq!(
            decide_live(Mode::Cassette, Effect::Write, false, allow),
            Decision::Refuse { blocked: false }
        );
        assert_eq!(
            decide_live(Mode::Strict, Effect::Write, false, allow),
            Decision::Refuse { blocked: true }
        );
        assert_eq!(
            decide_live(Mode::Live, Effect::Read, true, refresh),
            Decision::Forward
        );
        // A recorded write is never sent again, even under --record all.
        assert_eq!(
            decide_live(Mode::Live, Effect::Write, true, refresh),
            Decision::Replay
        );
        assert_eq!(
            decide_live(Mode::Cassette, Effect::Read, true, refresh),
            Decision::Replay
        );
    }
}
