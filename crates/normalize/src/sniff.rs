//! Format detection from the bytes themselves (the path's extension only breaks ties for
//! YAML and CSV, which carry no JSON keys).

use sonic_rs::JsonValueTrait;

/// The input formats Keyward reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// CloudTrail: S3 delivery `{"Records":[…]}`, bare arrays, JSON lines, `lookup-events`
    /// and CloudTrail Lake exports (`CloudTrailEvent` wrappers).
    Cloudtrail,
    /// Kubernetes `audit.k8s.io` events: JSON lines or an `EventList`.
    K8sAudit,
    /// `aws iam get-account-authorization-details`.
    IamAuthorizationDetails,
    /// IAM credential report CSV.
    IamCredentialReport,
    /// `kubectl get … -o json|yaml`: a `List`, one object, or a multi-document YAML.
    K8sSnapshot,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Cloudtrail,
        Format::K8sAudit,
        Format::IamAuthorizationDetails,
        Format::IamCredentialReport,
        Format::K8sSnapshot,
    ];

    pub fn as_str(self) -> &'static str {
        self.source().as_str()
    }

    pub fn parse(s: &str) -> Option<Format> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    pub fn source(self) -> keyward_model::SourceKind {
        use keyward_model::SourceKind;
        match self {
            Format::Cloudtrail => SourceKind::Cloudtrail,
            Format::K8sAudit => SourceKind::K8sAudit,
            Format::IamAuthorizationDetails => SourceKind::IamAuthorizationDetails,
            Format::IamCredentialReport => SourceKind::IamCredentialReport,
            Format::K8sSnapshot => SourceKind::K8sSnapshot,
        }
    }
}

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

/// Decides the layout from the first bytes of an input (`head`, at most a buffer's worth).
/// A file whose first line is one complete JSON object followed by another object is JSON
/// lines; everything else is a document.
pub fn layout(head: &[u8], path: &str) -> Layout {
    if is_csv(head, path) || is_yaml_path(path) {
        return Layout::Document;
    }
    let h = trim_start(head);
    if !h.starts_with(b"{") {
        return Layout::Document;
    }
    let Some(nl) = h.iter().position(|&b| b == b'\n') else {
        return Layout::Document;
    };
    let (first, rest) = h.split_at(nl);
    if !trim_start(rest).starts_with(b"{") {
        return Layout::Document;
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

/// The format of one JSON object (a JSON-lines record, or a whole document's top level).
pub fn format_of_object(obj: &[u8]) -> Option<Format> {
    if let Some(k) = first_key(obj) {
        match k {
            "Records" | "eventVersion" | "CloudTrailEvent" | "eventJson" | "QueryResultRows" => {
                return Some(Format::Cloudtrail);
            }
            "UserDetailList" | "RoleDetailList" | "GroupDetailList" => {
                return Some(Format::IamAuthorizationDetails);
            }
            _ => {}
        }
    }
    let mut kind: Option<String> = None;
    let mut api_version: Option<String> = None;
    let mut has_items = false;
    for entry in sonic_rs::to_object_iter(obj) {
        let Ok((key, value)) = entry else { break };
        match key.as_ref() {
            "Records" | "eventVersion" | "eventSource" | "eventName" | "CloudTrailEvent"
            | "eventJson" | "QueryResultRows" | "userIdentity" => return Some(Format::Cloudtrail),
            "Events" if value.as_raw_str().contains("\"CloudTrailEvent\"") => {
                return Some(Format::Cloudtrail);
            }
            "UserDetailList" | "RoleDetailList" | "GroupDetailList" | "Policies" => {
                return Some(Format::IamAuthorizationDetails);
            }
            "auditID" | "stage" | "requestURI" => return Some(Format::K8sAudit),
            "kind" => kind = value.as_str().map(str::to_owned),
            "apiVersion" => api_version = value.as_str().map(str::to_owned),
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
    if is_csv(doc, path) {
        return Some(Format::IamCredentialReport);
    }
    if is_yaml_path(path) {
        return Some(Format::K8sSnapshot);
    }
    let d = trim_start(doc);
    if d.starts_with(b"[") {
        let first = sonic_rs::to_array_iter(d).next()?.ok()?;
        return format_of_object(first.as_raw_str().as_bytes());
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
        assert_eq!(
            sniff(b"kind: ServiceAccount", "sa.yaml"),
            Some((Layout::Document, Format::K8sSnapshot))
        );
    }
}
