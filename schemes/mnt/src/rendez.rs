//! Blocking, as the embedding kernel provides it, and interruption of a blocked call.
//!
//! The core never spawns threads and never blocks on its own: a thread that waits
//! for a reply sleeps on a [`Rendez`] (Plan 9's `Rendez`: sleep until a condition
//! holds, wake up), which the kernel makes through its [`Platform`]. A caller that
//! must be able to give up (a process that got a note) passes an [`Interrupt`];
//! posting it wakes the sleeper, and the mount driver flushes the request.

use crate::sync::{Arc, Mutex};

/// A rendezvous point one thread sleeps on and others wake.
///
/// Contract (Plan 9's `sleep`/`wakeup`): `sleep` returns only after `ready()` returned
/// true; it evaluates `ready` and goes to sleep atomically with respect to `wakeup`,
/// so a `wakeup` that follows a state change `ready` observes is never lost. Spurious
/// returns from the inner wait are the implementation's business: `sleep` re-checks.
///
/// `ready` reads only atomics and leaf locks (an [`Interrupt`]'s); it never takes a
/// lock that is held while waking a rendezvous, such as the mount's state lock.
/// `wakeup` may be called with the mount's state lock held (lock order: mount state
/// lock → rendez lock → interrupt's leaf lock), so it must not block on anything but
/// its own short lock.
pub trait Rendez: Send + Sync {
    /// Blocks until `ready()` returns true.
    fn sleep(&self, ready: &dyn Fn() -> bool);
    /// Wakes the thread sleeping here, if any; returns whether one was asleep. As in
    /// Plan 9 it should count a sleeper once: a thread already woken and not yet
    /// asleep again is best reported as not asleep. (The mount driver stays correct
    /// either way; it only hands its reader role on sooner.)
    fn wakeup(&self) -> bool;
}

/// What the embedding kernel provides: a way to make rendezvous points.
pub trait Platform: Send + Sync {
    /// A new rendezvous point, for one call's wait.
    fn rendez(&self) -> Arc<dyn Rendez>;
}

/// A per-caller cancellation token: "this process has a note pending".
///
/// The kernel owns one per thread (or per call) and calls [`post`](Self::post) when
/// the thread must stop waiting. A post before the request is sent aborts it unsent; a
/// post while its reply is awaited sends a `Tflush`; a further post while the `Rflush`
/// is awaited sends another `Tflush` carrying the original tag. A call consumes the
/// post only when it fails with `Interrupted`: if the reply beat the flush, the call
/// returns it and the post stays pending (as a Plan 9 note does), so a read or write
/// of several messages stops there with its partial count, and the next call
/// reports the post. One `Interrupt` serves one call at a time.
pub struct Interrupt {
    /// A post not consumed yet. A leaf lock, not an atomic: taking a post races with
    /// new posts, and a lock makes the two plainly ordered (loom, which approximates
    /// an atomic's modification order, loses a post between a swap and a concurrent
    /// store that a lock keeps).
    pending: Mutex<bool>,
    /// The rendezvous the owning thread sleeps on now, woken by `post`.
    sleeper: Mutex<Option<Arc<dyn Rendez>>>,
    /// An interrupt that `post` also posts, while set: the mount's wake-up of its
    /// reader, while this caller reads for the mount (see [`Self::relay_to`]).
    relay: Mutex<Option<Arc<Interrupt>>>,
}

impl Default for Interrupt {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Interrupt")
            .field("pending", &self.is_pending())
            .finish()
    }
}

impl Interrupt {
    /// A token with nothing pending.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Interrupt {
            pending: Mutex::new(false),
            sleeper: Mutex::new(None),
            relay: Mutex::new(None),
        }
    }

    /// A token with nothing pending (not `const` under loom, whose atomics and locks
    /// are not).
    #[cfg(loom)]
    pub fn new() -> Self {
        Interrupt {
            pending: Mutex::new(false),
            sleeper: Mutex::new(None),
            relay: Mutex::new(None),
        }
    }

    /// Marks the interrupt pending and wakes the owner if it sleeps.
    pub fn post(&self) {
        *self.pending.lock() = true;
        {
            // Lock order: interrupt sleeper slot → rendez lock.
            let sleeper = self.sleeper.lock();
            if let Some(r) = sleeper.as_ref() {
                r.wakeup();
            }
        }
        // Posted outside the slot's lock: a post that races with the end of a relay
        // at worst wakes the mount's reader once for nothing.
        let relay = self.relay.lock().clone();
        if let Some(r) = relay {
            r.post();
        }
    }

    /// From now on (until `None`) every post of this interrupt also posts `to`. The
    /// mount's reader sleeps in `Transport::recv` on an interrupt of the mount's own,
    /// which the mount posts when the reader must look again (a tag was freed for
    /// it); the caller's note reaches it through this relay. A post already pending
    /// is not relayed: the reader checks this interrupt after setting the relay.
    pub(crate) fn relay_to(&self, to: Option<Arc<Interrupt>>) {
        *self.relay.lock() = to;
    }

    /// Whether a post has not been consumed yet.
    pub fn is_pending(&self) -> bool {
        *self.pending.lock()
    }

    /// Consumes a pending post; returns whether there was one.
    pub fn take(&self) -> bool {
        core::mem::replace(&mut *self.pending.lock(), false)
    }

    /// Forgets a pending post.
    pub fn clear(&self) {
        *self.pending.lock() = false;
    }

    /// Sleeps on `rendez` until `ready()` holds or a post is pending. The post is not
    /// consumed. Transports use this for an interruptible receive.
    pub fn sleep_on(&self, rendez: &Arc<dyn Rendez>, ready: &dyn Fn() -> bool) {
        *self.sleeper.lock() = Some(rendez.clone());
        rendez.sleep(&|| self.is_pending() || ready());
        *self.sleeper.lock() = None;
    }
}
