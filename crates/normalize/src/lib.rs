//! Raw records in, normalized events and identity observations out.
//!
//! One module per format. Each reads bytes it is handed (never a file) and reports through a
//! [`Sink`]: an accepted record as an [`Output`], a rejected one as a
//! [`Diagnostic`](keyward_model::Diagnostic) carrying its line and why. Parsing never
//! aborts on a bad record; only a document whose very structure is broken stops early,
//! and everything accepted before that point has already reached the sink.
//!
//! Architecture invariant: no I/O, no clock.

pub mod broker;
pub mod cloudtrail;
pub mod codeowners;
pub mod cred_report;
pub mod depth;
pub mod envelope;
pub mod github;
pub mod iam_authz;
pub mod k8s_audit;
pub mod k8s_snapshot;
pub mod lambda;
mod lenient;
pub mod mcp_log;
pub mod organizations;
pub mod otel;
pub mod people;
mod scan;
pub mod sniff;
// The array splitter is public only to its fuzz target.
#[cfg(fuzzing)]
pub mod split;
#[cfg(not(fuzzing))]
mod split;
pub mod terraform;
mod tool_args;
pub mod wire;

use keyward_model::Reason;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use keyward_model::{Diagnostic, Event, Observation, SnapshotObject};
use rustc_hash::FxHashMap;

pub use depth::{MAX_NESTING, TOO_DEEP};
pub use sniff::{Format, Layout, sniff};

/// What one accepted record produced. The event borrows from the input bytes.
#[derive(Debug, Default)]
pub struct Output<'a> {
    pub event: Option<Event<'a>>,
    pub observations: Vec<Observation>,
    pub objects: Vec<SnapshotObject>,
    /// For a record whose caller was already seen with exactly the same identity context
    /// and that changes no identity: the identities it shows active, instead of
    /// `observations` (the fast path for the bulk of activity logs).
    pub active: Option<Arc<ActiveIdentities>>,
    /// The platform's own record the event came from (one CloudTrail record, one audit
    /// event), for rules that read fields the normalized event does not carry.
    pub raw: Option<Cow<'a, [u8]>>,
    /// Fields of `raw` the parser already read, for rules.
    pub read_fields: keyward_model::ReadFields<'a>,
    /// What is odd about a record that was still accepted (a people directory's unknown
    /// status): reported, never a rejection.
    pub warnings: Vec<Diagnostic>,
}

impl Output<'_> {
    /// The same output, owning everything.
    pub fn into_owned(self) -> Output<'static> {
        Output {
            event: self.event.map(Event::into_owned),
            observations: self.observations,
            objects: self.objects,
            active: self.active,
            raw: self.raw.map(|r| Cow::Owned(r.into_owned())),
            read_fields: self.read_fields.into_owned(),
            warnings: self.warnings,
        }
    }
}

/// The identities a record shows active when its caller was seen before with exactly the
/// same identity context: all the inventory needs from the bulk of activity logs is to move
/// these identities' and credentials' last-use times (no new facts). Shared (`Arc`) by every
/// record of that caller, so the engine resolves it to inventory slots once.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActiveIdentities {
    /// The caller's canonical id.
    pub actor: Option<String>,
    /// Canonical ids of the identities that acted (caller, its role, its key, …).
    pub ids: Vec<String>,
    /// Credentials used, as (owner id, credential id, whether the use has a region and
    /// service — access keys do): each credential's last use moves.
    pub credentials: Vec<(String, String, bool)>,
}

/// Callers already seen, keyed by their identity context, with the identities each shows
/// active (see [`Output::active`]); lives in the [`Context`] across inputs. Bounded: it is
/// emptied when it reaches [`CallerMemo::CAPACITY`] entries.
#[derive(Debug, Default)]
pub struct CallerMemo {
    pub(crate) callers: FxHashMap<String, Arc<ActiveIdentities>>,
    pub(crate) scratch: String,
}

impl CallerMemo {
    pub const CAPACITY: usize = 200_000;
}

