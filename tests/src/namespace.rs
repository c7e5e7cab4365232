//! Per-test isolation: a fresh namespace per test, CRD installation, and a plane shared by every
//! test in one test binary (starting one costs seconds).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::conditions;
use kube::{Api, Client, ResourceExt};

use crate::{ControlPlane, await_condition};

/// The control plane shared by every test in this binary. Started on first use on a thread of
/// its own, because each `#[tokio::test]` has its own runtime and the plane must outlive them;
/// its processes are stopped by their watchdog when the test binary exits.
pub fn shared() -> &'static ControlPlane {
    static PLANE: OnceLock<ControlPlane> = OnceLock::new();
    PLANE.get_or_init(|| {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(ControlPlane::start())
        })
        .join()
        .expect("control-plane thread")
        .unwrap_or_else(|e| panic!("starting the control plane: {e:#}"))
    })
}

/// A namespace for one test, deleted (best effort) when dropped.
pub struct TestNamespace {
    name: String,
    client: Client,
    deleted: bool,
}

impl TestNamespace {
    /// Creates a namespace with a unique name.
    pub async fn create(client: &Client) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        let name = format!("t{}-{:x}-{}", std::process::id(), nanos, COUNTER.fetch_add(1, Ordering::Relaxed));
        let ns = Namespace {
            metadata: kube::api::ObjectMeta { name: Some(name.clone()), ..Default::default() },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("creating a test namespace");
        Self { name, client: client.clone(), deleted: false }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the namespace now. Without a controller-manager it stays Terminating; harmless.
    pub async fn delete(mut self) -> kube::Result<()> {
        let api = Api::<Namespace>::all(self.client.clone());
        api.delete(&self.name, &DeleteParams::default()).await?;
        self.deleted = true;
        Ok(())
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Best effort. A task spawned on a `#[tokio::test]` runtime that is about to shut down may
        // never run, so on a multi-thread runtime the delete happens here and now (bounded); on a
        // current-thread one blocking would deadlock the client, so it is only spawned.
        if self.deleted {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        let (api, name) = (Api::<Namespace>::all(self.client.clone()), self.name.clone());
        let delete = async move {
            let _ = tokio::time::timeout(DELETE_TIMEOUT, api.delete(&name, &DeleteParams::default())).await;
        };
        match handle.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| handle.block_on(delete)),
            _ => drop(handle.spawn(delete)),
        }
    }
}

/// How long a dropped `TestNamespace` waits for its delete.
const DELETE_TIMEOUT: Duration = Duration::from_secs(10);

/// Server-side-applies CRDs and waits until each is `Established`.
pub async fn install_crds(client: &Client, crds: Vec<CustomResourceDefinition>) -> anyhow::Result<()> {
    let api = Api::<CustomResourceDefinition>::all(client.clone());
    for crd in &crds {
        api.patch(&crd.name_any(), &PatchParams::apply("mailagent-tests").force(), &Patch::Apply(crd)).await?;
    }
    for crd in &crds {
        await_condition(&api, &crd.name_any(), conditions::is_crd_established(), CRD_TIMEOUT).await?;
    }
    Ok(())
}

/// How long a CRD may take to be served (2 cores, a busy API server).
const CRD_TIMEOUT: Duration = Duration::from_secs(60);
