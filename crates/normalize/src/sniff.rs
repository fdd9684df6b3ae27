//! Format detection from the bytes themselves. The path decides only for inputs that carry
//! no telling keys: YAML, CSV, Terraform configuration (`.tf`, `.tf.json`) and `CODEOWNERS`.

/// The input formats Keyward reads: the model's [`SourceKind`](keyward_model::SourceKind),
/// named here for what sniffing decides. One enum, so a new format is one variant.
pub use keyward_model::SourceKind as Format;

/// Whether an input is read record by record (JSON lines) or as one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Lines,
    Document,
}

/// The bytes after a UTF-8 byte-order mark and leading whitespace.
pub fn trim_start(b: &[u8]) -> &[u8] {
    let b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    b.get(start..).unwrap_or_default()
}

fn is_yaml_path(path: &str) -> bool {
    let p = path.trim_end_matches(".gz");
    p.ends_with(".yaml") || p.ends_with(".yml")
}

fn is_csv(head: &[u8], path: &str) -> bool {
    let h = trim_start(head);
    h.starts_with(b"user,arn,") || path.trim_end_matches(".gz").ends_with(".csv")
}

/// The last component of a path, with either separator.
fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Whether the first line is a CSV header naming (case-insensitively) both an `email` and
/// a `status` column: a people directory.
fn is_people_header(head: &[u8]) -> bool {
    let h = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    // JSON is never a people CSV: without this, a one-line CloudTrail document (megabytes)
    // was split at every comma.
    if matches!(trim_start(h).first(), Some(b'{' | b'[')) {
        return false;
    }
    let line = h.split(|&b| b == b'\n').next().unwrap_or_default();
    let column = |name: &[u8]| {
        line.split(|&b| b == b',').any(|c| {
            let c = c.trim_ascii();
            let c = c
                .strip_prefix(b"\"")
                .and_then(|c| c.strip_suffix(b"\""))
                .unwrap_or(c);
            c.trim_ascii().eq_ignore_ascii_case(name)
        })
    };
    column(b"email") && column(b"status")
}

/// Formats known from the path (or, for the people CSV, its header line) rather than from
/// JSON keys: always whole documents.
fn format_of_path(head: &[u8], path: &str) -> Option<Format> {
    let p = path.trim_end_matches(".gz");
    if file_name(p) == "CODEOWNERS" {
        return Some(Format::Codeowners);
    }
    if p.ends_with(".tf") || p.ends_with(".tf.json") {
        return Some(Format::Terraform);
    }
    if is_people_header(head) {
        return Some(Format::PeopleDirectory);
    }
    None
}

/// Decides the layout from the first bytes of an input (`head`, at most a buffer's worth).
/// A file whose first line is one complete JSON object followed by another object is JSON
/// lines; everything else is a document.
pub fn layout(head: &[u8], path: &str) -> Layout {
    if format_of_path(head, path).is_some() || is_csv(head, path) || is_yaml_path(path) {
        return Layout::Document;
    }
    let h = trim_start(head);
    if crate::mcp_log::is_log(h) {
        return Layout::Lines;
    }
    if !h.starts_with(b"{") {
        return Layout::Document;
    }
    let Some(nl) = memchr::memchr(b'\n', h) else {
        return Layout::Document;
    };
    let (first, rest) = h.split_at(nl);
    if !trim_start(rest).starts_with(b"{") {
        return Layout::Document;
    }
    // A first line nested too deep for a parser is still a line: its reader rejects it.
    if crate::depth::too_deep_at(first).is_some() {
        return Layout::Lines;
    }
    match sonic_rs::from_slice::<serde::de::IgnoredAny>(first) {
        Ok(_) => Layout::Lines,
        Err(_) => Layout::Document,
    }
}

/// The first key of a JSON object, read without parsing its value (so a document cut short
/// is still recognised).
pub(crate) fn first_key(obj: &[u8]) -> Option<&str> {
    let rest = trim_start(obj).strip_prefix(b"{")?;
    let rest = trim_start(rest).strip_prefix(b"\"")?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    std::str::from_utf8(rest.get(..end)?).ok()
}

/// Whether a document's `Policies` list is `aws organizations list-policies` output (its
/// entries start with `Id`), not the IAM policies of `get-account-authorization-details`
/// (`PolicyName`). Reads only the first entry's first key.
fn is_org_policy_list(obj: &[u8]) -> bool {
    let Some(at) = memchr::memchr(b'[', obj) else {
        return false;
    };
    let list = obj.get(at + 1..).unwrap_or_default();
    first_key(list) == Some("Id")
}

