//! Which Go release a runtime was built with, and the GODEBUG switches it runs with: the two
//! inputs that decide which of Go's rules apply. Every version-dependent rule of the port
//! asks `GoVersion::at_least` with the release that introduced it (cited where it is used).
//!
//! Modelled: Go 1.19 to Go 1.27 (`GoVersion::MODELLED`), with the point releases whose
//! security fixes change a verdict or its text (`has_backport`, `in_patch_range`). 1.19, 1.22
//! and 1.23 are checked against the real toolchains (`tests/go_versions.rs`); 1.24 to 1.27
//! follow their release notes, the Go vulnerability reports and the sources as read, not a
//! real toolchain. An older Go is judged as 1.19, a newer one as 1.27, an unknown one as the
//! newest modelled.

use std::fmt;

/// A Go release, `go1.MINOR.PATCH` (`go1.21rc2` is 1.21.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoVersion {
    pub minor: u32,
    pub patch: u32,
}

impl GoVersion {
    pub const GO1_19: GoVersion = GoVersion::new(19, 0);
    pub const OLDEST: GoVersion = GoVersion::GO1_19;
    pub const NEWEST: GoVersion = GoVersion::new(27, 0);
    /// The releases whose differences are modelled, oldest first.
    pub const MODELLED: [u32; 9] = [19, 20, 21, 22, 23, 24, 25, 26, 27];

    pub const fn new(minor: u32, patch: u32) -> GoVersion {
        GoVersion { minor, patch }
    }

    /// `go1.22.12`, `1.22`, `go1.23rc1`, `go1.24.0 X:boringcrypto` (what buildinfo and
    /// `runtime.Version()` print, or an admin's `1.22`). None for anything else.
    pub fn parse(s: &str) -> Option<GoVersion> {
        let s = s.trim();
        let s = s.strip_prefix("go").unwrap_or(s);
        let s = s.split([' ', '-', '+']).next().unwrap_or("");
        let rest = s.strip_prefix("1.")?;
        let (minor, patch) = match rest.split_once('.') {
            Some((m, p)) => (m, Some(p)),
            None => (rest, None),
        };
        // `1.21rc2`, `1.21beta1`: the pre-release of 1.21.0.
        let digits = |t: &str| -> Option<u32> {
            let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (num, tail) = t.split_at(end);
            if num.is_empty() || num.len() > 6 {
                return None;
            }
            if !(tail.is_empty() || tail.starts_with("rc") || tail.starts_with("beta")) {
                return None;
            }
            num.parse().ok()
        };
        let minor = digits(minor)?;
        let patch = match patch {
            Some(p) => digits(p)?,
            None => 0,
        };
        Some(GoVersion { minor, patch })
    }

    /// The release `verify` judges as: older ones as 1.19, newer ones as the newest.
    pub fn modelled(self) -> GoVersion {
        self.clamp(
            GoVersion::OLDEST,
            GoVersion::new(GoVersion::NEWEST.minor, u32::MAX),
        )
    }

    /// Whether this release has a rule introduced in Go 1.`minor`.
    pub fn at_least(self, minor: u32) -> bool {
        self.minor >= minor
    }

    /// Whether this release has a change introduced in 1.`minor`.`patch` and backported to
    /// the point releases listed (e.g. `tlsmaxrsasize`: 1.19.13, 1.20.8, 1.21.1, then 1.22).
    pub fn has_backport(self, first_minor: u32, backports: &[(u32, u32)]) -> bool {
        self.minor >= first_minor
            || backports
                .iter()
                .any(|&(m, p)| self.minor == m && self.patch >= p)
    }

    /// Whether this is 1.`minor`.`from` up to, not including, 1.`minor`.`until`: a
    /// behaviour a release introduced and a later point release of it took back.
    pub fn in_patch_range(self, minor: u32, from: u32, until: u32) -> bool {
        self.minor == minor && self.patch >= from && self.patch < until
    }
}

