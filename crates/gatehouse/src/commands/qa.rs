//! `gatehouse qa`.

use anyhow::Result;
use gatehouse_core::qa;
use gatehouse_core::registry::ReviewType;
use gatehouse_core::release;
use std::sync::Arc;
use std::time::Duration;

use super::Release;
use crate::cli::{
    Cli, QaImportArgs, QaInviteArgs, QaKeygenArgs, QaRevokeArgs, QaSampleArgs, QaServeArgs,
    QaSignArgs, QaSignoffArgs, ReviewerType,
};
use crate::exit::Code;
use crate::print;

/// The location of a release the qa commands may write into: never a published one.
fn draft_location(store: &gatehouse_core::store::Store, version: &str) -> Result<String> {
    release::refuse_published(store, version)?;
    Ok(release::location(store, version))
}

pub fn sample(cli: &Cli, args: &QaSampleArgs) -> Result<Code> {
    let Release {
        settings,
        registry,
        store,
        version,
    } = Release::open(cli, args.release_version.as_deref())?;
    let location = draft_location(&store, &version)?;
    let max_line = settings.build.limits.max_export_line();
    let out = qa::sample(&store, &registry, &location, &settings.qa, max_line)?;
    let s = &out.samples;
    if cli.global.json {
        print::json(&serde_json::json!({
            "release_version": s.release_version,
            "release_digest": s.release_digest,
            "groups": s.groups,
            "samples": s.samples.len(),
            "review_types_without_samples": s.review_types_without_samples,
            "privacy_spot_check": s.privacy_spot_check,
            "written": out.written,
        }))?;
    } else {
        print::out(&format!(
            "qa sample: {} records from {} family × split groups (seed {}, rate {}, {}–{} per group), bound to {}",
            s.samples.len(),
            s.groups.len(),
            s.rule.seed,
            s.rule.rate,
            s.rule.min,
            s.rule.max,
            s.release_digest
        ));
        for g in &s.groups {
            print::out(&format!(
                "          {} {}: {} of {} ({})",
                g.family,
                g.split,
                g.size,
                g.population,
                g.review_types
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        match &s.privacy_spot_check {
            Some(d) => print::out(&format!(
                "          privacy spot-check: {} of {} records (the privacy gate's sample: seed {}, rate {}, max {}), review type privacy_spot_check",
                d.size, d.population, d.seed, d.rate, d.max
            )),
            None => print::note(
                "the privacy gate has not run on this build, so the packets hold no privacy spot-check and the signoff cannot approve: run `gatehouse gates`, then `gatehouse qa sample` again",
            ),
        }
        for key in &out.written {
            print::out(&format!("  wrote {}", store.locate(key)));
        }
    }
    if s.review_types_without_samples.is_empty() {
        Ok(Code::Ok)
    } else {
        print::note(&format!(
            "review types without any sampled record: {} (map them to a family in the registry's `review`; exit 1)",
            s.review_types_without_samples
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Ok(Code::Blocked)
    }
}

pub fn import(cli: &Cli, args: &QaImportArgs) -> Result<Code> {
    let Release {
        settings,
        store,
        version,
        ..
    } = Release::open(cli, args.release_version.as_deref())?;
    let location = draft_location(&store, &version)?;
    let bytes = std::fs::read(&args.file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?;
    let is_csv = args
        .file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    // A CSV holds any number of reviewers; each becomes one review file. All are checked
    // before any is stored.
    let files: Vec<Vec<u8>> = if is_csv {
        qa::reviews_from_csv(&bytes)?
            .iter()
            .map(serde_json::to_vec_pretty)
            .collect::<Result<_, _>>()?
    } else {
        vec![bytes]
    };
    let default_sig = {
        let mut p = args.file.clone().into_os_string();
        p.push(".sig");
        std::path::PathBuf::from(p)
    };
    let sig_path = args
        .signature
        .clone()
        .or_else(|| default_sig.is_file().then_some(default_sig));
    let signature = match &sig_path {
        None => None,
        Some(_) if is_csv => anyhow::bail!(
            "a signature covers one reviewer's JSON file; a CSV is imported as operator-attested \
             (hint: have each reviewer sign their JSON review file with `gatehouse qa sign`)"
        ),
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
        ),
    };
    let actor = gatehouse_core::audit::actor();
    let mut stored = Vec::new();
    for f in &files {
        qa::check_import(&store, &location, f, &settings.qa, signature.as_deref())?;
    }
    for f in &files {
        stored.push(qa::import(
            &store,
            &location,
            f,
            &settings.qa,
            signature.as_deref(),
            &actor,
        )?);
    }
    let how = if signature.is_some() {
        "signed by the reviewer's registered key".to_string()
    } else if settings.qa.count_attested.unwrap_or(false) {
        format!("operator-attested by {actor} (counted: [qa] count_attested = true)")
    } else {
        format!(
            "operator-attested by {actor}: NOT counted in the signoff unless [qa] count_attested \
             = true (reviewers can sign their files: `gatehouse qa keygen`, `qa sign`)"
        )
    };
    if cli.global.json {
        print::json(&serde_json::json!({ "stored": stored }))?;
    } else {
        for key in &stored {
            print::out(&format!("qa import: stored {}", store.locate(key)));
        }
        print::out(&format!("  {how}"));
    }
    Ok(Code::Ok)
}

pub fn signoff(cli: &Cli, args: &QaSignoffArgs) -> Result<Code> {
    let Release {
        settings,
        store,
        version,
        ..
    } = Release::open(cli, args.release_version.as_deref())?;
    let location = draft_location(&store, &version)?;
    let (record, written) = qa::signoff(&store, &location, &settings.qa)?;
    if cli.global.json {
        print::json(&serde_json::json!({ "signoff": record, "written": written }))?;
    } else {
        print::out(&format!(
            "qa signoff {}: {} reviewer(s), {} exception(s), {} flagged record(s), bound to {}",
            record.decision,
            record.reviewers.len(),
            record.exceptions.len(),
            record.blocklist.len(),
            record.release_digest
        ));
        for r in &record.results {
            print::out(&format!(
                "          {}: {} of {} samples complete ({} reviewer(s) each), {} of {} reviews pass, mean {:.2}",
                r.review_type.as_str(),
                r.samples_complete,
                r.samples,
                r.reviewers_required,
                r.reviews_passing,
                r.reviews,
                r.mean_overall
            ));
        }
        let p = &record.privacy_spot_check;
        if p.drawn {
            let by_type: Vec<String> = p
                .marks_by_type
                .iter()
                .map(|(k, n)| format!("{} {n}", k.as_str()))
                .collect();
            print::out(&format!(
                "          privacy_spot_check: {} of {} records reviewed, {} with an identifier left{}; residual-identifier rate {} (95% upper bound {})",
                p.records_reviewed,
                p.records,
                p.records_with_miss,
                if by_type.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", by_type.join(", "))
                },
                p.residual_identifier_rate
                    .map_or_else(|| "n/a".into(), |r| format!("{r:.4}")),
                p.residual_identifier_rate_upper_95
                    .map_or_else(|| "n/a".into(), |r| format!("{r:.4}")),
            ));
        }
        for reason in &record.reasons {
            print::out(&format!("          not approved: {reason}"));
        }
        for key in &written {
            print::out(&format!("  wrote {}", store.locate(key)));
        }
    }
    Ok(if record.decision == "approved" {
        Code::Ok
    } else {
        Code::Blocked
    })
}

pub fn invite(cli: &Cli, args: &QaInviteArgs) -> Result<Code> {
    let Release {
        store,
        version,
        settings,
        ..
    } = Release::open(cli, args.release_version.as_deref())?;
    let days = args
        .expires_days
        .or(settings.qa.invitation_days)
        .unwrap_or(qa::reviewers::DEFAULT_INVITATION_DAYS);
    let location = draft_location(&store, &version)?;
    let role = match args.role {
        ReviewerType::ClinicianFoundation => ReviewType::ClinicianFoundation,
        ReviewerType::ClinicianEdge => ReviewType::ClinicianEdge,
        ReviewerType::BiasCultural => ReviewType::BiasCultural,
        ReviewerType::PrivacySpotCheck => ReviewType::PrivacySpotCheck,
    };
    let inv = qa::reviewers::invite(
        &store,
        &location,
        &args.name,
        role,
        args.max_samples,
        days,
        args.public_key.as_deref(),
    )?;
    let link = format!(
        "{}/login?token={}",
        args.base_url.trim_end_matches('/'),
        inv.token
    );
    if cli.global.json {
        print::json(&serde_json::json!({
            "reviewer_id": inv.reviewer.id,
            "review_type": role,
            "assignments": inv.reviewer.assignments.len(),
            "token": inv.token,
            "link": link,
            "expires_at": inv.reviewer.expires_at,
        }))?;
    } else {
        print::out(&format!(
            "qa invite: {} ({}) as {} reviewer, {} sample(s) assigned",
            inv.reviewer.name,
            inv.reviewer.id,
            role.as_str(),
            inv.reviewer.assignments.len()
        ));
        print::out(&format!(
            "  sign-in link (shown once; send it privately): {link}"
        ));
        print::out(&format!(
            "  valid until {} (`gatehouse qa revoke --reviewer {}` ends it sooner)",
            inv.reviewer.expires_at.as_deref().unwrap_or("-"),
            inv.reviewer.id
        ));
        print::out(&format!(
            "  serve the app with `gatehouse qa serve --release-version {version}`"
        ));
    }
    Ok(Code::Ok)
}

pub fn keygen(cli: &Cli, args: &QaKeygenArgs) -> Result<Code> {
    let (private, public) = qa::proof::keygen()?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&args.out).map_err(|e| {
        anyhow::anyhow!(
            "cannot create {}: {e} (hint: choose a new file; an existing key is never overwritten)",
            args.out.display()
        )
    })?;
    std::io::Write::write_all(&mut f, private.as_bytes())?;
    if cli.global.json {
        print::json(&serde_json::json!({ "public_key": public, "private_key_file": args.out }))?;
    } else {
        print::out(&format!(
            "qa keygen: private key written to {} (keep it to yourself)",
            args.out.display()
        ));
        print::out(&format!(
            "  public key (give it to the release manager): {public}"
        ));
    }
    Ok(Code::Ok)
}

pub fn sign(cli: &Cli, args: &QaSignArgs) -> Result<Code> {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?;
    let key = std::fs::read_to_string(&args.key)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.key.display()))?;
    let signature = qa::proof::sign(&key, &bytes)?;
    let mut out = args.file.clone().into_os_string();
    out.push(".sig");
    let out = std::path::PathBuf::from(out);
    std::fs::write(&out, format!("{signature}\n"))?;
    if cli.global.json {
        print::json(&serde_json::json!({ "signature_file": out, "signature": signature }))?;
    } else {
        print::out(&format!(
            "qa sign: wrote {} (send it with the file; any change to the file voids it)",
            out.display()
        ));
    }
    Ok(Code::Ok)
}

pub fn revoke(cli: &Cli, args: &QaRevokeArgs) -> Result<Code> {
    let Release { store, version, .. } = Release::open(cli, args.release_version.as_deref())?;
    let location = draft_location(&store, &version)?;
    let r = qa::reviewers::revoke(&store, &location, &args.reviewer)?;
    if cli.global.json {
        print::json(&serde_json::json!({
            "revoked": r.id,
            "review_type": r.review_type,
            "revoked_at": r.revoked_at,
        }))?;
    } else {
        print::out(&format!(
            "qa revoke: {} ({}) can no longer sign in; a running `qa serve` ends their sessions \
             at their next request; their reviews no longer count (run `gatehouse qa signoff` again)",
            r.name, r.id
        ));
    }
    Ok(Code::Ok)
}

pub fn serve(cli: &Cli, args: &QaServeArgs) -> Result<Code> {
    let Release {
        settings,
        store,
        version,
        ..
    } = Release::open(cli, args.release_version.as_deref())?;
    let location = draft_location(&store, &version)?;
    let policy = gatehouse_review::SessionPolicy {
        idle: Duration::from_secs(args.session_idle_minutes.max(1) * 60),
        max_age: Duration::from_secs(args.session_max_hours.max(1) * 3600),
        secure_cookie: args.secure_cookie,
    };
    let app = gatehouse_review::App::load(store, &location, settings.qa.clone(), policy)?;
    let digest = app.release_digest().to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let json = cli.global.json;
    let limits = gatehouse_review::ConnLimits {
        header_read: Duration::from_secs(args.header_timeout_secs.max(1)),
        idle: Duration::from_secs(args.idle_timeout_secs.max(1)),
        per_ip: args.max_connections_per_ip.max(1),
        total: args.max_connections.max(1),
        ..gatehouse_review::ConnLimits::default()
    };
    runtime.block_on(gatehouse_review::serve(
        Arc::new(app),
        &args.listen,
        limits,
        |addr| {
            if json {
                let _ = print::json(&serde_json::json!({
                    "listening": format!("http://{addr}"),
                    "release_version": version,
                    "release_digest": digest,
                }));
            } else {
                print::out(&format!(
                    "qa serve: release {version} ({digest}) on http://{addr}; Ctrl-C stops it"
                ));
            }
            print::flush();
        },
        // Ctrl-C ends the process (main's handler); every save is already in the store.
        std::future::pending(),
    ))?;
    Ok(Code::Ok)
}
