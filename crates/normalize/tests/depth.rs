//! Deep nesting never crashes a reader: every input format, at 129, 10,000 and 1,000,000
//! levels, read as the engine reads it (sniffed, then by line or as a document). A record
//! nested deeper than `MAX_NESTING` is one rejected record with the reason `TOO_DEEP`; a
//! document nested too deep at its top is one rejected document. Tests run on threads
//! with the default 2 MiB stack, so an overflow would show up here as an abort.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keyward_model::Diagnostic;
use keyward_normalize::{
    Context, Format, Layout, MAX_NESTING, Output, Sink, TOO_DEEP, normalize_document,
    normalize_line, sniff,
};

const DEPTHS: [usize; 3] = [MAX_NESTING + 1, 10_000, 1_000_000];

/// What a reader did with each record, in order: `ok`, or `line L[ #record]: reason`.
#[derive(Default)]
struct Log(Vec<String>);

impl Sink for Log {
    fn accept(&mut self, _out: Output<'_>) {
        self.0.push("ok".into());
    }
    fn reject(&mut self, d: Diagnostic) {
        let record = d.record.map(|r| format!(" #{r}")).unwrap_or_default();
        self.0
            .push(format!("line {}{record}: {}", d.line, d.reason));
    }
}

/// Reads `bytes` as the file `path` the way the engine does: sniffed (it must be `want`
/// in `layout`), then line by line or as one document.
fn read(path: &str, bytes: &str, layout: Layout, want: Format) -> Vec<String> {
    assert_eq!(
        sniff(bytes.as_bytes(), path),
        Some((layout, want)),
        "{path}"
    );
    let mut ctx = Context::default().with_path(path);
    let mut log = Log::default();
    match layout {
        Layout::Document => normalize_document(want, bytes.as_bytes(), &mut ctx, &mut log),
        Layout::Lines => {
            for (i, line) in bytes.lines().enumerate() {
                normalize_line(want, line.as_bytes(), i as u64 + 1, &mut ctx, &mut log);
            }
        }
    }
    log.0
}

/// `{"a":{"a":…1…}}`, `depth` levels.
fn objects(depth: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
}

/// `[[…]]`, `depth` levels.
fn arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// A CloudTrail record (one line) with the given `requestParameters`.
fn cloudtrail(id: &str, request_parameters: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","userName":"alice"}},"eventTime":"2026-11-02T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"GetUser","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2","requestParameters":{request_parameters},"eventID":"{id}","recipientAccountId":"111122223333"}}"#
    )
}

/// A Kubernetes audit event (one line) with the given `requestObject`.
fn audit(id: &str, request_object: &str) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"{id}","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"create","user":{{"username":"system:serviceaccount:default:builder","groups":["system:serviceaccounts"]}},"sourceIPs":["10.0.0.7"],"objectRef":{{"resource":"pods","namespace":"default","apiVersion":"v1"}},"responseStatus":{{"code":201}},"requestObject":{request_object},"requestReceivedTimestamp":"2026-11-02T10:00:00.000000Z","stageTimestamp":"2026-11-02T10:00:00.100000Z"}}"#
    )
}

fn too_deep(line: u64, record: Option<u64>) -> String {
    let record = record.map(|r| format!(" #{r}")).unwrap_or_default();
    format!("line {line}{record}: {TOO_DEEP}")
}

#[test]
fn deep_nesting_is_one_rejected_record() {
    for depth in DEPTHS {
        for deep in [objects(depth), arrays(depth)] {
            check_all(depth, &deep);
        }
    }
}

