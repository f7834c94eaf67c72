//! `HostRoot`: the node's filesystem under `--host-root`, and the one symlink policy for
//! every read and write regtrust makes there (issue 9 point 1, issue 10 point 1).
//!
//! Two ways to name a path under the root, and nothing else:
//! - **strict** ([`HostRoot::open_dir`], [`HostRoot::ensure_dir`], [`Dir`]): every dir from
//!   the host root down is opened with `openat(O_NOFOLLOW|O_DIRECTORY)` relative to the
//!   handle of its parent, and files are created, read, renamed and unlinked relative to
//!   the handle of their dir. A dir swapped for a symlink at any moment makes the call fail
//!   (`ELOOP`/`ENOTDIR`); it can never redirect a write or a removal. Every write regtrust
//!   makes goes this way.
//! - **as the runtime reads it** ([`HostRoot::resolve`], [`HostRoot::read`],
//!   [`HostRoot::list`], [`HostRoot::is_dir`]): symlinks are followed the way the node's
//!   kernel would follow them for the runtime (RHEL's `/etc/ssl/certs -> /etc/pki/...`),
//!   but inside the root only: an absolute target is the node's path, `..` never climbs
//!   above the root. The resolved, link-free path is then opened strictly, so a link swapped
//!   in after resolution fails instead of escaping.
//!
//! Reads are capped and never block: files are opened `O_NONBLOCK` (a FIFO where a file
//! should be returns at once) and must be regular files by `fstat` of the opened handle.
//! The host root path itself is the operator's and may be (or sit below) a symlink.
//! This module knows nothing of runtimes or trust files; it does not decide what to write.

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Symlinks followed while resolving one path (Linux's own limit).
const MAX_LINKS: usize = 40;

/// The node's filesystem as regtrust sees it, e.g. `/host` in the DaemonSet, `/` on a node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostRoot {
    path: PathBuf,
}

/// What is at a name, looked at without following a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Absent,
    File,
    Dir,
    Symlink,
    /// A FIFO, socket or device.
    Special,
}

/// Why a strict path could not be opened. Each names the full path as the node shows it
/// under the host root.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("{0}: is a symlink; regtrust does not write through links")]
    Symlink(PathBuf),
    #[error("{0}: is not a directory")]
    NotADir(PathBuf),
    #[error("{0}: does not exist")]
    Missing(PathBuf),
    #[error("{0}: is not a plain relative path below the host root")]
    NotRelative(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl RootError {
    pub fn is_missing(&self) -> bool {
        matches!(self, RootError::Missing(_))
    }
}

impl From<RootError> for io::Error {
    fn from(e: RootError) -> io::Error {
        let kind = match &e {
            RootError::Missing(_) => io::ErrorKind::NotFound,
            RootError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e.to_string())
    }
}

/// Why a capped read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("does not exist")]
    Missing,
    #[error("is a symlink")]
    Symlink,
    #[error("not a regular file")]
    NotAFile,
    #[error("{size} bytes, more than the {limit} bytes allowed")]
    TooLarge { size: u64, limit: u64 },
    #[error("{0}")]
    Io(io::Error),
    #[error("{0}")]
    Path(RootError),
}

impl From<ReadError> for io::Error {
    fn from(e: ReadError) -> io::Error {
        match e {
            ReadError::Missing => io::Error::new(io::ErrorKind::NotFound, "does not exist"),
            ReadError::Io(e) => e,
            ReadError::Path(p) => p.into(),
            other => io::Error::other(other.to_string()),
        }
    }
}

/// An open dir under the host root, reached without following any link.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// The dir as the node shows it under the host root (for messages).
    path: PathBuf,
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from(e)
}

/// The parts of a relative path, refusing anything but plain names.
fn names(rel: &Path) -> Option<Vec<&OsStr>> {
    rel.components()
        .map(|c| match c {
            Component::Normal(s) => Some(s),
            Component::CurDir => None,
            _ => None,
        })
        .collect()
}

fn kind_of(mode: u32) -> Kind {
    match FileType::from_raw_mode(mode) {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::Special,
    }
}

