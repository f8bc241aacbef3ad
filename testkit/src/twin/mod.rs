//! The cluster twin: one stateful stand-in Kubernetes API server (HTTPS, bearer token) with
//! version profiles, controllers standing in for what cannot run here, and a real data path
//! (fixture kubelets per Node, a real Prometheus per Prometheus CR). A stand-in for developing
//! the harness, never a proof about a real cluster. Every modelled behaviour cites its upstream
//! source in one form: owner/repo, a space, the path, `@` and the tag (the `citations` test
//! checks it).
//!
//! The layout, from the bottom floor up; each imports only downward:
//! - [`profile`] and [`selector`]: pure leaves (per-version behaviour; label/field selectors).
//! - [`storage`]: the object store, the registry of served types, and the defaulting every
//!   write gets.
//! - [`cluster`]: the shared state ([`Cluster`]) and the options a twin starts with.
//! - [`controllers`]: what reconciles objects (nodes, CRDs, workloads, pods, endpoints, the
//!   operator, ...). They reach the data path only through [`controllers::pods::Runtime`].
//! - [`apiserver`]: the HTTPS front: routing, discovery, OpenAPI, watch, wire formats,
//!   patch/apply, validation and schema, error answers, the proxies to nodes and pods.
//! - [`datapath`]: the real processes: fixture kubelets, a Prometheus container per
//!   Prometheus pod, the http_sd endpoint that connects them.
//! - this file: [`Twin`], the wiring that starts the server, the controllers' loop and the
//!   data path.

pub mod apiserver;
pub mod cluster;
pub mod controllers;
pub mod datapath;
pub mod profile;
pub mod selector;
pub mod storage;

pub use cluster::{random_loopback, upstream, Cluster, Faults, Recorded, Timing, TwinOptions};
pub use profile::Profile;

use anyhow::{Context, Result};
use base64::Engine;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A running twin; stops (and removes its containers) when dropped.
pub struct Twin {
    cluster: Arc<Cluster>,
    addr: SocketAddr,
    ca_pem: String,
    handle: axum_server::Handle,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    dir: tempfile::TempDir,
    datapath: Option<datapath::DataPath>,
}

impl Twin {
    /// Starts the API server, the controllers and (if enabled) the data path, with the
    /// namespaces a fresh cluster has and its nodes.
    ///
    /// # Errors
    /// When the certificates cannot be generated or the listener cannot bind.
    pub async fn start(opts: TwinOptions) -> Result<Twin> {
        crate::tls::install_crypto_provider();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "twin-ca");
        let ca_key = rcgen::KeyPair::generate()?;
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)
            .context("generating the twin's CA")?;
        let leaf_params = rcgen::CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "kubernetes".to_string(),
        ])?;
        let leaf_key = rcgen::KeyPair::generate()?;
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca)
            .context("signing the twin's serving certificate")?;
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            leaf.pem().into_bytes(),
            leaf_key.serialize_pem().into_bytes(),
        )
        .await
        .context("loading the twin's certificate into rustls")?;
        let listener =
            TcpListener::bind("127.0.0.1:0").context("binding the twin API to 127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let cluster = Arc::new(Cluster::new(opts.clone()));
        *cluster.addr.lock().unwrap() = Some(addr);
        controllers::bootstrap(&cluster);
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(listener, tls).handle(handle.clone());
        let app = apiserver::router(cluster.clone());
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = server.serve(app.into_make_service()).await {
                eprintln!("twin API server stopped: {e}");
            }
        })];
        let datapath = if opts.datapath {
            Some(datapath::DataPath::start(cluster.clone()).await?)
        } else {
            None
        };
        tasks.push(spawn_reconcilers(cluster.clone(), datapath.clone()));
        let dir = tempfile::tempdir().context("creating the twin's temp dir")?;
        let twin = Twin {
            cluster,
            addr,
            ca_pem: ca.pem(),
            handle,
            tasks,
            dir,
            datapath,
        };
        twin.write_kubeconfig(&twin.kubeconfig_path())?;
        Ok(twin)
    }

    /// Shared state, for tests that break the cluster on purpose or inject faults.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A kubeconfig in the twin's temp dir (removed with the twin).
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The kubeconfig text: CA data, server URL, bearer token.
    pub fn kubeconfig(&self) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let name = &self.cluster.opts.name;
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\n\
             users:\n- name: {name}-admin\n  user:\n    token: {}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {name}-admin\n\
             current-context: {name}\npreferences: {{}}\n",
            self.url(),
            self.cluster.admin_token
        )
    }

    /// Writes the kubeconfig to `path` (mode 0600).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, self.kubeconfig())
            .with_context(|| format!("writing the twin's kubeconfig to {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        Ok(())
    }

    pub fn datapath(&self) -> Option<&datapath::DataPath> {
        self.datapath.as_ref()
    }

    /// Stops serving and removes the containers now (drop does the same).
    pub async fn shutdown(mut self) {
        if let Some(dp) = self.datapath.take() {
            dp.shutdown().await;
        }
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        self.handle.shutdown();
        for t in &self.tasks {
            t.abort();
        }
        if let Some(dp) = self.datapath.take() {
            dp.remove_containers_blocking();
        }
    }
}

/// Runs the controllers, then the data path, each tick until the task is aborted.
fn spawn_reconcilers(
    c: Arc<Cluster>,
    dp: Option<datapath::DataPath>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut st = controllers::State::default();
        let (mut seen_rv, mut last_full) = (u64::MAX, std::time::Instant::now());
        loop {
            // Level-triggered, but cheap when idle: a pass on every change, and one a second
            // for the time-based steps (delays, resyncs, reloads).
            let rv = c.store.revision();
            if rv != seen_rv || last_full.elapsed() >= std::time::Duration::from_secs(1) {
                let runtime = dp.as_ref().map(|d| d as &dyn controllers::pods::Runtime);
                controllers::reconcile_once(&c, &mut st, runtime).await;
                if let Some(dp) = &dp {
                    dp.reconcile(&c).await;
                }
                seen_rv = rv;
                last_full = std::time::Instant::now();
            }
            tokio::time::sleep(c.opts.timing.tick).await;
        }
    })
}
