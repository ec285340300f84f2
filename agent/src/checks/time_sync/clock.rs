//! The kernel's view of clock synchronisation, read with `adjtimex(2)` in read-only mode
//! (`modes = 0`). It works whatever PID 1 is and whichever daemon disciplines the clock: the
//! daemon reports its state to the kernel, which clears `STA_UNSYNC` and returns `TIME_OK`
//! only while the clock is being disciplined.

/// `STA_UNSYNC`: the clock is not synchronised.
pub const STA_UNSYNC: i64 = 0x0040;
/// `STA_NANO`: `offset` is in nanoseconds rather than microseconds.
pub const STA_NANO: i64 = 0x2000;
/// `TIME_ERROR` (also `TIME_BAD`): the return value while the clock is unsynchronised.
pub const TIME_ERROR: i32 = 5;

/// What `adjtimex` returned, in plain numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockState {
    /// The return value: `TIME_OK` (0) … `TIME_ERROR` (5).
    pub state: i32,
    /// `status` bits (`STA_*`).
    pub status: i64,
    /// Remaining phase correction, in ns when `STA_NANO` is set, else in µs.
    pub offset: i64,
    /// Upper bound of the clock error, µs.
    pub maxerror_us: i64,
    /// Estimated clock error, µs.
    pub esterror_us: i64,
}

impl ClockState {
    pub fn unsynchronised(&self) -> bool {
        self.status & STA_UNSYNC != 0 || self.state == TIME_ERROR
    }

    /// The kernel's remaining correction in milliseconds.
    pub fn offset_ms(&self) -> f64 {
        if self.status & STA_NANO != 0 {
            self.offset as f64 / 1e6
        } else {
            self.offset as f64 / 1e3
        }
    }

    /// The name of the return value, as in `<sys/timex.h>`.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            0 => "TIME_OK",
            1 => "TIME_INS",
            2 => "TIME_DEL",
            3 => "TIME_OOP",
            4 => "TIME_WAIT",
            TIME_ERROR => "TIME_ERROR",
            _ => "unknown",
        }
    }
}

/// Reads the kernel clock state of the machine the agent runs on.
// `c_long` is `i64` here but `i32` on 32-bit targets, hence the conversions.
#[allow(unsafe_code, clippy::useless_conversion)]
pub fn read_kernel_clock() -> std::io::Result<ClockState> {
    // SAFETY: `libc::timex` is a plain C struct of integers (and a `timeval`), for which
    // all-zero bytes are a valid value; zero `modes` is the documented read-only query.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `tx` is a valid, exclusively borrowed `timex` for the duration of the call,
    // and with `modes = 0` the kernel only writes the current values into it.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ClockState {
        state,
        status: i64::from(tx.status),
        offset: i64::from(tx.offset),
        maxerror_us: i64::from(tx.maxerror),
        esterror_us: i64::from(tx.esterror),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_units() {
        let s = ClockState {
            state: 0,
            status: STA_NANO | 0x0001,
            offset: -2_500_000,
            maxerror_us: 12_000,
            esterror_us: 300,
        };
        assert!(!s.unsynchronised());
        assert_eq!(s.offset_ms(), -2.5);
        assert_eq!(s.state_name(), "TIME_OK");
        let u = ClockState {
            state: TIME_ERROR,
            status: STA_UNSYNC,
            offset: 1500,
            maxerror_us: 16_000_000,
            esterror_us: 16_000_000,
        };
        assert!(u.unsynchronised());
        assert_eq!(u.offset_ms(), 1.5);
        // Either signal alone means unsynchronised.
        assert!(ClockState { status: 0, ..u }.unsynchronised());
        assert!(ClockState { state: 0, ..u }.unsynchronised());
    }

    #[test]
    fn the_kernel_answers() {
        let s = read_kernel_clock().unwrap();
        assert!((0..=5).contains(&s.state), "{s:?}");
    }
}
