//! Storage errors: what operation failed on which key, and what the user can do about it.
//!
//! The raw `object_store` error is deliberately not kept: its text includes the server's
//! response body, and S3 error bodies echo the access key id, the string to sign and the
//! canonical request (with any session token). What is kept is a sanitised detail: the HTTP
//! status, the S3 error code, or the kind of transport failure.

use thiserror::Error;

/// Why a storage operation failed. Messages name the operation and the target (key, path or
/// bucket) plus a sanitised detail; never object content or credentials.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("invalid store configuration: {message}")]
    Config {
        message: String,
        hint: Option<String>,
    },
    #[error(
        "{key}: not a key gatehouse can read (a control character, or an empty or `.` segment)"
    )]
    UnusableKey { key: String },
    #[error("{target}: no such object")]
    NotFound { target: String },
    #[error("{target}: already exists; a create-only write was refused")]
    AlreadyExists { target: String },
    #[error("{op} {target}: access denied by the store ({detail})")]
    AccessDenied {
        op: &'static str,
        target: String,
        detail: String,
    },
    #[error("{op} {target}: the bucket does not exist ({detail})")]
    NoSuchBucket {
        op: &'static str,
        target: String,
        detail: String,
    },
    #[error("{op} {target}: could not reach the store ({detail})")]
    Unreachable {
        op: &'static str,
        target: String,
        detail: String,
    },
    #[error("{op} {target}: the store does not support this operation ({detail})")]
    NotSupported {
        op: &'static str,
        target: String,
        detail: String,
    },
    #[error("{op} {target}: the store answered with a server error ({detail})")]
    ServerError {
        op: &'static str,
        target: String,
        detail: String,
    },
    #[error("{op} {target} failed ({detail})")]
    Other {
        op: &'static str,
        target: String,
        detail: String,
    },
    #[error("{op} {target} failed")]
    Io {
        op: &'static str,
        target: String,
        #[source]
        source: std::io::Error,
    },
}

/// What can safely be said about an object_store error.
#[derive(Debug, Default, PartialEq, Eq)]
struct Facts {
    status: Option<u16>,
    /// S3 `<Code>` from the response body, e.g. `NoSuchBucket`.
    code: Option<String>,
    /// A transport failure kind, e.g. `connection refused`.
    transport: Option<&'static str>,
}

impl Facts {
    fn of(err: &object_store::Error) -> Self {
        let chain = without_urls(&error_chain(err));
        let status = chain.find("status ").and_then(|i| {
            let digits: String = chain[i + 7..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        });
        let code = chain.find("<Code>").and_then(|i| {
            let rest = &chain[i + 6..];
            let end = rest.find("</Code>")?;
            let code = &rest[..end];
            (code.len() <= 64 && code.chars().all(|c| c.is_ascii_alphanumeric()))
                .then(|| code.to_string())
        });
        let lower = chain.to_ascii_lowercase();
        let transport = [
            ("connection refused", "connection refused"),
            ("network is unreachable", "network unreachable"),
            ("network unreachable", "network unreachable"),
            ("no route to host", "no route to host"),
            ("host is unreachable", "host unreachable"),
            ("dns error", "name resolution failed"),
            ("failed to lookup address", "name resolution failed"),
            ("timed out", "timed out"),
            ("deadline has elapsed", "timed out"),
            ("connection reset", "connection reset"),
            ("certificate", "TLS certificate problem"),
            ("tls handshake", "TLS handshake failed"),
            ("error trying to connect", "could not connect"),
            ("error sending request", "request could not be sent"),
        ]
        .into_iter()
        .find(|(needle, _)| lower.contains(needle))
        .map(|(_, kind)| kind);
        Facts {
            status,
            code,
            transport,
        }
    }

    fn describe(&self, fallback: &str) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.status {
            parts.push(format!("HTTP {s}"));
        }
        if let Some(c) = &self.code {
            parts.push(format!("S3 code {c}"));
        }
        if let Some(t) = self.transport {
            parts.push(t.to_string());
        }
        if parts.is_empty() {
            fallback.to_string()
        } else {
            parts.join(", ")
        }
    }
}