impl HostRoot {
    pub fn new(path: impl Into<PathBuf>) -> HostRoot {
        HostRoot { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` as the node shows it under the host root, for messages.
    pub fn display(&self, rel: &Path) -> PathBuf {
        self.path.join(rel)
    }

    /// The host root itself (its own path may be a link: the operator chose it).
    fn open_root(&self) -> Result<Dir, RootError> {
        let fd = rfs::openat(
            CWD,
            &self.path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOENT => RootError::Missing(self.path.clone()),
            Errno::NOTDIR => RootError::NotADir(self.path.clone()),
            e => RootError::Io {
                path: self.path.clone(),
                source: errno_io(e),
            },
        })?;
        Ok(Dir {
            fd,
            path: self.path.clone(),
        })
    }

    /// Open the dir `rel` (relative to the host root), every component with
    /// `O_NOFOLLOW|O_DIRECTORY` relative to its parent's handle.
    pub fn open_dir(&self, rel: &Path) -> Result<Dir, RootError> {
        let parts = names(rel).ok_or_else(|| RootError::NotRelative(self.display(rel)))?;
        let mut dir = self.open_root()?;
        for name in parts {
            dir = dir.open_subdir(name)?;
        }
        Ok(dir)
    }

    /// Like [`HostRoot::open_dir`], creating the missing dirs with `mode` (umask-proof) by
    /// `mkdirat` relative to the parent's handle.
    pub fn ensure_dir(&self, rel: &Path, mode: u32) -> Result<Dir, RootError> {
        let parts = names(rel).ok_or_else(|| RootError::NotRelative(self.display(rel)))?;
        let mut dir = self.open_root()?;
        for name in parts {
            dir = match dir.open_subdir(name) {
                Ok(d) => d,
                Err(RootError::Missing(_)) => dir.create_subdir(name, mode)?,
                Err(e) => return Err(e),
            };
        }
        Ok(dir)
    }

    /// What is at `rel`, strictly: a link on the way is [`RootError::Symlink`], a link at
    /// the end is [`Kind::Symlink`].
    pub fn kind(&self, rel: &Path) -> Result<Kind, RootError> {
        let (parent, name) = split(rel).ok_or_else(|| RootError::NotRelative(self.display(rel)))?;
        match self.open_dir(parent) {
            Ok(d) => d.kind(name),
            Err(RootError::Missing(_)) => Ok(Kind::Absent),
            Err(e) => Err(e),
        }
    }

    /// Resolve `rel` as the node's kernel resolves `/rel` for a runtime: symlinks followed,
    /// absolute targets taken from the host root, `..` never above it. The result is a
    /// link-free path relative to the host root. The last component must exist.
    pub fn resolve(&self, rel: &Path) -> io::Result<PathBuf> {
        let mut done = PathBuf::new();
        let mut todo: Vec<std::ffi::OsString> = Vec::new();
        push_parts(&mut todo, rel);
        let mut links = 0;
        while let Some(part) = todo.pop() {
            if part == ".." {
                done.pop();
                continue;
            }
            let next = done.join(&part);
            let dir = self.open_dir(&done).map_err(io::Error::from)?;
            match dir.kind(&part).map_err(io::Error::from)? {
                Kind::Symlink => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io::Error::other(format!(
                            "{}: too many levels of symbolic links",
                            self.display(rel).display()
                        )));
                    }
                    let target = dir.read_link(&part)?;
                    if target.is_absolute() {
                        done = PathBuf::new();
                    }
                    push_parts(&mut todo, &target);
                }
                Kind::Absent => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{}: does not exist", self.display(&next).display()),
                    ))
                }
                _ => done = next,
            }
        }
        Ok(done)
    }

    /// Read the file a runtime would read at `rel` (links resolved inside the root), at most
    /// `limit` bytes, never blocking on a FIFO.
    pub fn read(&self, rel: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
        let resolved = match self.resolve(rel) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ReadError::Missing),
            Err(e) => return Err(ReadError::Io(e)),
        };
        let (parent, name) = split(&resolved).ok_or(ReadError::NotAFile)?;
        let dir = self.open_dir(parent).map_err(|e| match e {
            RootError::Missing(_) => ReadError::Missing,
            e => ReadError::Path(e),
        })?;
        dir.read_file(name, limit)
    }

    /// Whether a runtime would see a dir at `rel` (links resolved inside the root).
    pub fn is_dir(&self, rel: &Path) -> bool {
        self.resolve(rel).is_ok_and(|r| self.open_dir(&r).is_ok())
    }

    /// Whether a runtime would see a regular file at `rel` (links resolved inside the root).
    pub fn is_file(&self, rel: &Path) -> bool {
        self.resolve(rel)
            .is_ok_and(|r| self.kind(&r).is_ok_and(|k| k == Kind::File))
    }

    /// The names in the dir a runtime would list at `rel`, sorted as Go's `os.ReadDir`.
    pub fn list(&self, rel: &Path) -> io::Result<Vec<String>> {
        let resolved = self.resolve(rel)?;
        self.open_dir(&resolved).map_err(io::Error::from)?.list()
    }

    /// The target of the symlink at `rel` (its parents resolved), or None when it is no link.
    pub fn link_target(&self, rel: &Path) -> Option<PathBuf> {
        let (parent, name) = split(rel)?;
        let parent = self.resolve(parent).ok()?;
        let dir = self.open_dir(&parent).ok()?;
        match dir.kind(name) {
            Ok(Kind::Symlink) => dir.read_link(name).ok(),
            _ => None,
        }
    }

    /// Size and modification time of the file a runtime would read at `rel`.
    pub fn file_stamp(&self, rel: &Path) -> Option<(u64, i64, i64)> {
        let resolved = self.resolve(rel).ok()?;
        let (parent, name) = split(&resolved)?;
        let dir = self.open_dir(parent).ok()?;
        let st = rfs::statat(&dir.fd, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        Some((st.st_size as u64, st.st_mtime, st.st_mtime_nsec as i64))
    }
}

fn push_parts(todo: &mut Vec<std::ffi::OsString>, p: &Path) {
    let parts: Vec<std::ffi::OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    todo.extend(parts.into_iter().rev());
}

/// `a/b/c` -> (`a/b`, `c`); None for an empty path or one ending in `..`.
fn split(rel: &Path) -> Option<(&Path, &OsStr)> {
    let name = rel.file_name()?;
    Some((rel.parent().unwrap_or(Path::new("")), name))
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl Dir {
    /// Open a dir outside any host root (the state dir), following links in its path: the
    /// operator chose it. Files inside are still handled relative to its handle.
    pub fn open_path(path: &Path) -> io::Result<Dir> {
        let fd = rfs::openat(
            CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno_io)?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn child(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    fn open_subdir(&self, name: &OsStr) -> Result<Dir, RootError> {
        let path = self.child(name);
        match rfs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Dir { fd, path }),
            Err(Errno::NOENT) => Err(RootError::Missing(path)),
            Err(Errno::LOOP) | Err(Errno::NOTDIR) => match self.kind(name) {
                Ok(Kind::Symlink) => Err(RootError::Symlink(path)),
                Ok(Kind::Absent) => Err(RootError::Missing(path)),
                _ => Err(RootError::NotADir(path)),
            },
            Err(e) => Err(RootError::Io {
                path,
                source: errno_io(e),
            }),
        }
    }

    fn create_subdir(&self, name: &OsStr, mode: u32) -> Result<Dir, RootError> {
        let path = self.child(name);
        let io = |source| RootError::Io {
            path: path.clone(),
            source,
        };
        match rfs::mkdirat(&self.fd, name, Mode::from_raw_mode(mode)) {
            Ok(()) => {
                let d = self.open_subdir(name)?;
                rfs::fchmod(&d.fd, Mode::from_raw_mode(mode)).map_err(|e| io(errno_io(e)))?;
                Ok(d)
            }
            // Created by someone else meanwhile: open it like any existing dir.
            Err(Errno::EXIST) => self.open_subdir(name),
            Err(e) => Err(io(errno_io(e))),
        }
    }

    /// What is at `name` in this dir, without following a link.
    pub fn kind(&self, name: impl AsRef<OsStr>) -> Result<Kind, RootError> {
        let name = name.as_ref();
        match rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(kind_of(st.st_mode)),
            Err(Errno::NOENT) => Ok(Kind::Absent),
            Err(e) => Err(RootError::Io {
                path: self.child(name),
                source: errno_io(e),
            }),
        }
    }

    /// The target of the symlink `name`.
    pub fn read_link(&self, name: impl AsRef<OsStr>) -> io::Result<PathBuf> {
        let target = rfs::readlinkat(&self.fd, name.as_ref(), Vec::new()).map_err(errno_io)?;
        Ok(PathBuf::from(OsStr::from_bytes(target.as_bytes())))
    }

    /// Read the regular file `name` in this dir: never through a link, never blocking on a
    /// FIFO, at most `limit` bytes.
    pub fn read_file(&self, name: impl AsRef<OsStr>, limit: u64) -> Result<Vec<u8>, ReadError> {
        let fd = rfs::openat(
            &self.fd,
            name.as_ref(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOENT => ReadError::Missing,
            Errno::LOOP => ReadError::Symlink,
            Errno::NXIO => ReadError::NotAFile,
            e => ReadError::Io(errno_io(e)),
        })?;
        let st = rfs::fstat(&fd).map_err(|e| ReadError::Io(errno_io(e)))?;
        if kind_of(st.st_mode) != Kind::File {
            return Err(ReadError::NotAFile);
        }
        let size = st.st_size as u64;
        if size > limit {
            return Err(ReadError::TooLarge { size, limit });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        fs::File::from(fd)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(ReadError::Io)?;
        if bytes.len() as u64 > limit {
            // It grew between fstat and read.
            return Err(ReadError::TooLarge {
                size: bytes.len() as u64,
                limit,
            });
        }
        Ok(bytes)
    }

    /// Write `name` so that a reader sees the old file or the new one, never a part: a temp
    /// file created exclusively in this dir (`O_EXCL|O_NOFOLLOW`), written, chmod (umask
    /// proof), fsync, `renameat` over `name` within this same dir handle, fsync the dir.
    pub fn write_atomic(&self, name: impl AsRef<OsStr>, bytes: &[u8], mode: u32) -> io::Result<()> {
        let name = name.as_ref();
        let tmp = format!(
            ".{}.regtrust-{}-{}.tmp",
            name.to_string_lossy(),
            std::process::id(),
            TMP_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let result = (|| -> io::Result<()> {
            let fd = rfs::openat(
                &self.fd,
                tmp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode),
            )
            .map_err(errno_io)?;
            rfs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(errno_io)?;
            let mut f = fs::File::from(fd);
            f.write_all(bytes)?;
            f.sync_all()?;
            rfs::renameat(&self.fd, tmp.as_str(), &self.fd, name).map_err(errno_io)?;
            self.sync()
        })();
        if result.is_err() {
            let _ = rfs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
        }
        result.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.child(name).display())))
    }

    /// Remove the file (or link) `name` in this dir; never a dir.
    pub fn remove_file(&self, name: impl AsRef<OsStr>) -> io::Result<()> {
        let name = name.as_ref();
        rfs::unlinkat(&self.fd, name, AtFlags::empty()).map_err(|e| {
            io::Error::new(
                errno_io(e).kind(),
                format!("{}: {e}", self.child(name).display()),
            )
        })
    }

    /// Remove the dir `name` in this dir if it is empty (`ENOTEMPTY` is an error the caller
    /// usually ignores). A symlink there is never followed (`ENOTDIR`).
    pub fn remove_empty_dir(&self, name: impl AsRef<OsStr>) -> io::Result<()> {
        rfs::unlinkat(&self.fd, name.as_ref(), AtFlags::REMOVEDIR).map_err(errno_io)
    }

    /// The names in this dir (not `.` and `..`), sorted.
    pub fn list(&self) -> io::Result<Vec<String>> {
        let dir = rfs::Dir::read_from(&self.fd).map_err(errno_io)?;
        let mut out = Vec::new();
        for entry in dir {
            let entry = entry.map_err(errno_io)?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            if let Ok(s) = std::str::from_utf8(name) {
                out.push(s.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn sync(&self) -> io::Result<()> {
        rfs::fsync(&self.fd).map_err(errno_io)
    }

    /// The (device, inode) of this dir, to tell whether a name still points at it.
    pub fn identity(&self) -> io::Result<(u64, u64)> {
        let st = rfs::fstat(&self.fd).map_err(errno_io)?;
        Ok((st.st_dev, st.st_ino))
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn root() -> (tempfile::TempDir, HostRoot) {
        let dir = tempfile::tempdir().unwrap();
        let r = HostRoot::new(dir.path());
        (dir, r)
    }

    #[test]
    fn strict_chain_refuses_links_anywhere() {
        let (dir, r) = root();
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc/docker")).unwrap();
        symlink(outside.path(), dir.path().join("etc/docker/certs.d")).unwrap();
        fs::write(dir.path().join("etc/file"), "x").unwrap();
        assert!(matches!(
            r.open_dir(Path::new("etc/docker/certs.d")),
            Err(RootError::Symlink(p)) if p.ends_with("etc/docker/certs.d")
        ));
        assert!(matches!(
            r.ensure_dir(Path::new("etc/docker/certs.d/h"), 0o755),
            Err(RootError::Symlink(_))
        ));
        assert!(matches!(
            r.open_dir(Path::new("etc/file/x")),
            Err(RootError::NotADir(_))
        ));
        assert!(r.open_dir(Path::new("etc/nope")).unwrap_err().is_missing());
        assert!(matches!(
            r.open_dir(Path::new("etc/../..")),
            Err(RootError::NotRelative(_))
        ));
        assert!(matches!(
            r.open_dir(Path::new("/etc")),
            Err(RootError::NotRelative(_))
        ));
        assert!(fs::read_dir(outside.path()).unwrap().next().is_none());
    }

    #[test]
    fn ensure_write_read_remove() {
        let (dir, r) = root();
        let d = r
            .ensure_dir(Path::new("etc/containerd/certs.d/h:5000"), 0o755)
            .unwrap();
        let mode = fs::metadata(dir.path().join("etc/containerd"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
        d.write_atomic("ca.crt", b"PEM", 0o644).unwrap();
        d.write_atomic("ca.crt", b"PEM2", 0o644).unwrap();
        assert_eq!(d.list().unwrap(), ["ca.crt"]);
        assert_eq!(d.read_file("ca.crt", 10).unwrap(), b"PEM2");
        assert!(matches!(
            d.read_file("ca.crt", 2),
            Err(ReadError::TooLarge { size: 4, limit: 2 })
        ));
        assert_eq!(
            r.kind(Path::new("etc/containerd/certs.d/h:5000/ca.crt"))
                .unwrap(),
            Kind::File
        );
        d.remove_file("ca.crt").unwrap();
        let parent = r.open_dir(Path::new("etc/containerd/certs.d")).unwrap();
        parent.remove_empty_dir("h:5000").unwrap();
        assert_eq!(
            r.kind(Path::new("etc/containerd/certs.d/h:5000")).unwrap(),
            Kind::Absent
        );
    }

    #[test]
    fn reads_never_block_on_a_fifo_or_follow_a_final_link() {
        let (dir, r) = root();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        let ok = std::process::Command::new("mkfifo")
            .arg(dir.path().join("etc/fifo"))
            .status()
            .unwrap()
            .success();
        assert!(ok);
        symlink("/etc/passwd", dir.path().join("etc/link")).unwrap();
        let d = r.open_dir(Path::new("etc")).unwrap();
        assert!(matches!(d.read_file("fifo", 10), Err(ReadError::NotAFile)));
        assert!(matches!(d.read_file("link", 10), Err(ReadError::Symlink)));
        assert!(matches!(
            r.read(Path::new("etc/fifo"), 10),
            Err(ReadError::NotAFile)
        ));
        // As the runtime reads: the absolute link is the node's /etc/passwd, absent here.
        assert!(matches!(
            r.read(Path::new("etc/link"), 10),
            Err(ReadError::Missing)
        ));
    }

    #[test]
    fn resolve_stays_inside_the_root() {
        let (dir, r) = root();
        fs::create_dir_all(dir.path().join("etc/pki/tls/certs")).unwrap();
        fs::write(dir.path().join("etc/pki/tls/certs/ca-bundle.crt"), "B").unwrap();
        fs::create_dir_all(dir.path().join("etc/ssl")).unwrap();
        // RHEL: /etc/ssl/certs -> /etc/pki/tls/certs (absolute: the node's path).
        symlink("/etc/pki/tls/certs", dir.path().join("etc/ssl/certs")).unwrap();
        symlink(
            "../../../../../../etc/pki/tls/certs/ca-bundle.crt",
            dir.path().join("etc/up"),
        )
        .unwrap();
        symlink("loop", dir.path().join("etc/loop")).unwrap();
        assert_eq!(
            r.resolve(Path::new("etc/ssl/certs/ca-bundle.crt")).unwrap(),
            Path::new("etc/pki/tls/certs/ca-bundle.crt")
        );
        assert_eq!(
            r.read(Path::new("etc/ssl/certs/ca-bundle.crt"), 10)
                .unwrap(),
            b"B"
        );
        assert_eq!(r.read(Path::new("etc/up"), 10).unwrap(), b"B");
        assert!(r
            .resolve(Path::new("etc/loop"))
            .unwrap_err()
            .to_string()
            .contains("too many levels"));
        assert_eq!(
            r.list(Path::new("etc/ssl/certs")).unwrap(),
            ["ca-bundle.crt"]
        );
        assert!(r.is_dir(Path::new("etc/ssl/certs")));
        assert!(r.is_file(Path::new("etc/up")));
        assert_eq!(
            r.link_target(Path::new("etc/loop")).unwrap(),
            Path::new("loop")
        );
    }
}
