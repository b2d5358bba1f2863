//! Resolution: each setting in turn, flag > environment > config file > default, its origin
//! recorded, checked as it is resolved.

use std::path::{Path, PathBuf};

use super::s3::resolve_s3;
use super::{
    BackendKind, CONFIG_FILE_NAME, ConfigError, ConfigFile, Env, SettingOrigin, Settings,
    StoreSection, env, parse_toml,
};
use crate::store::{Backend, StoreConfig};

/// What the command line said; `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub registry: Option<PathBuf>,
    pub backend: Option<BackendKind>,
    pub local_path: Option<PathBuf>,
    pub bucket: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub exports_prefix: Option<String>,
    /// `o200k_base`, `cl100k_base` or a `tokenizer.json` path (relative to the working
    /// directory).
    pub tokenizer: Option<String>,
}

pub(super) struct Resolver<'a> {
    pub(super) env: &'a dyn Env,
    pub(super) origins: Vec<SettingOrigin>,
    pub(super) warnings: Vec<String>,
}

impl Resolver<'_> {
    /// First of: flag, the environment variables in order, the file, the default.
    pub(super) fn pick(
        &mut self,
        setting: &'static str,
        flag: Option<String>,
        vars: &[&str],
        file: Option<String>,
        default: Option<String>,
    ) -> Option<String> {
        let (value, from) = if let Some(v) = flag {
            (v, format!("--{}", setting.replace('_', "-")))
        } else if let Some((i, v)) = vars
            .iter()
            .enumerate()
            .find_map(|(i, v)| self.env.var(v).map(|x| (i, x)))
        {
            for other in &vars[i + 1..] {
                if self.env.var(other).is_some_and(|o| o != v) {
                    self.warnings.push(format!(
                        "{} and {other} are both set, to different values: {} is used",
                        vars[i], vars[i]
                    ));
                }
            }
            (v, vars[i].to_string())
        } else if let Some(v) = file {
            (v, CONFIG_FILE_NAME.to_string())
        } else if let Some(v) = default {
            (v, "default".to_string())
        } else {
            return None;
        };
        self.origins.push(SettingOrigin {
            setting,
            value: value.clone(),
            from,
        });
        Some(value)
    }
}

/// A store configured by environment variables alone (no flags, no config file): what a
/// script or a test that only sets `DATASET_*`/`OVH_S3_*` variables gets.
pub fn store_from_env(env: &dyn Env) -> Result<StoreConfig, ConfigError> {
    let overrides = Overrides {
        config: Some(PathBuf::from("/dev/null")),
        ..Overrides::default()
    };
    Ok(resolve(&overrides, env)?.store)
}

/// The config file (`--config`, `GATEHOUSE_CONFIG`, else `./gatehouse.toml` when present)
/// and its parsed content.
fn load_file(
    overrides: &Overrides,
    env: &dyn Env,
) -> Result<(Option<PathBuf>, ConfigFile), ConfigError> {
    let config_file = overrides
        .config
        .clone()
        .or_else(|| env.var(env::CONFIG).map(PathBuf::from))
        .or_else(|| {
            let p = PathBuf::from(CONFIG_FILE_NAME);
            p.is_file().then_some(p)
        });
    let file: ConfigFile = match &config_file {
        Some(path) => {
            let text = fs_read(path)?;
            parse_toml(path, &text)?
        }
        None => ConfigFile::default(),
    };
    Ok((config_file, file))
}

/// Only `[privacy]`, for commands that need no store (`gatehouse pii eval`): the same file,
/// the same checks, but no store settings are required.
pub fn resolve_privacy(
    overrides: &Overrides,
    env: &dyn Env,
) -> Result<crate::privacy::PrivacyConfig, ConfigError> {
    let (_, file) = load_file(overrides, env)?;
    let exports_prefix = overrides
        .exports_prefix
        .clone()
        .or_else(|| env.var(env::EXPORTS_PREFIX))
        .or(file.store.exports_prefix.clone())
        .unwrap_or_else(|| "exports".into());
    if let Some(p) = file.privacy.problem(exports_prefix.trim_matches('/')) {
        return Err(ConfigError::invalid(
            p,
            "fix [privacy] in gatehouse.toml (see \"Privacy\" in README.md)",
        ));
    }
    Ok(file.privacy)
}