/// The three questions a rule asks of a release. `GoVersion` answers them; `&Asking`
/// answers them too and writes each question down with its answer, which is how a parse
/// made for one release is known to hold for another (`Answers::hold_for`).
pub trait Rules: Copy {
    fn at_least(self, minor: u32) -> bool;
    fn has_backport(self, first_minor: u32, backports: &'static [(u32, u32)]) -> bool;
    fn in_patch_range(self, minor: u32, from: u32, until: u32) -> bool;
}

impl Rules for GoVersion {
    fn at_least(self, minor: u32) -> bool {
        GoVersion::at_least(self, minor)
    }
    fn has_backport(self, first_minor: u32, backports: &'static [(u32, u32)]) -> bool {
        GoVersion::has_backport(self, first_minor, backports)
    }
    fn in_patch_range(self, minor: u32, from: u32, until: u32) -> bool {
        GoVersion::in_patch_range(self, minor, from, until)
    }
}

/// A question about the release, as `Rules` asks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Question {
    AtLeast(u32),
    Backport(u32, &'static [(u32, u32)]),
    PatchRange(u32, u32, u32),
}

impl Question {
    fn answer(self, go: GoVersion) -> bool {
        match self {
            Question::AtLeast(m) => go.at_least(m),
            Question::Backport(m, b) => go.has_backport(m, b),
            Question::PatchRange(m, f, u) => go.in_patch_range(m, f, u),
        }
    }
}

/// A release that records what it is asked (one parse's worth, on one thread).
#[derive(Debug)]
pub struct Asking {
    go: GoVersion,
    asked: std::cell::RefCell<Vec<(Question, bool)>>,
}

impl Asking {
    pub fn new(go: GoVersion) -> Asking {
        Asking {
            go,
            asked: std::cell::RefCell::new(Vec::new()),
        }
    }

    fn ask(&self, q: Question) -> bool {
        let a = q.answer(self.go);
        self.asked.borrow_mut().push((q, a));
        a
    }

    pub fn answers(self) -> Answers {
        Answers(self.asked.into_inner())
    }
}

impl Rules for &Asking {
    fn at_least(self, minor: u32) -> bool {
        self.ask(Question::AtLeast(minor))
    }
    fn has_backport(self, first_minor: u32, backports: &'static [(u32, u32)]) -> bool {
        self.ask(Question::Backport(first_minor, backports))
    }
    fn in_patch_range(self, minor: u32, from: u32, until: u32) -> bool {
        self.ask(Question::PatchRange(minor, from, until))
    }
}

/// The questions one parse asked, in order, with their answers. The parser reads the
/// release only through `Rules`, and asks a question only where the answer changes the
/// outcome for this input: another release that gives every answer the same takes the same
/// path through the same input, so the parse holds for it as made (the next question
/// depends only on the input and the earlier answers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answers(Vec<(Question, bool)>);

impl Answers {
    pub fn hold_for(&self, go: GoVersion) -> bool {
        self.0.iter().all(|&(q, a)| q.answer(go) == a)
    }

    /// How many questions were asked (0: the input reads the same in every release).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Unknown means the newest modelled release.
impl Default for GoVersion {
    fn default() -> GoVersion {
        GoVersion::NEWEST
    }
}

impl fmt::Display for GoVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "go1.{}.{}", self.minor, self.patch)
    }
}

/// The GODEBUG settings that change certificate verification, as the runtime's environment
/// (`GODEBUG=x509sha1=1,...`) sets them. A setting a release does not know is ignored by
/// that release (`verify` asks the version too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GoDebug {
    /// `x509sha1=1` (Go 1.18–1.23): SHA-1 signatures below the root are checked instead of
    /// refused. Removed in Go 1.24.
    pub x509sha1: bool,
    /// `x509negativeserial=1` (Go 1.23+): `ParseCertificate` accepts negative serials again.
    pub x509negativeserial: bool,
    /// `rsa1024min=0` (Go 1.24+): RSA keys under 1024 bits are checked again.
    pub rsa1024min_off: bool,
    // Go 1.26 and 1.27 add no GODEBUG that changes certificate verification on Linux
    // (doc/godebug.md "Go 1.26": httpcookiemaxnum, urlstrictcolons, tracebacklabels;
    // go1.26.md: tlssecpmlkem, a key exchange; go1.27.md: x509sslcertoverrideplatform,
    // Windows and macOS only). Go 1.27 removes tls10server, tlsrsakex, tls3des,
    // tlsunsafeekm and x509keypairleaf (go1.27.md, crypto/tls), none read here.
}

