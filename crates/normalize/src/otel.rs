//! OpenTelemetry traces (OTLP/HTTP JSON) → AI-agent identities, their sessions and tool
//! calls.
//!
//! The input is what an OTLP exporter posts to `/v1/traces` and what the Collector's `file`
//! exporter writes (one request per line): an `ExportTraceServiceRequest` in the
//! [OTLP JSON encoding](https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding) —
//! `resourceSpans[].resource.attributes`, `scopeSpans[].spans[]` with hex `traceId` /
//! `spanId` / `parentSpanId`, times as decimal strings of Unix nanoseconds, attributes as
//! `[{key, value: {stringValue | intValue | boolValue | doubleValue | arrayValue |
//! kvlistValue | bytesValue}}]`.
//!
//! Spans are read for the OpenTelemetry semantic conventions of generative AI
//! (`open-telemetry/semantic-conventions`, `docs/gen-ai/gen-ai-agent-spans.md`,
//! `gen-ai-spans.md`; the GenAI conventions continue in `open-telemetry/semantic-conventions-genai`
//! with the same names) and of the Model Context Protocol (`docs/gen-ai/mcp.md`), all of
//! status Development: names are read as those documents spell them today.
//!
//! | attribute | read as |
//! |---|---|
//! | `gen_ai.operation.name` (`invoke_agent`, `create_agent`, `execute_tool`, `chat`, …), else `mcp.method.name` (`tools/call`, …) | the event's action; a span with neither is skipped |
//! | `gen_ai.agent.id`, `gen_ai.agent.name`, `gen_ai.agent.description`, `service.name` | the agent (`ai_agent`) |
//! | `gen_ai.conversation.id`, else `mcp.session.id` | the agent's session (`agent_session`) |
//! | `user.id`, `user.email`, `enduser.id` | the person who prompted the session |
//! | `gen_ai.tool.name`, `gen_ai.tool.call.id`, `gen_ai.tool.type`, `jsonrpc.request.id` | the tool call (the event's target) |
//! | `gen_ai.tool.call.arguments`, `mcp.request.argument.*` | credentials the call used: an IAM role ARN with a session name (`RoleArn` / `RoleSessionName`, any spelling, or `--role-arn` / `--role-session-name` of a CLI command) becomes the STS session `arn:aws:sts::<account>:assumed-role/<role>/<session>` that CloudTrail reports, created by the agent's session; an access key id is the event's credential and a key the agent's session `used` |
//! | `error.type`, `status.code` = 2 | the event's error |
//! | `cloud.account.id`, `cloud.region` | the event's account and region |
//!
//! Tool spans often carry neither the agent nor the conversation: they inherit both (and
//! the prompting user) from their parent spans, else from any span of their trace, within
//! one request (one line of a JSON-lines file, or one whole document).
//!
//! Secrets: a tool call's arguments and results, and prompts and completions, can hold
//! anything. The event's stored record is rebuilt from the span with messages, system
//! instructions and results left out, and every argument value that is not an id (an
//! ARN, an access key id, a short word) replaced by `[redacted]`.
//!
//! A span without a valid `traceId`, `spanId` or start time is rejected on its own (with
//! the line and its index among the request's spans); the others still count.

use std::borrow::Cow;
use std::collections::BTreeMap;

use keyward_model::{Diagnostic, Event, IdentityKind, Observation, Platform, Reason, SourceKind};
use keyward_model::{ids, time::Millis};
use serde_json::{Map, Value, json};

use crate::tool_args::{Credentials, redact_arguments, redact_value};
use crate::{LineCounter, Output, Sink, json_error};

/// How many parents a span's context is looked for through (a deeper tree is cut there).
const MAX_PARENT_HOPS: usize = 64;

/// Attributes whose values are content (prompts, completions, results): never kept.
const CONTENT: &[&str] = &[
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.call.result",
    "gen_ai.tool.definitions",
    "gen_ai.prompt",
    "gen_ai.completion",
];

