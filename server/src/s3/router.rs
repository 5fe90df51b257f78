//! Routing in one place: where the bucket and key come from (path style, or virtual-hosted
//! style under `--domain`), how the raw query is decoded, and which [`Endpoint`] a method +
//! bucket/key presence + query subresources + copy-source header select. Anything S3 defines
//! that this server does not implement maps to [`Endpoint::NotImplemented`]. This module never
//! touches the store, the body or authentication.

use http::{HeaderMap, Method};
use percent_encoding::percent_decode_str;

use super::error::S3Error;

/// Every operation the S3 front end distinguishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /`
    ListBuckets,
    /// `PUT /bucket`
    CreateBucket,
    /// `HEAD /bucket`
    HeadBucket,
    /// `DELETE /bucket`
    DeleteBucket,
    /// `GET /bucket?location`
    GetBucketLocation,
    /// `GET /bucket?versioning`
    GetBucketVersioning,
    /// `GET /bucket?acl`
    GetBucketAcl,
    /// `GET /bucket?policy|cors|lifecycle|tagging|encryption`: answers the "no such
    /// configuration" error of that subresource.
    GetBucketConfig(BucketConfig),
    /// `DELETE /bucket?policy|cors|lifecycle|tagging|encryption`: nothing stored, 204.
    DeleteBucketConfig(BucketConfig),
    /// `GET /bucket`
    ListObjects,
    /// `GET /bucket?list-type=2`
    ListObjectsV2,
    /// `GET /bucket?versions`
    ListObjectVersions,
    /// `GET /bucket?uploads`
    ListMultipartUploads,
    /// `POST /bucket?delete`
    DeleteObjects,
    /// `PUT /bucket/key`
    PutObject,
    /// `PUT /bucket/key` with `x-amz-copy-source`
    CopyObject,
    /// `GET /bucket/key`
    GetObject,
    /// `HEAD /bucket/key`
    HeadObject,
    /// `DELETE /bucket/key`
    DeleteObject,
    /// `GET /bucket/key?acl`
    GetObjectAcl,
    /// `GET /bucket/key?tagging` (always the empty tag set)
    GetObjectTagging,
    /// `POST /bucket/key?uploads`
    CreateMultipartUpload,
    /// `PUT /bucket/key?partNumber&uploadId`
    UploadPart,
    /// `PUT /bucket/key?partNumber&uploadId` with `x-amz-copy-source`
    UploadPartCopy,
    /// `POST /bucket/key?uploadId`
    CompleteMultipartUpload,
    /// `DELETE /bucket/key?uploadId`
    AbortMultipartUpload,
    /// `GET /bucket/key?uploadId`
    ListParts,
    /// Defined by S3 (or IAM/STS) but not implemented here: 501 at once.
    NotImplemented(String),
}

/// Bucket configuration subresources this server stores nothing for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketConfig {
    /// `?policy`
    Policy,
    /// `?cors`
    Cors,
    /// `?lifecycle`
    Lifecycle,
    /// `?tagging`
    Tagging,
    /// `?encryption`
    Encryption,
}

impl Endpoint {
    /// The operation name for logs and metrics (AWS's API names).
    pub fn name(&self) -> &str {
        match self {
            Endpoint::ListBuckets => "ListBuckets",
            Endpoint::CreateBucket => "CreateBucket",
            Endpoint::HeadBucket => "HeadBucket",
            Endpoint::DeleteBucket => "DeleteBucket",
            Endpoint::GetBucketLocation => "GetBucketLocation",
            Endpoint::GetBucketVersioning => "GetBucketVersioning",
            Endpoint::GetBucketAcl => "GetBucketAcl",
            Endpoint::GetBucketConfig(BucketConfig::Policy) => "GetBucketPolicy",
            Endpoint::GetBucketConfig(BucketConfig::Cors) => "GetBucketCors",
            Endpoint::GetBucketConfig(BucketConfig::Lifecycle) => "GetBucketLifecycleConfiguration",
            Endpoint::GetBucketConfig(BucketConfig::Tagging) => "GetBucketTagging",
            Endpoint::GetBucketConfig(BucketConfig::Encryption) => "GetBucketEncryption",
            Endpoint::DeleteBucketConfig(BucketConfig::Policy) => "DeleteBucketPolicy",
            Endpoint::DeleteBucketConfig(BucketConfig::Cors) => "DeleteBucketCors",
            Endpoint::DeleteBucketConfig(BucketConfig::Lifecycle) => "DeleteBucketLifecycle",
            Endpoint::DeleteBucketConfig(BucketConfig::Tagging) => "DeleteBucketTagging",
            Endpoint::DeleteBucketConfig(BucketConfig::Encryption) => "DeleteBucketEncryption",
            Endpoint::ListObjects => "ListObjects",
            Endpoint::ListObjectsV2 => "ListObjectsV2",
            Endpoint::ListObjectVersions => "ListObjectVersions",
            Endpoint::ListMultipartUploads => "ListMultipartUploads",
            Endpoint::DeleteObjects => "DeleteObjects",
            Endpoint::PutObject => "PutObject",
            Endpoint::CopyObject => "CopyObject",
            Endpoint::GetObject => "GetObject",
            Endpoint::HeadObject => "HeadObject",
            Endpoint::DeleteObject => "DeleteObject",
            Endpoint::GetObjectAcl => "GetObjectAcl",
            Endpoint::GetObjectTagging => "GetObjectTagging",
            Endpoint::CreateMultipartUpload => "CreateMultipartUpload",
            Endpoint::UploadPart => "UploadPart",
            Endpoint::UploadPartCopy => "UploadPartCopy",
            Endpoint::CompleteMultipartUpload => "CompleteMultipartUpload",
            Endpoint::AbortMultipartUpload => "AbortMultipartUpload",
            Endpoint::ListParts => "ListParts",
            Endpoint::NotImplemented(_) => "NotImplemented",
        }
    }
}

