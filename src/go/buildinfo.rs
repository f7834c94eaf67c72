//! The Go build info every Go binary carries (what `go version -m BINARY` prints): the Go
//! release it was built with and its main module's path and version. Pure: the bytes of an
//! ELF file in, the info out; bounded and tolerant of garbage (every length and address is
//! checked against the data before use, strings are capped).
//!
//! Format (Go's `debug/buildinfo`, go1.23.5 src/debug/buildinfo/buildinfo.go:160-260): a
//! 32-byte header starting `\xff Go buildinf:` at the start of the `.go.buildinfo` section
//! (or, without section headers, at a 16-aligned offset of the file), byte 14 the pointer
//! size, byte 15 flags (bit 0 big-endian, bit 1 inline strings). Go >= 1.18 writes the
//! version and module strings inline after the header as uvarint-length-prefixed strings;
//! older Go writes two pointers to Go string headers in the data segment.

use object::{Object as _, ObjectSection as _};

const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER_LEN: usize = 32;
/// No version or module string a real binary carries comes near this.
const MAX_STRING: u64 = 1 << 20;
/// The fallback scan for the header stops here (Go's own reader looks at the data segment).
const MAX_SCAN: usize = 512 << 20;

/// What a Go binary says about its build.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildInfo {
    /// `go1.19.8` as the toolchain printed it.
    pub go_version: String,
    /// The main package's import path (`github.com/containerd/containerd/cmd/containerd`).
    pub path: String,
    /// The main module's path and version (`v1.7.22`; `(devel)` or empty when unknown).
    pub module: String,
    pub module_version: String,
    /// The `DefaultGODEBUG` build setting (Go >= 1.21): the GODEBUG defaults the toolchain
    /// compiled in for the main module's `go` line (e.g. `x509negativeserial=1` for a
    /// module that says `go 1.22`, built by Go 1.23).
    pub default_godebug: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildInfoError {
    #[error("not an ELF file ({0})")]
    NotElf(String),
    #[error("no Go build info (not a Go binary, or built without it)")]
    NotGo,
    #[error("malformed Go build info: {0}")]
    Malformed(&'static str),
}

/// Read the build info of an ELF binary.
pub fn read_build_info(data: &[u8]) -> Result<BuildInfo, BuildInfoError> {
    let file = object::File::parse(data).map_err(|e| BuildInfoError::NotElf(e.to_string()))?;
    // Everything is read within the section (or, without one, from the header on).
    let data: &[u8] = match file.section_by_name(".go.buildinfo") {
        Some(s) => s
            .data()
            .map_err(|_| BuildInfoError::Malformed("the .go.buildinfo section has no file data"))?,
        None => &data[scan_for_magic(data).ok_or(BuildInfoError::NotGo)?..],
    };
    let header = data
        .get(..HEADER_LEN)
        .ok_or(BuildInfoError::Malformed("truncated header"))?;
    if !header.starts_with(MAGIC) {
        return Err(BuildInfoError::NotGo);
    }
    let ptr_size = usize::from(header[14]);
    let flags = header[15];
    let big_endian = flags & 1 != 0;
    let (version, modinfo) = if flags & 2 != 0 {
        let rest = &data[HEADER_LEN..];
        let (version, n) = read_varint_string(rest)?;
        let (modinfo, _) = read_varint_string(&rest[n..])?;
        (String::from_utf8_lossy(version).into_owned(), modinfo)
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(BuildInfoError::Malformed("pointer size is neither 4 nor 8"));
        }
        let read_ptr = |b: &[u8]| -> u64 { read_uint(b, ptr_size, big_endian) };
        let version_ptr = read_ptr(&header[16..16 + ptr_size]);
        let mod_ptr = read_ptr(&header[16 + ptr_size..16 + 2 * ptr_size]);
        let version = read_go_string(&file, version_ptr, ptr_size, big_endian)?;
        let modinfo = read_go_string(&file, mod_ptr, ptr_size, big_endian).unwrap_or_default();
        (String::from_utf8_lossy(version).into_owned(), modinfo)
    };
    if !version.starts_with("go") && !version.starts_with("devel") {
        return Err(BuildInfoError::Malformed(
            "the version string does not start with go",
        ));
    }
    let mut info = BuildInfo {
        go_version: version,
        ..BuildInfo::default()
    };
    parse_modinfo(modinfo, &mut info);
    Ok(info)
}

/// Without section headers: the first 16-aligned offset holding the magic.
fn scan_for_magic(data: &[u8]) -> Option<usize> {
    let end = data.len().min(MAX_SCAN);
    (0..end.saturating_sub(HEADER_LEN))
        .step_by(16)
        .find(|&i| data[i..].starts_with(MAGIC))
}

