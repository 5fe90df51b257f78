//! Multipart uploads: Create, UploadPart (streamed like PutObject, part numbers 1..=10000,
//! 5 GiB per part), ListParts, Complete (XML part list; order, ETag and size rules are the
//! engine's; `If-None-Match: *` / `If-Match` apply), Abort and ListMultipartUploads.
//! UploadPartCopy lives in `copy.rs`. Never buffers part data.

use cluster::{CompletedPart, PartOptions, UploadId, UploadsQuery};
use http::{Response, StatusCode};

use super::bucket::owner;
use super::error::S3Error;
use super::get::part_number;
use super::headers::{self, unquote};
use super::list::max_param;
use super::put::check_declared_size;
use super::response::{self, etag_value, iso8601, ResBody};
use super::xml::{self, XmlWriter};
use super::{S3Request, S3Service, MAX_OBJECT_SIZE};

fn upload_id(req: &S3Request) -> Result<UploadId, S3Error> {
    let raw = req.query.get("uploadId").unwrap_or("");
    Ok(UploadId::new(raw)?)
}

/// `POST /bucket/key?uploads`
pub async fn create(svc: &S3Service, req: &mut S3Request) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    let key = req.key()?;
    headers::refuse_unsupported_write_options(req.headers())?;
    let meta = headers::object_meta(req.headers())?;
    let cs = headers::checksum_request(req.headers())?;
    let id = svc
        .store
        .create_multipart(&bucket, &key, meta, cs.algorithm)
        .await?;
    let mut w = XmlWriter::new();
    w.root("InitiateMultipartUploadResult")
        .elem("Bucket", bucket.as_str())
        .elem("Key", key.as_str())
        .elem("UploadId", id.as_str())
        .close("InitiateMultipartUploadResult");
    let mut r = response::xml(w.finish());
    if let Some(a) = cs.algorithm {
        r.headers_mut().insert(
            "x-amz-checksum-algorithm",
            response::header_value(a.as_str()),
        );
    }
    Ok(r)
}

/// `PUT /bucket/key?partNumber=N&uploadId=U`
pub async fn upload_part(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    let key = req.key()?;
    let n = part_number(req)?.ok_or_else(|| S3Error::invalid_argument("partNumber is required"))?;
    let id = upload_id(req)?;
    let h = req.headers();
    check_declared_size(h, MAX_OBJECT_SIZE)?;
    let content_md5 = headers::content_md5(h)?;
    let cs = headers::checksum_request(h)?;
    let body = req.take_body()?;
    let opts = PartOptions {
        content_md5,
        checksum_algorithm: cs.algorithm,
        expected_checksum: cs.expected,
    };
    let part = svc
        .store
        .upload_part(&bucket, &key, &id, n, body, opts)
        .await?;
    let mut r = response::status(StatusCode::OK);
    r.headers_mut()
        .insert(http::header::ETAG, etag_value(&part.etag));
    if let Some(c) = &part.checksum {
        headers::checksum_headers(r.headers_mut(), c);
        r.headers_mut().remove("x-amz-checksum-type");
    }
    Ok(r)
}

/// `GET /bucket/key?uploadId=U`
pub async fn list_parts(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    let key = req.key()?;
    let id = upload_id(req)?;
    let marker = match req.query.get("part-number-marker") {
        None | Some("") => 0,
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| S3Error::invalid_argument("Invalid part-number-marker"))?,
    };
    let max_parts = max_param(&req.query, "max-parts", 1000)?;
    let page = svc
        .store
        .list_parts(&bucket, &key, &id, marker, max_parts)
        .await?;
    let mut w = XmlWriter::new();
    w.root("ListPartsResult")
        .elem("Bucket", bucket.as_str())
        .elem("Key", key.as_str())
        .elem("UploadId", id.as_str());
    w.open("Initiator")
        .elem("ID", &svc.owner.id)
        .elem("DisplayName", &svc.owner.display_name)
        .close("Initiator");
    owner(&mut w, svc);
    w.elem("StorageClass", "STANDARD")
        .elem("PartNumberMarker", &marker.to_string())
        .elem("NextPartNumberMarker", &page.next_part_marker.to_string())
        .elem("MaxParts", &max_parts.to_string())
        .elem(
            "IsTruncated",
            if page.is_truncated { "true" } else { "false" },
        );
    for p in &page.parts {
        w.open("Part")
            .elem("PartNumber", &p.part_number.to_string())
            .elem("LastModified", &iso8601(p.last_modified))
            .elem("ETag", &format!("\"{}\"", p.etag))
            .elem("Size", &p.size.to_string());
        if let Some(c) = &p.checksum {
            w.elem(&format!("Checksum{}", c.algorithm.as_str()), &c.value);
        }
        w.close("Part");
    }
    w.close("ListPartsResult");
    Ok(response::xml(w.finish()))
}

