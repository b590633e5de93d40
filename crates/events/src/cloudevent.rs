//! CloudEvents 1.0, HTTP binary content mode.

use bytes::Bytes;
use http::{Method, header};
use stratus_queue::Delivery;

/// The request that delivers `d` to its function.
pub fn request_for(d: &Delivery) -> Result<http::Request<Bytes>, http::Error> {
    let mut request = http::Request::builder()
        .method(Method::POST)
        .uri(&d.path)
        .header("ce-specversion", "1.0")
        .header("ce-id", &d.id)
        .header("ce-source", &d.source)
        .header("ce-type", &d.kind)
        .header("ce-time", stratus_ledger::record::format_time(d.time));
    if let Some(subject) = &d.subject {
        request = request.header("ce-subject", subject);
    }
    if let Some(content_type) = &d.content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    request.body(Bytes::from(d.data.clone()))
}
