//! Large byte buffers kept for reuse, process-wide: the reads of busy pipes and the parent's
//! bytes a pipe has not taken yet.
//!
//! Every busy child would otherwise take fresh memory from the allocator for each large read
//! and for its write buffer, and give it back soon after. The allocator returns such memory
//! to the kernel (a large block is mapped on its own, and a freed top of the heap is
//! trimmed), so the next one is faulted in again page by page: with many children at once
//! that cost as much as moving the bytes. Kept here, a buffer's pages stay mapped.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Buffers smaller than this are left to the allocator, which reuses small blocks cheaply.
const MIN_KEPT: usize = 64 * 1024;

/// At most this much capacity is kept at once, in at most [`MAX_KEPT`] buffers.
const MAX_KEPT_BYTES: usize = 32 * 1024 * 1024;

/// At most this many buffers are kept at once.
const MAX_KEPT: usize = 64;

struct Kept {
    buffers: Vec<Vec<u8>>,
    bytes: usize,
}

static KEPT: Mutex<Kept> = Mutex::new(Kept {
    buffers: Vec::new(),
    bytes: 0,
});

fn kept() -> MutexGuard<'static, Kept> {
    KEPT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An empty buffer with room for at least `capacity` bytes: a kept one when there is one.
pub(crate) fn take(capacity: usize) -> Vec<u8> {
    if capacity >= MIN_KEPT {
        let mut kept = kept();
        // The smallest that is large enough, so that a small read does not take the buffer a
        // large write needs.
        let found = kept
            .buffers
            .iter()
            .enumerate()
            .filter(|(_, buffer)| buffer.capacity() >= capacity)
            .min_by_key(|(_, buffer)| buffer.capacity())
            .map(|(at, _)| at);
        if let Some(at) = found {
            let buffer = kept.buffers.swap_remove(at);
            kept.bytes -= buffer.capacity();
            return buffer;
        }
    }
    Vec::with_capacity(capacity)
}

/// Gives `buffer` back: kept for the next [`take`] when it is large and there is room, freed
/// otherwise. Its bytes are dropped either way.
pub(crate) fn give(mut buffer: Vec<u8>) {
    if buffer.capacity() < MIN_KEPT {
        return;
    }
    buffer.clear();
    let mut kept = kept();
    if kept.buffers.len() < MAX_KEPT && kept.bytes + buffer.capacity() <= MAX_KEPT_BYTES {
        kept.bytes += buffer.capacity();
        kept.buffers.push(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::{give, take, MIN_KEPT};

    #[test]
    fn a_large_buffer_given_back_is_taken_again_empty_and_a_small_one_is_not_kept() {
        // Sizes no other test of this binary uses, so that the process-wide pool is ours.
        let size = MIN_KEPT * 3 + 17;
        let mut buffer = take(size);
        assert!(buffer.capacity() >= size);
        buffer.extend_from_slice(b"old bytes");
        let address = buffer.as_ptr();
        give(buffer);
        let again = take(size);
        assert_eq!((again.as_ptr(), again.len()), (address, 0));
        // Asking for more than any kept buffer holds makes a new one.
        let larger = take(MIN_KEPT * 40);
        assert!(larger.capacity() >= MIN_KEPT * 40);
        assert_ne!(larger.as_ptr(), address);
        give(again);
        // Below the threshold nothing is kept: a request that size is a plain allocation.
        let small = take(1024);
        assert_eq!((small.len(), small.capacity() >= 1024), (0, true));
        give(small);
    }
}