fn parse_complete(body: &[u8]) -> Result<Vec<CompletedPart>, S3Error> {
    let doc = xml::parse(body)?;
    if doc.name != "CompleteMultipartUpload" {
        return Err(S3Error::malformed_xml());
    }
    let mut parts = Vec::new();
    for p in doc.children_named("Part") {
        let n = p
            .child_text("PartNumber")
            .and_then(|t| t.trim().parse::<u32>().ok())
            .ok_or_else(S3Error::malformed_xml)?;
        let etag = p.child_text("ETag").ok_or_else(S3Error::malformed_xml)?;
        parts.push(CompletedPart {
            part_number: n,
            etag: unquote(etag).to_string(),
        });
    }
    if parts.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    if parts.len() > 10_000 {
        return Err(S3Error::invalid_argument(
            "A multipart upload has at most 10000 parts",
        ));
    }
    Ok(parts)
}

/// `POST /bucket/key?uploadId=U`
pub async fn complete(svc: &S3Service, req: &mut S3Request) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    let key = req.key()?;
    let id = upload_id(req)?;
    let precondition = headers::write_precondition(req.headers())?;
    let body = req.xml_body().await?;
    let parts = parse_complete(&body)?;
    let info = svc
        .store
        .complete_multipart(&bucket, &key, &id, &parts, precondition)
        .await?;
    let host = headers::get(req.headers(), "host").unwrap_or("localhost");
    let mut w = XmlWriter::new();
    w.root("CompleteMultipartUploadResult")
        .elem("Location", &format!("http://{host}/{bucket}/{key}"))
        .elem("Bucket", bucket.as_str())
        .elem("Key", key.as_str())
        .elem("ETag", &format!("\"{}\"", info.etag));
    if let Some(c) = &info.checksum {
        w.elem(&format!("Checksum{}", c.algorithm.as_str()), &c.value);
        w.elem(
            "ChecksumType",
            if c.value.contains('-') {
                "COMPOSITE"
            } else {
                "FULL_OBJECT"
            },
        );
    }
    w.close("CompleteMultipartUploadResult");
    Ok(response::xml(w.finish()))
}

/// `DELETE /bucket/key?uploadId=U`
pub async fn abort(svc: &S3Service, req: &mut S3Request) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    let key = req.key()?;
    let id = upload_id(req)?;
    svc.store.abort_multipart(&bucket, &key, &id).await?;
    Ok(response::status(StatusCode::NO_CONTENT))
}

/// `GET /bucket?uploads`
pub async fn list_uploads(
    svc: &S3Service,
    req: &mut S3Request,
) -> Result<Response<ResBody>, S3Error> {
    let bucket = req.bucket()?;
    let q = &req.query;
    let prefix = q.get("prefix").unwrap_or("").to_string();
    let delimiter = q
        .get("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let key_marker = q
        .get("key-marker")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let upload_id_marker = q
        .get("upload-id-marker")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let max_uploads = max_param(q, "max-uploads", 1000)?;
    let page = if max_uploads == 0 {
        svc.store.bucket_info(&bucket).await?;
        cluster::UploadsPage::default()
    } else {
        svc.store
            .list_uploads(
                &bucket,
                &UploadsQuery {
                    prefix: prefix.clone(),
                    delimiter: delimiter.clone(),
                    key_marker: key_marker.clone(),
                    upload_id_marker: upload_id_marker.clone(),
                    max_uploads,
                },
            )
            .await?
    };
    let mut w = XmlWriter::new();
    w.root("ListMultipartUploadsResult")
        .elem("Bucket", bucket.as_str())
        .elem("KeyMarker", key_marker.as_deref().unwrap_or(""))
        .elem("UploadIdMarker", upload_id_marker.as_deref().unwrap_or(""))
        .elem(
            "NextKeyMarker",
            page.next_key_marker.as_deref().unwrap_or(""),
        )
        .elem(
            "NextUploadIdMarker",
            page.next_upload_id_marker.as_deref().unwrap_or(""),
        )
        .elem("Prefix", &prefix);
    w.elem_opt("Delimiter", delimiter.as_deref());
    w.elem("MaxUploads", &max_uploads.to_string()).elem(
        "IsTruncated",
        if page.is_truncated { "true" } else { "false" },
    );
    for u in &page.uploads {
        w.open("Upload")
            .elem("Key", &u.key)
            .elem("UploadId", &u.upload_id);
        w.open("Initiator")
            .elem("ID", &svc.owner.id)
            .elem("DisplayName", &svc.owner.display_name)
            .close("Initiator");
        owner(&mut w, svc);
        w.elem("StorageClass", "STANDARD")
            .elem("Initiated", &iso8601(u.initiated))
            .close("Upload");
    }
    for p in &page.common_prefixes {
        w.open("CommonPrefixes")
            .elem("Prefix", p)
            .close("CommonPrefixes");
    }
    w.close("ListMultipartUploadsResult");
    Ok(response::xml(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_documents() {
        let parts = parse_complete(
            b"<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Part><ETag>&quot;aa&quot;</ETag><PartNumber>1</PartNumber></Part><Part><PartNumber>2</PartNumber><ETag>\"bb\"</ETag></Part></CompleteMultipartUpload>",
        )
        .unwrap();
        assert_eq!(
            parts[0],
            CompletedPart {
                part_number: 1,
                etag: "aa".into()
            }
        );
        assert_eq!(parts[1].etag, "bb");
        assert!(parse_complete(b"<CompleteMultipartUpload></CompleteMultipartUpload>").is_err());
        assert!(parse_complete(b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>").is_err());
        assert!(parse_complete(b"<CompleteMultipartUpload><Part>").is_err());
    }
}
