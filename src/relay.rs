//! `auditrelay run`: wires the listeners, the write path, the store and the operations endpoint
//! together, and takes them down in order on SIGTERM so that nothing received is lost.

use std::sync::Arc;
use std::time::Duration;

use auditrelay_parsers::ParseOptions;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::Config;
use crate::disk_watermark::DiskWatermark;
use crate::forward::Forwarders;
use crate::ingest::stream::Protocol;
use crate::ingest::tls::{ensure_self_signed, TlsFiles, TlsReloader, POLL_INTERVAL};
use crate::ingest::url::Transport;
use crate::ingest::{stream, udp, Ingest};
use crate::metrics::{self, ListenerMetrics};
use crate::replication::Replica;
use crate::shutdown;
use crate::store::{freshness, Store};
use crate::write_path::{
    run_batcher, BatchLimits, CommitLog, DelayedCommitLog, Pipeline, TEST_COMMIT_DELAY_ENV,
};

/// How often the kernel's UDP drop counter is read.
const SNMP_POLL: Duration = Duration::from_secs(2);

/// How long the relay may take to stop once told to (SIGTERM, SIGINT, a storage failure):
/// committing what was received, saving forwarding cursors, stopping Raft. Past it the relay
/// exits non-zero and says how many received messages were not committed, whatever clients
/// or peers do: a supervisor (systemd, Kubernetes) must be able to count on the exit.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(10);

/// Why the relay stopped.
enum Stop {
    Signal(&'static str),
    /// Raft stopped for good on a storage error.
    StorageFailed(String),
}

/// Runs the relay until SIGTERM or SIGINT; returns once everything received is committed.
pub async fn run(config: Config) -> Result<(), String> {
    // First, so that a SIGTERM during start-up (a supervisor stopping a slow start) stops the
    // relay cleanly once it is up, instead of killing it with the signal's default action.
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut hangup_signal = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let handle = metrics::install()?;
    crate::file_modes::make_private(&config.data_dir)?;
    crate::descriptors::prepare(&config);
    let store = Arc::new(Store::open(&config.data_dir).map_err(|e| e.to_string())?);
    tracing::info!(store = %store.path().display(), next_seq = store.next_seq(), cluster = ?store.cluster_id(), "store open");
    ::metrics::gauge!(metrics::NEXT_SEQ).set(store.next_seq() as f64);
    let replica = Replica::start(&config.cluster, &config.data_dir, store.clone()).await?;
    let log: Arc<dyn CommitLog> = match test_commit_delay() {
        Some(delay) => {
            tracing::warn!(
                ?delay,
                "{TEST_COMMIT_DELAY_ENV} is set: every commit is slowed (for tests only)"
            );
            Arc::new(DelayedCommitLog {
                inner: replica.clone(),
                delay,
            })
        }
        None => replica.clone(),
    };
    // Without it, readers in other processes see the store as of its last flush.
    let flush_requests = freshness::serve(store.clone(), &config.data_dir)
        .map_err(|e| tracing::warn!(error = %e, "readers in other processes will see records only as of the store's last flush"))
        .ok();

    let (trigger, shutdown) = shutdown::channel();
    let (hangup_tx, hangup) = watch::channel(0u64);
    let (forwarding_tx, forwarding) = watch::channel(Forwarders::default());
    let forwarders = tokio::spawn(forward_while_leading(
        config.destinations.clone(),
        store.clone(),
        replica.clone(),
        hangup.clone(),
        forwarding_tx,
        shutdown.clone(),
    ));
    let (pipeline, records) = Pipeline::new(
        config.pipeline_capacity,
        config.pipeline_max_bytes,
        shutdown.clone(),
    );
    let uncommitted = pipeline.uncommitted();
    let (watermark, disk_open) =
        DiskWatermark::new(&config.data_dir, config.min_free_bytes, pipeline.gate());
    tokio::spawn(watermark.run(shutdown.clone()));
    let (healthy_tx, healthy) = watch::channel(true);
    let limits = BatchLimits {
        max_delay: Duration::from_millis(config.batch_max_delay_ms),
        max_idle: Duration::from_millis(config.batch_max_idle_ms),
        max_bytes: config.batch_max_bytes,
        max_records: config.batch_max_records,
        max_in_flight: config.batch_max_in_flight,
    };
    let batcher = tokio::spawn(run_batcher(records, log, limits, healthy_tx));

    let parse = ParseOptions {
        default_offset_minutes: config.timezone_offset_minutes,
        key_values: config.key_values,
        ..ParseOptions::default()
    };
    let zones = Arc::new(config.zones.clone());
    // The peer port's certificate is reloaded like the listeners' (clients read theirs at
    // each new connection).
    let mut reloaders: Vec<Arc<TlsReloader>> = replica.tls_reloader().into_iter().collect();
    let mut listeners = Vec::new();
    for listener in &config.listeners {
        let transport = listener.url.transport;
        let ingest = Arc::new(Ingest {
            config: listener.clone(),
            metrics: ListenerMetrics::new(&listener.name, transport.record_name()),
            pipeline: pipeline.clone(),
            parse,
            zones: zones.clone(),
            shutdown: shutdown.clone(),
        });
        let tls = if transport.is_tls() {
            let files = match (&listener.url.tls_cert, &listener.url.tls_key) {
                (Some(cert), Some(key)) => TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    ca: listener.url.tls_ca.clone(),
                },
                _ => ensure_self_signed(&config.data_dir.join("tls"))?,
            };
            let reloader = TlsReloader::new(&listener.name, files)
                .map_err(|e| format!("listener {}: {e}", listener.name))?;
            reloaders.push(reloader.clone());
            Some(reloader)
        } else {
            None
        };
        // Bind now, so that a port in use stops the start-up with a clear error.
        let task = match transport {
            Transport::Udp => tokio::spawn(async move { udp::run(ingest).await }),
            Transport::Tcp | Transport::Tls => {
                tokio::spawn(async move { stream::run(ingest, tls, Protocol::Syslog).await })
            }
            Transport::Relp | Transport::RelpTls => {
                tokio::spawn(async move { stream::run(ingest, tls, Protocol::Relp).await })
            }
        };
        listeners.push((listener.name.clone(), task));
    }
    drop(pipeline);

