//! Blocking reads and writes of whole protocol words on raw file descriptors.
//!
//! The forkserver runs before (and instead of) most of the Rust runtime's
//! conveniences and talks over inherited pipes, so it uses plain `read(2)` and
//! `write(2)` with EINTR retries.

use std::os::raw::c_int;

/// Writes all of `buf`, retrying on EINTR. Returns false if the peer is gone.
pub fn write_all(fd: c_int, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: `buf` is a valid readable slice for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        if n == 0 {
            return false;
        }
        buf = &buf[n as usize..];
    }
    true
}

/// Reads exactly `buf.len()` bytes, retrying on EINTR. Returns false on EOF or error.
pub fn read_exact(fd: c_int, buf: &mut [u8]) -> bool {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the destination range lies inside `buf`.
        let n = unsafe { libc::read(fd, buf[done..].as_mut_ptr().cast(), buf.len() - done) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        if n == 0 {
            return false;
        }
        done += n as usize;
    }
    true
}

/// Reads one native-endian `u32`.
pub fn read_u32(fd: c_int) -> Option<u32> {
    let mut b = [0u8; 4];
    read_exact(fd, &mut b).then(|| u32::from_ne_bytes(b))
}

/// Writes one native-endian `u32`.
pub fn write_u32(fd: c_int, v: u32) -> bool {
    write_all(fd, &v.to_ne_bytes())
}

/// Writes a `[tag, value]` pair in one `write(2)` so it is atomic on a pipe.
pub fn write_pair(fd: c_int, tag: u32, value: u32) -> bool {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&tag.to_ne_bytes());
    b[4..].copy_from_slice(&value.to_ne_bytes());
    write_all(fd, &b)
}

/// Whether `fd` is open in this process.
pub fn is_open(fd: c_int) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}
