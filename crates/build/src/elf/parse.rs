//! ELF parsing: only what dependency resolution needs (header, program headers, dynamic
//! segment, string table), from ELF32 and ELF64 files of either byte order.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::ElfError;

pub(super) const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
pub(super) const ET_DYN: u16 = 3;
pub(super) const EM_386: u16 = 3;
pub(super) const EM_X86_64: u16 = 62;
pub(super) const EM_AARCH64: u16 = 183;
const PN_XNUM: u16 = 0xffff;
pub(super) const PT_LOAD: u32 = 1;
pub(super) const PT_DYNAMIC: u32 = 2;
pub(super) const PT_INTERP: u32 = 3;
pub(super) const DT_NULL: u64 = 0;
pub(super) const DT_NEEDED: u64 = 1;
pub(super) const DT_STRTAB: u64 = 5;
pub(super) const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
pub(super) const DT_RUNPATH: u64 = 29;
const DT_FLAGS_1: u64 = 0x6fff_fffb;
const DF_1_NODEFLIB: u64 = 0x800;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    Elf32,
    Elf64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endian {
    Little,
    Big,
}

/// What has to match between an executable and its libraries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Kind {
    pub(super) class: Class,
    pub(super) endian: Endian,
    pub(super) machine: u16,
}

/// The parts of an ELF file that dependency resolution needs.
#[derive(Debug)]
pub(super) struct Elf {
    pub(super) kind: Kind,
    pub(super) e_type: u16,
    pub(super) interp: Option<String>,
    pub(super) dynamic: Dynamic,
}

/// The dynamic section, strings resolved.
#[derive(Debug, Default, Clone)]
pub(super) struct Dynamic {
    pub(super) needed: Vec<String>,
    pub(super) soname: Option<String>,
    /// Already dropped when there is a `DT_RUNPATH`, as the loader ignores it then.
    pub(super) rpath: Option<String>,
    pub(super) runpath: Option<String>,
    /// Linked with `-z nodeflib`: no `ld.so.conf` or default directories.
    pub(super) nodeflib: bool,
}

/// Reads typed fields from a file of known length.
struct Reader<'a> {
    file: File,
    path: &'a Path,
    len: u64,
    class: Class,
    endian: Endian,
}

impl Reader<'_> {
    fn malformed(&self, what: impl Into<String>) -> ElfError {
        ElfError::Malformed {
            path: self.path.to_owned(),
            what: what.into(),
        }
    }

    /// `size` bytes at `offset`, which must lie within the file.
    fn bytes(&self, offset: u64, size: u64, what: &str) -> Result<Vec<u8>, ElfError> {
        let end = offset.checked_add(size);
        if end.is_none_or(|end| end > self.len) {
            return Err(self.malformed(format!("{what} extends beyond the end of the file")));
        }
        let size =
            usize::try_from(size).map_err(|_| self.malformed(format!("{what} is too large")))?;
        let mut buf = vec![0; size];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|source| ElfError::Io {
                path: self.path.to_owned(),
                source,
            })?;
        Ok(buf)
    }

    fn u16(&self, buf: &[u8], at: usize) -> u16 {
        let bytes = [buf[at], buf[at + 1]];
        match self.endian {
            Endian::Little => u16::from_le_bytes(bytes),
            Endian::Big => u16::from_be_bytes(bytes),
        }
    }

    fn u32(&self, buf: &[u8], at: usize) -> u32 {
        let bytes = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        match self.endian {
            Endian::Little => u32::from_le_bytes(bytes),
            Endian::Big => u32::from_be_bytes(bytes),
        }
    }

    fn u64(&self, buf: &[u8], at: usize) -> u64 {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(&buf[at..at + 8]);
        match self.endian {
            Endian::Little => u64::from_le_bytes(bytes),
            Endian::Big => u64::from_be_bytes(bytes),
        }
    }

    /// An address-sized field: `Elf32_Addr`/`Elf32_Off` or their 64-bit versions.
    fn word(&self, buf: &[u8], at32: usize, at64: usize) -> u64 {
        match self.class {
            Class::Elf32 => u64::from(self.u32(buf, at32)),
            Class::Elf64 => self.u64(buf, at64),
        }
    }
}

