//! The S3 settings: bucket, endpoint (checked), region, credentials from one family of
//! variables, server-side encryption and timeouts.

use super::resolve::Resolver;
use super::{ConfigError, Overrides, SettingOrigin, SseKind, StoreSection, env};
use crate::store::{Credentials, S3Config, Secret, ServerSideEncryption, Timeouts};

pub(super) fn resolve_s3(
    r: &mut Resolver<'_>,
    overrides: &Overrides,
    file: &StoreSection,
) -> Result<S3Config, ConfigError> {
    let bucket = r
        .pick(
            "bucket",
            overrides.bucket.clone(),
            env::BUCKET,
            file.bucket.clone(),
            None,
        )
        .ok_or_else(|| {
            ConfigError::invalid(
                "the s3 backend needs a bucket and none is configured",
                "set OVH_S3_BUCKET (or AWS_S3_BUCKET / DATASET_S3_BUCKET, or --bucket)",
            )
        })?;
    let endpoint = r
        .pick(
            "endpoint",
            overrides.endpoint.clone(),
            env::ENDPOINT,
            file.endpoint.clone(),
            None,
        )
        .map(|e| {
            if e.contains("://") {
                e
            } else {
                format!("https://{e}")
            }
        });
    let region = r
        .pick(
            "region",
            overrides.region.clone(),
            env::REGION,
            file.region.clone(),
            Some("us-east-1".into()),
        )
        .unwrap_or_default();
    let allow_http_explicit = r
        .env
        .var(env::S3_ALLOW_HTTP)
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        .or(file.allow_http)
        .unwrap_or(false);
    let allow_http = match &endpoint {
        None => false,
        Some(e) => check_endpoint(e, allow_http_explicit)?,
    };

    let credentials = resolve_credentials(r)?;
    let sse = match file.sse.unwrap_or(SseKind::None) {
        SseKind::None => ServerSideEncryption::None,
        SseKind::S3 => ServerSideEncryption::S3,
        SseKind::Kms => ServerSideEncryption::Kms {
            key_id: file.sse_kms_key_id.clone().ok_or_else(|| {
                ConfigError::invalid(
                    "[store] sse = \"kms\" needs sse_kms_key_id",
                    "add sse_kms_key_id = \"<key id or ARN>\" to [store]",
                )
            })?,
        },
    };
    let d = Timeouts::default();
    let secs = |v: Option<u64>, default: std::time::Duration| {
        v.map_or(default, std::time::Duration::from_secs)
    };
    Ok(S3Config {
        bucket,
        endpoint,
        region,
        credentials,
        allow_http,
        virtual_hosted_style: file.virtual_hosted_style.unwrap_or(false),
        sse,
        timeouts: Timeouts {
            connect: secs(file.connect_timeout_secs, d.connect),
            read_idle: secs(file.read_timeout_secs, d.read_idle),
            retry_budget: secs(file.retry_budget_secs, d.retry_budget),
            max_retries: file.max_retries.unwrap_or(d.max_retries),
        },
    })
}

fn resolve_credentials(r: &mut Resolver<'_>) -> Result<Credentials, ConfigError> {
    for (key_var, secret_var, token_var) in env::CREDENTIALS {
        let key = r.env.var(key_var);
        let secret = r.env.var(secret_var);
        match (key, secret) {
            (None, None) => continue,
            (Some(key), Some(secret)) => {
                let session_token = token_var.and_then(|t| r.env.var(t)).map(Secret::new);
                let later = env::CREDENTIALS
                    .iter()
                    .skip_while(|(k, _, _)| k != key_var)
                    .skip(1);
                for (other_key, other_secret, _) in later {
                    let differs = r.env.var(other_key).is_some_and(|o| o != key)
                        || r.env.var(other_secret).is_some_and(|o| o != secret);
                    if differs {
                        r.warnings.push(format!(
                            "{key_var}/{secret_var} and {other_key}/{other_secret} are both set, \
                             to different credentials: {key_var}/{secret_var} is used"
                        ));
                    }
                }
                r.origins.push(SettingOrigin {
                    setting: "credentials",
                    value: "(set)".into(),
                    from: format!("{key_var}/{secret_var}"),
                });
                return Ok(Credentials {
                    access_key_id: Secret::new(key),
                    secret_access_key: Secret::new(secret),
                    session_token,
                    source: format!("{key_var}/{secret_var}"),
                });
            }
            (key, _) => {
                let (set, unset) = if key.is_some() {
                    (key_var, secret_var)
                } else {
                    (secret_var, key_var)
                };
                return Err(ConfigError::invalid(
                    format!("{set} is set but {unset} is not"),
                    format!("set both {key_var} and {secret_var}, or neither"),
                ));
            }
        }
    }
    Err(ConfigError::invalid(
        "the s3 backend needs credentials and none are set",
        "set OVH_S3_ACCESS_KEY and OVH_S3_SECRET_KEY (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, \
         or DATASET_S3_ACCESS_KEY/DATASET_S3_SECRET_KEY)",
    ))
}

/// Validates an endpoint URL and says whether it needs plain HTTP. Credentials, queries and
/// fragments in the URL are refused (they would be printed, or change what is reached).
fn check_endpoint(endpoint: &str, allow_http: bool) -> Result<bool, ConfigError> {
    let bad = |why: &str| {
        ConfigError::invalid(
            format!("S3 endpoint {why}"),
            "write it as https://host[:port], with no user, password, query or fragment",
        )
    };
    let url = url::Url::parse(endpoint).map_err(|_| bad("is not a valid URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("contains a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("contains a query or fragment"));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(bad("has no host")),
    };
    match url.scheme() {
        "https" => Ok(false),
        "http" if loopback || allow_http => Ok(true),
        "http" => Err(ConfigError::invalid(
            format!("S3 endpoint {endpoint} uses plain HTTP to a remote host"),
            format!(
                "use https:// (credentials and data would cross the network unencrypted), \
                 or set {}=true if this is really intended",
                env::S3_ALLOW_HTTP
            ),
        )),
        _ => Err(bad("is not an http(s) URL")),
    }
}
