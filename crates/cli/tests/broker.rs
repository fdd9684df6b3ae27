//! The credential broker end to end, against real servers: a Kubernetes service account
//! proves itself with a token from a real kube-apiserver (`KEYWARD_TEST_KUBE_*`), Cedar
//! decides, and `keyward serve` mints a JWT that OpenBao's `jwt` auth method accepts through
//! Keyward's discovery document (and refuses once tampered), an SVID and a PostgreSQL
//! dynamic secret from OpenBao (`KEYWARD_TEST_VAULT_*`, `KEYWARD_TEST_POSTGRES_URL`), and
//! AWS credentials from STS (moto, `KEYWARD_TEST_AWS_ENDPOINT`); the lease tree is in the
//! graph, and revoking its root revokes the rest, the database role included. Each part
//! says it was skipped without its server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
#[path = "common/kube.rs"]
mod kube;

use kube::kubectl;

use std::process::Command;

use serde_json::{Value, json};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}", n % 1_000_000_000)
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

fn call(port: u16, method: &str, path: &str, bearer: &str, body: Value) -> (u16, Value) {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let (s, b) = common::http_json(port, method, path, bearer, &bytes);
    (s, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

/// Flips one character of a JWT's payload (its signature no longer matches).
fn tamper(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let p = &mut parts[1];
    let last = p.pop().unwrap();
    p.push(if last == 'A' { 'B' } else { 'A' });
    parts.join(".")
}

struct Bao {
    port: u16,
    token: String,
}

impl Bao {
    fn from_env() -> Option<Bao> {
        Some(Bao {
            port: port_of(&env("KEYWARD_TEST_VAULT_ADDR")?),
            token: env("KEYWARD_TEST_VAULT_TOKEN")?,
        })
    }

    fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        call(self.port, method, &format!("/v1/{path}"), &self.token, body)
    }

    fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (s, v) = self.call(method, path, body);
        assert!((200..300).contains(&s), "{method} {path}: {s} {v}");
        v
    }
}

fn pg_role_exists(name: &str) -> bool {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
        ])
        .arg(format!("select 1 from pg_roles where rolname = '{name}'"))
        .output()
        .unwrap();
    common::text(&out.stdout).trim() == "1"
}

const POLICY: &str = r#"
// The payments API's service account may get tokens for OpenBao, its own SVID, the
// application database and the reports role, for at most an hour.
@id("api-gets-credentials")
permit (
    principal,
    action == Keyward::Action::"issue",
    resource
)
when {
    principal.proof == "kubernetes" && principal has service_account &&
    principal.service_account == "SA_NAME" && context.duration_secs <= 3600 &&
    (resource.kind == "jwt" && resource.target == "openbao" ||
     resource.kind == "svid" || resource.kind == "secret" || resource.kind == "aws")
};

// What it was issued may ask for more on its behalf: an SVID and the database.
@id("leases-get-svids-and-secrets")
permit (
    principal,
    action == Keyward::Action::"issue",
    resource
)
when { principal.proof == "keyward" && (resource.kind == "svid" || resource.kind == "secret") };
"#;

