//! Pull secrets (`--pull-secret PATH`), read the way kubelet reads them (semantics-protocols
//! §3): `kubernetes.io/dockerconfigjson` and docker `config.json` (`{"auths": {KEY: ENTRY}}`),
//! legacy `.dockercfg` (`{KEY: ENTRY}`), and mounted Secret directories (`..data` symlinks).
//! It yields the hosts to manage and the credentials a probe would send, and reports every
//! bad file or key as a `Problem` instead of failing the whole read.
//!
//! It does not normalise keys itself (`host::parse_key` does) and never writes anything.
//! Passwords stay inside `Credential`: `Debug` redacts them and no message quotes them.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::ca::{self, ReadCappedError};
use crate::host::{self, CredentialKey, KeyScope, RegistryHost};
use crate::report::Problem;

/// Largest pull-secret file read (kubelet's own Secret limit is 1 MiB too).
pub const MAX_SECRET_BYTES: u64 = 1 << 20;

/// The files a mounted Secret dir may hold, in the order they are looked for.
const SECRET_FILES: [&str; 3] = [".dockerconfigjson", ".dockercfg", "config.json"];

/// Appended to every problem that makes kubelet refuse the secret as a whole.
const WHOLE_SECRET: &str = "kubelet rejects the whole secret in that case, so every pull \
                            using this secret fails (whichever registry it names)";

/// Longest key quoted in full in a message.
const MAX_KEY_SHOWN: usize = 100;

/// One credential entry of a pull secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub key: CredentialKey,
    pub username: String,
    password: String,
    /// The file it came from (for a Secret dir, the user-visible `DIR/.dockerconfigjson`,
    /// never the `..data/` target).
    pub source: PathBuf,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("key", &self.key)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

impl Credential {
    pub fn new(
        key: CredentialKey,
        username: impl Into<String>,
        password: impl Into<String>,
        source: impl Into<PathBuf>,
    ) -> Credential {
        Credential {
            key,
            username: username.into(),
            password: password.into(),
            source: source.into(),
        }
    }

    /// For building the `Authorization` header only; never log or report it.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// False for an entry without any credentials (kubelet then pulls anonymously).
    pub fn has_secret(&self) -> bool {
        !self.username.is_empty() || !self.password.is_empty()
    }

    /// Whether kubelet would offer this credential for an image on `host`: kubelet's
    /// `URLsMatch` for the host part (the key's path is not considered here). Ports must be
    /// equal as strings (`harbor.local` does not match `harbor.local:443`), the label
    /// counts must be equal (`*.example.com` matches `a.example.com`, not `a.b.example.com`),
    /// and each label matches as Go's `filepath.Match` (`*`, `?`, `[a-z]`).
    pub fn matches(&self, host: &RegistryHost) -> bool {
        match &self.key.scope {
            // No glob in a concrete host, so per-label matching is equality. (kubelet would
            // even fail to match a port-less `[::1]` key, whose brackets filepath.Match
            // reads as a class; we do not copy that accident.)
            KeyScope::Host(h) => h == host,
            KeyScope::Wildcard(pattern) => {
                let (key_host, key_port) = split_host_port(pattern);
                let (target_host, target_port) = split_host_port(host.as_str());
                if key_port != target_port {
                    return false;
                }
                let key_labels: Vec<&str> = key_host.split('.').collect();
                let target_labels: Vec<&str> = target_host.split('.').collect();
                key_labels.len() == target_labels.len()
                    && key_labels
                        .iter()
                        .zip(&target_labels)
                        .all(|(k, t)| go_filepath_match(k, t))
            }
        }
    }
}

/// Go's `net.SplitHostPort`, or the whole string and no port when it has none.
fn split_host_port(s: &str) -> (&str, &str) {
    if let Some(inner) = s.strip_prefix('[') {
        if let Some(close) = inner.find(']') {
            if let Some(port) = inner[close + 1..].strip_prefix(':') {
                return (&inner[..close], port);
            }
        }
        return (s, "");
    }
    match s.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => (s, ""),
    }
}

/// Everything read from the pull secrets.
#[derive(Debug, Default)]
pub struct PullSecrets {
    pub credentials: Vec<Credential>,
    /// Concrete hosts named by a valid key, with the first file naming each. Wildcard keys
    /// never appear here: nothing is installed for them.
    pub hosts: BTreeMap<RegistryHost, PathBuf>,
    pub problems: Vec<Problem>,
    /// Files that could not be read as a whole (missing, unreadable, empty, not JSON): the
    /// hosts they name are unknown this pass, so nothing may be treated as stale.
    pub incomplete: Vec<PathBuf>,
    /// Files whose key set cannot be trusted (a key that is not a registry, or a file that
    /// is not a pull secret as given: a whole Secret object refused, a base64 file): a pass
    /// writes and removes nothing while any is listed (issue 15 point 1).
    pub held: Vec<PathBuf>,
}

impl PullSecrets {
    /// Read every path; never fails as a whole: a bad file or key becomes a Problem naming
    /// file and key, the rest is still used. A path that is a directory is a mounted Secret
    /// volume: its `.dockerconfigjson`, else `.dockercfg`, else `config.json` is read.
    pub fn read_all(paths: &[PathBuf]) -> PullSecrets {
        let mut out = PullSecrets::default();
        for path in paths {
            match locate_and_read(path) {
                Ok((file, bytes)) => out.merge(PullSecrets::parse(&file, &bytes)),
                Err(message) => {
                    out.problems.push(problem(path, message));
                    out.incomplete.push(path.clone());
                }
            }
        }
        out
    }

    /// Parse one document. Which form it is follows from its content: an `auths` object (or
    /// config.json's `credsStore`/`credHelpers`/`HttpHeaders`) means dockerconfigjson /
    /// config.json, anything else is read as legacy dockercfg.
    ///
    /// Decision: when kubelet would reject the document as a whole (a malformed `auth`, a
    /// field of the wrong JSON type, a BOM), its credentials are not used, matching what
    /// kubelet does, but its hosts are still managed: installing a CA does not depend on
    /// credentials, and the problem is reported either way.
    pub fn parse(source: &Path, bytes: &[u8]) -> PullSecrets {
        let mut doc = Document {
            source,
            out: PullSecrets::default(),
            kubelet_rejects: false,
            context: String::new(),
            kubelet_sees: true,
        };
        doc.read(bytes);
        if doc.kubelet_rejects {
            doc.out.credentials.clear();
        }
        doc.out
    }

    /// The credentials kubelet would try for an image on `host`, in its order:
    /// reverse-sorted normalised keys (longer, more specific keys first).
    pub fn credentials_for(&self, host: &RegistryHost) -> Vec<&Credential> {
        let mut found: Vec<&Credential> = self
            .credentials
            .iter()
            .filter(|c| c.matches(host))
            .collect();
        found.sort_by_key(|c| std::cmp::Reverse(c.key.normalised()));
        found
    }

