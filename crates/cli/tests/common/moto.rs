//! moto as the tests reach it (`KEYWARD_TEST_AWS_ENDPOINT` with the `AWS_*` variables of
//! `../shared/tools/aws/moto-up`'s env file, which the binary under test inherits), and the
//! CloudTrail records that make an identity look used or idle.

#![cfg(feature = "aws")]
#![allow(clippy::expect_used)]

use keyward_respond::aws::sdk::aws_sdk_iam as iam;
use keyward_respond::aws::static_config;
use serde_json::{Value, json};

pub const ACCT: &str = "123456789012";
pub const DAY: i64 = 86_400_000;

/// One CloudTrail record: `user` calling `s3:ListBuckets` with `key` at `at` (`id` makes the
/// event id unique).
pub fn call(user: &str, key: &str, at: i64, id: &str) -> Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": format!("AIDA{id}"),
            "arn": format!("arn:aws:iam::{ACCT}:user/{user}"), "accountId": ACCT,
            "accessKeyId": key, "userName": user},
        "eventTime": keyward_model::time::format(at), "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15.0", "requestParameters": null, "responseElements": null,
        "eventID": format!("00000000-0000-4000-8000-{id:0>12}"), "readOnly": true,
        "eventType": "AwsApiCall", "managementEvent": true,
        "recipientAccountId": ACCT, "eventCategory": "Management"
    })
}

/// An IAM client on the test server, a runtime to drive it, and the wall clock's now.
pub struct Moto {
    pub rt: tokio::runtime::Runtime,
    pub iam: iam::Client,
    pub now: i64,
}

impl Moto {
    /// The test server, or `None` (the caller skips, as printed).
    pub fn from_env() -> Option<Moto> {
        let Ok(endpoint) = std::env::var("KEYWARD_TEST_AWS_ENDPOINT") else {
            eprintln!(
                "skipped: KEYWARD_TEST_AWS_ENDPOINT is not set (../shared/tools/aws/moto-up)"
            );
            return None;
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let iam = iam::Client::new(&static_config(
            &endpoint,
            "us-east-1",
            "testing",
            "testing",
            None,
        ));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis()
            .try_into()
            .expect("fits");
        Some(Moto { rt, iam, now })
    }

    /// A new user with one access key; returns the key id.
    pub fn user_with_key(&self, user: &str) -> String {
        self.rt.block_on(async {
            self.iam
                .create_user()
                .user_name(user)
                .send()
                .await
                .expect("CreateUser");
            let k = self
                .iam
                .create_access_key()
                .user_name(user)
                .send()
                .await
                .expect("CreateAccessKey");
            k.access_key()
                .map(|k| k.access_key_id())
                .expect("a key id")
                .to_owned()
        })
    }

    /// The user's access keys as `(id, status)`.
    pub fn keys(&self, user: &str) -> Vec<(String, String)> {
        self.rt.block_on(async {
            let out = self
                .iam
                .list_access_keys()
                .user_name(user)
                .send()
                .await
                .expect("ListAccessKeys");
            out.access_key_metadata()
                .iter()
                .map(|k| {
                    (
                        k.access_key_id().unwrap_or_default().to_owned(),
                        k.status()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                    )
                })
                .collect()
        })
    }

    /// The names of the user's inline policies.
    pub fn inline(&self, user: &str) -> Vec<String> {
        self.rt.block_on(async {
            self.iam
                .list_user_policies()
                .user_name(user)
                .send()
                .await
                .expect("ListUserPolicies")
                .policy_names()
                .to_vec()
        })
    }

    /// A managed policy allowing `s3:ListBucket`; returns its ARN.
    pub fn policy(&self, name: &str) -> String {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#;
        self.rt.block_on(async {
            let out = self
                .iam
                .create_policy()
                .policy_name(name)
                .policy_document(doc)
                .send()
                .await
                .expect("CreatePolicy");
            out.policy()
                .and_then(|p| p.arn())
                .expect("an ARN")
                .to_owned()
        })
    }

    /// The ARNs of the managed policies attached to the user.
    pub fn attached(&self, user: &str) -> Vec<String> {
        self.rt.block_on(async {
            self.iam
                .list_attached_user_policies()
                .user_name(user)
                .send()
                .await
                .expect("ListAttachedUserPolicies")
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_owned))
                .collect()
        })
    }
}
