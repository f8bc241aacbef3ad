//! TLS set-up shared by the fixture kubelet and the twin's API server.

use std::sync::Once;

/// Installs rustls' ring provider once per process (axum-server is built without a default).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider is already installed, which serves just as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