/// Resolves the configuration for one command: each setting in turn (flag > environment >
/// file > default, its origin recorded), checked as it is resolved.
pub fn resolve(overrides: &Overrides, env: &dyn Env) -> Result<Settings, ConfigError> {
    let (config_file, file) = load_file(overrides, env)?;
    let base = config_file
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();

    let mut r = Resolver {
        env,
        origins: Vec::new(),
        warnings: Vec::new(),
    };
    let registry_path = r.registry_path(overrides, &file, &base);
    let build = r.build(overrides, &file, &base);
    let (backend_kind, exports_prefix) = r.store_location(overrides, &file.store)?;

    if let Some(p) = file.privacy.problem(&exports_prefix) {
        return Err(ConfigError::invalid(
            p,
            "fix [privacy] in gatehouse.toml (see \"Privacy\" in README.md)",
        ));
    }

    let backend = r.backend(backend_kind, overrides, &file.store, &base)?;
    let source_date = r.source_date()?;
    let as_of = source_date.unwrap_or_else(crate::waiver::today);
    r.origins.push(SettingOrigin {
        setting: "as_of",
        value: as_of.to_string(),
        from: if env.var(env::SOURCE_DATE_EPOCH).is_some() {
            env::SOURCE_DATE_EPOCH.to_string()
        } else {
            "clock".to_string()
        },
    });

    Ok(Settings {
        config_file,
        registry_path,
        store: StoreConfig {
            backend,
            exports_prefix,
        },
        coverage: file.coverage,
        build,
        gates: file.gates,
        qa: file.qa,
        consume: file.consume,
        privacy: file.privacy,
        waivers: file.waivers,
        origins: r.origins,
        as_of,
        source_date,
        warnings: r.warnings,
    })
}