    let (ready_tx, ready) = watch::channel(false);
    if let Some(http) = &config.http {
        let addr = http.listen;
        let endpoint = crate::http::bind(addr)
            .await
            .map_err(|e| format!("http {addr}: {e}"))?;
        // The bound address, not the configured one: port 0 picks a port, and Host names it.
        let bound = endpoint
            .local_addr()
            .map_err(|e| format!("http {addr}: {e}"))?;
        let access = crate::http::access(http, bound, &config.data_dir)?;
        tracing::info!(addr = %bound, "operations endpoint");
        let status = crate::http::Status {
            metrics: handle,
            ready: ready.clone(),
            forwarding,
            replica: replica.clone(),
            access,
        };
        tokio::spawn(crate::http::serve(endpoint, status, shutdown.clone()));
    }
    tokio::spawn(watch_tls(reloaders, hangup, shutdown.clone()));
    tokio::spawn(poll_udp_kernel_drops(shutdown.clone()));

    // Ready once every listener had a moment to bind without failing, and while commits work.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (name, task) in &listeners {
        if task.is_finished() {
            trigger.trigger();
            return Err(format!("listener {name} failed to start (see the log)"));
        }
    }
    tokio::spawn(track_readiness(
        [healthy, replica.ready(), disk_open],
        ready_tx,
        shutdown.clone(),
    ));

    let mut failed = replica.failed();
    let stop = loop {
        tokio::select! {
            _ = term.recv() => break Stop::Signal("SIGTERM"),
            _ = interrupt.recv() => break Stop::Signal("SIGINT"),
            _ = hangup_signal.recv() => {
                tracing::info!("SIGHUP: reloading TLS files and reopening output files");
                hangup_tx.send_modify(|n| *n += 1);
            }
            r = failed.wait_for(Option::is_some) => {
                let why = r.ok().and_then(|f| f.clone()).unwrap_or_default();
                break Stop::StorageFailed(why);
            }
        }
    };
    match &stop {
        Stop::Signal(name) => tracing::info!("{name}: stopping within {SHUTDOWN_BOUND:?}"),
        Stop::StorageFailed(why) => {
            tracing::error!(error = %why, "storage failed: taking no more traffic and stopping within {SHUTDOWN_BOUND:?}")
        }
    }
    let deadline = Instant::now() + SHUTDOWN_BOUND;
    trigger.trigger();
    let drained = tokio::time::timeout_at(deadline, async {
        for (name, task) in listeners {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(listener = %name, error = %e, "listener failed"),
                Err(e) => tracing::error!(listener = %name, error = %e, "listener task failed"),
            }
        }
        // Connections hand over what they hold and drop their senders; the batcher then
        // commits the rest and returns.
        batcher.await
    })
    .await;
    if let Ok(Err(e)) = &drained {
        tracing::error!(error = %e, "the write path failed");
    }
    if drained.is_err() {
        let left = uncommitted.get();
        tracing::error!(
            uncommitted = left,
            "stopping after {SHUTDOWN_BOUND:?} with {left} received messages not committed: RELP senders were not acknowledged for them and send them again; TCP, TLS and UDP senders do not"
        );
        return Err(format!(
            "stopped after {SHUTDOWN_BOUND:?} with {left} received messages not committed"
        ));
    }
    // Forwarders stopped sending at the trigger; each saves its cursor before returning.
    match tokio::time::timeout_at(deadline, forwarders).await {
        Ok(Err(e)) => tracing::error!(error = %e, "forwarding task failed"),
        Err(_) => tracing::warn!(
            "forwarding did not save its cursors in time; it resends from the last saved ones"
        ),
        Ok(Ok(())) => {}
    }
    if tokio::time::timeout_at(deadline, replica.stop())
        .await
        .is_err()
    {
        tracing::warn!("Raft did not stop in time");
    }
    if let Some(task) = flush_requests {
        task.abort();
    }
    // The store writes no WAL: what it applied is on disk only once flushed.
    if let Err(e) = freshness::flush(store.clone()).await {
        tracing::error!(error = %e, "store flush at exit failed; the next start applies the rest from the Raft log");
    }
    match stop {
        Stop::Signal(_) => {
            tracing::info!("everything received is committed; exiting");
            Ok(())
        }
        Stop::StorageFailed(why) => Err(format!(
            "storage failed ({why}); everything received was committed through the cluster, but this node must be restarted once its disk is repaired"
        )),
    }
}

