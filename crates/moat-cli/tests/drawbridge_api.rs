//! The OCI Distribution API of `moat drawbridge serve`, tested against the real server process
//! over real TLS: every endpoint of the table in notes/registry.md with its success and failure
//! status codes, headers and JSON error codes.

mod drawbridge_support;

use drawbridge_support::*;

#[tokio::test]
async fn base_endpoint_challenges_and_accepts_tokens() {
    let db = Drawbridge::start();
    let token = db.token("alice", &[]);

    let anon = db.client().get("/v2/").await;
    assert_eq!(anon.status, 401);
    assert_eq!(anon.error_code(), "UNAUTHORIZED");
    assert!(
        anon.header("www-authenticate")
            .unwrap()
            .starts_with("Basic realm=")
    );
    assert_eq!(
        anon.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );

    assert_eq!(db.client().bearer(&token).get("/v2/").await.status, 200);
    assert_eq!(
        db.client().basic("alice", &token).get("/v2/").await.status,
        200
    );
    // Right token, wrong user; wrong token; garbage header: all 401, never anonymous.
    assert_eq!(
        db.client().basic("bob", &token).get("/v2/").await.status,
        401
    );
    assert_eq!(
        db.client().bearer("mdb_wrong").get("/v2/").await.status,
        401
    );
    let garbage = db
        .client()
        .send("GET", "/v2/", &[("authorization", "Basic !!!")], "")
        .await;
    assert_eq!(garbage.status, 401);

    // The token endpoint hands the checked token back as a bearer token.
    let t = db.client().basic("alice", &token).get("/token").await;
    assert_eq!(t.status, 200);
    assert_eq!(t.json()["token"], token.as_str());
    assert_eq!(db.client().get("/token").await.status, 401);

    // Revocation takes effect at once.
    let list = db.admin(&["token", "list", "--json"]);
    let id = serde_json::from_str::<serde_json::Value>(&list).unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    db.admin(&["token", "revoke", &id]);
    assert_eq!(db.client().bearer(&token).get("/v2/").await.status, 401);

    // Paths under /v2/ that are no endpoint are 404.
    let fresh = db.token("carol", &[]);
    assert_eq!(
        db.client()
            .bearer(&fresh)
            .get("/v2/a/unknown/thing")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn monolithic_blob_push_pull_head_and_errors() {
    let db = Drawbridge::start();
    let c = db.client().bearer(&db.token("alice", &[]));
    let data = b"hello blob".to_vec();
    let digest = sha256(&data);

    let r = c
        .send(
            "POST",
            &format!("/v2/demo/app/blobs/uploads/?digest={digest}"),
            &[],
            data.clone(),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("location").unwrap(),
        format!("/v2/demo/app/blobs/{digest}")
    );
    assert_eq!(r.header("docker-content-digest").unwrap(), digest);

    let g = c.get(&format!("/v2/demo/app/blobs/{digest}")).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body, data);
    assert_eq!(g.header("docker-content-digest").unwrap(), digest);
    assert_eq!(g.header("content-length").unwrap(), data.len().to_string());

    let h = c
        .send("HEAD", &format!("/v2/demo/app/blobs/{digest}"), &[], "")
        .await;
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    assert_eq!(h.header("content-length").unwrap(), data.len().to_string());
    assert_eq!(h.header("docker-content-digest").unwrap(), digest);

    // Unknown blob, and a blob that exists but in another repository.
    let missing = sha256(b"never pushed");
    let r = c.get(&format!("/v2/demo/app/blobs/{missing}")).await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "BLOB_UNKNOWN"));
    assert_eq!(
        c.send("HEAD", &format!("/v2/demo/app/blobs/{missing}"), &[], "")
            .await
            .status,
        404
    );
    let r = c.get(&format!("/v2/demo/other/blobs/{digest}")).await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "BLOB_UNKNOWN"));

    // Malformed and unsupported digests.
    for bad in ["sha256:abc", "md5:0123", "nocolon", "sha256:ZZZZ"] {
        let r = c.get(&format!("/v2/demo/app/blobs/{bad}")).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "DIGEST_INVALID"),
            "{bad}"
        );
    }

    // Digest mismatch on a monolithic push: 400 and nothing stored.
    let wrong = sha256(b"something else");
    let r = c
        .send(
            "POST",
            &format!("/v2/demo/app/blobs/uploads/?digest={wrong}"),
            &[],
            data.clone(),
        )
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));
    assert_eq!(
        c.get(&format!("/v2/demo/app/blobs/{wrong}")).await.status,
        404
    );

    // sha512 is verified too.
    let d512 = sha512(&data);
    let r = c
        .send(
            "POST",
            &format!("/v2/demo/app/blobs/uploads/?digest={d512}"),
            &[],
            data.clone(),
        )
        .await;
    assert_eq!(r.status, 201);
    let g = c.get(&format!("/v2/demo/app/blobs/{d512}")).await;
    assert_eq!((g.status, g.body.as_slice()), (200, data.as_slice()));
    let bad512 = sha512(b"other");
    let r = c
        .send(
            "POST",
            &format!("/v2/demo/app/blobs/uploads/?digest={bad512}"),
            &[],
            data.clone(),
        )
        .await;
    assert_eq!(r.status, 400);

    // An empty blob is a blob.
    c.push_blob("demo/app", b"").await;
}