#[test]
fn a_service_account_gets_credentials_that_real_verifiers_accept_and_a_revocation_cascades() {
    let (Some(kube), Some(ca), Some(admin)) = (
        env("KEYWARD_TEST_KUBE_URL"),
        env("KEYWARD_TEST_KUBE_CA"),
        env("KEYWARD_TEST_KUBE_TOKEN"),
    ) else {
        eprintln!("skipped: KEYWARD_TEST_KUBE_URL unset (../shared/tools/k8s/kube-up)");
        return;
    };
    let bao = Bao::from_env();
    let pg = env("KEYWARD_TEST_POSTGRES_URL");
    let aws = env("KEYWARD_TEST_AWS_ENDPOINT");

    // A service account and a token for it, as a pod would hold (TokenRequest).
    let sa = unique("kwbroker");
    kubectl(&["create", "serviceaccount", &sa, "-n", "default"]);
    let sa_token = kubectl(&[
        "create",
        "token",
        &sa,
        "-n",
        "default",
        "--audience",
        "keyward",
        "--duration",
        "10m",
    ]);

    let data = tempfile::tempdir().unwrap();
    let conf = data.path().join("conf");
    std::fs::create_dir_all(conf.join("policies")).unwrap();
    std::fs::write(
        conf.join("policies/broker.cedar"),
        POLICY.replace("SA_NAME", &sa),
    )
    .unwrap();
    std::fs::write(conf.join("kube-token"), &admin).unwrap();
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}/broker");

    // OpenBao: a database mount for dynamic secrets (to the machine's PostgreSQL).
    let db_mount = unique("kwdb");
    let with_db = match (&bao, &pg) {
        (Some(b), Some(_)) => {
            b.ok(
                "POST",
                &format!("sys/mounts/{db_mount}"),
                json!({"type": "database"}),
            );
            b.ok("POST", &format!("{db_mount}/config/pg"), json!({
                "plugin_name": "postgresql-database-plugin",
                "connection_url": "postgresql://{{username}}:{{password}}@127.0.0.1:5432/postgres?sslmode=disable",
                "username": "postgres", "password": "x", "allowed_roles": "*", "verify_connection": true
            }));
            b.ok("POST", &format!("{db_mount}/roles/app"), json!({
                "db_name": "pg",
                "creation_statements": ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"],
                "default_ttl": "300s", "max_ttl": "3600s"
            }));
            true
        }
        _ => {
            eprintln!(
                "skipped (dynamic secrets): KEYWARD_TEST_VAULT_ADDR or KEYWARD_TEST_POSTGRES_URL unset"
            );
            false
        }
    };
    std::fs::write(
        conf.join("keyward.yaml"),
        format!(
            "policy:\n  dir: policies\nbroker:\n  issuer: {issuer}\n  trust_domain: payments.test\n  \
             trusted_issuers:\n    - name: kube\n      kind: kubernetes\n      issuer: {kube}\n      \
             audiences: [keyward]\n      ca_file: {ca}\n      bearer_token_file: kube-token\n      \
             cluster: kube\n  secrets:\n    app-db: {db_mount}/creds/app\n"
        ),
    )
    .unwrap();
    let conf_file = conf.join("keyward.yaml");
    let listen = format!("127.0.0.1:{port}");
    let served = common::serve_with(
        data.path(),
        &["--config", conf_file.to_str().unwrap()],
        &["--listen", &listen],
    );
    assert_eq!(served.port, port);
    let api = common::keyward(
        data.path(),
        &["token", "create", "--role", "operator", "--name", "t"],
    );
    let api_token = common::text(&api.stdout).trim().to_owned();

    // The issuer is discoverable.
    let (s, d) = call(
        port,
        "GET",
        "/broker/.well-known/openid-configuration",
        "",
        Value::Null,
    );
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["issuer"], issuer);
    assert_eq!(d["jwks_uri"], format!("{issuer}/jwks"));

    // No proof, a tampered proof, a proof for another audience: refused.
    assert_eq!(
        call(
            port,
            "POST",
            "/broker/token",
            "",
            json!({"audience": "openbao"})
        )
        .0,
        401
    );
    assert_eq!(
        call(
            port,
            "POST",
            "/broker/token",
            &tamper(&sa_token),
            json!({"audience": "openbao"})
        )
        .0,
        401
    );
    let other = kubectl(&[
        "create",
        "token",
        &sa,
        "-n",
        "default",
        "--audience",
        "other",
        "--duration",
        "10m",
    ]);
    assert_eq!(
        call(
            port,
            "POST",
            "/broker/token",
            &other,
            json!({"audience": "openbao"})
        )
        .0,
        401
    );
    // A credential no policy permits: 403, audited.
    let (s, v) = call(
        port,
        "POST",
        "/broker/token",
        &sa_token,
        json!({"audience": "elsewhere"}),
    );
    assert_eq!(s, 403, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("no policy permits it"),
        "{v}"
    );

    // A JWT for OpenBao.
    let (s, jwt) = call(
        port,
        "POST",
        "/broker/token",
        &sa_token,
        json!({"audience": "openbao", "ttl_seconds": 600}),
    );
    assert_eq!(s, 201, "{jwt}");
    let token = jwt["credential"]["token"].as_str().unwrap().to_owned();
    let root = jwt["lease"]["lease_id"].as_str().unwrap().to_owned();
    let sa_id = format!("k8s:kube/system:serviceaccount:default:{sa}");
    assert_eq!(jwt["lease"]["workload"], sa_id);
    assert_eq!(jwt["lease"]["policies"], json!(["api-gets-credentials"]));

    // A real verifier: OpenBao's jwt auth method, configured with Keyward's discovery URL.
    if let Some(b) = &bao {
        let path = unique("kwjwt");
        b.ok("POST", &format!("sys/auth/{path}"), json!({"type": "jwt"}));
        b.ok(
            "POST",
            &format!("auth/{path}/config"),
            json!({"oidc_discovery_url": issuer, "bound_issuer": issuer}),
        );
        b.ok(
            "POST",
            &format!("auth/{path}/role/app"),
            json!({
                "role_type": "jwt", "bound_audiences": ["openbao"], "user_claim": "sub",
                "bound_subject": sa_id, "token_policies": ["default"], "token_ttl": "5m"
            }),
        );
        let (s, login) = b.call(
            "POST",
            &format!("auth/{path}/login"),
            json!({"role": "app", "jwt": token}),
        );
        assert_eq!(s, 200, "OpenBao refused Keyward's token: {login}");
        assert!(
            login["auth"]["client_token"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{login}"
        );
        let (s, refused) = b.call(
            "POST",
            &format!("auth/{path}/login"),
            json!({"role": "app", "jwt": tamper(&token)}),
        );
        assert!(
            (400..500).contains(&s),
            "a tampered token logged in: {s} {refused}"
        );
        b.ok("DELETE", &format!("sys/auth/{path}"), Value::Null);
    } else {
        eprintln!("skipped (OpenBao jwt login): KEYWARD_TEST_VAULT_ADDR unset");
    }

    // Renewed by its workload: a new token, a later expiry.
    let (s, renewed) = call(
        port,
        "POST",
        &format!("/broker/leases/{root}/renew"),
        &sa_token,
        json!({"ttl_seconds": 900}),
    );
    assert_eq!(s, 200, "{renewed}");
    assert!(renewed["lease"]["expires_at"].as_i64() > jwt["lease"]["expires_at"].as_i64());

    // Under the JWT: an SVID and a database secret.
    let (s, svid) = call(port, "POST", "/broker/svid", &token, Value::Null);
    assert_eq!(s, 201, "{svid}");
    assert_eq!(
        svid["credential"]["spiffe_id"],
        format!("spiffe://payments.test/ns/default/sa/{sa}")
    );
    assert_eq!(svid["lease"]["parent"], root.as_str());
    let svid_lease = svid["lease"]["lease_id"].as_str().unwrap().to_owned();
    let mut db_user = None;
    let mut aws_session = None;
    if with_db {
        let (s, secret) = call(port, "POST", "/broker/secrets/app-db", &token, Value::Null);
        assert_eq!(s, 201, "{secret}");
        let user = secret["credential"]["data"]["username"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(pg_role_exists(&user), "the dynamic database role exists");
        db_user = Some(user);
    }
    if aws.is_some() {
        // The role, through moto's IAM API (it does not check signatures).
        let role = unique("kwbroker-role");
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
        let form = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={role}&AssumeRolePolicyDocument={}",
            percent(doc)
        );
        let answer = form_post(port_of(aws.as_deref().unwrap()), &form);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let arn = format!("arn:aws:iam::123456789012:role/{role}");
        let (s, creds) = call(
            port,
            "POST",
            "/broker/aws",
            &sa_token,
            json!({"role_arn": arn}),
        );
        assert_eq!(s, 201, "{creds}");
        assert!(
            creds["credential"]["access_key_id"]
                .as_str()
                .unwrap()
                .starts_with("ASIA")
        );
        let lease = &creds["lease"];
        assert_eq!(lease["identity"], creds["credential"]["assumed_role_arn"]);
        assert!(
            lease["identity"]
                .as_str()
                .unwrap()
                .ends_with(lease["lease_id"].as_str().unwrap())
        );
        // An operator revokes it: the role gets a deny of that one session (IAM's
        // `aws:userid`, `<role id>:<session name>`) until the session's own expiry.
        let aws_lease = lease["lease_id"].as_str().unwrap();
        let (s, v) = call(
            port,
            "POST",
            &format!("/api/broker/leases/{aws_lease}/revoke"),
            &api_token,
            json!({"reason": "leaked in a build log"}),
        );
        assert_eq!(s, 200, "{v}");
        let policy = form_post(
            port_of(aws.as_deref().unwrap()),
            &format!(
                "Action=GetRolePolicy&Version=2010-05-08&RoleName={role}&PolicyName=KeywardRevokedSessions"
            ),
        );
        assert!(policy.starts_with("HTTP/1.1 200"), "{policy}");
        let doc: Value =
            serde_json::from_str(&unescape(between(&policy, "<PolicyDocument>"))).unwrap();
        let user_id = format!("{}:{aws_lease}", between(&answer, "<RoleId>"));
        let until =
            keyward_model::time::format(lease["expires_at"].as_i64().unwrap() / 1000 * 1000);
        assert_eq!(
            doc["Statement"],
            json!([{
                "Effect": "Deny", "Action": "*", "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:userid": user_id},
                    "DateLessThan": {"aws:CurrentTime": until},
                },
            }]),
            "{policy}"
        );
        aws_session = Some(user_id);
    } else {
        eprintln!("skipped (AWS): KEYWARD_TEST_AWS_ENDPOINT unset");
    }

    // The chain is in the graph: the service account created the JWT's lease, which
    // created the SVID's: both are in what the service account reaches.
    // (Leases join the graph within a second of their commit.)
    let mut reach = String::new();
    for _ in 0..50 {
        let blast = common::keyward(
            data.path(),
            &["graph", "blast-radius", &sa_id, "--format", "json"],
        );
        reach = common::text(&blast.stdout);
        if reach.contains(&format!("keyward:lease/{svid_lease}")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for lease in [&root, &svid_lease] {
        assert!(
            reach.contains(&format!("keyward:lease/{lease}")),
            "{lease} not reached:\n{reach}"
        );
    }

    // An operator revokes the root: everything under it goes, the database role too.
    let (s, v) = call(
        port,
        "POST",
        &format!("/api/broker/leases/{root}/revoke"),
        &api_token,
        json!({"reason": "compromised pod"}),
    );
    assert_eq!(s, 200, "{v}");
    let revoked: Vec<&str> = v["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lease_id"].as_str().unwrap())
        .collect();
    assert_eq!(revoked[0], root);
    assert!(revoked.contains(&svid_lease.as_str()));
    assert_eq!(revoked.len(), if with_db { 3 } else { 2 }, "{v}");
    if let Some(user) = db_user {
        assert!(
            !pg_role_exists(&user),
            "the database role went with its lease"
        );
    }
    // The revoked token proves nothing any more.
    assert_eq!(
        call(port, "POST", "/broker/svid", &token, Value::Null).0,
        401
    );
    let (s, listed) = call(
        port,
        "GET",
        &format!("/api/broker/leases/{root}"),
        &api_token,
        Value::Null,
    );
    assert_eq!(s, 200);
    assert!(
        listed["leases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["state"] == "revoked"),
        "{listed}"
    );

    // Every issuance, the refusal and the revocations are in the audit log.
    let audit = common::keyward(data.path(), &["audit", "export"]);
    let log = common::text(&audit.stdout);
    for needle in [
        "broker.issue.jwt",
        "broker.issue.svid",
        "broker.renew",
        "broker.revoke",
        "deny",
    ] {
        assert!(log.contains(needle), "the audit log lacks {needle}:\n{log}");
    }
    if let Some(user_id) = aws_session {
        assert!(
            log.contains(&format!("AWS session {user_id} denied until its expiry")),
            "the audit log lacks the AWS revocation:\n{log}"
        );
    }
    drop(served);
    if with_db && let Some(b) = &bao {
        b.ok("DELETE", &format!("sys/mounts/{db_mount}"), Value::Null);
    }
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The text of the first `<tag>…</tag>` element in `xml`.
fn between<'a>(xml: &'a str, open: &str) -> &'a str {
    let close = open.replacen('<', "</", 1);
    let start = xml.find(open).map(|i| i + open.len()).unwrap_or(0);
    let end = xml[start..].find(&close).map_or(xml.len(), |i| start + i);
    &xml[start..end]
}

/// An XML text's entities and percent-escapes decoded (IAM answers a policy document
/// URL-encoded; moto as the text itself).
fn unescape(text: &str) -> String {
    let text = text
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    percent_encoding::percent_decode_str(&text)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

/// A form POST to moto's IAM query API (it reads the service and region from the
/// credential scope and checks no signature): the whole answer.
fn form_post(port: u16, form: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: iam.amazonaws.com\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, \
         SignedHeaders=host, Signature=00\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}
