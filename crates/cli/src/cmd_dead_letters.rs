//! `keyward dead-letters`: rejected records, where and why.

use std::path::Path;

use keyward_engine::Engine;

use crate::Outcome;

#[derive(clap::Args)]
pub struct Args {
    /// How many to list.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

pub fn run(dir: &Path, args: Args) -> anyhow::Result<Outcome> {
    let engine = Engine::open(dir)?;
    for dl in engine.dead_letters(args.limit)? {
        let d = dl.diagnostic;
        match d.record {
            Some(rec) => println!("{}:{} (record {rec}): {}", dl.path, d.line, d.reason),
            None => println!("{}:{}: {}", dl.path, d.line, d.reason),
        }
    }
    Ok(Outcome::Clean)
}