#[tokio::test]
async fn chunked_upload_in_order_out_of_order_status_and_cancel() {
    let db = Drawbridge::start();
    let c = db.client().bearer(&db.token("alice", &[]));
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let digest = sha256(&data);

    let start = c.send("POST", "/v2/demo/big/blobs/uploads/", &[], "").await;
    assert_eq!(start.status, 202);
    let location = start.header("location").unwrap().to_owned();
    assert!(location.starts_with("/v2/demo/big/blobs/uploads/"));
    assert_eq!(start.header("range"), Some("0-0"));

    let (a, rest) = data.split_at(100_000);
    let (b, last) = rest.split_at(150_000);
    let r = c
        .send(
            "PATCH",
            &location,
            &[
                ("content-range", "0-99999"),
                ("content-type", "application/octet-stream"),
            ],
            a.to_vec(),
        )
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(r.header("range"), Some("0-99999"));
    assert_eq!(r.header("location"), Some(location.as_str()));

    // Out of order: a chunk that skips ahead, and one that repeats the start.
    for range in ["100001-150000", "0-99999"] {
        let r = c
            .send(
                "PATCH",
                &location,
                &[("content-range", range)],
                b[..99_999.min(b.len())].to_vec(),
            )
            .await;
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.error_code(), "BLOB_UPLOAD_INVALID");
        assert_eq!(r.header("range"), Some("0-99999"));
    }
    // Body longer than its Content-Range.
    let r = c
        .send(
            "PATCH",
            &location,
            &[("content-range", "100000-100009")],
            vec![0u8; 20],
        )
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "SIZE_INVALID"));

    // Status: what the server holds (the failed chunks added nothing).
    let s = c.get(&location).await;
    assert_eq!(s.status, 204);
    assert_eq!(s.header("range"), Some("0-99999"));
    assert_eq!(s.header("location"), Some(location.as_str()));

    let r = c
        .send(
            "PATCH",
            &location,
            &[("content-range", "100000-249999")],
            b.to_vec(),
        )
        .await;
    assert_eq!((r.status, r.header("range")), (202, Some("0-249999")));

    // Close without a digest; with a malformed one.
    let r = c.send("PUT", &location, &[], "").await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));
    let r = c
        .send("PUT", &format!("{location}?digest=sha256:12"), &[], "")
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));

    // Close with the last chunk.
    let r = c
        .send(
            "PUT",
            &format!("{location}?digest={digest}"),
            &[("content-range", "250000-299999")],
            last.to_vec(),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("location").unwrap(),
        format!("/v2/demo/big/blobs/{digest}")
    );
    assert_eq!(r.header("docker-content-digest").unwrap(), digest);
    assert_eq!(
        c.get(&format!("/v2/demo/big/blobs/{digest}")).await.body,
        data
    );

    // The session is gone.
    let r = c.get(&location).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "BLOB_UPLOAD_UNKNOWN")
    );
    let r = c.send("PATCH", &location, &[], "x").await;
    assert_eq!(r.status, 404);

    // Digest mismatch on close: 400, nothing visible, session spent.
    let start = c.send("POST", "/v2/demo/big/blobs/uploads/", &[], "").await;
    let loc = start.header("location").unwrap().to_owned();
    c.send("PATCH", &loc, &[], "some bytes").await;
    let wrong = sha256(b"other bytes");
    let r = c
        .send("PUT", &format!("{loc}?digest={wrong}"), &[], "")
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));
    assert_eq!(
        c.get(&format!("/v2/demo/big/blobs/{wrong}")).await.status,
        404
    );
    assert_eq!(c.get(&loc).await.status, 404);

    // Streamed chunks without Content-Range, closed with a sha512 digest.
    let start = c.send("POST", "/v2/demo/big/blobs/uploads/", &[], "").await;
    let loc = start.header("location").unwrap().to_owned();
    assert_eq!(c.send("PATCH", &loc, &[], "part one,").await.status, 202);
    assert_eq!(
        c.send("PATCH", &loc, &[], " part two")
            .await
            .header("range"),
        Some("0-17")
    );
    let d512 = sha512(b"part one, part two");
    assert_eq!(
        c.send("PUT", &format!("{loc}?digest={d512}"), &[], "")
            .await
            .status,
        201
    );

    // An upload session belongs to its repository, and ids are not paths.
    let start = c.send("POST", "/v2/demo/big/blobs/uploads/", &[], "").await;
    let loc = start.header("location").unwrap().to_owned();
    let id = loc.rsplit('/').next().unwrap();
    let r = c.get(&format!("/v2/demo/other/blobs/uploads/{id}")).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "BLOB_UPLOAD_UNKNOWN")
    );
    let r = c
        .get("/v2/demo/big/blobs/uploads/..%2f..%2fdrawbridge.db")
        .await;
    assert_eq!(r.status, 404);

    // Cancel.
    assert_eq!(c.send("DELETE", &loc, &[], "").await.status, 204);
    assert_eq!(c.get(&loc).await.status, 404);
}