impl StoreError {
    /// Sorts an object_store error into something a user can act on, keeping only sanitised
    /// facts about it.
    pub(crate) fn classify(op: &'static str, target: String, source: object_store::Error) -> Self {
        use object_store::Error as E;
        let facts = Facts::of(&source);
        let code = facts.code.as_deref().unwrap_or_default();
        let detail = facts.describe(match &source {
            E::NotImplemented { .. } | E::NotSupported { .. } => "not implemented by this store",
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => "permission denied",
            _ => "unrecognised store error",
        });
        if code == "NoSuchBucket" {
            return StoreError::NoSuchBucket { op, target, detail };
        }
        match source {
            E::NotFound { .. } if op != "list" => StoreError::NotFound { target },
            E::AlreadyExists { .. } | E::Precondition { .. } if op == "create-only write" => {
                StoreError::AlreadyExists { target }
            }
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
                StoreError::AccessDenied { op, target, detail }
            }
            E::NotImplemented { .. } | E::NotSupported { .. } => {
                StoreError::NotSupported { op, target, detail }
            }
            _ if matches!(
                code,
                "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied"
            ) || matches!(facts.status, Some(401 | 403)) =>
            {
                StoreError::AccessDenied { op, target, detail }
            }
            _ if facts.status.is_none() && facts.transport.is_some() => {
                StoreError::Unreachable { op, target, detail }
            }
            _ if facts.status.is_some_and(|s| (500..600).contains(&s)) => {
                StoreError::ServerError { op, target, detail }
            }
            _ => StoreError::Other { op, target, detail },
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
            StoreError::Unreachable { detail, .. } if detail.contains("unreachable") || detail.contains("no route") => Some(
                "this machine has no route to the endpoint: check the network connection (VPN, \
                 proxy, firewall) and the endpoint URL (OVH_S3_ENDPOINT, AWS_ENDPOINT_URL or \
                 DATASET_S3_ENDPOINT); `gatehouse doctor` tests the connection"
                    .into(),
            ),
            StoreError::Unreachable { .. } => Some(
                "check the endpoint URL (OVH_S3_ENDPOINT, AWS_ENDPOINT_URL or DATASET_S3_ENDPOINT) \
                 and your network; `gatehouse doctor` tests the connection"
                    .into(),
            ),
            StoreError::ServerError { .. } => Some(
                "the store failed on its side after gatehouse's retries: run the command again \
                 later (finished stages are skipped); if it persists, check the provider's status \
                 page or the server's logs"
                    .into(),
            ),
            StoreError::UnusableKey { .. } => Some(
                "rename the object (listings leave such keys out and name them)".into(),
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

/// Removes URLs, so that bucket and key names cannot be mistaken for error words.
fn without_urls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("http") {
        let tail = &rest[i..];
        if tail.starts_with("http://") || tail.starts_with("https://") {
            out.push_str(&rest[..i]);
            let end = tail
                .find(|c: char| c.is_whitespace() || c == ')' || c == '"')
                .unwrap_or(tail.len());
            out.push_str("<url>");
            rest = &tail[end..];
        } else {
            out.push_str(&rest[..i + 4]);
            rest = &rest[i + 4..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(msg: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: msg.to_string().into(),
        }
    }

    #[test]
    fn aws_error_bodies_never_reach_the_message() {
        let body = "Client error with status 403 Forbidden: <?xml version=\"1.0\"?><Error>\
            <Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>AKIASECRETKEYID</AWSAccessKeyId>\
            <CanonicalRequest>x-amz-security-token:SESSIONTOKEN123</CanonicalRequest></Error>";
        let e = StoreError::classify("list", "s3://b/".into(), generic(body));
        let shown = format!("{e} {e:?}");
        assert!(matches!(e, StoreError::AccessDenied { .. }), "{shown}");
        assert!(
            shown.contains("HTTP 403") && shown.contains("SignatureDoesNotMatch"),
            "{shown}"
        );
        assert!(
            !shown.contains("AKIASECRETKEYID") && !shown.contains("SESSIONTOKEN123"),
            "{shown}"
        );
    }

    #[test]
    fn key_names_in_urls_do_not_change_the_classification() {
        let msg = "Server error, body contains Error, with status 500 Internal Server Error: \
            error sending request for url (http://host/b/raw/connect_logs/timed out.jsonl)";
        let e = StoreError::classify("read", "s3://b/raw/connect_logs/x".into(), generic(msg));
        assert!(matches!(e, StoreError::ServerError { .. }), "{e:?}");
    }

    #[test]
    fn server_errors_and_unreachable_networks_have_hints() {
        let e = StoreError::classify(
            "read",
            "s3://b/k".into(),
            generic(
                "Server error, with status 500 Internal Server Error: <Error><Code>InternalError</Code></Error>",
            ),
        );
        assert!(matches!(e, StoreError::ServerError { .. }), "{e:?}");
        assert!(e.to_string().contains("HTTP 500"), "{e}");
        assert!(e.hint().unwrap().contains("again"), "{e}");
        let e = StoreError::classify(
            "list",
            "s3://b/".into(),
            generic(
                "error sending request: client error (Connect): tcp connect error: Network is unreachable (os error 101)",
            ),
        );
        assert!(matches!(e, StoreError::Unreachable { .. }), "{e:?}");
        assert!(e.to_string().contains("network unreachable"), "{e}");
        assert!(e.hint().unwrap().contains("no route"), "{e:?}");
    }

    #[test]
    fn transport_failures_are_unreachable_and_no_such_bucket_is_recognised() {
        let e = StoreError::classify(
            "list",
            "s3://b/".into(),
            generic(
                "error sending request for url (http://127.0.0.1:9/b): error trying to connect: tcp connect error: Connection refused",
            ),
        );
        assert!(matches!(e, StoreError::Unreachable { .. }), "{e:?}");
        assert!(e.to_string().contains("connection refused"), "{e}");
        let e = StoreError::classify(
            "read",
            "s3://b/k".into(),
            generic(
                "Client error with status 404 Not Found: <Error><Code>NoSuchBucket</Code></Error>",
            ),
        );
        assert!(matches!(e, StoreError::NoSuchBucket { .. }), "{e:?}");
    }
}
