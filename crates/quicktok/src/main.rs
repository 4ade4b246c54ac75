//! The `quicktok` command: serve the platform, print configuration, run migrations, seed a
//! demo.

mod seed;

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use quicktok::App;
use quicktok::config::{self, Config, Overrides, Role};
use quicktok_core::Shutdown;

#[derive(Parser)]
#[command(name = "quicktok", version, about = "QuickTok: a self-hostable short-video platform")]
struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "QUICKTOK_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory for the embedded backends.
    #[arg(long, global = true, env = "QUICKTOK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the platform.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "QUICKTOK_LISTEN")]
        listen: Option<String>,
        /// Roles to run, comma-separated: api,worker,ranker,indexer,scheduler.
        #[arg(long, value_delimiter = ',')]
        roles: Option<Vec<Role>>,
    },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Accounts the operator manages.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Counter maintenance.
    Counters {
        #[command(subcommand)]
        action: CountersAction,
    },
    /// Search index maintenance.
    Search {
        #[command(subcommand)]
        action: SearchAction,
    },
    /// Create demo accounts and publish a dozen generated clips through the upload API.
    SeedDemo {
        /// Seed the server running at this URL instead of starting one on the data directory.
        #[arg(long)]
        url: Option<String>,
        /// Do nothing when the feed already has videos (in-process, also when demo uploads are
        /// still processing).
        #[arg(long)]
        if_empty: bool,
        /// How many clips to publish.
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u16).range(1..=100))]
        clips: u16,
        /// Seconds to wait for every clip to be published.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create the account of an administrator listed in `auth.admins` (such usernames cannot
    /// be registered over the API). The password comes from `QUICKTOK_ADMIN_PASSWORD`, else
    /// from the first line of standard input. Run it while the server is stopped (the
    /// embedded stores take a lock), or against the shared stores of a scale-out setup.
    AddAdmin { username: String },
}

#[derive(Subcommand)]
enum CountersAction {
    /// Recompute every counter (likes, comments, shares, plays, followers, following) from
    /// the tables they count and overwrite the stored counters. Run it with the servers
    /// stopped: deltas a running node has not flushed yet would be added on top. Also
    /// rebuilds each user's stored followee list (what a feed read starts from).
    Repair,
}

