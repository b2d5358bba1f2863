//! One module per subcommand; each resolves what it needs, calls gatehouse-core, prints, and
//! returns an exit code.

mod audit;
mod build;
mod consume;
mod coverage;
mod doctor;
mod gates;
mod pii;
mod qa;
mod registry;
mod release;

use anyhow::Result;
use gatehouse_core::config::{self, ProcessEnv, Settings};
use gatehouse_core::registry::Registry;
use gatehouse_core::store::Store;

use crate::cli::{AuditCommand, Cli, Command, PiiCommand, QaCommand, RegistryCommand};
use crate::exit::Code;

pub fn run(cli: &Cli) -> Result<Code> {
    match &cli.command {
        Command::Release(args) => release::run(cli, args),
        Command::Build(args) => build::run(cli, args),
        Command::Gates(args) => gates::run(cli, args),
        Command::Qa(QaCommand::Sample(args)) => qa::sample(cli, args),
        Command::Qa(QaCommand::Invite(args)) => qa::invite(cli, args),
        Command::Qa(QaCommand::Revoke(args)) => qa::revoke(cli, args),
        Command::Qa(QaCommand::Keygen(args)) => qa::keygen(cli, args),
        Command::Qa(QaCommand::Sign(args)) => qa::sign(cli, args),
        Command::Qa(QaCommand::Serve(args)) => qa::serve(cli, args),
        Command::Qa(QaCommand::Import(args)) => qa::import(cli, args),
        Command::Qa(QaCommand::Signoff(args)) => qa::signoff(cli, args),
        Command::Consume(args) => consume::run(cli, args),
        Command::Coverage(args) => coverage::run(cli, args),
        Command::Doctor => doctor::run(cli),
        Command::Registry(RegistryCommand::Check) => registry::check(cli),
        Command::Registry(RegistryCommand::Import(args)) => registry::import(cli, args),
        Command::Registry(RegistryCommand::Suggest(args)) => registry::suggest(cli, args),
        Command::Audit(AuditCommand::Verify(args)) => audit::verify(cli, args),
        Command::Pii(PiiCommand::Eval(args)) => pii::eval(cli, args),
    }
}

/// Configuration resolved from flags, environment and config file.
fn settings(cli: &Cli) -> Result<Settings> {
    let settings = config::resolve(&cli.global.overrides(), &ProcessEnv)?;
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    Ok(settings)
}

fn open_store(settings: &Settings) -> Result<Store> {
    Ok(Store::open(&settings.store)?)
}

fn load_registry(settings: &Settings) -> Result<Registry> {
    Ok(Registry::load(&settings.registry_path)?)
}

/// What a command about one release works with: configuration, registry, store, and the
/// release version (`--release-version`, default today's).
struct Release {
    settings: Settings,
    registry: Registry,
    store: Store,
    version: String,
}

impl Release {
    fn open(cli: &Cli, version: Option<&str>) -> Result<Self> {
        let settings = settings(cli)?;
        let registry = load_registry(&settings)?;
        let store = open_store(&settings)?;
        let version = version.map_or_else(gatehouse_core::release::default_version, str::to_string);
        Ok(Self {
            settings,
            registry,
            store,
            version,
        })
    }
}

/// Runs `f` with a listing spinner on a terminal.
fn with_progress<T>(cli: &Cli, f: impl FnOnce(&mut dyn FnMut(u64)) -> T) -> T {
    let bar = crate::print::listing_progress(cli.global.quiet || cli.global.json);
    let result = f(&mut |n| {
        if let Some(b) = &bar {
            b.set_position(n);
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    result
}
