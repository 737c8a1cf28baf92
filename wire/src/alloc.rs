//! A global allocator that serves very large allocations with lazily backed mappings.
//!
//! Why: `kafka-protocol` decodes an array by reserving `Vec::with_capacity(count)` with
//! the count read from the request, before it has seen a single element. A 14-byte
//! request can claim tens of millions of elements (found by `cargo fuzz`); with the
//! system allocator that reservation either fails (and the process aborts) or commits
//! gigabytes. Served by `mmap(MAP_NORESERVE)`, the same reservation only takes address
//! space: the decoder writes as many elements as the frame actually holds (each needs at
//! least one byte of input, and frames are bounded), then fails and frees the mapping.
//! Small allocations go to the system allocator unchanged.

use std::alloc::{GlobalAlloc, Layout, System};
use std::num::NonZeroUsize;
use std::ptr::NonNull;

use nix::sys::mman::{mmap_anonymous, mremap, munmap, MRemapFlags, MapFlags, ProtFlags};

/// Allocations at or above this size are mapped lazily.
pub const LAZY_THRESHOLD_BYTES: usize = 64 << 20;
const PAGE_BYTES: usize = 4096;

#[derive(Debug, Default, Clone, Copy)]
pub struct LazyLargeAlloc;

fn is_large(layout: &Layout) -> bool {
    layout.size() >= LAZY_THRESHOLD_BYTES && layout.align() <= PAGE_BYTES
}

unsafe fn map(size: usize) -> *mut u8 {
    let Some(len) = NonZeroUsize::new(size) else {
        return std::ptr::null_mut();
    };
    let flags = MapFlags::MAP_PRIVATE | MapFlags::MAP_NORESERVE;
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing.
    match unsafe {
        mmap_anonymous(
            None,
            len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            flags,
        )
    } {
        Ok(p) => p.as_ptr().cast(),
        Err(_) => std::ptr::null_mut(),
    }
}

unsafe fn unmap(ptr: *mut u8, size: usize) {
    if let Some(p) = NonNull::new(ptr) {
        // SAFETY: `ptr` came from `map` (or `mremap`) with this size.
        let _ = unsafe { munmap(p.cast(), size) };
    }
}

// SAFETY: every pointer handed out is either the system allocator's (small layouts) or a
// fresh page-aligned mapping of at least the layout's size (large layouts); dealloc and
// realloc dispatch on the same size test, so each pointer returns to its source.
unsafe impl GlobalAlloc for LazyLargeAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            // Anonymous mappings are zero-filled.
            unsafe { map(layout.size()) }
        } else {
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(&layout) {
            unsafe { unmap(ptr, layout.size()) }
        } else {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with the old alignment is a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (is_large(&layout), is_large(&new_layout)) {
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            (true, true) => {
                let Some(old) = NonNull::new(ptr) else {
                    return std::ptr::null_mut();
                };
                // SAFETY: `old` is a mapping of `layout.size()` bytes from `map`.
                match unsafe {
                    mremap(
                        old.cast(),
                        layout.size(),
                        new_size,
                        MRemapFlags::MREMAP_MAYMOVE,
                        None,
                    )
                } {
                    Ok(p) => p.as_ptr().cast(),
                    Err(_) => std::ptr::null_mut(),
                }
            }
            _ => {
                let fresh = unsafe { self.alloc(new_layout) };
                if !fresh.is_null() {
                    // SAFETY: both regions are valid for the smaller of the two sizes.
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(new_size))
                    };
                    unsafe { self.dealloc(ptr, layout) };
                }
                fresh
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_reservations_are_lazy_and_usable() {
        let a = LazyLargeAlloc;
        // 64 GiB: more than this machine's memory, yet only address space is taken.
        let layout = Layout::from_size_align(64 << 30, 8).unwrap();
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            *p = 7;
            *p.add((64 << 30) - 1) = 9;
            let q = a.realloc(p, layout, 65 << 30);
            assert!(!q.is_null());
            assert_eq!((*q, *q.add((64 << 30) - 1)), (7, 9));
            let small = Layout::from_size_align(16, 8).unwrap();
            let r = a.realloc(q, Layout::from_size_align(65 << 30, 8).unwrap(), 16);
            assert_eq!(*r, 7);
            a.dealloc(r, small);
        }
    }
}