    /// Add another read's results; a host keeps the first file that named it.
    pub fn merge(&mut self, other: PullSecrets) {
        self.credentials.extend(other.credentials);
        for (host, source) in other.hosts {
            self.hosts.entry(host).or_insert(source);
        }
        self.problems.extend(other.problems);
        self.incomplete.extend(other.incomplete);
        self.held.extend(other.held);
    }
}

fn problem(source: &Path, message: impl Into<String>) -> Problem {
    Problem::new(format!("pull secret {}", source.display()), message)
}

/// The file to read for `path` (itself, or the secret file inside a Secret dir), and its
/// bytes, at most `MAX_SECRET_BYTES`.
fn locate_and_read(path: &Path) -> Result<(PathBuf, Vec<u8>), String> {
    let meta = fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    let file = if meta.is_dir() {
        SECRET_FILES
            .iter()
            .map(|name| path.join(name))
            .find(|f| f.is_file())
            .ok_or_else(|| {
                "a directory without .dockerconfigjson, .dockercfg or config.json \
                 (expected a mounted Secret of type kubernetes.io/dockerconfigjson)"
                    .to_string()
            })?
    } else {
        path.to_path_buf()
    };
    match ca::read_capped(&file, MAX_SECRET_BYTES) {
        Ok(bytes) => Ok((file, bytes)),
        Err(ReadCappedError::TooLarge { size, limit }) => Err(format!(
            "{}{size} bytes; at most {limit} (1 MiB) accepted, refusing it",
            in_dir(path, &file)
        )),
        Err(e) => Err(format!("{}{e}", in_dir(path, &file))),
    }
}

/// `"FILE: "` when the problem is about a file inside the Secret dir `path`.
fn in_dir(path: &Path, file: &Path) -> String {
    if path == file {
        String::new()
    } else {
        format!("{}: ", file.display())
    }
}

/// A key as shown in messages: userinfo redacted (`https://***@harbor.local`), Rust-quoted
/// (NUL, newlines, bidi and zero-width characters escaped), long ones cut.
fn show_key(raw: &str) -> String {
    let redacted = crate::report::redact_userinfo(raw);
    let raw = redacted.as_str();
    let n = raw.chars().count();
    if n > MAX_KEY_SHOWN {
        let head: String = raw.chars().take(MAX_KEY_SHOWN).collect();
        format!("{head:?}… ({n} characters)")
    } else {
        format!("{raw:?}")
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One document being read.
struct Document<'a> {
    source: &'a Path,
    out: PullSecrets,
    /// kubelet's decoding of this document fails (see `PullSecrets::parse`).
    kubelet_rejects: bool,
    /// Where in the file the document being read sits (`Secret "x" .data[".dockerconfigjson"]: `
    /// for a whole Secret object), empty for the file itself.
    context: String,
    /// Whether kubelet would read these bytes as they are: false for the wrapper of a whole
    /// Secret object (kubelet reads its decoded `.data`, never the object), so the
    /// whole-secret sentence is only said about what kubelet would see.
    kubelet_sees: bool,
}

impl Document<'_> {
    fn problem(&mut self, message: String) {
        let message = format!("{}{message}", self.context);
        self.out.problems.push(problem(self.source, message));
    }

    /// A document that names no registry at all is read like an empty file (last known
    /// good, issue 9 point 4): it is far likelier a secret emptied by mistake or caught
    /// mid-update than a decision to unmanage every host, so nothing installed is removed.
    /// A valid secret that names other registries does make the missing ones stale.
    fn names_none(&mut self, what: &str, why: &str) {
        self.problem(format!(
            "{what}: this secret names no registry{why}; like an empty file it removes nothing \
             regtrust installed (a secret that names other registries would)"
        ));
        self.out.incomplete.push(self.source.to_path_buf());
    }

    /// A problem that makes kubelet refuse the whole document.
    fn fatal(&mut self, message: String) {
        self.kubelet_rejects = true;
        if self.kubelet_sees {
            self.problem(format!("{message}: {WHOLE_SECRET}"));
        } else {
            self.problem(message);
        }
    }

    /// The file is not a pull secret as given: say what it is and how to get one, read
    /// nothing from it, and hold the pass (nothing written or removed).
    fn refuse(&mut self, message: String) {
        self.problem(message);
        self.out.incomplete.push(self.source.to_path_buf());
        self.out.held.push(self.source.to_path_buf());
    }

    fn read(&mut self, bytes: &[u8]) {
        let mut body = bytes;
        if body.iter().all(u8::is_ascii_whitespace) {
            self.problem(
                "empty file; expected {\"auths\": {HOST: {...}}} (dockerconfigjson, \
                 config.json) or {HOST: {...}} (dockercfg)"
                    .to_string(),
            );
            self.out.incomplete.push(self.source.to_path_buf());
            return;
        }
        if let Some(rest) = body.strip_prefix(b"\xEF\xBB\xBF") {
            // Go's encoding/json refuses a BOM ("invalid character 'ï'").
            self.fatal(
                "starts with a UTF-8 byte-order mark, which kubelet's JSON decoder refuses".into(),
            );
            body = rest;
        }
        let value: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                if let Some(why) = secret_object::not_json(self.source, body) {
                    self.refuse(why);
                    return;
                }
                // serde_json's messages name a position, never the content.
                self.fatal(format!("not valid JSON ({e})"));
                self.out.incomplete.push(self.source.to_path_buf());
                return;
            }
        };
        let Value::Object(top) = value else {
            self.fatal(format!(
                "the document is {}, expected a JSON object ({{\"auths\": {{...}}}} or {{HOST: {{...}}}})",
                json_kind(&value)
            ));
            self.out.incomplete.push(self.source.to_path_buf());
            return;
        };
        if top.contains_key("kind") && top.contains_key("apiVersion") && self.context.is_empty() {
            // A whole Kubernetes object (`kubectl get secret X -o json`), never a dockercfg
            // whose keys would be `apiversion`, `data`, `kind`, `metadata` and `type`.
            match secret_object::unwrap(&top) {
                Ok((context, inner)) => {
                    self.context = context;
                    self.kubelet_sees = true;
                    self.read(&inner);
                }
                Err(why) => self.refuse(why),
            }
            return;
        }
        let config_json = ["auths", "credsStore", "credHelpers", "HttpHeaders"]
            .iter()
            .any(|k| top.contains_key(*k));
        if !config_json {
            if top.is_empty() {
                self.names_none("the document is {}", "");
                return;
            }
            // Legacy .dockercfg: every top-level key is a registry.
            for (key, entry) in &top {
                self.entry(key, entry);
            }
            return;
        }
        if let Some(headers) = top.get("HttpHeaders") {
            let ok = match headers {
                Value::Null => true,
                Value::Object(m) => m.values().all(|v| v.is_string() || v.is_null()),
                _ => false,
            };
            if !ok {
                self.fatal("\"HttpHeaders\" is not an object of strings".into());
            }
        }
        match top.get("auths") {
            Some(Value::Object(auths)) => {
                if auths.is_empty() {
                    self.names_none("\"auths\" is empty", "");
                }
                for (key, entry) in auths {
                    self.entry(key, entry);
                }
            }
            Some(Value::Null) | None => {
                let helpers = if top.contains_key("credsStore") || top.contains_key("credHelpers") {
                    " (credsStore and credHelpers live on the machine that wrote it; kubelet ignores them)"
                } else {
                    ""
                };
                self.names_none("no \"auths\" object", helpers);
            }
            Some(other) => {
                self.fatal(format!(
                    "\"auths\" is {}, expected an object",
                    json_kind(other)
                ));
            }
        }
    }

    /// One `KEY: ENTRY`. The entry is decoded first, as kubelet decodes the whole document
    /// before looking at keys: its errors count even when the key is bad.
    fn entry(&mut self, raw_key: &str, entry: &Value) {
        let shown = show_key(raw_key);
        let decoded = match decode_entry(entry) {
            Ok(d) => Some(d),
            Err(EntryError::Kubelet(why)) => {
                self.fatal(format!("key {shown}: {why}"));
                None
            }
        };
        let key = match host::parse_key(raw_key) {
            Ok(k) => k,
            Err(e) => {
                self.problem(format!(
                    "key {shown}: {e}; nothing is written or removed while a pull secret \
                     names a key that is not a registry"
                ));
                self.out.held.push(self.source.to_path_buf());
                return;
            }
        };
        if let KeyScope::Host(h) = &key.scope {
            self.out
                .hosts
                .entry(h.clone())
                .or_insert_with(|| self.source.to_path_buf());
        }
        let Some(d) = decoded else { return };
        let (username, password) = match d.credentials {
            Creds::Text(u, p) => (u, p),
            Creds::NotUtf8 => {
                self.problem(format!(
                    "key {shown}: auth decodes to a username or password that is not UTF-8; \
                     kubelet sends it as is, regtrust cannot use it to probe"
                ));
                return;
            }
        };
        if username.is_empty() && password.is_empty() {
            let tokens = if d.has_tokens {
                " (kubelet ignores identitytoken and registrytoken)"
            } else {
                ""
            };
            self.problem(format!(
                "key {shown}: no auth and no username/password: credentials live in a \
                 credential helper, not in the secret; kubelet pulls anonymously{tokens}"
            ));
        }
        self.out.credentials.push(Credential {
            key,
            username,
            password,
            source: self.source.to_path_buf(),
        });
    }
}

