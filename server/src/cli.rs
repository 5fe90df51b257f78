//! The command-line front: parses flags, sets up logging (stderr, `RUST_LOG`), starts the
//! server, prints the startup banner to stdout (the one place this crate prints) and waits for
//! Ctrl-C / SIGTERM. The banner's `Endpoint:` line carries the real bound port; scripts parse it.

use std::io::Write as _;

use clap::Parser as _;

use crate::config::{Cli, Command, Config, CredentialSource};
use crate::RunningServer;

/// Runs the `tessera` binary; returns the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tessera: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Server(args) => runtime.block_on(async move {
            if args.console_address.is_some() {
                tracing::warn!("--console-address is accepted for MinIO compatibility and ignored");
            }
            let config = Config::from_args(&args, |k| std::env::var(k).ok())?;
            serve(config).await
        }),
        Command::Bench(args) => runtime.block_on(crate::bench::run_cli(args)),
        Command::Admin(args) => runtime.block_on(crate::admin::run_cli(args)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr: JSON lines when `TESSERA_LOG_FORMAT=json` (for log shippers), text
/// otherwise, with colours only when stderr is a terminal. `RUST_LOG` filters (default info).
fn init_logging() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = std::env::var("TESSERA_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(false).try_init()
    } else {
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
    };
}

async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    tracing::info!(config = %config, "starting");
    if config.credentials.source == CredentialSource::DevelopmentDefault {
        tracing::warn!(
            "no TESSERA_ROOT_USER/TESSERA_ROOT_PASSWORD (or MINIO_ROOT_*) set: using the development default credentials"
        );
    }
    let server = crate::start(config.clone()).await?;
    let banner = banner(&config, &server);
    let mut out = std::io::stdout().lock();
    out.write_all(banner.as_bytes())?;
    out.flush()?;
    drop(out);
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// The startup banner: endpoint, credentials, layout and copy-paste client lines.
pub fn banner(config: &Config, server: &RunningServer) -> String {
    let endpoint = server.endpoint();
    let c = &config.credentials;
    let mut s = String::new();
    s.push_str("Tessera S3 server\n");
    s.push_str(&format!("Endpoint: {endpoint}\n"));
    s.push_str(&format!("Region: {}\n", config.region));
    s.push_str(&format!("AccessKey: {}\n", c.access_key));
    s.push_str(&format!("SecretKey: {}\n", c.secret_key));
    if c.source == CredentialSource::DevelopmentDefault {
        s.push_str("WARNING: using the development default credentials; set TESSERA_ROOT_USER and TESSERA_ROOT_PASSWORD\n");
    }
    match server.store() {
        Some(store) => {
            let layout = store.layout();
            s.push_str(&format!(
                "Layout: {} set(s) x {} drives, EC {}+{}\n",
                layout.sets, layout.drives_per_set, layout.data_shards, layout.parity_shards
            ));
        }
        None => s.push_str(&format!(
            "Layout: one of several nodes, {} drive(s) here; the store opens once the peers answer (see /health/ready)\n",
            server.drives_here
        )),
    }
    s.push_str("\naws-cli:\n");
    s.push_str(&format!(
        "  export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_DEFAULT_REGION={}\n",
        c.access_key, c.secret_key, config.region
    ));
    s.push_str(&format!(
        "  aws --endpoint-url {endpoint} s3 mb s3://demo\n"
    ));
    s.push_str(&format!(
        "  aws --endpoint-url {endpoint} s3 cp ./file s3://demo/\n"
    ));
    s.push_str("\nboto3:\n");
    s.push_str(&format!(
        "  import boto3; s3 = boto3.client('s3', endpoint_url='{endpoint}', aws_access_key_id='{}', aws_secret_access_key='{}', region_name='{}')\n",
        c.access_key, c.secret_key, config.region
    ));
    s.push_str("  s3.create_bucket(Bucket='demo'); print(s3.list_buckets()['Buckets'])\n\n");
    s
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
