#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `kw-aws-key-multi-ip` learns a principal's own networks: a role whose sessions run
//! behind both a VPC endpoint (private addresses) and a NAT gateway fires while those
//! networks are new, not once an hour using both has been learned; a network the role never
//! used still fires (extending the role's open finding), and every session's finding is
//! about the role.

use keyward_detect::{Catalog, Detector, NoLookup, Settings, testing};
use keyward_model::SourceKind;

fn record(id: u32, time: &str, key: &str, ip: &str) -> Vec<u8> {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:fn","arn":"arn:aws:sts::111122223333:assumed-role/orders/fn-{key}","accountId":"111122223333","accessKeyId":"{key}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROAEXAMPLE","arn":"arn:aws:iam::111122223333:role/orders","accountId":"111122223333","userName":"orders"}}}}}},"eventTime":"{time}","eventSource":"dynamodb.amazonaws.com","eventName":"PutItem","awsRegion":"us-east-1","sourceIPAddress":"{ip}","userAgent":"aws-sdk-go/1.44","requestParameters":{{"tableName":"orders"}},"responseElements":null,"eventID":"00000000-0000-4000-8000-{id:012}","eventType":"AwsApiCall","recipientAccountId":"111122223333"}}"#
    )
    .into_bytes()
}

fn multi_ip(d: &mut Detector) -> Vec<keyward_detect::Finding> {
    d.take_findings()
        .into_iter()
        .filter(|f| f.rule_id == "kw-aws-key-multi-ip")
        .collect()
}

#[test]
fn own_networks_are_learned_new_ones_fire() {
    let mut d = Detector::new(Catalog::builtin(), Settings::default()).unwrap();
    let feed = |d: &mut Detector, id, time, key, ip| {
        let (e, raw, known) =
            testing::normalize(SourceKind::Cloudtrail, &record(id, time, key, ip)).unwrap();
        d.on_event(&e, &raw, &known, &NoLookup);
    };
    // Hour 0: the first session uses the VPC endpoint and the NAT gateway: nothing is
    // known of the role yet, so nothing is new.
    feed(&mut d, 11, "2026-11-10T07:00:01Z", "ASIAZERO", "10.0.12.7");
    feed(&mut d, 12, "2026-11-10T07:00:03Z", "ASIAZERO", "10.0.12.8");
    feed(
        &mut d,
        13,
        "2026-11-10T07:00:04Z",
        "ASIAZERO",
        "198.51.100.20",
    );
    assert!(multi_ip(&mut d).is_empty());
    // Hour 1 (hour 0 learned: the endpoint only, say): the NAT gateway is new.
    feed(&mut d, 1, "2026-11-10T08:00:01Z", "ASIAONE", "10.0.12.7");
    feed(&mut d, 2, "2026-11-10T08:00:03Z", "ASIAONE", "203.0.113.20");
    let first = multi_ip(&mut d);
    assert_eq!(first.len(), 1);
    assert_eq!(
        first[0].identity.as_deref(),
        Some("arn:aws:iam::111122223333:role/orders")
    );
    assert_eq!(
        first[0].details["actors"][0],
        "arn:aws:sts::111122223333:assumed-role/orders/fn-ASIAONE"
    );
    // Hour 2 closes hour 1 (learned). A new session does the same: the role's own networks.
    feed(&mut d, 3, "2026-11-10T09:10:01Z", "ASIATWO", "10.0.12.9");
    feed(&mut d, 4, "2026-11-10T09:10:02Z", "ASIATWO", "203.0.113.21");
    assert!(multi_ip(&mut d).is_empty());
    // The same key from a network the role never used, seconds later: copied.
    feed(&mut d, 5, "2026-11-10T09:10:05Z", "ASIATWO", "192.0.2.66");
    // One incident per identity: it extends the role's open finding, which now lists the
    // network and the event.
    let stolen = multi_ip(&mut d);
    assert_eq!(stolen.len(), 1, "{stolen:?}");
    assert_eq!(stolen[0].id, first[0].id);
    let new_networks = stolen[0].details["new_networks"].as_array().unwrap();
    assert!(
        new_networks.iter().any(|n| n == "192.0.2.0/24"),
        "{new_networks:?}"
    );
    assert!(stolen[0].events.iter().any(|e| e.ends_with("000000000005")));
}

