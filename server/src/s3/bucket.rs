//! Bucket operations: ListBuckets, CreateBucket (with LocationConstraint), HeadBucket,
//! DeleteBucket, GetBucketLocation, GetBucketVersioning (always unversioned), GET ?acl (canned
//! owner FULL_CONTROL, buckets and objects), and the configuration subresources this server
//! stores nothing for (policy, CORS, lifecycle, tagging, encryption answer their
//! "does not exist" errors). Never touches object data.

use http::{Response, StatusCode};

use super::error::S3Error;
use super::response::{self, iso8601, ResBody};
use super::router::BucketConfig;
use super::xml::{self, XmlWriter};
use super::{S3Request, S3Service};

/// `GET /`
pub async fn list_buckets(
    svc: &S3Service,
    _req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let buckets = svc.store.list_buckets().await?;
    let mut w = XmlWriter::new();
    w.root("ListAllMyBucketsResult");
    owner(&mut w, svc);
    w.open("Buckets");
    for b in &buckets {
        w.open("Bucket")
            .elem("Name", &b.name)
            .elem("CreationDate", &iso8601(b.created))
            .close("Bucket");
    }
    w.close("Buckets").close("ListAllMyBucketsResult");
    Ok(response::xml(w.finish()))
}

/// Writes `<Owner><ID/><DisplayName/></Owner>`.
pub fn owner(w: &mut XmlWriter, svc: &S3Service) {
    w.open("Owner")
        .elem("ID", &svc.owner.id)
        .elem("DisplayName", &svc.owner.display_name)
        .close("Owner");
}

/// `PUT /bucket`
pub async fn create_bucket(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    if super::headers::get(req.headers(), "x-amz-bucket-object-lock-enabled")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Err(S3Error::not_implemented("Object Lock"));
    }
    let body = req.xml_body().await?;
    if !body.iter().all(|b| b.is_ascii_whitespace()) {
        let doc = xml::parse(&body)?;
        if doc.name != "CreateBucketConfiguration" {
            return Err(S3Error::malformed_xml());
        }
        if let Some(lc) = doc.child_text("LocationConstraint") {
            let lc = lc.trim();
            if !lc.is_empty() && lc != svc.region {
                return Err(S3Error::new(
                    "IllegalLocationConstraintException",
                    StatusCode::BAD_REQUEST,
                    format!(
                        "The {lc} location constraint is incompatible for the region specific endpoint this request was sent to ({}).",
                        svc.region
                    ),
                ));
            }
        }
    }
    svc.store.make_bucket(&bucket).await?;
    let mut r = response::status(StatusCode::OK);
    r.headers_mut().insert(
        http::header::LOCATION,
        response::header_value(&format!("/{bucket}")),
    );
    Ok(r)
}

/// `HEAD /bucket`
pub async fn head_bucket(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    svc.store.bucket_info(&bucket).await?;
    let mut r = response::status(StatusCode::OK);
    r.headers_mut()
        .insert("x-amz-bucket-region", response::header_value(&svc.region));
    Ok(r)
}

/// `DELETE /bucket`
pub async fn delete_bucket(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    svc.store.delete_bucket(&bucket).await?;
    Ok(response::status(StatusCode::NO_CONTENT))
}

/// `GET /bucket?location` (empty constraint for us-east-1, as AWS answers).
pub async fn get_location(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    svc.store.bucket_info(&bucket).await?;
    let mut w = XmlWriter::new();
    if svc.region == "us-east-1" {
        w.raw(&format!("<LocationConstraint xmlns=\"{}\"/>", xml::S3_NS));
    } else {
        w.root("LocationConstraint");
        w.raw(&xml::escape(&svc.region));
        w.close("LocationConstraint");
    }
    Ok(response::xml(w.finish()))
}

/// `GET /bucket?versioning`: never enabled.
pub async fn get_versioning(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    svc.store.bucket_info(&bucket).await?;
    let mut w = XmlWriter::new();
    w.raw(&format!(
        "<VersioningConfiguration xmlns=\"{}\"/>",
        xml::S3_NS
    ));
    Ok(response::xml(w.finish()))
}

/// `GET /bucket?acl` and `GET /bucket/key?acl`: the owner has FULL_CONTROL.
pub async fn get_acl(svc: &S3Service, req: &mut S3Request) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    if req.target.key.is_some() {
        let key = req.key()?;
        svc.store.head_object(&bucket, &key).await?;
    } else {
        svc.store.bucket_info(&bucket).await?;
    }
    let mut w = XmlWriter::new();
    w.root("AccessControlPolicy");
    owner(&mut w, svc);
    w.open("AccessControlList")
        .open("Grant")
        .raw("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">")
        .elem("ID", &svc.owner.id)
        .elem("DisplayName", &svc.owner.display_name)
        .close("Grantee")
        .elem("Permission", "FULL_CONTROL")
        .close("Grant")
        .close("AccessControlList")
        .close("AccessControlPolicy");
    Ok(response::xml(w.finish()))
}

/// `GET /bucket?policy|cors|lifecycle|tagging|encryption`: nothing is configured.
pub async fn get_config(
    svc: &S3Service,
    req: &mut S3Request,
    which: BucketConfig,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    svc.store.bucket_info(&bucket).await?;
    let (code, message) = match which {
        BucketConfig::Policy => ("NoSuchBucketPolicy", "The bucket policy does not exist"),
        BucketConfig::Cors => (
            "NoSuchCORSConfiguration",
            "The CORS configuration does not exist",
        ),
        BucketConfig::Lifecycle => (
            "NoSuchLifecycleConfiguration",
            "The lifecycle configuration does not exist",
        ),
        BucketConfig::Tagging => ("NoSuchTagSet", "The TagSet does not exist"),
        BucketConfig::Encryption => (
            "ServerSideEncryptionConfigurationNotFoundError",
            "The server side encryption configuration was not found",
        ),
    };
    Err(S3Error::new(code, StatusCode::NOT_FOUND, message))
}

/// `DELETE /bucket?policy|cors|...`: nothing stored, so nothing to delete.
pub async fn delete_config(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    svc.store.bucket_info(&bucket).await?;
    Ok(response::status(StatusCode::NO_CONTENT))
}
