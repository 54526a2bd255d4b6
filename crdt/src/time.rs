//! The one timebase every time in a timeline document is expressed in.
//!
//! Times are `i64` counts of *flicks*: 1/705,600,000 of a second. The number is divisible by
//! every common frame rate (23.976 = 24000/1001, 24, 25, 29.97, 30, 48, 50, 59.94, 60, 90, 100,
//! 120) and audio rate (8, 16, 22.05, 24, 32, 44.1, 48, 88.2, 96 kHz), so frame and sample
//! boundaries are exact integers and every node computes the same frame for the same time.
//! Floats are never used for times.

/// Ticks (flicks) in one second.
pub const TICKS_PER_SECOND: i64 = 705_600_000;

/// A frame rate as an exact rational, frames per second = `num / den`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FrameRate {
    pub num: i64,
    pub den: i64,
}

impl FrameRate {
    /// Duration of one frame in ticks, exact for the rates listed in the module docs; other
    /// rates round down.
    pub fn frame_ticks(self) -> i64 {
        TICKS_PER_SECOND * self.den / self.num
    }

    /// The index of the frame shown at `ticks` (frames start at 0 at time 0).
    pub fn frame_at(self, ticks: i64) -> i64 {
        (i128::from(ticks) * i128::from(self.num) / (i128::from(TICKS_PER_SECOND) * i128::from(self.den))) as i64
    }

    /// The time in ticks at which frame `index` starts.
    pub fn frame_start(self, index: i64) -> i64 {
        (i128::from(index) * i128::from(TICKS_PER_SECOND) * i128::from(self.den) / i128::from(self.num)) as i64
    }

    pub fn is_valid(self) -> bool {
        self.num > 0 && self.den > 0
    }
}

/// Converts whole seconds to ticks.
pub const fn seconds(s: i64) -> i64 {
    s * TICKS_PER_SECOND
}

/// Converts milliseconds to ticks.
pub const fn millis(ms: i64) -> i64 {
    ms * (TICKS_PER_SECOND / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_rates_have_exact_frame_durations() {
        for (num, den) in [
            (24000, 1001),
            (24, 1),
            (25, 1),
            (30000, 1001),
            (30, 1),
            (48, 1),
            (50, 1),
            (60000, 1001),
            (60, 1),
            (90, 1),
            (100, 1),
            (120, 1),
        ] {
            let rate = FrameRate { num, den };
            assert_eq!(TICKS_PER_SECOND * den % num, 0, "{num}/{den}");
            assert_eq!(rate.frame_at(rate.frame_start(1234)), 1234);
        }
        for hz in [8000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000] {
            assert_eq!(TICKS_PER_SECOND % hz, 0, "{hz}");
        }
    }
}
