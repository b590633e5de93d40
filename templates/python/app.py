"""The `{{name}}` function: answers every request under `/{{name}}` with a
plain-text greeting and the request's method and path.

Built with componentize-py against wit/world.wit (see README.md); the
bindings it generates are the `wit_world` package.
"""

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

# `blocking-write-and-flush` takes at most 4096 bytes at a time.
WRITE_CHUNK = 4096


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        method = type(request.method()).__name__.removeprefix("Method_").upper()
        path = request.path_with_query() or "/"
        text = f"Hello from {{name}}!\n{method} {path}\n"
        respond(response_out, 200, "text/plain; charset=utf-8", text.encode())


def respond(response_out: ResponseOutparam, status: int, content_type: str, body: bytes) -> None:
    response = OutgoingResponse(Fields.from_list([("content-type", content_type.encode())]))
    response.set_status_code(status)
    out = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    with out.write() as stream:
        for start in range(0, len(body), WRITE_CHUNK):
            stream.blocking_write_and_flush(body[start : start + WRITE_CHUNK])
    OutgoingBody.finish(out, None)
