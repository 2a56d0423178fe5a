//! Counts what the process holds on the heap, so a benchmark can say exactly what a structure
//! costs: RSS also holds the allocator's slack and the memory it keeps after a free.
//!
//! Wraps the system allocator; a benchmark installs it with
//! `#[global_allocator] static HEAP: heap_count::Counting = heap_count::Counting;`.

// A global allocator can only be written with `unsafe`; this one forwards every call to the
// system allocator unchanged and only counts.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

static BYTES: AtomicUsize = AtomicUsize::new(0);
static BLOCKS: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting the bytes and blocks it holds.
pub struct Counting;

// SAFETY: every method forwards to `System` with the arguments it was given, and returns
// what `System` returned; the counters have no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, passed on unchanged.
        counted(unsafe { System.alloc(layout) }, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        counted(unsafe { System.alloc_zeroed(layout) }, layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `dealloc`'s contract, passed on unchanged.
        unsafe { System.dealloc(ptr, layout) };
        BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        BLOCKS.fetch_sub(1, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `realloc`'s contract, passed on unchanged.
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            if new_size >= layout.size() {
                BYTES.fetch_add(new_size - layout.size(), Ordering::Relaxed);
            } else {
                BYTES.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        moved
    }
}

/// Counts a new block of `layout` at `ptr` (none when the allocation failed).
fn counted(ptr: *mut u8, layout: Layout) -> *mut u8 {
    if !ptr.is_null() {
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        BLOCKS.fetch_add(1, Ordering::Relaxed);
    }
    ptr
}

/// What the heap holds now: bytes asked for (not counting the allocator's own overhead) and
/// live blocks.
#[derive(Clone, Copy, Debug)]
pub struct Held {
    /// Bytes in live allocations, as requested.
    pub bytes: usize,
    /// Live allocations.
    pub blocks: usize,
}

impl Held {
    /// Now.
    pub fn now() -> Self {
        Self {
            bytes: BYTES.load(Ordering::Relaxed),
            blocks: BLOCKS.load(Ordering::Relaxed),
        }
    }

    /// What was allocated since `earlier` and is still held (zero, not negative, when more
    /// was freed than allocated).
    pub fn since(self, earlier: Held) -> Held {
        Held {
            bytes: self.bytes.saturating_sub(earlier.bytes),
            blocks: self.blocks.saturating_sub(earlier.blocks),
        }
    }
}