#[derive(Subcommand)]
enum SearchAction {
    /// Rebuild the search index (`<data_dir>/search/`) from the metadata store, recording the
    /// event-log offset it is consistent with. Run it with the indexer stopped.
    Rebuild,
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Print the sample configuration (every key with its default).
    Sample,
    /// Print the effective configuration (file + environment + flags), secrets masked.
    Show,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let listen = match &cli.command {
        Command::Serve { listen, .. } => listen.clone(),
        _ => None,
    };
    let roles = match &cli.command {
        Command::Serve { roles: Some(r), .. } => Some(r.iter().copied().collect::<BTreeSet<_>>()),
        _ => None,
    };
    if let Command::Config { action: ConfigAction::Sample } = cli.command {
        print!("{}", config::sample());
        return Ok(());
    }
    let config = Config::load(
        cli.config.as_deref(),
        std::env::vars(),
        Overrides { data_dir: cli.data_dir.clone(), listen, roles },
    )?;
    match cli.command {
        Command::Config { action: ConfigAction::Show } => {
            print!("{}", config.to_toml_redacted());
            Ok(())
        }
        Command::Config { action: ConfigAction::Sample } => Ok(()),
        Command::Migrate => runtime()?.block_on(async {
            init_tracing(&config);
            std::fs::create_dir_all(&config.server.data_dir)?;
            let store =
                quicktok_meta::MetaStore::connect(&config.meta, &config.server.data_dir).await?;
            println!("migrations applied ({})", store.backend());
            Ok(())
        }),
        Command::Counters { action: CountersAction::Repair } => runtime()?.block_on(async {
            init_tracing(&config);
            std::fs::create_dir_all(&config.server.data_dir)?;
            let store =
                quicktok_meta::MetaStore::connect(&config.meta, &config.server.data_dir).await?;
            let done = quicktok::counters::repair(&store).await?;
            println!(
                "counters repaired: {} counters and {} followee lists rebuilt ({})",
                done.counters,
                done.following_lists,
                store.backend()
            );
            store.close().await;
            Ok(())
        }),
        Command::Search { action: SearchAction::Rebuild } => {
            init_tracing(&config);
            runtime()?.block_on(rebuild_search(config))
        }
        Command::Serve { .. } => runtime()?.block_on(serve(config)),
        Command::User { action: UserAction::AddAdmin { username } } => {
            init_tracing(&config);
            runtime()?.block_on(add_admin(config, &username))
        }
        Command::SeedDemo { url, if_empty, clips, timeout_secs } => {
            // Warnings only: the in-process server's request logs would bury the progress.
            let mut quiet = config.clone();
            quiet.server.log_level = "warn".into();
            init_tracing(&quiet);
            let opts = seed::SeedOptions {
                url,
                if_empty,
                clips: usize::from(clips),
                timeout: std::time::Duration::from_secs(timeout_secs),
            };
            runtime()?.block_on(seed::run(config, opts))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("tokio runtime")
}

async fn serve(config: Config) -> anyhow::Result<()> {
    init_tracing(&config);
    let shutdown = Shutdown::new();
    let app = App::start(config, shutdown.clone()).await?;
    match app.url() {
        Some(url) => println!("QuickTok serving on {url}"),
        None => println!("QuickTok running without the api role"),
    }
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        shutdown.cancel();
    });
    app.run_until_stopped().await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn init_tracing(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.server.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if config.server.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// `quicktok search rebuild`.
async fn rebuild_search(config: Config) -> anyhow::Result<()> {
    use std::sync::Arc;
    let data_dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir)?;
    let store = quicktok_meta::MetaStore::connect(&config.meta, &data_dir).await?;
    let log = quicktok_log::FileLog::open(&data_dir.join("log"), config.log.clone())
        .await
        .context("opening the event log (is a server running on this data directory?)")?;
    let clock: quicktok_core::clock::SharedClock = Arc::new(quicktok_core::SystemClock);
    let counters = quicktok_social::CounterService::new(
        Arc::new(quicktok::counters::MetaCounterStore::new(store.clone())),
        config.social.counters.clone(),
        clock,
    );
    let dir = data_dir.join("search");
    let search_config = config.search.clone();
    let index = Arc::new(
        tokio::task::spawn_blocking(move || {
            quicktok_search::SearchIndex::open(&dir, search_config)
        })
        .await??,
    );
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed} {pos} videos indexed ({per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let (videos, offset) =
        quicktok::search::rebuild(index, &store, &counters, &log, |n| bar.set_position(n)).await?;
    bar.finish();
    println!("search index rebuilt: {videos} videos, consistent with videos offset {offset}");
    quicktok_log::EventLog::close(&log).await?;
    store.close().await;
    Ok(())
}

/// `quicktok user add-admin`: the API role alone, on a private port, creates the account.
async fn add_admin(mut config: Config, username: &str) -> anyhow::Result<()> {
    let password = match std::env::var("QUICKTOK_ADMIN_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("reading the password")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    config.server.roles = [Role::Api].into_iter().collect();
    config.server.listen = "127.0.0.1:0".into();
    let shutdown = Shutdown::new();
    let app = App::start(config, shutdown.clone()).await?;
    let created = match app.api_state() {
        Some(state) => state
            .auth()
            .register_admin(username, password)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message)),
        None => Err(anyhow::anyhow!("the api role did not start")),
    };
    shutdown.cancel();
    app.run_until_stopped().await?;
    let session = created?;
    println!("administrator {} created (id {})", session.user.username, session.user.id);
    Ok(())
}
