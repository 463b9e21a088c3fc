//! The reader role and its hand-off (Plan 9's `mntgate`/`mntqrm` dance).
//!
//! There is no reader thread: one of the callers waiting in [`Mux::rpc`] receives
//! for all until what it waits for has happened, then gives the role up and wakes
//! another waiter to take it. A waiter woken to take the role that leaves instead
//! (its reply came meanwhile) passes it on as it goes, so the others never sleep
//! with nobody reading.
//!
//! The reader sleeps in `Transport::recv` on a wake-up interrupt of the mux's
//! (`State::reader_wake`), which the caller's note is relayed to and which the mux
//! posts when a tag is freed while callers wait for one: a tag waiter that reads must
//! not sleep in `recv` for a message that may never come when another caller has
//! freed tags by settling its chain.
//!
//! Lock rules: `Mux::state` (bookkeeping of the waiters) is never held across
//! `Transport::recv`; a waiter's sleep condition reads only atomics (`reader_free`,
//! the rpc's `done`, the tag epoch) and its interrupt's leaf lock, never the state
//! lock, so `Rendez::wakeup` may be called with the state lock held (order: state →
//! rendez → interrupt leaf).

use crate::sync::Arc;
use crate::sync::Ordering;

use super::{Mux, State, Woke};
use crate::error::TransportError;
use crate::rendez::{Interrupt, Rendez};

/// A caller inside [`Mux::rpc`]: someone [`Mux::gate`] may hand the reader role to.
pub(super) struct Waiter {
    pub(super) rendez: Arc<dyn Rendez>,
    /// It waits for a free tag (not yet for a reply).
    pub(super) wants_tag: bool,
    /// `gate` woke it to take the reader role (cleared when it takes it): if it
    /// leaves without, it passes the role on.
    pub(super) offered: bool,
}

/// A caller's registration as a [`Waiter`], from entering `rpc` to leaving it.
pub(super) struct Registered<'a> {
    pub(super) mux: &'a Mux,
    pub(super) id: u64,
    pub(super) rendez: Arc<dyn Rendez>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let mut st = self.mux.state.lock();
        let Some(me) = st.waiters.remove(&self.id) else {
            return;
        };
        if me.wants_tag {
            st.tag_waiters -= 1;
        }
        // Woken to be the reader, but leaving (its reply came first, or it gave up):
        // someone else must read, or the others sleep with nobody reading.
        if me.offered && self.mux.reader_free.load(Ordering::Acquire) {
            Mux::offer_reader_role(&mut st);
        }
    }
}

impl Mux {
    /// Registers the calling thread as a waiter, sleeping on `rendez`.
    pub(super) fn register(&self, rendez: Arc<dyn Rendez>) -> Registered<'_> {
        let mut st = self.state.lock();
        let id = st.next_waiter;
        st.next_waiter += 1;
        st.waiters.insert(
            id,
            Waiter {
                rendez: rendez.clone(),
                wants_tag: false,
                offered: false,
            },
        );
        Registered {
            mux: self,
            id,
            rendez,
        }
    }

    /// Waits until `done()` holds or `intr` is posted, reading for everyone while no
    /// one else does.
    pub(super) fn wait(
        &self,
        me: &Registered<'_>,
        done: &dyn Fn() -> bool,
        intr: &Interrupt,
    ) -> Woke {
        loop {
            if done() {
                return Woke::Done;
            }
            if intr.take() {
                return Woke::Interrupted;
            }
            if self
                .reader_free
                .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                if let Some(w) = self.state.lock().waiters.get_mut(&me.id) {
                    w.offered = false;
                }
                let woke = self.read_until(done, intr);
                self.gate();
                match woke {
                    Woke::Done => return Woke::Done,
                    Woke::Interrupted => {
                        intr.take();
                        return Woke::Interrupted;
                    }
                }
            }
            intr.sleep_on(&me.rendez, &|| {
                done() || self.reader_free.load(Ordering::Acquire)
            });
        }
    }

    /// As the reader: receives and dispatches messages until `done()` holds.
    ///
    /// It sleeps in `recv` on a wake-up of the mux's (`State::reader_wake`), not on
    /// `intr` (which is relayed to it meanwhile), because what it waits for may come
    /// about without a message: a caller waiting for a tag reads, and another caller's
    /// settling of its chain frees tags (`tags_changed` posts the wake-up). A posted
    /// wake-up is never cleared but replaced by a fresh one, so a post is never lost
    /// to a clear that raced with it.
    pub(super) fn read_until(&self, done: &dyn Fn() -> bool, intr: &Interrupt) -> Woke {
        let woke = loop {
            let wake = self.fresh_reader_wake(intr);
            if let Some(woke) = self.read_until_woken(done, intr, &wake) {
                break woke;
            }
        };
        self.state.lock().reader_wake = None;
        intr.relay_to(None);
        woke
    }

    /// Makes a new wake-up the reader's, and relays `intr` to it. The state change a
    /// wake-up announces is made under the state lock before the post, so one made
    /// before this registration is seen by the `done()` that follows it.
    fn fresh_reader_wake(&self, intr: &Interrupt) -> Arc<Interrupt> {
        let wake = Arc::new(Interrupt::new());
        self.state.lock().reader_wake = Some(wake.clone());
        intr.relay_to(Some(wake.clone()));
        wake
    }

    /// Reads until `done()` holds (`Some(Done)`), `intr` is posted
    /// (`Some(Interrupted)`) or the mux posts `wake` (`None`: look again).
    fn read_until_woken(
        &self,
        done: &dyn Fn() -> bool,
        intr: &Interrupt,
        wake: &Interrupt,
    ) -> Option<Woke> {
        loop {
            if done() {
                return Some(Woke::Done);
            }
            if intr.is_pending() {
                return Some(Woke::Interrupted);
            }
            if wake.is_pending() {
                return None;
            }
            match self.transport.recv(wake) {
                Ok(bytes) => self.dispatch(&bytes),
                // A wake-up or the caller's note: the checks above tell which.
                Err(TransportError::Interrupted) => {}
                Err(e) => {
                    // Breaks (or has closed) the mount: every wait is over.
                    self.fail_transport(e);
                    return Some(Woke::Done);
                }
            }
        }
    }

    /// Gives up the reader role and wakes one waiter to take it (Plan 9's `mntgate`).
    pub(super) fn gate(&self) {
        let mut st = self.state.lock();
        self.reader_free.store(true, Ordering::Release);
        Self::offer_reader_role(&mut st);
    }

    /// Wakes the first sleeping waiter, to take the free reader role. A waiter that
    /// leaves instead passes it on (see [`Registered`]'s drop).
    pub(super) fn offer_reader_role(st: &mut State) {
        for w in st.waiters.values_mut() {
            if w.rendez.wakeup() {
                w.offered = true;
                break;
            }
        }
    }
}
