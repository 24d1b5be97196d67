//! Faults against the real server process: SIGKILL during uploads and restart (no partial blob
//! is ever served, every acknowledged push is intact, interrupted chunked uploads resume),
//! concurrent pushes of the same and of different blobs, and a TLS certificate replaced under
//! a running server (SIGHUP), well-formed or not.

mod drawbridge_support;

use std::sync::Arc;

use drawbridge_support::*;
use sha2::Digest as _;
use tokio::io::AsyncWriteExt;

/// Every file in the blob store holds exactly the bytes its name says.
fn assert_store_consistent(db: &Drawbridge) {
    for alg in ["sha256", "sha512"] {
        let dir = db.data_dir.join("blobs").join(alg);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let bytes = std::fs::read(entry.path()).unwrap();
            let actual = match alg {
                "sha256" => hex::encode(sha2::Sha256::digest(&bytes)),
                _ => hex::encode(sha2::Sha512::digest(&bytes)),
            };
            assert_eq!(
                actual,
                entry.file_name().to_string_lossy(),
                "corrupt blob file {}",
                entry.path().display()
            );
        }
    }
}

/// Open a TLS connection and send a request whose body is cut short: headers promise
/// `declared` bytes, only `sent` follow. The connection is returned still open.
async fn half_request(
    db: &Drawbridge,
    token: &str,
    method: &str,
    path: &str,
    declared: usize,
    sent: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(db.server_ca.cert.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(db.addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            rustls_pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}\r\ncontent-length: {declared}\r\n\r\n",
        db.addr
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(sent).await.unwrap();
    tls.flush().await.unwrap();
    tls
}

#[tokio::test]
async fn sigkill_during_uploads_loses_nothing_acknowledged() {
    let mut db = Drawbridge::start();
    let token = db.token("alice", &["*:pull,push,delete"]);
    let c = db.client().bearer(&token);

    // Completed before the crash: a package and a chunked blob.
    let (manifest, manifest_digest) =
        push_package(&c, "demo/app", "v1", &vec![7u8; 200_000], b"[cfg]").await;

    // A chunked upload with one acknowledged chunk, to be resumed after the crash.
    let data: Vec<u8> = (0..500_000u32).map(|i| (i % 253) as u8).collect();
    let start = c.send("POST", "/v2/demo/app/blobs/uploads/", &[], "").await;
    let location = start.header("location").unwrap().to_owned();
    let r = c
        .send(
            "PATCH",
            &location,
            &[("content-range", "0-199999")],
            data[..200_000].to_vec(),
        )
        .await;
    assert_eq!(r.status, 202);

    // Mid-flight at the moment of the kill: a monolithic upload and a chunk, both half sent.
    let partial: Vec<u8> = vec![42u8; 1_000_000];
    let partial_digest = sha256(&partial);
    let _mono = half_request(
        &db,
        &token,
        "POST",
        &format!("/v2/demo/app/blobs/uploads/?digest={partial_digest}"),
        partial.len(),
        &partial[..400_000],
    )
    .await;
    let _chunk = half_request(
        &db,
        &token,
        "PATCH",
        &location,
        300_000,
        &data[200_000..300_000],
    )
    .await;
    // The server has read what was sent once it answers a later request on another connection
    // (same accept loop): make one round trip so the half requests are being processed.
    assert_eq!(
        c.get(&format!("/v2/demo/app/manifests/{manifest_digest}"))
            .await
            .status,
        200
    );
    // Give the server a moment to write what it received (no assertion depends on timing: the
    // checks below hold whether or not the half bodies reached the disk).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    db.restart();

    // Nothing partial is visible or on disk.
    let r = c.get(&format!("/v2/demo/app/blobs/{partial_digest}")).await;
    assert_eq!(r.status, 404);
    assert!(
        !db.data_dir
            .join("blobs/sha256")
            .join(&partial_digest["sha256:".len()..])
            .exists()
    );
    assert_store_consistent(&db);
    let staged: Vec<_> = std::fs::read_dir(db.data_dir.join("uploads"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        staged.len(),
        1,
        "only the resumable session's file remains: {staged:?}"
    );

    // Completed pushes are intact, byte for byte.
    let g = c.get("/v2/demo/app/manifests/v1").await;
    assert_eq!((g.status, &g.body), (200, &manifest));
    let g = c
        .get(&format!(
            "/v2/demo/app/blobs/{}",
            sha256(&vec![7u8; 200_000])
        ))
        .await;
    assert_eq!(g.body, vec![7u8; 200_000]);

    // The chunked upload resumes from what was acknowledged, not what was half sent.
    let s = c.get(&location).await;
    assert_eq!((s.status, s.header("range")), (204, Some("0-199999")));
    let r = c
        .send(
            "PATCH",
            &location,
            &[("content-range", "200000-499999")],
            data[200_000..].to_vec(),
        )
        .await;
    assert_eq!(r.status, 202);
    let digest = sha256(&data);
    let r = c
        .send("PUT", &format!("{location}?digest={digest}"), &[], "")
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        c.get(&format!("/v2/demo/app/blobs/{digest}")).await.body,
        data
    );
    assert_store_consistent(&db);
}

#[tokio::test]
async fn sigkill_in_the_middle_of_a_push_loop() {
    let mut db = Drawbridge::start();
    let token = db.token("alice", &[]);
    let c = db.client().bearer(&token);

    // Push distinct blobs and tags back to back; kill the server while they stream.
    let pusher = {
        let c = c.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..400u32 {
                let data: Vec<u8> = (0..50_000u32).map(|j| ((i * 31 + j) % 251) as u8).collect();
                let digest = sha256(&data);
                let (c2, path, body) = (
                    c.clone(),
                    format!("/v2/demo/loop/blobs/uploads/?digest={digest}"),
                    data.clone(),
                );
                let send = async move { c2.send("POST", &path, &[], body).await };
                // A killed server ends the connection (the client panics): stop there.
                let Ok(r) = tokio::task::spawn(send).await else {
                    break;
                };
                if r.status != 201 {
                    break;
                }
                acknowledged.push((digest, data));
            }
            acknowledged
        })
    };
    // Let some pushes complete, then kill.
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let r = c.get("/v2/demo/loop/tags/list").await;
        if r.status == 200 {
            break;
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    db.kill9();
    let acknowledged = pusher.await.unwrap();
    assert!(!acknowledged.is_empty());
    db.restart();

    assert_store_consistent(&db);
    for (digest, data) in &acknowledged {
        let g = c.get(&format!("/v2/demo/loop/blobs/{digest}")).await;
        assert_eq!(g.status, 200, "acknowledged blob {digest} lost");
        assert_eq!(&g.body, data);
    }
    assert_eq!(
        std::fs::read_dir(db.data_dir.join("uploads"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn concurrent_pushes_of_the_same_and_different_blobs() {
    let db = Drawbridge::start();
    let c = db.client().bearer(&db.token("alice", &[]));
    let same: Vec<u8> = (0..1_000_000u32).map(|i| (i % 241) as u8).collect();
    let same_digest = sha256(&same);

    let mut tasks = Vec::new();
    for i in 0..6u32 {
        let c = c.clone();
        let same = same.clone();
        let digest = same_digest.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                // Monolithic.
                c.send(
                    "POST",
                    &format!("/v2/demo/same/blobs/uploads/?digest={digest}"),
                    &[],
                    same,
                )
                .await
                .status
            } else {
                // Chunked, two chunks.
                let start = c
                    .send("POST", "/v2/demo/same/blobs/uploads/", &[], "")
                    .await;
                let loc = start.header("location").unwrap().to_owned();
                c.send(
                    "PATCH",
                    &loc,
                    &[("content-range", "0-499999")],
                    same[..500_000].to_vec(),
                )
                .await;
                c.send(
                    "PUT",
                    &format!("{loc}?digest={digest}"),
                    &[("content-range", "500000-999999")],
                    same[500_000..].to_vec(),
                )
                .await
                .status
            }
        }));
    }
    for i in 0..6u32 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let data = vec![i as u8; 300_000 + i as usize];
            c.send(
                "POST",
                &format!("/v2/demo/diff/blobs/uploads/?digest={}", sha256(&data)),
                &[],
                data,
            )
            .await
            .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    // One copy of the shared blob, intact; every different blob present.
    let files: Vec<_> = std::fs::read_dir(db.data_dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 7, "{files:?}");
    assert_eq!(
        c.get(&format!("/v2/demo/same/blobs/{same_digest}"))
            .await
            .body,
        same
    );
    for i in 0..6u32 {
        let data = vec![i as u8; 300_000 + i as usize];
        assert_eq!(
            c.get(&format!("/v2/demo/diff/blobs/{}", sha256(&data)))
                .await
                .body,
            data
        );
    }
    assert_store_consistent(&db);
    assert_eq!(
        std::fs::read_dir(db.data_dir.join("uploads"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn sighup_reloads_the_tls_certificate_and_a_bad_one_is_refused() {
    let db = Drawbridge::start();
    let (cert, key) = db.tls_files();
    let first = moat_testkit::tls::presented_chain(db.addr, "localhost");

    // A renewed certificate from the same CA, written over the files: served after SIGHUP.
    let renewed = db.server_ca.server();
    let dir = tempfile::tempdir().unwrap();
    let (new_cert, new_key) = renewed.write(dir.path(), "renewed");
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    assert_eq!(
        moat_testkit::tls::presented_chain(db.addr, "localhost")[0],
        first[0],
        "nothing changes before the signal"
    );
    moat_testkit::process::sighup(db.pid());
    moat_testkit::tls::wait_for_presented_leaf(db.addr, "localhost", &renewed.chain[0]);

    // A key that does not match the certificate: refused, the renewed one stays.
    let stranger = db.server_ca.server();
    let (_, wrong_key) = stranger.write(dir.path(), "stranger");
    std::fs::copy(&wrong_key, &key).unwrap();
    moat_testkit::process::sighup(db.pid());
    let deadline = std::time::Instant::now() + moat_testkit::WAIT;
    while !db
        .log
        .lock()
        .unwrap()
        .contains("cannot reload the TLS certificate")
    {
        assert!(std::time::Instant::now() < deadline, "no refusal logged");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        moat_testkit::tls::presented_chain(db.addr, "localhost")[0],
        renewed.chain[0]
    );
}
