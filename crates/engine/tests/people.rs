//! People directories as HR systems export them: any status vocabulary (an unknown one is
//! a warning, never a rejection), owners absent from the directory have left (evidence:
//! `not in <file>`), and a GitHub login column maps `@login` owners to their person.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use keyward_engine::{Engine, IngestOptions, IngestReport};
use keyward_graph::analysis::OrphanReason;

const ACCT: &str = "111122223333";

/// An authorization-details snapshot: one IAM user per owner tag, named `u<n>`.
fn users(dir: &Path, owners: &[&str]) -> PathBuf {
    let users: Vec<serde_json::Value> = owners
        .iter()
        .enumerate()
        .map(|(n, owner)| {
            serde_json::json!({
                "Path": "/", "UserName": format!("u{n}"), "UserId": format!("AIDAEXAMPLEUSER{n:05}"),
                "Arn": format!("arn:aws:iam::{ACCT}:user/u{n}"),
                "CreateDate": "2025-02-06T09:12:40+00:00", "GroupList": [],
                "AttachedManagedPolicies": [], "Tags": [{"Key": "owner", "Value": owner}]
            })
        })
        .collect();
    let doc = serde_json::json!({
        "UserDetailList": users, "GroupDetailList": [], "RoleDetailList": [],
        "Policies": [], "IsTruncated": false
    });
    let p = dir.join(format!("aws/{ACCT}/iam-authorization-details.json"));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, serde_json::to_vec(&doc).unwrap()).unwrap();
    p
}

fn ingest(dir: &Path, files: &[PathBuf]) -> (Engine, IngestReport) {
    let mut e = Engine::open(&dir.join("store")).unwrap();
    let r = e
        .ingest(files, &IngestOptions::default(), &mut (), 0)
        .unwrap();
    (e, r)
}

/// Orphan reason and the primary owner's departure evidence of user `u<n>`.
fn verdict(e: &Engine, n: usize) -> (Option<OrphanReason>, Option<String>) {
    let i = e
        .inventory()
        .get(&format!("arn:aws:iam::{ACCT}:user/u{n}"))
        .unwrap();
    let info = e.owner_info(i, &e.coverage());
    let why = info
        .ownership
        .people
        .first()
        .and_then(|p| p.departed_because.clone());
    (info.orphan, why)
}

/// Regression: an export of current staff (leavers simply absent) left owners who had
/// gone unrecognised — 10 of 18 orphans missed.
#[test]
fn an_owner_absent_from_the_directory_has_left() {
    let dir = tempfile::tempdir().unwrap();
    let snap = users(
        dir.path(),
        &[
            "alice@acme.example",     // u0: in the directory, active
            "gone@acme.example",      // u1: absent: left
            "web-team@acme.example",  // u2: a team's mailbox: not judged
            "vendor@partner.example", // u3: another domain: not judged
            "bob@acme.example",       // u4: on leave: still here
            "Gone.Too@ACME.example",  // u5: absent, written in capitals
        ],
    );
    let people = dir.path().join("hr/directory.csv");
    std::fs::create_dir_all(people.parent().unwrap()).unwrap();
    std::fs::write(
        &people,
        "email,status,team\nalice@acme.example,active,platform\nbob@acme.example,on_leave,orders\n",
    )
    .unwrap();
    let (e, report) = ingest(dir.path(), &[snap.clone(), people.clone()]);
    assert_eq!(report.rejected, 0);
    let departed = Some(OrphanReason::OwnerDeparted);
    let because = Some("not in directory.csv".to_owned());
    assert_eq!(verdict(&e, 1), (departed.clone(), because.clone()));
    assert_eq!(verdict(&e, 5), (departed.clone(), because));
    for n in [0, 2, 3, 4] {
        assert_ne!(verdict(&e, n).0, departed, "u{n}");
        assert_eq!(verdict(&e, n).1, None, "u{n}");
    }
    // The same when the directory came first, in a run of its own, and from a fresh load.
    let dir2 = tempfile::tempdir().unwrap();
    let (e, _) = ingest(dir2.path(), &[people]);
    drop(e);
    let (e, _) = ingest(dir2.path(), &[snap]);
    assert_eq!(verdict(&e, 1).0, departed);
    let e = Engine::open(&dir2.path().join("store")).unwrap();
    assert_eq!(verdict(&e, 1).0, departed);
    assert_ne!(verdict(&e, 0).0, departed);
}

/// Without a directory nobody is judged absent.
#[test]
fn without_a_directory_nobody_is_absent() {
    let dir = tempfile::tempdir().unwrap();
    let snap = users(dir.path(), &["gone@acme.example"]);
    let (e, _) = ingest(dir.path(), &[snap]);
    assert_eq!(verdict(&e, 0), (None, None));
}

/// A `github_login` column: the `@login` owner is that person, and their status applies.
#[test]
fn a_github_login_is_its_person() {
    let dir = tempfile::tempdir().unwrap();
    let snap = users(dir.path(), &["@carol-gh", "@dave-gh", "@nobody-gh"]);
    let people = dir.path().join("people.csv");
    std::fs::write(
        &people,
        "Email,Status,GitHub Login\n\
         carol@acme.example,Terminated,carol-gh\n\
         dave@acme.example,active,@dave-gh\n",
    )
    .unwrap();
    let (e, _) = ingest(dir.path(), &[snap, people]);
    assert_eq!(verdict(&e, 0).0, Some(OrphanReason::OwnerDeparted));
    assert_ne!(verdict(&e, 1).0, Some(OrphanReason::OwnerDeparted));
    // A login the directory does not map is nobody's to judge.
    assert_ne!(verdict(&e, 2).0, Some(OrphanReason::OwnerDeparted));
}

/// An unknown status is a warning (the person is read as active), not a rejected record.
#[test]
fn an_unknown_status_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let people = dir.path().join("people.csv");
    std::fs::write(
        &people,
        "email,status\na@acme.example,garden leave\nb@acme.example,active\n",
    )
    .unwrap();
    let (_, report) = ingest(dir.path(), std::slice::from_ref(&people));
    assert_eq!(report.rejected, 0);
    assert_eq!(report.warned, 1);
    assert_eq!(report.warnings[0].1.line, 2);
    // Mapped, it is what the map says, without a warning.
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::open(&dir.path().join("store")).unwrap();
    let opts = IngestOptions {
        person_statuses: [(
            "garden_leave".to_owned(),
            keyward_normalize::people::PersonStatus::Departed,
        )]
        .into(),
        ..IngestOptions::default()
    };
    let report = e.ingest(&[people], &opts, &mut (), 0).unwrap();
    assert_eq!(report.warned, 0);
    let p = e.objects("person").unwrap();
    assert_eq!(p[0].doc["status"], "departed");
}
