//! `keyward broker …`: the credential broker's client. A workload asks `keyward serve`'s
//! `/broker` for credentials with what it already holds (its service-account token by
//! default), renews and gives up its leases; an operator lists the leases in the store and
//! revokes them (and what was issued under them) through the API.
//!
//! Credentials are written to standard output as JSON (or, for an SVID, to files with
//! `--out-dir`, the key 0600), never to the terminal's error stream or a log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_model::time::Millis;
use keyward_respond::playbook::parse_duration;
use serde_json::{Value, json};

use crate::Outcome;
use crate::output::{now_ms, table};

/// A projected service-account token, where Kubernetes mounts it.
const SA_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Args, Clone)]
pub struct Server {
    /// `keyward serve`'s address (`https://keyward.example`).
    #[arg(long, env = "KEYWARD_SERVER", value_name = "URL")]
    server: String,
}

#[derive(clap::Args, Clone)]
pub struct Proof {
    /// The workload's proof: a file holding its service-account, OIDC or Keyward token.
    #[arg(long, env = "KEYWARD_BROKER_PROOF_FILE", value_name = "FILE", default_value = SA_TOKEN)]
    proof_file: PathBuf,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// A JWT from Keyward's issuer for AUDIENCE.
    Token {
        audience: String,
        /// How long (`10m`, `1h`), within the configured maximum.
        #[arg(long)]
        ttl: Option<String>,
        #[command(flatten)]
        server: Server,
        #[command(flatten)]
        proof: Proof,
    },
    /// AWS credentials for ROLE_ARN through STS.
    Aws {
        role_arn: String,
        #[arg(long)]
        ttl: Option<String>,
        #[command(flatten)]
        server: Server,
        #[command(flatten)]
        proof: Proof,
    },
    /// An X.509 SVID (the workload's own SPIFFE id unless `--spiffe-id`).
    Svid {
        #[arg(long)]
        spiffe_id: Option<String>,
        /// A PKCS#10 request (PEM): the key stays with the workload.
        #[arg(long, value_name = "FILE")]
        csr: Option<PathBuf>,
        /// Write `svid.pem`, `svid.key` (0600, without `--csr`) and `bundle.pem` here instead
        /// of printing them.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
        #[arg(long)]
        ttl: Option<String>,
        #[command(flatten)]
        server: Server,
        #[command(flatten)]
        proof: Proof,
    },
    /// A dynamic secret (its name in `broker.secrets`).
    Secret {
        name: String,
        #[command(flatten)]
        server: Server,
        #[command(flatten)]
        proof: Proof,
    },
    /// Extend a lease the workload holds.
    Renew {
        lease: String,
        #[arg(long)]
        ttl: Option<String>,
        #[command(flatten)]
        server: Server,
        #[command(flatten)]
        proof: Proof,
    },
    /// Give up a lease the workload holds (and what was issued under it).
    Release {
        lease: String,
        #[command(flatten)]
        server: Server,
        #[command(flatten)]
        proof: Proof,
    },
    /// Leases in the store, newest first (the tree under LEASE when given).
    Leases {
        lease: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a lease and, in cascade, every lease issued under it (an operator's API token
    /// in `KEYWARD_TOKEN`).
    Revoke {
        lease: String,
        #[arg(long)]
        reason: String,
        #[arg(long, env = "KEYWARD_TOKEN", hide_env_values = true)]
        token: String,
        #[command(flatten)]
        server: Server,
    },
}

fn ttl_seconds(ttl: Option<&str>) -> anyhow::Result<Option<Millis>> {
    ttl.map(|t| parse_duration(t).map(|ms| ms / 1000))
        .transpose()
        .map_err(|e| anyhow::anyhow!(e))
}

fn read_proof(p: &Proof) -> anyhow::Result<String> {
    let t = std::fs::read_to_string(&p.proof_file)
        .with_context(|| format!("reading the proof `{}`", p.proof_file.display()))?;
    Ok(t.trim().to_owned())
}

/// One call to the server; a status other than 2xx is an error with the server's message.
fn call(method: &str, url: String, bearer: &str, body: Option<Value>) -> anyhow::Result<Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, bytes) = rt
        .block_on(crate::http::call(
            method,
            &url,
            Some(bearer),
            body.as_ref(),
            TIMEOUT,
        ))
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !(200..300).contains(&status) {
        let why = v
            .pointer("/error")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        anyhow::bail!("{method} {url}: {status}: {why}");
    }
    Ok(v)
}