/// One JSON line: one export request.
pub fn normalize_line(line: &[u8], line_no: u64, sink: &mut dyn Sink) {
    if let Err(reason) = crate::depth::check(line) {
        sink.reject(Diagnostic {
            line: line_no,
            record: None,
            reason,
        });
        return;
    }
    request(line, line_no.saturating_sub(1), sink);
}

/// A whole document: one export request, pretty-printed or not.
pub fn normalize_document(doc: &[u8], sink: &mut dyn Sink) {
    request(doc, 0, sink);
}

/// A span as found: its text and its line.
struct Found<'a> {
    raw: &'a str,
    line: u64,
    /// The attributes of its `resource`.
    resource: usize,
}

/// Reads one request: every span with its resource, then each span in its trace's context.
/// `before`: lines before the request's bytes (a JSON-lines file's earlier lines). A
/// request that breaks part-way still yields the spans before the break.
fn request(bytes: &[u8], before: u64, sink: &mut dyn Sink) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        sink.reject(Diagnostic {
            line: before + 1,
            record: None,
            reason: Reason::InvalidJson("not UTF-8".into()),
        });
        return;
    };
    if !crate::sniff::trim_start(bytes).starts_with(b"{") {
        sink.reject(Diagnostic {
            line: before + 1,
            record: None,
            reason: "expected an OTLP JSON object with `resourceSpans`".into(),
        });
        return;
    }
    // A byte-order mark is no part of the JSON (its bytes stay in `bytes` for the lines).
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = LineCounter::new(bytes);
    let mut read = Read::default();
    match read.request(text, &mut lines) {
        Ok(true) => {}
        Ok(false) => read
            .problems
            .push((1, Reason::Missing("resourceSpans".into()))),
        Err(reason) => read.problems.push((lines.line, reason)),
    }
    for (line, reason) in read.problems {
        sink.reject(Diagnostic {
            line: before + line,
            record: None,
            reason,
        });
    }
    let mut spans: Vec<(u64, usize, Result<Span, Reason>)> = Vec::with_capacity(read.found.len());
    for (idx, f) in read.found.iter().enumerate() {
        let resource = read
            .resources
            .get(f.resource)
            .map_or(&[][..], Vec::as_slice);
        let span = serde_json::from_str::<Value>(f.raw)
            .map_err(json_error)
            .and_then(|v| Span::read(&v, resource));
        spans.push((before + f.line, idx, span));
    }
    let contexts = Contexts::of(spans.iter().filter_map(|(_, _, s)| s.as_ref().ok()));
    for (line, idx, span) in spans {
        let result = span.and_then(|s| span_output(&s, &contexts));
        crate::emit(sink, result, line, Some(idx as u64));
    }
}

/// What reading a request's structure found: resources' attributes, spans, and problems
/// that cost a part of it (with their lines).
#[derive(Default)]
struct Read<'a> {
    resources: Vec<Vec<(String, Value)>>,
    found: Vec<Found<'a>>,
    problems: Vec<(u64, Reason)>,
}

/// Why the walk of a request stopped early.
const CUT: &str = "the document ends inside a span";
const STRAY: &str = "expected `,` between values";

/// A value as the walk found it: its bytes, and whether they end (a document cut short
/// has its last values open, and the walk goes into them for what they hold whole).
#[derive(Clone, Copy)]
struct Part<'a> {
    bytes: &'a [u8],
    whole: bool,
}

