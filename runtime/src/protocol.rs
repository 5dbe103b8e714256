//! The wire protocol between a fuzzer and a target built with this runtime.
//!
//! This module is the single written-down contract between the `cargo rfuzz`
//! engine and the runtime inside a fuzz target. It is compiled with and without
//! the `runtime` feature, so the fuzzer depends on exactly the same constants and
//! layouts that the target uses.
//!
//! Two protocols share the forkserver file descriptors:
//!
//! * **AFL++** (module [`afl`]): the AFL++ 4.20+ handshake (version 1). Any
//!   AFL++-compatible fuzzer (`afl-fuzz`, `afl-showmap`, LibAFL's forkserver)
//!   drives a target through it: fork per execution, or persistent mode where
//!   the child stops itself with `SIGSTOP` after each input and the forkserver
//!   relays its status.
//! * **direct** (module [`direct`]): our private fast path, chosen when the
//!   fuzzer sets [`direct::ENV_VAR`]. The persistent child talks to the fuzzer
//!   itself over the same pipes, the forkserver only forks and reports deaths,
//!   and one request can carry a whole batch of inputs that the child runs
//!   back to back, stopping early at the first one with new coverage.

/// File descriptor the target reads commands from (fuzzer → target).
pub const CONTROL_FD: i32 = 198;
/// File descriptor the target writes status words to (target → fuzzer).
pub const STATUS_FD: i32 = 199;

/// Environment variable with the SysV shared-memory id of the coverage map
/// (AFL++ protocol; the direct protocol passes its segment id over the pipe).
pub const SHM_ENV_VAR: &str = "__AFL_SHM_ID";
/// Environment variable with the SysV shared-memory id of the test-case buffer.
pub const SHM_FUZZ_ENV_VAR: &str = "__AFL_SHM_FUZZ_ID";
/// Set to `1` by AFL++ when it found [`PERSIST_SIG`] in the binary.
pub const PERSIST_ENV_VAR: &str = "__AFL_PERSISTENT";
/// AFL++ looks for this NUL-terminated string in a binary to enable persistent mode.
pub const PERSIST_SIG: &[u8] = b"##SIG_AFL_PERSISTENT##\0";
/// AFL++ refuses binaries that do not contain this NUL-terminated string.
pub const SHM_ENV_VAR_SIG: &[u8] = b"__AFL_SHM_ID\0";
/// Printed by `AFL_DUMP_MAP_SIZE=1 ./target` (AFL++ convention) and
/// `RFUZZ_INFO=1 ./target` (ours) so tools can size their maps without a handshake.
pub const DUMP_MAP_SIZE_ENV_VAR: &str = "AFL_DUMP_MAP_SIZE";
/// Largest single allocation in MiB (like libFuzzer's `-malloc_limit_mb`);
/// a larger one is reported as out-of-memory.
pub const MALLOC_LIMIT_ENV_VAR: &str = "RFUZZ_MALLOC_LIMIT_MB";
/// Set to `1` by the engine: record partial progress on wide compares as
/// extra coverage (see the runtime's `cmp` module).
pub const CMP_PROGRESS_ENV_VAR: &str = "RFUZZ_CMP_PROGRESS";
/// `RFUZZ_INFO=1 ./target` prints the runtime version, guard count and map size.
pub const INFO_ENV_VAR: &str = "RFUZZ_INFO";
/// Most processes the target may have running at once (`--max-procs`);
/// a spawn beyond it fails with `EAGAIN` and is counted as refused.
pub const MAX_PROCS_ENV_VAR: &str = "RFUZZ_MAX_PROCS";
/// Standalone mode: print a typed (`arbitrary`) input's `Debug` form before
/// running it (`cargo rfuzz tmin` shows it).
pub const PRINT_INPUT_ENV_VAR: &str = "RFUZZ_PRINT_INPUT";

/// Coverage map size for a number of guards: index 0 is reserved (AFL++ sets
/// it on every run so a map is never empty), guard ids start at 1, and the size
/// is rounded up to a multiple of 64 so maps can be scanned a `u64` at a time
/// without a tail.
pub const fn map_size_for_guards(guards: u32) -> u32 {
    let needed = guards + 1;
    needed.div_ceil(64) * 64
}

