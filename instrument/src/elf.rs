//! Reading what a build put into a binary: the size of a named section of a
//! 64-bit little-endian ELF file (the only format the targets are built
//! in). Used to count C edges: clang's `pc-table` (added for C/C++ only)
//! writes one 16-byte `(pc, flags)` entry per edge into `__sancov_pcs`.
//! Counting at run time cannot work in `pc-guard` builds, where the linker
//! keeps a single SanitizerCoverage constructor for Rust and C together.

use std::path::Path;

/// Section of clang's `pc-table`.
pub const PC_TABLE_SECTION: &str = "__sancov_pcs";

/// Bytes per `pc-table` entry on 64-bit targets.
pub const PC_TABLE_ENTRY: u64 = 16;

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Size of section `name` in an ELF64 little-endian image; `None` when the
/// image is not one or has no such section.
pub fn section_size_in(image: &[u8], name: &str) -> Option<u64> {
    // e_ident: magic, ELFCLASS64 (2), ELFDATA2LSB (1).
    if image.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let shoff = usize::try_from(u64_at(image, 0x28)?).ok()?;
    let shentsize = u16_at(image, 0x3a)? as usize;
    let shnum = u16_at(image, 0x3c)? as usize;
    let shstrndx = u16_at(image, 0x3e)? as usize;
    if shentsize < 0x40 {
        return None;
    }
    let header = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    let strtab = usize::try_from(u64_at(image, header(shstrndx)? + 0x18)?).ok()?;
    (0..shnum).find_map(|i| {
        let h = header(i)?;
        let name_off = strtab.checked_add(u32_at(image, h)? as usize)?;
        let rest = image.get(name_off..)?;
        let end = rest.iter().position(|&c| c == 0)?;
        (&rest[..end] == name.as_bytes()).then(|| u64_at(image, h + 0x20)).flatten()
    })
}

/// Number of C/C++ edges in a built binary (entries of its `pc-table`), or
/// `None` when it cannot be read.
pub fn c_edges(binary: &Path) -> Option<u64> {
    let image = std::fs::read(binary).ok()?;
    if image.get(..4)? != b"\x7fELF" {
        return None;
    }
    Some(section_size_in(&image, PC_TABLE_SECTION).unwrap_or(0) / PC_TABLE_ENTRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 image: null section, `.shstrtab`, and a section
    /// `__sancov_pcs` of `size` bytes.
    fn image(size: u64) -> Vec<u8> {
        let names = b"\0.shstrtab\0__sancov_pcs\0";
        let mut img = vec![0u8; 0x40];
        img[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let strtab_off = img.len() as u64;
        img.extend_from_slice(names);
        let shoff = img.len() as u64;
        img[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        img[0x3a..0x3c].copy_from_slice(&0x40u16.to_le_bytes());
        img[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        img[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        for (name, off, sz) in [(0u32, 0u64, 0u64), (1, strtab_off, names.len() as u64), (11, 0, size)] {
            let mut h = vec![0u8; 0x40];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&off.to_le_bytes());
            h[0x20..0x28].copy_from_slice(&sz.to_le_bytes());
            img.extend_from_slice(&h);
        }
        img
    }

    #[test]
    fn finds_a_section_by_name() {
        assert_eq!(section_size_in(&image(12 * 16), PC_TABLE_SECTION), Some(192));
        assert_eq!(section_size_in(&image(0), ".text"), None);
        assert_eq!(section_size_in(b"\x7fELF\x01\x01", PC_TABLE_SECTION), None, "32-bit images are not read");
        let mut cut = image(16);
        cut.truncate(0x50);
        assert_eq!(section_size_in(&cut, PC_TABLE_SECTION), None, "truncated images are refused, not read past");
    }

    #[test]
    fn reads_this_test_binary() {
        let me = std::env::current_exe().unwrap();
        assert_eq!(c_edges(&me), Some(0), "Rust code has no pc-table");
        let image = std::fs::read(&me).unwrap();
        assert!(section_size_in(&image, ".text").is_some_and(|n| n > 0));
    }
}
