//! Who may do what, through the real `keyward` binary: `keyward policy validate|test|init|
//! show|builtin`, and the command line refusing what the Cedar policies do not allow —
//! with the decision, and the policies that made it, in the audit log. The example policy
//! set (`examples/policies`) over the example estate: team ownership from the graph decides
//! who approves what.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::{estate, keyward, text};
use serde_json::Value;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies")
}

/// `keyward` as `user`, with `policies` in force (none: the built-in roles).
fn as_user(data: &Path, user: &str, policies: Option<&Path>, args: &[&str]) -> Output {
    let mut c = common::command(data);
    c.args(args)
        .env_remove("KEYWARD_DATA_DIR")
        .env_remove("KEYWARD_CONFIG")
        .env_remove("KEYWARD_POLICIES")
        .env("USER", user)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = policies {
        c.env("KEYWARD_POLICIES", p);
    }
    c.output().unwrap()
}

fn decisions(data: &Path) -> Vec<Value> {
    let o = keyward(data, &["audit", "export"]);
    text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "policy.decide")
        .collect()
}

fn detail(e: &Value) -> Value {
    serde_json::from_str(e["detail"].as_str().unwrap()).unwrap()
}

#[test]
fn the_example_policies_validate_and_decide_as_their_tests_say() {
    let data = tempfile::tempdir().unwrap();
    let ex = examples();
    let o = keyward(data.path(), &["policy", "validate", ex.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("9 policies valid"),
        "{}",
        text(&o.stdout)
    );
    let cases = ex.join("tests.yaml");
    let o = keyward(
        data.path(),
        &[
            "policy",
            "test",
            cases.to_str().unwrap(),
            "--policies",
            ex.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["failed"], 0);
    assert_eq!(r["cases"].as_array().unwrap().len(), 13);
    // Without the built-in roles the same cases fail where a role decided.
    let o = keyward(
        data.path(),
        &[
            "policy",
            "test",
            cases.to_str().unwrap(),
            "--policies",
            ex.to_str().unwrap(),
            "--without-builtin",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("FAIL  a viewer token reads the estate"));

    // The built-in set: printed, shown with where each policy is written.
    let o = keyward(data.path(), &["policy", "builtin"]);
    assert!(text(&o.stdout).contains(r#"@id("no-self-approval")"#));
    let o = keyward(data.path(), &["policy", "show"]);
    let out = text(&o.stdout);
    assert!(
        out.starts_with("policies in force: the built-in roles"),
        "{out}"
    );
    assert!(out.contains("built-in:default.cedar:"), "{out}");
}

#[test]
fn a_broken_policy_directory_says_every_problem_with_file_and_line() {
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.cedar"),
        "@id(\"fly\")\npermit (principal, action == Keyward::Action::\"fly\", resource);\n\n\
         permit (principal, action, resource) when { context.nope == 1 };\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.cedar"),
        "\npermit (principal action, resource);\n",
    )
    .unwrap();
    let o = keyward(
        data.path(),
        &["policy", "validate", dir.path().to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert!(
        out.contains("a.cedar:2: policy `fly`: unrecognized action"),
        "{out}"
    );
    assert!(
        out.contains("a.cedar:4: policy `a.cedar:4`: attribute `nope`"),
        "{out}"
    );
    assert!(out.contains("b.cedar:2: unexpected token"), "{out}");
    assert!(
        out.contains("3 problems; nothing is enforced from it"),
        "{out}"
    );

    // In force (the data directory's `policies`), it stops every command that asks.
    let own = data.path().join("policies");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::copy(dir.path().join("b.cedar"), own.join("b.cedar")).unwrap();
    let o = keyward(
        data.path(),
        &["token", "create", "--role", "viewer", "--name", "x"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("do not load"),
        "{}",
        text(&o.stderr)
    );
    assert!(text(&o.stdout).is_empty(), "no token was made");

    // `init` writes a starting set that validates.
    let start = dir.path().join("start");
    let o = keyward(data.path(), &["policy", "init", start.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = keyward(
        data.path(),
        &["policy", "validate", start.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let o = keyward(data.path(), &["policy", "init", start.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "never overwrites");
}

#[test]
fn the_command_line_is_held_to_the_policies_and_every_decision_is_audited() {
    let data = tempfile::tempdir().unwrap();
    let o = keyward(data.path(), &["ingest", estate().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let ex = examples();
    let ex = Some(ex.as_path());
    let role = "arn:aws:iam::111122223333:role/irsa-orders-api";

    // alice (operator, platform) asks; a person the entities file does not name may not.
    let ask = [
        "access",
        "request",
        "--to",
        role,
        "--policy",
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "--for",
        "2h",
        "--reason",
        "debug orders",
    ];
    let o = as_user(data.path(), "mallory", ex, &ask);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("cli:mallory may not plan"),
        "{}",
        text(&o.stderr)
    );
    let o = as_user(data.path(), "alice", ex, &ask);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let list = keyward(data.path(), &["access", "list", "--format", "json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    let id = list["requests"][0]["id"].as_str().unwrap().to_owned();

    // dave (operator, payments) may not approve an orders identity's request; carol, the
    // orders lead, may (the ownership graph says orders owns the role).
    let o = as_user(data.path(), "dave", ex, &["access", "approve", &id]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("refused by policy: cli:dave may not approve"),
        "{}",
        text(&o.stderr)
    );
    let o = as_user(data.path(), "carol", ex, &["access", "approve", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("approved by cli:carol"));

    // Tokens are managed by admins: erin is one, alice is not.
    let mk = ["token", "create", "--role", "viewer", "--name", "dash"];
    let o = as_user(data.path(), "alice", ex, &mk);
    assert_eq!(o.status.code(), Some(1));
    let o = as_user(data.path(), "erin", ex, &mk);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    // Each decision is in the audit log, allow or deny, with the policies that decided.
    let d = decisions(data.path());
    let said: Vec<(String, String, String, Vec<String>)> = d
        .iter()
        .map(|e| {
            let x = detail(e);
            (
                e["actor"].as_str().unwrap().to_owned(),
                x["action"].as_str().unwrap().to_owned(),
                e["after"].as_str().unwrap().to_owned(),
                x["policies"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    let s = |a: &str, b: &str, c: &str, p: &[&str]| {
        (
            a.to_owned(),
            b.to_owned(),
            c.to_owned(),
            p.iter().map(|x| (*x).to_owned()).collect(),
        )
    };
    assert_eq!(
        said,
        vec![
            s("cli:mallory", "plan", "deny", &[]),
            s(
                "cli:alice",
                "plan",
                "allow",
                &["operator-triages-and-plans"]
            ),
            s("cli:dave", "approve", "deny", &[]),
            s(
                "cli:carol",
                "approve",
                "allow",
                &["leads-approve-their-team"]
            ),
            s("cli:alice", "manage", "deny", &[]),
            s("cli:erin", "manage", "allow", &["admin-acts"]),
        ]
    );
    assert_eq!(d[3]["target"], role);
    assert!(keyward(data.path(), &["audit", "verify"]).status.success());
}

#[test]
fn without_an_entities_file_the_person_at_the_keyboard_is_an_admin() {
    let data = tempfile::tempdir().unwrap();
    let o = as_user(
        data.path(),
        "anyone",
        None,
        &["token", "create", "--role", "viewer", "--name", "x"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let d = decisions(data.path());
    assert_eq!(d.len(), 1);
    assert_eq!(detail(&d[0])["policies"][0], "admin-acts");
}