/// Where records go. Implemented by the engine (store + inventory) and by tests.
pub trait Sink {
    fn accept(&mut self, out: Output<'_>);
    fn reject(&mut self, diag: Diagnostic);

    /// A run of records a reader parsed before handing any over (a CloudTrail document
    /// is parsed a few hundred records at a time), in document order; the sink takes them
    /// all (`parsed` is left empty). The default hands each to [`Sink::accept`] or
    /// [`Sink::reject`] in turn; a sink may first do, for the whole run at once, the work
    /// that depends on each record alone (the engine matches rules).
    fn accept_parsed(&mut self, parsed: &mut Vec<ParsedRecord<'_>>) {
        for a in parsed.drain(..) {
            a.hand_to(self);
        }
    }
}

/// One record a reader parsed, not yet handed to the sink (see [`Sink::accept_parsed`]):
/// its output (`None`: nothing to report), or why it was rejected, with where it is.
pub struct ParsedRecord<'a> {
    pub result: Result<Option<Output<'a>>, Reason>,
    pub line: u64,
    pub record: Option<u64>,
}

impl ParsedRecord<'_> {
    /// Gives the record to the sink: accepted, skipped (`None`), or rejected where it is.
    pub fn hand_to<S: Sink + ?Sized>(self, sink: &mut S) {
        match self.result {
            Ok(Some(out)) => sink.accept(out),
            Ok(None) => {}
            Err(reason) => sink.reject(Diagnostic {
                line: self.line,
                record: self.record,
                reason,
            }),
        }
    }
}

/// Per-input context that the bytes themselves do not carry, and normalizer state that
/// may span inputs (the caller memo). Pure data: no I/O.
#[derive(Debug)]
pub struct Context {
    /// Kubernetes cluster name for audit logs and RBAC snapshots.
    pub cluster: String,
    /// The path label of the current input as the user gave it, set by the engine per file
    /// (`None` for bytes with no file behind them). Normalizers use it only as data — a
    /// Terraform resource is defined in a file, a `CODEOWNERS` file owns the tree under its
    /// repository root — and never to do I/O.
    pub path: Option<String>,
    pub memo: CallerMemo,
    /// People-directory statuses mapped beyond (or instead of)
    /// [`people::DEFAULT_STATUSES`], keyed as [`people::status_key`] spells them.
    pub person_statuses: std::collections::BTreeMap<String, people::PersonStatus>,
    /// Claude Desktop's MCP logs: which client initialized each server, in the input
    /// [`path`](Context::path) names (it starts empty for another input).
    pub mcp: mcp_log::State,
}

impl Context {
    pub fn new(cluster: impl Into<String>) -> Self {
        Context {
            cluster: cluster.into(),
            path: None,
            memo: CallerMemo::default(),
            person_statuses: std::collections::BTreeMap::new(),
            mcp: mcp_log::State::default(),
        }
    }

    /// The same context, labelled with an input path.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
}

impl Default for Context {
    fn default() -> Self {
        Context::new("default")
    }
}

/// Normalizes one line of a JSON-lines input, or of a text log whose lines carry JSON (an
/// MCP log). Each format's line reader measures the line's nesting (or its JSON's) before
/// parsing it (see [`depth`]).
pub fn normalize_line(
    format: Format,
    line: &[u8],
    line_no: u64,
    ctx: &mut Context,
    sink: &mut dyn Sink,
) {
    let result = match format {
        // One line is one export request: many spans, each accepted or rejected alone.
        Format::OtelTraces => return otel::normalize_line(line, line_no, sink),
        // A line's meaning depends on the lines before it (the server's `initialize`).
        Format::McpLog => return mcp_log::normalize_line(line, line_no, ctx, sink),
        Format::Cloudtrail => cloudtrail::normalize_record_memo(line, &mut ctx.memo),
        Format::K8sAudit => k8s_audit::normalize_event(line, ctx),
        Format::GithubWebhook => github::normalize_delivery(line, ctx),
        Format::BrokerLeases => broker::normalize_line(line),
        Format::IamAuthorizationDetails
        | Format::IamCredentialReport
        | Format::K8sSnapshot
        | Format::Terraform
        | Format::Codeowners
        | Format::PeopleDirectory
        | Format::LambdaFunctions
        | Format::AwsOrganizations => Err(Reason::from(format!(
            "`{}` is not a line-oriented format",
            format.as_str()
        ))),
    };
    emit(sink, result, line_no, None);
}

