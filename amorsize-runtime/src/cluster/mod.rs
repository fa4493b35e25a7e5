//! The cluster backend: `#[amorsize::task]` functions on worker processes of this same
//! executable on other machines, through a NATS JetStream broker (cargo feature
//! `cluster`). amorsize schedules nothing itself here: delivery, persistence and
//! redelivery are JetStream's, and workers are started by whatever starts programs on
//! the cluster.
//!
//! - [`address`]: the broker address, its credentials kept apart and out of every text.
//! - [`settings`]: the `AMORSIZE_CLUSTER*` variables.
//! - [`wire`]: chunk and result message bodies, checked against their own lengths.
//! - [`broker`]: the connection on amorsize's own tokio runtime thread; the shared
//!   streams, consumers and object store.
//! - [`worker`]: the worker's loop, entered before `main`.
//! - [`link`]: a job on the broker: its id, result consumer, chunks and clean-up.
//! - [`driver`]: the executor on the caller's side.
//!
//! Without the feature only [`unavailable`] is here, saying so.

#[cfg(all(unix, feature = "cluster"))]
pub(crate) mod address;
#[cfg(all(unix, feature = "cluster"))]
pub(crate) mod broker;
#[cfg(all(unix, feature = "cluster"))]
pub(crate) mod driver;
#[cfg(all(unix, feature = "cluster"))]
pub(crate) mod link;
#[cfg(all(unix, feature = "cluster"))]
pub(crate) mod settings;
#[cfg(all(unix, feature = "cluster"))]
pub(crate) mod wire;
#[cfg(all(unix, feature = "cluster"))]
pub(crate) mod worker;

/// Why this job cannot run on the cluster, if it cannot; `has_task` says whether the
/// stage is one registered task applied per item.
pub(crate) fn unavailable(has_task: bool) -> Option<String> {
    #[cfg(not(feature = "cluster"))]
    {
        let _ = has_task;
        Some("amorsize was built without its `cluster` feature".to_string())
    }
    #[cfg(all(not(unix), feature = "cluster"))]
    {
        let _ = has_task;
        Some("the cluster backend is not supported on this platform in this version".to_string())
    }
    #[cfg(all(unix, feature = "cluster"))]
    {
        if crate::context::is_worker_process() {
            return Some("this is already an amorsize worker process".to_string());
        }
        match settings::Settings::from_env(settings::DRIVER_VAR) {
            None => return Some("AMORSIZE_CLUSTER is not set".to_string()),
            Some(Err(e)) => return Some(e),
            Some(Ok(_)) => {}
        }
        if !has_task {
            return Some(
                "the function is a closure or is not marked #[amorsize::task]; cluster \
                 workers run only functions marked `#[amorsize::task]`, passed by name"
                    .to_string(),
            );
        }
        None
    }
}

#[cfg(all(unix, feature = "cluster"))]
pub(crate) use measure::{link, measure, verify};

#[cfg(all(unix, feature = "cluster"))]
mod measure {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::broker::{self, Broker, Hello};
    use super::driver::Cluster;
    use super::link::Link;
    use super::settings::{DRIVER_VAR, Settings};
    use crate::plumbing::KeepOutputs;
    use crate::probe::ClusterProfile;
    use crate::process::TaskCall;
    use crate::process::registry;
    use crate::process::verify::{self, Checked};

    /// How long who answered a ping is trusted before asking again.
    const HELLOS_FRESH: Duration = Duration::from_secs(2);

    fn settings() -> Result<Settings, String> {
        Settings::from_env(DRIVER_VAR).unwrap_or_else(|| Err("AMORSIZE_CLUSTER is not set".into()))
    }

    /// A new job's footing on the broker of `AMORSIZE_CLUSTER`.
    pub(crate) fn link() -> Result<Link, String> {
        Link::open(broker::driver(&settings()?)?)
    }

    /// The cluster as the model sees it: the slots of the workers of this build that
    /// answer, and the costs of a chunk through the broker (measured once per process).
    /// `Err` says why the cluster cannot run this job.
    pub(crate) fn measure() -> Result<ClusterProfile, String> {
        let settings = settings()?;
        let broker = broker::driver(&settings)?;
        let hellos = listening(&broker)?;
        let build = registry::hash();
        let slots: usize = hellos
            .iter()
            .filter(|h| h.build == build)
            .map(|h| h.slots.max(1) as usize)
            .sum();
        if slots == 0 {
            return Err(nobody(&hellos, build, &broker, settings.wait));
        }
        let (chunk_secs, byte_secs) = costs(&broker)?;
        Ok(ClusterProfile::new(slots, chunk_secs, byte_secs))
    }

