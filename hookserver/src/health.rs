//! The liveness and readiness routes ([`Hooks::health_routes`](crate::Hooks::health_routes)).
//!
//! `health` answers `200` while the process serves. `ready` answers `200` when a
//! delivery can be accepted now, else `503`, and its JSON body names what is not
//! ready and since when. It reads the allow-list from `meta`'s snapshot (no lock,
//! nothing added to a delivery's path) and asks the journal for a write it does
//! not make (`Store::probe`), at most once a second however often it is probed.

use crate::{
    journal::{recent::Recent, store::Store},
    meta::MetaCache,
    pipeline::Parts,
};
use axum::{
    Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use std::{
    sync::{Arc, Mutex},
    time::SystemTime,
};

/// What readiness depends on, taken from a registry's parts.
pub(crate) struct Readiness {
    allow_list: ListSource,
    journal: Option<Arc<dyn Store>>,
    last_probe: Recent<()>,
    since: Mutex<Since>,
}

enum ListSource {
    /// Source-IP checking is off.
    Off,
    /// `HOOKSERVER_ALLOWED_IPS`: always there.
    Fixed,
    /// GitHub's `/meta`.
    Meta(Arc<MetaCache>),
}

/// When each check was first seen failing, since it last passed.
#[derive(Default)]
struct Since {
    allow_list: Option<SystemTime>,
    journal: Option<SystemTime>,
}

/// The body of both answers of `ready`.
#[derive(Serialize)]
struct Report {
    /// `ok` or `unavailable`.
    status: &'static str,
    /// `ok`, `off`, `static`, or why deliveries are refused.
    allow_list: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_list_since: Option<String>,
    /// Seconds since GitHub last gave (or confirmed) the list.
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_list_age_secs: Option<u64>,
    /// `ok`, or why the last request to `/meta` failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_list_last_refresh: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allow_list_last_refresh_at: Option<String>,
    /// `ok`, `off`, or why a write cannot be made.
    journal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    journal_since: Option<String>,
}

impl Readiness {
    pub(crate) fn new(parts: &Parts) -> Self {
        let allow_list = match parts.source() {
            None => ListSource::Off,
            Some(source) => match source.meta() {
                None => ListSource::Fixed,
                Some(meta) => ListSource::Meta(meta),
            },
        };
        Self {
            allow_list,
            journal: parts.journal_store(),
            last_probe: Recent::new(),
            since: Mutex::new(Since::default()),
        }
    }

    /// The journal's probe, or the last one when it is recent (and the one in
    /// flight, for probes that arrive while it runs).
    async fn journal(&self) -> Option<Result<(), String>> {
        let store = self.journal.as_ref()?;
        Some(self.last_probe.get(|| store.probe()).await)
    }

    async fn report(&self) -> (bool, Report) {
        let now = SystemTime::now();
        let mut report = Report {
            status: "ok",
            allow_list: "ok".into(),
            allow_list_since: None,
            allow_list_age_secs: None,
            allow_list_last_refresh: None,
            allow_list_last_refresh_at: None,
            journal: "off".into(),
            journal_since: None,
        };
        let list_ok = match &self.allow_list {
            ListSource::Off => {
                report.allow_list = "off".into();
                true
            }
            ListSource::Fixed => {
                report.allow_list = "static".into();
                true
            }
            ListSource::Meta(meta) => {
                let status = meta.status();
                report.allow_list_age_secs = status
                    .fetched_at
                    .map(|at| now.duration_since(at).unwrap_or_default().as_secs());
                if let Some((at, result)) = &status.last_refresh {
                    report.allow_list_last_refresh = Some(match result {
                        Ok(()) => "ok".into(),
                        Err(why) => format!("failed: {why}"),
                    });
                    report.allow_list_last_refresh_at = Some(httpdate::fmt_http_date(*at));
                }
                match status.usable {
                    Ok(()) => true,
                    Err(answer) => {
                        report.allow_list = if status.ever_fetched {
                            format!("list expired: {answer}")
                        } else {
                            format!("no list yet: {answer}")
                        };
                        false
                    }
                }
            }
        };
        let journal_ok = match self.journal().await {
            None => true,
            Some(Ok(())) => {
                report.journal = "ok".into();
                true
            }
            Some(Err(why)) => {
                report.journal = why;
                false
            }
        };
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        let mark = |slot: &mut Option<SystemTime>, ok: bool| {
            if ok {
                *slot = None;
                None
            } else {
                Some(httpdate::fmt_http_date(*slot.get_or_insert(now)))
            }
        };
        report.allow_list_since = mark(&mut since.allow_list, list_ok);
        report.journal_since = mark(&mut since.journal, journal_ok);
        let ready = list_ok && journal_ok;
        if !ready {
            report.status = "unavailable";
        }
        (ready, report)
    }
}

/// The two routes, on the paths the user chose.
pub(crate) fn router(readiness: Readiness, health: &str, ready: &str) -> Router {
    Router::new()
        .route(health, get(live))
        .route(ready, get(is_ready))
        .with_state(Arc::new(readiness))
}

async fn live() -> Response {
    json(StatusCode::OK, br#"{"status":"ok"}"#.to_vec())
}

async fn is_ready(State(readiness): State<Arc<Readiness>>) -> Response {
    let (ready, report) = readiness.report().await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::to_vec(&report).expect("a report of strings and numbers serializes");
    json(status, body)
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
