//! Ctrl-C and SIGTERM: counted, so a second one can escalate.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How many SIGINT/SIGTERM reached slipway. The first asks every child to stop
/// gracefully; a second kills what is still running at once.
#[derive(Clone, Default)]
pub struct Signals(Arc<AtomicUsize>);

impl Signals {
    /// Count SIGINT and SIGTERM from now on.
    pub fn install() -> Signals {
        let s = Signals::default();
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let n = Arc::clone(&s.0);
            // SAFETY: the handler only increments an atomic, which is
            // async-signal-safe.
            let _ = unsafe {
                signal_hook::low_level::register(sig, move || {
                    n.fetch_add(1, Ordering::SeqCst);
                })
            };
        }
        s
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// As if a signal had arrived (tests).
    #[cfg(test)]
    pub fn raise(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub fn cancelled(&self) -> bool {
        self.count() > 0
    }
}