fn image_manifest(
    config: &str,
    config_size: usize,
    layers: &[(&str, usize)],
    extra: serde_json::Value,
) -> Vec<u8> {
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": layers.iter().map(|(d, s)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s})).collect::<Vec<_>>(),
    });
    if let serde_json::Value::Object(extra) = extra {
        for (k, v) in extra {
            m[k] = v;
        }
    }
    serde_json::to_vec(&m).unwrap()
}

#[tokio::test]
async fn manifests_are_byte_exact_and_checked() {
    let db = Drawbridge::start_with(&["--max-manifest-bytes", "65536"]);
    let c = db
        .client()
        .bearer(&db.token("alice", &["*:pull,push,delete"]));
    let (bytes, digest) =
        push_package(&c, "demo/pkg", "v1", b"\0asm\x01\0\0\0", b"[[listen]]\n").await;

    for reference in ["v1".to_owned(), digest.clone()] {
        let g = c.get(&format!("/v2/demo/pkg/manifests/{reference}")).await;
        assert_eq!(g.status, 200);
        assert_eq!(g.body, bytes, "served bytes differ from pushed bytes");
        assert_eq!(g.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(g.header("docker-content-digest"), Some(digest.as_str()));
        let h = c
            .send(
                "HEAD",
                &format!("/v2/demo/pkg/manifests/{reference}"),
                &[],
                "",
            )
            .await;
        assert_eq!(h.status, 200);
        assert!(h.body.is_empty());
        assert_eq!(h.header("content-length").unwrap(), bytes.len().to_string());
    }
    // Fetch by the sha512 digest of the same bytes.
    let d512 = sha512(&bytes);
    let g = c.get(&format!("/v2/demo/pkg/manifests/{d512}")).await;
    assert_eq!(
        (g.status, g.header("docker-content-digest")),
        (200, Some(d512.as_str()))
    );

    // Push by digest: 201 with Location and the digest.
    let r = c
        .push_manifest("demo/pkg", &digest, &bytes, OCI_MANIFEST)
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("location").unwrap(),
        format!("/v2/demo/pkg/manifests/{digest}")
    );
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    // Push by a digest the bytes do not have.
    let r = c
        .push_manifest("demo/pkg", &sha256(b"x"), &bytes, OCI_MANIFEST)
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));

    // Unknown manifests.
    let r = c.get("/v2/demo/pkg/manifests/nope").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    let r = c
        .get(&format!("/v2/demo/pkg/manifests/{}", sha256(b"none")))
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    assert_eq!(
        c.send("HEAD", "/v2/demo/pkg/manifests/nope", &[], "")
            .await
            .status,
        404
    );

    // A manifest referencing a blob the repository does not hold.
    let config = c
        .push_blob("demo/pkg", b"{\"architecture\":\"wasm\"}")
        .await;
    let missing = sha256(b"layer never pushed");
    let m = image_manifest(&config, 23, &[(&missing, 5)], serde_json::json!({}));
    let r = c
        .push_manifest("demo/pkg", "broken", &m, OCI_MANIFEST)
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    assert_eq!(c.get("/v2/demo/pkg/manifests/broken").await.status, 404);

    // Invalid manifests: not JSON, truncated, wrong types, schema version, media type mismatch.
    let good = image_manifest(&config, 23, &[], serde_json::json!({}));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not json".to_vec(), OCI_MANIFEST),
        (good[..good.len() / 2].to_vec(), OCI_MANIFEST),
        (b"[]".to_vec(), OCI_MANIFEST),
        (
            image_manifest(&config, 23, &[], serde_json::json!({"schemaVersion": 1})),
            OCI_MANIFEST,
        ),
        (
            image_manifest(&config, 23, &[], serde_json::json!({"layers": "x"})),
            OCI_MANIFEST,
        ),
        (
            image_manifest(
                &config,
                23,
                &[],
                serde_json::json!({"config": {"digest": "sha256:zz"}}),
            ),
            OCI_MANIFEST,
        ),
        (good.clone(), OCI_INDEX),
        (good.clone(), "application/x-unknown"),
    ];
    for (body, media_type) in cases {
        let r = c.push_manifest("demo/pkg", "bad", &body, media_type).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "MANIFEST_INVALID"),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    // Wrong size for a stored blob.
    let r = c
        .push_manifest(
            "demo/pkg",
            "bad",
            &image_manifest(&config, 999, &[], serde_json::json!({})),
            OCI_MANIFEST,
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_INVALID")
    );
    assert_eq!(c.get("/v2/demo/pkg/manifests/bad").await.status, 404);

    // Oversized manifests: refused with 413 (declared length, and streamed without one).
    let pad = "x".repeat(70_000);
    let big = image_manifest(
        &config,
        23,
        &[],
        serde_json::json!({"annotations": {"pad": pad}}),
    );
    let r = c.push_manifest("demo/pkg", "big", &big, OCI_MANIFEST).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (413, "MANIFEST_INVALID")
    );
    assert_eq!(c.get("/v2/demo/pkg/manifests/big").await.status, 404);

    // Invalid tags.
    let r = c
        .push_manifest("demo/pkg", ".hidden", &good, OCI_MANIFEST)
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_INVALID")
    );
    // A pull by a reference that is neither a tag nor a digest finds nothing: 404, which is
    // what the OCI conformance suite asks for (`.INVALID_MANIFEST_NAME` is its probe).
    let long = "t".repeat(129);
    for bad in [
        long.as_str(),
        ".INVALID_MANIFEST_NAME",
        "sha256:zz",
        "md5:00",
    ] {
        let r = c.get(&format!("/v2/demo/pkg/manifests/{bad}")).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (404, "MANIFEST_UNKNOWN"),
            "{bad}"
        );
        let head = c
            .send("HEAD", &format!("/v2/demo/pkg/manifests/{bad}"), &[], "")
            .await;
        assert_eq!(head.status, 404, "HEAD {bad}");
    }

    // An index over the package.
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest, "size": bytes.len()}]
    }))
    .unwrap();
    assert_eq!(
        c.push_manifest("demo/pkg", "multi", &index, OCI_INDEX)
            .await
            .status,
        201
    );
    let g = c.get("/v2/demo/pkg/manifests/multi").await;
    assert_eq!(
        (g.header("content-type"), g.body.clone()),
        (Some(OCI_INDEX), index)
    );
    let orphan_index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(b"no"), "size": 2}]
    }))
    .unwrap();
    let r = c
        .push_manifest("demo/pkg", "orphan", &orphan_index, OCI_INDEX)
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
}

