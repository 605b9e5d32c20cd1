//! Requests for an S3 object by its exact key.
//!
//! rusty-s3's actions join the key onto the bucket's URL, and the URL parser
//! (the WHATWG rules the `url` crate implements, as every HTTP client here
//! does) then resolves `.` and `..` segments — also when written `%2E` — and
//! reads a key's leading `/` as the server's root: `a/../b` is sent as `b`, and
//! the server answers for another key. S3 allows all of these in keys. Here the
//! key is percent-encoded as SigV4 for S3 encodes it (every byte but
//! `A-Za-z0-9-._~`, and `/` kept), and a `/` beside a dot segment is sent as
//! `%2F`, so that no segment of the path is a dot segment and nothing can be
//! resolved away; the server decodes the path back to the key.
//!
//! The signature covers the key itself: S3 servers (AWS, Garage, s3s) take the
//! canonical path of SigV4 as the decoded key encoded again, `/` as `/` and
//! `..` as `..` — a path no URL can hold. So it is signed by AWS's own signer
//! (`aws-sigv4`, as the AWS SDKs sign S3 requests: single encoding, no path
//! normalisation) over that path, and the signature goes with the URL sent.

use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rusty_s3::{Bucket, Credentials, Map, Method};
use std::time::{Duration, SystemTime};
use url::Url;

/// What SigV4's `UriEncode` leaves alone: the unreserved characters.
const KEY_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The key as SigV4's canonical path holds it: each segment encoded, `/` kept.
fn canonical_key(key: &str) -> String {
    key.split('/')
        .map(|segment| utf8_percent_encode(segment, KEY_SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

fn encode_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, KEY_SEGMENT),
                utf8_percent_encode(v, KEY_SEGMENT)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn is_dot_segment(segment: &str) -> bool {
    segment == "." || segment == ".."
}

/// The path of `key` below the bucket's URL (see the module's comment).
/// `None`: the key is a single dot segment (`.` or `..`), which no URL can
/// carry past a URL parser in any encoding.
pub fn key_path(key: &str) -> Option<String> {
    let segments: Vec<&str> = key.split('/').collect();
    if segments.len() == 1 && is_dot_segment(key) {
        return None;
    }
    let mut path = String::with_capacity(key.len() * 3);
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            let beside_dots = is_dot_segment(segments[i - 1]) || is_dot_segment(segment);
            path.push_str(if beside_dots { "%2F" } else { "/" });
        }
        path.extend(utf8_percent_encode(segment, KEY_SEGMENT));
    }
    Some(path)
}

/// Why an object request could not be made, naming the key and what to do.
#[derive(Debug)]
pub enum ObjectUrlError {
    /// A key no URL can address.
    Unaddressable(String),
    /// The signer refused the request (a content type or metadata value that
    /// is no valid header, say).
    Unsignable { key: String, why: String },
}

impl std::fmt::Display for ObjectUrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectUrlError::Unaddressable(key) => write!(
                f,
                "object key {key:?} cannot be requested over HTTP (every URL parser resolves it \
                 to the bucket itself); rename the object"
            ),
            ObjectUrlError::Unsignable { key, why } => write!(
                f,
                "cannot sign the request for object {key:?}: {why} — check its content type and metadata"
            ),
        }
    }
}

impl std::error::Error for ObjectUrlError {}

/// A presigned URL for `method` on object `key` of `bucket`, with the query
/// parameters and headers that are signed with it.
pub fn object_url(
    bucket: &Bucket,
    credentials: &Credentials,
    method: Method,
    key: &str,
    query: &[(&str, &str)],
    headers: &Map<'_>,
    valid_for: Duration,
) -> Result<Url, ObjectUrlError> {
    let unaddressable = || ObjectUrlError::Unaddressable(key.to_owned());
    let unsignable = |why: String| ObjectUrlError::Unsignable {
        key: key.to_owned(),
        why,
    };
    let path = key_path(key).ok_or_else(unaddressable)?;
    // The bucket's URL ends in `/`; the key's path has no dot segment, so
    // parsing the two together keeps every byte of it.
    let url = Url::parse(&format!("{}{path}", bucket.base_url())).map_err(|_| unaddressable())?;
    let signed_uri = {
        let mut uri = format!("{}{}", bucket.base_url(), canonical_key(key));
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(&encode_query(query));
        }
        uri
    };
    presign(
        (method, signed_uri, headers),
        url,
        query,
        credentials,
        bucket.region(),
        valid_for,
    )
    .map_err(unsignable)
}