/// The commit delay [`TEST_COMMIT_DELAY_ENV`] asks for, if any.
fn test_commit_delay() -> Option<Duration> {
    let ms: u64 = std::env::var(TEST_COMMIT_DELAY_ENV).ok()?.parse().ok()?;
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// Runs forwarding while this node leads: started (from the replicated cursors) when it
/// becomes leader, stopped when it no longer is, so that one node sends at a time.
async fn forward_while_leading(
    destinations: Vec<crate::forward::Destination>,
    store: Arc<Store>,
    replica: Arc<Replica>,
    hangup: watch::Receiver<u64>,
    registry: watch::Sender<Forwarders>,
    mut shutdown: shutdown::Shutdown,
) {
    let mut leader = replica.leader();
    loop {
        tokio::select! {
            r = leader.wait_for(|l| *l) => if r.is_err() { return },
            _ = shutdown.wait() => return,
        }
        if destinations.is_empty() {
            tokio::select! {
                _ = leader.wait_for(|l| !*l) => continue,
                _ = shutdown.wait() => return,
            }
        }
        if let Err(e) = replica.ensure_cluster_id().await {
            tracing::warn!(error = %e, "cannot name the cluster yet; forwarding waits");
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let (stop, term) = shutdown::channel();
        let log: Arc<dyn CommitLog> = replica.clone();
        let started = {
            let (destinations, store, hangup) =
                (destinations.clone(), store.clone(), hangup.clone());
            tokio::task::spawn_blocking(move || {
                crate::forward::start(&destinations, store, log, hangup, &term)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|started| started)
        };
        let tasks = match started {
            Ok((tasks, registered)) => {
                registry.send_replace(registered);
                tracing::info!("leading: forwarding started");
                tasks
            }
            Err(e) => {
                tracing::error!(error = %e, "forwarding could not start; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let stopping = tokio::select! {
            _ = leader.wait_for(|l| !*l) => false,
            _ = shutdown.wait() => true,
        };
        if !stopping {
            tracing::info!("no longer leading: forwarding stops");
        }
        stop.trigger();
        registry.send_replace(Forwarders::default());
        for task in tasks {
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!("a forwarder did not save its cursor in time; it resends");
            }
        }
        if stopping {
            return;
        }
    }
}

/// Ready while every condition holds (commits succeed, this node is part of a working
/// majority, the disk watermark lets every message in) and the relay is not stopping. A
/// condition whose sender has gone keeps its last value.
async fn track_readiness(
    mut conditions: [watch::Receiver<bool>; 3],
    ready: watch::Sender<bool>,
    mut shutdown: shutdown::Shutdown,
) {
    let mut open = [true; 3];
    loop {
        let now = conditions.iter_mut().all(|c| *c.borrow_and_update()) && !shutdown.is_set();
        let _ = ready.send(now);
        let [a, b, c] = &mut conditions;
        tokio::select! {
            r = a.changed(), if open[0] => open[0] = r.is_ok(),
            r = b.changed(), if open[1] => open[1] = r.is_ok(),
            r = c.changed(), if open[2] => open[2] = r.is_ok(),
            _ = shutdown.wait() => { let _ = ready.send(false); break },
        }
    }
}

/// Reloads TLS files on SIGHUP and when they change on disk.
async fn watch_tls(
    reloaders: Vec<Arc<TlsReloader>>,
    mut hangup: watch::Receiver<u64>,
    mut shutdown: shutdown::Shutdown,
) {
    if reloaders.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    loop {
        tokio::select! {
            r = hangup.changed() => {
                if r.is_err() { return }
                for r in &reloaders { r.reload() }
            }
            _ = tick.tick() => for r in &reloaders { r.reload_if_changed() },
            _ = shutdown.wait() => return,
        }
    }
}

async fn poll_udp_kernel_drops(mut shutdown: shutdown::Shutdown) {
    let base = metrics::read_udp_rcvbuf_errors();
    let mut tick = tokio::time::interval(SNMP_POLL);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let (Some(base), Some(now)) = (base, metrics::read_udp_rcvbuf_errors()) {
                    ::metrics::counter!(metrics::UDP_KERNEL_RCVBUF_ERRORS).absolute(now.saturating_sub(base));
                }
            }
            _ = shutdown.wait() => return,
        }
    }
}
