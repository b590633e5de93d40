//! The smallest useful Stratus function: answers every request with a
//! plain-text greeting followed by the request's method and path.
//!
//! ```text
//! Hello from Stratus!
//! GET /hello/world?x=1
//! ```

use std::io::Write as _;

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Hello;

wasip2::http::proxy::export!(Hello);

impl Guest for Hello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let method = request.method();
        let method = method_name(&method);
        let path = request.path_with_query().unwrap_or_else(|| "/".to_string());
        let text = format!("Hello from Stratus!\n{method} {path}\n");

        let headers = Fields::from_list(&[(
            "content-type".to_string(),
            b"text/plain; charset=utf-8".to_vec(),
        )])
        .expect("static header is valid");
        let response = OutgoingResponse::new(headers); // status defaults to 200
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

fn method_name(method: &Method) -> &str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(other) => other,
    }
}
