//! A destination's PII rules applied to a normalized event's JSON in one pass.
//!
//! The definition of the rules is `connectors.sinks.transform.PiiTransform.apply_decoded`
//! (decode the event, act on the fields, encode it again). `Rules.apply` gives the same
//! event without decoding it: it finds the top-level members' spans, replaces or leaves out
//! the targeted values and copies every other member as it was. The caller has read the
//! event's head with a validating JSON decoder first (the connector always does), so this
//! pass only has to be safe on any input, not to judge it: anything it does not expect (not
//! an object, a targeted value that is neither text nor null, a malformed member, a key
//! repeated where it matters) is handed to the definition, whose decoding names the fault.

use std::borrow::Cow;

use hmac::{Hmac, KeyInit, Mac};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use sha2::Sha256;

const MASK: &str = "***";
const DISPLAY: &[u8] = b"actor_display";
const DISPLAY_SOURCES: [&[u8]; 2] = [b"actor_email", b"actor_id"];
/// Repeats every field in clear: left out whenever a rule is set.
const RAW: &[u8] = b"raw";
/// Deeper nesting than this is declined (the definition decides).
const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy)]
enum Mask {
    Email,
    Ip,
    Text,
}

#[derive(Clone, Copy)]
enum Action {
    Drop,
    Mask(Mask),
    Hash,
}

/// One destination's rules on the normalized event's top-level fields.
#[pyclass(frozen, module = "connectors.sinks._pii")]
struct Rules {
    rules: Vec<(Vec<u8>, Action)>,
    /// Whether `actor_display` follows the rules (a rule on the email or the id).
    display: bool,
    keyed: Hmac<Sha256>,
    /// `connectors.sinks.transform.mask_ip`, for addresses other than dotted IPv4.
    mask_ip: Py<PyAny>,
    /// The definition (`PiiTransform.apply_decoded`), for the events this pass declines.
    fallback: Py<PyAny>,
    /// Bit n set: some name this pass acts on is n bytes long (most members are passed
    /// over on their length alone).
    lengths: u128,
}

#[pymethods]
impl Rules {
    /// `rules`: (field, action) pairs, a field being a top-level name of the normalized
    /// event and an action one of `drop`, `mask`, `hash`; `key`: the destination's HMAC
    /// key; `mask_ip`: the Python function that masks an address; `fallback`: the function
    /// that applies the rules to the events this pass declines.
    #[new]
    fn new(
        rules: Vec<(String, String)>,
        key: &[u8],
        mask_ip: Py<PyAny>,
        fallback: Py<PyAny>,
    ) -> PyResult<Self> {
        let mut parsed = Vec::with_capacity(rules.len());
        for (field, action) in rules {
            let action = match action.as_str() {
                "drop" => Action::Drop,
                "hash" => Action::Hash,
                "mask" => Action::Mask(match field.as_str() {
                    "actor_email" => Mask::Email,
                    "ip" => Mask::Ip,
                    _ => Mask::Text,
                }),
                other => return Err(PyValueError::new_err(format!("not an action: {other:?}"))),
            };
            parsed.push((field.into_bytes(), action));
        }
        let display = parsed.iter().any(|(name, _)| DISPLAY_SOURCES.contains(&name.as_slice()));
        let keyed = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|_| PyValueError::new_err("unusable HMAC key"))?;
        let mut lengths = 0u128;
        let names = parsed.iter().map(|(name, _)| name.as_slice());
        for name in names.chain([RAW, DISPLAY]).chain(DISPLAY_SOURCES) {
            lengths |= 1u128.checked_shl(name.len() as u32).unwrap_or(0);
        }
        if parsed.iter().any(|(name, _)| name.len() >= 128) {
            return Err(PyValueError::new_err("a field name longer than 127 bytes"));
        }
        Ok(Rules { rules: parsed, display, keyed, mask_ip, fallback, lengths })
    }

    /// The normalized event `raw` (JSON) with the rules applied: by this pass, or by
    /// `fallback` when it declines the event (see the module).
    fn apply<'py>(&self, raw: &Bound<'py, PyBytes>) -> PyResult<Bound<'py, PyAny>> {
        let py = raw.py();
        match self.splice(py, raw.as_bytes())? {
            Some(body) => Ok(PyBytes::new(py, &body).into_any()),
            None => self.fallback.bind(py).call1((raw,)),
        }
    }

    /// Whether this pass gives `raw` (JSON) with the rules applied (False: `apply` hands it
    /// to `fallback`). For tests.
    fn serves(&self, py: Python<'_>, raw: &[u8]) -> PyResult<bool> {
        Ok(self.splice(py, raw)?.is_some())
    }
}

