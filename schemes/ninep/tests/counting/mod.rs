//! A global allocator that counts the bytes each thread asks for, for the tests that bound
//! what decoding allocates. Each test binary that uses it declares it its
//! `#[global_allocator]`:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: counting::Counting = counting::Counting;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the bytes each thread asks for, so parallel tests do not disturb each other.
pub struct Counting;

thread_local! {
    static REQUESTED: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the counter is a
// const-initialised thread-local, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        REQUESTED.with(|r| r.set(r.get().saturating_add(layout.size())));
        // SAFETY: the caller upholds `alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        REQUESTED.with(|r| r.set(r.get().saturating_add(new_size)));
        // SAFETY: the caller upholds `realloc`'s contract, which we pass on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Bytes requested while `f` runs on this thread, and its result.
pub fn allocated_by<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = REQUESTED.with(Cell::get);
    let v = f();
    (REQUESTED.with(Cell::get) - before, v)
}
