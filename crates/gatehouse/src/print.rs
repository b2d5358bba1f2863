//! Everything the binary prints: results on stdout, errors, hints and progress on stderr.
//! Only locators and counts are printed, never record content.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::IsTerminal;

use gatehouse_core::config::ConfigError;
use gatehouse_core::coverage::CoverageError;
use gatehouse_core::registry::RegistryError;
use gatehouse_core::release::ReleaseError;
use gatehouse_core::store::StoreError;
use indicatif::{ProgressBar, ProgressStyle};

/// Prints a line of results on stdout.
pub fn out(text: &str) {
    println!("{text}");
}

/// Flushes stdout (for lines a caller waits for, such as the address being served).
pub fn flush() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

/// Prints a status line on stderr.
pub fn note(text: &str) {
    eprintln!("{text}");
}

/// Prints a value as pretty JSON on stdout.
pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The known fix for an error, from the first error in the chain that has one.
fn hint(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|e| {
        if let Some(e) = e.downcast_ref::<StoreError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<ConfigError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<RegistryError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<CoverageError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<ReleaseError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<gatehouse_core::qa::QaError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<gatehouse_review::ServeError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<gatehouse_core::consume::ConsumeError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<gatehouse_core::audit::AuditError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<gatehouse_core::privacy::EvalError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<gatehouse_core::suggest::SuggestError>() {
            e.hint()
        } else {
            None
        }
    })
}

/// `error: …`, its causes, and a `hint:` line when one is known.
pub fn error(err: &anyhow::Error) {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if let Some(h) = hint(err) {
        eprintln!("hint: {h}");
    }
}

/// A spinner counting listed objects, shown only on a terminal.
pub fn listing_progress(quiet: bool) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} listing the store: {pos} objects")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}
