//! Intent: an AI agent's declared purpose against what the credentials it used did.
//!
//! A purpose is a list of allowed action categories, `<service>:<class>`: the service as
//! CloudTrail's `eventSource` names it without `.amazonaws.com` (`ce`, `budgets`,
//! `lambda`; `*` for any) and the class of the call (`read`, `write`, `delete`,
//! `permissions`; `*` for any). Agents are given purposes by id or name (globs: `*`, `?`,
//! `[…]`, `{a,b}`; `*` crosses `/`).
//! "An agent analysing cloud costs should access billing APIs — if it starts modifying
//! Lambda functions, something is wrong": a purpose `cost-analysis` allowing `ce:read`
//! and `budgets:read` makes `lambda.amazonaws.com:UpdateFunctionConfiguration20150331v2`
//! (`lambda:write`) an action outside it.
//!
//! The engine gathers, for each session of an agent with a purpose, the STS sessions its
//! tool calls assumed and their CloudTrail events; [`judge`] says which are outside the
//! purpose and builds the finding, [`RULE`], with the prompt context as evidence: the
//! conversation, the person who prompted it, and the tool call that preceded each action.
//! Pure: no I/O, no clock.

use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use keyward_model::time::Millis;
use serde_json::{Value, json};

use crate::finding::{Finding, Kind, Severity, Status, finding_id};

/// The rule id of an agent's action outside its declared purpose.
pub const RULE: &str = "kw-ai-agent-outside-purpose";

/// The intent rule as `keyward rules list` shows it, and as exceptions and compliance
/// controls name it.
pub fn rule_info() -> crate::rules::RuleInfo {
    crate::rules::RuleInfo {
        id: RULE.to_owned(),
        title: "AI agent acted outside its declared purpose".to_owned(),
        description: "An AI agent with a purpose (keyward.yaml `agents.purposes`/`assign`) used \
                      a credential its session obtained for a call outside the purpose's \
                      categories. Judged after every ingest from the agent's traces (OTel \
                      GenAI spans, MCP tool calls) joined to the credential's CloudTrail; \
                      high when the call changed something and was not denied. Inactive \
                      without purposes."
            .to_owned(),
        severity: Severity::High,
        kind: Kind::Threat,
        attack: Vec::new(),
        references: vec!["https://opentelemetry.io/docs/specs/semconv/gen-ai/".to_owned()],
        logsource: crate::rules::Logsource {
            label: "gen_ai traces + aws/cloudtrail".to_owned(),
            source: Some(keyward_model::SourceKind::OtelTraces),
        },
        form: crate::rules::Form::Analytic,
        origin: "builtin".to_owned(),
        note: None,
        check: None,
        internal: false,
        always: true,
        exceptions: Vec::new(),
    }
}

/// What kind of call an action is, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Reads state: `Get*`, `List*`, `Describe*`, …
    Read,
    /// Changes state.
    Write,
    /// Removes something: `Delete*`, `Remove*`, `Terminate*`, …
    Delete,
    /// Changes who may do what: IAM writes, resource policies, permissions.
    Permissions,
}

impl Class {
    pub const ALL: [Class; 4] = [Class::Read, Class::Write, Class::Delete, Class::Permissions];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
            Class::Delete => "delete",
            Class::Permissions => "permissions",
        }
    }

    pub fn parse(s: &str) -> Option<Class> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Why a purpose or an assignment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntentError {
    #[error(
        "`{0}` is not a category (`<service>:<class>`, class one of read, write, delete, permissions, `*`)"
    )]
    Category(String),
    #[error("purpose `{0}` allows nothing")]
    Empty(String),
    #[error("agent `{agent}` is given the undeclared purpose `{purpose}`")]
    UnknownPurpose { agent: String, purpose: String },
    #[error("agent glob `{agent}`: {source}")]
    Glob {
        agent: String,
        source: globset::Error,
    },
}

/// One allowed category: a service (or `*`) and a class (or any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub service: String,
    pub class: Option<Class>,
}

impl Category {
    pub fn parse(s: &str) -> Result<Category, IntentError> {
        let bad = || IntentError::Category(s.to_owned());
        let (service, class) = s.trim().split_once(':').ok_or_else(bad)?;
        let service = service.trim().to_ascii_lowercase();
        if service.is_empty() || service.contains(char::is_whitespace) {
            return Err(bad());
        }
        let class = match class.trim() {
            "*" => None,
            c => Some(Class::parse(c).ok_or_else(bad)?),
        };
        Ok(Category { service, class })
    }

    fn covers(&self, service: &str, class: Class) -> bool {
        (self.service == "*" || self.service == service) && self.class.is_none_or(|c| c == class)
    }

    pub fn to_text(&self) -> String {
        format!("{}:{}", self.service, self.class.map_or("*", Class::as_str))
    }
}

