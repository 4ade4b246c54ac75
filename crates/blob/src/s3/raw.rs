//! The few S3 requests `object_store` does not offer, sent through its HTTP client and
//! signed with its SigV4 signer: a server-side copy that replaces the storage class and
//! metadata (`set_class`), ListObjectsV2 with each object's storage class (`usage`), and
//! bucket HEAD/PUT (`ping`, `create_bucket`).

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use object_store::aws::{AwsAuthorizer, AwsCredential};
use object_store::client::{HttpClient, HttpRequestBody};
use serde::Deserialize;
use url::Url;

use crate::error::{BlobError, Result};

/// A signed-request client for one bucket.
#[derive(Debug)]
pub(crate) struct RawClient {
    http: HttpClient,
    /// The bucket's root URL, ending in `/`: `{endpoint}/{bucket}/` (path style) or
    /// `https://{bucket}.s3.{region}.amazonaws.com/`.
    base: Url,
    bucket: String,
    region: String,
    credential: Option<AwsCredential>,
    max_retries: usize,
    retry_timeout: Duration,
}

/// A response with its body read.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub status: StatusCode,
    pub body: Bytes,
}

impl RawResponse {
    /// The S3 error code and message of an error body, or the status when there is none.
    pub fn describe(&self) -> String {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct ErrorBody {
            code: Option<String>,
            message: Option<String>,
        }
        let text = String::from_utf8_lossy(&self.body);
        match quick_xml::de::from_str::<ErrorBody>(&text) {
            Ok(ErrorBody { code: Some(code), message }) => {
                format!("{} {code}: {}", self.status, message.unwrap_or_default())
            }
            _ => format!("{} {}", self.status, text.chars().take(200).collect::<String>()),
        }
    }

    /// Whether the body is an S3 `<Error>` document: CopyObject may answer 200 with one when
    /// it fails after the response started.
    pub fn is_error_document(&self) -> bool {
        let head = &self.body[..self.body.len().min(512)];
        String::from_utf8_lossy(head).contains("<Error>")
    }
}