/// Normalizes a whole document (a CloudTrail delivery file, an IAM snapshot, a CSV report,
/// a `kubectl` dump, a Kubernetes `EventList`, Terraform, `CODEOWNERS`, a people directory,
/// a Lambda function list, AWS Organizations output, an OTLP JSON trace export, an MCP
/// log).
pub fn normalize_document(format: Format, doc: &[u8], ctx: &mut Context, sink: &mut dyn Sink) {
    // JSON documents whose readers hand the whole document to a recursive parser are
    // measured first (see `depth`); CloudTrail measures its records as it splits them,
    // Kubernetes snapshots and Terraform know JSON from YAML and HCL, CSV and
    // `CODEOWNERS` do not nest.
    let whole_json = match format {
        Format::K8sAudit
        | Format::IamAuthorizationDetails
        | Format::LambdaFunctions
        | Format::GithubWebhook
        | Format::AwsOrganizations
        | Format::OtelTraces => true,
        // Measured line by line.
        Format::BrokerLeases
        | Format::McpLog
        | Format::Cloudtrail
        | Format::IamCredentialReport
        | Format::K8sSnapshot
        | Format::Terraform
        | Format::Codeowners
        | Format::PeopleDirectory => false,
    };
    if whole_json && reject_too_deep(doc, sink) {
        return;
    }
    match format {
        Format::Cloudtrail => cloudtrail::normalize_document(doc, &mut ctx.memo, sink),
        Format::K8sAudit => k8s_audit::normalize_document(doc, ctx, sink),
        Format::IamAuthorizationDetails => iam_authz::normalize(doc, sink),
        Format::IamCredentialReport => cred_report::normalize(doc, sink),
        Format::K8sSnapshot => k8s_snapshot::normalize(doc, ctx, sink),
        Format::Terraform => terraform::normalize(doc, ctx, sink),
        Format::Codeowners => codeowners::normalize(doc, ctx, sink),
        Format::PeopleDirectory => people::normalize(doc, ctx, sink),
        Format::LambdaFunctions => lambda::normalize(doc, sink),
        Format::AwsOrganizations => organizations::normalize(doc, ctx, sink),
        Format::GithubWebhook => github::normalize_document(doc, ctx, sink),
        Format::OtelTraces => otel::normalize_document(doc, sink),
        Format::BrokerLeases => broker::normalize_document(doc, sink),
        Format::McpLog => mcp_log::normalize_document(doc, ctx, sink),
    }
}

/// Rejects a JSON document nested deeper than [`MAX_NESTING`] as a whole, at the line
/// where it goes too deep; `true` when it did.
pub(crate) fn reject_too_deep(doc: &[u8], sink: &mut dyn Sink) -> bool {
    let Some(at) = depth::too_deep_at(doc) else {
        return false;
    };
    sink.reject(Diagnostic {
        line: depth::line_at(doc, at),
        record: None,
        reason: TOO_DEEP.into(),
    });
    true
}

/// Sends a normalizer result to the sink: accepted, skipped (`None`), or rejected at `line`.
pub(crate) fn emit(
    sink: &mut dyn Sink,
    result: Result<Option<Output<'_>>, Reason>,
    line: u64,
    record: Option<u64>,
) {
    ParsedRecord {
        result,
        line,
        record,
    }
    .hand_to(sink);
}

/// Tracks line numbers while walking records of one document by byte offset. Newlines are
/// counted in the bytes before each record as it comes (memchr's vectorized count), while
/// they are in cache; an S3 object, megabytes on one line, is not searched ahead.
pub(crate) struct LineCounter<'a> {
    doc: &'a [u8],
    offset: usize,
    pub(crate) line: u64,
}

impl<'a> LineCounter<'a> {
    pub(crate) fn new(doc: &'a [u8]) -> Self {
        LineCounter {
            doc,
            offset: 0,
            line: 1,
        }
    }

