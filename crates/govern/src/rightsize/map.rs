//! CloudTrail calls to the IAM actions that authorized them. The service prefix is the
//! `eventSource` before `.amazonaws.com`; the event name is the action name. Where AWS
//! names them differently the exceptions are listed here, each with why, and kept small:
//! a call this module cannot map is counted as skipped with its reason, never guessed.

/// Event sources whose IAM service prefix differs from the host name.
const SOURCE_PREFIX: [(&str, &str); 3] = [
    // CloudWatch metrics and alarms are served by `monitoring.amazonaws.com`.
    ("monitoring", "cloudwatch"),
    // SES v1 is served by `email.amazonaws.com`.
    ("email", "ses"),
    // The Resource Groups Tagging API is `tagging.amazonaws.com`, actions `tag:*`.
    ("tagging", "tag"),
];

/// `(service, eventName, IAM action name)` where the event name is not the action.
const EVENT_ACTION: [(&str, &str, &str); 13] = [
    ("s3", "ListBuckets", "ListAllMyBuckets"),
    ("s3", "ListObjects", "ListBucket"),
    ("s3", "ListObjectsV2", "ListBucket"),
    ("s3", "ListObjectVersions", "ListBucketVersions"),
    ("s3", "HeadBucket", "ListBucket"),
    ("s3", "HeadObject", "GetObject"),
    ("s3", "CopyObject", "PutObject"),
    ("s3", "CreateMultipartUpload", "PutObject"),
    ("s3", "UploadPart", "PutObject"),
    ("s3", "UploadPartCopy", "PutObject"),
    ("s3", "CompleteMultipartUpload", "PutObject"),
    ("s3", "DeleteObjects", "DeleteObject"),
    // Lambda's data event.
    ("lambda", "Invoke", "InvokeFunction"),
];

/// Calls no identity policy authorizes, so they say nothing about what the caller needs:
/// console sign-in, the web-identity and SAML exchanges (the trust policy decides them)
/// and `GetCallerIdentity` (always allowed).
const NOT_AUTHORIZED_BY_POLICY: [(&str, &str); 4] = [
    ("signin", "*"),
    ("sts", "AssumeRoleWithWebIdentity"),
    ("sts", "AssumeRoleWithSAML"),
    ("sts", "GetCallerIdentity"),
];

/// Data events: CloudTrail records them only when a trail is configured to, so their
/// absence from the logs says nothing. A granted data-event action is kept unless the
/// identity's own calls show data events of that service being logged.
pub const DATA_EVENT_ACTIONS: [&str; 20] = [
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectAcl",
    "s3:GetObjectTagging",
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectTagging",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "s3:RestoreObject",
    "lambda:InvokeFunction",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:BatchWriteItem",
];

/// Whether `action` (`service:Name`) is recorded as a data event.
pub fn is_data_event(action: &str) -> bool {
    DATA_EVENT_ACTIONS
        .iter()
        .any(|a| a.eq_ignore_ascii_case(action))
}

/// Why a call was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skip {
    /// Not a CloudTrail `eventSource:eventName` of an AWS service.
    NotAwsService,
    /// Decided by something other than the caller's identity policies.
    NotPolicyAuthorized,
    /// Refused (`AccessDenied`, `UnauthorizedOperation`): not something it was granted.
    Denied,
}

impl Skip {
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::NotAwsService => "not_aws_service",
            Skip::NotPolicyAuthorized => "not_policy_authorized",
            Skip::Denied => "denied",
        }
    }
}

/// Whether an error code means the call was refused by authorization.
pub fn is_denied(error_code: &str) -> bool {
    let e = error_code.to_ascii_lowercase();
    e.contains("accessdenied") || e.contains("unauthorized") || e.contains("notauthorized")
}

/// Lambda's management event names carry the API version (`GetFunction20150331v2`).
fn strip_api_version(name: &str) -> &str {
    let base = match name.rsplit_once('v') {
        Some((head, ver)) if !ver.is_empty() && ver.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => name,
    };
    let trimmed = base.trim_end_matches(|c: char| c.is_ascii_digit());
    if base.len() - trimmed.len() == 8 && !trimmed.is_empty() {
        trimmed
    } else {
        name
    }
}

/// The IAM action of a stored CloudTrail event's `action` (`eventSource:eventName`), or
/// why it does not count. `error_code` is the event's, if it failed.
pub fn iam_action(event_action: &str, error_code: Option<&str>) -> Result<String, Skip> {
    let Some((source, name)) = event_action.split_once(':') else {
        return Err(Skip::NotAwsService);
    };
    let Some(host) = source.strip_suffix(".amazonaws.com") else {
        return Err(Skip::NotAwsService);
    };
    if host.is_empty() || name.is_empty() {
        return Err(Skip::NotAwsService);
    }
    let service = SOURCE_PREFIX
        .iter()
        .find(|(h, _)| *h == host)
        .map_or(host, |(_, s)| *s);
    if NOT_AUTHORIZED_BY_POLICY
        .iter()
        .any(|(s, n)| *s == service && (*n == "*" || *n == name))
    {
        return Err(Skip::NotPolicyAuthorized);
    }
    if error_code.is_some_and(is_denied) {
        return Err(Skip::Denied);
    }
    let name = if service == "lambda" {
        strip_api_version(name)
    } else {
        name
    };
    let name = EVENT_ACTION
        .iter()
        .find(|(s, e, _)| *s == service && *e == name)
        .map_or(name, |(_, _, a)| *a);
    Ok(format!("{service}:{name}"))
}

/// The service prefix of an IAM action (`s3` of `s3:GetObject`; `*` for `*`).
pub fn service(action: &str) -> &str {
    action.split_once(':').map_or(action, |(s, _)| s)
}