/// A program header, the fields used here.
#[derive(Debug, Clone, Copy)]
struct Segment {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// Parses the ELF file at `path`.
pub(super) fn parse(path: &Path) -> Result<Elf, ElfError> {
    let io_error = |source| ElfError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(io_error)?;
    let len = file.metadata().map_err(io_error)?.len();
    let mut ident = [0u8; 16];
    if len < 16 {
        return Err(ElfError::NotElf {
            path: path.to_owned(),
        });
    }
    file.read_exact_at(&mut ident, 0).map_err(io_error)?;
    if ident[..4] != ELF_MAGIC {
        return Err(ElfError::NotElf {
            path: path.to_owned(),
        });
    }
    let unsupported = |what: String| ElfError::Unsupported {
        path: path.to_owned(),
        what,
    };
    let class = match ident[4] {
        1 => Class::Elf32,
        2 => Class::Elf64,
        other => return Err(unsupported(format!("ELF class {other}"))),
    };
    let endian = match ident[5] {
        1 => Endian::Little,
        2 => Endian::Big,
        other => return Err(unsupported(format!("ELF data encoding {other}"))),
    };
    let reader = Reader {
        file,
        path,
        len,
        class,
        endian,
    };
    let header_len = match class {
        Class::Elf32 => 52,
        Class::Elf64 => 64,
    };
    let header = reader.bytes(0, header_len, "the ELF header")?;
    let e_type = reader.u16(&header, 16);
    let machine = reader.u16(&header, 18);
    let phoff = reader.word(&header, 28, 32);
    let (phentsize, phnum) = match class {
        Class::Elf32 => (reader.u16(&header, 42), reader.u16(&header, 44)),
        Class::Elf64 => (reader.u16(&header, 54), reader.u16(&header, 56)),
    };
    if phnum == PN_XNUM {
        return Err(unsupported("extended program header numbering".to_owned()));
    }
    let min_phentsize = match class {
        Class::Elf32 => 32,
        Class::Elf64 => 56,
    };
    let segments = if phnum == 0 {
        Vec::new()
    } else {
        if phentsize < min_phentsize {
            return Err(reader.malformed(format!("program header entry size {phentsize}")));
        }
        let table = reader.bytes(
            phoff,
            u64::from(phentsize) * u64::from(phnum),
            "the program header table",
        )?;
        table
            .chunks_exact(usize::from(phentsize))
            .map(|ph| match class {
                Class::Elf32 => Segment {
                    kind: reader.u32(ph, 0),
                    offset: u64::from(reader.u32(ph, 4)),
                    vaddr: u64::from(reader.u32(ph, 8)),
                    filesz: u64::from(reader.u32(ph, 16)),
                },
                Class::Elf64 => Segment {
                    kind: reader.u32(ph, 0),
                    offset: reader.u64(ph, 8),
                    vaddr: reader.u64(ph, 16),
                    filesz: reader.u64(ph, 32),
                },
            })
            .collect()
    };
    let interp = match segments.iter().find(|segment| segment.kind == PT_INTERP) {
        Some(segment) => {
            let bytes = reader.bytes(segment.offset, segment.filesz, "the interpreter name")?;
            Some(c_string(&reader, &bytes, "the interpreter name")?)
        }
        None => None,
    };
    let dynamic = match segments.iter().find(|segment| segment.kind == PT_DYNAMIC) {
        Some(segment) => parse_dynamic(&reader, segment, &segments)?,
        None => Dynamic::default(),
    };
    Ok(Elf {
        kind: Kind {
            class,
            endian,
            machine,
        },
        e_type,
        interp,
        dynamic,
    })
}

/// Reads the dynamic segment and the strings it refers to.
fn parse_dynamic(
    reader: &Reader,
    segment: &Segment,
    segments: &[Segment],
) -> Result<Dynamic, ElfError> {
    let bytes = reader.bytes(segment.offset, segment.filesz, "the dynamic segment")?;
    let entry_len = match reader.class {
        Class::Elf32 => 8,
        Class::Elf64 => 16,
    };
    let mut needed = Vec::new();
    let (mut soname, mut rpath, mut runpath) = (None, None, None);
    let (mut strtab, mut strsz, mut flags_1) = (None, None, 0);
    for entry in bytes.chunks_exact(entry_len) {
        let (tag, value) = match reader.class {
            Class::Elf32 => (
                u64::from(reader.u32(entry, 0)),
                u64::from(reader.u32(entry, 4)),
            ),
            Class::Elf64 => (reader.u64(entry, 0), reader.u64(entry, 8)),
        };
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed.push(value),
            DT_STRTAB => strtab = Some(value),
            DT_STRSZ => strsz = Some(value),
            DT_SONAME => soname = Some(value),
            DT_RPATH => rpath = Some(value),
            DT_RUNPATH => runpath = Some(value),
            DT_FLAGS_1 => flags_1 = value,
            _ => {}
        }
    }
    let nodeflib = flags_1 & DF_1_NODEFLIB != 0;
    if needed.is_empty() && soname.is_none() && rpath.is_none() && runpath.is_none() {
        return Ok(Dynamic {
            nodeflib,
            ..Dynamic::default()
        });
    }
    let (Some(strtab), Some(strsz)) = (strtab, strsz) else {
        return Err(reader.malformed("dynamic strings without DT_STRTAB and DT_STRSZ"));
    };
    let offset = segments
        .iter()
        .filter(|load| load.kind == PT_LOAD)
        .find(|load| strtab >= load.vaddr && strtab - load.vaddr < load.filesz)
        .map(|load| strtab - load.vaddr + load.offset)
        .ok_or_else(|| {
            reader.malformed(format!("DT_STRTAB {strtab:#x} is in no loaded segment"))
        })?;
    let table = reader.bytes(offset, strsz, "the dynamic string table")?;
    let string = |at: u64| -> Result<String, ElfError> {
        let start = usize::try_from(at)
            .ok()
            .filter(|&start| start < table.len())
            .ok_or_else(|| reader.malformed(format!("string offset {at} beyond DT_STRSZ")))?;
        c_string(reader, &table[start..], "a dynamic string")
    };
    let runpath = runpath.map(string).transpose()?;
    Ok(Dynamic {
        needed: needed.into_iter().map(string).collect::<Result<_, _>>()?,
        soname: soname.map(string).transpose()?,
        // The loader ignores DT_RPATH when there is a DT_RUNPATH.
        rpath: match runpath {
            Some(_) => None,
            None => rpath.map(string).transpose()?,
        },
        runpath,
        nodeflib,
    })
}

