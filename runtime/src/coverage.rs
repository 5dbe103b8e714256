//! Coverage builds (`cargo rfuzz coverage`): which basic blocks a run
//! reached, for a line-by-line report (the file formats are in
//! [`crate::protocol::coverage`]).
//!
//! Such a build marks every block it enters in a byte flag (SanitizerCoverage
//! `inline-bool-flag`, registered through [`__sanitizer_cov_bool_flag_init`])
//! and carries the table of the blocks' addresses (`pc-table`, registered
//! through `__sanitizer_cov_pcs_init`). Fuzzing builds have neither: the
//! flags are not part of the fuzzer's coverage map.
//!
//! The flags are written when the process ends, on every path that lets the
//! runtime run: a normal end or `exit` (atexit), a panic's abort, a fatal
//! signal and a stack overflow (the handlers in `guard`). Those paths may
//! run in a signal handler, so everything is prepared at start-up: the file
//! is open and the I/O vector (header, then each flag array) is built; the
//! dump is one `pwritev` at offset 0 (async-signal-safe, and idempotent when
//! two paths dump).

use crate::protocol::coverage as proto;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicUsize, Ordering::Relaxed};
use std::ffi::OsString;

/// Most distinct flag or pc-table arrays (the linker makes one of each per
/// binary; several only with unusual linking).
const MAX_ARRAYS: usize = 64;

/// `[start, end)` byte ranges registered by module constructors.
struct Ranges {
    start: [AtomicUsize; MAX_ARRAYS],
    end: [AtomicUsize; MAX_ARRAYS],
    len: AtomicUsize,
}

impl Ranges {
    const fn new() -> Ranges {
        Ranges {
            start: [const { AtomicUsize::new(0) }; MAX_ARRAYS],
            end: [const { AtomicUsize::new(0) }; MAX_ARRAYS],
            len: AtomicUsize::new(0),
        }
    }

    /// Adds a range unless it is one already known (every constructor of a
    /// binary passes the same whole section).
    fn add(&self, s: usize, e: usize) {
        if e <= s {
            return;
        }
        let n = self.len.load(Relaxed).min(MAX_ARRAYS);
        if (0..n).any(|i| s >= self.start[i].load(Relaxed) && e <= self.end[i].load(Relaxed)) {
            return;
        }
        if n < MAX_ARRAYS {
            self.start[n].store(s, Relaxed);
            self.end[n].store(e, Relaxed);
            self.len.store(n + 1, Relaxed);
        }
    }

    /// The ranges in address order (the order of the blocks in the binary).
    fn sorted(&self) -> Vec<(usize, usize)> {
        let n = self.len.load(Relaxed).min(MAX_ARRAYS);
        let mut v: Vec<(usize, usize)> =
            (0..n).map(|i| (self.start[i].load(Relaxed), self.end[i].load(Relaxed))).collect();
        v.sort_unstable();
        v
    }
}

static FLAGS: Ranges = Ranges::new();
static PCS: Ranges = Ranges::new();

/// The open flags file, or -1.
static OUT_FD: AtomicI32 = AtomicI32::new(-1);
/// The prepared I/O vector of a dump and its length.
static OUT_IOV: AtomicPtr<libc::iovec> = AtomicPtr::new(core::ptr::null_mut());
static OUT_IOV_LEN: AtomicUsize = AtomicUsize::new(0);

/// Called by each module constructor of a coverage build with its block
/// flags.
///
/// # Safety
/// Called by LLVM-generated code with a valid `[start, stop)` range.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __sanitizer_cov_bool_flag_init(start: *mut bool, stop: *mut bool) {
    FLAGS.add(start as usize, stop as usize);
}

/// Records a `pc-table` (from `__sanitizer_cov_pcs_init`).
pub(crate) fn register_pcs(beg: *const usize, end: *const usize) {
    PCS.add(beg as usize, end as usize);
}

