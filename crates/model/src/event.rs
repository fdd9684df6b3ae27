//! A normalized activity record: who did what, when, from where.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::time::Millis;

/// Which input format an event, observation or snapshot object came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    Cloudtrail,
    K8sAudit,
    IamAuthorizationDetails,
    IamCredentialReport,
    K8sSnapshot,
    /// Terraform configuration (`.tf`, `.tf.json`) or `terraform show -json` plan/state.
    Terraform,
    /// A repository's `CODEOWNERS` file.
    Codeowners,
    /// A people directory export (CSV with `email` and `status`).
    PeopleDirectory,
    /// `aws lambda list-functions` / `get-function-configuration`.
    LambdaFunctions,
    /// GitHub webhook deliveries (as posted, or as the deliveries API returns them).
    GithubWebhook,
    /// AWS Organizations: service and resource control policies, their targets, the OU
    /// hierarchy (`aws organizations list-policies`, `describe-policy`,
    /// `list-targets-for-policy`, `list-parents`).
    AwsOrganizations,
    /// OpenTelemetry traces in the OTLP/HTTP JSON encoding (`resourceSpans`), read for the
    /// spans of the GenAI and MCP semantic conventions: AI agents, their sessions and
    /// tool calls.
    OtelTraces,
    /// The credential broker's leases (`keyward serve`'s `/broker`), one JSON document per
    /// line ([`crate::lease::LeaseRecord`]): what was issued to which workload, under which
    /// parent, until when.
    BrokerLeases,
    /// Claude Desktop's MCP logs (`mcp.log`, `mcp-server-<name>.log`): one line per
    /// message, `<time> [level] [server] Message from client: <JSON-RPC>`, read for the
    /// `tools/call` requests of each server's client (an AI agent) and its sessions.
    McpLog,
}

impl SourceKind {
    /// Every format, in the order `--format`'s help lists them.
    pub const ALL: [SourceKind; 14] = [
        SourceKind::Cloudtrail,
        SourceKind::K8sAudit,
        SourceKind::IamAuthorizationDetails,
        SourceKind::IamCredentialReport,
        SourceKind::K8sSnapshot,
        SourceKind::Terraform,
        SourceKind::Codeowners,
        SourceKind::PeopleDirectory,
        SourceKind::LambdaFunctions,
        SourceKind::GithubWebhook,
        SourceKind::AwsOrganizations,
        SourceKind::OtelTraces,
        SourceKind::BrokerLeases,
        SourceKind::McpLog,
    ];

    /// The format named by [`SourceKind::as_str`].
    pub fn parse(s: &str) -> Option<SourceKind> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// Whether the format can be read one JSON line at a time (activity logs); the others
    /// are only ever whole documents (snapshots, reports, code).
    pub fn line_oriented(self) -> bool {
        self.is_log()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Cloudtrail => "cloudtrail",
            SourceKind::K8sAudit => "k8s-audit",
            SourceKind::IamAuthorizationDetails => "iam-authorization-details",
            SourceKind::IamCredentialReport => "iam-credential-report",
            SourceKind::K8sSnapshot => "k8s-snapshot",
            SourceKind::Terraform => "terraform",
            SourceKind::Codeowners => "codeowners",
            SourceKind::PeopleDirectory => "people-directory",
            SourceKind::LambdaFunctions => "lambda-functions",
            SourceKind::GithubWebhook => "github-webhook",
            SourceKind::AwsOrganizations => "aws-organizations",
            SourceKind::OtelTraces => "otel-traces",
            SourceKind::BrokerLeases => "broker-leases",
            SourceKind::McpLog => "mcp-log",
        }
    }

    pub fn is_log(self) -> bool {
        match self {
            SourceKind::Cloudtrail
            | SourceKind::K8sAudit
            | SourceKind::GithubWebhook
            | SourceKind::OtelTraces
            | SourceKind::BrokerLeases
            | SourceKind::McpLog => true,
            SourceKind::IamAuthorizationDetails
            | SourceKind::IamCredentialReport
            | SourceKind::K8sSnapshot
            | SourceKind::Terraform
            | SourceKind::Codeowners
            | SourceKind::PeopleDirectory
            | SourceKind::LambdaFunctions
            | SourceKind::AwsOrganizations => false,
        }
    }
}

