//! A rendezvous point on `Mutex` and `Condvar`.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::rendez::{Platform, Rendez};

/// Plan 9's `Rendez` for host threads.
#[derive(Debug, Default)]
pub struct StdRendez {
    /// Whether a thread sleeps here and has not been woken since it went to sleep.
    sleeping: Mutex<bool>,
    cv: Condvar,
}

impl StdRendez {
    /// A rendezvous point nobody sleeps on.
    pub fn new() -> StdRendez {
        StdRendez::default()
    }

    fn lock(&self) -> MutexGuard<'_, bool> {
        // A panic elsewhere must not wedge every sleeper: the flag is still right.
        self.sleeping.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Like [`Rendez::sleep`], giving up at `deadline`; returns whether `ready()` held.
    pub fn sleep_until(&self, ready: &dyn Fn() -> bool, deadline: Instant) -> bool {
        let mut g = self.lock();
        loop {
            if ready() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            *g = true;
            g = match self.cv.wait_timeout(g, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
            *g = false;
        }
    }
}

impl Rendez for StdRendez {
    fn sleep(&self, ready: &dyn Fn() -> bool) {
        let mut g = self.lock();
        while !ready() {
            *g = true;
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
            *g = false;
        }
    }

    fn wakeup(&self) -> bool {
        let mut g = self.lock();
        // Plan 9's wakeup takes the sleeper away: until it sleeps again, a second
        // wakeup finds nobody (the mount's gate then tries the next waiter).
        let was_asleep = core::mem::replace(&mut *g, false);
        if was_asleep {
            self.cv.notify_all();
        }
        was_asleep
    }
}

/// The host platform: every rendezvous point is a [`StdRendez`].
#[derive(Debug, Default, Clone, Copy)]
pub struct StdPlatform;

impl StdPlatform {
    /// The platform as the mount driver takes it.
    pub fn shared() -> Arc<dyn Platform> {
        Arc::new(StdPlatform)
    }
}

impl Platform for StdPlatform {
    fn rendez(&self) -> Arc<dyn Rendez> {
        Arc::new(StdRendez::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn wakeup_after_state_change_is_not_lost() {
        for _ in 0..200 {
            let r = Arc::new(StdRendez::new());
            let flag = Arc::new(AtomicBool::new(false));
            let (r2, f2) = (r.clone(), flag.clone());
            let t = std::thread::spawn(move || {
                f2.store(true, Ordering::SeqCst);
                r2.wakeup();
            });
            let ok = r.sleep_until(
                &|| flag.load(Ordering::SeqCst),
                Instant::now() + Duration::from_secs(10),
            );
            t.join().unwrap();
            assert!(ok);
        }
    }

    #[test]
    fn wakeup_reports_whether_anyone_slept() {
        let r = StdRendez::new();
        assert!(!r.wakeup());
    }
}