fn read_uint(b: &[u8], size: usize, big_endian: bool) -> u64 {
    let mut v = 0u64;
    for i in 0..size {
        let byte = if big_endian { b[i] } else { b[size - 1 - i] };
        v = (v << 8) | u64::from(byte);
    }
    v
}

/// A uvarint length, then that many bytes; returns the string and the bytes consumed.
fn read_varint_string(b: &[u8]) -> Result<(&[u8], usize), BuildInfoError> {
    let mut len = 0u64;
    let mut shift = 0;
    let mut n = 0;
    loop {
        let byte = *b
            .get(n)
            .ok_or(BuildInfoError::Malformed("truncated length"))?;
        n += 1;
        if shift > 63 {
            return Err(BuildInfoError::Malformed("length overflows"));
        }
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    if len > MAX_STRING {
        return Err(BuildInfoError::Malformed("string too long"));
    }
    let end = n + len as usize;
    let s = b
        .get(n..end)
        .ok_or(BuildInfoError::Malformed("truncated string"))?;
    Ok((s, end))
}

/// Bytes at virtual address `addr` from the section that holds them.
fn at_address<'a>(file: &object::File<'a>, addr: u64, len: u64) -> Option<&'a [u8]> {
    for s in file.sections() {
        let start = s.address();
        if addr < start || addr.checked_add(len)? > start.checked_add(s.size())? {
            continue;
        }
        let data = s.data().ok()?;
        let off = usize::try_from(addr - start).ok()?;
        return data.get(off..off.checked_add(usize::try_from(len).ok()?)?);
    }
    None
}

/// A Go string header (pointer, length) at `addr`, and the bytes it points to (Go < 1.18).
fn read_go_string<'a>(
    file: &object::File<'a>,
    addr: u64,
    ptr_size: usize,
    big_endian: bool,
) -> Result<&'a [u8], BuildInfoError> {
    let hdr = at_address(file, addr, 2 * ptr_size as u64)
        .ok_or(BuildInfoError::Malformed("string header outside the file"))?;
    let ptr = read_uint(&hdr[..ptr_size], ptr_size, big_endian);
    let len = read_uint(&hdr[ptr_size..], ptr_size, big_endian);
    if len > MAX_STRING {
        return Err(BuildInfoError::Malformed("string too long"));
    }
    at_address(file, ptr, len).ok_or(BuildInfoError::Malformed("string outside the file"))
}

