//! `cargo xtask docs [--check]`: the README's tables of finding codes, rendered from the
//! registry (`gatehouse_core::report::codes`) between their `<!-- codes:NAME:begin -->` and
//! `<!-- codes:NAME:end -->` markers. With `--check`, nothing is written and a stale table
//! is an error that names it.

use anyhow::{Context, Result, bail};
use gatehouse_core::report::codes::readme;

use crate::repo_root;

pub fn docs(args: &[String]) -> Result<()> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => bail!("usage: cargo xtask docs [--check]"),
    };
    let path = repo_root().join("README.md");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let refreshed = readme::refresh(&text)
        .with_context(|| format!("{}: code table markers", path.display()))?;
    let stale = refreshed
        .stale
        .iter()
        .map(|name| format!("codes:{name}"))
        .collect::<Vec<_>>()
        .join(", ");
    if refreshed.stale.is_empty() {
        eprintln!("{}: code tables are current", path.display());
    } else if check {
        bail!(
            "{}: stale code table(s) {stale}; run `cargo xtask docs`",
            path.display()
        );
    } else {
        std::fs::write(&path, refreshed.text)
            .with_context(|| format!("write {}", path.display()))?;
        eprintln!("{}: rewrote {stale}", path.display());
    }
    Ok(())
}