/// What the rules make of a member.
enum After {
    /// As it was: copied with its neighbours in one piece.
    Kept,
    Dropped,
    /// The JSON of the value's replacement: always a text, never empty.
    Replaced(Vec<u8>),
}

/// Where a display source's JSON is: in the input or in the output.
#[derive(Clone, Copy, PartialEq)]
enum Held {
    Input(usize, usize),
    Output(usize, usize),
}

impl Rules {
    fn splice(&self, py: Python<'_>, raw: &[u8]) -> PyResult<Option<Vec<u8>>> {
        let mut body = Body::new(raw);
        // The display sources' text as the rules leave it: None when absent, null or empty
        // (passed over, as by Python's `or`); the last of a repeated key counts, as
        // decoders take it.
        let mut sources: [Option<Held>; 2] = [None, None];
        // The sources the display was written from, where the event has one: a source
        // repeated after it (never in the pipeline's events) would change it.
        let mut displayed: Option<[Option<Held>; 2]> = None;
        let mut scan = Members::new(raw);
        while let Some((key, value)) = scan.next() {
            let key_text = &raw[key.0..key.1];
            if self.lengths & 1u128.checked_shl((key_text.len() - 2) as u32).unwrap_or(0) == 0
                && !scan.escaped
            {
                body.keep(key.0, value.1);
                continue;
            }
            let unescaped;
            let name: &[u8] = if scan.escaped {
                match serde_json::from_slice::<String>(key_text) {
                    Ok(text) => {
                        unescaped = text;
                        unescaped.as_bytes()
                    }
                    Err(_) => return Ok(None),
                }
            } else {
                &key_text[1..key_text.len() - 1]
            };
            let value_text = &raw[value.0..value.1];
            if self.display && name == DISPLAY {
                if displayed.is_some() {
                    return Ok(None); // repeated: the definition decides
                }
                body.key(key_text);
                let display = display_of(raw, &body.out, &sources);
                body.out.extend_from_slice(&display);
                displayed = Some(sources);
                continue;
            }
            let after = if name == RAW {
                After::Dropped
            } else if let Some((_, action)) = self.rules.iter().find(|(n, _)| n == name) {
                match self.act(py, *action, value_text)? {
                    Some(after) => after,
                    None => return Ok(None),
                }
            } else {
                After::Kept
            };
            let held = match &after {
                After::Kept => {
                    body.keep(key.0, value.1);
                    Some(Held::Input(value.0, value.1))
                }
                After::Dropped => {
                    body.flush();
                    None
                }
                After::Replaced(json) => {
                    let start = body.key(key_text);
                    body.out.extend_from_slice(json);
                    Some(Held::Output(start, body.out.len()))
                }
            };
            if self.display {
                if let Some(i) = DISPLAY_SOURCES.iter().position(|s| *s == name) {
                    sources[i] = match (held, value_text) {
                        (None, _) | (Some(Held::Input(..)), b"null" | b"\"\"") => None,
                        (Some(Held::Input(..)), _) if value_text.first() != Some(&b'"') => {
                            return Ok(None); // not text: truthiness is Python's
                        }
                        (held, _) => held,
                    };
                }
            }
        }
        if !scan.complete() {
            return Ok(None);
        }
        body.flush();
        match displayed {
            Some(written) if written != sources => return Ok(None), // the definition decides
            None if self.display => {
                body.key(b"\"actor_display\"");
                let display = display_of(raw, &body.out, &sources);
                body.out.extend_from_slice(&display);
            }
            _ => {}
        }
        Ok(Some(body.finish()))
    }

    /// `action` on the JSON value `raw` (an empty text and null stay as they are); None
    /// to decline.
    fn act(&self, py: Python<'_>, action: Action, raw: &[u8]) -> PyResult<Option<After>> {
        if let Action::Drop = action {
            return Ok(Some(After::Dropped));
        }
        let text = match text_of(raw) {
            Some(Some(text)) if !text.is_empty() => text,
            Some(_) => return Ok(Some(After::Kept)),
            None => return Ok(None),
        };
        let after = match action {
            Action::Hash => return Ok(Some(After::Replaced(self.hex_mac(&text)))),
            Action::Mask(Mask::Text) => mask_text(&text),
            Action::Mask(Mask::Email) => match text.rsplit_once('@') {
                Some((local, domain)) => format!("{}{MASK}@{domain}", first_char(local)),
                None => mask_text(&text),
            },
            Action::Mask(Mask::Ip) => match mask_ipv4(&text).or_else(|| mask_ipv6(&text)) {
                Some(json) => return Ok(Some(After::Replaced(json))),
                None => self.mask_ip.bind(py).call1((text.as_ref(),))?.extract::<String>()?,
            },
            Action::Drop => unreachable!("handled above"),
        };
        Ok(Some(After::Replaced(json_text(&after))))
    }