/// Uses older than the window leave it (their buffers are reused for the next use): a
/// key seen from one network, then from another 31 s later, is not copied; a third
/// network within 30 s of the second is, and the finding lists just those two.
#[test]
fn uses_leave_the_window() {
    let mut d = Detector::new(Catalog::builtin(), Settings::default()).unwrap();
    let feed = |d: &mut Detector, id, time, ip| {
        let (e, raw, known) =
            testing::normalize(SourceKind::Cloudtrail, &record(id, time, "ASIAKEY", ip)).unwrap();
        d.on_event(&e, &raw, &known, &NoLookup);
    };
    // An hour of history first (from inside), so that networks can be new.
    feed(&mut d, 9, "2026-11-10T07:00:00Z", "10.0.0.9");
    feed(&mut d, 1, "2026-11-10T08:00:00Z", "198.51.100.20");
    feed(&mut d, 2, "2026-11-10T08:00:31Z", "203.0.113.66");
    assert!(multi_ip(&mut d).is_empty());
    feed(&mut d, 3, "2026-11-10T08:00:40Z", "192.0.2.7");
    let copied = multi_ip(&mut d);
    assert_eq!(copied.len(), 1, "{copied:?}");
    assert_eq!(
        copied[0].details["networks"],
        serde_json::json!(["192.0.2.0/24", "203.0.113.0/24"])
    );
}

/// Events come out of order (delivery files, event history): a use read earlier but made
/// two hours later is not "at once" with one made now from another network — in either
/// order, nothing fires; two uses 10 s apart fire whichever is read first.
#[test]
fn uses_out_of_order_count_only_within_the_window() {
    let feed = |d: &mut Detector, id, time, ip| {
        let (e, raw, known) =
            testing::normalize(SourceKind::Cloudtrail, &record(id, time, "ASIAKEY", ip)).unwrap();
        d.on_event(&e, &raw, &known, &NoLookup);
    };
    let uses = [
        (1, "2026-11-10T08:00:00Z", "198.51.100.20"),
        (2, "2026-11-10T10:00:00Z", "203.0.113.66"),
        (3, "2026-11-10T08:00:10Z", "192.0.2.7"),
    ];
    for (pair, fires) in [
        ([0, 1], false),
        ([1, 0], false),
        ([0, 2], true),
        ([2, 0], true),
    ] {
        let mut d = Detector::new(Catalog::builtin(), Settings::default()).unwrap();
        // An hour of history first (from inside), so that networks can be new.
        feed(&mut d, 9, "2026-11-10T07:00:00Z", "10.0.0.9");
        for i in pair {
            let (id, time, ip) = uses[i];
            feed(&mut d, id, time, ip);
        }
        let found = multi_ip(&mut d);
        assert_eq!(found.len(), usize::from(fires), "{pair:?}: {found:?}");
        if fires {
            assert_eq!(
                found[0].details["networks"],
                serde_json::json!(["192.0.2.0/24", "198.51.100.0/24"]),
                "{pair:?}"
            );
        }
    }
}

/// A principal whose baseline changed is listed once per `take_dirty`, however many events
/// changed it, and again after it changes again (an event, an hour closing).
#[test]
fn changed_baselines_are_listed_once() {
    let mut d = Detector::new(Catalog::builtin(), Settings::default()).unwrap();
    let feed = |d: &mut Detector, id, time| {
        let (e, raw, known) = testing::normalize(
            SourceKind::Cloudtrail,
            &record(id, time, "ASIAONE", "10.0.12.7"),
        )
        .unwrap();
        d.on_event(&e, &raw, &known, &NoLookup);
    };
    let role = "arn:aws:iam::111122223333:role/orders";
    let names = |d: &mut Detector| -> Vec<String> {
        d.take_dirty()
            .into_iter()
            .map(|(p, _)| p.to_owned())
            .collect()
    };
    for i in 0..5 {
        feed(&mut d, i, "2026-11-10T08:00:01Z");
    }
    assert_eq!(names(&mut d), [role]);
    assert!(names(&mut d).is_empty());
    feed(&mut d, 10, "2026-11-10T08:10:00Z");
    let listed = d.take_dirty();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1.events, 6);
    // The hour closes at the first event of a later hour seen by any principal.
    d.close_hours();
    assert!(names(&mut d).is_empty());
    feed(&mut d, 11, "2026-11-10T09:30:00Z");
    d.close_hours();
    assert_eq!(names(&mut d), [role]);
}
