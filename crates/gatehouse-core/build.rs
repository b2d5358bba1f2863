//! Records the git commit gatehouse is built from, for the manifest's `tool.git_commit`.
//! `GATEHOUSE_GIT_COMMIT` set in the build environment wins (for builds outside a checkout);
//! without either, the manifest says `unknown`.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GATEHOUSE_GIT_COMMIT");
    if std::env::var_os("GATEHOUSE_GIT_COMMIT").is_some() {
        return; // option_env! reads it directly
    }
    let Ok(manifest_dir) = std::env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let root = Path::new(&manifest_dir).join("../..");
    let git = root.join(".git");
    if !git.exists() {
        return;
    }
    // Rebuild when HEAD moves: the HEAD file, and the branch ref it names (loose or packed).
    // In a linked worktree `.git` is a file naming the real git directory: the commit is
    // still read, but a new commit there is picked up at the next rebuild of this crate.
    if git.is_dir() {
        println!("cargo:rerun-if-changed={}", git.join("HEAD").display());
        if let Ok(head) = std::fs::read_to_string(git.join("HEAD"))
            && let Some(reference) = head.strip_prefix("ref: ")
        {
            let loose = git.join(reference.trim());
            if loose.exists() {
                println!("cargo:rerun-if-changed={}", loose.display());
            }
            let packed = git.join("packed-refs");
            if packed.exists() {
                println!("cargo:rerun-if-changed={}", packed.display());
            }
        }
    }
    let Ok(out) = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&root)
        .output()
    else {
        return;
    };
    let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()) {
        println!("cargo:rustc-env=GATEHOUSE_GIT_COMMIT={commit}");
    }
}