fn url(s: &Server, path: &str) -> String {
    format!("{}{path}", s.server.trim_end_matches('/'))
}

fn issue(s: &Server, p: &Proof, path: &str, body: Value) -> anyhow::Result<Value> {
    call("POST", url(s, path), &read_proof(p)?, Some(body))
}

fn print(v: &Value) -> anyhow::Result<Outcome> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(Outcome::Clean)
}

pub fn run(dir: &Path, cmd: Command) -> anyhow::Result<Outcome> {
    match cmd {
        Command::Token {
            audience,
            ttl,
            server,
            proof,
        } => print(&issue(
            &server,
            &proof,
            "/broker/token",
            json!({"audience": audience, "ttl_seconds": ttl_seconds(ttl.as_deref())?}),
        )?),
        Command::Aws {
            role_arn,
            ttl,
            server,
            proof,
        } => print(&issue(
            &server,
            &proof,
            "/broker/aws",
            json!({"role_arn": role_arn, "ttl_seconds": ttl_seconds(ttl.as_deref())?}),
        )?),
        Command::Svid {
            spiffe_id,
            csr,
            out_dir,
            ttl,
            server,
            proof,
        } => {
            let csr = csr
                .map(|f| {
                    std::fs::read_to_string(&f)
                        .with_context(|| format!("reading `{}`", f.display()))
                })
                .transpose()?;
            let v = issue(
                &server,
                &proof,
                "/broker/svid",
                json!({"spiffe_id": spiffe_id, "csr": csr, "ttl_seconds": ttl_seconds(ttl.as_deref())?}),
            )?;
            let Some(out) = out_dir else { return print(&v) };
            std::fs::create_dir_all(&out)?;
            let field = |f: &str| {
                v.pointer(&format!("/credential/{f}"))
                    .and_then(Value::as_str)
            };
            std::fs::write(out.join("svid.pem"), field("cert_pem").unwrap_or_default())?;
            std::fs::write(
                out.join("bundle.pem"),
                field("bundle_pem").unwrap_or_default(),
            )?;
            if let Some(key) = field("key_pem") {
                let path = out.join("svid.key");
                keyward_broker::write_atomically(&path, key.as_bytes(), 0o600)
                    .with_context(|| format!("writing `{}`", path.display()))?;
            }
            eprintln!(
                "{} (lease {}) written to {}",
                field("spiffe_id").unwrap_or_default(),
                v.pointer("/lease/lease_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                out.display()
            );
            Ok(Outcome::Clean)
        }
        Command::Secret {
            name,
            server,
            proof,
        } => print(&issue(
            &server,
            &proof,
            &format!("/broker/secrets/{name}"),
            json!({}),
        )?),
        Command::Renew {
            lease,
            ttl,
            server,
            proof,
        } => print(&issue(
            &server,
            &proof,
            &format!("/broker/leases/{lease}/renew"),
            json!({"ttl_seconds": ttl_seconds(ttl.as_deref())?}),
        )?),
        Command::Release {
            lease,
            server,
            proof,
        } => print(&issue(
            &server,
            &proof,
            &format!("/broker/leases/{lease}/revoke"),
            json!({}),
        )?),
        Command::Revoke {
            lease,
            reason,
            token,
            server,
        } => print(&call(
            "POST",
            url(&server, &format!("/api/broker/leases/{lease}/revoke")),
            &token,
            Some(json!({"reason": reason})),
        )?),
        Command::Leases { lease, limit, json } => {
            let engine = Engine::open(dir)
                .with_context(|| format!("opening the store in `{}`", dir.display()))?;
            let list = match lease {
                Some(id) => engine.lease_tree(&id)?,
                None => engine.leases(None, limit)?,
            };
            if json {
                return print(&serde_json::to_value(&list)?);
            }
            let now = now_ms();
            let mut t = table();
            t.set_header([
                "lease", "kind", "state", "workload", "target", "parent", "expires",
            ]);
            for l in list {
                t.add_row([
                    l.lease_id.clone(),
                    l.kind.as_str().to_owned(),
                    l.state_at(now).as_str().to_owned(),
                    l.workload.clone(),
                    l.target.clone(),
                    l.parent.clone().unwrap_or_default(),
                    keyward_model::time::format(l.expires_at),
                ]);
            }
            println!("{t}");
            Ok(Outcome::Clean)
        }
    }
}
