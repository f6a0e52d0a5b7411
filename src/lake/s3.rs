//! A lake in an S3 bucket (or any S3-compatible store) under a key prefix.
//!
//! Credentials come from the standard AWS chain (environment, shared config
//! and credentials files, SSO, container and instance metadata). A custom
//! endpoint comes from `endpoint_url` in the lake configuration, else
//! `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`; with a custom endpoint,
//! path-style addressing is on unless `force_path_style: false`.
//!
//! The trait is synchronous: the lake owns a small tokio runtime and blocks
//! on each request, so it must not be called from inside another runtime.
//! Write-once objects use `If-None-Match: *`: S3 answers 412 when the key
//! exists, which is reported as [`PutOutcome::AlreadyExists`].

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use super::{check_key, Lake, LakeConfig, LakeError, PutOutcome, Result};

pub struct S3Lake {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Normalized: empty or ending with `/`.
    prefix: String,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for S3Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Lake")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A readable message for an SDK error, without request details.
fn sdk_message<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
) -> String {
    match e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                _ => "service error".to_string(),
            }
        }
        SdkError::DispatchFailure(d) => {
            if d.is_io() || d.is_timeout() {
                "could not reach the S3 endpoint (connection failed or timed out)".to_string()
            } else {
                "could not send the request to S3".to_string()
            }
        }
        SdkError::TimeoutError(_) => "request timed out".to_string(),
        SdkError::ConstructionFailure(_) => {
            "could not build the request (missing credentials or region?)".to_string()
        }
        SdkError::ResponseError(_) => "unreadable response from S3".to_string(),
        _ => "S3 request failed".to_string(),
    }
}

fn status_of<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

impl S3Lake {
    /// Connect to the bucket named by an S3 lake configuration.
    /// `credentials` overrides the standard chain (tests).
    pub fn connect(
        config: &LakeConfig,
        credentials: Option<aws_sdk_s3::config::Credentials>,
    ) -> Result<S3Lake> {
        let LakeConfig::S3 {
            bucket,
            prefix,
            region,
            endpoint_url,
            force_path_style,
        } = config
        else {
            return Err(LakeError::Config("not an S3 lake".into()));
        };
        if bucket.trim().is_empty() {
            return Err(LakeError::Config("`bucket` is empty".into()));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| LakeError::Config(format!("cannot start the S3 runtime: {e}")))?;
        let endpoint = endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .filter(|s| !s.trim().is_empty());
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let shared = rt.block_on(async {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .http_client(http.clone());
            if let Some(r) = region {
                loader = loader.region(aws_sdk_s3::config::Region::new(r.clone()));
            }
            if let Some(c) = credentials {
                loader = loader.credentials_provider(c);
            }
            loader.load().await
        });
        let mut b = aws_sdk_s3::config::Builder::from(&shared);
        if shared.region().is_none() {
            b = b.region(aws_sdk_s3::config::Region::new("us-east-1"));
        }
        if let Some(ep) = &endpoint {
            b = b.endpoint_url(ep.clone());
        }
        b = b.force_path_style(force_path_style.unwrap_or(endpoint.is_some()));
        let client = aws_sdk_s3::Client::from_conf(b.build());
        let prefix = prefix.trim_matches('/');
        Ok(S3Lake {
            client,
            bucket: bucket.clone(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            rt,
        })
    }

    fn full_key(&self, key: &str) -> Result<String> {
        check_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    fn err(&self, key: &str, message: String) -> LakeError {
        LakeError::S3 {
            key: format!("s3://{}/{}{key}", self.bucket, self.prefix),
            message,
        }
    }
}

impl Lake for S3Lake {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn put_new(&self, key: &str, bytes: &[u8]) -> Result<PutOutcome> {
        let full = self.full_key(key)?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .if_none_match("*")
            .content_type("application/json")
            .body(ByteStream::from(bytes.to_vec()));
        match self.rt.block_on(req.send()) {
            Ok(_) => Ok(PutOutcome::Created),
            Err(e) => {
                let code = e.code().map(str::to_string);
                if status_of(&e) == Some(412) || code.as_deref() == Some("PreconditionFailed") {
                    Ok(PutOutcome::AlreadyExists)
                } else {
                    Err(self.err(key, sdk_message(&e)))
                }
            }
        }
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let full = self.full_key(key)?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .content_type("application/json")
            .body(ByteStream::from(bytes.to_vec()));
        self.rt
            .block_on(req.send())
            .map(|_| ())
            .map_err(|e| self.err(key, sdk_message(&e)))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let full = self.full_key(key)?;
        let req = self.client.get_object().bucket(&self.bucket).key(&full);
        self.rt.block_on(async {
            match req.send().await {
                Ok(out) => {
                    let data = out
                        .body
                        .collect()
                        .await
                        .map_err(|e| self.err(key, format!("reading the object: {e}")))?;
                    Ok(Some(data.into_bytes().to_vec()))
                }
                Err(e) => {
                    let missing = matches!(&e, SdkError::ServiceError(s) if s.err().is_no_such_key())
                        || status_of(&e) == Some(404);
                    if missing {
                        Ok(None)
                    } else {
                        Err(self.err(key, sdk_message(&e)))
                    }
                }
            }
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let full_prefix = format!("{}{prefix}", self.prefix);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&full_prefix);
            if let Some(t) = &token {
                req = req.continuation_token(t);
            }
            let page = self
                .rt
                .block_on(req.send())
                .map_err(|e| self.err(prefix, sdk_message(&e)))?;
            for obj in page.contents() {
                if let Some(k) = obj.key() {
                    if let Some(rel) = k.strip_prefix(&self.prefix) {
                        out.push(rel.to_string());
                    }
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_string()),
                _ => break,
            }
        }
        out.sort();
        Ok(out)
    }
}
