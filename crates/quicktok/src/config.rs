//! Configuration: one TOML file, overridden by `QUICKTOK_SECTION__KEY` environment variables,
//! overridden by command-line flags. Each crate owns its section's struct; this file only
//! assembles them and generates the sample config (`quicktok.sample.toml`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use quicktok_api::upload::UploadConfig;
use quicktok_api::{ApiConfig, AuthConfig, FlagsConfig, MediaConfig, RateLimitConfig};
use quicktok_blob::BlobConfig;
use quicktok_log::LogConfig;
use quicktok_meta::MetaConfig;
use quicktok_rank::RankerConfig;

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub api: ApiConfig,
    pub auth: AuthConfig,
    pub rate_limit: RateLimitConfig,
    pub media: MediaConfig,
    pub uploads: UploadConfig,
    /// Limits and tool settings for ffprobe/ffmpeg (`[processing]`).
    pub processing: quicktok_media::MediaConfig,
    pub pipeline: quicktok_pipeline::PipelineConfig,
    pub meta: MetaConfig,
    pub log: LogConfig,
    pub blob: BlobConfig,
    pub rank: RankerConfig,
    /// Full-text search: the index, its indexer and the ranking weights (`[search]`).
    pub search: quicktok_search::SearchConfig,
    /// Social features: the counter service (`[social.counters]`).
    pub social: quicktok_social::SocialConfig,
    /// The For-You recommender (`[recommend]`).
    pub recommend: quicktok_recommend::RecommendConfig,
    pub flags: FlagsConfig,
}

/// A part of the platform a process can run; a scale-out deployment gives each node a subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The HTTP API (stateless).
    Api,
    /// Pipeline workers (transcoding).
    Worker,
    /// Trending rankers.
    Ranker,
    /// Search indexers.
    Indexer,
    /// Periodic jobs (tiering, retention, counters repair).
    Scheduler,
}

impl Role {
    pub const ALL: [Role; 5] =
        [Role::Api, Role::Worker, Role::Ranker, Role::Indexer, Role::Scheduler];
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "api" => Ok(Role::Api),
            "worker" => Ok(Role::Worker),
            "ranker" => Ok(Role::Ranker),
            "indexer" => Ok(Role::Indexer),
            "scheduler" => Ok(Role::Scheduler),
            other => Err(format!(
                "unknown role {other:?}: expected api, worker, ranker, indexer or scheduler"
            )),
        }
    }
}

/// The `[server]` section: the process itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Where embedded backends keep their files (metadata, log, blobs, secrets).
    pub data_dir: PathBuf,
    /// Address to serve HTTP on; port 0 picks a free port.
    pub listen: String,
    /// This node's number (0-1023) inside ids; unique per node in a cluster.
    pub node_id: u16,
    /// Roles this process runs.
    pub roles: BTreeSet<Role>,
    /// `pretty` for people, `json` for log collectors.
    pub log_format: String,
    /// Log filter, `RUST_LOG` syntax (`RUST_LOG` overrides it).
    pub log_level: String,
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("./data"),
            listen: "127.0.0.1:8080".into(),
            node_id: 0,
            roles: Role::ALL.into_iter().collect(),
            log_format: "pretty".into(),
            log_level: "info".into(),
            shutdown_grace_secs: 20,
        }
    }
}

/// Errors loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
}

/// Values given on the command line (or their dedicated env vars), which win over the file
/// and the generic `QUICKTOK_SECTION__KEY` variables.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub roles: Option<BTreeSet<Role>>,
}

