//! The release an operator image names.

/// The tag of an image reference (`quay.io/x/y:v0.48.1@sha256:…` → `v0.48.1`).
pub fn image_tag(image: &str) -> Option<String> {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':').map(|(_, t)| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::image_tag;

    #[test]
    fn the_tag_is_read_past_registry_ports_and_digests() {
        assert_eq!(
            image_tag("quay.io/prometheus-operator/prometheus-operator:v0.48.1").as_deref(),
            Some("v0.48.1")
        );
        assert_eq!(
            image_tag("localhost:5000/x/y:v1@sha256:abc").as_deref(),
            Some("v1")
        );
        assert_eq!(image_tag("localhost:5000/x/y"), None);
    }
}
