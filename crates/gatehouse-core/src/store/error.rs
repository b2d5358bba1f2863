//! Storage errors: what operation failed on which key, and what the user can do about it.

use thiserror::Error;

/// Why a storage operation failed. Messages name the operation and the target (key, path or
/// bucket), never object content or credentials.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("invalid store configuration: {message}")]
    Config {
        message: String,
        hint: Option<String>,
    },
    #[error("{target}: no such object")]
    NotFound { target: String },
    #[error("{target}: already exists; a create-only write was refused")]
    AlreadyExists { target: String },
    #[error("{op} {target}: access denied by the store")]
    AccessDenied {
        op: &'static str,
        target: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("{op} {target}: the bucket does not exist")]
    NoSuchBucket {
        op: &'static str,
        target: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("{op} {target}: could not reach the store")]
    Unreachable {
        op: &'static str,
        target: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("{op} {target}: the store does not support this operation")]
    NotSupported {
        op: &'static str,
        target: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("{op} {target} failed")]
    Other {
        op: &'static str,
        target: String,
        #[source]
        source: Box<object_store::Error>,
    },
    #[error("{op} {target} failed")]
    Io {
        op: &'static str,
        target: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Sorts an object_store error into something a user can act on.
    pub(crate) fn classify(op: &'static str, target: String, source: object_store::Error) -> Self {
        use object_store::Error as E;
        match source {
            E::NotFound { .. } if op != "list" => StoreError::NotFound { target },
            E::AlreadyExists { .. } | E::Precondition { .. } if op == "create-only write" => {
                StoreError::AlreadyExists { target }
            }
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => StoreError::AccessDenied {
                op,
                target,
                source: Box::new(source),
            },
            E::NotImplemented { .. } | E::NotSupported { .. } => StoreError::NotSupported {
                op,
                target,
                source: Box::new(source),
            },
            source => {
                let chain = error_chain(&source);
                let source = Box::new(source);
                if chain.contains("NoSuchBucket") || chain.contains("bucket does not exist") {
                    StoreError::NoSuchBucket { op, target, source }
                } else if chain.contains("InvalidAccessKeyId")
                    || chain.contains("SignatureDoesNotMatch")
                    || chain.contains("AccessDenied")
                    || chain.contains("403 Forbidden")
                {
                    StoreError::AccessDenied { op, target, source }
                } else if chain.contains("error sending request")
                    || chain.contains("Connection refused")
                    || chain.contains("dns error")
                    || chain.contains("timed out")
                    || chain.contains("connect")
                {
                    StoreError::Unreachable { op, target, source }
                } else {
                    StoreError::Other { op, target, source }
                }
            }
        }
    }

    /// A known fix, printed as `hint:` under the error.
    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::Config { hint, .. } => hint.clone(),
            StoreError::AccessDenied { .. } => Some(
                "check the access key pair (OVH_S3_ACCESS_KEY/OVH_S3_SECRET_KEY, AWS_ACCESS_KEY_ID/\
                 AWS_SECRET_ACCESS_KEY or DATASET_S3_*), and that it may read and write this bucket; \
                 `gatehouse doctor` shows which variables were used"
                    .into(),
            ),
            StoreError::NoSuchBucket { .. } => Some(
                "check the bucket name (OVH_S3_BUCKET, AWS_S3_BUCKET or DATASET_S3_BUCKET) and the \
                 endpoint/region it lives in"
                    .into(),
            ),
            StoreError::Unreachable { .. } => Some(
                "check the endpoint URL (OVH_S3_ENDPOINT, AWS_ENDPOINT_URL or DATASET_S3_ENDPOINT) \
                 and your network; `gatehouse doctor` tests the connection"
                    .into(),
            ),
            StoreError::AlreadyExists { .. } => Some(
                "published artefacts are write-once; choose a new --release-version".into(),
            ),
            _ => None,
        }
    }
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}
