//! Turns a resolved [`StoreConfig`] into an `object_store` implementation.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::{ClientOptions, RetryConfig};

use super::{Backend, S3Config, ServerSideEncryption, StoreConfig, StoreError};

/// How a store is listed: object_store's listing stops at the first key it cannot represent
/// (a control character, an empty or `.` segment), so local disk and S3 are listed by
/// gatehouse, which reports such keys by name and goes on (see [`super::ObjectList`]).
#[derive(Clone)]
pub(super) enum Lister {
    Generic,
    Local(std::path::PathBuf),
    S3(Arc<AmazonS3>),
}

pub(super) fn build(config: &StoreConfig) -> Result<(Arc<dyn ObjectStore>, Lister), StoreError> {
    match &config.backend {
        Backend::Memory => Ok((Arc::new(InMemory::new()), Lister::Generic)),
        Backend::Local { root } => {
            if !root.is_dir() {
                return Err(StoreError::Config {
                    message: format!("local store directory {} does not exist", root.display()),
                    hint: Some(
                        "set DATASET_STORAGE_LOCAL_PATH (or [store] local_path in gatehouse.toml) \
                         to an existing directory"
                            .into(),
                    ),
                });
            }
            let fs = LocalFileSystem::new_with_prefix(root).map_err(|e| StoreError::Config {
                message: format!("cannot open local store {}: {e}", root.display()),
                hint: None,
            })?;
            let walk_root = root.canonicalize().unwrap_or_else(|_| root.clone());
            Ok((Arc::new(fs), Lister::Local(walk_root)))
        }
        Backend::S3(s3) => {
            let client = Arc::new(s3_builder(s3).build().map_err(|e| StoreError::Config {
                message: format!("cannot configure S3 bucket {}: {e}", s3.bucket),
                hint: None,
            })?);
            Ok((client.clone(), Lister::S3(client)))
        }
    }
}

/// The S3 client settings, separated from `build` so tests can inspect them.
pub(super) fn s3_builder(s3: &S3Config) -> AmazonS3Builder {
    let client = ClientOptions::new()
        .with_allow_http(s3.allow_http)
        .with_connect_timeout(s3.timeouts.connect)
        .with_read_timeout(s3.timeouts.read_idle)
        // No whole-request timeout: streaming a multi-GB object takes minutes.
        .with_timeout_disabled();
    let retry = RetryConfig {
        max_retries: s3.timeouts.max_retries,
        retry_timeout: s3.timeouts.retry_budget,
        ..RetryConfig::default()
    };
    let mut b = AmazonS3Builder::new()
        .with_bucket_name(&s3.bucket)
        .with_region(&s3.region)
        .with_access_key_id(s3.credentials.access_key_id.expose())
        .with_secret_access_key(s3.credentials.secret_access_key.expose())
        .with_virtual_hosted_style_request(s3.virtual_hosted_style)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .with_client_options(client)
        .with_retry(retry);
    if let Some(token) = &s3.credentials.session_token {
        b = b.with_token(token.expose());
    }
    if let Some(endpoint) = &s3.endpoint {
        b = b.with_endpoint(endpoint);
    }
    match &s3.sse {
        ServerSideEncryption::None => {}
        ServerSideEncryption::S3 => {
            b = b.with_config(sse_key("aws_server_side_encryption"), "AES256");
        }
        ServerSideEncryption::Kms { key_id } => b = b.with_sse_kms_encryption(key_id),
    }
    b
}

/// object_store does not export its encryption key enum; its config names are stable.
fn sse_key(name: &str) -> AmazonS3ConfigKey {
    // Both names are in object_store's documented configuration keys.
    #[allow(clippy::expect_used)]
    name.parse().expect("known object_store S3 config key")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Credentials, Secret, Timeouts};

    fn s3(sse: ServerSideEncryption) -> S3Config {
        S3Config {
            bucket: "b".into(),
            endpoint: Some("https://s3.gra.io.cloud.ovh.net".into()),
            region: "gra".into(),
            credentials: Credentials {
                access_key_id: Secret::new("ak"),
                secret_access_key: Secret::new("sk"),
                session_token: None,
                source: "test".into(),
            },
            allow_http: false,
            virtual_hosted_style: false,
            sse,
            timeouts: Timeouts::default(),
        }
    }

    fn sse_setting(b: &AmazonS3Builder, key: &str) -> Option<String> {
        b.get_config_value(&sse_key(key))
    }

    #[test]
    fn sse_s3_requests_aes256_on_every_write() {
        let b = s3_builder(&s3(ServerSideEncryption::S3));
        assert_eq!(
            sse_setting(&b, "aws_server_side_encryption").as_deref(),
            Some("AES256")
        );
    }

    #[test]
    fn sse_kms_carries_the_key_id() {
        let b = s3_builder(&s3(ServerSideEncryption::Kms {
            key_id: "arn:key/1".into(),
        }));
        assert_eq!(
            sse_setting(&b, "aws_server_side_encryption").as_deref(),
            Some("aws:kms")
        );
        assert_eq!(
            sse_setting(&b, "aws_sse_kms_key_id").as_deref(),
            Some("arn:key/1")
        );
    }

    #[test]
    fn no_sse_sets_nothing_and_path_style_is_default() {
        let b = s3_builder(&s3(ServerSideEncryption::None));
        assert_eq!(sse_setting(&b, "aws_server_side_encryption"), None);
        assert_eq!(
            b.get_config_value(&AmazonS3ConfigKey::VirtualHostedStyleRequest)
                .as_deref(),
            Some("false")
        );
    }

    #[test]
    fn missing_local_directory_is_a_config_error_with_a_hint() {
        let err = build(&StoreConfig {
            backend: Backend::Local {
                root: "/definitely/not/here".into(),
            },
            exports_prefix: "exports".into(),
        })
        .err()
        .unwrap();
        assert!(err.to_string().contains("/definitely/not/here"));
        assert!(err.hint().unwrap().contains("DATASET_STORAGE_LOCAL_PATH"));
    }
}
