//! `/api/sites`: the site registry over HTTP, with the admin token (see `docs/API.md`).

use footfall_http::answer::{error, method_not_allowed};
use footfall_http::ResponseBody;
use http::header::AUTHORIZATION;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use protocol::sites::{AddSite, SiteList};
use protocol::time::format_rfc3339_millis;

use super::SiteRegistry;
use crate::api::{json, store_error, unauthorized};
use crate::auth::AdminToken;
use crate::store::RegisteredSite;

/// The largest `POST /api/sites` body: a site name is at most 253 characters.
const MAX_BODY_BYTES: usize = 4096;

/// See the module docs. Cheap to clone.
#[derive(Clone)]
pub struct SitesApi {
    registry: SiteRegistry,
    token: AdminToken,
}

fn api_site(s: RegisteredSite) -> protocol::sites::RegisteredSite {
    protocol::sites::RegisteredSite {
        site: s.site,
        added_at: format_rfc3339_millis(s.added_at),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl SitesApi {
    pub fn new(registry: SiteRegistry, token: AdminToken) -> Self {
        SitesApi { registry, token }
    }

    /// `/api/sites` and `/api/sites/<site>`.
    pub fn owns(path: &str) -> bool {
        path == "/api/sites" || path.starts_with("/api/sites/")
    }

    pub async fn handle(&self, req: Request<Incoming>) -> Response<ResponseBody> {
        let auth = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !self.token.verify_header(auth) {
            return unauthorized();
        }
        let path = req.uri().path().to_string();
        let one = path
            .strip_prefix("/api/sites/")
            .map(|s| s.trim_end_matches('/'));
        let result = match (req.method().clone(), one) {
            (Method::GET | Method::HEAD, None) => self.registry.list().await.map(|sites| {
                let sites = sites.into_iter().map(api_site).collect();
                json(StatusCode::OK, &SiteList { sites })
            }),
            (Method::POST, None) => return self.add(req).await,
            (Method::DELETE, Some(site)) if !site.is_empty() => {
                let site = match protocol::validate::site(site) {
                    Ok(site) => site,
                    Err(e) => {
                        return error(StatusCode::BAD_REQUEST, e.code, &e.message, Some("site"))
                    }
                };
                self.registry.remove(&site).await.map(|removed| {
                    if removed {
                        json(
                            StatusCode::OK,
                            &serde_json::json!({"success": true, "site": site}),
                        )
                    } else {
                        error(
                            StatusCode::NOT_FOUND,
                            "unknown_site",
                            "this site is not registered",
                            Some("site"),
                        )
                    }
                })
            }
            (_, None) => Ok(method_not_allowed("GET, HEAD, POST")),
            (_, Some(_)) => Ok(method_not_allowed("DELETE")),
        };
        result.unwrap_or_else(store_error)
    }

    async fn add(&self, req: Request<Incoming>) -> Response<ResponseBody> {
        let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "send {\"site\":\"example.com\"}",
                    None,
                )
            }
        };
        let asked: AddSite = match serde_json::from_slice(&body) {
            Ok(asked) => asked,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    "send {\"site\":\"example.com\"}",
                    None,
                )
            }
        };
        let site = match protocol::validate::site(asked.site.trim()) {
            Ok(site) => site,
            Err(e) => return error(StatusCode::BAD_REQUEST, e.code, &e.message, Some("site")),
        };
        match self.registry.add(&site, now_ms()).await {
            Ok(added) => {
                let entry = self
                    .registry
                    .snapshot()
                    .into_iter()
                    .find(|s| s.site == site)
                    .unwrap_or(RegisteredSite {
                        site,
                        added_at: now_ms(),
                    });
                let status = if added {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                json(status, &api_site(entry))
            }
            Err(e) => store_error(e),
        }
    }
}
