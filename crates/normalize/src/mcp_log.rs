//! Claude Desktop's MCP logs → the AI agent that called each MCP server, its sessions and
//! its tool calls.
//!
//! The input is what Claude Desktop writes to `~/Library/Logs/Claude/mcp.log` (every
//! server) and `mcp-server-<name>.log` (one server), and `%APPDATA%\Claude\logs\` on
//! Windows: one line per message, the JSON-RPC message verbatim after a prefix.
//!
//! ```text
//! 2025-06-13T14:44:29.945Z [info] [aws] Message from client: {"method":"initialize","params":{"clientInfo":{"name":"claude-ai","version":"0.1.0"},…},"jsonrpc":"2.0","id":0}
//! 2025-06-13T14:45:02.101Z [info] [aws] Message from client: {"method":"tools/call","params":{"name":"call_aws","arguments":{…}},"jsonrpc":"2.0","id":5}
//! 2024-11-26T22:09:43.436Z [aws] [info] Message from server: {"jsonrpc":"2.0","id":5,"result":{…}}
//! 2025-06-13T14:44:31.402Z [error] [aws] Some stderr text of the server
//! ```
//!
//! Both orders of the brackets occur (older versions put the server first): the bracket
//! that holds a level (`debug`, `info`, `notice`, `warn`, `warning`, `error`, any case) is
//! the level, the other the server's name (the key of `mcpServers` in
//! `claude_desktop_config.json`).
//!
//! | field | read as |
//! |---|---|
//! | the time before the brackets (RFC 3339) | the event's time; a message whose time does not parse is rejected |
//! | `[server]` | the MCP server: sessions are kept per server |
//! | `Message from client:` `initialize`, `params.clientInfo.name` / `.version` | the client: the AI agent (`ai_agent`, named by the client) and a new agent session (`agent_session`) `<server>@<time of the initialize line>` |
//! | `Message from client:` `tools/call` | one event: action `tools/call`, actor the agent's session, native id `<server>@<time>#<JSON-RPC id>` |
//! | `params.name` | the tool (the event's target); a call without one is rejected |
//! | `params.arguments` | credentials the call used, as OpenTelemetry tool spans' are read ([`crate::tool_args`]): an IAM role ARN with a session name becomes the STS session `arn:aws:sts::<account>:assumed-role/<role>/<session>` that CloudTrail reports, created by the agent's session; the first access key id is the event's credential, and every one a key the session `used` |
//!
//! Every other line is skipped: the server's own output, lifecycle notes (`Initializing
//! server...`), notifications, other methods (`tools/list`, …), and every `Message from
//! server:` — a tool's result, and whether it failed (`isError`, a JSON-RPC `error`), is
//! not read: the event says the call was made, not that it worked. A message (either
//! direction) whose JSON does not parse or nests deeper than
//! [`MAX_NESTING`](crate::MAX_NESTING) is rejected with its line. A JSON-RPC batch (an
//! array) is read element by element (its index is the rejection's record).
//!
//! A `tools/call` whose server was not initialized earlier in the input (the log was
//! rotated, or the input starts mid-file) belongs to the session `<server>` of the agent
//! `mcp-client:<server>`: the client is unknown, and the calls of one server stay
//! together. So does a call after an `initialize` that names no client, in that
//! initialize's session.
//!
//! Which client initialized each server is state of the input ([`State`], kept in
//! [`Context::mcp`](crate::Context)): it starts empty for each input (a new
//! [`Context::path`](crate::Context)), so the result does not depend on the order files
//! are read in. `mcp.log` and `mcp-server-<name>.log` repeat the same messages: their
//! events have the same native ids and are stored once.
//!
//! Secrets: a tool call's arguments can hold anything, and its result is never read. The
//! event's stored record is the request rebuilt — time, server, JSON-RPC id, method, tool
//! name — with every argument value that is not an id (an ARN, an access key id, a short
//! word) replaced by `[redacted]`, exactly as OpenTelemetry tool spans are stored.

use std::borrow::Cow;
use std::collections::HashMap;

use keyward_model::{Diagnostic, Event, IdentityKind, Observation, Platform, Reason, SourceKind};
use keyward_model::{ids, time, time::Millis};
use serde_json::{Map, Value, json};

use crate::tool_args::{Credentials, redact_arguments};
use crate::{Context, Output, Sink, json_error};

