//! `auditrelay run`: wires the listeners, the write path, the store and the operations endpoint
//! together, and takes them down in order on SIGTERM so that nothing received is lost.

use std::sync::Arc;
use std::time::Duration;

use auditrelay_parsers::ParseOptions;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::forward::Forwarders;
use crate::ingest::stream::Protocol;
use crate::ingest::tls::{ensure_self_signed, TlsFiles, TlsReloader, POLL_INTERVAL};
use crate::ingest::url::Transport;
use crate::ingest::{stream, udp, Ingest};
use crate::metrics::{self, ListenerMetrics};
use crate::replication::Replica;
use crate::shutdown;
use crate::store::{freshness, Store};
use crate::write_path::{run_batcher, BatchLimits, CommitLog};

/// How often the kernel's UDP drop counter is read.
const SNMP_POLL: Duration = Duration::from_secs(2);

/// Runs the relay until SIGTERM or SIGINT; returns once everything received is committed.
pub async fn run(config: Config) -> Result<(), String> {
    let handle = metrics::install()?;
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
    let store = Arc::new(Store::open(&config.data_dir).map_err(|e| e.to_string())?);
    tracing::info!(store = %store.path().display(), next_seq = store.next_seq(), cluster = ?store.cluster_id(), "store open");
    ::metrics::gauge!(metrics::NEXT_SEQ).set(store.next_seq() as f64);
    let replica = Replica::start(&config.cluster, &config.data_dir, store.clone()).await?;
    let log: Arc<dyn CommitLog> = replica.clone();
    // Without it, readers in other processes see the store as of its last flush.
    let flush_requests = freshness::serve(store.clone(), &config.data_dir)
        .map_err(|e| tracing::warn!(error = %e, "readers in other processes will see records only as of the store's last flush"))
        .ok();

    let (trigger, shutdown) = shutdown::channel();
    let (hangup_tx, hangup) = watch::channel(0u64);
    let mut hangup_signal = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let (forwarding_tx, forwarding) = watch::channel(Forwarders::default());
    let forwarders = tokio::spawn(forward_while_leading(
        config.destinations.clone(),
        store.clone(),
        replica.clone(),
        hangup.clone(),
        forwarding_tx,
        shutdown.clone(),
    ));
    let (pipeline, records) = mpsc::channel(config.pipeline_capacity);
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
        healthy,
        replica.ready(),
        ready_tx,
        shutdown.clone(),
    ));

    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break }
            _ = interrupt.recv() => { tracing::info!("SIGINT: stopping"); break }
            _ = hangup_signal.recv() => {
                tracing::info!("SIGHUP: reloading TLS files and reopening output files");
                hangup_tx.send_modify(|n| *n += 1);
            }
        }
    }
    trigger.trigger();
    for (name, task) in listeners {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(listener = %name, error = %e, "listener failed"),
            Err(e) => tracing::error!(listener = %name, error = %e, "listener task failed"),
        }
    }
    // Connections hand over what they hold and drop their senders; the batcher then commits
    // the rest and returns.
    batcher.await.map_err(|e| e.to_string())?;
    // Forwarders stopped sending at the trigger; each saves its cursor before returning.
    if let Err(e) = forwarders.await {
        tracing::error!(error = %e, "forwarding task failed");
    }
    replica.stop().await;
    if let Some(task) = flush_requests {
        task.abort();
    }
    // The store writes no WAL: what it applied is on disk only once flushed.
    if let Err(e) = freshness::flush(store.clone()).await {
        tracing::error!(error = %e, "store flush at exit failed; the next start applies the rest from the Raft log");
    }
    tracing::info!("everything received is committed; exiting");
    Ok(())
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

async fn track_readiness(
    mut healthy: watch::Receiver<bool>,
    mut majority: watch::Receiver<bool>,
    ready: watch::Sender<bool>,
    mut shutdown: shutdown::Shutdown,
) {
    loop {
        let now =
            *healthy.borrow_and_update() && *majority.borrow_and_update() && !shutdown.is_set();
        let _ = ready.send(now);
        tokio::select! {
            r = healthy.changed() => if r.is_err() { break },
            r = majority.changed() => if r.is_err() { break },
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