/// The decoded query string, in order. Names without `=` have an empty value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Decodes `a=b&c&d=%2F` (percent-decoding, `+` as space, invalid UTF-8 replaced).
    pub fn parse(raw: &str) -> Query {
        let decode = |s: &str| {
            let s = s.replace('+', " ");
            percent_decode_str(&s).decode_utf8_lossy().into_owned()
        };
        Query(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
}

/// Bucket subresources S3 defines that this server does not implement (any method).
const UNSUPPORTED_BUCKET_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "analytics",
    "intelligent-tiering",
    "inventory",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "website",
    "session",
    "metadataTable",
    "metadataConfiguration",
    "abac",
];

/// Object subresources S3 defines that this server does not implement.
const UNSUPPORTED_OBJECT_SUBRESOURCES: &[&str] = &[
    "retention",
    "legal-hold",
    "attributes",
    "restore",
    "select",
    "torrent",
    "renameObject",
];

/// Where the request is addressed: bucket and key, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// Bucket name as sent (validated later, by the engine's newtype).
    pub bucket: Option<String>,
    /// Object key, percent-decoded.
    pub key: Option<String>,
}

/// Splits the request target into bucket and key. `host` is the Host header (or HTTP/2
/// authority) and selects virtual-hosted style when it is `bucket.<one of domains>`.
pub fn target(raw_path: &str, host: Option<&str>, domains: &[String]) -> Result<Target, S3Error> {
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    let decode = |s: &str| -> Result<String, S3Error> {
        percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| {
                S3Error::new(
                    "InvalidURI",
                    http::StatusCode::BAD_REQUEST,
                    "Couldn't parse the specified URI.",
                )
            })
    };
    if let Some(host) = host {
        let host = host_without_port(host).to_ascii_lowercase();
        for d in domains {
            if let Some(bucket) = host
                .strip_suffix(d.as_str())
                .and_then(|b| b.strip_suffix('.'))
                .filter(|b| !b.is_empty())
            {
                let key = if path.is_empty() {
                    None
                } else {
                    Some(decode(path)?)
                };
                return Ok(Target {
                    bucket: Some(bucket.to_string()),
                    key,
                });
            }
        }
    }
    if path.is_empty() {
        return Ok(Target::default());
    }
    match path.split_once('/') {
        None => Ok(Target {
            bucket: Some(decode(path)?),
            key: None,
        }),
        Some((b, rest)) => Ok(Target {
            bucket: Some(decode(b)?),
            key: if rest.is_empty() {
                None
            } else {
                Some(decode(rest)?)
            },
        }),
    }
}

fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: never a virtual host.
        return host;
    }
    host.rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map(|(h, _)| h)
        .unwrap_or(host)
}