enum EntryError {
    /// kubelet's decoding of the document fails on this entry.
    Kubelet(String),
}

enum Creds {
    Text(String, String),
    NotUtf8,
}

struct Entry {
    credentials: Creds,
    has_tokens: bool,
}

/// Decode an ENTRY as kubelet's `DockerConfigEntry.UnmarshalJSON` does (kubernetes
/// pkg/credentialprovider/config.go): `username`, `password`, `email`, `auth` must be
/// strings (or null); field names match case-insensitively, as Go's encoding/json does;
/// a non-empty `auth` overrides `username`/`password`.
fn decode_entry(entry: &Value) -> Result<Entry, EntryError> {
    let map = match entry {
        Value::Null => {
            return Ok(Entry {
                credentials: Creds::Text(String::new(), String::new()),
                has_tokens: false,
            })
        }
        Value::Object(m) => m,
        other => {
            return Err(EntryError::Kubelet(format!(
                "the entry is {}, expected an object",
                json_kind(other)
            )))
        }
    };
    let field = |name: &str| -> Result<String, EntryError> {
        let v = map.get(name).or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        });
        match v {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(EntryError::Kubelet(format!(
                "field \"{name}\" is {}, expected a string",
                json_kind(other)
            ))),
        }
    };
    let mut username = field("username")?;
    let mut password = field("password")?;
    field("email")?;
    let auth = field("auth")?;
    let has_tokens = map.keys().any(|k| {
        k.eq_ignore_ascii_case("identitytoken") || k.eq_ignore_ascii_case("registrytoken")
    });
    if !auth.is_empty() {
        let (u, p) = decode_auth(&auth)
            .map_err(|why| EntryError::Kubelet(format!("malformed auth ({why})")))?;
        match (String::from_utf8(u), String::from_utf8(p)) {
            (Ok(u), Ok(p)) => {
                username = u;
                password = p;
            }
            _ => {
                return Ok(Entry {
                    credentials: Creds::NotUtf8,
                    has_tokens,
                })
            }
        }
    }
    Ok(Entry {
        credentials: Creds::Text(username, password),
        has_tokens,
    })
}

/// kubelet's `decodeDockerConfigFieldAuth`: a value whose trimmed form ends in `=` is
/// decoded as padded standard base64, anything else as unpadded; `\r` and `\n` are skipped
/// as Go's decoder skips them; the text splits on the first `:`. Errors never quote the
/// value, only where it went wrong.
fn decode_auth(field: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    let padded = field.trim().ends_with('=');
    let decoded = crate::go::pem::go_base64(field.as_bytes(), padded).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(at, _)
            | base64::DecodeError::InvalidLastSymbol(at, _) => format!(" at input byte {at}"),
            base64::DecodeError::InvalidLength(_) => " (length)".to_string(),
            base64::DecodeError::InvalidPadding => " (padding)".to_string(),
        };
        format!(
            "illegal base64 data{at}; expected standard base64 (A-Z a-z 0-9 + /) of username:password"
        )
    })?;
    match decoded.iter().position(|b| *b == b':') {
        Some(i) => Ok((decoded[..i].to_vec(), decoded[i + 1..].to_vec())),
        None => Err(
            "unable to parse auth field, must be formatted as base64(username:password)"
                .to_string(),
        ),
    }
}

/// Go's `path/filepath.Match` for one host label (no `/` can occur): `*` any run, `?` one
/// character, `[...]` a class with ranges and `^` negation, `\` escapes. A malformed
/// pattern matches nothing, as kubelet treats Match's error as no match.
fn go_filepath_match(pattern: &str, name: &str) -> bool {
    let Some(tokens) = compile_glob(pattern) else {
        return false;
    };
    let s: Vec<char> = name.chars().collect();
    let (mut p, mut i) = (0, 0);
    // Where to resume after the last `*`: (token index after it, name index it now covers).
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match tokens.get(p) {
            Some(Glob::Star) => {
                star = Some((p + 1, i));
                p += 1;
                continue;
            }
            Some(t) if t.matches(s[i]) => {
                p += 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((after, covered)) => {
                p = after;
                i = covered + 1;
                star = Some((after, covered + 1));
            }
            None => return false,
        }
    }
    tokens[p..].iter().all(|t| matches!(t, Glob::Star))
}

