//! Who may read what, against the real server process over real TLS: tokens and visibility,
//! and Keep certificates (mTLS) judged by a repository's release policy. Every refusal must
//! release nothing and name the rule that failed.

mod drawbridge_support;

use drawbridge_support::*;

/// Write a policy file trusting `ca` and set it on `repo`.
fn set_policy(db: &Drawbridge, repo: &str, ca: &TestCa, platforms: &[&str], require_name: bool) {
    let dir = db.dir.path();
    std::fs::write(dir.join("steward-ca.pem"), ca.pem()).unwrap();
    let platforms: Vec<String> = platforms.iter().map(|p| format!("\"{p}\"")).collect();
    let policy = format!(
        "trusted_ca_files = [\"steward-ca.pem\"]\nplatforms = [{}]\nrequire_workload_name = {require_name}\n",
        platforms.join(", ")
    );
    let file = dir.join(format!("{}.policy.toml", repo.replace('/', "_")));
    std::fs::write(&file, policy).unwrap();
    db.admin(&["repo", "policy", repo, file.to_str().unwrap()]);
}

/// Assert a response releases nothing of the package and says why.
fn assert_refused(r: &Resp, status: u16, code: &str, secret: &[u8]) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.error_code(), code);
    assert!(
        !r.body.windows(secret.len()).any(|w| w == secret),
        "refusal leaked package content"
    );
}