/// A path from the config file, relative to the file's folder `base` unless absolute.
fn rel(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn path_string(p: &Option<PathBuf>) -> Option<String> {
    p.as_ref().map(|p| p.display().to_string())
}

/// The steps of [`resolve`], one setting (or a few that go together) each.
impl Resolver<'_> {
    fn registry_path(&mut self, overrides: &Overrides, file: &ConfigFile, base: &Path) -> PathBuf {
        self.pick(
            "registry",
            path_string(&overrides.registry),
            &[env::REGISTRY],
            file.registry
                .as_deref()
                .map(|p| rel(base, p).display().to_string()),
            Some(rel(base, Path::new("registry.toml")).display().to_string()),
        )
        .map(PathBuf::from)
        .unwrap_or_default()
    }

    /// `[build]`, with the tokenizer: a flag (relative to the working directory), or the
    /// file's `[build] tokenizer` (a path relative to the config file's folder).
    fn build(
        &mut self,
        overrides: &Overrides,
        file: &ConfigFile,
        base: &Path,
    ) -> crate::build::BuildConfig {
        let mut build = file.build.clone();
        let from_file = match &file.build.tokenizer {
            gatehouse_text::TokenizerSpec::File(p) => rel(base, p).display().to_string(),
            builtin => builtin.to_string(),
        };
        if let Some(t) = self.pick(
            "tokenizer",
            overrides.tokenizer.clone(),
            &[],
            Some(from_file),
            None,
        ) {
            build.tokenizer = gatehouse_text::TokenizerSpec::from(t);
        }
        build
    }

    /// Which backend, and the exports prefix without surrounding `/` (refused when empty or
    /// not a key prefix).
    fn store_location(
        &mut self,
        overrides: &Overrides,
        store: &StoreSection,
    ) -> Result<(BackendKind, String), ConfigError> {
        let backend_name = self
            .pick(
                "backend",
                overrides.backend.map(|b| format!("{b:?}").to_lowercase()),
                &[env::BACKEND],
                store.backend.map(|b| format!("{b:?}").to_lowercase()),
                Some("local".into()),
            )
            .unwrap_or_default();
        let backend_kind: BackendKind = backend_name.parse().map_err(|m: String| {
            ConfigError::invalid(m, format!("set {} to local or s3", env::BACKEND))
        })?;
        let exports_prefix = self
            .pick(
                "exports_prefix",
                overrides.exports_prefix.clone(),
                &[env::EXPORTS_PREFIX],
                store.exports_prefix.clone(),
                Some("exports".into()),
            )
            .unwrap_or_default()
            .trim_matches('/')
            .to_string();
        check_exports_prefix(&exports_prefix)?;
        Ok((backend_kind, exports_prefix))
    }

    /// The local directory, or every S3 setting.
    fn backend(
        &mut self,
        kind: BackendKind,
        overrides: &Overrides,
        store: &StoreSection,
        base: &Path,
    ) -> Result<Backend, ConfigError> {
        match kind {
            BackendKind::Local => {
                let root = self
                    .pick(
                        "local_path",
                        path_string(&overrides.local_path),
                        &[env::LOCAL_PATH],
                        store
                            .local_path
                            .as_deref()
                            .map(|p| rel(base, p).display().to_string()),
                        None,
                    )
                    .ok_or_else(|| {
                        ConfigError::invalid(
                            "the local backend needs a directory and none is configured",
                            format!(
                                "set {} (or [store] local_path in {CONFIG_FILE_NAME}, or \
                                 --local-path)",
                                env::LOCAL_PATH
                            ),
                        )
                    })?;
                Ok(Backend::Local { root: root.into() })
            }
            BackendKind::S3 => Ok(Backend::S3(Box::new(resolve_s3(self, overrides, store)?))),
        }
    }

    /// The date of `SOURCE_DATE_EPOCH`, when set.
    fn source_date(&self) -> Result<Option<chrono::NaiveDate>, ConfigError> {
        let Some(v) = self.env.var(env::SOURCE_DATE_EPOCH) else {
            return Ok(None);
        };
        v.trim()
            .parse::<i64>()
            .ok()
            .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
            .map(|t| Some(t.date_naive()))
            .ok_or_else(|| {
                ConfigError::invalid(
                    format!("{} is not a Unix timestamp", env::SOURCE_DATE_EPOCH),
                    "set it to whole seconds since 1970-01-01, or unset it",
                )
            })
    }
}

/// An exports prefix is a key prefix inside the store, not empty.
fn check_exports_prefix(exports_prefix: &str) -> Result<(), ConfigError> {
    if exports_prefix.is_empty() {
        return Err(ConfigError::invalid(
            "the exports prefix is empty",
            format!(
                "set {} to a key prefix such as `exports`",
                env::EXPORTS_PREFIX
            ),
        ));
    }
    // A key prefix, not a path: `..` would be written as a literal `%2E%2E` folder inside
    // the store (while messages showed a path outside it), and the next coverage would list
    // the release's own output as source objects.
    if exports_prefix
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
        || exports_prefix.chars().any(char::is_control)
    {
        return Err(ConfigError::invalid(
            format!(
                "the exports prefix {:?} is not a key prefix (it has an empty, `.` or `..` \
                 segment, or a control character)",
                exports_prefix
            ),
            format!(
                "set {} (or [store] exports_prefix) to a prefix inside the store such as \
                 `exports` or `team/exports`",
                env::EXPORTS_PREFIX
            ),
        ));
    }
    Ok(())
}

