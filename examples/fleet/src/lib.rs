//! The fleet example's service: `echo.v1.Echo`, and the service config its clients use.
//!
//! ```text
//! replica (`fleet replica …`, serve_replica) ×3 on 127.0.0.1/.2/.3 ── gRPC + REST + grpc.health.v1 on one port
//!   SIGTERM: NOT_SERVING, drain period, then stop (calls in flight finish)
//! DnsRegistry (src/dns.rs, hickory-server in the supervisor) ── zone fleet.test. on UDP 127.0.0.1:<port>
//!   echo.fleet.test: one A record (TTL 1 s) per replica that serves; removed at its SIGTERM
//! client (src/main.rs) ── Fleet: dns://127.0.0.1:<port>/echo.fleet.test:<port>, re-resolved as the
//!   TTL runs out; round robin, health-checked (A17), retries
//!   rolling restart: each replica in turn leaves DNS, is SIGTERM'd, started again and
//!   registered again, zero failed calls
//! ```

pub mod dns;

pub use dns::DnsRegistry;
use switchboard::{Request, Response, Status};

/// What to echo.
#[derive(Clone, PartialEq, switchboard::prost::Message, switchboard::serde::Serialize, switchboard::serde::Deserialize)]
#[prost(prost_path = "::switchboard::prost")]
#[serde(crate = "switchboard::serde", rename_all = "camelCase", default)]
pub struct Ping {
    /// Any text.
    #[prost(string, tag = "1")]
    pub text: String,
}

/// The echo, and who answered.
#[derive(Clone, PartialEq, switchboard::prost::Message, switchboard::serde::Serialize, switchboard::serde::Deserialize)]
#[prost(prost_path = "::switchboard::prost")]
#[serde(crate = "switchboard::serde", rename_all = "camelCase", default)]
pub struct Pong {
    /// The text sent.
    #[prost(string, tag = "1")]
    pub text: String,
    /// The replica that answered.
    #[prost(string, tag = "2")]
    pub replica: String,
}

/// Echoes a ping. Free of side effects: retried and hedged by policy.
#[switchboard::service(package = "echo.v1")]
pub trait Echo {
    /// Answers with the text and the replica's name.
    #[rpc(no_side_effects)]
    async fn echo(&self, req: Request<Ping>) -> Result<Response<Pong>, Status>;
}

/// The fleet's client policy, in gRPC's service-config format: round robin over the replicas
/// that say SERVING (each replica's `grpc.health.v1.Health` watched), and calls retried on
/// UNAVAILABLE.
pub const SERVICE_CONFIG: &str = r#"{
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": "echo.v1.Echo"},
  "methodConfig": [{
    "name": [{"service": "echo.v1.Echo"}],
    "timeout": "5s",
    "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.01s", "maxBackoff": "0.1s", "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"]}
  }]
}"#;

/// One replica's handler: echoes, naming itself.
pub struct Replica {
    /// The name it answers with.
    pub name: String,
}

impl Echo for Replica {
    async fn echo(&self, req: Request<Ping>) -> Result<Response<Pong>, Status> {
        Ok(Response::new(Pong { text: req.into_inner().text, replica: self.name.clone() }))
    }
}

/// Serves one replica named `name` on `listen` until SIGTERM, then drains for `drain`: prints
/// `<name> listening on <address>` once it listens and `<name> drained` at the end.
pub async fn serve_replica(name: &str, listen: &str, drain: std::time::Duration) -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("binding {listen}: {e}"))?;
    println!("{name} listening on {}", listener.local_addr()?);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let server = switchboard::Server::builder().add_service(EchoServer::new(Replica { name: name.to_owned() })).drain(drain);
    server
        .serve_with_shutdown(listener, async move {
            term.recv().await;
        })
        .await?;
    println!("{name} drained");
    Ok(())
}

/// A replica process of this program (`fleet replica <name> <address>`), started and watched by
/// the demo and the tests.
pub struct ReplicaProcess {
    /// Its name.
    pub name: String,
    /// The address it listens on.
    pub address: String,
    child: tokio::process::Child,
}

impl ReplicaProcess {
    /// Starts `program replica <name> <address>` and waits until it listens.
    pub async fn start(program: &std::path::Path, name: &str, address: &str) -> Result<Self, Box<dyn std::error::Error>> {
        use tokio::io::AsyncBufReadExt as _;
        let mut child = tokio::process::Command::new(program)
            .args(["replica", name, address])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(std::time::Duration::from_secs(10), lines.next_line())
            .await
            .map_err(|_| format!("{name} did not listen within 10 s"))??
            .ok_or_else(|| format!("{name} exited before listening"))?;
        let address = line.rsplit(' ').next().unwrap_or(address).to_owned();
        // Its later lines (`drained`) go on to this process's stdout.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                println!("{line}");
            }
        });
        Ok(ReplicaProcess { name: name.to_owned(), address, child })
    }

    /// Sends it a signal (`TERM`, `STOP`, `CONT`, `KILL`) with `kill(1)`.
    pub fn signal(&self, signal: &str) -> std::io::Result<()> {
        let pid = self.child.id().ok_or_else(|| std::io::Error::other("already exited"))?;
        let status = std::process::Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status()?;
        match status.success() {
            true => Ok(()),
            false => Err(std::io::Error::other(format!("kill -{signal} {pid} failed"))),
        }
    }

    /// Waits for it to exit.
    pub async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait().await
    }
}