#[tokio::test]
async fn tag_listing_is_lexical_and_paged() {
    let db = Drawbridge::start();
    let c = db.client().bearer(&db.token("alice", &[]));
    let (bytes, _) = push_package(&c, "demo/tags", "v1", b"m", b"c").await;
    for tag in ["b", "a", "C", "v10", "v2", "a1"] {
        assert_eq!(
            c.push_manifest("demo/tags", tag, &bytes, OCI_MANIFEST)
                .await
                .status,
            201
        );
    }
    let all = c.get("/v2/demo/tags/tags/list").await;
    assert_eq!(all.status, 200);
    assert_eq!(
        all.json(),
        serde_json::json!({"name": "demo/tags", "tags": ["C", "a", "a1", "b", "v1", "v10", "v2"]})
    );
    assert!(all.header("link").is_none());

    let p1 = c.get("/v2/demo/tags/tags/list?n=3").await;
    assert_eq!(p1.json()["tags"], serde_json::json!(["C", "a", "a1"]));
    assert_eq!(
        p1.header("link"),
        Some("</v2/demo/tags/tags/list?n=3&last=a1>; rel=\"next\"")
    );
    let p2 = c.get("/v2/demo/tags/tags/list?n=3&last=a1").await;
    assert_eq!(p2.json()["tags"], serde_json::json!(["b", "v1", "v10"]));
    let p3 = c.get("/v2/demo/tags/tags/list?n=3&last=v10").await;
    assert_eq!(p3.json()["tags"], serde_json::json!(["v2"]));
    assert!(p3.header("link").is_none());
    let p0 = c.get("/v2/demo/tags/tags/list?n=0").await;
    assert_eq!(p0.json()["tags"], serde_json::json!([]));
    let r = c.get("/v2/demo/tags/tags/list?n=-1").await;
    assert_eq!(r.status, 400);

    let r = c.get("/v2/demo/none/tags/list").await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "NAME_UNKNOWN"));
}