/// The format of one JSON object (a JSON-lines record, or a whole document's top level),
/// or of one line of a text log (an MCP log's line, whose JSON follows a prefix).
pub fn format_of_object(obj: &[u8]) -> Option<Format> {
    // A JSON object never starts with a digit; an MCP log line starts with its time.
    if obj.first().is_some_and(u8::is_ascii_digit) && crate::mcp_log::is_log_line(obj) {
        return Some(Format::McpLog);
    }
    if let Some(k) = first_key(obj) {
        match k {
            "Records" | "eventVersion" | "CloudTrailEvent" | "eventJson" | "QueryResultRows" => {
                return Some(Format::Cloudtrail);
            }
            "UserDetailList" | "RoleDetailList" | "GroupDetailList" => {
                return Some(Format::IamAuthorizationDetails);
            }
            // `terraform show -json`: a plan starts with either key.
            "format_version" | "terraform_version" => return Some(Format::Terraform),
            "Functions" | "FunctionName" => return Some(Format::LambdaFunctions),
            "Policy" | "Targets" | "Parents" => return Some(Format::AwsOrganizations),
            "Policies" if is_org_policy_list(obj) => return Some(Format::AwsOrganizations),
            "resourceSpans" => return Some(Format::OtelTraces),
            _ => {}
        }
    }
    let mut kind: Option<String> = None;
    let mut api_version: Option<String> = None;
    let mut has_items = false;
    // sonic-rs's iterator recurses into the values it skips: an object nested too deep
    // is walked by the splitter instead (keys as they are written, escapes and all).
    let deep = crate::depth::too_deep_at(obj).is_some();
    let sonic = (!deep)
        .then(|| sonic_rs::to_object_iter(obj))
        .into_iter()
        .flatten();
    let sonic = sonic.map_while(Result::ok).map(|(key, value)| {
        let raw = value.as_raw_str().as_bytes();
        let start = (raw.as_ptr() as usize).saturating_sub(obj.as_ptr() as usize);
        (key, obj.get(start..start + raw.len()).unwrap_or_default())
    });
    let walked = crate::split::entries(if deep { obj } else { b"" })
        .map(|(key, value)| (String::from_utf8_lossy(key), value));
    for (key, value) in sonic.chain(walked) {
        let text = || {
            (value.first() == Some(&b'"'))
                .then(|| sonic_rs::from_slice::<String>(value).ok())
                .flatten()
        };
        match key.as_ref() {
            "Records" | "eventVersion" | "eventSource" | "eventName" | "CloudTrailEvent"
            | "eventJson" | "QueryResultRows" | "userIdentity" => return Some(Format::Cloudtrail),
            "Events" if memchr::memmem::find(value, b"\"CloudTrailEvent\"").is_some() => {
                return Some(Format::Cloudtrail);
            }
            "UserDetailList" | "RoleDetailList" | "GroupDetailList" | "Policies" => {
                return Some(Format::IamAuthorizationDetails);
            }
            "auditID" | "stage" | "requestURI" => return Some(Format::K8sAudit),
            "delivered_at" | "guid" => return Some(Format::GithubWebhook),
            "format_version" | "terraform_version" => return Some(Format::Terraform),
            "Functions" | "FunctionArn" => return Some(Format::LambdaFunctions),
            // OTLP/HTTP JSON (`ExportTraceServiceRequest`).
            "resourceSpans" => return Some(Format::OtelTraces),
            "lease_id" => return Some(Format::BrokerLeases),
            "kind" => kind = text(),
            "apiVersion" => api_version = text(),
            "items" => has_items = true,
            _ => {}
        }
    }
    let api = api_version.unwrap_or_default();
    match kind.as_deref() {
        Some("EventList" | "Event") if api.starts_with("audit.k8s.io") => Some(Format::K8sAudit),
        Some(_) if !api.is_empty() => Some(Format::K8sSnapshot),
        Some("List") if has_items => Some(Format::K8sSnapshot),
        _ => None,
    }
}

/// The format of a whole document.
pub fn format_of_document(doc: &[u8], path: &str) -> Option<Format> {
    if let Some(f) = format_of_path(doc, path) {
        return Some(f);
    }
    if is_csv(doc, path) {
        return Some(Format::IamCredentialReport);
    }
    if is_yaml_path(path) {
        return Some(Format::K8sSnapshot);
    }
    let d = trim_start(doc);
    if crate::mcp_log::is_log(d) {
        return Some(Format::McpLog);
    }
    if d.starts_with(b"[") {
        // Cut by the splitter: the first record may nest too deep for a parser.
        let mut elements = crate::split::elements(d);
        let first = elements.next()?.ok()?;
        if !elements.too_deep() {
            sonic_rs::from_slice::<serde::de::IgnoredAny>(first).ok()?;
        }
        return format_of_object(first);
    }
    if d.starts_with(b"{") {
        return format_of_object(d);
    }
    None
}