/// Hash of an execution path: a classified coverage map, fed one non-zero
/// `u64` word at a time with its word index. The runtime computes it while
/// scanning the map for new bits and the engine computes it on maps it
/// classified itself, so both must use this one definition.
#[derive(Debug, Clone, Copy)]
pub struct PathHasher(u64);

impl PathHasher {
    /// A hasher for a map of `len` bytes.
    #[inline]
    pub const fn new(len: usize) -> PathHasher {
        PathHasher(0x9e37_79b9_7f4a_7c15 ^ len as u64)
    }

    /// Adds non-zero classified word `w` found at word index `index`.
    #[inline]
    pub fn word(&mut self, index: usize, w: u64) {
        let m = (w ^ 0xa076_1d64_78bd_642f) as u128 * (index as u64 ^ 0xe703_7ed1_a0b4_28db) as u128;
        let x = (m as u64) ^ ((m >> 64) as u64);
        self.0 = (self.0 ^ x).rotate_left(23).wrapping_mul(0x9fb2_1c65_1e98_df25);
    }

    /// The hash.
    #[inline]
    pub const fn finish(self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

/// AFL's hit-count bucket of an 8-bit edge counter: 1, 2, 3, 4-7, 8-15,
/// 16-31, 32-127 and 128+ hits each get one bit, so a change of bucket is new
/// coverage and small variations are not.
pub const fn bucket(count: u8) -> u8 {
    match count {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 4,
        4..=7 => 8,
        8..=15 => 16,
        16..=31 => 32,
        32..=127 => 64,
        128..=255 => 128,
    }
}

/// [`bucket`] of every counter value.
pub static BUCKETS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = bucket(i as u8);
        i += 1;
    }
    t
};

/// What a coverage build (`cargo rfuzz coverage`) tells about one run.
///
/// A coverage build marks each basic block it enters in a byte flag
/// (SanitizerCoverage `inline-bool-flag`) and carries a table of the blocks'
/// addresses (`pc-table`). Run standalone with [`OUT_ENV_VAR`](coverage::OUT_ENV_VAR) set, the target
/// writes the flags to that file when the process ends: after its inputs
/// ran, on `exit`, and from the handlers of a panic's abort, a fatal signal
/// or a stack overflow (one `pwritev` of memory prepared at start-up), so a
/// crashing input's blocks count too. Killed with `SIGKILL` (a timeout), it
/// writes nothing. With [`PCS_ENV_VAR`](coverage::PCS_ENV_VAR) set it also writes the block table
/// at start-up, with addresses relative to the executable's load address
/// (what its symbols and line tables use, PIE or not).
///
/// ```text
/// flags file:  FLAGS_MAGIC (8 bytes) | n: u64 LE | n bytes, 0 = block not reached
/// pcs file:    PCS_MAGIC (8 bytes)   | n: u64 LE | n x (address: u64 LE, flags: u64 LE)
/// ```
///
/// Entry `i` of both is block `i`; [`PC_FUNCTION_ENTRY`](coverage::PC_FUNCTION_ENTRY) marks a function's
/// first block, and the blocks after it, up to the next entry, are that
/// function's.
pub mod coverage {
    /// Names the file a coverage build writes its block flags to.
    pub const OUT_ENV_VAR: &str = "RFUZZ_COVERAGE_OUT";
    /// Names the file a coverage build writes its block table to.
    pub const PCS_ENV_VAR: &str = "RFUZZ_COVERAGE_PCS";
    /// First bytes of a flags file.
    pub const FLAGS_MAGIC: &[u8; 8] = b"RFZCOVF1";
    /// First bytes of a block-table file.
    pub const PCS_MAGIC: &[u8; 8] = b"RFZCOVP1";
    /// Header size of both files.
    pub const HEADER: usize = 16;
    /// `pc-table` flag of a function's entry block.
    pub const PC_FUNCTION_ENTRY: u64 = 1;

