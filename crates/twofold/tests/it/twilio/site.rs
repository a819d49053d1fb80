//! A site standing for the server's webhooks, checking signatures with the product's check.

use super::*;

/// A webhook received by the [`Site`].
#[derive(Debug, Clone)]
pub(super) struct Received {
    pub(super) path: String,
    pub(super) params: Vec<(String, String)>,
    pub(super) signature_valid: bool,
}

impl Received {
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct SiteState {
    base: String,
    /// The address webhooks are signed over: `base`, or the public one in front of it.
    signed_base: String,
    token: String,
    documents: HashMap<String, String>,
    received: Mutex<Vec<Received>>,
}

/// A site standing for the server's webhooks: it checks `X-Twilio-Signature` with the
/// product's `signature::is_valid` over `base` + the path, answers 403 to a bad one, and
/// serves the TwiML documents it was given (by path); other paths get an empty answer.
pub(super) struct Site {
    state: Arc<SiteState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Site {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Site {
    pub(super) async fn start(token: &str, documents: &[(&str, &str)]) -> Site {
        Site::start_behind(token, None, documents).await
    }

    /// A site behind `public_base` (a load balancer's address): it checks signatures over
    /// that address, as a node behind one must.
    pub(super) async fn start_behind(
        token: &str,
        public_base: Option<&str>,
        documents: &[(&str, &str)],
    ) -> Site {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(SiteState {
            signed_base: public_base.map_or_else(|| base.clone(), str::to_owned),
            base,
            token: token.to_owned(),
            documents: documents
                .iter()
                .map(|(path, xml)| ((*path).to_owned(), (*xml).to_owned()))
                .collect(),
            received: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .fallback(site_webhook)
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Site { state, server }
    }

    pub(super) fn base(&self) -> &str {
        &self.state.base
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.state.base)
    }

    pub(super) fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub(super) fn received_at(&self, prefix: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
    }
}

async fn site_webhook(
    State(state): State<Arc<SiteState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = crate::twilio_standin::parse_form(&body);
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let header = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let full_url = format!("{}{path_and_query}", state.signed_base);
    let signature_valid = signature::is_valid(&state.token, &full_url, &params, header);
    state.received.lock().unwrap().push(Received {
        path: uri.path().to_owned(),
        params,
        signature_valid,
    });
    if !signature_valid {
        return StatusCode::FORBIDDEN.into_response();
    }
    match state.documents.get(uri.path()) {
        Some(xml) => ([("content-type", "text/xml")], xml.clone()).into_response(),
        None => ([("content-type", "text/xml")], "<Response/>").into_response(),
    }
}
