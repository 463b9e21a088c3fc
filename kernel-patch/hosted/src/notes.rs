//! Notes (Plan 9's `postnote` and `up->notepending`): what [`Kernel::interrupt`] posts to a
//! process, and how its calls in progress see it.
//!
//! Each call a process makes has an interrupt of its own ([`Notes::begin_call`]), so
//! several calls on one pid at once (threads of one process, in the host's terms) never
//! consume one another's note. A note posted to the process:
//!
//! - interrupts every call of the process in progress at that moment, each through its own
//!   interrupt (a server request is flushed, a fault's page wait ends);
//! - if no call is in progress, waits for the process's next call, which begins
//!   interrupted;
//! - stays with the process when a call ends still interrupted, that is without having
//!   consumed it (it never waited for anything) or having posted it again (a read or
//!   write cut short by it returns its partial count, as Plan 9's does): the next call
//!   sees it, as Plan 9 delivers a note that arrived while the process ran;
//! - is delivered once: notes are numbered, and once one call has consumed a note, what
//!   another call left of that same note is dropped, so one post never interrupts both a
//!   call in progress and a later one.
//!
//! Lock order: the notes lock → an interrupt's sleeper lock (taken by
//! [`Interrupt::post`]) → the rendezvous it wakes. Nothing else is taken under the notes
//! lock, and no server is called under it.
//!
//! [`Kernel::interrupt`]: crate::Kernel::interrupt

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use mnt::Interrupt;

use crate::current::{self, Current};
use crate::process::lock;

/// A process's notes: pending for its next call, or posted to its calls in progress.
#[derive(Default)]
pub(crate) struct Notes {
    state: Mutex<NoteState>,
}

#[derive(Default)]
struct NoteState {
    /// The number of the newest note posted (the first is 1).
    posted: u64,
    /// A note no call has taken yet, by number.
    pending: Option<u64>,
    /// The newest note some call consumed.
    consumed: u64,
    /// The calls in progress.
    calls: Vec<CallNote>,
}

/// A call in progress and the newest note posted to it (0: none).
struct CallNote {
    intr: Arc<Interrupt>,
    note: u64,
}

impl Notes {
    /// Posts a note: to every call in progress, or, with none, to the next call.
    pub(crate) fn post(&self) {
        let mut state = lock(&self.state);
        state.posted += 1;
        let note = state.posted;
        if state.calls.is_empty() {
            state.pending = Some(note);
            return;
        }
        for call in &mut state.calls {
            call.intr.post();
            call.note = note;
        }
    }

    /// Starts a call of the process on this thread: the call's interrupt, posted already if
    /// a note was pending, and the thread's current interrupt (for vm's page reads) until
    /// the call ends.
    pub(crate) fn begin_call(&self) -> Call<'_> {
        let intr = Arc::new(Interrupt::new());
        {
            let mut state = lock(&self.state);
            let note = state.pending.take().unwrap_or(0);
            if note > 0 {
                intr.post();
            }
            state.calls.push(CallNote {
                intr: intr.clone(),
                note,
            });
        }
        let current = current::enter(&intr);
        Call {
            notes: self,
            intr,
            _current: current,
        }
    }

    /// Whether a note waits for the next call (for tests of this module).
    #[cfg(test)]
    fn pending(&self) -> bool {
        lock(&self.state).pending.is_some()
    }
}

/// One call in progress; its interrupt is what the call passes to the mount driver.
pub(crate) struct Call<'a> {
    notes: &'a Notes,
    intr: Arc<Interrupt>,
    _current: Current,
}

impl Deref for Call<'_> {
    type Target = Interrupt;

    fn deref(&self) -> &Interrupt {
        &self.intr
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.notes.state);
        let Some(at) = state
            .calls
            .iter()
            .position(|call| Arc::ptr_eq(&call.intr, &self.intr))
        else {
            return;
        };
        let note = state.calls.swap_remove(at).note;
        if note == 0 {
            return;
        }
        if self.intr.is_pending() {
            // Left for the next call, unless another call has consumed this note.
            if state.consumed < note {
                state.pending = state.pending.max(Some(note));
            }
        } else {
            // This call consumed it: what other calls leave of it, or left, is void.
            state.consumed = state.consumed.max(note);
            if state.pending.is_some_and(|pending| pending <= note) {
                state.pending = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_reaches_every_call_in_progress_and_none_after() {
        let notes = Notes::default();
        let first = notes.begin_call();
        let second = notes.begin_call();
        notes.post();
        assert!(first.is_pending() && second.is_pending());
        // Both consume it (each was waiting for a server, say).
        assert!(first.take() && second.take());
        drop((first, second));
        assert!(!notes.pending());
        assert!(!notes.begin_call().is_pending());
    }

    #[test]
    fn a_note_one_call_consumed_is_not_left_over_by_another() {
        let notes = Notes::default();
        // The other call ends first, still interrupted, then the first consumes the note.
        let first = notes.begin_call();
        let second = notes.begin_call();
        notes.post();
        drop(second);
        assert!(first.take());
        drop(first);
        assert!(
            !notes.begin_call().is_pending(),
            "one note interrupted two calls"
        );
        // The first consumes and ends before the other ends still interrupted.
        let first = notes.begin_call();
        let second = notes.begin_call();
        notes.post();
        assert!(first.take());
        drop(first);
        drop(second);
        assert!(
            !notes.begin_call().is_pending(),
            "one note interrupted two calls"
        );
        // A note the only call posted again (a read cut short) still waits.
        let call = notes.begin_call();
        notes.post();
        assert!(call.take());
        call.post();
        drop(call);
        assert!(notes.begin_call().is_pending());
        // And a later note after a consumed one is delivered.
        let call = notes.begin_call();
        notes.post();
        assert!(call.take());
        drop(call);
        notes.post();
        assert!(notes.begin_call().is_pending());
    }

    #[test]
    fn a_note_with_no_call_in_progress_or_left_unconsumed_waits_for_the_next_call() {
        let notes = Notes::default();
        notes.post();
        let call = notes.begin_call();
        assert!(call.is_pending());
        // The call ends without consuming it: the next one begins interrupted.
        drop(call);
        let call = notes.begin_call();
        assert!(call.take());
        drop(call);
        assert!(!notes.begin_call().is_pending());
    }
}