fn check_all(depth: usize, deep: &str) {
    let ct_ok = |id| cloudtrail(id, r#"{"userName":"alice"}"#);
    let ct_deep = cloudtrail("deep", deep);
    let ok = "ok".to_owned();

    // CloudTrail JSON lines, the deep record in the middle and first.
    let lines = format!("{}\n{ct_deep}\n{}\n", ct_ok("a"), ct_ok("b"));
    let got = read("ct.jsonl", &lines, Layout::Lines, Format::Cloudtrail);
    assert_eq!(got, [ok.clone(), too_deep(2, None), ok.clone()], "{depth}");
    let lines = format!("{ct_deep}\n{}\n", ct_ok("b"));
    let got = read("ct.jsonl", &lines, Layout::Lines, Format::Cloudtrail);
    assert_eq!(got, [too_deep(1, None), ok.clone()], "{depth}");
    // The whole line nested too deep (not even a record).
    let lines = format!("{}\n{}\n", ct_ok("a"), arrays(depth));
    let mut log = Log::default();
    let mut ctx = Context::default();
    for (i, l) in lines.lines().enumerate() {
        normalize_line(
            Format::Cloudtrail,
            l.as_bytes(),
            i as u64 + 1,
            &mut ctx,
            &mut log,
        );
    }
    assert_eq!(log.0, [ok.clone(), too_deep(2, None)], "{depth}");
    // A `CloudTrailEvent` wrapper whose string holds the deep record.
    let wrapped = format!(
        "{{\"CloudTrailEvent\":{}}}",
        serde_json::to_string(&ct_deep).unwrap()
    );
    let lines = format!("{}\n{wrapped}\n", ct_ok("a"));
    let got = read("lookup.jsonl", &lines, Layout::Lines, Format::Cloudtrail);
    assert_eq!(
        got,
        [
            ok.clone(),
            format!("line 2: `CloudTrailEvent` string: {TOO_DEEP}")
        ],
        "{depth}"
    );

    // An S3 object: the records before and after the deep one are kept (the splitter
    // finds its end without recursion).
    let s3 = format!(
        "{{\"Records\":[\n{},\n{ct_deep},\n{}\n]}}",
        ct_ok("a"),
        ct_ok("b")
    );
    let got = read("s3.json", &s3, Layout::Document, Format::Cloudtrail);
    assert_eq!(
        got,
        [ok.clone(), too_deep(3, Some(1)), ok.clone()],
        "{depth}"
    );
    // A bare array, the deep record first.
    let bare = format!("[{ct_deep},{}]", ct_ok("b"));
    let got = read("bare.json", &bare, Layout::Document, Format::Cloudtrail);
    assert_eq!(got, [too_deep(1, Some(0)), ok.clone()], "{depth}");
    // Cut inside the deep record, past its deepest bracket: the records before it are
    // kept, and its depth (what went wrong first) is why the rest was skipped (at the
    // line the split had reached, as for any cut).
    let cut = &s3[..s3.find(deep).unwrap() + deep.len() - depth - 1];
    let got = read("s3.json", cut, Layout::Document, Format::Cloudtrail);
    assert_eq!(
        got,
        [
            ok.clone(),
            format!("line 2 #1: {TOO_DEEP}; the rest of the document was skipped")
        ],
        "{depth}"
    );
    // `Records` not the first key: the document is parsed as a whole, so one too deep
    // anywhere is one rejected document.
    let late = format!("{{\"x\":1,\"Records\":[{},\n{ct_deep}]}}", ct_ok("a"));
    let got = read("late.json", &late, Layout::Document, Format::Cloudtrail);
    assert_eq!(got, [too_deep(2, None)], "{depth}");
    // One record as a whole file.
    let got = read("one.json", &ct_deep, Layout::Document, Format::Cloudtrail);
    assert_eq!(got, [too_deep(1, None)], "{depth}");

    // Kubernetes audit: JSON lines and an `EventList`.
    let lines = format!("{}\n{}\n", audit("a", "{}"), audit("b", deep));
    let got = read("audit.log", &lines, Layout::Lines, Format::K8sAudit);
    assert_eq!(got, [ok.clone(), too_deep(2, None)], "{depth}");
    let list = format!(
        "{{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[\n{},\n{}]}}",
        audit("a", "{}"),
        audit("b", deep)
    );
    let got = read("audit.json", &list, Layout::Document, Format::K8sAudit);
    assert_eq!(got, [too_deep(3, None)], "{depth}");

    // IAM authorization details.
    let iam = format!(
        "{{\"UserDetailList\":[\n{{\"UserName\":\"alice\",\"Arn\":\"arn:aws:iam::111122223333:user/alice\",\"Tags\":{deep}}}],\"RoleDetailList\":[]}}"
    );
    let got = read(
        "authz.json",
        &iam,
        Layout::Document,
        Format::IamAuthorizationDetails,
    );
    assert_eq!(got, [too_deep(2, None)], "{depth}");

    // Kubernetes snapshots: a JSON `List`, YAML in flow style, and YAML blocks nested
    // on one line (`- - - …`).
    let list = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[\n{{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{{\"name\":\"sa\",\"namespace\":\"default\",\"labels\":{deep}}}}}]}}"
    );
    let got = read("rbac.json", &list, Layout::Document, Format::K8sSnapshot);
    assert_eq!(got, [too_deep(2, None)], "{depth}");

    // Terraform: HCL nested by brackets, parentheses and template interpolations, and
    // `.tf.json`.
    let open = depth.min(200_000);
    for body in [
        format!("a = {}1{}", "[".repeat(depth), "]".repeat(depth)),
        format!("a = {}1{}", "(".repeat(depth), ")".repeat(depth)),
        format!("a = {}", "{".repeat(open)),
        format!("a = \"{}x{}\"", "${\"".repeat(open), "\"}".repeat(open)),
    ] {
        let tf = format!("resource \"aws_iam_role\" \"r\" {{\n  name = \"r\"\n  {body}\n}}\n");
        let got = read("main.tf", &tf, Layout::Document, Format::Terraform);
        assert_eq!(got, [too_deep(3, None)], "{depth}");
    }
    let tf_json = format!("{{\"resource\":{{\"aws_iam_role\":{{\"r\":{deep}}}}}}}");
    let got = read(
        "main.tf.json",
        &tf_json,
        Layout::Document,
        Format::Terraform,
    );
    assert_eq!(got, [too_deep(1, None)], "{depth}");

    // Lambda and GitHub webhook deliveries.
    let fns = format!("{{\"Functions\":[{{\"FunctionName\":\"f\",\"Environment\":{deep}}}]}}");
    let got = read("fns.json", &fns, Layout::Document, Format::LambdaFunctions);
    assert_eq!(got, [too_deep(1, None)], "{depth}");
    let gh = format!(
        "{{\"guid\":\"g\",\"delivered_at\":\"2026-11-02T10:00:00Z\",\"event\":\"push\",\"request\":{{\"payload\":{deep}}}}}"
    );
    let got = read("gh.json", &gh, Layout::Document, Format::GithubWebhook);
    assert_eq!(got, [too_deep(1, None)], "{depth}");
    let mut log = Log::default();
    normalize_line(
        Format::GithubWebhook,
        gh.as_bytes(),
        7,
        &mut Context::default(),
        &mut log,
    );
    assert_eq!(log.0, [too_deep(7, None)], "{depth}");

    // A Claude Desktop MCP log: the JSON after each line's prefix, either direction, read
    // line by line and as a whole log.
    let mcp = format!(
        "2026-11-02T10:00:00Z [info] [aws] Initializing server...\n\
         2026-11-02T10:00:01Z [info] [aws] Message from client: {{\"method\":\"tools/call\",\"params\":{{\"name\":\"t\",\"arguments\":{deep}}},\"id\":1}}\n\
         2026-11-02T10:00:02Z [aws] [info] Message from server: {deep}\n\
         2026-11-02T10:00:03Z [info] [aws] Message from client: {{\"method\":\"tools/call\",\"params\":{{\"name\":\"t\"}},\"id\":2}}\n"
    );
    let want = [too_deep(2, None), too_deep(3, None), ok.clone()];
    let got = read("mcp-server-aws.log", &mcp, Layout::Lines, Format::McpLog);
    assert_eq!(got, want, "{depth}");
    let mut log = Log::default();
    normalize_document(
        Format::McpLog,
        mcp.as_bytes(),
        &mut Context::default(),
        &mut log,
    );
    assert_eq!(log.0, want, "{depth}");
}

/// YAML snapshots (flow style, and blocks nested on one line: `- - - …`) are measured by
/// serde-saphyr's own depth budget as it reads: it recurses up to the limit before it
/// stops, so this runs with the stack parsing threads get (see
/// [`keyward_normalize::depth::STACK`]).
#[test]
fn deep_yaml_is_one_rejected_document() {
    std::thread::Builder::new()
        .stack_size(keyward_normalize::depth::STACK)
        .spawn(|| {
            for depth in DEPTHS {
                for deep in [objects(depth), arrays(depth)] {
                    let yaml = format!(
                        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n  labels: {deep}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sb\n  namespace: default\n"
                    );
                    let got = read("sa.yaml", &yaml, Layout::Document, Format::K8sSnapshot);
                    assert_eq!(got, [too_deep(1, None), "ok".into()], "{depth}");
                }
                let blocks = format!("{}x\n", "- ".repeat(depth));
                let got = read("list.yaml", &blocks, Layout::Document, Format::K8sSnapshot);
                assert_eq!(got, [too_deep(1, None)], "{depth}");
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Nesting up to the limit is read as before: nothing is rejected for depth alone. The
/// parsers need [`keyward_normalize::depth::STACK`] for it (sonic-rs skips a value it
/// does not read with a 32 KB frame per level): more than a test thread's 2 MiB.
#[test]
fn nesting_up_to_the_limit_is_read() {
    std::thread::Builder::new()
        .stack_size(keyward_normalize::depth::STACK)
        .spawn(up_to_the_limit)
        .unwrap()
        .join()
        .unwrap();
}

fn up_to_the_limit() {
    // The record itself is one level: its request parameters may nest one less.
    let rp = objects(MAX_NESTING - 1);
    let lines = format!("{}\n{}\n", cloudtrail("a", &rp), cloudtrail("b", "{}"));
    let got = read("ct.jsonl", &lines, Layout::Lines, Format::Cloudtrail);
    assert_eq!(got, ["ok", "ok"]);
    let s3 = format!(
        "{{\"Records\":[{},{}]}}",
        cloudtrail("a", &rp),
        cloudtrail("b", "{}")
    );
    let got = read("s3.json", &s3, Layout::Document, Format::Cloudtrail);
    assert_eq!(got, ["ok", "ok"]);
}