    /// The 1-based line of `part`, which must be a slice of the document; walks forward only.
    pub(crate) fn line_of(&mut self, part: &[u8]) -> u64 {
        let pos = (part.as_ptr() as usize).saturating_sub(self.doc.as_ptr() as usize);
        if pos > self.offset {
            let end = pos.min(self.doc.len());
            let skipped = self.doc.get(self.offset..end).unwrap_or_default();
            // Found first (memchr's fastest search): most stretches hold no newline.
            if memchr::memchr(b'\n', skipped).is_some() {
                self.line += memchr::memchr_iter(b'\n', skipped).count() as u64;
            }
            self.offset = end;
        }
        self.line
    }
}

/// Reads a CSV document with a header row: columns are found by name (`column` turns a
/// header cell into the name looked up), `required` ones must be present (else one
/// rejection naming `what` the file was taken for), and each row goes through `f`,
/// accepted or rejected at its line.
pub(crate) fn each_csv_row(
    doc: &[u8],
    required: &[&str],
    what: &str,
    column: impl Fn(&str) -> String,
    sink: &mut dyn Sink,
    mut f: impl FnMut(&HashMap<String, usize>, &csv::StringRecord) -> Result<Output<'static>, Reason>,
) {
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(doc);
    let headers = match rdr.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            sink.reject(Diagnostic {
                line: 1,
                record: None,
                reason: format!("invalid CSV header: {e}").into(),
            });
            return;
        }
    };
    let index: HashMap<String, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (column(h), i))
        .collect();
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|c| !index.contains_key(*c))
        .collect();
    if !missing.is_empty() {
        sink.reject(Diagnostic {
            line: 1,
            record: None,
            reason: format!("not {what}: missing column(s) {}", missing.join(", ")).into(),
        });
        return;
    }
    for (row, rec) in rdr.records().enumerate() {
        let line = match &rec {
            Ok(r) => r.position().map(csv::Position::line),
            Err(e) => e.position().map(csv::Position::line),
        }
        .unwrap_or(row as u64 + 2);
        let result = rec
            .map_err(|e| Reason::from(format!("invalid CSV row: {e}")))
            .and_then(|r| f(&index, &r));
        emit(sink, result.map(Some), line, None);
    }
}

/// Reads a document that is one JSON object holding lists of records (`lists`, by key):
/// each element of each list present goes through `f` (see [`each_element`]). Returns how
/// many of the lists were present, or `None` when the document is not an object or breaks
/// (already reported: `expected` says what the document should have been).
pub(crate) fn each_list_element(
    doc: &[u8],
    lists: &[&'static str],
    expected: &str,
    sink: &mut dyn Sink,
    mut f: impl FnMut(&'static str, serde_json::Value) -> Result<Output<'static>, Reason>,
) -> Option<usize> {
    let mut lines = LineCounter::new(doc);
    let d = sniff::trim_start(doc);
    if !d.starts_with(b"{") {
        sink.reject(Diagnostic {
            line: 1,
            record: None,
            reason: format!("expected a JSON object with {expected}").into(),
        });
        return None;
    }
    let mut found = 0;
    for entry in sonic_rs::to_object_iter(d) {
        let (key, value) = match entry {
            Ok(kv) => kv,
            Err(e) => {
                sink.reject(Diagnostic {
                    line: lines.line,
                    record: None,
                    reason: json_error(e),
                });
                return None;
            }
        };
        let Some(&list) = lists.iter().find(|l| **l == key.as_ref()) else {
            continue;
        };
        found += 1;
        each_element(value.as_raw_str(), list, &mut lines, sink, |v| f(list, v));
    }
    Some(found)
}

/// Normalizes each element of the JSON array `raw` (the value of `list` in a document) with
/// `f`: accepted, or rejected at the element's line. A broken array stops the list (what
/// came before is kept).
fn each_element(
    raw: &str,
    list: &str,
    lines: &mut LineCounter<'_>,
    sink: &mut dyn Sink,
    mut f: impl FnMut(serde_json::Value) -> Result<Output<'static>, Reason>,
) {
    for (idx, item) in sonic_rs::to_array_iter(raw).enumerate() {
        let item = match item {
            Ok(v) => v,
            Err(e) => {
                sink.reject(Diagnostic {
                    line: lines.line,
                    record: Some(idx as u64),
                    reason: format!("`{list}`: {}", json_error(e)).into(),
                });
                break;
            }
        };
        let raw = item.as_raw_str();
        let line = lines.line_of(raw.as_bytes());
        let result = serde_json::from_str::<serde_json::Value>(raw)
            .map_err(json_error)
            .and_then(&mut f);
        match result {
            Ok(out) => sink.accept(out),
            Err(reason) => sink.reject(Diagnostic {
                line,
                record: Some(idx as u64),
                reason: format!("`{list}` entry: {reason}").into(),
            }),
        }
    }
}

/// A short, single-line excerpt of a bad record for diagnostics (never the whole record:
/// records can carry secrets in request parameters).
pub(crate) fn json_error(e: impl std::fmt::Display) -> Reason {
    Reason::InvalidJson(parser_error(e))
}

/// A parser's error message fit for a dead letter: its first line, at most 160 characters,
/// without the values it quotes (`invalid type: string "…"`, ``integer `…` ``): a
/// secret pasted into the wrong field must not come back in an error. Names of fields
/// (``missing field `eventTime` ``) are kept.
pub(crate) fn parser_error(e: impl std::fmt::Display) -> String {
    let s = e.to_string();
    let first = s.lines().next().unwrap_or_default();
    let mut out = String::with_capacity(first.len().min(200));
    let mut chars = first.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                // A quoted value, escapes included.
                let mut escaped = false;
                for q in chars.by_ref() {
                    match (escaped, q) {
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => escaped = false,
                    }
                }
                out.push_str("\"…\"");
            }
            '`' => {
                let quoted: String = chars.by_ref().take_while(|&q| q != '`').collect();
                let field = out.ends_with("field ");
                out.push('`');
                out.push_str(if field && quoted.len() <= 64 {
                    &quoted
                } else {
                    "…"
                });
                out.push('`');
            }
            _ => out.push(c),
        }
    }
    out.chars().take(160).collect()
}

