//! What `stratus deploy` shows on a terminal while the node works: a
//! progress bar while uploading, then a spinner on the function compiling
//! (from the node's `GET /v1/deploys`) and a line for each function once
//! its code is ready. Into a pipe nothing is drawn: the report alone.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::Method;
use stratus_control::{CompileState, DeployInProgress, FunctionProgress};

use crate::client::{Client, read_json};
use crate::output;

/// Upload size in chunks of this many bytes, the steps of the progress bar.
const CHUNK: usize = 256 * 1024;

/// How often the line is drawn again (the spinner's step).
const FRAME: Duration = Duration::from_millis(100);

/// How often the node is asked how its compile goes.
const POLL: Duration = Duration::from_millis(250);

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

const BAR_WIDTH: u64 = 24;

/// What stderr shows while a deploy runs on a terminal: a progress bar
/// while uploading; then, from the node's list of deploys in progress, a
/// spinner on the function compiling and a line for each function once its
/// code is ready. The spinner's line is cleared when this is dropped, before
/// the report or the error is printed.
pub(crate) struct Progress {
    state: Arc<Mutex<Shown>>,
    ticker: tokio::task::JoinHandle<()>,
}

struct Shown {
    total: u64,
    sent: u64,
    target: String,
    /// When the last byte went out.
    uploaded: Option<Instant>,
    started: Instant,
    frame: usize,
    /// The deploy as the node last showed it; `None` until it does (an
    /// older node, a token that may not read it, or not started yet).
    functions: Option<Vec<FunctionProgress>>,
    /// When the node last showed it: the time compiling counts on from
    /// there between looks.
    polled: Instant,
    /// Functions whose ready line is printed.
    printed: HashSet<String>,
}

impl Shown {
    fn line(&self) -> String {
        let spinner = SPINNER[self.frame % SPINNER.len()];
        let Some(at) = self.uploaded else {
            let filled = (self.sent * BAR_WIDTH)
                .checked_div(self.total)
                .unwrap_or(BAR_WIDTH);
            let filled = filled.min(BAR_WIDTH) as usize;
            return format!(
                "uploading {} to {} [{}{}] {:>3}%",
                output::bytes(self.total),
                self.target,
                "█".repeat(filled),
                "░".repeat(BAR_WIDTH as usize - filled),
                (self.sent * 100).checked_div(self.total).unwrap_or(100)
            );
        };
        let functions = self.functions.as_deref().unwrap_or_default();
        if let Some(f) = functions
            .iter()
            .find(|f| f.state == CompileState::Compiling)
        {
            return format!(
                "{spinner} {}  compiling {} ({:.1} s)",
                output::escape_line(&f.name),
                output::bytes(f.size),
                (f.compile_ms as f64 / 1000.0) + self.polled.elapsed().as_secs_f64()
            );
        }
        if !functions.is_empty() && functions.iter().all(|f| f.state == CompileState::Ready) {
            return format!("{spinner} activating the new version…");
        }
        format!(
            "{spinner} uploaded {}; the node is validating and compiling it ({} s)…",
            output::bytes(self.total),
            at.elapsed().as_secs()
        )
    }

    /// The lines of functions that became ready since the last call.
    fn newly_ready(&mut self) -> Vec<String> {
        let Some(functions) = &self.functions else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        for f in functions.iter().filter(|f| f.state == CompileState::Ready) {
            if !self.printed.insert(f.name.clone()) {
                continue;
            }
            let tier = f.tier.as_deref().unwrap_or("compiled");
            let how = match f.from_cache {
                Some(true) => format!("{tier} code, from the cache"),
                _ => format!(
                    "{tier} code, compiled in {:.1} s",
                    f.compile_ms as f64 / 1000.0
                ),
            };
            lines.push(format!("✓ {}  {how}", output::escape_line(&f.name)));
        }
        lines
    }

