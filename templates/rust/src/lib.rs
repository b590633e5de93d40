//! The `{{name}}` function: answers every request under `/{{name}}` with a
//! plain-text greeting and the request's method and path.

use std::io::Write as _;

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Function;

wasip2::http::proxy::export!(Function);

impl Guest for Function {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let method = match request.method() {
            Method::Get => "GET".to_string(),
            Method::Head => "HEAD".to_string(),
            Method::Post => "POST".to_string(),
            Method::Put => "PUT".to_string(),
            Method::Delete => "DELETE".to_string(),
            Method::Patch => "PATCH".to_string(),
            Method::Options => "OPTIONS".to_string(),
            Method::Connect => "CONNECT".to_string(),
            Method::Trace => "TRACE".to_string(),
            Method::Other(other) => other,
        };
        let path = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let text = format!("Hello from {{name}}!\n{method} {path}\n");

        let headers = Fields::from_list(&[(
            "content-type".to_string(),
            b"text/plain; charset=utf-8".to_vec(),
        )])
        .expect("static header is valid");
        let response = OutgoingResponse::new(headers); // status 200
        let body = response.body().expect("body is taken only once");
        ResponseOutparam::set(response_out, Ok(response));
        {
            let mut out = body.write().expect("stream is taken only once");
            out.write_all(text.as_bytes()).expect("write response body");
            out.flush().expect("flush response body");
        } // the stream must be dropped before the body is finished
        OutgoingBody::finish(body, None).expect("finish response body");
    }
}
