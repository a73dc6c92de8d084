//! Reads that many steps make at the same time share one process: every release's
//! rollout tracker reads the same namespace's workloads, pods and endpoints once a
//! second, and at forty releases that was forty `kubectl get` per second for one
//! answer. A caller gets the answer of a read that *started after it asked* — never
//! an older one (a tracker that just upgraded its release must see the upgrade) — so
//! callers that arrive while a read runs wait for the next one, which they share.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

pub struct Shared<T> {
    slots: Mutex<HashMap<String, Arc<Slot<T>>>>,
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Shared {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

struct Slot<T> {
    state: Mutex<State<T>>,
    done: Condvar,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            state: Mutex::new(State {
                started: 0,
                running: false,
                last: None,
            }),
            done: Condvar::new(),
        }
    }
}

struct State<T> {
    /// How many reads of this key have started.
    started: u64,
    running: bool,
    /// The last read's number and answer.
    last: Option<(u64, T)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<T: Clone> Shared<T> {
    /// The answer of a read of `key` that started after this call: `read` runs it
    /// (in this thread) unless another caller's read that qualifies does.
    pub fn read(&self, key: &str, read: impl FnOnce() -> T) -> T {
        let slot = lock(&self.slots)
            .entry(key.to_string())
            .or_default()
            .clone();
        let mut st = lock(&slot.state);
        // A read running now started before this call: the next one will do.
        let wanted = st.started + 1;
        let mut read = Some(read);
        loop {
            if let Some((n, answer)) = &st.last {
                if *n >= wanted {
                    return answer.clone();
                }
            }
            if !st.running {
                st.running = true;
                st.started += 1;
                let mine = st.started;
                drop(st);
                let answer = (read.take().expect("a caller reads at most once"))();
                let mut st = lock(&slot.state);
                st.running = false;
                st.last = Some((mine, answer.clone()));
                slot.done.notify_all();
                return answer;
            }
            st = slot.done.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Barrier;
    use std::time::Duration;

    #[test]
    fn callers_at_the_same_time_share_reads_and_none_gets_an_older_one() {
        let shared: Shared<u32> = Shared::default();
        let reads = AtomicU32::new(0);
        let n = 16;
        let go = Barrier::new(n);
        let answers: Vec<(u32, u32)> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..n)
                .map(|_| {
                    s.spawn(|| {
                        go.wait();
                        // What had started before this caller asked.
                        let before = reads.load(Ordering::SeqCst);
                        let got = shared.read("k", || {
                            let me = reads.fetch_add(1, Ordering::SeqCst) + 1;
                            std::thread::sleep(Duration::from_millis(300));
                            me
                        });
                        (before, got)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let total = reads.load(Ordering::SeqCst);
        assert!(total <= 4, "{n} callers at once made {total} reads");
        for (before, got) in answers {
            assert!(
                got > before,
                "a caller got read {got}, which started before it asked (after {before})"
            );
        }
    }

    #[test]
    fn a_later_caller_never_gets_an_earlier_answer_and_keys_are_apart() {
        let shared: Shared<u32> = Shared::default();
        let mut n = 0;
        assert_eq!(
            shared.read("a", || {
                n += 1;
                n
            }),
            1
        );
        assert_eq!(
            shared.read("a", || {
                n += 1;
                n
            }),
            2
        );
        assert_eq!(
            shared.read("b", || {
                n += 1;
                n
            }),
            3
        );
    }
}
