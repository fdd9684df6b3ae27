//! A synthetic CloudTrail corpus, the same every run: 2,000 roles (six sessions each, a
//! temporary key per session), 500 IAM users with a key each, and AWS services, calling ten
//! common read APIs. The ingest benchmark, the bus benchmark and the bus's fault tests read
//! it.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test data: a failure to write it is the test's failure"
)]

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::Rng;

const ACCOUNT: &str = "111122223333";
const ACTIONS: [(&str, &str, bool); 10] = [
    ("s3.amazonaws.com", "ListBuckets", true),
    ("ec2.amazonaws.com", "DescribeInstances", true),
    ("kms.amazonaws.com", "Decrypt", true),
    ("secretsmanager.amazonaws.com", "GetSecretValue", true),
    ("dynamodb.amazonaws.com", "DescribeTable", true),
    ("sts.amazonaws.com", "GetCallerIdentity", true),
    ("logs.amazonaws.com", "CreateLogStream", false),
    ("ecr.amazonaws.com", "GetAuthorizationToken", true),
    ("ssm.amazonaws.com", "GetParameter", true),
    ("lambda.amazonaws.com", "GetFunction", true),
];

pub fn uuid(rng: &mut Rng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// One CloudTrail record at `t` (ms): an assumed-role session (60 %), an IAM user (30 %) or
/// an AWS service (10 %), calling one of ten common APIs from a random private address.
pub fn record(rng: &mut Rng, t: i64) -> String {
    let (src, name, ro) = ACTIONS[rng.below(ACTIONS.len() as u64) as usize];
    let time = keyward_model::time::format(t);
    let ip = format!(
        "10.{}.{}.{}",
        rng.below(256),
        rng.below(256),
        rng.below(256)
    );
    let ident = match rng.below(20) {
        0..=11 => {
            let role = rng.below(2000);
            let slot = rng.below(6) + role * 16;
            let session = format!("i-{slot:017x}");
            // A session keeps its temporary key for its lifetime.
            let session_key = format!("ASIAEXAMPLE{slot:09}");
            format!(
                r#"{{"type":"AssumedRole","principalId":"AROAEXAMPLEROLE{role:05}:{session}","arn":"arn:aws:sts::{ACCOUNT}:assumed-role/app-role-{role}/{session}","accountId":"{ACCOUNT}","accessKeyId":"{}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROAEXAMPLEROLE{role:05}","arn":"arn:aws:iam::{ACCOUNT}:role/app-role-{role}","accountId":"{ACCOUNT}","userName":"app-role-{role}"}},"attributes":{{"creationDate":"{time}","mfaAuthenticated":"false"}},"ec2RoleDelivery":"2.0"}}}}"#,
                session_key
            )
        }
        12..=17 => {
            let u = rng.below(500);
            format!(
                r#"{{"type":"IAMUser","principalId":"AIDAEXAMPLEUSER{u:05}","arn":"arn:aws:iam::{ACCOUNT}:user/svc-{u}","accountId":"{ACCOUNT}","accessKeyId":"AKIAEXAMPLEKEY{u:06}","userName":"svc-{u}"}}"#
            )
        }
        _ => r#"{"type":"AWSService","invokedBy":"lambda.amazonaws.com"}"#.to_owned(),
    };
    format!(
        r#"{{"eventVersion":"1.09","userIdentity":{ident},"eventTime":"{time}","eventSource":"{src}","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":"{ip}","userAgent":"aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux api/{name}#1.0","requestParameters":{{"maxResults":50,"filter":"name-{}"}},"responseElements":null,"requestID":"{}","eventID":"{}","readOnly":{ro},"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{ACCOUNT}","eventCategory":"Management","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"{}"}}}}"#,
        rng.below(1000),
        uuid(rng),
        uuid(rng),
        src
    )
}

/// Writes `events` records as S3-layout delivery files under `dir`
/// (`AWSLogs/…/CloudTrail/…/*.json.gz`, `{"Records":[…]}` on one line, `per_file` records
/// each), 37 ms apart from 2026-11-10T00:00:00Z; the same every run. Returns the files,
/// and their raw and compressed sizes.
pub fn corpus(dir: &Path, events: usize, per_file: usize) -> (Vec<PathBuf>, u64, u64) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut t = 1_794_268_800_000; // 2026-11-10T00:00:00Z
    let (mut files, mut raw, mut compressed) = (Vec::new(), 0u64, 0u64);
    let mut left = events;
    let mut n = 0;
    while left > 0 {
        let count = left.min(per_file);
        let mut doc = String::from("{\"Records\":[");
        for i in 0..count {
            if i > 0 {
                doc.push(',');
            }
            t += 37;
            doc.push_str(&record(&mut rng, t));
        }
        doc.push_str("]}");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(doc.as_bytes()).expect("writing the corpus");
        let gz = enc.finish().expect("writing the corpus");
        let p = dir.join(format!("AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/11/10/{ACCOUNT}_CloudTrail_us-east-1_{n:05}.json.gz"));
        std::fs::create_dir_all(p.parent().expect("writing the corpus"))
            .expect("writing the corpus");
        std::fs::write(&p, &gz).expect("writing the corpus");
        raw += doc.len() as u64;
        compressed += gz.len() as u64;
        files.push(p);
        left -= count;
        n += 1;
    }
    (files, raw, compressed)
}