    /// The 16-byte header of a file of `n` entries.
    pub fn header(magic: &[u8; 8], n: u64) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[..8].copy_from_slice(magic);
        h[8..].copy_from_slice(&n.to_le_bytes());
        h
    }

    fn body<'a>(data: &'a [u8], magic: &[u8; 8], entry: usize) -> Option<&'a [u8]> {
        if data.get(..8)? != magic {
            return None;
        }
        let n = usize::try_from(u64::from_le_bytes(data.get(8..16)?.try_into().ok()?)).ok()?;
        let body = &data[HEADER..];
        (body.len() == n.checked_mul(entry)?).then_some(body)
    }

    /// The flags of a flags file (one byte per block); `None` when the file
    /// is not one or is cut short.
    pub fn parse_flags(data: &[u8]) -> Option<&[u8]> {
        body(data, FLAGS_MAGIC, 1)
    }

    /// The `(address, flags)` entries of a block-table file; `None` when the
    /// file is not one or is cut short.
    pub fn parse_pcs(data: &[u8]) -> Option<Vec<(u64, u64)>> {
        let b = body(data, PCS_MAGIC, 16)?;
        Some(
            b.chunks_exact(16)
                .map(|c| {
                    let (pc, fl) = c.split_at(8);
                    (
                        u64::from_le_bytes(pc.try_into().unwrap_or_default()),
                        u64::from_le_bytes(fl.try_into().unwrap_or_default()),
                    )
                })
                .collect(),
        )
    }
}

/// Crash signatures as the runtime reports them and `cargo rfuzz triage`
/// computes them from replays: one definition for both sides.
///
/// A panic is identified by its location and the first line of its message
/// with every run of digits replaced by `N` (so "index 7 out of range for
/// length 3" and "index 9 out of range for length 5" are one bug).
pub mod signature {
    /// Longest message part of a key, in characters.
    pub const MESSAGE_CHARS: usize = 200;

    /// The key of a panic at `location` (`file:line:col`) with `message`
    /// (only its first line counts).
    pub fn panic_key(location: &str, message: &str) -> String {
        let first = message.lines().next().unwrap_or("").trim_end();
        let mut key = String::with_capacity(location.len() + first.len() + 8);
        key.push_str("panic|");
        key.push_str(location);
        key.push('|');
        let mut in_digits = false;
        for c in first.chars().take(MESSAGE_CHARS) {
            if c.is_ascii_digit() {
                if !in_digits {
                    key.push('N');
                }
                in_digits = true;
            } else {
                in_digits = false;
                key.push(c);
            }
        }
        key
    }

    /// 64-bit FNV-1a of a key followed by a NUL byte (the sync layout's
    /// hash of one part, so ids derived from it agree everywhere).
    pub fn hash(key: &str) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in key.as_bytes().iter().chain([0u8].iter()) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        h
    }

    /// The short id of a key shown to users (`triage`'s bug id).
    pub fn short_id(hash: u64) -> u32 {
        (hash >> 32) as u32
    }
}

/// Constants of the AFL++ 4.20+ forkserver protocol.
pub mod afl {
    /// `"AFL\0"`: prefix of the version word.
    pub const FS_VERSION: u32 = 0x4146_4c00;
    /// Highest handshake version spoken here.
    pub const FS_NEW_VERSION_MAX: u32 = 1;
    /// First word the target writes: `FS_VERSION + version`.
    pub const HELLO: u32 = FS_VERSION + FS_NEW_VERSION_MAX;
    /// The fuzzer's reply proving it speaks the new protocol.
    pub const HELLO_REPLY: u32 = HELLO ^ 0xffff_ffff;
    /// Option: the target sends its map size (one `u32`).
    pub const OPT_MAPSIZE: u32 = 0x0000_0001;
    /// Option: test cases come through shared memory (no data).
    pub const OPT_SHDMEM_FUZZ: u32 = 0x0000_0002;
    /// Option: the target sends an auto-dictionary (`u32` length, then bytes).
    pub const OPT_AUTODICT: u32 = 0x0000_0800;
    /// Error words are `ERROR | code`.
    pub const ERROR: u32 = 0xeffe_0000;
    /// The shared-memory map is too small for the target.
    pub const ERROR_MAP_SIZE: u32 = 1;
    /// `shmat` of the coverage map failed.
    pub const ERROR_SHMAT: u32 = 8;
    /// The test-case shared memory could not be attached.
    pub const ERROR_SHM_OPEN: u32 = 4;
    /// Largest test case AFL++ puts in shared memory.
    pub const MAX_FILE: usize = 1 << 20;
    /// Bytes before the data in the test-case segment: a native-endian `u32` length.
    pub const SHMEM_FUZZ_HDR_SIZE: usize = 4;
}