/// The NUL-terminated UTF-8 string at the start of `bytes`.
fn c_string(reader: &Reader, bytes: &[u8], what: &str) -> Result<String, ElfError> {
    let end = bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| reader.malformed(format!("{what} is not NUL-terminated")))?;
    String::from_utf8(bytes[..end].to_vec()).map_err(|_| ElfError::Unsupported {
        path: reader.path.to_owned(),
        what: format!("{what} is not UTF-8"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::fs;

    use super::super::resolve;
    use super::super::testutil::{TempDir, synthetic_elf};
    use super::*;

    #[test]
    fn non_elf_files_are_rejected() {
        let dir = TempDir::new();
        let script = dir.path().join("script");
        fs::write(
            &script,
            "#!/bin/sh\necho hello from a script that is long enough\n",
        )
        .unwrap();
        assert!(matches!(resolve(&script), Err(ElfError::NotElf { path }) if path == script));
        let short = dir.path().join("short");
        fs::write(&short, b"\x7fELF").unwrap();
        assert!(matches!(resolve(&short), Err(ElfError::NotElf { .. })));
        let truncated = dir.path().join("truncated");
        fs::write(&truncated, b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0").unwrap();
        assert!(matches!(
            resolve(&truncated),
            Err(ElfError::Malformed { .. })
        ));
        assert!(matches!(
            resolve(&dir.path().join("absent")),
            Err(ElfError::Io { .. })
        ));
    }

    #[test]
    fn parses_every_class_and_byte_order() {
        let dir = TempDir::new();
        for class in [Class::Elf32, Class::Elf64] {
            for endian in [Endian::Little, Endian::Big] {
                let bytes = synthetic_elf(
                    class,
                    endian,
                    0x1234,
                    2,
                    Some("/lib/ld-test.so.1"),
                    &["liba.so.1", "libb.so.2"],
                    Some("$ORIGIN/lib"),
                );
                let path = dir.path().join(format!("{class:?}-{endian:?}"));
                fs::write(&path, bytes).unwrap();
                let elf = parse(&path).unwrap();
                assert_eq!(
                    elf.kind,
                    Kind {
                        class,
                        endian,
                        machine: 0x1234
                    }
                );
                assert_eq!(elf.e_type, 2);
                assert_eq!(elf.interp.as_deref(), Some("/lib/ld-test.so.1"));
                assert_eq!(elf.dynamic.needed, ["liba.so.1", "libb.so.2"]);
                assert_eq!(elf.dynamic.runpath.as_deref(), Some("$ORIGIN/lib"));
                assert_eq!(elf.dynamic.rpath, None);
            }
        }
    }

    #[test]
    fn corrupt_dynamic_sections_are_malformed() {
        let dir = TempDir::new();
        let mut bytes = synthetic_elf(
            Class::Elf64,
            Endian::Little,
            EM_X86_64,
            2,
            None,
            &["liba.so"],
            None,
        );
        // Point the dynamic segment past the end of the file.
        let dynamic_ph = 64 + 56;
        bytes[dynamic_ph + 8..dynamic_ph + 16].copy_from_slice(&0xffff_u64.to_le_bytes());
        let path = dir.path().join("corrupt");
        fs::write(&path, bytes).unwrap();
        assert!(matches!(parse(&path), Err(ElfError::Malformed { .. })));
    }
}