impl GoDebug {
    /// Parse a `GODEBUG` value: comma-separated `key=value`; unknown keys and malformed
    /// items are ignored, as Go's runtime does; the last setting of a key wins.
    pub fn parse(s: &str) -> GoDebug {
        GoDebug::default().with(s)
    }

    /// These settings with `s` applied over them: how the environment's `GODEBUG` overrides
    /// the binary's `DefaultGODEBUG`.
    pub fn with(self, s: &str) -> GoDebug {
        let mut d = self;
        for item in s.split(',') {
            let Some((k, v)) = item.trim().split_once('=') else {
                continue;
            };
            match k {
                "x509sha1" => d.x509sha1 = v == "1",
                "x509negativeserial" => d.x509negativeserial = v == "1",
                "rsa1024min" => d.rsa1024min_off = v == "0",
                _ => {}
            }
        }
        d
    }
}

/// The Go a runtime runs on: the release its binary was built with (the newest modelled
/// when unknown) and the GODEBUG switches of its environment. What `ParseCertificate` loads
/// and what `Verify` decides both depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GoRuntime {
    pub go: GoVersion,
    pub godebug: GoDebug,
}

impl GoRuntime {
    /// The parse and verify rules this runtime is judged by: two runtimes with the same
    /// rules load and decide alike.
    pub fn rules(self) -> (GoVersion, GoDebug) {
        (self.go.modelled(), self.godebug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_go_prints_them() {
        let v = |m, p| Some(GoVersion::new(m, p));
        assert_eq!(GoVersion::parse("go1.19.8"), v(19, 8));
        assert_eq!(GoVersion::parse("1.22"), v(22, 0));
        assert_eq!(GoVersion::parse("go1.23rc1"), v(23, 0));
        assert_eq!(GoVersion::parse("go1.24.0 X:boringcrypto"), v(24, 0));
        assert_eq!(GoVersion::parse(" go1.25.5 "), v(25, 5));
        for bad in [
            "",
            "go",
            "go2.0",
            "1",
            "1.",
            "1.x",
            "go1.22.x",
            "go1.2222222222",
            "devel +abc",
            "1.22.1.2junk",
            "\u{0}",
        ] {
            assert_eq!(GoVersion::parse(bad), None, "{bad:?}");
        }
        assert_eq!(GoVersion::new(19, 8).to_string(), "go1.19.8");
        assert_eq!(GoVersion::new(17, 3).modelled(), GoVersion::GO1_19);
        assert_eq!(GoVersion::new(26, 1).modelled(), GoVersion::new(26, 1));
        assert_eq!(GoVersion::new(28, 1).modelled().minor, 27);
        assert_eq!(GoVersion::default(), GoVersion::new(27, 0));
        assert!(GoVersion::new(26, 1).in_patch_range(26, 0, 2));
        assert!(!GoVersion::new(26, 2).in_patch_range(26, 0, 2));
        assert!(!GoVersion::new(25, 9).in_patch_range(26, 0, 2));
        assert!(GoVersion::new(19, 13).has_backport(22, &[(19, 13), (20, 8), (21, 1)]));
        assert!(!GoVersion::new(19, 8).has_backport(22, &[(19, 13), (20, 8), (21, 1)]));
        assert!(GoVersion::new(23, 0).has_backport(22, &[(19, 13)]));
    }

    #[test]
    fn godebug_as_the_runtime_reads_it() {
        let d = GoDebug::parse("http2client=0,x509sha1=1, x509negativeserial=1,rsa1024min=0");
        assert!(d.x509sha1 && d.x509negativeserial && d.rsa1024min_off);
        assert_eq!(GoDebug::parse("x509sha1=1,x509sha1=0"), GoDebug::default());
        assert_eq!(GoDebug::parse(",,=,x509sha1,junk"), GoDebug::default());
    }
}