/// The entries (`{"key": value, …}`) or elements (`[value, …]`) of `p`, in order; a value
/// that does not end is the last. `Err`: where the walk stopped (bytes that are not JSON
/// structure).
fn parts<'a>(p: Part<'a>, object: bool) -> Result<Vec<(&'a [u8], Part<'a>)>, &'static str> {
    use crate::split::{skip_ws, value_end};
    let b = p.bytes;
    let (open, close) = if object { (b'{', b'}') } else { (b'[', b']') };
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&open) {
        return Err(STRAY);
    }
    i = skip_ws(b, i + 1);
    let mut out = Vec::new();
    if b.get(i) == Some(&close) {
        return Ok(out);
    }
    loop {
        let mut key: &[u8] = b"";
        if object {
            if b.get(i) != Some(&b'"') {
                return if i >= b.len() { Ok(out) } else { Err(STRAY) };
            }
            let Some(end) = crate::depth::string_end(b, i) else {
                return Ok(out);
            };
            key = b.get(i + 1..end - 1).unwrap_or_default();
            i = skip_ws(b, end);
            match b.get(i) {
                Some(b':') => i = skip_ws(b, i + 1),
                None => return Ok(out),
                Some(_) => return Err(STRAY),
            }
        }
        if i >= b.len() {
            return Ok(out);
        }
        match value_end(b, i, &mut false) {
            Some(end) if end > i && end <= b.len() => {
                let bytes = b.get(i..end).unwrap_or_default();
                out.push((key, Part { bytes, whole: true }));
                i = skip_ws(b, end);
                match b.get(i) {
                    Some(b',') => i = skip_ws(b, i + 1),
                    Some(c) if *c == close => return Ok(out),
                    None => return Ok(out),
                    Some(_) => return Err(STRAY),
                }
            }
            Some(_) => return Err(STRAY),
            None => {
                let bytes = b.get(i..).unwrap_or_default();
                out.push((
                    key,
                    Part {
                        bytes,
                        whole: false,
                    },
                ));
                return Ok(out);
            }
        }
    }
}

impl<'a> Read<'a> {
    /// Walks `resourceSpans`; `Ok(false)` when the request has none. Tolerates a document
    /// cut short: what ends before the cut is read.
    fn request(&mut self, text: &'a str, lines: &mut LineCounter<'_>) -> Result<bool, Reason> {
        let top = Part {
            bytes: text.as_bytes(),
            whole: true,
        };
        let mut saw_list = false;
        for (key, list) in parts(top, true)? {
            if key != b"resourceSpans" {
                continue;
            }
            saw_list = true;
            for (_, rs) in parts(list, false)? {
                let resource = self.resources.len();
                self.resources.push(Vec::new());
                for (key, value) in parts(rs, true)? {
                    match key {
                        b"resource" if value.whole => {
                            let line = lines.line_of(value.bytes);
                            match serde_json::from_slice::<Value>(value.bytes) {
                                Ok(v) => {
                                    if let Some(slot) = self.resources.get_mut(resource) {
                                        *slot = attributes(v.get("attributes"));
                                    }
                                }
                                Err(e) => self
                                    .problems
                                    .push((line, json_error(e).within("`resource`"))),
                            }
                        }
                        b"scopeSpans" => self.scope_spans(value, resource, lines)?,
                        _ => {}
                    }
                }
            }
        }
        if !top_closed(text) && self.problems.is_empty() {
            let end = text.as_bytes().get(text.len()..).unwrap_or_default();
            self.problems.push((lines.line_of(end), CUT.into()));
        }
        Ok(saw_list)
    }

