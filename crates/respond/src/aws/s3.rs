//! Reading a bucket as CloudTrail (or any log shipper) writes it: the objects under a
//! prefix, listed in key order, and downloaded one at a time. `keyward serve --poll
//! s3://BUCKET/PREFIX` takes the new ones in on every round.

use aws_config::SdkConfig;
use aws_sdk_s3 as s3;

use super::client::{api, env_config};
use crate::ConnectorError;

/// One object under the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Object {
    pub key: String,
    pub size: u64,
    /// The object's entity tag: a rewritten object under the same key is new again.
    pub etag: String,
}

/// The objects under `s3://BUCKET/PREFIX`.
#[derive(Debug, Clone)]
pub struct S3Tree {
    client: s3::Client,
    pub bucket: String,
    pub prefix: String,
}

/// `s3://BUCKET/PREFIX` as (bucket, prefix); `None` when it is not an S3 URL with a bucket.
pub fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_owned(), prefix.to_owned()))
}

impl S3Tree {
    /// On `config`; path-style addresses when the configuration names its own endpoint
    /// (an S3-compatible server on one host, such as moto or MinIO).
    pub fn new(config: &SdkConfig, bucket: &str, prefix: &str) -> S3Tree {
        let mut b = s3::config::Builder::from(config);
        if config.endpoint_url().is_some() {
            b = b.force_path_style(true);
        }
        S3Tree {
            client: s3::Client::from_conf(b.build()),
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    /// With the standard credential chain ([`env_config`]).
    pub async fn from_env(bucket: &str, prefix: &str) -> Result<S3Tree, ConnectorError> {
        Ok(S3Tree::new(&env_config().await?, bucket, prefix))
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Every object under the prefix, in key order (one call per 1,000 objects).
    pub async fn list(&self) -> Result<Vec<S3Object>, ConnectorError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .into_paginator()
            .send();
        let mut all = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| api("ListObjectsV2", &self.url(&self.prefix), e))?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                // "Directories" a console made: no content.
                if key.ends_with('/') {
                    continue;
                }
                all.push(S3Object {
                    key: key.to_owned(),
                    size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    etag: o.e_tag().unwrap_or_default().to_owned(),
                });
            }
        }
        all.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(all)
    }

    /// The bytes of `key` as stored (a `.gz` stays compressed); refused above `max` bytes.
    pub async fn get(&self, key: &str, max: u64) -> Result<Vec<u8>, ConnectorError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| api("GetObject", &self.url(key), e))?;
        let size = out
            .content_length()
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(0);
        if size > max {
            return Err(ConnectorError::Precondition {
                target: self.url(key),
                message: format!("{size} bytes, more than the {max} a poller downloads"),
            });
        }
        let body = out.body.collect().await.map_err(|e| ConnectorError::Api {
            call: "GetObject".into(),
            target: self.url(key),
            message: e.to_string(),
        })?;
        Ok(body.into_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn s3_urls() {
        assert_eq!(
            parse_url("s3://trail/AWSLogs/1/"),
            Some(("trail".into(), "AWSLogs/1/".into()))
        );
        assert_eq!(
            parse_url("s3://trail"),
            Some(("trail".into(), String::new()))
        );
        assert_eq!(parse_url("s3:///x"), None);
        assert_eq!(parse_url("/tmp/x"), None);
    }
}