    /// The hash action's value as JSON: the hex HMAC-SHA256 under the key, quoted.
    fn hex_mac(&self, value: &str) -> Vec<u8> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut mac = self.keyed.clone();
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut json = Vec::with_capacity(digest.len() * 2 + 2);
        json.push(b'"');
        for byte in digest.iter() {
            json.push(DIGITS[usize::from(byte >> 4)]);
            json.push(DIGITS[usize::from(byte & 0x0f)]);
        }
        json.push(b'"');
        json
    }
}

/// The spliced object: runs of kept members copied from the input as they are (with the
/// separators between them), the others written member by member.
struct Body<'a> {
    raw: &'a [u8],
    out: Vec<u8>,
    /// The kept run not yet copied: from its first key to its last value.
    run: Option<(usize, usize)>,
}

impl<'a> Body<'a> {
    fn new(raw: &'a [u8]) -> Self {
        let mut out = Vec::with_capacity(raw.len() + 64);
        out.push(b'{');
        Body { raw, out, run: None }
    }

    /// The member from `start` (its key) to `end` (its value's end) stays as it is.
    fn keep(&mut self, start: usize, end: usize) {
        let start = self.run.map_or(start, |(first, _)| first);
        self.run = Some((start, end));
    }

    fn flush(&mut self) {
        if let Some((start, end)) = self.run.take() {
            self.separate();
            self.out.extend_from_slice(&self.raw[start..end]);
        }
    }

    /// Writes a member's key (quoted) and colon; its value goes at the returned offset.
    fn key(&mut self, key: &[u8]) -> usize {
        self.flush();
        self.separate();
        self.out.extend_from_slice(key);
        self.out.push(b':');
        self.out.len()
    }

    fn separate(&mut self) {
        if self.out.len() > 1 {
            self.out.push(b',');
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.push(b'}');
        self.out
    }
}

/// The top-level members of a JSON object, one at a time, as the spans of their key (with
/// the quotes) and value, until the end of the object or anything this scan does not read
/// (then `complete` is false).
struct Members<'a> {
    raw: &'a [u8],
    at: usize,
    started: bool,
    /// The object's closing brace was read (`at` is past it).
    closed: bool,
    /// Whether the last key has escapes (its text is not its bytes).
    escaped: bool,
}

type Spans = ((usize, usize), (usize, usize));

impl<'a> Members<'a> {
    fn new(raw: &'a [u8]) -> Self {
        Members { raw, at: 0, started: false, closed: false, escaped: false }
    }

    /// Whether the input was one whole object (after `next` gave None).
    fn complete(&self) -> bool {
        self.closed && skip_space(self.raw, self.at) == self.raw.len()
    }

    fn next(&mut self) -> Option<Spans> {
        let raw = self.raw;
        if self.closed {
            return None;
        }
        let mut at = skip_space(raw, self.at);
        let opening = if self.started { b',' } else { b'{' };
        match raw.get(at) {
            Some(b'}') if self.started => {
                self.closed = true;
                self.at = at + 1;
                return None;
            }
            Some(found) if *found == opening => at = skip_space(raw, at + 1),
            _ => return None,
        }
        if !self.started {
            self.started = true;
            if raw.get(at) == Some(&b'}') {
                self.closed = true;
                self.at = at + 1;
                return None;
            }
        }
        if raw.get(at) != Some(&b'"') {
            return None;
        }
        let (key_end, escaped) = string_end(raw, at)?;
        self.escaped = escaped;
        let key = (at, key_end);
        at = skip_space(raw, key_end);
        if raw.get(at) != Some(&b':') {
            return None;
        }
        let value_start = skip_space(raw, at + 1);
        let value_end = value_end(raw, value_start, 0)?;
        self.at = value_end;
        Some((key, (value_start, value_end)))
    }
}

fn skip_space(raw: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = raw.get(at) {
        at += 1;
    }
    at
}

/// The end (exclusive) of the string whose opening quote is at `start`, and whether it
/// has escapes.
fn string_end(raw: &[u8], start: usize) -> Option<(usize, bool)> {
    // Eight bytes at a time for a quote or a backslash (most strings here are short:
    // cheaper than a SIMD search's set-up per string).
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut at = start + 1;
    let mut escaped = false;
    loop {
        while let Some(chunk) = raw.get(at..at + 8) {
            let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            let quote = word ^ (ONES * u64::from(b'"'));
            let backslash = word ^ (ONES * u64::from(b'\\'));
            // A zero byte in either marks a hit; the lowest flag is always exact.
            let hits = (quote.wrapping_sub(ONES) & !quote
                | backslash.wrapping_sub(ONES) & !backslash)
                & HIGH;
            if hits != 0 {
                at += (hits.trailing_zeros() / 8) as usize;
                break;
            }
            at += 8;
        }
        match raw.get(at)? {
            b'"' => return Some((at + 1, escaped)),
            b'\\' => {
                escaped = true;
                at += 2; // the character after a backslash never ends the string
            }
            _ => at += 1,
        }
    }
}

