//! OCI image manifest and descriptor types, with parsing that checks what a client relies on
//! (schema version, media types, digests, sizes) and refuses anything else with a typed error.

use std::collections::BTreeMap;

use super::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The bytes of the OCI empty descriptor's blob.
pub const OCI_EMPTY_BLOB: &[u8] = b"{}";
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// A content descriptor: what a blob is, its digest and its size.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// The descriptor of `bytes` (sha256) with this media type.
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Descriptor {
            media_type: media_type.to_owned(),
            digest: Digest::sha256_of(bytes),
            size: bytes.len() as u64,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }

    pub fn with_title(mut self, title: &str) -> Self {
        self.annotations
            .insert(TITLE_ANNOTATION.to_owned(), title.to_owned());
        self
    }

    pub fn title(&self) -> Option<&str> {
        self.annotations.get(TITLE_ANNOTATION).map(String::as_str)
    }
}

/// An OCI image manifest (`application/vnd.oci.image.manifest.v1+json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Why bytes are not an acceptable image manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON for an OCI image manifest: {0}")]
    Json(#[from] serde_json::Error),
    #[error("manifest schemaVersion is {0}, only 2 exists")]
    SchemaVersion(u32),
    #[error("manifest mediaType is {0:?}, expected {OCI_MANIFEST}")]
    MediaType(String),
    #[error("manifest has {0} layers; more than {MAX_LAYERS} is not a Moat package")]
    TooManyLayers(usize),
}

/// No Moat or Wasm package has more layers than this; bigger lists are refused early.
pub const MAX_LAYERS: usize = 64;

impl ImageManifest {
    /// Parse and check a manifest the registry served.
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest: ImageManifest = serde_json::from_slice(bytes)?;
        if manifest.schema_version != 2 {
            return Err(ManifestError::SchemaVersion(manifest.schema_version));
        }
        if let Some(mt) = &manifest.media_type
            && mt != OCI_MANIFEST
        {
            return Err(ManifestError::MediaType(mt.chars().take(100).collect()));
        }
        if manifest.layers.len() > MAX_LAYERS {
            return Err(ManifestError::TooManyLayers(manifest.layers.len()));
        }
        Ok(manifest)
    }

    /// The canonical bytes Moat pushes (compact JSON; the same input gives the same digest).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("manifest serialization cannot fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ImageManifest {
        ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            artifact_type: Some("application/vnd.moat.package.v1".into()),
            config: Descriptor::of(OCI_EMPTY, OCI_EMPTY_BLOB),
            layers: vec![Descriptor::of("application/wasm", b"\0asm").with_title("main.wasm")],
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        let bytes = m.to_bytes();
        assert_eq!(ImageManifest::parse(&bytes).unwrap(), m);
        assert_eq!(m.layers[0].title(), Some("main.wasm"));
    }

    #[test]
    fn refuses_bad_manifests() {
        let good = String::from_utf8(sample().to_bytes()).unwrap();
        let cases = [
            String::new(),
            good[..good.len() / 2].to_owned(),
            good.replace("\"schemaVersion\":2", "\"schemaVersion\":1"),
            good.replace("\"schemaVersion\":2", "\"schemaVersion\":\"2\""),
            good.replace(OCI_MANIFEST, OCI_INDEX),
            good.replace("sha256:", "md5:"),
            good.replace("\"size\":4", "\"size\":-4"),
            "[]".to_owned(),
            "null".to_owned(),
        ];
        for case in cases {
            assert!(
                ImageManifest::parse(case.as_bytes()).is_err(),
                "{case:?} accepted"
            );
        }
        let mut many = sample();
        many.layers = vec![many.layers[0].clone(); MAX_LAYERS + 1];
        assert!(matches!(
            ImageManifest::parse(&many.to_bytes()),
            Err(ManifestError::TooManyLayers(_))
        ));
    }

    #[test]
    fn mutated_manifests_never_panic_and_keep_digests_checked() {
        let good = sample().to_bytes();
        for i in 0..good.len() {
            for flip in [0x01u8, 0x20, 0x80] {
                let mut bytes = good.clone();
                bytes[i] ^= flip;
                // Either a typed error or a manifest whose descriptors still hold valid digests.
                if let Ok(m) = ImageManifest::parse(&bytes) {
                    assert_eq!(m.schema_version, 2);
                    let _ = m.config.digest.to_string();
                }
            }
        }
        for len in 0..good.len() {
            assert!(ImageManifest::parse(&good[..len]).is_err());
        }
    }
}
