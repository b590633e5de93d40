"""python-notes: a Stratus function in Python that keeps notes in a key-value
bucket and greets with a configuration value.

    PUT    /py/notes/<key>   stores the request body as the note <key>
    GET    /py/notes/<key>   the note (404 if there is none)
    DELETE /py/notes/<key>   removes the note
    GET    /py/notes         {"keys": [...]}, sorted
    GET    /py/hello         the `greeting` config value

Built with componentize-py against wit/world.wit, which imports
wasi:keyvalue/store and wasi:config/store and exports
wasi:http/incoming-handler; the manifest grants bucket "default" and sets
`greeting`. Errors are {"error": {"code": ..., "message": ...}}.
"""

import json
from typing import List, Optional, Tuple
from urllib.parse import unquote

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import wasi_config_store as config
from wit_world.imports import wasi_keyvalue_store as keyvalue
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    Method_Delete,
    Method_Get,
    Method_Put,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

BUCKET = "default"
PREFIX = "/py/notes"
# The longest key this function accepts, in bytes.
MAX_KEY = 256
# `blocking-write-and-flush` takes at most 4096 bytes at a time.
WRITE_CHUNK = 4096

Headers = List[Tuple[str, bytes]]


class HttpError(Exception):
    """An answer other than 200, raised anywhere in a handler."""

    def __init__(self, status: int, code: str, message: str, headers: Optional[Headers] = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        try:
            status, headers, body = route(request)
        except HttpError as e:
            status, headers, body = e.status, e.headers, error_body(e.code, e.message)
            headers = headers + [("content-type", b"application/json")]
        respond(response_out, status, headers, body)


def route(request: IncomingRequest) -> Tuple[int, Headers, bytes]:
    path = (request.path_with_query() or "/").split("?", 1)[0]
    method = request.method()
    if path == "/py/hello":
        allow(method, [Method_Get], "GET")
        return 200, text(), (greeting() + "\n").encode()
    if path in (PREFIX, PREFIX + "/"):
        allow(method, [Method_Get], "GET")
        return 200, json_type(), json.dumps({"keys": list_keys(open_bucket())}).encode()
    if path.startswith(PREFIX + "/"):
        key = note_key(path[len(PREFIX) + 1 :])
        allow(method, [Method_Get, Method_Put, Method_Delete], "GET, PUT, DELETE")
        bucket = open_bucket()
        if isinstance(method, Method_Put):
            data = read_body(request)
            kv(lambda: bucket.set(key, data))
            return 200, json_type(), json.dumps({"key": key, "bytes": len(data)}).encode()
        if isinstance(method, Method_Delete):
            kv(lambda: bucket.delete(key))
            return 204, [], b""
        value = kv(lambda: bucket.get(key))
        if value is None:
            raise HttpError(404, "note_not_found", f"there is no note {key!r}")
        return 200, text(), value
    raise HttpError(404, "not_found", f"no route for {path}; try /py/hello or /py/notes")


def allow(method, allowed, names: str) -> None:
    if not any(isinstance(method, m) for m in allowed):
        raise HttpError(405, "method_not_allowed", f"use {names}", [("allow", names.encode())])


def note_key(raw: str) -> str:
    key = unquote(raw)
    if not key or "/" in key or len(key.encode()) > MAX_KEY:
        raise HttpError(
            400,
            "invalid_key",
            f"a note key is one path segment of 1 to {MAX_KEY} bytes, not {key!r}",
        )
    return key


def greeting() -> str:
    try:
        value = config.get("greeting")
    except Err as e:
        raise HttpError(500, "config_error", f"cannot read config value greeting: {e.value}")
    if value is None:
        raise HttpError(500, "missing_config", 'config value greeting is not set; add config = { greeting = "..." }')
    return value


def open_bucket() -> keyvalue.Bucket:
    return kv(lambda: keyvalue.open(BUCKET))


def list_keys(bucket: keyvalue.Bucket) -> List[str]:
    keys: List[str] = []
    cursor: Optional[int] = None
    while True:
        page = kv(lambda: bucket.list_keys(cursor))
        keys.extend(page.keys)
        if page.cursor is None:
            return sorted(keys)
        cursor = page.cursor


def kv(operation):
    """Runs a key-value call; a host error becomes a 500 that says which."""
    try:
        return operation()
    except Err as e:
        error = e.value
        if isinstance(error, keyvalue.Error_AccessDenied):
            detail = f'bucket {BUCKET!r} is not granted; add keyvalue = ["{BUCKET}"]'
        elif isinstance(error, keyvalue.Error_NoSuchStore):
            detail = f"there is no bucket {BUCKET!r}"
        else:
            detail = getattr(error, "value", repr(error))
        raise HttpError(500, "keyvalue_error", f"key-value: {detail}")


def read_body(request: IncomingRequest) -> bytes:
    chunks = []
    with request.consume() as body, body.stream() as stream:
        while True:
            try:
                chunks.append(stream.blocking_read(65536))
            except Err as e:
                if isinstance(e.value, StreamError_Closed):
                    break
                raise HttpError(400, "bad_body", "the request body could not be read")
    return b"".join(chunks)


def respond(response_out: ResponseOutparam, status: int, headers: Headers, body: bytes) -> None:
    response = OutgoingResponse(Fields.from_list(headers))
    response.set_status_code(status)
    out = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    with out.write() as stream:
        for start in range(0, len(body), WRITE_CHUNK):
            stream.blocking_write_and_flush(body[start : start + WRITE_CHUNK])
    OutgoingBody.finish(out, None)


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def text() -> Headers:
    return [("content-type", b"text/plain; charset=utf-8")]


def json_type() -> Headers:
    return [("content-type", b"application/json")]