    /// Collects the spans of one `scopeSpans` list.
    fn scope_spans(
        &mut self,
        list: Part<'a>,
        resource: usize,
        lines: &mut LineCounter<'_>,
    ) -> Result<(), Reason> {
        for (_, scope) in parts(list, false)? {
            for (key, spans) in parts(scope, true)? {
                if key != b"spans" {
                    continue;
                }
                for (_, span) in parts(spans, false)? {
                    let line = lines.line_of(span.bytes);
                    if !span.whole {
                        self.problems.push((line, CUT.into()));
                        return Ok(());
                    }
                    // Spans are cut from UTF-8 text at ASCII delimiters.
                    let raw = std::str::from_utf8(span.bytes).unwrap_or_default();
                    self.found.push(Found {
                        raw,
                        line,
                        resource,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Whether the request's top-level object ends.
fn top_closed(text: &str) -> bool {
    let b = text.as_bytes();
    let i = crate::split::skip_ws(b, 0);
    crate::split::value_end(b, i, &mut false).is_some()
}

/// OTLP attributes (`[{key, value: AnyValue}]`) as (key, plain JSON value) pairs.
fn attributes(list: Option<&Value>) -> Vec<(String, Value)> {
    let Some(Value::Array(items)) = list else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|kv| {
            let key = kv.get("key")?.as_str()?.to_owned();
            Some((key, any_value(kv.get("value")?, 0)))
        })
        .collect()
}

/// An OTLP `AnyValue` as plain JSON: `intValue` (a string in proto3 JSON) as a number,
/// `kvlistValue` as an object, `arrayValue` as an array.
fn any_value(v: &Value, depth: usize) -> Value {
    if depth > crate::MAX_NESTING {
        return Value::Null;
    }
    let Some(m) = v.as_object() else {
        return Value::Null;
    };
    if let Some(s) = m.get("stringValue") {
        return s.clone();
    }
    if let Some(i) = m.get("intValue") {
        return match i {
            Value::String(s) => s.parse::<i64>().map_or(Value::Null, Value::from),
            other => other.clone(),
        };
    }
    if let Some(b) = m.get("boolValue") {
        return b.clone();
    }
    if let Some(d) = m.get("doubleValue") {
        return d.clone();
    }
    if let Some(a) = m.get("arrayValue") {
        let values = a.get("values").and_then(Value::as_array);
        return Value::Array(
            values
                .into_iter()
                .flatten()
                .map(|x| any_value(x, depth + 1))
                .collect(),
        );
    }
    if let Some(kv) = m.get("kvlistValue") {
        let mut out = Map::new();
        for item in kv
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(k), Some(v)) = (item.get("key").and_then(Value::as_str), item.get("value"))
            {
                out.insert(k.to_owned(), any_value(v, depth + 1));
            }
        }
        return Value::Object(out);
    }
    // `bytesValue` (base64) carries nothing read here.
    Value::Null
}

/// One span, read: its ids, times, status and attributes (the resource's, then its own).
struct Span {
    trace_id: String,
    span_id: String,
    parent: Option<String>,
    name: String,
    start: Millis,
    end: Option<Millis>,
    error: bool,
    attrs: BTreeMap<String, Value>,
}

fn hex_id(v: &Value, field: &'static str, len: usize) -> Result<String, Reason> {
    let s = v
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(Reason::Missing(field.into()))?;
    let ok =
        s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.bytes().any(|b| b != b'0');
    if !ok {
        return Err(Reason::Invalid {
            field,
            expected: if len == 32 {
                "32 hex digits"
            } else {
                "16 hex digits"
            },
        });
    }
    Ok(s.to_ascii_lowercase())
}

/// Unix nanoseconds (a decimal string, or a number) as milliseconds.
fn nanos(v: &Value, field: &'static str) -> Result<Option<Millis>, Reason> {
    let n = match v.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        Some(_) => None,
    };
    let n = n.ok_or(Reason::Invalid {
        field,
        expected: "Unix nanoseconds",
    })?;
    Ok(Some((n / 1_000_000) as Millis))
}

impl Span {
    fn read(v: &Value, resource: &[(String, Value)]) -> Result<Span, Reason> {
        if !v.is_object() {
            return Err("a span must be a JSON object".into());
        }
        let trace_id = hex_id(v, "traceId", 32)?;
        let span_id = hex_id(v, "spanId", 16)?;
        let parent = match v.get("parentSpanId").and_then(Value::as_str) {
            None | Some("") => None,
            Some(_) => Some(hex_id(v, "parentSpanId", 16)?),
        };
        let start =
            nanos(v, "startTimeUnixNano")?.ok_or(Reason::Missing("startTimeUnixNano".into()))?;
        let end = nanos(v, "endTimeUnixNano")?;
        // `STATUS_CODE_ERROR` is 2; the JSON encoding may also spell the enum's name.
        let error = match v.get("status").and_then(|s| s.get("code")) {
            Some(Value::Number(n)) => n.as_u64() == Some(2),
            Some(Value::String(s)) => s == "STATUS_CODE_ERROR" || s == "2",
            _ => false,
        };
        let mut attrs: BTreeMap<String, Value> = resource.iter().cloned().collect();
        attrs.extend(attributes(v.get("attributes")));
        Ok(Span {
            trace_id,
            span_id,
            parent,
            name: v
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            start,
            end,
            error,
            attrs,
        })
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.attrs
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// What the span does: its GenAI operation, else its MCP method.
    fn operation(&self) -> Option<&str> {
        self.text("gen_ai.operation.name")
            .or_else(|| self.text("mcp.method.name"))
    }

    /// The agent as this span itself names it: (key for the id, display name).
    fn own_agent(&self) -> Option<(String, String)> {
        let name = self.text("gen_ai.agent.name");
        if let Some(id) = self.text("gen_ai.agent.id") {
            return Some((id.to_owned(), name.unwrap_or(id).to_owned()));
        }
        let name = name?;
        let service = self.text("service.name").unwrap_or("unknown_service");
        Some((format!("{service}/{name}"), name.to_owned()))
    }

    fn own_user(&self) -> Option<&str> {
        self.text("user.id")
            .or_else(|| self.text("user.email"))
            .or_else(|| self.text("enduser.id"))
    }
}

/// The agent, conversation, MCP session and user a span acts in, as its own attributes
/// or its trace say.
#[derive(Clone, Default)]
struct Ctx {
    agent: Option<(String, String)>,
    conversation: Option<String>,
    mcp_session: Option<String>,
    user: Option<String>,
}

impl Ctx {
    fn of(s: &Span) -> Ctx {
        let own = |key| s.text(key).map(str::to_owned);
        Ctx {
            agent: s.own_agent(),
            conversation: own("gen_ai.conversation.id"),
            mcp_session: own("mcp.session.id"),
            user: s.own_user().map(str::to_owned),
        }
    }

    fn fill(&mut self, from: &Ctx) {
        if self.agent.is_none() {
            self.agent.clone_from(&from.agent);
        }
        if self.conversation.is_none() {
            self.conversation.clone_from(&from.conversation);
        }
        if self.mcp_session.is_none() {
            self.mcp_session.clone_from(&from.mcp_session);
        }
        if self.user.is_none() {
            self.user.clone_from(&from.user);
        }
    }

    fn complete(&self) -> bool {
        self.agent.is_some() && self.conversation.is_some() && self.user.is_some()
    }

    /// The agent's session the span belongs to: its conversation — an MCP tool call
    /// within an agent's turn is part of that conversation — else its MCP session.
    fn session(&self) -> Option<&str> {
        self.conversation.as_deref().or(self.mcp_session.as_deref())
    }
}

/// Each span's own context by (trace, span), its parent, and each trace's first context.
struct Contexts {
    spans: BTreeMap<(String, String), (Ctx, Option<String>)>,
    traces: BTreeMap<String, Ctx>,
}

impl Contexts {
    fn of<'s>(spans: impl Iterator<Item = &'s Span>) -> Contexts {
        let mut c = Contexts {
            spans: BTreeMap::new(),
            traces: BTreeMap::new(),
        };
        for s in spans {
            let own = Ctx::of(s);
            c.traces.entry(s.trace_id.clone()).or_default().fill(&own);
            c.spans.insert(
                (s.trace_id.clone(), s.span_id.clone()),
                (own, s.parent.clone()),
            );
        }
        c
    }

    /// The span's context: its own, then its ancestors', then its trace's.
    fn resolve(&self, s: &Span) -> Ctx {
        let mut ctx = Ctx::of(s);
        let mut parent = s.parent.clone();
        for _ in 0..MAX_PARENT_HOPS {
            if ctx.complete() {
                break;
            }
            let Some(p) = parent else { break };
            let Some((pctx, next)) = self.spans.get(&(s.trace_id.clone(), p)) else {
                break;
            };
            ctx.fill(pctx);
            parent = next.clone();
        }
        if let Some(t) = self.traces.get(&s.trace_id) {
            ctx.fill(t);
        }
        ctx
    }
}

fn observation(id: String, kind: IdentityKind, name: impl Into<String>) -> Observation {
    Observation::new(id, Platform::Ai, kind, name, SourceKind::OtelTraces)
}

/// The event and observations of one span; `None` for a span of neither convention.
fn span_output(s: &Span, contexts: &Contexts) -> Result<Option<Output<'static>>, Reason> {
    let Some(op) = s.operation() else {
        return Ok(None);
    };
    let ctx = contexts.resolve(s);
    let Some((agent_key, agent_name)) = ctx.agent.clone().or_else(|| {
        // An MCP server's spans name no agent: the client that called is the service.
        s.text("service.name")
            .map(|svc| (svc.to_owned(), svc.to_owned()))
    }) else {
        return Err(Reason::Missing(
            "gen_ai.agent.id` (or `gen_ai.agent.name`, `service.name".into(),
        ));
    };
    let mut out = Output::default();
    let agent_id = ids::ai_agent(&agent_key);
    let mut agent = observation(agent_id.clone(), IdentityKind::AiAgent, agent_name.as_str());
    agent.used_at = Some(s.start);
    agent.facts.native_id = s.text("gen_ai.agent.id").map(str::to_owned);
    // Only spans that declare the agent describe it: a tool span's silence must not
    // replace the description (the newest record's details win).
    if s.own_agent().is_some() {
        let mut d = Map::new();
        d.insert("name".into(), json!(agent_name));
        for (key, attr) in [
            ("description", "gen_ai.agent.description"),
            ("service", "service.name"),
            ("provider", "gen_ai.provider.name"),
        ] {
            if let Some(v) = s.text(attr) {
                d.insert(key.into(), json!(v));
            }
        }
        agent.facts.details.insert("agent".into(), Value::Object(d));
    }
    out.observations.push(agent);
    let session_id = ctx.session().map(|sid| {
        let id = ids::ai_session(&agent_id, sid);
        let mut o = observation(
            id.clone(),
            IdentityKind::AgentSession,
            format!("{agent_name}/{sid}"),
        );
        o.used_at = Some(s.start);
        o.facts.parent = Some(agent_id.clone());
        if let Some(user) = ctx.user.as_deref() {
            o.facts.details.insert(
                "agent_session".into(),
                json!({"session": sid, "agent": agent_id, "prompted_by": user.to_ascii_lowercase()}),
            );
        }
        out.observations.push(o);
        id
    });
    let tool = s
        .text("gen_ai.tool.name")
        .or_else(|| s.text("mcp.tool.name"));
    let args = tool_arguments(s);
    let creds = Credentials::of(&args);
    let holder = session_id.as_deref().unwrap_or(&agent_id);
    if let Some(o) = creds.sts_session(s.start, holder, SourceKind::OtelTraces) {
        out.observations.push(o);
    }
    out.observations
        .extend(creds.used_keys(s.start, holder, SourceKind::OtelTraces));
    let target = match op {
        "execute_tool" | "tools/call" => tool.map(str::to_owned),
        "invoke_agent" | "create_agent" => Some(agent_name.clone()),
        _ => tool
            .or_else(|| s.text("gen_ai.request.model"))
            .or_else(|| s.text("mcp.resource.uri"))
            .or_else(|| s.text("gen_ai.prompt.name"))
            .map(str::to_owned),
    };
    let error = s
        .text("error.type")
        .map(str::to_owned)
        .or_else(|| s.error.then(|| "error".to_owned()));
    out.event = Some(Event {
        native_id: Cow::Owned(format!("{}:{}", s.trace_id, s.span_id)),
        source: SourceKind::OtelTraces,
        time: s.start,
        action: Cow::Owned(op.to_owned()),
        actor: Some(Cow::Owned(session_id.unwrap_or(agent_id))),
        source_ip: s.text("client.address").map(|a| Cow::Owned(a.to_owned())),
        user_agent: None,
        region: s.text("cloud.region").map(|r| Cow::Owned(r.to_owned())),
        account: s.text("cloud.account.id").map(|a| Cow::Owned(a.to_owned())),
        error_code: error.map(Cow::Owned),
        target: target.map(Cow::Owned),
        credential: creds.keys.first().map(|k| Cow::Owned(k.clone())),
        invoked_by: None,
        shared_id: None,
        stage: 0,
    });
    let record = stored_record(s, &ctx, &args);
    out.raw = Some(Cow::Owned(serde_json::to_vec(&record).unwrap_or_default()));
    Ok(Some(out))
}

/// A tool call's arguments: `gen_ai.tool.call.arguments` (structured, or a JSON string —
/// the spec allows either; a string that is not JSON stays a string), and the MCP
/// `mcp.request.argument.<key>` attributes.
fn tool_arguments(s: &Span) -> Value {
    let mut out = Map::new();
    if let Some(a) = s.attrs.get("gen_ai.tool.call.arguments") {
        let v = match a {
            Value::String(text) => match serde_json::from_str::<Value>(text) {
                Ok(v) if crate::depth::check(text.as_bytes()).is_ok() => v,
                _ => a.clone(),
            },
            other => other.clone(),
        };
        match v {
            Value::Object(m) => out.extend(m),
            other => {
                out.insert("arguments".into(), other);
            }
        }
    }
    for (k, v) in &s.attrs {
        if let Some(name) = k.strip_prefix("mcp.request.argument.") {
            out.insert(name.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

/// The record stored with the event: the span's ids, name, times and attributes, without
/// content and with argument values redacted, and the context it was read in.
fn stored_record(s: &Span, ctx: &Ctx, args: &Value) -> Value {
    let mut attrs = Map::new();
    for (k, v) in &s.attrs {
        if CONTENT.contains(&k.as_str())
            || k.starts_with("gen_ai.prompt.")
            || k.starts_with("gen_ai.completion.")
            || k.starts_with("mcp.request.argument.")
            || k == "gen_ai.tool.call.arguments"
        {
            continue;
        }
        attrs.insert(k.clone(), redact_value(k, v));
    }
    let mut r = json!({
        "traceId": s.trace_id,
        "spanId": s.span_id,
        "name": s.name,
        "startTimeUnixMilli": s.start,
        "attributes": attrs,
    });
    if let Some(m) = r.as_object_mut() {
        if let Some(p) = &s.parent {
            m.insert("parentSpanId".into(), json!(p));
        }
        if let Some(e) = s.end {
            m.insert("endTimeUnixMilli".into(), json!(e));
        }
        if args.as_object().is_some_and(|a| !a.is_empty()) {
            m.insert("arguments".into(), redact_arguments(args));
        }
        let mut context = Map::new();
        if let Some((key, name)) = &ctx.agent {
            context.insert("agent".into(), json!(key));
            context.insert("agent_name".into(), json!(name));
        }
        if let Some(sid) = ctx.session() {
            context.insert("session".into(), json!(sid));
        }
        if let Some(u) = &ctx.user {
            context.insert("user".into(), json!(u));
        }
        m.insert("context".into(), Value::Object(context));
    }
    r
}

#[cfg(test)]
#[path = "otel_tests.rs"]
mod tests;
