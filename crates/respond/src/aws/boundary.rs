//! The maximum an AI agent's AWS session may do: a session policy passed to `AssumeRole`
//! when the broker mints credentials for an agent. The session can do only what both the role
//! and this policy allow.
//!
//! It allows data reads and writes (S3 objects, DynamoDB items, Cost Explorer, CloudWatch
//! and its logs) and denies, whatever the role says: IAM and Organizations, assuming further
//! roles, deletions, and changes to security policy (bucket policies and ACLs, key policies,
//! security groups, CloudTrail, Config, GuardDuty, Security Hub).
//!
//! Deletions are denied per service (`s3:Delete*`, …), not as `*:Delete*`: IAM documents
//! wildcards in an action's name only, not in its service prefix. No other service's
//! deletion can pass anyway, since the session policy allows nothing outside its list.

use serde_json::json;

/// STS's limit on a session policy's plain text, in characters.
pub const SESSION_POLICY_MAX_CHARS: usize = 2048;

/// The agent boundary as compact JSON (IAM policy language `2012-10-17`), under
/// [`SESSION_POLICY_MAX_CHARS`].
pub fn agent_boundary_policy() -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AgentData",
                "Effect": "Allow",
                "Action": [
                    "s3:Get*", "s3:List*", "s3:PutObject",
                    "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
                    "dynamodb:Scan", "dynamodb:DescribeTable", "dynamodb:PutItem",
                    "dynamodb:UpdateItem", "dynamodb:BatchWriteItem",
                    "ce:Get*", "ce:Describe*",
                    "cloudwatch:Get*", "cloudwatch:List*", "cloudwatch:Describe*",
                    "logs:Get*", "logs:Describe*", "logs:FilterLogEvents",
                    "logs:StartQuery", "logs:StopQuery"
                ],
                "Resource": "*"
            },
            {
                "Sid": "AgentNoIdentityChanges",
                "Effect": "Deny",
                "Action": [
                    "iam:*", "organizations:*", "sts:AssumeRole*",
                    "sts:GetFederationToken", "sts:GetSessionToken"
                ],
                "Resource": "*"
            },
            {
                "Sid": "AgentNoDeletes",
                "Effect": "Deny",
                "Action": [
                    "s3:Delete*", "dynamodb:Delete*", "logs:Delete*", "cloudwatch:Delete*",
                    "ce:Delete*", "kms:Delete*", "ec2:Delete*", "cloudtrail:Delete*",
                    "config:Delete*", "guardduty:Delete*", "securityhub:Delete*",
                    "lambda:Delete*", "rds:Delete*", "secretsmanager:Delete*"
                ],
                "Resource": "*"
            },
            {
                "Sid": "AgentNoSecurityChanges",
                "Effect": "Deny",
                "Action": [
                    "s3:PutBucketPolicy", "s3:PutBucketAcl", "s3:PutObjectAcl",
                    "s3:PutBucketPublicAccessBlock", "s3:PutAccountPublicAccessBlock",
                    "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DisableKey",
                    "ec2:AuthorizeSecurityGroup*", "ec2:RevokeSecurityGroup*",
                    "cloudtrail:StopLogging", "cloudtrail:UpdateTrail",
                    "cloudtrail:PutEventSelectors", "config:Stop*",
                    "guardduty:Disable*", "guardduty:UpdateDetector", "securityhub:Disable*"
                ],
                "Resource": "*"
            }
        ]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn actions(doc: &Value, effect: &str) -> Vec<String> {
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["Effect"] == effect)
            .flat_map(|s| s["Action"].as_array().unwrap().clone())
            .map(|a| a.as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn the_agent_boundary_fits_sts_and_says_what_it_must() {
        let text = agent_boundary_policy();
        assert!(
            text.chars().count() <= SESSION_POLICY_MAX_CHARS,
            "{} characters",
            text.chars().count()
        );
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["Version"], "2012-10-17");
        let allowed = actions(&doc, "Allow");
        let denied = actions(&doc, "Deny");
        for a in [
            "s3:Get*",
            "s3:List*",
            "s3:PutObject",
            "dynamodb:PutItem",
            "ce:Get*",
        ] {
            assert!(allowed.iter().any(|x| x == a), "{a} not allowed");
        }
        assert!(
            allowed
                .iter()
                .all(|a| !a.contains("Delete") && !a.starts_with("iam:"))
        );
        for a in [
            "iam:*",
            "organizations:*",
            "sts:AssumeRole*",
            "s3:Delete*",
            "guardduty:Delete*",
            "cloudtrail:Delete*",
            "s3:PutBucketPolicy",
            "s3:PutBucketAcl",
            "kms:PutKeyPolicy",
            "kms:ScheduleKeyDeletion",
            "ec2:AuthorizeSecurityGroup*",
            "ec2:RevokeSecurityGroup*",
            "cloudtrail:StopLogging",
            "config:Stop*",
            "securityhub:Disable*",
        ] {
            assert!(denied.iter().any(|x| x == a), "{a} not denied");
        }
        // Every action is `service:name`, the service without a wildcard.
        for a in allowed.iter().chain(&denied) {
            let (service, name) = a.split_once(':').unwrap();
            assert!(
                !service.is_empty() && !service.contains('*') && !name.is_empty(),
                "{a}"
            );
        }
    }
}
