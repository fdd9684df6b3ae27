//! Dynamic secrets and their leases against a real OpenBao (`KEYWARD_TEST_VAULT_ADDR`,
//! `KEYWARD_TEST_VAULT_TOKEN`: `../shared/tools/openbao/bao-up`) and a real PostgreSQL
//! (`KEYWARD_TEST_POSTGRES_URL`, e.g. `postgres://postgres@127.0.0.1:5432/kw_dev`, with
//! `psql` on the PATH); without them the test says it was skipped.
//!
//! OpenBao's `database` engine is mounted at a unique path, pointed at PostgreSQL as its
//! superuser, and given a role that creates a login role per lease; the connector reads a
//! secret, renews, looks up and revokes its lease, and PostgreSQL's `pg_roles` shows the
//! login role appear and go. The mount is removed at the end.

#![cfg(feature = "vault")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keyward_respond::rotate::handoff;
use keyward_respond::vault::{VaultConfig, VaultConnector};
use serde_json::{Value, json};

/// PostgreSQL as the test reaches it: host, port and user from the URL.
struct Pg {
    host: String,
    port: String,
    user: String,
}

impl Pg {
    fn from_env() -> Option<Pg> {
        let Some(url) = std::env::var("KEYWARD_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            println!("skipped: KEYWARD_TEST_POSTGRES_URL not set");
            return None;
        };
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .expect("a postgres:// URL");
        let (user, rest) = rest.split_once('@').expect("a user in the URL");
        let authority = rest.split('/').next().unwrap();
        let (host, port) = authority.split_once(':').unwrap_or((authority, "5432"));
        Some(Pg {
            host: host.to_owned(),
            port: port.to_owned(),
            user: user.split(':').next().unwrap().to_owned(),
        })
    }

    /// Whether a role of that name exists (`pg_roles`, through `psql`).
    fn role_exists(&self, name: &str) -> bool {
        assert!(
            name.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        let out = Command::new("psql")
            .args(["-h", &self.host, "-p", &self.port, "-U", &self.user])
            .args(["-d", "postgres", "-tAc"])
            .arg(format!("select 1 from pg_roles where rolname='{name}'"))
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }
}

/// Raw calls to OpenBao as root, to set the engine up.
#[derive(Clone)]
struct Bao {
    addr: String,
    root: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Bao {
    fn from_env() -> Option<Bao> {
        let (Ok(addr), Ok(root)) = (
            std::env::var("KEYWARD_TEST_VAULT_ADDR"),
            std::env::var("KEYWARD_TEST_VAULT_TOKEN"),
        ) else {
            println!("skipped: KEYWARD_TEST_VAULT_ADDR / KEYWARD_TEST_VAULT_TOKEN not set");
            return None;
        };
        Some(Bao {
            addr: addr.trim_end_matches('/').to_owned(),
            root,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    fn connector(&self) -> VaultConnector {
        VaultConnector::from_config(VaultConfig {
            addr: self.addr.clone(),
            token: handoff::Secret::new(self.root.clone()),
            namespace: None,
            ca_cert: None,
        })
        .unwrap()
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.root)
            .body(Full::new(if body.is_null() {
                Bytes::new()
            } else {
                Bytes::from(body.to_string())
            }))
            .unwrap();
        let resp = self.client.request(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let doc = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(status < 300, "{method} {path}: {status} {doc}");
        doc
    }
}

fn unique(tag: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("kw-{tag}-{}-{}", std::process::id(), t % 100_000_000)
}

#[tokio::test]
async fn a_database_secret_is_leased_renewed_and_revoked() {
    let (Some(bao), Some(pg)) = (Bao::from_env(), Pg::from_env()) else {
        return;
    };
    let mount = unique("db");
    bao.call(
        "POST",
        &format!("sys/mounts/{mount}"),
        json!({"type": "database"}),
    )
    .await;
    // On its own task, so that a failed assertion still lets the mount be removed.
    let outcome = tokio::spawn(scenario(bao.clone(), pg, mount.clone())).await;
    bao.call("DELETE", &format!("sys/mounts/{mount}"), Value::Null)
        .await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn scenario(bao: Bao, pg: Pg, mount: String) {
    bao.call(
        "POST",
        &format!("{mount}/config/pg"),
        json!({
            "plugin_name": "postgresql-database-plugin",
            "connection_url": format!(
                "postgresql://{{{{username}}}}:{{{{password}}}}@{}:{}/postgres?sslmode=disable",
                pg.host, pg.port
            ),
            "username": pg.user,
            "password": "x",
            "allowed_roles": "*",
            "verify_connection": true
        }),
    )
    .await;
    bao.call(
        "POST",
        &format!("{mount}/roles/app"),
        json!({
            "db_name": "pg",
            "creation_statements": [
                "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
            ],
            "default_ttl": "300s",
            "max_ttl": "3600s"
        }),
    )
    .await;

    let vault = bao.connector();
    let secret = vault
        .dynamic_secret(&format!("{mount}/creds/app"))
        .await
        .unwrap();
    assert!(secret.lease_id.starts_with(&format!("{mount}/creds/app/")));
    assert_eq!(secret.lease_duration_secs, 300);
    assert!(secret.renewable);
    let username = secret.data["username"].as_str().unwrap().to_owned();
    assert!(!secret.data["password"].as_str().unwrap().is_empty());
    assert!(!format!("{secret:?}").contains(secret.data["password"].as_str().unwrap()));
    assert!(pg.role_exists(&username), "{username} not in pg_roles");

    let renewed = vault.renew_lease(&secret.lease_id, 600).await.unwrap();
    assert_eq!(renewed.lease_id, secret.lease_id);
    assert_eq!(renewed.lease_duration_secs, 600);
    assert!(renewed.renewable);

    let looked = vault.lookup_lease(&secret.lease_id).await.unwrap().unwrap();
    assert_eq!(looked.lease_id, secret.lease_id);
    assert!(
        (590..=600).contains(&looked.lease_duration_secs),
        "{looked:?}"
    );
    assert!(looked.renewable);

    vault.revoke_lease(&secret.lease_id).await.unwrap();
    assert!(!pg.role_exists(&username), "{username} still in pg_roles");
    assert_eq!(vault.lookup_lease(&secret.lease_id).await.unwrap(), None);
    // Revoking again is not an error; renewing a revoked lease is.
    vault.revoke_lease(&secret.lease_id).await.unwrap();
    assert!(vault.renew_lease(&secret.lease_id, 60).await.is_err());

    // A path without a lease is not a dynamic secret.
    let err = vault
        .dynamic_secret(&format!("{mount}/config/pg"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a dynamic secret"), "{err}");
}