/// A presigned URL for ListBuckets: a GET on the service's root (`endpoint`,
/// where the buckets' URLs begin), which rusty-s3 has no action for.
pub fn list_buckets_url(
    endpoint: &Url,
    region: &str,
    credentials: &Credentials,
    valid_for: Duration,
) -> Result<Url, String> {
    let mut root = endpoint.clone();
    root.set_path("/");
    root.set_query(None);
    presign(
        (Method::Get, root.to_string(), &Map::new()),
        root,
        &[],
        credentials,
        region,
        valid_for,
    )
}

/// Signs `request` (method, the URI as SigV4 sees it, headers) with the
/// signature in the query, and puts `query` and the signature into `url`.
fn presign(
    request: (Method, String, &Map<'_>),
    mut url: Url,
    query: &[(&str, &str)],
    credentials: &Credentials,
    region: &str,
    valid_for: Duration,
) -> Result<Url, String> {
    let (method, signed_uri, headers) = request;
    let identity = aws_credential_types::Credentials::new(
        credentials.key(),
        credentials.secret(),
        credentials.token().map(str::to_owned),
        None,
        "backup-kit",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(valid_for);
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .expect("every signing parameter is set")
        .into();
    let request = SignableRequest::new(
        method.to_str(),
        signed_uri,
        headers.iter(),
        SignableBody::UnsignedPayload,
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let mut pairs: Vec<(&str, &str)> = query.to_vec();
    pairs.extend(instructions.params().iter().map(|(k, v)| (*k, v.as_ref())));
    url.set_query(Some(&encode_query(&pairs)));
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_keys_are_encoded_as_sigv4_encodes_them() {
        assert_eq!(
            key_path("docs/a b+c%.pdf").unwrap(),
            "docs/a%20b%2Bc%25.pdf"
        );
        assert_eq!(key_path("ü?#&=~_-.x").unwrap(), "%C3%BC%3F%23%26%3D~_-.x");
        assert_eq!(key_path("a//b/").unwrap(), "a//b/");
        assert_eq!(key_path("/lead").unwrap(), "/lead");
    }

    #[test]
    fn a_slash_beside_a_dot_segment_is_escaped_so_nothing_resolves_it_away() {
        assert_eq!(key_path("a/../b").unwrap(), "a%2F..%2Fb");
        assert_eq!(key_path("./x").unwrap(), ".%2Fx");
        assert_eq!(key_path("a/.").unwrap(), "a%2F.");
        assert_eq!(key_path("a/./../b/c").unwrap(), "a%2F.%2F..%2Fb/c");
        assert_eq!(key_path("..."), Some("...".into()), "not a dot segment");
        assert_eq!(key_path(".."), None);
        assert_eq!(key_path("."), None);
    }

    #[test]
    fn the_url_sent_keeps_the_whole_key() {
        let bucket = Bucket::new(
            "http://127.0.0.1:9000".parse().unwrap(),
            rusty_s3::UrlStyle::Path,
            "docs",
            "garage",
        )
        .unwrap();
        let creds = Credentials::new("k", "s");
        for (key, path) in [
            ("a/../b", "/docs/a%2F..%2Fb"),
            ("/x", "/docs//x"),
            ("//evil.example/x", "/docs///evil.example/x"),
            ("../../x", "..%2F..%2Fx"),
        ] {
            let url = object_url(
                &bucket,
                &creds,
                Method::Get,
                key,
                &[],
                &Map::new(),
                Duration::from_secs(60),
            )
            .unwrap();
            assert_eq!(url.host_str(), Some("127.0.0.1"), "{key}");
            assert!(url.path().ends_with(path), "{key}: {}", url.path());
            assert!(url.path().starts_with("/docs/"), "{key}: {}", url.path());
        }
    }
}
