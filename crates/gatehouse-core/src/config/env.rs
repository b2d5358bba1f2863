//! Every environment variable gatehouse reads, in one documented place. Resolution
//! ([`crate::config::resolve`]) reads the settings; the audit log reads who the actor is; the
//! store reads the fault-injection hook of the crash tests. Nothing else reads the
//! environment.

/// Path of the config file (default: `./gatehouse.toml` when it exists).
pub const CONFIG: &str = "GATEHOUSE_CONFIG";
/// Path of the registry file (default: `registry` in the config file).
pub const REGISTRY: &str = "GATEHOUSE_REGISTRY";
/// Log filter, e.g. `info` or `gatehouse_core=debug`.
pub const LOG: &str = "GATEHOUSE_LOG";
/// `local` or `s3`.
pub const BACKEND: &str = "DATASET_STORAGE_BACKEND";
/// Root directory of the local backend.
pub const LOCAL_PATH: &str = "DATASET_STORAGE_LOCAL_PATH";
/// Key prefix releases are written under (default `exports`).
pub const EXPORTS_PREFIX: &str = "DATASET_EXPORTS_PREFIX";
/// Allow plain-HTTP S3 endpoints that are not on this machine (`true`/`false`).
pub const S3_ALLOW_HTTP: &str = "DATASET_S3_ALLOW_HTTP";
/// Bucket name, in precedence order.
pub const BUCKET: &[&str] = &["OVH_S3_BUCKET", "AWS_S3_BUCKET", "DATASET_S3_BUCKET"];
/// Endpoint URL, in precedence order.
pub const ENDPOINT: &[&str] = &[
    "OVH_S3_ENDPOINT",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "DATASET_S3_ENDPOINT",
];
/// Region, in precedence order.
pub const REGION: &[&str] = &[
    "OVH_S3_REGION",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "DATASET_S3_REGION",
];
/// Credential families in precedence order: (access key, secret key, session token).
pub const CREDENTIALS: &[(&str, &str, Option<&str>)] = &[
    ("OVH_S3_ACCESS_KEY", "OVH_S3_SECRET_KEY", None),
    (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        Some("AWS_SESSION_TOKEN"),
    ),
    ("DATASET_S3_ACCESS_KEY", "DATASET_S3_SECRET_KEY", None),
];
/// Unix time that stands for "now" (reproducible-builds convention): the day waivers are
/// judged on, and later the timestamps written into artefacts. Default: the clock.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
/// Who runs gatehouse, for the audit log, in precedence order (else `unknown`).
pub const ACTOR: &[&str] = &["GATEHOUSE_ACTOR", "USER", "USERNAME"];
/// Crash tests only (gatehouse-core's `fault-injection` feature): abort the process after
/// this many completed writes.
pub const TEST_ABORT_AFTER_WRITES: &str = "GATEHOUSE_TEST_ABORT_AFTER_WRITES";