    /// Runs a few items already run here again on a cluster worker and compares the
    /// encoded outputs, as worker processes are checked (see
    /// [`crate::process::verify`]): cluster workers never run `main` either. `Err`
    /// says why the task cannot be trusted to the cluster, and what to do.
    pub(crate) fn verify(
        task: &'static registry::TaskEntry,
        checks: &[Checked],
        item_secs: f64,
    ) -> Result<(), String> {
        if checks.is_empty() {
            return Ok(());
        }
        let inputs: Vec<&[u8]> = checks.iter().map(|c| c.input.as_slice()).collect();
        let budget = Duration::from_secs_f64((item_secs * 10.0 * checks.len() as f64).min(3600.0));
        let outcomes = link()?
            .round_trip(task, &inputs, verify::MIN_WAIT.max(budget))
            .map_err(|e| format!("a cluster worker could not check the task: {e}"))?;
        let differ: Vec<String> = checks
            .iter()
            .zip(outcomes)
            .filter_map(|(c, got)| match got {
                Ok(bytes) if bytes == c.output => None,
                Ok(_) => Some(format!("item {}: a different output", c.index)),
                Err(what) => Some(format!("item {}: {what}", c.index)),
            })
            .collect();
        if differ.is_empty() {
            Ok(())
        } else {
            Err(verify::refusal(&differ.join("; ")))
        }
    }

    /// Why no worker can take this build's chunks.
    fn nobody(hellos: &[Hello], build: u64, broker: &Broker, wait: Duration) -> String {
        let exe = super::worker::exe_name();
        if hellos.is_empty() {
            return format!(
                "no cluster worker answered within {wait:?} at {} (AMORSIZE_CLUSTER_WAIT sets \
                 the wait); start workers with AMORSIZE_CLUSTER_WORKER",
                broker.address
            );
        }
        let mut others: Vec<String> = hellos
            .iter()
            .map(|h| format!("{} runs {} (build {:016x})", h.worker, h.exe, h.build))
            .collect();
        others.sort();
        others.dedup();
        format!(
            "{} cluster worker(s) answered, none of this build: this is {exe} (build \
             {build:016x}), and {}; a worker runs only the tasks of the executable it was \
             started from, so start workers from this one",
            hellos.len(),
            others.join(", ")
        )
    }

    /// Who answers a ping, asked again when the last answer is older than
    /// [`HELLOS_FRESH`].
    fn listening(broker: &Arc<Broker>) -> Result<Vec<Hello>, String> {
        static LAST: Mutex<Option<(Instant, Vec<Hello>)>> = Mutex::new(None);
        let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, hellos)) = last.as_ref()
            && at.elapsed() < HELLOS_FRESH
            && !hellos.is_empty()
        {
            return Ok(hellos.clone());
        }
        let b = Arc::clone(broker);
        let wait = broker.settings.wait;
        let hellos = broker::block(async move { b.ping(wait).await })??;
        *last = Some((Instant::now(), hellos.clone()));
        Ok(hellos)
    }

    /// One chunk's round trip and the cost of a byte through the broker, measured with
    /// the built-in echo task on real workers: the quickest of three one-item chunks,
    /// then one chunk of many items. Once per process.
    fn costs(broker: &Arc<Broker>) -> Result<(f64, f64), String> {
        /// Items of the large chunk (about 200 KiB each way with framing).
        const BIG: usize = 8192;
        static COSTS: Mutex<Option<(f64, f64)>> = Mutex::new(None);
        let mut known = COSTS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = *known {
            return Ok(c);
        }
        fn echo_call<F: Fn(u64) -> u64>(_: &F) -> Option<TaskCall<u64, u64>> {
            TaskCall::for_function::<F>()
        }
        let call = echo_call(&registry::echo)
            .ok_or_else(|| "the built-in echo task is not registered".to_string())?;
        let run = |n: usize| -> Result<f64, String> {
            let link = Link::open(Arc::clone(broker))?;
            let mut chunks = Cluster::new(
                &call,
                &KeepOutputs,
                link,
                (0..n).map(|i| (i, i as u64)),
                (1, n),
            );
            let started = Instant::now();
            let out = catch_unwind(AssertUnwindSafe(|| {
                chunks.by_ref().flatten().collect::<Vec<u64>>()
            }));
            let secs = started.elapsed().as_secs_f64();
            match out {
                Ok(v) if v.iter().copied().eq(0..n as u64) => Ok(secs),
                Ok(_) => Err("the echo through the cluster came back wrong".to_string()),
                Err(_) => Err("the echo through the cluster failed".to_string()),
            }
        };
        let mut small = f64::INFINITY;
        for _ in 0..3 {
            small = small.min(run(1)?);
        }
        let big = run(BIG)?;
        // Per item: the length prefix and 8 bytes in; tag, length and 8 bytes out.
        let bytes = (BIG as f64) * ((4.0 + 8.0) + (1.0 + 4.0 + 8.0));
        let c = (small, ((big - small) / bytes).max(0.0));
        *known = Some(c);
        Ok(c)
    }
}