    fn show(&mut self) {
        let ready = self.newly_ready();
        let mut stderr = std::io::stderr().lock();
        for line in ready {
            let _ = writeln!(stderr, "\r\x1b[2K{line}");
        }
        let _ = write!(stderr, "\r\x1b[2K{}", self.line());
        let _ = stderr.flush();
    }

    fn upload_done(&mut self) {
        let at = Instant::now();
        self.uploaded = Some(at);
        let took = at.duration_since(self.started).as_secs_f64();
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(
            stderr,
            "\r\x1b[2K✓ uploaded {} to {} in {took:.1} s",
            output::bytes(self.total),
            self.target
        );
    }
}

impl Progress {
    /// Starts drawing; `app` is the manifest's app name, whose deploy the
    /// node's list is searched for.
    pub(crate) fn start(total: u64, target: &str, client: Arc<Client>, app: String) -> Progress {
        let mut shown = Shown {
            total,
            sent: 0,
            target: target.to_string(),
            uploaded: None,
            started: Instant::now(),
            frame: 0,
            functions: None,
            polled: Instant::now(),
            printed: HashSet::new(),
        };
        shown.show();
        let state = Arc::new(Mutex::new(shown));
        let ticking = state.clone();
        let ticker = tokio::spawn(async move {
            let mut last_poll: Option<Instant> = None;
            loop {
                tokio::time::sleep(FRAME).await;
                let uploaded = ticking.lock().is_ok_and(|s| s.uploaded.is_some());
                if uploaded && last_poll.is_none_or(|at| at.elapsed() >= POLL) {
                    last_poll = Some(Instant::now());
                    let found = deploy_of(&client, &app).await;
                    if let (Ok(mut shown), Some(found)) = (ticking.lock(), found) {
                        shown.functions = Some(found);
                        shown.polled = Instant::now();
                    }
                }
                if let Ok(mut shown) = ticking.lock() {
                    shown.frame += 1;
                    shown.show();
                }
            }
        });
        Progress { state, ticker }
    }

    /// The component as a body whose chunks move the bar on as they are sent.
    pub(crate) fn body(&self, bytes: Bytes) -> reqwest::Body {
        let state = self.state.clone();
        let chunks: Vec<Bytes> = (0..bytes.len())
            .step_by(CHUNK)
            .map(|start| bytes.slice(start..bytes.len().min(start + CHUNK)))
            .collect();
        let stream = futures_util::stream::iter(chunks).map(move |chunk| {
            if let Ok(mut shown) = state.lock() {
                shown.sent += chunk.len() as u64;
                if shown.sent >= shown.total && shown.uploaded.is_none() {
                    shown.upload_done();
                }
                shown.show();
            }
            Ok::<_, std::io::Error>(chunk)
        });
        reqwest::Body::wrap_stream(stream)
    }
}

/// The functions of `app`'s deploy in progress on the node, if it shows
/// one. Any failure is no answer: the display falls back to a plain line.
async fn deploy_of(client: &Client, app: &str) -> Option<Vec<FunctionProgress>> {
    let request = client.request(Method::GET, "/v1/deploys").timeout(POLL * 4);
    let response = client.send(request).await.ok()?;
    let deploys: Vec<DeployInProgress> = read_json(response).await.ok()?;
    // Keys outside `default` are `<namespace>/<name>`; the newest of the
    // app's deploys is this one, or one begun since, shown alike.
    deploys
        .into_iter()
        .rev()
        .find(|d| stratus_manifest::split_key(&d.app).1 == app)
        .map(|d| d.functions)
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.ticker.abort();
        if let Ok(mut shown) = self.state.lock() {
            // Functions the last look found ready keep their line.
            let ready = shown.newly_ready();
            let mut stderr = std::io::stderr().lock();
            for line in ready {
                let _ = writeln!(stderr, "\r\x1b[2K{line}");
            }
        }
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[2K");
        let _ = stderr.flush();
    }
}