#[tokio::test]
async fn referrers_list_and_filter() {
    let db = Drawbridge::start();
    let c = db.client().bearer(&db.token("alice", &[]));
    let (bytes, subject) = push_package(&c, "demo/ref", "v1", b"module", b"config").await;
    let empty = sha256(b"{}");
    let sig_blob = c.push_blob("demo/ref", b"signature").await;
    let artifact = |artifact_type: &str, note: &str| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": sig_blob, "size": 9}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": bytes.len()},
            "annotations": {"note": note}
        }))
        .unwrap()
    };
    let sig = artifact("application/vnd.example.signature", "sig");
    let sbom = artifact("application/vnd.example.sbom", "sbom");
    for m in [&sig, &sbom] {
        let d = sha256(m);
        let r = c.push_manifest("demo/ref", &d, m, OCI_MANIFEST).await;
        assert_eq!(r.status, 201);
        assert_eq!(r.header("oci-subject"), Some(subject.as_str()));
    }

    let r = c.get(&format!("/v2/demo/ref/referrers/{subject}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(OCI_INDEX));
    assert!(r.header("oci-filters-applied").is_none());
    let index = r.json();
    assert_eq!(index["mediaType"], OCI_INDEX);
    let mut listed: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["digest"].as_str().unwrap().to_owned(),
                d["artifactType"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    listed.sort();
    let mut want = vec![
        (sha256(&sig), "application/vnd.example.signature".to_owned()),
        (sha256(&sbom), "application/vnd.example.sbom".to_owned()),
    ];
    want.sort();
    assert_eq!(listed, want);
    let sig_entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["digest"] == sha256(&sig).as_str())
        .unwrap();
    assert_eq!(sig_entry["size"].as_u64().unwrap() as usize, sig.len());
    assert_eq!(sig_entry["mediaType"], OCI_MANIFEST);
    assert_eq!(sig_entry["annotations"]["note"], "sig");

    let r = c
        .get(&format!(
            "/v2/demo/ref/referrers/{subject}?artifactType=application/vnd.example.sbom"
        ))
        .await;
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    let m = r.json()["manifests"].clone();
    assert_eq!(m.as_array().unwrap().len(), 1);
    assert_eq!(m[0]["digest"], sha256(&sbom).as_str());
    assert_eq!(m[0]["annotations"]["note"], "sbom");

    // No referrers: still 200 with an empty index.
    let r = c
        .get(&format!("/v2/demo/ref/referrers/{}", sha256(b"nothing")))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["manifests"], serde_json::json!([]));
    let r = c.get("/v2/demo/ref/referrers/sha256:bad").await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));

    // Deleting a referrer removes it from the list.
    let del = db
        .client()
        .bearer(&db.token("deleter", &["demo/*:pull,delete"]));
    assert_eq!(
        del.send(
            "DELETE",
            &format!("/v2/demo/ref/manifests/{}", sha256(&sig)),
            &[],
            ""
        )
        .await
        .status,
        202
    );
    let r = c.get(&format!("/v2/demo/ref/referrers/{subject}")).await;
    assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn deletes_of_tags_manifests_and_blobs() {
    let db = Drawbridge::start();
    let c = db
        .client()
        .bearer(&db.token("alice", &["*:pull,push,delete"]));
    let pusher = db.client().bearer(&db.token("bob", &["*:pull,push"]));
    let (bytes, digest) = push_package(&c, "demo/del", "v1", b"module", b"config").await;
    assert_eq!(
        c.push_manifest("demo/del", "v2", &bytes, OCI_MANIFEST)
            .await
            .status,
        201
    );

    // Without the delete scope: 403 DENIED, nothing removed.
    let r = pusher
        .send("DELETE", "/v2/demo/del/manifests/v1", &[], "")
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "DENIED"));
    // Anonymous: 401.
    let r = db
        .client()
        .send("DELETE", "/v2/demo/del/manifests/v1", &[], "")
        .await;
    assert_eq!(r.status, 401);

    // Delete a tag: the manifest stays under its digest and its other tag.
    assert_eq!(
        c.send("DELETE", "/v2/demo/del/manifests/v1", &[], "")
            .await
            .status,
        202
    );
    assert_eq!(c.get("/v2/demo/del/manifests/v1").await.status, 404);
    assert_eq!(c.get("/v2/demo/del/manifests/v2").await.status, 200);
    let r = c.send("DELETE", "/v2/demo/del/manifests/v1", &[], "").await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );

    // Delete by digest: every tag goes with it (no dangling tag).
    assert_eq!(
        c.send(
            "DELETE",
            &format!("/v2/demo/del/manifests/{digest}"),
            &[],
            ""
        )
        .await
        .status,
        202
    );
    assert_eq!(
        c.get(&format!("/v2/demo/del/manifests/{digest}"))
            .await
            .status,
        404
    );
    assert_eq!(c.get("/v2/demo/del/manifests/v2").await.status, 404);
    assert_eq!(
        c.get("/v2/demo/del/tags/list").await.json()["tags"],
        serde_json::json!([])
    );
    let r = c
        .send(
            "DELETE",
            &format!("/v2/demo/del/manifests/{digest}"),
            &[],
            "",
        )
        .await;
    assert_eq!(r.status, 404);
    let r = c
        .send("DELETE", "/v2/demo/del/manifests/sha256:00", &[], "")
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));

    // Delete a blob.
    let blob = sha256(b"module");
    assert_eq!(
        c.send("DELETE", &format!("/v2/demo/del/blobs/{blob}"), &[], "")
            .await
            .status,
        202
    );
    let r = c.get(&format!("/v2/demo/del/blobs/{blob}")).await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "BLOB_UNKNOWN"));
    let r = c
        .send("DELETE", &format!("/v2/demo/del/blobs/{blob}"), &[], "")
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "BLOB_UNKNOWN"));
    let r = c.send("DELETE", "/v2/demo/del/blobs/nope", &[], "").await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));

    // Methods an endpoint does not have: 405 UNSUPPORTED.
    let r = c
        .send("PUT", &format!("/v2/demo/del/blobs/{blob}"), &[], "")
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (405, "UNSUPPORTED"));
    let r = c.send("POST", "/v2/demo/del/tags/list", &[], "").await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn cross_repository_mount() {
    let db = Drawbridge::start();
    let alice = db.client().bearer(&db.token("alice", &["*:pull,push"]));
    let bob = db.client().bearer(&db.token("bob", &["bob/*:pull,push"]));
    let digest = alice.push_blob("alice/src", b"shared layer").await;

    let r = alice
        .send(
            "POST",
            &format!("/v2/alice/dst/blobs/uploads/?mount={digest}&from=alice/src"),
            &[],
            "",
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("location").unwrap(),
        format!("/v2/alice/dst/blobs/{digest}")
    );
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(
        alice
            .get(&format!("/v2/alice/dst/blobs/{digest}"))
            .await
            .body,
        b"shared layer"
    );

    // Not in the source repository: fall back to a fresh upload (202).
    let other = sha256(b"not there");
    let r = alice
        .send(
            "POST",
            &format!("/v2/alice/dst/blobs/uploads/?mount={other}&from=alice/src"),
            &[],
            "",
        )
        .await;
    assert_eq!(r.status, 202);
    assert!(
        r.header("location")
            .unwrap()
            .starts_with("/v2/alice/dst/blobs/uploads/")
    );

    // Bob may not read alice/src (private by default): no mount, a fresh upload instead, and
    // the blob is not visible in his repository.
    let r = bob
        .send(
            "POST",
            &format!("/v2/bob/dst/blobs/uploads/?mount={digest}&from=alice/src"),
            &[],
            "",
        )
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(
        bob.get(&format!("/v2/bob/dst/blobs/{digest}")).await.status,
        404
    );

    // A mount with a malformed digest or source name is refused.
    let r = alice
        .send(
            "POST",
            "/v2/alice/dst/blobs/uploads/?mount=sha256:1&from=alice/src",
            &[],
            "",
        )
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));
    let r = alice
        .send(
            "POST",
            &format!("/v2/alice/dst/blobs/uploads/?mount={digest}&from=Alice/..%2fsrc"),
            &[],
            "",
        )
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "NAME_INVALID"));
}

