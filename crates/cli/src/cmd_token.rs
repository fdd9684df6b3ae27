//! `keyward token create|list|revoke`: API tokens, stored hashed; a new token is printed
//! once.

use std::path::Path;

use anyhow::Context as _;
use keyward_engine::Engine;
use keyward_server::{Role, auth};
use keyward_store::AuditEntry;

use crate::Outcome;
use crate::output::{cli_actor, now_ms, table};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a token and print it (once: only its hash is kept).
    Create {
        /// viewer (read), operator (also triage findings and ingest), admin (also tokens).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// What the token is for.
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// List tokens (ids, roles, names; never the tokens).
    List,
    /// Revoke a token by its id.
    Revoke { id: String },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("unknown role `{s}`; one of: viewer, operator, admin"))
}

pub fn run(dir: &Path, cmd: Command) -> anyhow::Result<Outcome> {
    let mut engine =
        Engine::open(dir).with_context(|| format!("opening the store in `{}`", dir.display()))?;
    match cmd {
        Command::Create { role, name } => {
            manage(&mut engine)?;
            let (token, row) = auth::create(&mut engine, role, &name, &cli_actor(), now_ms())?;
            eprintln!(
                "created {} token {} ({name}); it is shown once:",
                role.as_str(),
                row.id
            );
            println!("{token}");
        }
        Command::List => {
            let mut t = table();
            t.set_header(["id", "role", "name", "created", "revoked"]);
            for row in engine.tokens()? {
                t.add_row([
                    row.id,
                    row.role,
                    row.name,
                    keyward_model::time::format(row.created_at),
                    row.revoked_at
                        .map(keyward_model::time::format)
                        .unwrap_or_default(),
                ]);
            }
            println!("{t}");
        }
        Command::Revoke { id } => {
            manage(&mut engine)?;
            let audit = AuditEntry {
                at: now_ms(),
                actor: cli_actor(),
                action: "token.revoke".into(),
                target: Some(id.clone()),
                detail: None,
                before: Some("active".into()),
                after: Some("revoked".into()),
            };
            if !engine.revoke_token(&id, &audit)? {
                anyhow::bail!("no active token `{id}`");
            }
            eprintln!("revoked {id}");
        }
    }
    Ok(Outcome::Clean)
}

/// Tokens are managed by whoever the policy lets `manage` the estate.
fn manage(engine: &mut Engine) -> anyhow::Result<()> {
    crate::policy::require(
        engine,
        keyward_policy::Act::Manage,
        &keyward_policy::Resource::Estate,
        &crate::policy::here(),
    )?;
    Ok(())
}
