use clap::Parser;
use sluice::broker::Broker;
use sluice::config::{BrokerConfig, Cli};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// Reservations sized from untrusted request counts cost address space, not memory
/// (see `sluice_wire::alloc`).
#[global_allocator]
static ALLOC: sluice_wire::alloc::LazyLargeAlloc = sluice_wire::alloc::LazyLargeAlloc;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    raise_open_file_limit();
    ignore_file_size_signal();
    let config = match BrokerConfig::load(Cli::parse()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "bad configuration");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "sluice stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A partition holds an open segment file (more with old segments), so the soft limit on
/// open files (often 1,024) caps the partitions a broker can serve far below what the
/// machine allows. Raise it to the hard limit, as the JVM does for Kafka (MaxFDLimit).
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!(soft, hard, error = %e, "could not raise the open-file limit");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the open-file limit"),
    }
}

/// A write past the file-size limit (`ulimit -f`) raises SIGXFSZ, whose default action
/// ends the process. Ignored, the write fails with EFBIG instead, and that partition's
/// producers get KAFKA_STORAGE_ERROR like any other failed write, as the JVM (which
/// ignores the signal) gives Kafka an IOException.
fn ignore_file_size_signal() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: SIG_IGN installs no handler code, and no other thread exists yet.
    if let Err(e) = unsafe { signal(Signal::SIGXFSZ, SigHandler::SigIgn) } {
        tracing::warn!(error = %e, "could not ignore SIGXFSZ");
    }
}

async fn run(mut config: BrokerConfig) -> Result<(), Box<dyn std::error::Error>> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let listener = TcpListener::bind(&config.cli.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.cli.listen))?;
    let metrics_listener = match config.cli.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?,
        ),
        None => None,
    };
    if config.cli.advertised.is_none() {
        // With --listen on port 0, clients must be told the port actually bound.
        config.cli.advertised = Some(listener.local_addr()?.to_string());
    }
    let broker = Broker::open(config, shutdown_rx.clone()).await?;
    if let Some(l) = metrics_listener {
        tokio::spawn(sluice::metrics::serve(l, broker.metrics.clone()));
    }
    let local = listener.local_addr()?;
    let (host, port) = broker.config.advertised();
    tracing::info!(listen = %local, advertised = %format!("{host}:{port}"), node_id = broker.node_id, data_dir = %broker.config.cli.data_dir.display(), "sluice ready to serve");
    let server = tokio::spawn(sluice::server::run(broker.clone(), listener, shutdown_rx));
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    broker.close().await;
    tracing::info!("sluice stopped cleanly");
    Ok(())
}
