//! [`Router`]: several handlers on one address. Each route says which paths it owns; the
//! first route that owns a request's path answers it, and a path nobody owns gets the JSON
//! 404. The composition is built once, before serving, and never changes afterwards — so,
//! unlike a fallback stored inside a shared handler, it cannot be lost when a handler is
//! cloned.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::{answer, BoxFuture, Handler, ResponseBody};

type Owns = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// Handlers composed by path. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct Router {
    routes: Vec<(Owns, Arc<dyn Handler>)>,
}

impl Router {
    pub fn new() -> Self {
        Router::default()
    }

    /// Adds `handler` for every path `owns` says yes to. Routes are tried in the order they
    /// were added.
    pub fn route(
        mut self,
        owns: impl Fn(&str) -> bool + Send + Sync + 'static,
        handler: impl Handler,
    ) -> Self {
        self.routes.push((Box::new(owns), Arc::new(handler)));
        self
    }

    /// Adds `handler` for exactly these paths.
    pub fn paths(self, paths: &'static [&'static str], handler: impl Handler) -> Self {
        self.route(move |p| paths.contains(&p), handler)
    }

    /// Whether any route owns `path`.
    pub fn owns(&self, path: &str) -> bool {
        self.routes.iter().any(|(owns, _)| owns(path))
    }
}

impl Handler for Router {
    fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> BoxFuture<'static, Response<ResponseBody>> {
        let path = req.uri().path();
        match self.routes.iter().find(|(owns, _)| owns(path)) {
            Some((_, handler)) => handler.handle(req, peer),
            None => Box::pin(async { answer::not_found() }),
        }
    }
}