/// What a client's message follows (the prefix's last part).
const FROM_CLIENT: &str = "Message from client: ";
/// What a server's message follows.
const FROM_SERVER: &str = "Message from server: ";
/// The levels Claude Desktop's logger writes, lower case.
const LEVELS: [&str; 6] = ["debug", "info", "notice", "warn", "warning", "error"];
/// How many non-empty lines sniffing looks through for a message.
const SNIFF_LINES: usize = 16;
/// How many servers an input's state remembers before it starts over (a log names a few).
const MAX_SERVERS: usize = 10_000;
/// Why a line that carries a message cannot be read as one.
const NOT_A_LOG_LINE: &str =
    "expected `<RFC 3339 time> [level] [server] Message from client: <JSON>`";

/// Which client initialized each server, in the input being read.
#[derive(Debug, Default)]
pub struct State {
    /// The input the state was read from ([`Context::path`]); another input starts empty.
    input: Option<String>,
    servers: HashMap<String, Server>,
}

/// A server's current session: who initialized it, when.
#[derive(Debug)]
struct Server {
    /// `clientInfo.name` of the `initialize` (`None`: it named none).
    client: Option<String>,
    /// `clientInfo.version`.
    version: Option<String>,
    /// `<server>@<time of the initialize line>`.
    session: String,
}

impl State {
    /// Starts over when the input changes.
    fn enter(&mut self, input: Option<&str>) {
        if self.input.as_deref() != input {
            self.servers.clear();
            self.input = input.map(str::to_owned);
        }
    }

    /// A new session of `server`, initialized at `at` by the client `params.clientInfo`
    /// names.
    fn initialize(&mut self, server: &str, at: Millis, params: Option<&Value>) {
        let info = params.and_then(|p| p.get("clientInfo"));
        let text = |key| {
            info.and_then(|i| i.get(key))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        if self.servers.len() >= MAX_SERVERS && !self.servers.contains_key(server) {
            self.servers.clear();
        }
        self.servers.insert(
            server.to_owned(),
            Server {
                client: text("name"),
                version: text("version"),
                session: format!("{server}@{}", time::format(at)),
            },
        );
    }

    /// Who calls `server` now.
    fn caller(&self, server: &str) -> Caller {
        let known = self.servers.get(server);
        let client = known.and_then(|s| s.client.clone());
        Caller {
            agent: client.unwrap_or_else(|| format!("mcp-client:{server}")),
            client: known.is_some_and(|s| s.client.is_some()),
            version: known.and_then(|s| s.version.clone()),
            session: known.map_or_else(|| server.to_owned(), |s| s.session.clone()),
        }
    }
}

/// The agent and session a tool call is made in.
struct Caller {
    /// The agent's key (and name): the client's name, else `mcp-client:<server>`.
    agent: String,
    /// Whether an `initialize` named the client.
    client: bool,
    version: Option<String>,
    session: String,
}

/// One line of a log: its message, if it carries one, goes to `sink` (lines are numbered
/// from 1).
pub fn normalize_line(line: &[u8], line_no: u64, ctx: &mut Context, sink: &mut dyn Sink) {
    ctx.mcp.enter(ctx.path.as_deref());
    let found = match message(line) {
        Ok(Some(m)) => m,
        Ok(None) => return,
        Err(reason) => {
            sink.reject(Diagnostic {
                line: line_no,
                record: None,
                reason,
            });
            return;
        }
    };
    let read = match found.from {
        From::Server => serde_json::from_str::<serde::de::IgnoredAny>(found.json).map(|_| None),
        From::Client => serde_json::from_str::<Value>(found.json).map(Some),
    };
    let value = match read {
        Ok(Some(v)) => v,
        Ok(None) => return,
        Err(e) => {
            let within = match found.from {
                From::Client => "the message from the client",
                From::Server => "the message from the server",
            };
            sink.reject(Diagnostic {
                line: line_no,
                record: None,
                reason: json_error(e).within(within),
            });
            return;
        }
    };
    match &value {
        Value::Array(batch) => {
            for (i, v) in batch.iter().enumerate() {
                let result = request(v, &found, &mut ctx.mcp);
                crate::emit(sink, result, line_no, Some(i as u64));
            }
        }
        v => crate::emit(sink, request(v, &found, &mut ctx.mcp), line_no, None),
    }
}

/// A whole log: its lines in order.
pub fn normalize_document(doc: &[u8], ctx: &mut Context, sink: &mut dyn Sink) {
    for (i, line) in doc.split(|b| *b == b'\n').enumerate() {
        normalize_line(line, i as u64 + 1, ctx, sink);
    }
}

/// Who sent a message.
#[derive(Clone, Copy)]
enum From {
    Client,
    Server,
}

/// A message as a line carries it.
struct Message<'a> {
    time: Millis,
    server: &'a str,
    from: From,
    json: &'a str,
}