/// Line a standalone run prints when a fatal signal kills it, before its
/// backtrace: the recorded frames ([`direct::Header::frames`]) in hex, for
/// `cargo rfuzz triage` to name the bug exactly as the fuzzer did.
pub const FAULT_FRAMES_PREFIX: &str = "rfuzz: fault frames: ";

/// Our private protocol: persistent child answering the fuzzer directly, with
/// batches of inputs in one shared-memory segment.
///
/// ```text
/// fuzzer                         forkserver (target main)          child
///   spawn, env RFUZZ_DIRECT=1 ──►
///                           ◄── Hello { HELLO, VERSION, map_size, flags }
///   create segment, fill Header
///   [shm_id] ─────────────────►  attach, check Header
///                           ◄── [MSG_READY, 0]
///   [CMD_FORK] ───────────────►  fork ───────────────────────────► (loops)
///                           ◄── [MSG_PID, pid]
///   fill batch, [CMD_RUN] ──────────────────────────────────────►  run inputs
///                           ◄──────────────────────────────────── [MSG_DONE, stop index]
///   ... on a crash or a kill: forkserver's waitpid returns ...
///                           ◄── [MSG_DIED, wait status]
/// ```
///
/// Commands are one `u32`; replies are two (`[tag, value]`, 8 bytes, one
/// atomic pipe write). The forkserver reads commands only while it has no live
/// child and the child only while it is alive, so both share the pipes without
/// interleaving. The child records the index of the input it is running in
/// [`Header::cur_index`] before each run, so after a crash or a timeout the
/// fuzzer knows which input of the batch was responsible.
pub mod direct {
    use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};

    /// Set to [`VERSION`] (as decimal) by the engine to select this protocol.
    pub const ENV_VAR: &str = "RFUZZ_DIRECT";
    /// Protocol version (3 added [`Header::sanitizer_kind`], 4 added
    /// [`Header::crash_sig`] and [`Header::fault_pc`], 5
    /// [`Header::frames`]).
    pub const VERSION: u32 = 5;
    /// Stack frames a fatal signal records in [`Header::frames`].
    pub const FRAMES: usize = 16;
    /// When set, the forkserver points its stderr at /dev/null once the
    /// handshake succeeded (the fuzzer reads start-up errors before that).
    pub const SILENCE_ENV_VAR: &str = "RFUZZ_SILENCE_STDERR";
    /// Embedded in every binary built with this runtime: the engine looks for
    /// it to choose this protocol.
    pub const BINARY_SIG: &[u8] = b"##SIG_RFUZZ_DIRECT_V1##\0";
    /// `"RFZ"` + 1: the first word the target writes.
    pub const HELLO: u32 = 0x5246_5a01;
    /// Magic the fuzzer stores in [`Header::magic`].
    pub const SHM_MAGIC: u32 = 0x5246_5a53;

    /// Hello flag: the binary was built with compare tracing.
    pub const HELLO_FLAG_CMP: u32 = 1;

    /// Command to the forkserver: fork a child. Reply `[MSG_PID, pid]`.
    pub const CMD_FORK: u32 = 1;
    /// Command to the child: run inputs `batch_start..batch_count` of the
    /// table. Reply `[MSG_DONE, index]`: the index where it stopped, equal to
    /// `batch_count` when it ran them all.
    pub const CMD_RUN: u32 = 2;
    /// Command to the child: exit cleanly (the forkserver then reports
    /// `[MSG_DIED, status]` with a normal exit status).
    pub const CMD_EXIT: u32 = 3;

    /// Reply: the segment is attached, the forkserver waits for commands.
    pub const MSG_READY: u32 = 0x5200_0001;
    /// Reply: the pid of a new child.
    pub const MSG_PID: u32 = 0x5200_0002;
    /// Reply: a run command finished; value is the stop index.
    pub const MSG_DONE: u32 = 0x5200_0003;
    /// Reply from the forkserver: the child is gone; value is its wait status.
    pub const MSG_DIED: u32 = 0x5200_0004;
    /// Reply: an error during the handshake; value is one of `ERR_*`.
    pub const MSG_ERROR: u32 = 0x5200_00ee;

    /// Handshake error: `shmat` failed.
    pub const ERR_SHMAT: u32 = 1;
    /// Handshake error: the header's magic, version or layout is wrong.
    pub const ERR_LAYOUT: u32 = 2;

    /// [`Header::flags`]: stop the batch after the first input whose coverage
    /// has bits that are still set in the virgin map.
    pub const RUN_STOP_ON_NEW: u32 = 1;
    /// [`Header::flags`]: record compare operands into the compare log.
    pub const RUN_CMPLOG: u32 = 2;
    /// [`Header::flags`]: count each input's path in the path-count table
    /// (`paths[hash % len] += 1`), for power schedules that favour rarely
    /// hit paths.
    pub const RUN_COUNT_PATHS: u32 = 4;

    /// Sent by the fuzzer to a hung child before killing it: the child copies
    /// its coverage counters into the shared map and sets
    /// [`Header::map_dumped`].
    pub const DUMP_SIGNAL: i32 = 12; // SIGUSR2 on Linux

    /// [`Header::exit_reason`]: nothing recorded.
    pub const EXIT_NONE: u32 = 0;
    /// [`Header::exit_reason`]: a Rust panic (the hook aborts after setting it).
    pub const EXIT_PANIC: u32 = 1;
    /// [`Header::exit_reason`]: an allocation failed or exceeded the limit.
    pub const EXIT_OOM: u32 = 2;
    /// [`Header::exit_reason`]: the stack overflowed.
    pub const EXIT_STACK_OVERFLOW: u32 = 3;
    /// [`Header::exit_reason`]: a sanitizer reported an error; its kind
    /// (ASan's bug type, e.g. `heap-buffer-overflow`) is in
    /// [`Header::sanitizer_kind`].
    pub const EXIT_SANITIZER: u32 = 4;

    /// Bytes of [`Header::sanitizer_kind`] (NUL-padded ASCII).
    pub const SANITIZER_KIND_LEN: usize = 48;

    /// One input of a batch: where its bytes are in the data area.
    #[repr(C)]
    #[derive(Debug)]
    pub struct Entry {
        /// Offset from the start of the data area.
        pub offset: AtomicU32,
        /// Length in bytes.
        pub len: AtomicU32,
    }

    /// Control block at offset 0 of the shared segment.
    ///
    /// Every field is an atomic: the segment is shared between processes, and
    /// each field has one writer at a time (the fuzzer before a command, the
    /// child while it runs), ordered by the pipe messages between them.
    #[repr(C)]
    #[derive(Debug)]
    pub struct Header {
        /// [`SHM_MAGIC`], written by the fuzzer.
        pub magic: AtomicU32,
        /// [`VERSION`].
        pub version: AtomicU32,
        /// Total segment size in bytes.
        pub total_size: AtomicU32,
        /// Offset of the coverage map.
        pub map_off: AtomicU32,
        /// Coverage map size (from the hello message).
        pub map_size: AtomicU32,
        /// Offset of the virgin map (the fuzzer's; the child only reads it).
        pub virgin_off: AtomicU32,
        /// Offset of the batch table (`[Entry; table_cap]`).
        pub table_off: AtomicU32,
        /// Capacity of the batch table.
        pub table_cap: AtomicU32,
        /// Offset of the data area.
        pub data_off: AtomicU32,
        /// Capacity of the data area in bytes.
        pub data_cap: AtomicU32,
        /// Offset of the compare log.
        pub cmp_off: AtomicU32,
        /// Size of the compare log in bytes.
        pub cmp_size: AtomicU32,
        /// Offset of the path-count table (`[AtomicU32; paths_len]`).
        pub paths_off: AtomicU32,
        /// Entries of the path-count table (a power of two).
        pub paths_len: AtomicU32,
        /// First table index to run (fuzzer → child).
        pub batch_start: AtomicU32,
        /// One past the last table index to run (fuzzer → child).
        pub batch_count: AtomicU32,
        /// `RUN_*` flags for this command (fuzzer → child).
        pub flags: AtomicU32,
        /// Index of the input being run (child → fuzzer).
        pub cur_index: AtomicU32,
        /// `EXIT_*`: why the child is about to die (child → fuzzer).
        pub exit_reason: AtomicU32,
        /// Set by the child when it published its coverage on the fuzzer's
        /// [`DUMP_SIGNAL`] (before the fuzzer kills a hung run).
        pub map_dumped: AtomicU32,
        /// Incremented at the start of every input (child → fuzzer), so a
        /// watchdog can tell a slow batch from a hung input.
        pub exec_seq: AtomicU64,
        /// Processes the target started (fork, posix_spawn, system, popen),
        /// over all persistent children (child → fuzzer).
        pub procs_started: AtomicU64,
        /// The target's processes still running when their input ended, which
        /// the runtime killed (child → fuzzer).
        pub procs_killed: AtomicU64,
        /// Spawns refused because the target already had `--max-procs`
        /// processes running (child → fuzzer).
        pub procs_refused: AtomicU64,
        /// With [`EXIT_SANITIZER`]: the kind of error the sanitizer
        /// reported, NUL-padded (child → fuzzer).
        pub sanitizer_kind: [AtomicU8; SANITIZER_KIND_LEN],
        /// With [`EXIT_PANIC`]: [`super::signature::hash`] of the panic's
        /// [`super::signature::panic_key`], written by the panic hook
        /// (child → fuzzer; 0: none).
        pub crash_sig: AtomicU64,
        /// Offset from the executable's load address of the instruction
        /// that faulted (SIGSEGV, SIGBUS, SIGILL, SIGFPE) or that a hung run
        /// was interrupted at by [`DUMP_SIGNAL`] (child → fuzzer; 0: unknown).
        pub fault_pc: AtomicU64,
        /// With a fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE, not a stack
        /// overflow): the interrupted function's instruction and the return
        /// addresses above it, innermost first, each minus one where it is a
        /// return address (so it lies in the call's line), as offsets from
        /// the executable's load address (absolute for other modules); 0
        /// ends the list (child → fuzzer).
        pub frames: [AtomicU64; FRAMES],
    }

    impl Header {
        /// Stores a sanitizer's error kind (cut to fit; async-signal-safe).
        pub fn set_sanitizer_kind(&self, kind: &[u8]) {
            for (i, slot) in self.sanitizer_kind.iter().enumerate() {
                slot.store(kind.get(i).copied().unwrap_or(0), Relaxed);
            }
        }

        /// The sanitizer's error kind stored by the child.
        pub fn sanitizer_kind(&self) -> Vec<u8> {
            self.sanitizer_kind.iter().map(|b| b.load(Relaxed)).take_while(|&b| b != 0).collect()
        }
    }

    /// Size reserved for the header: one page, so the areas after it are aligned.
    pub const HEADER_SIZE: usize = 4096;

    /// Where each area of the segment lives.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Layout {
        /// Coverage map offset.
        pub map_off: usize,
        /// Coverage map size.
        pub map_size: usize,
        /// Virgin map offset.
        pub virgin_off: usize,
        /// Batch table offset.
        pub table_off: usize,
        /// Batch table capacity (entries).
        pub table_cap: usize,
        /// Data area offset.
        pub data_off: usize,
        /// Data area capacity.
        pub data_cap: usize,
        /// Compare log offset.
        pub cmp_off: usize,
        /// Compare log size.
        pub cmp_size: usize,
        /// Path-count table offset.
        pub paths_off: usize,
        /// Path-count table entries (a power of two).
        pub paths_len: usize,
        /// Total size.
        pub total_size: usize,
    }

    const fn align_up(x: usize, to: usize) -> usize {
        x.div_ceil(to) * to
    }

    impl Layout {
        /// Lays out a segment: header, map, virgin map, table, data, compare log,
        /// each area page-aligned.
        pub const fn new(
            map_size: usize,
            table_cap: usize,
            data_cap: usize,
            cmp_size: usize,
            paths_len: usize,
        ) -> Layout {
            let page = 4096;
            let map_off = HEADER_SIZE;
            let virgin_off = align_up(map_off + map_size, page);
            let table_off = align_up(virgin_off + map_size, page);
            let data_off = align_up(table_off + table_cap * core::mem::size_of::<Entry>(), page);
            let cmp_off = align_up(data_off + data_cap, page);
            let paths_off = align_up(cmp_off + cmp_size, page);
            let total_size = align_up(paths_off + paths_len * 4, page);
            Layout {
                map_off,
                map_size,
                virgin_off,
                table_off,
                table_cap,
                data_off,
                data_cap,
                cmp_off,
                cmp_size,
                paths_off,
                paths_len,
                total_size,
            }
        }

        /// Reads the layout a fuzzer stored in a header.
        pub fn from_header(h: &Header) -> Layout {
            use core::sync::atomic::Ordering::Relaxed;
            Layout {
                map_off: h.map_off.load(Relaxed) as usize,
                map_size: h.map_size.load(Relaxed) as usize,
                virgin_off: h.virgin_off.load(Relaxed) as usize,
                table_off: h.table_off.load(Relaxed) as usize,
                table_cap: h.table_cap.load(Relaxed) as usize,
                data_off: h.data_off.load(Relaxed) as usize,
                data_cap: h.data_cap.load(Relaxed) as usize,
                cmp_off: h.cmp_off.load(Relaxed) as usize,
                cmp_size: h.cmp_size.load(Relaxed) as usize,
                paths_off: h.paths_off.load(Relaxed) as usize,
                paths_len: h.paths_len.load(Relaxed) as usize,
                total_size: h.total_size.load(Relaxed) as usize,
            }
        }

        /// Stores this layout in a header.
        pub fn store(&self, h: &Header) {
            use core::sync::atomic::Ordering::Relaxed;
            h.magic.store(SHM_MAGIC, Relaxed);
            h.version.store(VERSION, Relaxed);
            h.total_size.store(self.total_size as u32, Relaxed);
            h.map_off.store(self.map_off as u32, Relaxed);
            h.map_size.store(self.map_size as u32, Relaxed);
            h.virgin_off.store(self.virgin_off as u32, Relaxed);
            h.table_off.store(self.table_off as u32, Relaxed);
            h.table_cap.store(self.table_cap as u32, Relaxed);
            h.data_off.store(self.data_off as u32, Relaxed);
            h.data_cap.store(self.data_cap as u32, Relaxed);
            h.cmp_off.store(self.cmp_off as u32, Relaxed);
            h.cmp_size.store(self.cmp_size as u32, Relaxed);
            h.paths_off.store(self.paths_off as u32, Relaxed);
            h.paths_len.store(self.paths_len as u32, Relaxed);
        }

        /// Checks that every area lies inside the segment and does not overlap
        /// the header, so a child can trust the offsets it was given.
        pub fn is_valid(&self, segment_size: usize) -> bool {
            let end = |off: usize, len: usize| off.checked_add(len);
            let areas = [
                (self.map_off, self.map_size),
                (self.virgin_off, self.map_size),
                (self.table_off, self.table_cap.saturating_mul(core::mem::size_of::<Entry>())),
                (self.data_off, self.data_cap),
                (self.cmp_off, self.cmp_size),
                (self.paths_off, self.paths_len.saturating_mul(4)),
            ];
            self.paths_len.is_power_of_two()
                && self.total_size <= segment_size
                && areas.iter().all(|&(off, len)| {
                    off >= HEADER_SIZE && off % 8 == 0 && matches!(end(off, len), Some(e) if e <= self.total_size)
                })
        }
    }
}

