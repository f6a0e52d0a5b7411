//! An in-process S3 server for lake tests: `s3s` + `s3s-fs` on a free
//! 127.0.0.1 port, objects stored under a temp directory (one subdirectory
//! per bucket), requests authenticated with SigV4 against a fixed key pair.
//! Clients reach it through aws-sdk-s3 with a custom endpoint and path-style
//! addressing, exactly as they would reach MinIO or real S3.

use std::path::{Path, PathBuf};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

pub const ACCESS_KEY: &str = "AKIASLUICETESTKEY001";
/// Secret of the test key pair (the secret scan looks for it in outputs).
pub const SECRET_KEY: &str = "sluice-test-secret/DoNotLeak+0123456789abcdef";
pub const REGION: &str = "us-east-1";

pub struct S3Server {
    pub endpoint: String,
    root: tempfile::TempDir,
    rt: Option<tokio::runtime::Runtime>,
}

impl S3Server {
    /// Start a server holding one empty bucket.
    pub fn start(bucket: &str) -> S3Server {
        let root = tempfile::tempdir().expect("s3 root");
        std::fs::create_dir_all(root.path().join(bucket)).expect("bucket dir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("s3 runtime");
        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs");
        let mut b = S3ServiceBuilder::new(fs);
        b.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = b.build();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind s3");
        let addr = listener.local_addr().expect("addr");
        rt.spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        S3Server {
            endpoint: format!("http://{addr}"),
            root,
            rt: Some(rt),
        }
    }

    /// Where objects live on disk (`<root>/<bucket>/<key>`).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Files under the server's root, for the secret scan.
    pub fn files(&self) -> Vec<PathBuf> {
        walkdir::WalkDir::new(self.root.path())
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().to_path_buf())
            .collect()
    }

    /// Credentials for aws-sdk-s3 clients in the test process.
    pub fn credentials() -> aws_sdk_s3::config::Credentials {
        aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "sluice-tests")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