enum Glob {
    Star,
    Any,
    Lit(char),
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Glob {
    fn matches(&self, c: char) -> bool {
        match self {
            Glob::Star => true,
            Glob::Any => true,
            Glob::Lit(l) => *l == c,
            Glob::Class { negated, ranges } => {
                ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
            }
        }
    }
}

/// Tokenise a pattern with Go's syntax rules (`getEsc`: a class item may not start with
/// `-` or `]`; a class needs at least one item and its `]`).
fn compile_glob(pattern: &str) -> Option<Vec<Glob>> {
    let mut out = Vec::new();
    let mut it = pattern.chars().peekable();
    let esc = |it: &mut std::iter::Peekable<std::str::Chars<'_>>| -> Option<char> {
        match it.next()? {
            '-' | ']' => None,
            '\\' => it.next(),
            c => Some(c),
        }
    };
    while let Some(c) = it.next() {
        match c {
            '*' => {
                if !matches!(out.last(), Some(Glob::Star)) {
                    out.push(Glob::Star);
                }
            }
            '?' => out.push(Glob::Any),
            '\\' => out.push(Glob::Lit(it.next()?)),
            '[' => {
                let negated = it.next_if_eq(&'^').is_some();
                let mut ranges = Vec::new();
                loop {
                    if it.peek() == Some(&']') && !ranges.is_empty() {
                        it.next();
                        break;
                    }
                    let lo = esc(&mut it)?;
                    let hi = if it.next_if_eq(&'-').is_some() {
                        esc(&mut it)?
                    } else {
                        lo
                    };
                    ranges.push((lo, hi));
                }
                out.push(Glob::Class { negated, ranges });
            }
            c => out.push(Glob::Lit(c)),
        }
    }
    Some(out)
}

/// Whole Kubernetes Secret objects and base64 files given as `--pull-secret` (issue 15
/// point 1): what `kubectl get secret X -o json|yaml` and `-o jsonpath='{.data...}'` print.
mod secret_object {
    use serde_json::{Map, Value};
    use std::path::Path;

    /// The Secret keys kubelet reads, in its order (kubernetes pkg/credentialprovider/
    /// secrets: `.dockerconfigjson` for `kubernetes.io/dockerconfigjson`, `.dockercfg` for
    /// `kubernetes.io/dockercfg`).
    const KEYS: [&str; 2] = [".dockerconfigjson", ".dockercfg"];