/// Compare log: operands of the compares the target executed, recorded only
/// when the fuzzer asks for it ([`direct::RUN_CMPLOG`]).
///
/// The log is a header followed by fixed-size records. Integer compares store
/// both operands widened to `u64`; byte-string compares store up to
/// [`cmplog::BYTES_MAX`] bytes of each side.
pub mod cmplog {
    use core::sync::atomic::AtomicU32;

    /// Record kind: integer compare (`size` = 1, 2, 4 or 8 bytes).
    pub const KIND_INT: u8 = 1;
    /// Record kind: a case of a `switch` (operand vs. one case constant).
    pub const KIND_SWITCH: u8 = 2;
    /// Record kind: byte strings (memcmp, bcmp, slice equality).
    pub const KIND_BYTES: u8 = 3;
    /// Bytes of each side kept for byte-string compares.
    pub const BYTES_MAX: usize = 32;

    /// Header of the compare log area.
    #[repr(C)]
    #[derive(Debug)]
    pub struct LogHeader {
        /// Number of records written (may exceed capacity; extra ones are dropped).
        pub count: AtomicU32,
        /// Capacity in records.
        pub capacity: AtomicU32,
    }

    /// One compare.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Record {
        /// `KIND_*`.
        pub kind: u8,
        /// Operand size in bytes (for byte strings: bytes stored, up to `BYTES_MAX`).
        pub size: u8,
        /// 1 when one operand is a compile-time constant.
        pub is_const: u8,
        /// Reserved.
        pub reserved: u8,
        /// Identifier of the compare site (hash of its return address).
        pub site: u32,
        /// First operand (integers), or first `BYTES_MAX` bytes packed (strings).
        pub a: [u8; BYTES_MAX],
        /// Second operand.
        pub b: [u8; BYTES_MAX],
    }

    /// Size of the log header area (keeps records 8-byte aligned).
    pub const HEADER_SIZE: usize = 64;

    /// Size in bytes of a log holding `records` records.
    pub const fn log_size(records: usize) -> usize {
        HEADER_SIZE + records * core::mem::size_of::<Record>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_size_reserves_index_zero_and_rounds_to_words() {
        assert_eq!(map_size_for_guards(0), 64);
        assert_eq!(map_size_for_guards(63), 64);
        assert_eq!(map_size_for_guards(64), 128);
        assert_eq!(map_size_for_guards(19), 64);
    }

    #[test]
    fn coverage_files_round_trip_and_refuse_short_ones() {
        let mut f = coverage::header(coverage::FLAGS_MAGIC, 3).to_vec();
        f.extend_from_slice(&[1, 0, 1]);
        assert_eq!(coverage::parse_flags(&f), Some(&[1u8, 0, 1][..]));
        assert_eq!(coverage::parse_flags(&f[..f.len() - 1]), None, "cut short");
        assert_eq!(coverage::parse_pcs(&f), None, "wrong magic");
        let mut p = coverage::header(coverage::PCS_MAGIC, 2).to_vec();
        for v in [0x1000u64, 1, 0x1010, 0] {
            p.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(coverage::parse_pcs(&p), Some(vec![(0x1000, 1), (0x1010, 0)]));
        let mut huge = coverage::header(coverage::PCS_MAGIC, u64::MAX).to_vec();
        huge.extend_from_slice(&[0; 16]);
        assert_eq!(coverage::parse_pcs(&huge), None, "a count that overflows is refused");
    }

    #[test]
    fn panic_keys_normalise_digits_and_keep_the_first_line() {
        use super::signature::*;
        let a = panic_key("src/lib.rs:3:5", "index 7 out of range for length 3\nmore");
        assert_eq!(a, "panic|src/lib.rs:3:5|index N out of range for length N");
        assert_eq!(a, panic_key("src/lib.rs:3:5", "index 1234 out of range for length 5   "));
        assert_ne!(a, panic_key("src/lib.rs:3:6", "index 7 out of range for length 3"));
        assert_ne!(hash("a"), hash("b"));
    }

    #[test]
    fn dump_signal_is_sigusr2() {
        assert_eq!(direct::DUMP_SIGNAL, libc::SIGUSR2);
    }

    #[test]
    fn afl_handshake_words_match_afl_plus_plus() {
        assert_eq!(afl::HELLO, 0x4146_4c01);
        assert_eq!(afl::HELLO_REPLY, 0xbeb9_b3fe);
    }

    #[test]
    fn layout_areas_are_inside_and_aligned() {
        let l = direct::Layout::new(1024, 16, 1 << 20, cmplog::log_size(8), 1 << 10);
        assert!(l.is_valid(l.total_size));
        assert!(!l.is_valid(l.total_size - 1));
        assert_eq!(l.map_off % 4096, 0);
        assert!(l.virgin_off >= l.map_off + 1024);
        assert!(l.paths_off >= l.cmp_off + l.cmp_size);
        let mut bad = l;
        bad.data_off = 8;
        assert!(!bad.is_valid(l.total_size));
        let mut overflow = l;
        overflow.cmp_size = usize::MAX;
        assert!(!overflow.is_valid(usize::MAX));
    }
}
