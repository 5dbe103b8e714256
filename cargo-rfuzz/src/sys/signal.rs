//! Stop requests: SIGINT, SIGTERM and SIGHUP become a flag the loops poll
//! (and a count, so the supervisor can escalate on a second Ctrl-C).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Set by the first stop signal.
pub static STOP: AtomicBool = AtomicBool::new(false);
/// Stop signals received so far.
static REQUESTS: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
    REQUESTS.fetch_add(1, Ordering::Relaxed);
}

/// Makes SIGINT, SIGTERM and SIGHUP request a clean stop.
pub fn install_stop_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only touches atomics, which is async-signal-safe.
        unsafe { libc::signal(sig, on_stop_signal as *const () as libc::sighandler_t) };
    }
}

/// Whether a stop was requested.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// How many stop signals arrived (the supervisor kills at once on the second).
pub fn stop_requests() -> u32 {
    REQUESTS.load(Ordering::Relaxed)
}