#[tokio::test]
async fn bad_names_are_rejected_before_storage() {
    let db = Drawbridge::start();
    let c = db
        .client()
        .bearer(&db.token("alice", &["*:pull,push,delete"]));
    let long_component = "a".repeat(129);
    let long_name = vec!["abcdefghij"; 24].join("/");
    let names = [
        "UPPER/case",
        "demo/../etc",
        "..",
        "demo/./x",
        "demo//x",
        "demo/x.",
        "-demo",
        "demo%2F..%2Fx",
        "demo/%2e%2e/x",
        "a___b",
        long_component.as_str(),
        long_name.as_str(),
    ];
    let digest = sha256(b"x");
    for name in names {
        for (method, path) in [
            ("POST", format!("/v2/{name}/blobs/uploads/?digest={digest}")),
            ("POST", format!("/v2/{name}/blobs/uploads/")),
            ("PUT", format!("/v2/{name}/manifests/latest")),
            ("GET", format!("/v2/{name}/tags/list")),
            ("GET", format!("/v2/{name}/blobs/{digest}")),
        ] {
            let r = c.send(method, &path, &[], "x").await;
            // hyper itself may refuse a path it cannot parse; otherwise NAME_INVALID.
            assert!(r.status == 400, "{method} {path}: {}", r.status);
            if !r.body.is_empty() {
                assert_eq!(r.error_code(), "NAME_INVALID", "{method} {path}");
            }
        }
    }
    // Nothing reached storage: no repository, no staged upload, no blob.
    assert_eq!(db.admin(&["repo", "list", "--json"]).trim(), "[]");
    assert_eq!(
        std::fs::read_dir(db.data_dir.join("uploads"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(db.data_dir.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}