/// Selects the endpoint. `Err` only for requests S3 itself would refuse as malformed.
pub fn route(
    method: &Method,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Endpoint, S3Error> {
    let ni = |what: &str| Ok(Endpoint::NotImplemented(what.to_string()));
    let copy = headers.contains_key("x-amz-copy-source");
    let Some(_bucket) = &target.bucket else {
        return match *method {
            Method::GET => Ok(Endpoint::ListBuckets),
            Method::POST => {
                // STS / IAM style form POSTs (Action=...) and anything else sent to the root.
                ni("this service operation (POST /)")
            }
            _ => ni(&format!("{method} /")),
        };
    };
    if target.key.is_none() {
        if let Some(sub) = query
            .names()
            .find(|n| UNSUPPORTED_BUCKET_SUBRESOURCES.contains(n))
        {
            return ni(&format!("bucket subresource ?{sub}"));
        }
        let config = [
            ("policy", BucketConfig::Policy),
            ("cors", BucketConfig::Cors),
            ("lifecycle", BucketConfig::Lifecycle),
            ("tagging", BucketConfig::Tagging),
            ("encryption", BucketConfig::Encryption),
        ]
        .into_iter()
        .find(|(n, _)| query.has(n))
        .map(|(_, c)| c);
        return match *method {
            Method::GET => {
                if let Some(c) = config {
                    return Ok(Endpoint::GetBucketConfig(c));
                }
                if query.has("location") {
                    Ok(Endpoint::GetBucketLocation)
                } else if query.has("versioning") {
                    Ok(Endpoint::GetBucketVersioning)
                } else if query.has("acl") {
                    Ok(Endpoint::GetBucketAcl)
                } else if query.has("uploads") {
                    Ok(Endpoint::ListMultipartUploads)
                } else if query.has("versions") {
                    Ok(Endpoint::ListObjectVersions)
                } else if let Some(lt) = query.get("list-type") {
                    if lt == "2" {
                        Ok(Endpoint::ListObjectsV2)
                    } else {
                        Err(S3Error::invalid_argument(format!(
                            "Invalid list-type {lt:?}; only 2 is supported"
                        )))
                    }
                } else {
                    Ok(Endpoint::ListObjects)
                }
            }
            Method::HEAD => Ok(Endpoint::HeadBucket),
            Method::PUT => {
                if config.is_some() || query.has("versioning") || query.has("acl") {
                    ni("setting bucket configuration")
                } else {
                    Ok(Endpoint::CreateBucket)
                }
            }
            Method::DELETE => match config {
                Some(c) => Ok(Endpoint::DeleteBucketConfig(c)),
                None => Ok(Endpoint::DeleteBucket),
            },
            Method::POST => {
                if query.has("delete") {
                    Ok(Endpoint::DeleteObjects)
                } else {
                    ni("POST to a bucket (browser form upload)")
                }
            }
            _ => ni(&format!("{method} on a bucket")),
        };
    }
    if let Some(sub) = query
        .names()
        .find(|n| UNSUPPORTED_OBJECT_SUBRESOURCES.contains(n))
    {
        return ni(&format!("object subresource ?{sub}"));
    }
    match *method {
        Method::GET => {
            if query.has("uploadId") {
                Ok(Endpoint::ListParts)
            } else if query.has("acl") {
                Ok(Endpoint::GetObjectAcl)
            } else if query.has("tagging") {
                Ok(Endpoint::GetObjectTagging)
            } else {
                Ok(Endpoint::GetObject)
            }
        }
        Method::HEAD => Ok(Endpoint::HeadObject),
        Method::PUT => {
            if query.has("tagging") || query.has("acl") {
                ni("setting object tags or ACLs")
            } else if query.has("partNumber") && query.has("uploadId") {
                Ok(if copy {
                    Endpoint::UploadPartCopy
                } else {
                    Endpoint::UploadPart
                })
            } else if query.has("uploadId") || query.has("partNumber") {
                Err(S3Error::invalid_argument(
                    "UploadPart needs both partNumber and uploadId",
                ))
            } else if copy {
                Ok(Endpoint::CopyObject)
            } else {
                Ok(Endpoint::PutObject)
            }
        }
        Method::POST => {
            if query.has("uploads") {
                Ok(Endpoint::CreateMultipartUpload)
            } else if query.has("uploadId") {
                Ok(Endpoint::CompleteMultipartUpload)
            } else {
                ni("POST on an object")
            }
        }
        Method::DELETE => {
            if query.has("uploadId") {
                Ok(Endpoint::AbortMultipartUpload)
            } else if query.has("tagging") {
                ni("deleting object tags")
            } else {
                Ok(Endpoint::DeleteObject)
            }
        }
        _ => ni(&format!("{method} on an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(method: Method, path: &str, query: &str, copy: bool) -> Endpoint {
        let mut h = HeaderMap::new();
        if copy {
            h.insert("x-amz-copy-source", "/b/k".parse().unwrap());
        }
        let t = target(path, None, &[]).unwrap();
        route(&method, &t, &Query::parse(query), &h).unwrap()
    }

    #[test]
    fn path_style_targets_decode_the_key_but_keep_plus() {
        let t = target("/bkt/a%20b/c+d", Some("localhost:9000"), &[]).unwrap();
        assert_eq!(t.bucket.as_deref(), Some("bkt"));
        assert_eq!(t.key.as_deref(), Some("a b/c+d"));
        assert_eq!(target("/bkt/", None, &[]).unwrap().key, None);
        assert_eq!(target("/", None, &[]).unwrap(), Target::default());
        assert!(target("/bkt/%ff", None, &[]).is_err());
    }

    #[test]
    fn virtual_host_style_takes_the_bucket_from_the_host() {
        let domains = vec!["s3.example.test".to_string()];
        let t = target("/dir/file", Some("photos.s3.example.test:9000"), &domains).unwrap();
        assert_eq!(t.bucket.as_deref(), Some("photos"));
        assert_eq!(t.key.as_deref(), Some("dir/file"));
        let t = target("/photos/x", Some("s3.example.test"), &domains).unwrap();
        assert_eq!(t.bucket.as_deref(), Some("photos"));
        let t = target("/", Some("photos.s3.example.test"), &domains).unwrap();
        assert_eq!(t.bucket.as_deref(), Some("photos"));
        assert_eq!(t.key, None);
    }

    #[test]
    fn query_decoding() {
        let q = Query::parse("prefix=a%2Fb+c&delimiter=%2F&uploads&x-id=GetObject");
        assert_eq!(q.get("prefix"), Some("a/b c"));
        assert_eq!(q.get("delimiter"), Some("/"));
        assert!(q.has("uploads"));
        assert_eq!(q.get("uploads"), Some(""));
    }

    #[test]
    fn endpoints_by_method_and_subresource() {
        use Endpoint::*;
        assert_eq!(ep(Method::GET, "/", "", false), ListBuckets);
        assert_eq!(ep(Method::PUT, "/b", "", false), CreateBucket);
        assert_eq!(
            ep(Method::GET, "/b", "list-type=2&prefix=x", false),
            ListObjectsV2
        );
        assert_eq!(ep(Method::GET, "/b", "prefix=x", false), ListObjects);
        assert_eq!(ep(Method::GET, "/b", "location", false), GetBucketLocation);
        assert_eq!(ep(Method::GET, "/b", "versions", false), ListObjectVersions);
        assert_eq!(ep(Method::POST, "/b", "delete", false), DeleteObjects);
        assert_eq!(
            ep(Method::GET, "/b", "policy", false),
            GetBucketConfig(BucketConfig::Policy)
        );
        assert_eq!(ep(Method::PUT, "/b/k", "x-id=PutObject", false), PutObject);
        assert_eq!(ep(Method::PUT, "/b/k", "", true), CopyObject);
        assert_eq!(
            ep(Method::PUT, "/b/k", "partNumber=1&uploadId=u", false),
            UploadPart
        );
        assert_eq!(
            ep(Method::PUT, "/b/k", "partNumber=1&uploadId=u", true),
            UploadPartCopy
        );
        assert_eq!(
            ep(Method::POST, "/b/k", "uploads", false),
            CreateMultipartUpload
        );
        assert_eq!(
            ep(Method::POST, "/b/k", "uploadId=u", false),
            CompleteMultipartUpload
        );
        assert_eq!(
            ep(Method::DELETE, "/b/k", "uploadId=u", false),
            AbortMultipartUpload
        );
        assert_eq!(ep(Method::GET, "/b/k", "uploadId=u", false), ListParts);
        assert_eq!(ep(Method::GET, "/b/k", "versionId=null", false), GetObject);
    }

    #[test]
    fn unimplemented_operations_are_named_not_guessed() {
        for (m, p, q) in [
            (Method::POST, "/", "Action=AssumeRole"),
            (Method::PUT, "/b", "policy"),
            (Method::GET, "/b", "website"),
            (Method::PUT, "/b", "object-lock"),
            (Method::GET, "/b/k", "attributes"),
            (Method::POST, "/b/k", "restore"),
            (Method::PATCH, "/b/k", ""),
        ] {
            assert!(
                matches!(ep(m.clone(), p, q, false), Endpoint::NotImplemented(_)),
                "{m} {p}?{q}"
            );
        }
    }
}
