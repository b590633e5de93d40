//! Reading the deploy form: one `manifest` part and a `component` part per
//! component, its framing checked as it arrives ([`FormGuard`]), each part
//! bounded, every refusal an [`ApiError`] naming what to send instead.

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{FromRequest, Multipart, Request};
use http::{StatusCode, header};
use stratus_control::{ControlError, Upload};
use stratus_manifest::{MAX_MANIFEST_SIZE, ManifestError};

use crate::error::ApiError;
use crate::form::{FormGuard, FramingError};

/// The longest boundary a form may have.
const MAX_BOUNDARY: usize = 70;

/// The deploy form of `request`, its framing checked as it arrives (see
/// [`FormGuard`]).
pub(crate) async fn deploy_form(request: Request) -> Result<Multipart, ApiError> {
    // The boundary as the extractor reads it.
    let boundary = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| multer::parse_boundary(value).ok());
    let request = match boundary {
        // RFC 2046's bound; the guard carries a boundary's length of bytes
        // from chunk to chunk, so a longer one would cost that per chunk.
        Some(boundary) if boundary.is_empty() || boundary.len() > MAX_BOUNDARY => {
            return Err(ApiError::bad_request(format!(
                "the form's boundary has {} characters; it must have 1 to {MAX_BOUNDARY} (RFC 2046)",
                boundary.len()
            )));
        }
        Some(boundary) => request.map(|body| FormGuard::wrap(body, &boundary)),
        // Not a form: the extractor refuses it.
        None => request,
    };
    Multipart::from_request(request, &())
        .await
        .map_err(form_rejected)
}

/// A request that is not a multipart form at all (no or a malformed
/// `boundary`), answered in the API's JSON error shape rather than axum's
/// plain-text rejection.
pub(crate) fn form_rejected(rejection: MultipartRejection) -> ApiError {
    ApiError::new(
        rejection.status(),
        "bad_request",
        format!(
            "{}; send the manifest and components as multipart/form-data",
            rejection.body_text()
        ),
    )
}

/// A well-formed form that is not a deploy: its parts are wrong, not its
/// framing (which is a 400), so it is unprocessable, as a bad manifest is.
fn invalid_upload(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_upload", message)
}

/// Reads the deploy form: one `manifest` part and a `component` part per
/// component, named by its file name. A part sent twice is refused rather
/// than one of them silently deployed.
pub(crate) async fn read_upload(
    mut multipart: Multipart,
    max_upload: usize,
) -> Result<Upload, ApiError> {
    let mut upload = Upload::default();
    let mut manifest = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(upload_error(e, max_upload)),
        };
        let name = field.name().unwrap_or_default().to_string();
        let file_name = field.file_name().map(str::to_string);
        match (name.as_str(), file_name) {
            ("manifest", _) => {
                if manifest.is_some() {
                    return Err(invalid_upload(
                        "the upload has more than one `manifest` part; send one",
                    ));
                }
                manifest = Some(read_manifest(field, max_upload).await?);
            }
            ("component", Some(path)) => {
                if upload.components.contains_key(&path) {
                    return Err(invalid_upload(format!(
                        "the upload has more than one `component` part named \"{path}\"; send each component once"
                    )));
                }
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| upload_error(e, max_upload))?;
                upload.components.insert(path, bytes);
            }
            ("component", None) => {
                return Err(invalid_upload(
                    "a `component` part has no file name; set it to the manifest's `component` value",
                ));
            }
            (other, _) => {
                return Err(invalid_upload(format!(
                    "unexpected upload part \"{other}\"; send one `manifest` part and `component` parts"
                )));
            }
        }
    }
    upload.manifest =
        manifest.ok_or_else(|| invalid_upload("the upload has no `manifest` part"))?;
    Ok(upload)
}

/// Reads the manifest part, keeping no more than `MAX_MANIFEST_SIZE` of it:
/// a larger one is refused (413) without being held in memory.
async fn read_manifest(mut field: Field<'_>, max_upload: usize) -> Result<String, ApiError> {
    let limit = MAX_MANIFEST_SIZE;
    let mut kept = Vec::new();
    let mut size = 0u64;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| upload_error(e, max_upload))?
    {
        // Counted to the end (the upload is bounded by --max-upload), so
        // the message can say how large the manifest is.
        size += chunk.len() as u64;
        if size <= limit.bytes() {
            kept.extend_from_slice(&chunk);
        }
    }
    if size > limit.bytes() {
        let e = ManifestError::TooLarge {
            file: "stratus.toml".into(),
            size,
            limit,
        };
        return Err(ControlError::Manifest(e).into());
    }
    String::from_utf8(kept).map_err(|_| invalid_upload("the manifest part is not UTF-8 text"))
}

/// A part of the upload that could not be read.
fn upload_error(e: MultipartError, max_upload: usize) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(error) = cause {
        if let Some(framing) = error.downcast_ref::<FramingError>() {
            return ApiError::bad_request(format!("malformed upload: {framing}"));
        }
        cause = error.source();
    }
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload_too_large",
            format!(
                "the upload is larger than this node accepts ({max_upload} bytes; see --max-upload)"
            ),
        );
    }
    ApiError::bad_request(format!("malformed upload: {}", e.body_text()))
}