impl Config {
    /// Loads defaults, then `file` (if given; it must exist), then the environment `env`
    /// (pairs of name and value, normally `std::env::vars()`), then `overrides`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: Overrides,
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::File {
                    path: path.to_owned(),
                    message: "not found".into(),
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // Only SECTION__KEY names: QUICKTOK_DATA_DIR and friends are CLI flag defaults, and
        // QUICKTOK_TEST_* belong to the test harness.
        let vars: Vec<(String, String)> = env
            .into_iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix("QUICKTOK_")?;
                rest.contains("__").then(|| (rest.to_ascii_lowercase(), v))
            })
            .collect();
        for (key, value) in vars {
            let dotted = key.replace("__", ".");
            // Same parsing as figment's Env provider: `true`, `42`, `[a, b]` become typed.
            let parsed: figment::value::Value = match value.parse() {
                Ok(v) => v,
                Err(never) => match never {},
            };
            figment = figment.merge(Serialized::global(&dotted, parsed));
        }
        let mut config: Config =
            figment.extract().map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(d) = overrides.data_dir {
            config.server.data_dir = d;
        }
        if let Some(l) = overrides.listen {
            config.server.listen = l;
        }
        if let Some(r) = overrides.roles {
            config.server.roles = r;
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.server.node_id > quicktok_core::id::MAX_NODE {
            return Err(ConfigError::Invalid(format!(
                "server.node_id must be 0..={}",
                quicktok_core::id::MAX_NODE
            )));
        }
        if self.server.roles.is_empty() {
            return Err(ConfigError::Invalid("server.roles must name at least one role".into()));
        }
        for (name, rule) in &self.flags {
            if rule.percent > 100 {
                return Err(ConfigError::Invalid(format!("flags.{name}.percent must be 0..=100")));
            }
        }
        if !matches!(self.server.log_format.as_str(), "pretty" | "json") {
            return Err(ConfigError::Invalid("server.log_format must be pretty or json".into()));
        }
        Ok(())
    }

    /// The effective configuration as TOML, with secrets masked.
    pub fn to_toml_redacted(&self) -> String {
        let mut shown = self.clone();
        if !shown.auth.jwt_secret.is_empty() {
            shown.auth.jwt_secret = "<redacted>".into();
        }
        if !shown.blob.s3.secret_access_key.is_empty() {
            shown.blob.s3.secret_access_key = "<redacted>".into();
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// The sample configuration: every key with its default. `quicktok.sample.toml` at the
/// repository root is this text; a test keeps the two identical.
pub fn sample() -> String {
    let body = toml::to_string_pretty(&Config::default())
        .unwrap_or_else(|e| format!("# cannot render: {e}\n"));
    format!(
        "# QuickTok configuration: every key with its default value.\n\
         # Generated by `quicktok config sample`; do not edit by hand.\n\
         # Any key can be overridden by an environment variable QUICKTOK_SECTION__KEY\n\
         # (e.g. QUICKTOK_SERVER__LISTEN=0.0.0.0:8080) and some by command-line flags.\n\
         # Gray-release flags go under [flags.NAME] with percent, regions and description.\n\n{body}"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sample_file_is_in_sync() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../quicktok.sample.toml");
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == sample(),
            "quicktok.sample.toml is stale: run `make sample-config` (cargo run -p quicktok -- config sample > quicktok.sample.toml)"
        );
    }

    #[test]
    fn sample_parses_back_to_defaults() {
        let parsed: Config = toml::from_str(&sample()).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("q.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:9000\"\nnode_id = 3\n[auth]\naccess_ttl_secs = 60\n[flags.new_player]\npercent = 25\n",
        )
        .unwrap();
        let env = vec![
            ("QUICKTOK_AUTH__ACCESS_TTL_SECS".to_string(), "120".to_string()),
            ("QUICKTOK_RATE_LIMIT__ENABLED".to_string(), "false".to_string()),
            ("QUICKTOK_DATA_DIR".to_string(), "/ignored/here".to_string()),
            ("QUICKTOK_TEST_POSTGRES_URL".to_string(), "postgres://x".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let config = Config::load(
            Some(&file),
            env,
            Overrides { listen: Some("127.0.0.1:0".into()), ..Default::default() },
        )
        .unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:0");
        assert_eq!(config.server.node_id, 3);
        assert_eq!(config.auth.access_ttl_secs, 120);
        assert!(!config.rate_limit.enabled);
        assert_eq!(config.flags["new_player"].percent, 25);
        assert_eq!(config.server.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("q.toml");
        std::fs::write(&file, "[server]\nlisen = \"typo\"\n").unwrap();
        let err = Config::load(Some(&file), vec![], Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let err =
            Config::load(Some(&dir.path().join("missing.toml")), vec![], Overrides::default())
                .unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
        let env = vec![("QUICKTOK_SERVER__NODE_ID".to_string(), "5000".to_string())];
        assert!(Config::load(None, env, Overrides::default()).is_err());
        let env = vec![("QUICKTOK_SERVER__ROLES".to_string(), "[\"api\",\"dancer\"]".to_string())];
        assert!(Config::load(None, env, Overrides::default()).is_err());
    }

    #[test]
    fn roles_parse() {
        assert_eq!("api".parse::<Role>().unwrap(), Role::Api);
        assert!("nope".parse::<Role>().is_err());
    }
}