fn fs_read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::S3Config;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn no_file() -> Overrides {
        Overrides {
            config: Some(PathBuf::from("/dev/null")),
            ..Overrides::default()
        }
    }

    fn s3(settings: &Settings) -> &S3Config {
        match &settings.store.backend {
            Backend::S3(s3) => s3,
            other => panic!("expected s3, got {other:?}"),
        }
    }

    #[test]
    fn ovh_variables_win_over_aws_and_dataset_ones() {
        let e = env(&[
            ("DATASET_STORAGE_BACKEND", "s3"),
            ("OVH_S3_BUCKET", "ovh-bucket"),
            ("AWS_S3_BUCKET", "aws-bucket"),
            ("DATASET_S3_BUCKET", "ds-bucket"),
            ("AWS_REGION", "eu-west-3"),
            ("DATASET_S3_REGION", "gra"),
            ("OVH_S3_ACCESS_KEY", "ovh-ak"),
            ("OVH_S3_SECRET_KEY", "ovh-sk"),
            ("AWS_ACCESS_KEY_ID", "aws-ak"),
            ("AWS_SECRET_ACCESS_KEY", "aws-sk"),
            ("OVH_S3_ENDPOINT", "s3.gra.io.cloud.ovh.net"),
        ]);
        let s = resolve(&no_file(), &e).unwrap();
        let s3 = s3(&s);
        assert_eq!(s3.bucket, "ovh-bucket");
        assert_eq!(s3.region, "eu-west-3");
        assert_eq!(s3.credentials.access_key_id.expose(), "ovh-ak");
        assert_eq!(s3.credentials.source, "OVH_S3_ACCESS_KEY/OVH_S3_SECRET_KEY");
        assert_eq!(
            s3.endpoint.as_deref(),
            Some("https://s3.gra.io.cloud.ovh.net")
        );
        assert!(!s3.allow_http);
        assert!(!s3.virtual_hosted_style, "path-style is the default");
    }

    #[test]
    fn flags_win_over_environment() {
        let e = env(&[
            ("DATASET_STORAGE_BACKEND", "s3"),
            ("OVH_S3_BUCKET", "env-bucket"),
            ("DATASET_S3_ACCESS_KEY", "a"),
            ("DATASET_S3_SECRET_KEY", "b"),
        ]);
        let o = Overrides {
            bucket: Some("flag-bucket".into()),
            ..no_file()
        };
        let s = resolve(&o, &e).unwrap();
        assert_eq!(s3(&s).bucket, "flag-bucket");
        let origin = s.origins.iter().find(|o| o.setting == "bucket").unwrap();
        assert_eq!(origin.from, "--bucket");
    }

    #[test]
    fn half_a_credential_pair_is_refused() {
        let e = env(&[
            ("DATASET_STORAGE_BACKEND", "s3"),
            ("OVH_S3_BUCKET", "b"),
            ("OVH_S3_ACCESS_KEY", "a"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ]);
        let err = resolve(&no_file(), &e).unwrap_err();
        assert!(err.to_string().contains("OVH_S3_SECRET_KEY"), "{err}");
    }

    #[test]
    fn plain_http_is_allowed_only_for_loopback() {
        let base = [
            ("DATASET_STORAGE_BACKEND", "s3"),
            ("OVH_S3_BUCKET", "b"),
            ("OVH_S3_ACCESS_KEY", "a"),
            ("OVH_S3_SECRET_KEY", "s"),
        ];
        let with = |endpoint: &str| {
            let mut e = env(&base);
            e.insert("OVH_S3_ENDPOINT".into(), endpoint.into());
            e
        };
        assert!(s3(&resolve(&no_file(), &with("http://127.0.0.1:9000")).unwrap()).allow_http);
        assert!(s3(&resolve(&no_file(), &with("http://localhost:9000")).unwrap()).allow_http);
        assert!(s3(&resolve(&no_file(), &with("http://[::1]:9000")).unwrap()).allow_http);
        let err = resolve(&no_file(), &with("http://storage.example.com")).unwrap_err();
        assert!(err.hint().unwrap().contains("DATASET_S3_ALLOW_HTTP"));
        let mut e = with("http://storage.example.com");
        e.insert("DATASET_S3_ALLOW_HTTP".into(), "true".into());
        assert!(s3(&resolve(&no_file(), &e).unwrap()).allow_http);
    }

    #[test]
    fn endpoints_with_credentials_or_tricks_are_refused() {
        let with = |endpoint: &str| {
            env(&[
                ("DATASET_STORAGE_BACKEND", "s3"),
                ("OVH_S3_BUCKET", "b"),
                ("OVH_S3_ACCESS_KEY", "a"),
                ("OVH_S3_SECRET_KEY", "s"),
                ("OVH_S3_ENDPOINT", endpoint),
            ])
        };
        for bad in [
            "http://user:pw@127.0.0.1:9000",
            "http://evil.example#@127.0.0.1",
            "https://s3.example.com/?x=1",
            "ftp://s3.example.com",
        ] {
            let err = resolve(&no_file(), &with(bad)).unwrap_err();
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
        let err = resolve(&no_file(), &with("http://evil.example#@127.0.0.1")).unwrap_err();
        assert!(err.to_string().contains("fragment"), "{err}");
    }

    #[test]
    fn ovh_and_aws_variables_with_different_values_are_warned_about_without_values() {
        let e = env(&[
            ("DATASET_STORAGE_BACKEND", "s3"),
            ("OVH_S3_BUCKET", "ovh-bucket"),
            ("AWS_S3_BUCKET", "aws-bucket"),
            ("OVH_S3_REGION", "gra"),
            ("AWS_REGION", "gra"),
            ("OVH_S3_ACCESS_KEY", "ovh-ak"),
            ("OVH_S3_SECRET_KEY", "ovh-sk"),
            ("AWS_ACCESS_KEY_ID", "aws-ak"),
            ("AWS_SECRET_ACCESS_KEY", "aws-sk"),
            ("OVH_S3_ENDPOINT", "s3.gra.io.cloud.ovh.net"),
        ]);
        let s = resolve(&no_file(), &e).unwrap();
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("OVH_S3_BUCKET and AWS_S3_BUCKET"));
        assert!(
            s.warnings[1].contains("OVH_S3_ACCESS_KEY/OVH_S3_SECRET_KEY and AWS_ACCESS_KEY_ID")
        );
        let all = s.warnings.join(" ");
        for value in [
            "ovh-bucket",
            "aws-bucket",
            "ovh-ak",
            "aws-ak",
            "ovh-sk",
            "aws-sk",
        ] {
            assert!(!all.contains(value), "{all}");
        }
    }

    #[test]
    fn an_exports_prefix_outside_the_store_is_refused() {
        for bad in ["../../outside", "a/../b", "./x", "a//b", "x\ty"] {
            let e = env(&[
                ("DATASET_EXPORTS_PREFIX", bad),
                ("DATASET_STORAGE_LOCAL_PATH", "/tmp"),
            ]);
            let err = resolve(&no_file(), &e).unwrap_err();
            assert!(err.to_string().contains("not a key prefix"), "{bad}: {err}");
            assert!(err.hint().unwrap().contains("exports"), "{err}");
        }
        let e = env(&[
            ("DATASET_EXPORTS_PREFIX", "/team/exports/"),
            ("DATASET_STORAGE_LOCAL_PATH", "/tmp"),
        ]);
        assert_eq!(
            resolve(&no_file(), &e).unwrap().store.exports_prefix,
            "team/exports"
        );
    }

    #[test]
    fn missing_bucket_and_credentials_have_hints() {
        let e = env(&[("DATASET_STORAGE_BACKEND", "s3")]);
        let err = resolve(&no_file(), &e).unwrap_err();
        assert!(err.hint().unwrap().contains("OVH_S3_BUCKET"));
        let e = env(&[("DATASET_STORAGE_BACKEND", "s3"), ("OVH_S3_BUCKET", "b")]);
        let err = resolve(&no_file(), &e).unwrap_err();
        assert!(err.hint().unwrap().contains("OVH_S3_ACCESS_KEY"));
    }

    #[test]
    fn config_file_paths_are_relative_to_the_file_and_env_overrides_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatehouse.toml");
        std::fs::write(
            &path,
            "registry = \"reg.toml\"\n[store]\nbackend = \"local\"\nlocal_path = \"store\"\n",
        )
        .unwrap();
        let o = Overrides {
            config: Some(path.clone()),
            ..Overrides::default()
        };
        let s = resolve(&o, &env(&[])).unwrap();
        assert_eq!(s.registry_path, dir.path().join("reg.toml"));
        assert_eq!(
            s.store.backend,
            Backend::Local {
                root: dir.path().join("store")
            }
        );
        assert_eq!(s.store.exports_prefix, "exports");
        let s = resolve(&o, &env(&[("DATASET_STORAGE_LOCAL_PATH", "/elsewhere")])).unwrap();
        assert_eq!(
            s.store.backend,
            Backend::Local {
                root: "/elsewhere".into()
            }
        );
    }

    #[test]
    fn unknown_config_keys_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatehouse.toml");
        std::fs::write(&path, "[store]\nbackend = \"local\"\nsecret_key = \"x\"\n").unwrap();
        let o = Overrides {
            config: Some(path),
            ..Overrides::default()
        };
        let err = resolve(&o, &env(&[])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("gatehouse.toml:3:"), "{msg}");
        assert!(msg.contains("secret_key"), "{msg}");
    }

    #[test]
    fn source_date_epoch_fixes_the_day_waivers_are_judged_on() {
        let s = resolve(
            &no_file(),
            &env(&[
                ("DATASET_STORAGE_LOCAL_PATH", "/x"),
                ("SOURCE_DATE_EPOCH", "1767225600"),
            ]),
        )
        .unwrap();
        assert_eq!(s.as_of.to_string(), "2026-01-01");
        let err = resolve(
            &no_file(),
            &env(&[
                ("DATASET_STORAGE_LOCAL_PATH", "/x"),
                ("SOURCE_DATE_EPOCH", "soon"),
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("SOURCE_DATE_EPOCH"), "{err}");
    }

    #[test]
    fn the_privacy_section_is_parsed_strictly_and_checked_before_anything_runs() {
        use gatehouse_text::pii::{DatePolicy, PiiType};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gatehouse.toml");
        let o = Overrides {
            config: Some(path.clone()),
            ..Overrides::default()
        };
        let e = env(&[("DATASET_STORAGE_LOCAL_PATH", "/x")]);
        // Absent: today's behaviour.
        std::fs::write(&path, "").unwrap();
        let s = resolve(&o, &e).unwrap();
        assert_eq!(s.privacy, crate::privacy::PrivacyConfig::default());
        assert_eq!(s.privacy.policy(), gatehouse_text::pii::Policy::default());
        let default_digest = s.digest();
        std::fs::write(
            &path,
            "[privacy]\ndates = \"all\"\ndisabled = [\"HANDLE\", \"URL\"]\n[privacy.evaluation]\nsets = [\"labelled/dev.jsonl\"]\nmin_recall_direct = 0.9\n",
        )
        .unwrap();
        let s = resolve(&o, &e).unwrap();
        assert_eq!(s.privacy.dates, DatePolicy::All);
        assert!(s.privacy.disabled.contains(&PiiType::Handle));
        assert_eq!(s.privacy.evaluation.sets, ["labelled/dev.jsonl"]);
        assert_eq!(s.privacy.evaluation.min_recall_direct, Some(0.9));
        assert_ne!(
            s.digest(),
            default_digest,
            "the policy is part of the config digest"
        );
        assert_eq!(resolve_privacy(&o, &env(&[])).unwrap(), s.privacy);
        for (bad, says) in [
            ("[privacy]\ndates = \"some\"\n", "some"),
            ("[privacy]\ndisabled = [\"HANDEL\"]\n", "HANDEL"),
            ("[privacy]\npii_unsure = \"review\"\n", "pii_unsure"),
            (
                "[privacy.evaluation]\nmin_precision = 2.0\n",
                "min_precision",
            ),
            (
                "[privacy.evaluation]\nsets = [\"../x.jsonl\"]\n",
                "../x.jsonl",
            ),
        ] {
            std::fs::write(&path, bad).unwrap();
            let err = resolve(&o, &e).unwrap_err();
            assert!(err.to_string().contains(says), "{bad}: {err}");
            assert!(resolve_privacy(&o, &e).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_backend_is_refused() {
        let err = resolve(&no_file(), &env(&[("DATASET_STORAGE_BACKEND", "gcs")])).unwrap_err();
        assert!(err.to_string().contains("gcs"));
    }
}