#[tokio::test]
async fn private_packages_need_a_token_with_scope() {
    let db = Drawbridge::start();
    let owner = db.client().bearer(&db.token("owner", &["*:pull,push"]));
    let secret_module = b"secret module bytes".to_vec();
    let (manifest, digest) =
        push_package(&owner, "team/private", "v1", &secret_module, b"cfg").await;
    let blob = sha256(&secret_module);
    let paths = [
        "/v2/team/private/manifests/v1".to_owned(),
        format!("/v2/team/private/manifests/{digest}"),
        format!("/v2/team/private/blobs/{blob}"),
        "/v2/team/private/tags/list".to_owned(),
        format!("/v2/team/private/referrers/{digest}"),
    ];

    // Pushed repositories are private by default.
    let anon = db.client();
    let wrong = db.client().bearer("mdb_not_a_real_token");
    let other_user = db.client().basic("owner", &db.token("mallory", &[]));
    let out_of_scope = db.client().bearer(&db.token("eve", &["other/*:pull"]));
    for path in &paths {
        let r = anon.get(path).await;
        assert_refused(&r, 401, "UNAUTHORIZED", &secret_module);
        assert!(r.header("www-authenticate").is_some());
        assert_refused(&wrong.get(path).await, 401, "UNAUTHORIZED", &secret_module);
        assert_refused(
            &other_user.get(path).await,
            401,
            "UNAUTHORIZED",
            &secret_module,
        );
        assert_refused(&out_of_scope.get(path).await, 403, "DENIED", &secret_module);
        assert_eq!(owner.get(path).await.status, 200, "{path}");
    }
    // HEAD leaks nothing either.
    let r = anon
        .send("HEAD", "/v2/team/private/manifests/v1", &[], "")
        .await;
    assert_eq!(r.status, 401);
    assert!(r.header("docker-content-digest").is_none());
    // A nonexistent repository looks the same as a private one to the anonymous.
    assert_eq!(anon.get("/v2/team/nothing/manifests/v1").await.status, 401);

    // Pull-only tokens cannot push; push needs a token.
    let reader = db.client().bearer(&db.token("reader", &["team/*:pull"]));
    assert_eq!(
        reader.get("/v2/team/private/manifests/v1").await.body,
        manifest
    );
    let r = reader
        .send("POST", "/v2/team/private/blobs/uploads/", &[], "")
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "DENIED"));
    let r = anon
        .send("POST", "/v2/team/private/blobs/uploads/", &[], "")
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "UNAUTHORIZED"));
    let r = anon
        .push_manifest("team/private", "evil", &manifest, OCI_MANIFEST)
        .await;
    assert_eq!(r.status, 401);

    // Made public: anonymous reads work, anonymous writes still do not.
    db.admin(&["repo", "create", "team/private"]);
    assert_eq!(
        anon.get("/v2/team/private/manifests/v1").await.body,
        manifest
    );
    assert_eq!(
        anon.get(&format!("/v2/team/private/blobs/{blob}"))
            .await
            .body,
        secret_module
    );
    assert_eq!(
        anon.send("POST", "/v2/team/private/blobs/uploads/", &[], "")
            .await
            .status,
        401
    );
    assert_eq!(
        anon.send("DELETE", "/v2/team/private/manifests/v1", &[], "")
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn keep_certificates_failing_a_rule_are_refused_by_name() {
    let db = Drawbridge::start();
    let owner = db.client().bearer(&db.token("owner", &[]));
    let module = b"private workload module".to_vec();
    let (_, digest) = push_package(&owner, "demo/app", "v1", &module, b"cfg").await;
    let blob = sha256(&module);
    let steward = TestCa::new("steward CA");
    let rogue = TestCa::new("rogue CA");
    let name = format!("oci://{}/demo/app", db.authority());

    // No policy yet: even a Steward certificate naming the package is refused.
    let keep = db.keep_client(&steward.keep(Some(&name), None, false));
    let r = keep.get("/v2/demo/app/manifests/v1").await;
    assert_refused(&r, 403, "DENIED", &module);
    assert_eq!(r.json()["errors"][0]["detail"]["rule"], "policy");

    set_policy(&db, "demo/app", &steward, &["snp", "tdx"], true);
    let cases = [
        (
            "untrusted CA",
            rogue.keep(Some(&name), None, false),
            "trusted_ca",
        ),
        (
            "another package",
            steward.keep(
                Some(&format!("oci://{}/demo/other", db.authority())),
                None,
                false,
            ),
            "workload",
        ),
        (
            "another registry",
            steward.keep(Some("oci://registry.example:443/demo/app"), None, false),
            "workload",
        ),
        (
            "no workload name",
            steward.keep(None, None, false),
            "workload",
        ),
        ("expired", steward.keep(Some(&name), None, true), "validity"),
        (
            "no attestation result",
            steward.keep(Some(&name), None, false),
            "attestation",
        ),
    ];
    for (what, leaf, rule) in cases {
        let keep = db.keep_client(&leaf);
        for path in [
            "/v2/demo/app/manifests/v1".to_owned(),
            format!("/v2/demo/app/blobs/{blob}"),
            format!("/v2/demo/app/manifests/{digest}"),
        ] {
            let r = keep.get(&path).await;
            assert_refused(&r, 403, "DENIED", &module);
            assert_eq!(
                r.json()["errors"][0]["detail"]["rule"],
                rule,
                "{what}: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
        assert!(
            db.log_contains(&format!("rule=\"{rule}\"")),
            "{what}: rule not logged:\n{}",
            db.log_text()
        );
    }

    // A Keep certificate never authorises a push.
    let keep = db.keep_client(&steward.keep(Some(&name), None, false));
    let r = keep
        .send("POST", "/v2/demo/app/blobs/uploads/", &[], "")
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "DENIED"));
}

#[tokio::test]
async fn attested_keeps_get_exactly_what_the_policy_allows() {
    let db = Drawbridge::start();
    let owner = db.client().bearer(&db.token("owner", &[]));
    let module = b"confidential module".to_vec();
    let (manifest, digest) = push_package(&owner, "demo/app", "v1", &module, b"cfg").await;
    let (other_manifest, _) =
        push_package(&owner, "demo/other", "v1", b"other module", b"cfg").await;
    let blob = sha256(&module);
    let steward = TestCa::new("steward CA");
    let name = format!("oci://{}/demo/app", db.authority());
    set_policy(&db, "demo/app", &steward, &["snp", "tdx"], true);
    set_policy(&db, "demo/other", &steward, &["snp"], true);

    // An attested SNP Keep whose certificate names the package gets manifest and blobs.
    let snp = steward.keep(
        Some(&name),
        Some(attestation("snp", true, false, &name)),
        false,
    );
    let keep = db.keep_client(&snp);
    let g = keep.get("/v2/demo/app/manifests/v1").await;
    assert_eq!((g.status, &g.body), (200, &manifest));
    assert_eq!(
        keep.get(&format!("/v2/demo/app/manifests/{digest}"))
            .await
            .body,
        manifest
    );
    assert_eq!(
        keep.get(&format!("/v2/demo/app/blobs/{blob}")).await.body,
        module
    );
    assert!(db.log_contains("released to Keep"));
    // ...but not another private package, nor to push.
    let r = keep.get("/v2/demo/other/manifests/v1").await;
    assert_refused(&r, 403, "DENIED", &other_manifest);
    assert_eq!(r.json()["errors"][0]["detail"]["rule"], "workload");
    let r = keep
        .send("POST", "/v2/demo/app/blobs/uploads/", &[], "")
        .await;
    assert_eq!(r.status, 403);

    // Refused: nil where the policy wants SNP/TDX; SGX not listed; a debug guest; an
    // expired certificate with a perfect attestation result.
    let refused = [
        (
            "nil",
            steward.keep(
                Some(&name),
                Some(attestation("nil", false, false, &name)),
                false,
            ),
            "platform",
        ),
        (
            "sgx",
            steward.keep(
                Some(&name),
                Some(attestation("sgx", true, false, &name)),
                false,
            ),
            "platform",
        ),
        (
            "debug",
            steward.keep(
                Some(&name),
                Some(attestation("tdx", true, true, &name)),
                false,
            ),
            "debug",
        ),
        (
            "expired",
            steward.keep(
                Some(&name),
                Some(attestation("snp", true, false, &name)),
                true,
            ),
            "validity",
        ),
    ];
    for (what, leaf, rule) in refused {
        let keep = db.keep_client(&leaf);
        for path in [
            "/v2/demo/app/manifests/v1".to_owned(),
            format!("/v2/demo/app/blobs/{blob}"),
        ] {
            let r = keep.get(&path).await;
            assert_refused(&r, 403, "DENIED", &module);
            assert_eq!(r.json()["errors"][0]["detail"]["rule"], rule, "{what}");
        }
    }

    // A policy that lists nil releases to a nil Keep (tests and demos say so explicitly).
    set_policy(&db, "demo/app", &steward, &["nil"], true);
    let nil = steward.keep(
        Some(&name),
        Some(attestation("nil", false, false, &name)),
        false,
    );
    assert_eq!(
        db.keep_client(&nil)
            .get("/v2/demo/app/manifests/v1")
            .await
            .body,
        manifest
    );
    // ...and then no longer to the SNP Keep (platform not listed).
    let r = db.keep_client(&snp).get("/v2/demo/app/manifests/v1").await;
    assert_eq!(r.json()["errors"][0]["detail"]["rule"], "platform");

    // Without the workload-name rule, any package this CA's Keeps ask for is released.
    set_policy(&db, "demo/other", &steward, &["snp"], false);
    assert_eq!(
        db.keep_client(&snp)
            .get("/v2/demo/other/manifests/v1")
            .await
            .body,
        other_manifest
    );

    // Clearing the policy closes the repository to every Keep again.
    db.admin(&["repo", "policy", "demo/other", "--clear"]);
    let r = db
        .keep_client(&snp)
        .get("/v2/demo/other/manifests/v1")
        .await;
    assert_eq!(r.json()["errors"][0]["detail"]["rule"], "policy");
}