/// The end (exclusive) of the JSON value starting at `start`.
fn value_end(raw: &[u8], start: usize, depth: usize) -> Option<usize> {
    match raw.get(start)? {
        b'"' => string_end(raw, start).map(|(end, _)| end),
        b'{' | b'[' => {
            if depth >= MAX_DEPTH {
                return None;
            }
            let close = if raw[start] == b'{' { b'}' } else { b']' };
            let mut at = skip_space(raw, start + 1);
            if raw.get(at) == Some(&close) {
                return Some(at + 1);
            }
            loop {
                if close == b'}' {
                    if raw.get(at) != Some(&b'"') {
                        return None;
                    }
                    at = skip_space(raw, string_end(raw, at)?.0);
                    if raw.get(at) != Some(&b':') {
                        return None;
                    }
                    at = skip_space(raw, at + 1);
                }
                at = skip_space(raw, value_end(raw, at, depth + 1)?);
                match raw.get(at)? {
                    b',' => at = skip_space(raw, at + 1),
                    found if *found == close => return Some(at + 1),
                    _ => return None,
                }
            }
        }
        // A number or a literal: up to what may follow a value.
        _ => {
            let length = raw[start..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(raw.len() - start);
            (length > 0).then_some(start + length)
        }
    }
}

/// The text a JSON value holds: `Some(Some(text))` for a string, `Some(None)` for null,
/// `None` for any other value.
fn text_of(raw: &[u8]) -> Option<Option<Cow<'_, str>>> {
    if raw == b"null" {
        return Some(None);
    }
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if !inner.contains(&b'\\') {
        return std::str::from_utf8(inner).ok().map(|text| Some(Cow::Borrowed(text)));
    }
    serde_json::from_slice::<String>(raw).ok().map(|text| Some(Cow::Owned(text)))
}

/// The display's JSON: the email as the rules left it, else the id, else "anonymous".
fn display_of(raw: &[u8], out: &[u8], sources: &[Option<Held>; 2]) -> Vec<u8> {
    match sources.iter().flatten().next() {
        Some(Held::Input(start, end)) => raw[*start..*end].to_vec(),
        Some(Held::Output(start, end)) => out[*start..*end].to_vec(),
        None => b"\"anonymous\"".to_vec(),
    }
}

fn json_text(text: &str) -> Vec<u8> {
    serde_json::to_vec(text).expect("a str is JSON")
}

fn first_char(text: &str) -> &str {
    text.chars().next().map_or("", |c| &text[..c.len_utf8()])
}

fn mask_text(text: &str) -> String {
    format!("{}{MASK}", first_char(text))
}

/// A dotted IPv4 address's /16 (`99.81.12.34` -> `99.81.0.0/16`) as JSON, as the Python
/// rule reads one: four groups of one to three ASCII digits, each at most 255.
fn mask_ipv4(text: &str) -> Option<Vec<u8>> {
    let mut groups = [0u16; 4];
    let mut parts = text.split('.');
    for group in &mut groups {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *group = part.parse().ok()?;
        if *group > 255 {
            return None;
        }
    }
    if parts.next().is_some() {
        return None;
    }
    Some(format!("\"{}.{}.0.0/16\"", groups[0], groups[1]).into_bytes())
}

/// An IPv6 address's /48 (`2001:db8:1234:5678::1` -> `2001:db8:1234::/48`) as JSON, written
/// as Python's `ipaddress` writes the network. Only for addresses of hex digits and colons;
/// other forms (an IPv4 tail, a zone) are left to the Python rule.
fn mask_ipv6(text: &str) -> Option<Vec<u8>> {
    if !text.bytes().all(|b| b == b':' || b.is_ascii_hexdigit()) {
        return None;
    }
    let address: std::net::Ipv6Addr = text.parse().ok()?;
    let kept = &address.segments()[..3];
    // The five zero groups after the kept three are always the longest run of zeros, the one
    // RFC 5952 writes as `::`, with any zero groups just before it.
    let written = kept.iter().rposition(|group| *group != 0).map_or(0, |last| last + 1);
    let groups: Vec<String> = kept[..written].iter().map(|group| format!("{group:x}")).collect();
    Some(format!("\"{}::/48\"", groups.join(":")).into_bytes())
}

#[pymodule]
fn _pii(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<Rules>()?;
    Ok(())
}