/// A line's prefix: `<time> [level] [server] ` (either order) and what follows.
struct Prefix<'a> {
    time: &'a str,
    server: &'a str,
    rest: &'a str,
}

/// The text of `[text] ` at the start of `s`, and what follows.
fn bracket(s: &str) -> Option<(&str, &str)> {
    let (inside, after) = s.strip_prefix('[')?.split_once(']')?;
    match after.strip_prefix(' ') {
        Some(rest) => Some((inside, rest)),
        None if after.is_empty() => Some((inside, after)),
        None => None,
    }
}

fn is_level(s: &str) -> bool {
    LEVELS.iter().any(|l| l.eq_ignore_ascii_case(s))
}

/// The prefix of a line, when it has one (the time is not checked here).
fn prefix(line: &str) -> Option<Prefix<'_>> {
    let (time, rest) = line.split_once(' ')?;
    let (a, rest) = bracket(rest)?;
    let (b, rest) = bracket(rest)?;
    let server = if is_level(a) {
        b
    } else if is_level(b) {
        a
    } else {
        return None;
    };
    if time.is_empty() || server.is_empty() {
        return None;
    }
    Some(Prefix { time, server, rest })
}

/// A line without its byte-order mark and carriage return.
fn strip(line: &[u8]) -> &[u8] {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A line as text, up to any byte that is not UTF-8 (a server's output may be anything).
fn text(line: &[u8]) -> &str {
    let line = strip(line);
    match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => line
            .get(..e.valid_up_to())
            .and_then(|l| std::str::from_utf8(l).ok())
            .unwrap_or_default(),
    }
}

/// Whether a line carries a message somewhere (even in a shape not read).
fn marked(line: &[u8]) -> bool {
    let find = |m: &[u8]| memchr::memmem::find(line, m).is_some();
    find(b" Message from client: ") || find(b" Message from server: ")
}

/// The message a line carries: `Ok(None)` for a line that carries none. A line that
/// names a message in a shape that cannot be read is rejected: a tool call must not go
/// unseen quietly.
fn message(line: &[u8]) -> Result<Option<Message<'_>>, Reason> {
    if !marked(line) {
        return Ok(None);
    }
    let full =
        std::str::from_utf8(strip(line)).map_err(|_| Reason::InvalidJson("not UTF-8".into()))?;
    let Some(p) = prefix(full) else {
        return Err(NOT_A_LOG_LINE.into());
    };
    let (from, json) = if let Some(json) = p.rest.strip_prefix(FROM_CLIENT) {
        (From::Client, json)
    } else if let Some(json) = p.rest.strip_prefix(FROM_SERVER) {
        (From::Server, json)
    } else {
        // The words within a server's own output.
        return Ok(None);
    };
    let time = time::parse(p.time).ok_or(Reason::Invalid {
        field: "timestamp",
        expected: "an RFC 3339 time",
    })?;
    crate::depth::check(json.as_bytes())?;
    Ok(Some(Message {
        time,
        server: p.server,
        from,
        json,
    }))
}

/// Whether a line starts as Claude Desktop's MCP log lines do: `<RFC 3339 time> [level]
/// [server]` (either order).
pub(crate) fn is_log_line(line: &[u8]) -> bool {
    prefix(text(line)).is_some_and(|p| time::parse(p.time).is_some())
}

/// Whether the start of an input (`head`, possibly cut mid-line) is an MCP log: its first
/// non-empty line starts as a log line does, and it or one of the next few carries a
/// message.
pub(crate) fn is_log(head: &[u8]) -> bool {
    let carries = |l: &[u8]| {
        prefix(text(l)).is_some_and(|p| {
            (p.rest.starts_with(FROM_CLIENT) || p.rest.starts_with(FROM_SERVER))
                && time::parse(p.time).is_some()
        })
    };
    let mut lines = head
        .split(|b| *b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .take(SNIFF_LINES);
    let Some(first) = lines.next() else {
        return false;
    };
    is_log_line(first) && (carries(first) || lines.any(carries))
}

/// One JSON-RPC message from the client: an `initialize` changes the server's session, a
/// `tools/call` is an event, anything else is skipped.
fn request(
    v: &Value,
    m: &Message<'_>,
    state: &mut State,
) -> Result<Option<Output<'static>>, Reason> {
    match v.get("method").and_then(Value::as_str) {
        Some("initialize") => {
            state.initialize(m.server, m.time, v.get("params"));
            Ok(None)
        }
        Some("tools/call") => tool_call(v, m, &state.caller(m.server)).map(Some),
        _ => Ok(None),
    }
}

