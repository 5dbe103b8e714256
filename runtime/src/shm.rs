//! Attaching SysV shared-memory segments created by the fuzzer.

/// A segment mapped into this process for the rest of its life.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    /// Start of the mapping.
    pub ptr: *mut u8,
    /// Size of the segment in bytes (from `IPC_STAT`).
    pub size: usize,
}

/// Attaches segment `id`. The mapping is never detached: the map must outlive
/// every instrumented edge, including those run by `atexit` handlers.
pub fn attach(id: i32) -> Option<Segment> {
    // SAFETY: shmat with a null address lets the kernel choose where to map;
    // failure is reported as (void*)-1 and checked below.
    let p = unsafe { libc::shmat(id, core::ptr::null(), 0) };
    if p as isize == -1 || p.is_null() {
        return None;
    }
    // SAFETY: an all-zero shmid_ds is a valid value for IPC_STAT to fill in.
    let mut ds: libc::shmid_ds = unsafe { core::mem::zeroed() };
    // SAFETY: `ds` is a valid out-parameter for IPC_STAT.
    let size = if unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) } == 0 { ds.shm_segsz } else { 0 };
    Some(Segment { ptr: p.cast(), size })
}

/// Attaches the segment whose id is in environment variable `var`.
/// `None` if the variable is absent; `Some(None)` if it is set but unusable.
pub fn attach_env(var: &str) -> Option<Option<Segment>> {
    let value = std::env::var(var).ok()?;
    Some(value.trim().parse::<i32>().ok().and_then(attach))
}