/// The executable's load bias: what to subtract from a run-time address
/// to get the address its symbols and line tables use. Found as the bias of
/// the loaded object whose segments contain `addr`.
fn load_bias(addr: usize) -> usize {
    struct Probe {
        addr: usize,
        bias: Option<usize>,
    }
    unsafe extern "C" fn visit(info: *mut libc::dl_phdr_info, _size: usize, data: *mut libc::c_void) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info and our `Probe`.
        unsafe {
            let probe = &mut *(data as *mut Probe);
            let info = &*info;
            for i in 0..info.dlpi_phnum as usize {
                let ph = &*info.dlpi_phdr.add(i);
                let lo = (info.dlpi_addr as usize).wrapping_add(ph.p_vaddr as usize);
                if ph.p_type == libc::PT_LOAD && probe.addr >= lo && probe.addr < lo + ph.p_memsz as usize {
                    probe.bias = Some(info.dlpi_addr as usize);
                    return 1;
                }
            }
            0
        }
    }
    let mut probe = Probe { addr, bias: None };
    // SAFETY: the callback only reads the headers it is given and writes
    // the probe, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), &mut probe as *mut Probe as *mut libc::c_void) };
    probe.bias.unwrap_or(0)
}

/// The block table: `(address relative to the load bias, flags)`.
fn block_table() -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for (s, e) in PCS.sorted() {
        let bias = load_bias(s);
        let n = (e - s) / (2 * size_of::<usize>());
        // SAFETY: a pc-table registered by a module constructor: `n` pairs
        // of usize, in the binary's data for the life of the process.
        let table = unsafe { core::slice::from_raw_parts(s as *const usize, 2 * n) };
        out.extend(table.chunks_exact(2).map(|p| (p[0].wrapping_sub(bias) as u64, p[1] as u64)));
    }
    out
}

fn open_out(path: &OsString) -> std::io::Result<i32> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: a NUL-terminated path; the descriptor is ours for good.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC, 0o600) };
    if fd < 0 { Err(std::io::Error::last_os_error()) } else { Ok(fd) }
}

/// Reads the coverage variables: writes the block table when asked, and
/// prepares the dump of the flags. Exits with status 2 when a file cannot be
/// written (the report would be wrong without it).
pub fn init() {
    let pcs_path = std::env::var_os(proto::PCS_ENV_VAR).filter(|p| !p.is_empty());
    let out_path = std::env::var_os(proto::OUT_ENV_VAR).filter(|p| !p.is_empty());
    if pcs_path.is_none() && out_path.is_none() {
        return;
    }
    let fail = |what: &str, e: std::io::Error| -> ! {
        eprintln!("rfuzz: failed to write the coverage {what}: {e}");
        std::process::exit(2)
    };
    if let Some(p) = pcs_path {
        let table = block_table();
        let mut bytes = proto::header(proto::PCS_MAGIC, table.len() as u64).to_vec();
        for (pc, fl) in table {
            bytes.extend_from_slice(&pc.to_le_bytes());
            bytes.extend_from_slice(&fl.to_le_bytes());
        }
        if let Err(e) = std::fs::write(&p, bytes) {
            fail("block table", e);
        }
    }
    if let Some(p) = out_path {
        let fd = open_out(&p).unwrap_or_else(|e| fail("flags", e));
        let arrays = FLAGS.sorted();
        let n: usize = arrays.iter().map(|(s, e)| e - s).sum();
        let header: &'static [u8; proto::HEADER] = Box::leak(Box::new(proto::header(proto::FLAGS_MAGIC, n as u64)));
        let mut iov = vec![libc::iovec { iov_base: header.as_ptr() as *mut libc::c_void, iov_len: header.len() }];
        iov.extend(arrays.iter().map(|&(s, e)| libc::iovec { iov_base: s as *mut libc::c_void, iov_len: e - s }));
        let iov: &'static mut [libc::iovec] = iov.leak();
        OUT_IOV_LEN.store(iov.len(), Relaxed);
        OUT_IOV.store(iov.as_mut_ptr(), Relaxed);
        OUT_FD.store(fd, Relaxed);
    }
}

/// Writes the flags of this process so far to the prepared file.
/// Async-signal-safe: one `pwritev` of memory prepared by [`init`].
pub fn dump() {
    let fd = OUT_FD.load(Relaxed);
    let iov = OUT_IOV.load(Relaxed);
    if fd < 0 || iov.is_null() {
        return;
    }
    // SAFETY: `iov` points to OUT_IOV_LEN leaked iovecs that describe the
    // leaked header and the flag arrays, all valid for the whole process.
    unsafe { libc::pwritev(fd, iov, OUT_IOV_LEN.load(Relaxed) as libc::c_int, 0) };
}
