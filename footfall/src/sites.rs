//! `footfall sites add|remove|list`: the site registry from the command line, on a data
//! folder (standalone) or through a running server's `/api/sites` (any mode).

use anyhow::{bail, Context};
use processor::store::SqliteSites;
use protocol::sites::{AddSite, RegisteredSite, SiteList};
use protocol::time::format_rfc3339_millis;

use crate::cli::{SitesAction, SitesOpts};

pub fn run(opts: SitesOpts) -> anyhow::Result<()> {
    let action = match opts.action.clone() {
        SitesAction::Add { site } => SitesAction::Add {
            site: valid(&site)?,
        },
        SitesAction::Remove { site } => SitesAction::Remove {
            site: valid(&site)?,
        },
        SitesAction::List => SitesAction::List,
    };
    match &opts.server {
        Some(server) => through_api(server, opts.admin_token.as_deref(), &action),
        None => on_data_dir(&opts, &action),
    }
}

fn valid(site: &str) -> anyhow::Result<String> {
    protocol::validate::site(site.trim())
        .map_err(|e| anyhow::anyhow!("{site:?} is not a valid site name: {}", e.message))
}

fn on_data_dir(opts: &SitesOpts, action: &SitesAction) -> anyhow::Result<()> {
    let registry = SqliteSites::open(&opts.data_dir)
        .with_context(|| format!("cannot open the store in {}", opts.data_dir.display()))?;
    match action {
        SitesAction::Add { site } => {
            let added = registry.add(site)?;
            println!("{}", added_line(site, added));
        }
        SitesAction::Remove { site } => {
            if !registry.remove(site)? {
                bail!("{site} is not registered");
            }
            println!("removed {site}");
        }
        SitesAction::List => {
            for s in registry.list()? {
                println!("{}\t{}", s.site, format_rfc3339_millis(s.added_at));
            }
        }
    }
    Ok(())
}

fn added_line(site: &str, added: bool) -> String {
    if added {
        format!("added {site}")
    } else {
        format!("{site} was registered already")
    }
}

fn through_api(server: &str, token: Option<&str>, action: &SitesAction) -> anyhow::Result<()> {
    let token = token.filter(|t| !t.trim().is_empty()).context(
        "--server needs the server's admin token: --admin-token or FOOTFALL_ADMIN_TOKEN",
    )?;
    let base = server.trim_end_matches('/');
    let auth = format!("Bearer {}", token.trim());
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(10))
        .build();
    let answer = match action {
        SitesAction::Add { site } => agent
            .post(&format!("{base}/api/sites"))
            .set("Authorization", &auth)
            .send_json(serde_json::to_value(AddSite { site: site.clone() })?),
        SitesAction::Remove { site } => agent
            .delete(&format!("{base}/api/sites/{site}"))
            .set("Authorization", &auth)
            .call(),
        SitesAction::List => agent
            .get(&format!("{base}/api/sites"))
            .set("Authorization", &auth)
            .call(),
    };
    let resp = match answer {
        Ok(resp) => resp,
        Err(ureq::Error::Status(status, resp)) => {
            let body = resp.into_string().unwrap_or_default();
            bail!("{base} answered {status}: {body}");
        }
        Err(e) => bail!("cannot reach {base}: {e}"),
    };
    let status = resp.status();
    match action {
        SitesAction::Add { site } => println!("{}", added_line(site, status == 201)),
        SitesAction::Remove { site } => println!("removed {site}"),
        SitesAction::List => {
            let list: SiteList = resp.into_json().context("unexpected answer")?;
            for RegisteredSite { site, added_at } in list.sites {
                println!("{site}\t{added_at}");
            }
        }
    }
    Ok(())
}