/// A declared purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose {
    pub name: String,
    pub description: Option<String>,
    pub allow: Vec<Category>,
}

impl Purpose {
    pub fn new(
        name: &str,
        description: Option<String>,
        allow: &[String],
    ) -> Result<Purpose, IntentError> {
        let allow = allow
            .iter()
            .map(|c| Category::parse(c))
            .collect::<Result<Vec<_>, _>>()?;
        if allow.is_empty() {
            return Err(IntentError::Empty(name.to_owned()));
        }
        Ok(Purpose {
            name: name.to_owned(),
            description,
            allow,
        })
    }

    pub fn permits(&self, service: &str, class: Class) -> bool {
        self.allow.iter().any(|c| c.covers(service, class))
    }
}

/// Purposes and which agents have them (the first assignment that matches wins).
#[derive(Debug, Clone, Default)]
pub struct Intents {
    pub purposes: BTreeMap<String, Purpose>,
    /// (glob over an agent's id or name, purpose name)
    pub assign: Vec<(String, String)>,
    /// `assign`'s globs, compiled in its order.
    globs: GlobSet,
}

impl Intents {
    pub fn new(
        purposes: Vec<Purpose>,
        assign: Vec<(String, String)>,
    ) -> Result<Intents, IntentError> {
        let purposes: BTreeMap<String, Purpose> =
            purposes.into_iter().map(|p| (p.name.clone(), p)).collect();
        let mut globs = GlobSetBuilder::new();
        for (agent, purpose) in &assign {
            if !purposes.contains_key(purpose) {
                return Err(IntentError::UnknownPurpose {
                    agent: agent.clone(),
                    purpose: purpose.clone(),
                });
            }
            globs.add(Glob::new(agent).map_err(|source| IntentError::Glob {
                agent: agent.clone(),
                source,
            })?);
        }
        let globs = globs.build().map_err(|source| IntentError::Glob {
            agent: String::new(),
            source,
        })?;
        Ok(Intents {
            purposes,
            assign,
            globs,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.assign.is_empty()
    }

    /// The purpose of the agent with this canonical id and name. The id is matched with
    /// and without its `ai:agent/` prefix.
    pub fn purpose_of(&self, id: &str, name: &str) -> Option<&Purpose> {
        let bare = id.strip_prefix("ai:agent/").unwrap_or(id);
        let first = [id, bare, name]
            .iter()
            .filter_map(|t| self.globs.matches(t).first().copied())
            .min()?;
        self.purposes.get(&self.assign.get(first)?.1)
    }
}

/// Name prefixes of read-only calls.
const READ: &[&str] = &[
    "Get", "List", "Describe", "Head", "Lookup", "Search", "View", "BatchGet", "Query", "Scan",
    "Select", "Estimate", "Preview", "Simulate", "Test",
];
/// Name prefixes of calls that remove something.
const DELETE: &[&str] = &[
    "Delete",
    "Remove",
    "Terminate",
    "Deregister",
    "Detach",
    "Disassociate",
    "Revoke",
    "Purge",
    "Destroy",
];
/// Words of call names that change who may do what, on any service.
const PERMISSION_WORDS: &[&str] = &["Policy", "Permission", "Grant", "Acl", "Trust"];

/// The service and class of a CloudTrail action (`lambda.amazonaws.com:UpdateFunction…`).
/// API-version suffixes (`20150331v2`) do not change a name's class.
pub fn classify(action: &str) -> (&str, Class) {
    let (source, name) = action.rsplit_once(':').unwrap_or(("", action));
    let service = keyward_model::ids::service_name(source);
    let starts = |list: &[&str]| list.iter().any(|p| name.starts_with(p));
    let class = if starts(READ) {
        Class::Read
    } else if service == "iam"
        || service == "sts" && name.starts_with("Assume")
        || PERMISSION_WORDS.iter().any(|w| name.contains(w))
    {
        Class::Permissions
    } else if starts(DELETE) {
        Class::Delete
    } else {
        Class::Write
    };
    (service, class)
}

/// One CloudTrail event of a credential the agent used.
#[derive(Debug, Clone)]
pub struct Action {
    pub event_id: String,
    pub time: Millis,
    pub action: String,
    pub target: Option<String>,
    pub denied: bool,
}

/// One tool call of the agent's session (an `execute_tool` or `tools/call` span).
#[derive(Debug, Clone)]
pub struct ToolCall {
    pub event_id: String,
    pub time: Millis,
    pub tool: Option<String>,
}

/// The prompt context an agent's actions are judged in.
#[derive(Debug, Clone)]
pub struct Prompt<'a> {
    pub agent: &'a str,
    pub agent_name: &'a str,
    /// The agent session's canonical id, and the conversation (or MCP session) id.
    pub session: &'a str,
    pub conversation: &'a str,
    pub prompted_by: Option<&'a str>,
    /// The STS session the actions were made with, and its role.
    pub credential: &'a str,
    pub role: Option<&'a str>,
}

/// The finding for the actions of one credential an agent's session used that are outside
/// its purpose (`None`: all inside). `calls`: the session's tool calls, any order; each
/// action is tied to the last call at or before it. `path`: the graph path to show.
pub fn judge(
    purpose: &Purpose,
    prompt: &Prompt<'_>,
    actions: &[Action],
    calls: &[ToolCall],
    path: Vec<String>,
) -> Option<Finding> {
    let mut outside: Vec<(&Action, &str, Class)> = actions
        .iter()
        .filter_map(|a| {
            let (service, class) = classify(&a.action);
            (!purpose.permits(service, class)).then_some((a, service, class))
        })
        .collect();
    if outside.is_empty() {
        return None;
    }
    outside.sort_by(|a, b| (a.0.time, &a.0.event_id).cmp(&(b.0.time, &b.0.event_id)));
    let mut calls: Vec<&ToolCall> = calls.iter().collect();
    calls.sort_by(|a, b| (a.time, &a.event_id).cmp(&(b.time, &b.event_id)));
    let call_before = |t: Millis| calls.iter().rev().find(|c| c.time <= t).copied();
    let changes = outside
        .iter()
        .any(|(a, _, c)| *c != Class::Read && !a.denied);
    let severity = if changes {
        Severity::High
    } else {
        Severity::Medium
    };
    let mut f = Finding {
        id: finding_id(RULE, Some(prompt.session), prompt.credential),
        rule_id: RULE.to_owned(),
        title: "AI agent acted outside its declared purpose".to_owned(),
        severity,
        kind: Kind::Threat,
        identity: Some(prompt.session.to_owned()),
        attack: Vec::new(),
        events: Vec::new(),
        path,
        first_seen: outside.first().map_or(0, |o| o.0.time),
        last_seen: outside.last().map_or(0, |o| o.0.time),
        count: outside.len() as u64,
        status: Status::Open,
        summary: String::new(),
        details: Value::Null,
    };
    let mut listed = Vec::new();
    for (a, service, class) in &outside {
        let call = call_before(a.time);
        if let Some(c) = call {
            f.add_evidence(&c.event_id);
        }
        f.add_evidence(&a.event_id);
        listed.push(json!({
            "event": a.event_id,
            "time": keyward_model::time::format(a.time),
            "action": a.action,
            "category": format!("{service}:{}", class.as_str()),
            "target": a.target,
            "denied": a.denied,
            "tool_call": call.map(|c| json!({
                "event": c.event_id,
                "tool": c.tool,
                "time": keyward_model::time::format(c.time),
            })),
        }));
    }
    let first = outside.first().map(|o| o.0);
    let who = prompt
        .prompted_by
        .map(|p| format!(", prompted by {p}"))
        .unwrap_or_default();
    f.summary = format!(
        "agent `{}` (purpose `{}`) made {} call{} outside its purpose as `{}` in conversation `{}`{who}; first: {}",
        prompt.agent_name,
        purpose.name,
        outside.len(),
        if outside.len() == 1 { "" } else { "s" },
        prompt.credential,
        prompt.conversation,
        first.map_or("", |a| a.action.as_str()),
    );
    f.details = json!({
        "agent": prompt.agent,
        "agent_name": prompt.agent_name,
        "purpose": purpose.name,
        "purpose_description": purpose.description,
        "allowed": purpose.allow.iter().map(Category::to_text).collect::<Vec<_>>(),
        "session": prompt.session,
        "conversation": prompt.conversation,
        "prompted_by": prompt.prompted_by,
        "credential": prompt.credential,
        "role": prompt.role,
        "actions": listed,
    });
    Some(f)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn cost() -> Purpose {
        Purpose::new(
            "cost-analysis",
            None,
            &["ce:read".into(), "budgets:read".into(), "cur:*".into()],
        )
        .unwrap()
    }

    #[test]
    fn calls_are_classed_by_name() {
        for (action, service, class) in [
            ("ce.amazonaws.com:GetCostAndUsage", "ce", Class::Read),
            (
                "budgets.amazonaws.com:DescribeBudgets",
                "budgets",
                Class::Read,
            ),
            (
                "lambda.amazonaws.com:UpdateFunctionConfiguration20150331v2",
                "lambda",
                Class::Write,
            ),
            (
                "lambda.amazonaws.com:AddPermission20150331v2",
                "lambda",
                Class::Permissions,
            ),
            (
                "lambda.amazonaws.com:DeleteFunction20150331",
                "lambda",
                Class::Delete,
            ),
            (
                "iam.amazonaws.com:CreateAccessKey",
                "iam",
                Class::Permissions,
            ),
            ("s3.amazonaws.com:PutBucketPolicy", "s3", Class::Permissions),
            ("sts.amazonaws.com:AssumeRole", "sts", Class::Permissions),
            ("sts.amazonaws.com:GetCallerIdentity", "sts", Class::Read),
        ] {
            assert_eq!(classify(action), (service, class), "{action}");
        }
    }

    #[test]
    fn categories_parse_and_refuse() {
        assert_eq!(
            Category::parse("CE:read").unwrap(),
            Category {
                service: "ce".into(),
                class: Some(Class::Read)
            }
        );
        assert_eq!(Category::parse("*:*").unwrap().class, None);
        for bad in ["ce", "ce:reads", ":read", "c e:read"] {
            let e = Category::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("`{bad}`")), "{e}");
        }
        let e = Intents::new(vec![cost()], vec![("x".into(), "other".into())]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "agent `x` is given the undeclared purpose `other`"
        );
        assert!(Purpose::new("p", None, &[]).is_err());
    }

    #[test]
    fn agents_get_purposes_by_id_or_name() {
        let i = Intents::new(
            vec![cost()],
            vec![("finops*".into(), "cost-analysis".into())],
        )
        .unwrap();
        assert!(i.purpose_of("ai:agent/asst_1", "finops-agent").is_some());
        assert!(i.purpose_of("ai:agent/finops-7", "x").is_some());
        assert!(i.purpose_of("ai:agent/support", "support").is_none());
        // The first assignment that matches wins, whichever of id and name it matched.
        let ops = Purpose::new("ops", None, &["*:*".into()]).unwrap();
        let i = Intents::new(
            vec![cost(), ops],
            vec![
                ("*/finops-?".into(), "cost-analysis".into()),
                ("{ops,sre}-*".into(), "ops".into()),
                ("a*b*c".into(), "ops".into()),
            ],
        )
        .unwrap();
        let name = |id, name| i.purpose_of(id, name).map(|p| p.name.as_str());
        assert_eq!(name("ai:agent/finops-7", "sre-bot"), Some("cost-analysis"));
        assert_eq!(name("ai:agent/x", "sre-bot"), Some("ops"));
        assert_eq!(name("aXbY/bc", "-"), Some("ops"), "`*` crosses `/`");
        assert_eq!(name("ai:agent/abX", "finops-77"), None);
        let e = Intents::new(vec![cost()], vec![("a[".into(), "cost-analysis".into())]);
        assert!(e.unwrap_err().to_string().starts_with("agent glob `a[`"));
    }

    fn action(id: &str, t: Millis, name: &str) -> Action {
        Action {
            event_id: id.into(),
            time: t,
            action: name.into(),
            target: None,
            denied: false,
        }
    }

    #[test]
    fn actions_outside_the_purpose_are_one_finding_with_their_tool_calls() {
        let prompt = Prompt {
            agent: "ai:agent/a",
            agent_name: "finops",
            session: "ai:agent/a/session/c1",
            conversation: "c1",
            prompted_by: Some("dave@acme.example"),
            credential: "arn:aws:sts::1:assumed-role/r/c1",
            role: Some("arn:aws:iam::1:role/r"),
        };
        let actions = [
            action("e1", 10, "ce.amazonaws.com:GetCostAndUsage"),
            action(
                "e3",
                30,
                "lambda.amazonaws.com:UpdateFunctionConfiguration20150331v2",
            ),
            action("e2", 20, "lambda.amazonaws.com:GetFunction20150331v2"),
        ];
        let calls = [
            ToolCall {
                event_id: "t2".into(),
                time: 25,
                tool: Some("update_lambda".into()),
            },
            ToolCall {
                event_id: "t1".into(),
                time: 5,
                tool: Some("cost".into()),
            },
        ];
        let f = judge(&cost(), &prompt, &actions, &calls, Vec::new()).unwrap();
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.events, ["t1", "e2", "t2", "e3"]);
        assert_eq!((f.first_seen, f.last_seen, f.count), (20, 30, 2));
        assert_eq!(f.details["actions"][1]["category"], "lambda:write");
        assert_eq!(
            f.details["actions"][1]["tool_call"]["tool"],
            "update_lambda"
        );
        assert_eq!(f.details["prompted_by"], "dave@acme.example");
        assert_eq!(
            f.id,
            finding_id(RULE, Some(prompt.session), prompt.credential)
        );
        // Reads outside the purpose alone are a medium finding; inside, none.
        let f = judge(&cost(), &prompt, &actions[2..], &calls, Vec::new()).unwrap();
        assert_eq!(f.severity, Severity::Medium);
        assert!(judge(&cost(), &prompt, &actions[..1], &calls, Vec::new()).is_none());
    }
}