    /// `'...'` for a shell, so the printed command can be pasted as is.
    pub(super) fn shell_quote(s: &str) -> String {
        if !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-+:=@,".contains(&b))
        {
            s.to_string()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    }

    /// The command that turns a Secret in the cluster into a file regtrust (and kubelet)
    /// reads.
    fn decode_command(name: &str, namespace: Option<&str>, key: &str) -> String {
        let ns = namespace
            .map(|n| format!(" -n {}", shell_quote(n)))
            .unwrap_or_default();
        let path = key.replace('.', r"\.");
        format!(
            "kubectl get secret {}{ns} -o jsonpath='{{.data.{path}}}' | base64 -d > config.json",
            shell_quote(name)
        )
    }

    /// For bytes that are not JSON: a YAML Secret object or a base64-encoded file, said as
    /// such with the command that gives the file to use. None: some other non-JSON.
    pub(super) fn not_json(source: &Path, body: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(body).ok()?;
        // YAML: recognised by its top-level `kind: Secret` line, never parsed (regtrust
        // reads JSON only; `-o json` prints the same object as JSON).
        let kind = text
            .lines()
            .find_map(|l| l.strip_prefix("kind:"))
            .map(|k| k.trim().trim_matches(|c| c == '"' || c == '\''));
        if let Some(kind) = kind {
            let (name, namespace) = yaml_metadata(text);
            let name = name.unwrap_or_else(|| "NAME".to_string());
            return Some(if kind == "Secret" {
                format!(
                    "a Kubernetes Secret object in YAML, not the pull secret itself; regtrust \
                     reads such an object as JSON: `kubectl get secret {} {}-o json > secret.json` \
                     and --pull-secret secret.json, or decode its data: `{}`",
                    shell_quote(&name),
                    namespace
                        .as_deref()
                        .map(|n| format!("-n {} ", shell_quote(n)))
                        .unwrap_or_default(),
                    decode_command(&name, namespace.as_deref(), KEYS[0])
                )
            } else {
                format!(
                    "a Kubernetes {} object in YAML, not a pull secret; give a Secret of type \
                     kubernetes.io/dockerconfigjson (its decoded .dockerconfigjson, or the \
                     object as `kubectl get secret NAME -o json` prints it)",
                    super::show_key(kind)
                )
            });
        }
        let trimmed = text.trim();
        let base64ish = trimmed.len() >= 4
            && trimmed
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=\r\n".contains(&b));
        if !base64ish {
            return None;
        }
        let padded = trimmed.ends_with('=');
        let decoded = crate::go::pem::go_base64(trimmed.as_bytes(), padded).ok()?;
        let first = decoded.iter().find(|b| !b.is_ascii_whitespace())?;
        (*first == b'{').then(|| {
            let file = shell_quote(&source.display().to_string());
            format!(
                "the file is base64-encoded JSON (a Secret's .data value as `kubectl get secret \
                 -o jsonpath` prints it), not the JSON itself; decode it first: \
                 `base64 -d {file} > config.json` and --pull-secret config.json"
            )
        })
    }

    /// `metadata.name` and `metadata.namespace` of a YAML object, read from the indented
    /// lines right under a top-level `metadata:` (for the command only; a miss gives NAME).
    fn yaml_metadata(text: &str) -> (Option<String>, Option<String>) {
        let mut in_meta = false;
        let (mut name, mut namespace) = (None, None);
        for line in text.lines() {
            if !line.starts_with(' ') && !line.starts_with('\t') {
                in_meta = line.trim_end() == "metadata:";
                continue;
            }
            if !in_meta {
                continue;
            }
            let l = line.trim();
            let value = |v: &str| v.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
            if let Some(v) = l.strip_prefix("name:") {
                name.get_or_insert_with(|| value(v));
            } else if let Some(v) = l.strip_prefix("namespace:") {
                namespace.get_or_insert_with(|| value(v));
            }
        }
        (
            name.filter(|n| !n.is_empty()),
            namespace.filter(|n| !n.is_empty()),
        )
    }

    /// A JSON object with `kind` and `apiVersion`: a Secret's pull-secret document (its
    /// `stringData` value, else its base64 `data` value) and the context its problems are
    /// named with, or why it is refused.
    pub(super) fn unwrap(top: &Map<String, Value>) -> Result<(String, Vec<u8>), String> {
        let kind = top.get("kind").and_then(Value::as_str).unwrap_or("");
        let meta = top.get("metadata").and_then(Value::as_object);
        let field = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str);
        let name = field("name").unwrap_or("NAME").to_string();
        let namespace = field("namespace");
        if kind != "Secret" {
            return Err(format!(
                "a Kubernetes {} object, not a pull secret; give a Secret of type \
                 kubernetes.io/dockerconfigjson (as `kubectl get secret NAME -o json` prints \
                 it), or its decoded .dockerconfigjson",
                super::show_key(kind)
            ));
        }
        let shown = super::show_key(&name);
        // stringData wins over data, as the API server merges it on write.
        for key in KEYS {
            if let Some(v) = top
                .get("stringData")
                .and_then(Value::as_object)
                .and_then(|m| m.get(key))
            {
                return match v {
                    Value::String(s) => Ok((
                        format!("Secret {shown} .stringData[{key:?}]: "),
                        s.as_bytes().to_vec(),
                    )),
                    other => Err(format!(
                        "Secret {shown} .stringData[{key:?}] is {}, expected a string",
                        super::json_kind(other)
                    )),
                };
            }
        }
        for key in KEYS {
            let Some(v) = top
                .get("data")
                .and_then(Value::as_object)
                .and_then(|m| m.get(key))
            else {
                continue;
            };
            let decoded = v.as_str().and_then(|s| {
                crate::go::pem::go_base64(s.as_bytes(), s.trim().ends_with('=')).ok()
            });
            return match decoded {
                Some(bytes) => Ok((format!("Secret {shown} .data[{key:?}]: "), bytes)),
                None => Err(format!(
                    "Secret {shown} .data[{key:?}] is not base64 text; decode it by hand to \
                     see what it holds: `{}`",
                    decode_command(&name, namespace, key)
                )),
            };
        }
        let ty = top.get("type").and_then(Value::as_str).unwrap_or("Opaque");
        Err(format!(
            "Secret {shown} (type {}) has no .data[\".dockerconfigjson\"] or \
             .data[\".dockercfg\"]; kubelet uses only Secrets of type \
             kubernetes.io/dockerconfigjson as pull secrets; create one with \
             `kubectl create secret docker-registry` or give the decoded file: `{}`",
            super::show_key(ty),
            decode_command(&name, namespace, KEYS[0])
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const PASSWORD: &str = "S3cr3t-P@ss:w0rd";

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn b64_raw(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(s)
    }

    fn host(s: &str) -> RegistryHost {
        RegistryHost::parse(s).unwrap()
    }

    fn parse(json: &str) -> PullSecrets {
        PullSecrets::parse(Path::new("/in/.dockerconfigjson"), json.as_bytes())
    }

    /// Neither the password nor the `auth` value that carries it may appear anywhere a
    /// person or a log could read.
    fn assert_no_secret(case: &str, s: &PullSecrets, auth: &str) {
        let debug = format!("{s:?}");
        let problems = format!("{:?}", s.problems);
        for needle in [PASSWORD, auth] {
            if needle.len() < 4 {
                continue;
            }
            assert!(
                !debug.contains(needle),
                "{case}: Debug leaks {needle:?}: {debug}"
            );
            assert!(
                !problems.contains(needle),
                "{case}: problems leak {needle:?}"
            );
        }
    }

    struct Want<'a> {
        hosts: &'a [&'a str],
        /// (normalised key, username, password)
        creds: &'a [(&'a str, &'a str, &'a str)],
        problems: &'a [&'a str],
    }

    #[test]
    fn documents() {
        let auth = b64(format!("robot$ci:{PASSWORD}").as_bytes());
        let auth_raw = b64_raw(b"robot:pw1");
        let auth_wrapped = {
            let long = b64(format!("{}:{PASSWORD}", "u".repeat(80)).as_bytes());
            format!("{}\\n{}", &long[..76], &long[76..])
        };
        let url_safe = b64(b"user:\xfb\xff\xfe")
            .replace('+', "-")
            .replace('/', "_");
        let no_colon = b64(b"justausername");
        let trailing_space = format!("{} ", b64(b"user:pass1"));
        let not_utf8 = b64(b"user:\xff\xfe");
        let deep = "[".repeat(100_000);
        let long_key = "a".repeat(300);
        let u80 = "u".repeat(80);
        let wrapped_creds = [("h.local", u80.as_str(), PASSWORD)];
        let long_key_problem = format!(
            r#"key "{}"… (300 characters): not a registry host (name of 300 characters; at most 253)"#,
            "a".repeat(100)
        );
        let hostile_problems = [
            r#"pull secret /in/.dockerconfigjson: key "": not a registry host (empty)"#,
            r#"key " harbor": not a registry host (contains ' ')"#,
            r#"key "..": not a registry host (label "" is not a DNS label)"#,
            r#"key "../etc": not a registry host"#,
            r#"key "/": not a registry host (empty)"#,
            r#"key "/etc/passwd": not a registry host (empty)"#,
            &long_key_problem,
            r#"key "har\0bor": not a registry host (contains '\0')"#,
            r#"key "harbor\nx": not a registry host (contains '\n')"#,
        ];
        let cases: Vec<(&str, String, Want)> = vec![
            (
                "dockerconfigjson with auth",
                format!(r#"{{"auths":{{"harbor.local":{{"auth":"{auth}","email":"x@y"}}}}}}"#),
                Want { hosts: &["harbor.local"], creds: &[("harbor.local", "robot$ci", PASSWORD)], problems: &[] },
            ),
            (
                "username and password fields",
                format!(r#"{{"auths":{{"harbor.local:8443":{{"username":"u","password":"{PASSWORD}"}}}}}}"#),
                Want { hosts: &["harbor.local:8443"], creds: &[("harbor.local:8443", "u", PASSWORD)], problems: &[] },
            ),
            (
                "auth overrides username and password",
                format!(r#"{{"auths":{{"h.local":{{"username":"other","password":"x","auth":"{auth}"}}}}}}"#),
                Want { hosts: &["h.local"], creds: &[("h.local", "robot$ci", PASSWORD)], problems: &[] },
            ),
            (
                "field names match case-insensitively, as Go's encoding/json",
                format!(r#"{{"auths":{{"h.local":{{"Auth":"{auth}"}}}}}}"#),
                Want { hosts: &["h.local"], creds: &[("h.local", "robot$ci", PASSWORD)], problems: &[] },
            ),
            (
                "legacy dockercfg",
                format!(r#"{{"https://harbor.local:8443":{{"auth":"{auth}"}}}}"#),
                Want { hosts: &["harbor.local:8443"], creds: &[("harbor.local:8443", "robot$ci", PASSWORD)], problems: &[] },
            ),
            (
                "unpadded auth (RawStdEncoding)",
                format!(r#"{{"auths":{{"h.local":{{"auth":"{auth_raw}"}}}}}}"#),
                Want { hosts: &["h.local"], creds: &[("h.local", "robot", "pw1")], problems: &[] },
            ),
            (
                "auth wrapped at 76 columns (Go skips the newline)",
                format!(r#"{{"auths":{{"h.local":{{"auth":"{auth_wrapped}"}}}}}}"#),
                Want { hosts: &["h.local"], creds: &wrapped_creds, problems: &[] },
            ),
            (
                "key normalisation",
                format!(
                    r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"Harbor.Example.com/v2/":{{"auth":"{auth}"}},"http://h.local:5000/v2/team":{{"auth":"{auth}"}}}}}}"#
                ),
                Want {
                    hosts: &["h.local:5000", "harbor.example.com", "index.docker.io"],
                    creds: &[
                        ("harbor.example.com", "robot$ci", PASSWORD),
                        ("h.local:5000/team", "robot$ci", PASSWORD),
                        ("index.docker.io", "robot$ci", PASSWORD),
                    ],
                    problems: &[],
                },
            ),
            (
                "two keys, one host",
                format!(r#"{{"auths":{{"harbor.local":{{"auth":"{auth}"}},"https://harbor.local/v2/":{{"username":"b","password":"c"}}}}}}"#),
                Want {
                    hosts: &["harbor.local"],
                    creds: &[("harbor.local", "robot$ci", PASSWORD), ("harbor.local", "b", "c")],
                    problems: &[],
                },
            ),
            (
                "wildcard key: credentials only",
                format!(r#"{{"auths":{{"*.example.com":{{"auth":"{auth}"}}}}}}"#),
                Want { hosts: &[], creds: &[("*.example.com", "robot$ci", PASSWORD)], problems: &[] },
            ),
            (
                "config.json written with a credsStore",
                r#"{"auths":{"harbor.local":{}},"credsStore":"desktop","HttpHeaders":{"User-Agent":"x"}}"#.to_string(),
                Want {
                    hosts: &["harbor.local"],
                    creds: &[("harbor.local", "", "")],
                    problems: &[r#"pull secret /in/.dockerconfigjson: key "harbor.local": no auth and no username/password: credentials live in a credential helper, not in the secret; kubelet pulls anonymously"#],
                },
            ),
            (
                "identity token only",
                r#"{"auths":{"harbor.local":{"identitytoken":"tok"}}}"#.to_string(),
                Want {
                    hosts: &["harbor.local"],
                    creds: &[("harbor.local", "", "")],
                    problems: &["kubelet ignores identitytoken and registrytoken"],
                },
            ),
            (
                "config.json with credHelpers and no auths",
                r#"{"credHelpers":{"harbor.local":"ecr-login"}}"#.to_string(),
                Want { hosts: &[], creds: &[], problems: &["no \"auths\" object: this secret names no registry (credsStore and credHelpers"] },
            ),
            (
                "empty auths",
                r#"{"auths":{}}"#.to_string(),
                Want { hosts: &[], creds: &[], problems: &["\"auths\" is empty"] },
            ),
            (
                "malformed auth: bad base64 rejects the whole secret, hosts still managed",
                format!(r#"{{"auths":{{"a.local":{{"auth":"{auth}"}},"b.local":{{"auth":"not base64!"}}}}}}"#),
                Want {
                    hosts: &["a.local", "b.local"],
                    creds: &[],
                    problems: &[r#"pull secret /in/.dockerconfigjson: key "b.local": malformed auth (illegal base64 data at input byte 3; expected standard base64 (A-Z a-z 0-9 + /) of username:password): kubelet rejects the whole secret in that case, so every pull using this secret fails (whichever registry it names)"#],
                },
            ),
            (
                "auth without a colon",
                format!(r#"{{"auths":{{"a.local":{{"auth":"{no_colon}"}}}}}}"#),
                Want {
                    hosts: &["a.local"],
                    creds: &[],
                    problems: &["malformed auth (unable to parse auth field, must be formatted as base64(username:password)): kubelet rejects the whole secret"],
                },
            ),
            (
                "URL-safe base64",
                format!(r#"{{"auths":{{"a.local":{{"auth":"{url_safe}"}}}}}}"#),
                Want { hosts: &["a.local"], creds: &[], problems: &["malformed auth (illegal base64 data at input byte"] },
            ),
            (
                "padded auth with a trailing space",
                format!(r#"{{"auths":{{"a.local":{{"auth":"{trailing_space}"}}}}}}"#),
                Want { hosts: &["a.local"], creds: &[], problems: &["malformed auth"] },
            ),
            (
                "auth that is not UTF-8",
                format!(r#"{{"auths":{{"a.local":{{"auth":"{not_utf8}"}}}}}}"#),
                Want { hosts: &["a.local"], creds: &[], problems: &["not UTF-8; kubelet sends it as is, regtrust cannot use it"] },
            ),
            (
                "entry is not an object",
                format!(r#"{{"auths":{{"a.local":"x","b.local":{{"auth":"{auth}"}}}}}}"#),
                Want { hosts: &["a.local", "b.local"], creds: &[], problems: &["key \"a.local\": the entry is a string, expected an object: kubelet rejects the whole secret"] },
            ),
            (
                "field of the wrong type",
                r#"{"auths":{"a.local":{"username":5}}}"#.to_string(),
                Want { hosts: &["a.local"], creds: &[], problems: &["field \"username\" is a number, expected a string: kubelet rejects"] },
            ),
            (
                "auths is not an object",
                r#"{"auths":[]}"#.to_string(),
                Want { hosts: &[], creds: &[], problems: &["\"auths\" is an array, expected an object: kubelet rejects"] },
            ),
            (
                "BOM",
                format!("\u{feff}{{\"auths\":{{\"a.local\":{{\"auth\":\"{auth}\"}}}}}}"),
                Want { hosts: &["a.local"], creds: &[], problems: &["byte-order mark, which kubelet's JSON decoder refuses"] },
            ),
            ("array", "[]".into(), Want { hosts: &[], creds: &[], problems: &["the document is an array, expected a JSON object"] }),
            ("string", "\"harbor\"".into(), Want { hosts: &[], creds: &[], problems: &["the document is a string"] }),
            ("number", "5".into(), Want { hosts: &[], creds: &[], problems: &["the document is a number"] }),
            ("null", "null".into(), Want { hosts: &[], creds: &[], problems: &["the document is null"] }),
            ("truncated JSON", "{\"auths\":{".into(), Want { hosts: &[], creds: &[], problems: &["not valid JSON (EOF while parsing"] }),
            ("deep nesting", deep, Want { hosts: &[], creds: &[], problems: &["not valid JSON (recursion limit exceeded"] }),
            ("empty", String::new(), Want { hosts: &[], creds: &[], problems: &["empty file; expected"] }),
            ("whitespace", " \n\t".into(), Want { hosts: &[], creds: &[], problems: &["empty file"] }),
            (
                "hostile keys: reported, the good one still used",
                format!(
                    r#"{{"auths":{{"/":{{}},"..":{{}},"../etc":{{}},"/etc/passwd":{{}},"har\u0000bor":{{}}," harbor":{{}},"harbor\nx":{{}},"{long_key}":{{}},"":{{}},"good.local":{{"auth":"{auth}"}}}}}}"#
                ),
                Want {
                    hosts: &["good.local"],
                    creds: &[("good.local", "robot$ci", PASSWORD)],
                    problems: &hostile_problems,
                },
            ),
        ];
        for (case, json, want) in cases {
            let s = parse(&json);
            let hosts: Vec<&str> = s.hosts.keys().map(|h| h.as_str()).collect();
            let mut want_hosts = want.hosts.to_vec();
            want_hosts.sort();
            assert_eq!(hosts, want_hosts, "{case}: {:?}", s.problems);
            for path in s.hosts.values() {
                assert_eq!(path, Path::new("/in/.dockerconfigjson"), "{case}");
            }
            let creds: Vec<(String, &str, &str)> = s
                .credentials
                .iter()
                .map(|c| (c.key.normalised(), c.username.as_str(), c.password()))
                .collect();
            let mut want_creds: Vec<(String, &str, &str)> = want
                .creds
                .iter()
                .map(|(k, u, p)| (k.to_string(), *u, *p))
                .collect();
            let mut got_creds = creds.clone();
            got_creds.sort();
            want_creds.sort();
            assert_eq!(got_creds, want_creds, "{case}: {:?}", s.problems);
            assert_eq!(
                s.problems.len(),
                want.problems.len(),
                "{case}: {:#?}",
                s.problems
            );
            for want_p in want.problems {
                assert!(
                    s.problems
                        .iter()
                        .any(|p| format!("{}: {}", p.source, p.message).contains(want_p)),
                    "{case}: no problem containing {want_p:?} in {:#?}",
                    s.problems
                );
            }
            for p in &s.problems {
                assert_eq!(p.source, "pull secret /in/.dockerconfigjson", "{case}");
            }
            for a in [&auth, &auth_raw, &url_safe, &no_colon, &not_utf8] {
                assert_no_secret(case, &s, a);
            }
        }
    }

    #[test]
    fn whole_secret_objects_and_base64_files() {
        let auth = b64(format!("robot:{PASSWORD}").as_bytes());
        let inner = format!(r#"{{"auths":{{"harbor.local":{{"auth":"{auth}"}}}}}}"#);
        let data = b64(inner.as_bytes());
        let object = |data: &str, extra: &str| {
            format!(
                r#"{{"apiVersion":"v1","kind":"Secret","metadata":{{"name":"regcred","namespace":"ci"}},"type":"kubernetes.io/dockerconfigjson","data":{data}{extra}}}"#
            )
        };
        // `kubectl get secret -o json`: the .dockerconfigjson inside is read; no trust dir
        // named after the object's own fields.
        let s = parse(&object(&format!(r#"{{".dockerconfigjson":"{data}"}}"#), ""));
        assert_eq!(s.hosts.keys().collect::<Vec<_>>(), [&host("harbor.local")]);
        assert_eq!(s.credentials.len(), 1);
        assert!(
            s.problems.is_empty() && s.held.is_empty(),
            "{:?}",
            s.problems
        );
        assert_no_secret("secret object", &s, &auth);
        // Legacy .dockercfg inside, and stringData (which wins, as the API server merges it).
        let legacy = b64(format!(r#"{{"old.local":{{"auth":"{auth}"}}}}"#).as_bytes());
        let s = parse(&object(&format!(r#"{{".dockercfg":"{legacy}"}}"#), ""));
        assert_eq!(s.hosts.keys().collect::<Vec<_>>(), [&host("old.local")]);
        let string_data = format!(
            r#","stringData":{{".dockerconfigjson":{}}}"#,
            serde_json::to_string(r#"{"auths":{"plain.local":{}}}"#).unwrap()
        );
        let s = parse(&object(r#"{}"#, &string_data));
        assert_eq!(s.hosts.keys().collect::<Vec<_>>(), [&host("plain.local")]);
        // A problem inside says where it is, and the kubelet sentence applies (kubelet
        // reads that decoded document).
        let bad_inner = b64(br#"{"auths":{"h.local":{"auth":"%%%"}}}"#);
        let s = parse(&object(
            &format!(r#"{{".dockerconfigjson":"{bad_inner}"}}"#),
            "",
        ));
        let text = format!("{:?}", s.problems);
        assert!(
            text.contains(r#"Secret \"regcred\" .data[\".dockerconfigjson\"]: key \"h.local\": malformed auth"#)
                && text.contains("kubelet rejects the whole secret"),
            "{text}"
        );
        // Refused, with the exact decode command, nothing read, the pass held; no kubelet
        // sentence (kubelet never reads the object as a file).
        let refused = [
            (
                object(r#"{".dockerconfigjson":"not base64!"}"#, ""),
                r#"is not base64 text; decode it by hand to see what it holds: `kubectl get secret regcred -n ci -o jsonpath='{.data.\.dockerconfigjson}' | base64 -d > config.json`"#,
            ),
            (
                r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"tls"},"type":"kubernetes.io/tls","data":{"tls.crt":"AA=="}}"#.to_string(),
                r#"Secret "tls" (type "kubernetes.io/tls") has no .data[".dockerconfigjson"]"#,
            ),
            (
                r#"{"apiVersion":"v1","kind":"ConfigMap","data":{}}"#.to_string(),
                r#"a Kubernetes "ConfigMap" object, not a pull secret"#,
            ),
            (
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\n  namespace: ci\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: eyJ9\n".to_string(),
                "a Kubernetes Secret object in YAML, not the pull secret itself; regtrust reads such an object as JSON: `kubectl get secret regcred -n ci -o json > secret.json`",
            ),
            (
                data.clone(),
                "the file is base64-encoded JSON (a Secret's .data value as `kubectl get secret -o jsonpath` prints it), not the JSON itself; decode it first: `base64 -d /in/.dockerconfigjson > config.json`",
            ),
            (format!("{data}\n"), "base64 -d /in/.dockerconfigjson"),
        ];
        for (doc, want) in refused {
            let s = parse(&doc);
            let text = s
                .problems
                .iter()
                .map(|p| p.message.clone())
                .collect::<Vec<_>>()
                .join("\n");
            assert!(text.contains(want), "{doc}:\n{text}");
            assert!(!text.contains("kubelet rejects"), "{doc}:\n{text}");
            assert!(s.hosts.is_empty() && s.credentials.is_empty(), "{doc}");
            assert_eq!(s.held.len(), 1, "{doc}");
            assert_eq!(s.incomplete.len(), 1, "{doc}");
        }
        // A key that is no registry holds the pass too; a good document holds nothing.
        let s = parse(r#"{"auths":{"../etc":{},"good.local":{}}}"#);
        assert_eq!(s.held.len(), 1);
        assert!(format!("{:?}", s.problems).contains("nothing is written or removed"));
        assert!(parse(r#"{"auths":{"good.local":{}}}"#).held.is_empty());
        assert_eq!(secret_object::shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn garbage_bytes_and_invalid_utf8() {
        let cases: [(&str, &[u8]); 4] = [
            ("garbage", b"\x00\x01\xfe garbage \xff"),
            ("invalid UTF-8 in a key", b"{\"auths\":{\"\xff\xfe\":{}}}"),
            (
                "invalid UTF-8 in a value",
                b"{\"auths\":{\"a.local\":{\"auth\":\"\xff\"}}}",
            ),
            ("NUL", b"\0"),
        ];
        for (case, bytes) in cases {
            let s = PullSecrets::parse(Path::new("/in/x"), bytes);
            assert!(s.hosts.is_empty() && s.credentials.is_empty(), "{case}");
            assert_eq!(s.problems.len(), 1, "{case}: {:?}", s.problems);
            assert!(
                s.problems[0].message.starts_with("not valid JSON ("),
                "{case}: {:?}",
                s.problems
            );
        }
    }

    #[test]
    fn debug_redacts_the_password() {
        let c = Credential::new(
            parse_key_ok("harbor.local"),
            "robot",
            PASSWORD,
            "/in/.dockerconfigjson",
        );
        let d = format!("{c:?} {c:#?}");
        assert!(!d.contains(PASSWORD), "{d}");
        assert!(d.contains("<redacted>") && d.contains("robot"), "{d}");
        assert!(c.has_secret());
        assert!(!Credential::new(parse_key_ok("h"), "", "", "/x").has_secret());
    }

    fn parse_key_ok(s: &str) -> CredentialKey {
        host::parse_key(s).unwrap()
    }

    #[test]
    fn matches_like_kubelet() {
        // (key, image host, kubelet would use the key)
        let cases = [
            ("harbor.local", "harbor.local", true),
            ("harbor.local", "harbor.local:443", false),
            ("harbor.local:443", "harbor.local", false),
            ("https://harbor.local/v2/", "harbor.local", true),
            ("harbor.local/team", "harbor.local", true),
            ("*.example.com", "a.example.com", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", "a.b.example.com", false),
            ("*.example.com", "a.example.com:5000", false),
            ("*.example.com:5000", "a.example.com:5000", true),
            ("*.example.com:5000", "a.example.com:5001", false),
            ("reg-*.example.com", "reg-1.example.com", true),
            ("reg-*.example.com", "other.example.com", false),
            ("reg-?.example.com", "reg-1.example.com", true),
            ("reg-?.example.com", "reg-12.example.com", false),
            ("x[a-c]*.example.com", "xb1.example.com", true),
            ("x[a-c]*.example.com", "xd1.example.com", false),
            ("x[].example.com", "x.example.com", false),
            ("*", "localhost", true),
            ("*", "harbor.local", false),
            ("*.*", "harbor.local", true),
            ("[::1]:5000", "[::1]:5000", true),
            ("[::1]:5000", "[::1]:5001", false),
            ("127.0.0.1:5000", "127.0.0.1:5000", true),
        ];
        for (key, target, want) in cases {
            let c = Credential::new(parse_key_ok(key), "u", "p", "/x");
            assert_eq!(c.matches(&host(target)), want, "{key} vs {target}");
        }
    }

    #[test]
    fn filepath_match_port() {
        let cases = [
            ("*", "", true),
            ("*", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b", "ab", true),
            ("a*b", "abc", false),
            ("a**", "a", true),
            ("*a*a*a*a*a*a*b", &"a".repeat(60), false),
            ("?", "", false),
            ("[", "x", false),
            ("[a-", "a", false),
            ("[]", "]", false),
            ("[-a]", "a", false),
            ("[^a]", "b", true),
            ("[^a]", "a", false),
            ("[a-cx]", "x", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("abc", "abc", true),
            ("abc", "abd", false),
        ];
        for (p, s, want) in cases {
            assert_eq!(go_filepath_match(p, s), want, "{p:?} vs {s:?}");
        }
    }

    #[test]
    fn credentials_in_kubelet_order() {
        let json = r#"{"auths":{
            "harbor.local":{"username":"plain","password":"p"},
            "*.local":{"username":"wild","password":"p"},
            "harbor.local/team":{"username":"team","password":"p"},
            "harbor.local:443":{"username":"port","password":"p"},
            "other.local":{"username":"other","password":"p"}
        }}"#;
        let s = parse(json);
        let users: Vec<&str> = s
            .credentials_for(&host("harbor.local"))
            .iter()
            .map(|c| c.username.as_str())
            .collect();
        assert_eq!(users, ["team", "plain", "wild"]);
        assert!(s.credentials_for(&host("nowhere.example")).is_empty());
    }

    #[test]
    fn read_all_files_dirs_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let doc = |h: &str| {
            format!(r#"{{"auths":{{"{h}":{{"username":"u","password":"{PASSWORD}"}}}}}}"#)
        };
        std::fs::write(d.join("a.json"), doc("a.local")).unwrap();
        std::fs::write(d.join("a-again.json"), doc("a.local")).unwrap();
        std::os::unix::fs::symlink(d.join("a.json"), d.join("link.json")).unwrap();
        // A mounted Secret volume: .dockerconfigjson -> ..data/.dockerconfigjson
        let vol = d.join("vol");
        let ts = vol.join("..2026_01_01_00_00_00.123");
        std::fs::create_dir_all(&ts).unwrap();
        std::fs::write(ts.join(".dockerconfigjson"), doc("vol.local")).unwrap();
        std::os::unix::fs::symlink("..2026_01_01_00_00_00.123", vol.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/.dockerconfigjson", vol.join(".dockerconfigjson"))
            .unwrap();
        let legacy = d.join("legacy");
        std::fs::create_dir(&legacy).unwrap();
        std::fs::write(
            legacy.join(".dockercfg"),
            r#"{"legacy.local":{"auth":"dTpw"}}"#,
        )
        .unwrap();
        let cfg = d.join("cfg");
        std::fs::create_dir(&cfg).unwrap();
        std::fs::write(cfg.join("config.json"), doc("cfg.local")).unwrap();
        let both = d.join("both");
        std::fs::create_dir(&both).unwrap();
        std::fs::write(both.join(".dockerconfigjson"), doc("first.local")).unwrap();
        std::fs::write(both.join("config.json"), doc("second.local")).unwrap();
        std::fs::create_dir(d.join("empty")).unwrap();
        let huge = std::fs::File::create(d.join("huge.json")).unwrap();
        huge.set_len(10 * 1024 * 1024).unwrap();

        let paths: Vec<PathBuf> = vec![
            d.join("a.json"),
            d.join("link.json"),
            d.join("a-again.json"),
            vol.clone(),
            legacy.clone(),
            cfg.clone(),
            both.clone(),
            d.join("empty"),
            d.join("huge.json"),
            d.join("missing.json"),
            PathBuf::from("/dev/null"),
        ];
        let s = PullSecrets::read_all(&paths);
        let hosts: Vec<(&str, PathBuf)> = s
            .hosts
            .iter()
            .map(|(h, p)| (h.as_str(), p.clone()))
            .collect();
        assert_eq!(
            hosts,
            vec![
                ("a.local", d.join("a.json")),
                ("cfg.local", cfg.join("config.json")),
                ("first.local", both.join(".dockerconfigjson")),
                ("legacy.local", legacy.join(".dockercfg")),
                ("vol.local", vol.join(".dockerconfigjson")),
            ]
        );
        assert_eq!(s.credentials.len(), 7, "{:?}", s.credentials);
        let legacy_cred = s.credentials_for(&host("legacy.local"));
        assert_eq!(
            (legacy_cred[0].username.as_str(), legacy_cred[0].password()),
            ("u", "p")
        );
        let problems: Vec<String> = s
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.source, p.message))
            .collect();
        let want = [
            format!(
                "pull secret {}: a directory without .dockerconfigjson, .dockercfg or config.json",
                d.join("empty").display()
            ),
            format!(
                "pull secret {}: 10485760 bytes; at most 1048576 (1 MiB) accepted, refusing it",
                d.join("huge.json").display()
            ),
            format!(
                "pull secret {}: cannot read it: No such file or directory",
                d.join("missing.json").display()
            ),
            "pull secret /dev/null: not a regular file".to_string(),
        ];
        assert_eq!(problems.len(), want.len(), "{problems:#?}");
        for (got, want) in problems.iter().zip(&want) {
            assert!(
                got.starts_with(want.as_str()),
                "{got:?} does not start with {want:?}"
            );
        }
        assert!(!format!("{s:?}").contains(PASSWORD));
    }
}