fn observation(id: String, kind: IdentityKind, name: impl Into<String>) -> Observation {
    Observation::new(id, Platform::Ai, kind, name, SourceKind::McpLog)
}

/// The event and observations of one `tools/call` request.
fn tool_call(v: &Value, m: &Message<'_>, caller: &Caller) -> Result<Output<'static>, Reason> {
    let params = v.get("params");
    let tool = params
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(Reason::Missing("params.name".into()))?;
    let args = params
        .and_then(|p| p.get("arguments"))
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let rpc_id = match v.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let at = time::format(m.time);
    let mut out = Output::default();

    let agent_id = ids::ai_agent(&caller.agent);
    let mut agent = observation(
        agent_id.clone(),
        IdentityKind::AiAgent,
        caller.agent.as_str(),
    );
    agent.used_at = Some(m.time);
    if caller.client {
        let mut d = Map::new();
        d.insert("name".into(), json!(caller.agent));
        if let Some(version) = &caller.version {
            d.insert("version".into(), json!(version));
        }
        agent.facts.details.insert("agent".into(), Value::Object(d));
    }
    out.observations.push(agent);

    let session_id = ids::ai_session(&agent_id, &caller.session);
    let mut session = observation(
        session_id.clone(),
        IdentityKind::AgentSession,
        format!("{}/{}", caller.agent, caller.session),
    );
    session.used_at = Some(m.time);
    session.facts.parent = Some(agent_id.clone());
    session.facts.details.insert(
        "agent_session".into(),
        json!({"session": caller.session, "agent": agent_id, "server": m.server}),
    );
    out.observations.push(session);

    let creds = Credentials::of(&args);
    if let Some(o) = creds.sts_session(m.time, &session_id, SourceKind::McpLog) {
        out.observations.push(o);
    }
    out.observations
        .extend(creds.used_keys(m.time, &session_id, SourceKind::McpLog));
    out.event = Some(Event {
        native_id: Cow::Owned(format!("{}@{at}#{rpc_id}", m.server)),
        source: SourceKind::McpLog,
        time: m.time,
        action: Cow::Borrowed("tools/call"),
        actor: Some(Cow::Owned(session_id)),
        source_ip: None,
        user_agent: None,
        region: None,
        account: None,
        error_code: None,
        target: Some(Cow::Owned(tool.to_owned())),
        credential: creds.keys.first().map(|k| Cow::Owned(k.clone())),
        invoked_by: None,
        shared_id: None,
        stage: 0,
    });
    let record = stored_record(v, m, caller, tool, &at, &args);
    out.raw = Some(Cow::Owned(serde_json::to_vec(&record).unwrap_or_default()));
    Ok(out)
}

/// The record stored with the event: the request rebuilt with its arguments redacted (its
/// other parameters left out), where it was logged, and the session it was read in.
fn stored_record(
    v: &Value,
    m: &Message<'_>,
    c: &Caller,
    tool: &str,
    at: &str,
    args: &Value,
) -> Value {
    let mut params = Map::new();
    params.insert("name".into(), json!(tool));
    if params_have_arguments(v) {
        params.insert("arguments".into(), redact_arguments(args));
    }
    let mut r = Map::new();
    r.insert("time".into(), json!(at));
    r.insert("server".into(), json!(m.server));
    for key in ["jsonrpc", "id"] {
        if let Some(x) = v.get(key).filter(|x| x.is_string() || x.is_number()) {
            r.insert(key.into(), x.clone());
        }
    }
    r.insert("method".into(), json!("tools/call"));
    r.insert("params".into(), Value::Object(params));
    let mut context = Map::new();
    context.insert("agent".into(), json!(c.agent));
    if let Some(version) = &c.version {
        context.insert("client_version".into(), json!(version));
    }
    context.insert("session".into(), json!(c.session));
    r.insert("context".into(), Value::Object(context));
    Value::Object(r)
}

fn params_have_arguments(v: &Value) -> bool {
    v.get("params").and_then(|p| p.get("arguments")).is_some()
}

#[cfg(test)]
#[path = "mcp_log_tests.rs"]
mod tests;
