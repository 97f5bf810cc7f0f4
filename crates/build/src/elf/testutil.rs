//! Helpers shared by the ELF resolver's tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::ResolvedFile;
use super::parse::{
    Class, DT_NEEDED, DT_NULL, DT_RUNPATH, DT_STRSZ, DT_STRTAB, ELF_MAGIC, Endian, PT_DYNAMIC,
    PT_INTERP, PT_LOAD,
};

/// A temporary directory removed on drop (this module has no tempfile to lean on).
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("kiln-elf-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(super) fn images(files: &[ResolvedFile]) -> Vec<&str> {
    files.iter().map(|file| file.image_path.as_str()).collect()
}

/// A minimal ELF file: header, PT_LOAD over everything, PT_INTERP, PT_DYNAMIC.
pub(super) fn synthetic_elf(
    class: Class,
    endian: Endian,
    machine: u16,
    e_type: u16,
    interp: Option<&str>,
    needed: &[&str],
    runpath: Option<&str>,
) -> Vec<u8> {
    let wide = class == Class::Elf64;
    let (ehsize, phentsize, dynsize) = if wide { (64, 56, 16) } else { (52, 32, 8) };
    let vbase: u64 = 0x40_0000;
    let put = |out: &mut Vec<u8>, value: u64, size: usize| match endian {
        Endian::Little => out.extend_from_slice(&value.to_le_bytes()[..size]),
        Endian::Big => out.extend_from_slice(&value.to_be_bytes()[8 - size..]),
    };
    let word = if wide { 8 } else { 4 };
    // String table.
    let mut strtab = vec![0u8];
    let mut offset_of = |s: &str| {
        let at = strtab.len() as u64;
        strtab.extend_from_slice(s.as_bytes());
        strtab.push(0);
        at
    };
    let needed_offsets: Vec<u64> = needed.iter().map(|name| offset_of(name)).collect();
    let runpath_offset = runpath.map(&mut offset_of);
    let interp_bytes = interp
        .map(|i| [i.as_bytes(), b"\0"].concat())
        .unwrap_or_default();
    let phnum = 1 + usize::from(interp.is_some()) + 1;
    let ph_off = ehsize;
    let interp_off = ph_off + phnum * phentsize;
    let strtab_off = interp_off + interp_bytes.len();
    let dyn_off = strtab_off + strtab.len();
    let dyn_entries = needed.len() + usize::from(runpath.is_some()) + 3;
    let total = dyn_off + dyn_entries * dynsize;

    let mut out = Vec::new();
    out.extend_from_slice(&ELF_MAGIC);
    out.push(if wide { 2 } else { 1 });
    out.push(if endian == Endian::Little { 1 } else { 2 });
    out.push(1);
    out.resize(16, 0);
    put(&mut out, u64::from(e_type), 2);
    put(&mut out, u64::from(machine), 2);
    put(&mut out, 1, 4); // e_version
    put(&mut out, 0, word); // e_entry
    put(&mut out, ph_off as u64, word); // e_phoff
    put(&mut out, 0, word); // e_shoff
    put(&mut out, 0, 4); // e_flags
    put(&mut out, ehsize as u64, 2);
    put(&mut out, phentsize as u64, 2);
    put(&mut out, phnum as u64, 2);
    put(&mut out, 0, 2); // e_shentsize
    put(&mut out, 0, 2); // e_shnum
    put(&mut out, 0, 2); // e_shstrndx
    assert_eq!(out.len(), ehsize);
    let phdr = |out: &mut Vec<u8>, kind: u32, offset: usize, size: usize| {
        let (offset, size) = (offset as u64, size as u64);
        put(out, u64::from(kind), 4);
        if wide {
            put(out, 4, 4); // p_flags
        }
        put(out, offset, word);
        put(out, vbase + offset, word);
        put(out, vbase + offset, word);
        put(out, size, word);
        put(out, size, word);
        if !wide {
            put(out, 4, 4); // p_flags
        }
        put(out, 0x1000, word);
    };
    phdr(&mut out, PT_LOAD, 0, total);
    if interp.is_some() {
        phdr(&mut out, PT_INTERP, interp_off, interp_bytes.len());
    }
    phdr(&mut out, PT_DYNAMIC, dyn_off, dyn_entries * dynsize);
    out.extend_from_slice(&interp_bytes);
    out.extend_from_slice(&strtab);
    let strtab_len = strtab.len() as u64;
    let dynamic = |out: &mut Vec<u8>, tag: u64, value: u64| {
        put(out, tag, word);
        put(out, value, word);
    };
    for offset in needed_offsets {
        dynamic(&mut out, DT_NEEDED, offset);
    }
    if let Some(offset) = runpath_offset {
        dynamic(&mut out, DT_RUNPATH, offset);
    }
    dynamic(&mut out, DT_STRTAB, vbase + strtab_off as u64);
    dynamic(&mut out, DT_STRSZ, strtab_len);
    dynamic(&mut out, DT_NULL, 0);
    assert_eq!(out.len(), total);
    out
}