/// Layout and format of a complete input (tests, small inputs).
pub fn sniff(bytes: &[u8], path: &str) -> Option<(Layout, Format)> {
    match layout(bytes, path) {
        Layout::Lines => {
            let h = trim_start(bytes);
            let nl = h.iter().position(|&b| b == b'\n').unwrap_or(h.len());
            format_of_object(h.get(..nl)?).map(|f| (Layout::Lines, f))
        }
        Layout::Document => format_of_document(bytes, path).map(|f| (Layout::Document, f)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let ct = br#"{"Records":[{"eventVersion":"1.09"}]}"#;
        assert_eq!(
            sniff(ct, "x.json"),
            Some((Layout::Document, Format::Cloudtrail))
        );
        let lines = b"{\"eventVersion\":\"1.09\"}\n{\"eventVersion\":\"1.09\"}\n";
        assert_eq!(
            sniff(lines, "x.jsonl"),
            Some((Layout::Lines, Format::Cloudtrail))
        );
        let audit = b"{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"auditID\":\"a\"}\n{\"kind\":\"Event\"}";
        assert_eq!(
            sniff(audit, "a.log"),
            Some((Layout::Lines, Format::K8sAudit))
        );
        let pretty = b"{\n  \"UserDetailList\": [],\n  \"RoleDetailList\": []\n}";
        assert_eq!(
            sniff(pretty, "a.json"),
            Some((Layout::Document, Format::IamAuthorizationDetails))
        );
        let csv = b"user,arn,user_creation_time\n";
        assert_eq!(
            sniff(csv, "report"),
            Some((Layout::Document, Format::IamCredentialReport))
        );
        let list = br#"{"apiVersion":"v1","items":[],"kind":"List"}"#;
        assert_eq!(
            sniff(list, "rbac.json"),
            Some((Layout::Document, Format::K8sSnapshot))
        );
        let arr = br#"[{"awsRegion":"x","eventName":"y"}]"#;
        assert_eq!(
            sniff(arr, "a.json"),
            Some((Layout::Document, Format::Cloudtrail))
        );
        let lake = br#"{"QueryStatus":"FINISHED","QueryResultRows":[[{"eventJson":"{}"}]]}"#;
        assert_eq!(
            sniff(lake, "a.json"),
            Some((Layout::Document, Format::Cloudtrail))
        );
        let lookup = br#"{"Events":[{"EventId":"1","CloudTrailEvent":"{}"}]}"#;
        assert_eq!(
            sniff(lookup, "a.json"),
            Some((Layout::Document, Format::Cloudtrail))
        );
        assert_eq!(sniff(b"hello", "a.txt"), None);
    }

    #[test]
    fn new_inputs() {
        let doc = |f| Some((Layout::Document, f));
        let plan = b"{\"format_version\":\"1.2\",\"terraform_version\":\"1.9.8\"}\n";
        assert_eq!(sniff(plan, "plan.json"), doc(Format::Terraform));
        let state = b"{\"terraform_version\":\"1.9.8\",\"format_version\":\"1.0\"}";
        assert_eq!(sniff(state, "state.json"), doc(Format::Terraform));
        // HCL carries no telling bytes: the extension decides.
        let tf = b"resource \"aws_iam_role\" \"r\" {}\n";
        assert_eq!(sniff(tf, "infra/iam.tf"), doc(Format::Terraform));
        assert_eq!(sniff(b"{}", "infra/main.tf.json"), doc(Format::Terraform));
        assert_eq!(sniff(tf, "infra/iam.tfvars"), None);
        let owners = b"* @acme/platform\n";
        assert_eq!(
            sniff(owners, "repo/.github/CODEOWNERS"),
            doc(Format::Codeowners)
        );
        assert_eq!(sniff(owners, "CODEOWNERS"), doc(Format::Codeowners));
        assert_eq!(sniff(owners, "CODEOWNERS.bak"), None);
        let people = b"\xEF\xBB\xBFemail,name,team,Status\r\na@acme.example,A,t,active\r\n";
        assert_eq!(sniff(people, "people.csv"), doc(Format::PeopleDirectory));
        assert_eq!(sniff(people, "export"), doc(Format::PeopleDirectory));
        let quoted = b"\"Email\",\"Status\"\n";
        assert_eq!(sniff(quoted, "x.csv"), doc(Format::PeopleDirectory));
        // The credential report is not a people directory, even named `.csv`.
        let report = b"user,arn,user_creation_time,password_enabled\n";
        assert_eq!(
            sniff(report, "people.csv"),
            doc(Format::IamCredentialReport)
        );
        let list = b"{\n  \"Functions\": [\n    {\"FunctionName\": \"f\"}\n  ]\n}\n";
        assert_eq!(sniff(list, "fns.json"), doc(Format::LambdaFunctions));
        let one =
            b"{\"FunctionName\":\"f\",\"FunctionArn\":\"arn:aws:lambda:us-east-1:1:function:f\"}";
        assert_eq!(sniff(one, "f.json"), doc(Format::LambdaFunctions));
        let later = b"{\"NextMarker\":\"x\",\"Functions\":[]}";
        assert_eq!(sniff(later, "f.json"), doc(Format::LambdaFunctions));
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Some(f));
            assert_eq!(f.line_oriented(), f.is_log());
        }
        assert_eq!(
            sniff(b"kind: ServiceAccount", "sa.yaml"),
            Some((Layout::Document, Format::K8sSnapshot))
        );
    }
}