/// Store key of an event: 16 bytes of BLAKE3 over the source and its native id, so the same
/// event read from an S3 file and from a `lookup-events` export deduplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey(pub [u8; 16]);

/// A normalized event. Strings that are absent in the source stay `None`. Strings borrow
/// from the input where they can (`Event<'a>`); events read back from the store are
/// `Event<'static>` (owned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event<'a> {
    /// The platform's own id (CloudTrail `eventID`, Kubernetes `auditID`).
    pub native_id: Cow<'a, str>,
    pub source: SourceKind,
    pub time: Millis,
    /// `eventSource:eventName` for CloudTrail (`iam.amazonaws.com:CreateAccessKey`),
    /// `verb resource[/subresource]` for Kubernetes (`create pods/exec`).
    pub action: Cow<'a, str>,
    /// Canonical id of the acting identity.
    pub actor: Option<Cow<'a, str>>,
    pub source_ip: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub region: Option<Cow<'a, str>>,
    pub account: Option<Cow<'a, str>>,
    pub error_code: Option<Cow<'a, str>>,
    /// The object acted on when the record names one (role ARN, `namespace/name`).
    pub target: Option<Cow<'a, str>>,
    /// The credential used: access key id, service-account token credential id.
    pub credential: Option<Cow<'a, str>>,
    /// The AWS service that made the call on the actor's behalf (`invokedBy`).
    pub invoked_by: Option<Cow<'a, str>>,
    /// CloudTrail `sharedEventID`: the same call recorded in several accounts.
    pub shared_id: Option<Cow<'a, str>>,
    /// For Kubernetes audit, the rank of the stage (RequestReceived 0 … Panic 3); the most
    /// complete stage of one request is kept.
    pub stage: u8,
}

fn own(s: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
    s.map(|c| Cow::Owned(c.into_owned()))
}

impl Event<'_> {
    /// Whether the platform refused the call (AWS's `AccessDenied…` and `…Unauthorized…`
    /// error codes).
    pub fn denied(&self) -> bool {
        self.error_code
            .as_deref()
            .is_some_and(|c| c.contains("AccessDenied") || c.contains("Unauthorized"))
    }

    /// The same event, owning its strings.
    pub fn into_owned(self) -> Event<'static> {
        Event {
            native_id: Cow::Owned(self.native_id.into_owned()),
            source: self.source,
            time: self.time,
            action: Cow::Owned(self.action.into_owned()),
            actor: own(self.actor),
            source_ip: own(self.source_ip),
            user_agent: own(self.user_agent),
            region: own(self.region),
            account: own(self.account),
            error_code: own(self.error_code),
            target: own(self.target),
            credential: own(self.credential),
            invoked_by: own(self.invoked_by),
            shared_id: own(self.shared_id),
            stage: self.stage,
        }
    }
}

/// How many record fields [`ReadFields`] holds.
const READ_FIELDS_MAX: usize = 4;

/// Fields of the platform's record that the parser read on its way, by JSON path, so rules
/// need not look for them in the raw record again. Only exact answers are kept: the
/// field's value when the record holds a JSON string there, or its absence from an object
/// the parser read. Any other path is unknown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadFields<'a> {
    entries: [Option<ReadField<'a>>; READ_FIELDS_MAX],
}

/// A JSON path and the string there (`None`: absent).
type ReadField<'a> = (&'static str, Option<Cow<'a, str>>);

impl<'a> ReadFields<'a> {
    /// Records the answer for `path` (`None`: the field is absent); ignored when full.
    pub fn set(&mut self, path: &'static str, value: Option<Cow<'a, str>>) {
        if let Some(slot) = self.entries.iter_mut().find(|e| e.is_none()) {
            *slot = Some((path, value));
        }
    }

    /// `None`: unknown; `Some(None)`: the field is absent; `Some(Some(s))`: a string.
    pub fn get(&self, path: &str) -> Option<Option<&str>> {
        self.entries
            .iter()
            .flatten()
            .find(|(p, _)| *p == path)
            .map(|(_, v)| v.as_deref())
    }

    /// The same answers, owning their strings.
    pub fn into_owned(self) -> ReadFields<'static> {
        ReadFields {
            entries: self
                .entries
                .map(|e| e.map(|(p, v)| (p, v.map(|c| Cow::Owned(c.into_owned()))))),
        }
    }
}