/// One object of a listing.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListEntry {
    pub key: String,
    pub size: u64,
    #[serde(default)]
    pub storage_class: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBucketResult {
    #[serde(default)]
    is_truncated: bool,
    #[serde(default)]
    next_continuation_token: Option<String>,
    #[serde(default)]
    contents: Vec<ListEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListMultipartUploadsResult {
    #[serde(default)]
    upload: Vec<UploadEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UploadEntry {
    key: String,
}

#[derive(Debug, Deserialize)]
struct CopyObjectResult {
    #[serde(rename = "ETag", default)]
    etag: Option<String>,
}

impl RawClient {
    pub fn new(
        http: HttpClient,
        endpoint: &str,
        bucket: &str,
        region: &str,
        credential: Option<AwsCredential>,
        max_retries: usize,
        retry_timeout: Duration,
    ) -> Result<Self> {
        let root = if endpoint.is_empty() {
            format!("https://{bucket}.s3.{region}.amazonaws.com/")
        } else {
            format!("{}/{bucket}/", endpoint.trim_end_matches('/'))
        };
        let base = Url::parse(&root).map_err(|e| {
            BlobError::InvalidConfig(format!("blob.s3: bad bucket URL {root}: {e}"))
        })?;
        Ok(RawClient {
            http,
            base,
            bucket: bucket.to_owned(),
            region: region.to_owned(),
            credential,
            max_retries,
            retry_timeout,
        })
    }

    /// The URL of `key` (empty: the bucket itself) with `query`.
    fn url(&self, key: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if key.is_empty() && self.base.path() != "/" {
            // Bucket operations address `/bucket`, not `/bucket/`.
            let path = self.base.path().trim_end_matches('/').to_owned();
            url.set_path(&path);
        } else {
            let path = format!("{}{key}", self.base.path());
            url.set_path(&path);
        }
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    /// Sends a signed request, retrying connection errors and 5xx answers with exponential
    /// backoff (every request made here is idempotent).
    async fn send(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<RawResponse> {
        let started = tokio::time::Instant::now();
        let mut attempt = 0usize;
        loop {
            let outcome = self.send_once(method.clone(), &url, &headers, body.clone()).await;
            let retryable = match &outcome {
                Ok(response) => response.status.is_server_error(),
                Err(BlobError::Unavailable(_)) => true,
                Err(_) => false,
            };
            if !retryable || attempt >= self.max_retries || started.elapsed() >= self.retry_timeout
            {
                return outcome;
            }
            let backoff = Duration::from_millis(100u64.saturating_mul(1 << attempt.min(5)));
            tokio::time::sleep(backoff.min(Duration::from_secs(3))).await;
            attempt += 1;
        }
    }

    async fn send_once(
        &self,
        method: Method,
        url: &Url,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<RawResponse> {
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(url.as_str())
            .body(HttpRequestBody::from(body))
            .map_err(|e| BlobError::InvalidConfig(format!("blob.s3: bad request URL: {e}")))?;
        request.headers_mut().extend(headers.clone());
        if let Some(credential) = &self.credential {
            AwsAuthorizer::new(credential, "s3", &self.region)
                .try_authorize(&mut request, None)
                .map_err(|e| BlobError::Unavailable(format!("s3: signing failed: {e}")))?;
        }
        let what = format!("s3 {method} {}", url.path());
        let response =
            self.http.execute(request).await.map_err(|e| {
                BlobError::Unavailable(format!("{what}: {}", super::error_chain(&e)))
            })?;
        let (parts, body) = response.into_parts();
        let body = body
            .bytes()
            .await
            .map_err(|e| BlobError::Unavailable(format!("{what}: {}", super::error_chain(&e))))?;
        Ok(RawResponse { status: parts.status, body })
    }

    /// HEAD of the bucket: 200 when it exists and the credentials may use it.
    pub async fn head_bucket(&self) -> Result<RawResponse> {
        self.send(Method::HEAD, self.url("", &[]), HeaderMap::new(), Bytes::new()).await
    }

    /// Creates the bucket; already owning it counts as success.
    pub async fn create_bucket(&self) -> Result<()> {
        let body = if self.region == "us-east-1" {
            Bytes::new()
        } else {
            Bytes::from(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.region
            ))
        };
        let response = self.send(Method::PUT, self.url("", &[]), HeaderMap::new(), body).await?;
        if response.status.is_success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&response.body);
        if response.status == StatusCode::CONFLICT && text.contains("BucketAlreadyOwnedByYou") {
            return Ok(());
        }
        Err(BlobError::Unavailable(format!(
            "s3: creating bucket {} failed: {}",
            self.bucket,
            response.describe()
        )))
    }

    /// Copies `key` onto itself replacing its metadata (and storage class) with `headers`,
    /// only if its ETag is still `if_match`. Returns the raw response for the caller to
    /// interpret, and the new ETag on success.
    pub async fn copy_in_place(
        &self,
        key: &str,
        if_match: &str,
        mut headers: HeaderMap,
    ) -> Result<(RawResponse, Option<String>)> {
        let source = format!("/{}/{key}", self.bucket);
        headers.insert(HeaderName::from_static("x-amz-copy-source"), header_value(&source)?);
        headers
            .insert(HeaderName::from_static("x-amz-copy-source-if-match"), header_value(if_match)?);
        headers.insert(
            HeaderName::from_static("x-amz-metadata-directive"),
            HeaderValue::from_static("REPLACE"),
        );
        let response = self.send(Method::PUT, self.url(key, &[]), headers, Bytes::new()).await?;
        let mut etag = None;
        if response.status.is_success() && !response.is_error_document() {
            let text = String::from_utf8_lossy(&response.body);
            etag = quick_xml::de::from_str::<CopyObjectResult>(&text).ok().and_then(|r| r.etag);
        }
        Ok((response, etag))
    }

    /// One page (up to 1000 objects) of the objects under `prefix`, and the token of the
    /// next page.
    pub async fn list_page(
        &self,
        prefix: &str,
        token: Option<&str>,
    ) -> Result<(Vec<ListEntry>, Option<String>)> {
        let mut query = vec![("list-type", "2"), ("prefix", prefix)];
        if let Some(token) = token {
            query.push(("continuation-token", token));
        }
        let response =
            self.send(Method::GET, self.url("", &query), HeaderMap::new(), Bytes::new()).await?;
        if !response.status.is_success() {
            return Err(BlobError::Unavailable(format!(
                "s3: listing {} failed: {}",
                self.bucket,
                response.describe()
            )));
        }
        let text = String::from_utf8_lossy(&response.body);
        let page: ListBucketResult = quick_xml::de::from_str(&text)
            .map_err(|e| BlobError::Unavailable(format!("s3: unreadable listing: {e}")))?;
        let next = if page.is_truncated { page.next_continuation_token } else { None };
        if page.is_truncated && next.is_none() {
            return Err(BlobError::Unavailable(
                "s3: truncated listing without a continuation token".into(),
            ));
        }
        Ok((page.contents, next))
    }

    /// Keys of incomplete multipart uploads under `prefix` (the first 1000).
    pub async fn list_uploads(&self, prefix: &str) -> Result<Vec<String>> {
        let query = [("uploads", ""), ("prefix", prefix)];
        let response =
            self.send(Method::GET, self.url("", &query), HeaderMap::new(), Bytes::new()).await?;
        if !response.status.is_success() {
            return Err(BlobError::Unavailable(format!(
                "s3: listing uploads in {} failed: {}",
                self.bucket,
                response.describe()
            )));
        }
        let text = String::from_utf8_lossy(&response.body);
        let page: ListMultipartUploadsResult = quick_xml::de::from_str(&text)
            .map_err(|e| BlobError::Unavailable(format!("s3: unreadable upload listing: {e}")))?;
        Ok(page.upload.into_iter().map(|u| u.key).collect())
    }
}

pub(crate) fn header_value(value: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(value).map_err(|_| {
        BlobError::InvalidArgument(format!("{value:?} cannot be sent as an HTTP header value"))
    })
}
