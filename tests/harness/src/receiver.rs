//! A local HTTP server that records every request (method, URL, headers,
//! body) and answers as the test says: the hooks' and the notification
//! services' stand-in.

use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// `METHOD url`, as a line to compare.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.url)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} sent no JSON ({e}): {}", self.line(), self.text()))
    }
}

/// The answer to a request: status and body.
pub type Answer = Box<dyn Fn(&Request) -> (u16, String) + Send + 'static>;

pub struct Receiver {
    pub url: String,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    /// Answers `200 OK` to everything.
    pub fn start() -> Receiver {
        Receiver::answering(Box::new(|_| (200, "OK".into())))
    }

    pub fn answering(answer: Answer) -> Receiver {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for mut request in server.incoming_requests() {
                let mut body = Vec::new();
                let _ = request.as_reader().read_to_end(&mut body);
                let r = Request {
                    method: request.method().to_string(),
                    url: request.url().to_owned(),
                    headers: request
                        .headers()
                        .iter()
                        .map(|h| (h.field.to_string(), h.value.to_string()))
                        .collect(),
                    body,
                };
                let (status, text) = answer(&r);
                log.lock().unwrap().push(r);
                let _ = request
                    .respond(tiny_http::Response::from_string(text).with_status_code(status));
            }
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}"),
            seen,
        }
    }

    /// `host:port`, for URLs of other schemes.
    pub fn authority(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// The requests since the last call.
    pub fn take(&self) -> Vec<Request> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}