/// The module info between its 16-byte sentinels: `path\t...`, `mod\tPATH\tVERSION\t...`.
/// (go1.23.5 debug/buildinfo/buildinfo.go: without both sentinels there is no module info.)
fn parse_modinfo(b: &[u8], info: &mut BuildInfo) {
    if !(b.len() >= 33 && b[b.len() - 17] == b'\n') {
        return;
    }
    let text = String::from_utf8_lossy(&b[16..b.len() - 16]).into_owned();
    for line in text.lines() {
        let mut f = line.split('\t');
        match f.next() {
            Some("path") => info.path = f.next().unwrap_or_default().to_string(),
            Some("build") => {
                if let Some(v) = f.next().and_then(|s| s.strip_prefix("DefaultGODEBUG=")) {
                    info.default_godebug = v.to_string();
                }
            }
            Some("mod") => {
                info.module = f.next().unwrap_or_default().to_string();
                info.module_version = f.next().unwrap_or_default().to_string();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 file with one `.go.buildinfo` section holding `payload` (and a
    /// `.shstrtab`), as the Go linker lays it out.
    pub(crate) fn elf_with_section(name: &str, payload: &[u8]) -> Vec<u8> {
        let shstrtab = format!("\0{name}\0.shstrtab\0").into_bytes();
        let data_off = 64usize;
        let str_off = data_off + payload.len();
        let sh_off = (str_off + shstrtab.len() + 7) & !7;
        let mut f = vec![0u8; sh_off + 3 * 64];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // 64-bit
        f[5] = 1; // little endian
        f[6] = 1;
        f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        f[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[40..48].copy_from_slice(&(sh_off as u64).to_le_bytes());
        f[52..54].copy_from_slice(&64u16.to_le_bytes());
        f[58..60].copy_from_slice(&64u16.to_le_bytes());
        f[60..62].copy_from_slice(&3u16.to_le_bytes());
        f[62..64].copy_from_slice(&2u16.to_le_bytes());
        f[data_off..str_off].copy_from_slice(payload);
        f[str_off..str_off + shstrtab.len()].copy_from_slice(&shstrtab);
        let sh = |f: &mut Vec<u8>, i: usize, name: u32, typ: u32, off: usize, size: usize| {
            let b = sh_off + i * 64;
            f[b..b + 4].copy_from_slice(&name.to_le_bytes());
            f[b + 4..b + 8].copy_from_slice(&typ.to_le_bytes());
            f[b + 16..b + 24].copy_from_slice(&(0x40_0000u64 + off as u64).to_le_bytes());
            f[b + 24..b + 32].copy_from_slice(&(off as u64).to_le_bytes());
            f[b + 32..b + 40].copy_from_slice(&(size as u64).to_le_bytes());
        };
        sh(&mut f, 1, 1, 1, data_off, payload.len());
        sh(
            &mut f,
            2,
            (name.len() + 2) as u32,
            3,
            str_off,
            shstrtab.len(),
        );
        f
    }

    fn inline_payload(version: &str, modinfo: &str) -> Vec<u8> {
        let mut p = MAGIC.to_vec();
        p.push(8);
        p.push(2);
        p.resize(HEADER_LEN, 0);
        for s in [version, modinfo] {
            let mut n = s.len();
            while n >= 0x80 {
                p.push((n as u8) | 0x80);
                n >>= 7;
            }
            p.push(n as u8);
            p.extend_from_slice(s.as_bytes());
        }
        p
    }

    #[test]
    fn reads_inline_build_info() {
        let sentinel = "0123456789abcdef";
        // The end sentinel follows a newline, as in real binaries.
        let modinfo = format!(
            "{sentinel}path\tgithub.com/containerd/containerd/v2/cmd/containerd\nmod\tgithub.com/containerd/containerd/v2\tv2.0.4\th1:x\nbuild\tDefaultGODEBUG=x509negativeserial=1,tls3des=1\n{sentinel}"
        );
        let elf = elf_with_section(".go.buildinfo", &inline_payload("go1.23.7", &modinfo));
        let info = read_build_info(&elf).unwrap();
        assert_eq!(info.go_version, "go1.23.7");
        assert_eq!(
            info.path,
            "github.com/containerd/containerd/v2/cmd/containerd"
        );
        assert_eq!(info.module, "github.com/containerd/containerd/v2");
        assert_eq!(info.module_version, "v2.0.4");
        assert_eq!(info.default_godebug, "x509negativeserial=1,tls3des=1");
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        assert!(matches!(
            read_build_info(b""),
            Err(BuildInfoError::NotElf(_))
        ));
        assert!(matches!(
            read_build_info(b"\x7fELF garbage garbage garbage"),
            Err(BuildInfoError::NotElf(_))
        ));
        // An ELF without Go build info.
        let elf = elf_with_section(".data", b"hello world, no go here.........");
        assert_eq!(read_build_info(&elf), Err(BuildInfoError::NotGo));
        // Hostile payloads: every truncation and a huge length.
        let good = inline_payload("go1.22.2", "");
        for cut in 0..good.len() {
            let elf = elf_with_section(".go.buildinfo", &good[..cut]);
            assert!(read_build_info(&elf).is_err(), "cut at {cut}");
        }
        let mut huge = good[..HEADER_LEN].to_vec();
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x7f]);
        let elf = elf_with_section(".go.buildinfo", &huge);
        assert_eq!(
            read_build_info(&elf),
            Err(BuildInfoError::Malformed("string too long"))
        );
        let mut over = good[..HEADER_LEN].to_vec();
        over.extend_from_slice(&[0xff; 12]);
        let elf = elf_with_section(".go.buildinfo", &over);
        assert!(read_build_info(&elf).is_err());
        // The pointer form with pointers to nowhere.
        let mut ptrs = MAGIC.to_vec();
        ptrs.extend_from_slice(&[8, 0]);
        ptrs.extend_from_slice(&u64::MAX.to_le_bytes());
        ptrs.extend_from_slice(&0u64.to_le_bytes());
        let elf = elf_with_section(".go.buildinfo", &ptrs);
        assert_eq!(
            read_build_info(&elf),
            Err(BuildInfoError::Malformed("string header outside the file"))
        );
        // Not a version string.
        let elf = elf_with_section(".go.buildinfo", &inline_payload("rm -rf /", ""));
        assert!(read_build_info(&elf).is_err());
        // Random bytes after a valid ELF header.
        let mut noisy = elf_with_section(".go.buildinfo", &good);
        for (i, b) in noisy.iter_mut().enumerate().skip(64).take(40) {
            *b ^= (i as u8).wrapping_mul(37);
        }
        let _ = read_build_info(&noisy);
    }

    #[test]
    fn reads_debians_containerd() {
        let data = std::fs::read("/usr/bin/containerd")
            .expect("/usr/bin/containerd is needed: install the Debian package containerd");
        let info = read_build_info(&data).unwrap();
        // Debian bookworm's containerd 1.6.20 is built with Go 1.19.
        assert!(info.go_version.starts_with("go1.19"), "{info:?}");
        assert_eq!(info.path, "github.com/containerd/containerd/cmd/containerd");
    }
}
