//! SysV shared-memory segments owned by the fuzzer.

use std::io;
use std::ptr::NonNull;

/// A segment created and attached by this process.
///
/// It is marked for removal (`IPC_RMID`) right after creation: Linux still
/// lets the target attach it by id while we hold our attachment, and the
/// kernel frees it when the last process detaches, so no segment outlives
/// the fuzzer, even after SIGKILL.
#[derive(Debug)]
pub struct Segment {
    id: i32,
    ptr: NonNull<u8>,
    size: usize,
}

// SAFETY: the segment is plain memory; access discipline is the caller's
// (one writer at a time, ordered by the forkserver pipes).
unsafe impl Send for Segment {}

impl Segment {
    /// Creates a zeroed segment of `size` bytes.
    pub fn create(size: usize) -> io::Result<Segment> {
        // SAFETY: plain syscalls, results checked.
        unsafe {
            let id = libc::shmget(libc::IPC_PRIVATE, size, libc::IPC_CREAT | libc::IPC_EXCL | 0o600);
            if id < 0 {
                return Err(io::Error::last_os_error());
            }
            let p = libc::shmat(id, std::ptr::null(), 0);
            if p as isize == -1 {
                let e = io::Error::last_os_error();
                libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
                return Err(e);
            }
            libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
            Ok(Segment { id, ptr: NonNull::new(p.cast()).expect("shmat returned null"), size })
        }
    }

    /// The id targets attach with.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// `len` bytes at `offset`.
    ///
    /// # Panics
    /// If the range is outside the segment.
    pub fn slice(&self, offset: usize, len: usize) -> &[u8] {
        assert!(offset.checked_add(len).is_some_and(|e| e <= self.size));
        // SAFETY: the range is inside the mapping, which lives as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(offset), len) }
    }

    /// Mutable `len` bytes at `offset`.
    ///
    /// # Panics
    /// If the range is outside the segment.
    pub fn slice_mut(&mut self, offset: usize, len: usize) -> &mut [u8] {
        assert!(offset.checked_add(len).is_some_and(|e| e <= self.size));
        // SAFETY: the range is inside the mapping; `&mut self` gives unique
        // access on this side (the target only writes while we wait for it).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(offset), len) }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: detaching our own attachment; the segment is already
        // marked for removal.
        unsafe { libc::shmdt(self.ptr.as_ptr().cast()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_is_marked_for_removal_but_still_attachable() {
        let mut seg = Segment::create(4096).unwrap();
        seg.slice_mut(0, 4).copy_from_slice(b"rfzz");
        // A second attachment by id (what the target does) still works.
        // SAFETY: attaching an existing segment; checked below.
        let p = unsafe { libc::shmat(seg.id(), std::ptr::null(), 0) };
        assert_ne!(p as isize, -1, "attach after IPC_RMID");
        // SAFETY: the mapping is at least 4 bytes.
        let seen = unsafe { std::slice::from_raw_parts(p as *const u8, 4) };
        assert_eq!(seen, b"rfzz");
        // SAFETY: detaching what we attached.
        unsafe { libc::shmdt(p) };
    }
}