/// An id for a record that lacks its platform id (hand-made samples): a hash of its bytes,
/// so re-reading the same record still deduplicates.
pub(crate) fn content_id(bytes: &[u8]) -> String {
    let hex = blake3::hash(bytes).to_hex();
    format!("blake3:{}", hex.as_str().get(..32).unwrap_or_default())
}

/// Event key: 16 bytes of BLAKE3 over source and native id.
pub fn event_key(source: keyward_model::SourceKind, native_id: &str) -> keyward_model::EventKey {
    let mut h = blake3::Hasher::new();
    h.update(source.as_str().as_bytes());
    h.update(&[0]);
    h.update(native_id.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(h.finalize().as_bytes().get(..16).unwrap_or(&[0u8; 16]));
    keyward_model::EventKey(out)
}

/// A sink that keeps everything, for unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use keyward_model::{Diagnostic, Observation, SnapshotObject};

    use crate::{Output, Sink};

    #[derive(Debug, Default)]
    pub(crate) struct Collect {
        pub(crate) objects: Vec<SnapshotObject>,
        pub(crate) observations: Vec<Observation>,
        pub(crate) diagnostics: Vec<Diagnostic>,
        pub(crate) warnings: Vec<Diagnostic>,
    }

    impl Sink for Collect {
        fn accept(&mut self, out: Output<'_>) {
            self.warnings.extend(out.warnings);
            self.objects.extend(out.objects);
            self.observations.extend(out.observations);
        }
        fn reject(&mut self, diag: Diagnostic) {
            self.diagnostics.push(diag);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parser_errors_in_dead_letters_do_not_echo_values() {
        let e = super::parser_error(
            "invalid type: string \"AKIA-secret \\\"x\", expected u64 at line 1 column 9",
        );
        assert_eq!(
            e,
            "invalid type: string \"…\", expected u64 at line 1 column 9"
        );
        let e = super::parser_error("invalid type: integer `4242`, expected a string");
        assert_eq!(e, "invalid type: integer `…`, expected a string");
        let e = super::parser_error("missing field `eventTime` at line 1 column 2");
        assert_eq!(e, "missing field `eventTime` at line 1 column 2");
    }
}
