//! Recycled chunk buffers: the pipe reader reads into one, a verbatim log file's writer
//! and the ring share that very buffer (no copy, see [`Chunk`]), and large batches keep
//! their text in one.
//!
//! Under a flood every chunk is 64 KiB. Allocating and freeing that much per chunk on two
//! threads made the allocator hand memory back to the kernel and fault it in again (page
//! faults, zeroed pages, cgroup charging: about a tenth of the capture's profile), and the
//! copy into the writer's queue was another. A few buffers are kept for reuse instead;
//! the count is bounded, so an idle warden holds at most [`KEEP`] of them (and holds none
//! until something has flooded).
//!
//! A timestamped file's writer formats each chunk's records into a buffer of its own
//! ([`take_format`]): a chunk of 100-byte lines becomes 84 KiB, written at once (a second
//! `write` per chunk cost the writer a sixth more CPU). [`KEEP_FORMAT`] of those are kept.
//!
//! It must not hold a buffer that is not in use beyond [`KEEP`] (and [`KEEP_FORMAT`]), nor
//! hand out one with stale contents (buffers come back empty).

use std::ops::Deref;
use std::sync::{Arc, Mutex, PoisonError};

/// One read's worth: a Linux pipe holds 64 KiB by default.
pub const CHUNK: usize = 64 * 1024;
/// A chunk at least this large is worth a whole buffer; a smaller one is copied to a
/// buffer of its own size (so that what a queue or a ring counts is what it holds).
pub const LARGE: usize = CHUNK / 2;
/// Buffers kept for reuse: 1 MiB.
const KEEP: usize = 16;

/// The size of a formatting buffer.
pub const FORMAT: usize = 2 * CHUNK;
/// Formatting buffers kept for reuse: one per writer thread that formats at once, for
/// the few that do.
const KEEP_FORMAT: usize = 2;

/// Buffers of one size kept for reuse, at most `keep` of them.
struct Pool {
    free: Mutex<Vec<Vec<u8>>>,
    size: usize,
    keep: usize,
}

impl Pool {
    const fn new(size: usize, keep: usize) -> Pool {
        Pool {
            free: Mutex::new(Vec::new()),
            size,
            keep,
        }
    }

    fn take(&self) -> Vec<u8> {
        let reused = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        reused.unwrap_or_else(|| Vec::with_capacity(self.size))
    }

    fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() != self.size {
            return;
        }
        buf.clear();
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < self.keep {
            free.push(buf);
        }
    }
}

static CHUNKS: Pool = Pool::new(CHUNK, KEEP);
static FORMATS: Pool = Pool::new(FORMAT, KEEP_FORMAT);

/// An empty buffer with room for [`FORMAT`] bytes.
pub fn take_format() -> Vec<u8> {
    FORMATS.take()
}

/// Gives a buffer from [`take_format`] back (or frees it: grown, or enough are kept).
pub fn give_format(buf: Vec<u8>) {
    FORMATS.give(buf);
}

/// An empty buffer with room for [`CHUNK`] bytes.
pub fn take() -> Vec<u8> {
    CHUNKS.take()
}

/// Gives a buffer back for reuse (or frees it: not one of ours, or enough are kept).
pub fn give(buf: Vec<u8>) {
    CHUNKS.give(buf);
}

/// `chunk` as an owned buffer for a queue: the buffer itself when it is a large chunk,
/// else a copy of exactly its size (and the buffer goes back).
pub fn own(chunk: Vec<u8>) -> Vec<u8> {
    if chunk.len() >= LARGE {
        return chunk;
    }
    let copy = chunk.as_slice().to_vec();
    give(chunk);
    copy
}

/// A chunk as read, shared by the log file's queue and the ring; its buffer goes back for
/// reuse when the last of them lets go.
#[derive(Debug)]
pub struct Chunk(Vec<u8>);

impl Chunk {
    /// `chunk` (a buffer from [`take`], or any other) shared: see [`own`].
    pub fn new(chunk: Vec<u8>) -> Arc<Chunk> {
        Arc::new(Chunk(own(chunk)))
    }

    /// A copy of `bytes`, shared.
    pub fn copy(bytes: &[u8]) -> Arc<Chunk> {
        Arc::new(Chunk(bytes.to_vec()))
    }
}

impl Deref for Chunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_and_small_chunks_are_copied_to_their_size() {
        let mut a = take();
        assert!(a.is_empty() && a.capacity() == CHUNK);
        a.extend_from_slice(&[7; 100]);
        let small = own(a);
        assert_eq!((small.len(), small.capacity()), (100, 100));
        let mut b = take();
        assert!(b.is_empty(), "a recycled buffer holds nothing");
        b.resize(LARGE, 1);
        let ptr = b.as_ptr();
        let large = own(b);
        assert_eq!(
            large.as_ptr(),
            ptr,
            "a large chunk is passed on, not copied"
        );
        give(large);
        // Not ours: freed, never handed out.
        give(Vec::with_capacity(10));
        assert_eq!(take().capacity(), CHUNK);
    }

    #[test]
    fn formatting_buffers_come_back_empty() {
        // A pool of its own: the shared one is used by writer tests running meanwhile.
        let pool = Pool::new(FORMAT, KEEP_FORMAT);
        let mut a = pool.take();
        assert!(a.is_empty() && a.capacity() == FORMAT);
        a.extend_from_slice(&[7; 100]);
        let ptr = a.as_ptr();
        pool.give(a);
        let b = pool.take();
        assert!(
            b.is_empty() && b.capacity() == FORMAT,
            "a recycled buffer holds nothing"
        );
        assert_eq!(
            b.as_ptr(),
            ptr,
            "the buffer given back is the one taken next"
        );
    }

    #[test]
    fn a_shared_chunk_keeps_its_bytes_until_the_last_holder_lets_go() {
        let mut a = take();
        a.resize(LARGE, 3);
        let ptr = a.as_ptr();
        let shared = Chunk::new(a);
        let other = Arc::clone(&shared);
        assert_eq!(shared.as_ptr(), ptr, "a large chunk is shared, not copied");
        drop(shared);
        assert!(other.iter().all(|&b| b == 3) && other.len() == LARGE);
        drop(other);
        let small = Chunk::new(vec![1; 10]);
        assert_eq!(&small[..], &[1; 10]);
    }
}
