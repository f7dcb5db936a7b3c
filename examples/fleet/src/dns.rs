//! The demo's DNS server: one name's A records in an authoritative zone, served over UDP on
//! 127.0.0.1 by hickory-server in this process, and changed at run time as replicas come and go
//! (a Kubernetes headless service's DNS in miniature).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use hickory_server::proto::rr::rdata::{A, SOA};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use hickory_server::Server;

/// The TTL of the A records (and of negative answers): clients look the name up again a second
/// after each answer.
pub const TTL: u32 = 1;

/// An authoritative name server for the zone holding one name (`echo.fleet.test` in the zone
/// `fleet.test.`), whose A records are the replicas registered now.
pub struct DnsRegistry {
    address: SocketAddr,
    name: Name,
    zone: Arc<InMemoryZoneHandler>,
    /// The addresses registered and the zone's serial.
    registered: tokio::sync::Mutex<(BTreeSet<Ipv4Addr>, u32)>,
    _server: Server<Catalog>,
}

impl DnsRegistry {
    /// Serves the zone of `name` (`echo.fleet.test`: the zone `fleet.test.`), no address
    /// registered yet, on UDP 127.0.0.1 at a free port.
    pub async fn start(name: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let mut name = Name::from_ascii(name)?;
        name.set_fqdn(true);
        let origin = name.base_name();
        let mut zone = InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
        let soa = SOA::new(Name::from_ascii("ns")?.append_domain(&origin)?, Name::from_ascii("admin")?.append_domain(&origin)?, 1, 60, 60, 60, TTL);
        if !zone.upsert_mut(Record::from_rdata(origin.clone(), TTL, RData::SOA(soa)), 1) {
            return Err(format!("the zone {origin} refused its SOA record").into());
        }
        let zone = Arc::new(zone);
        let mut catalog = Catalog::new();
        catalog.upsert(LowerName::new(&origin), vec![zone.clone() as Arc<dyn ZoneHandler>]);
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        let address = socket.local_addr()?;
        let mut server = Server::new(catalog);
        server.register_socket(socket);
        Ok(DnsRegistry { address, name, zone, registered: tokio::sync::Mutex::new((BTreeSet::new(), 1)), _server: server })
    }

    /// Where the name server listens (UDP).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The name whose A records this serves, without the final dot (`echo.fleet.test`).
    pub fn name(&self) -> String {
        self.name.to_string().trim_end_matches('.').to_owned()
    }

    /// A fleet target that looks the name up at this server, every address on `port`:
    /// `dns://127.0.0.1:<its port>/echo.fleet.test:<port>`.
    pub fn target(&self, port: u16) -> String {
        format!("dns://{}/{}:{port}", self.address, self.name())
    }

    /// Adds an A record for `ip`; the addresses registered after it.
    pub async fn register(&self, ip: Ipv4Addr) -> Vec<Ipv4Addr> {
        self.change(|set| set.insert(ip)).await
    }

    /// Removes `ip`'s A record; the addresses registered after it.
    pub async fn deregister(&self, ip: Ipv4Addr) -> Vec<Ipv4Addr> {
        self.change(|set| set.remove(&ip)).await
    }

    /// Changes the set of addresses and, when it changed, publishes the new record set (no
    /// records: the name is gone, and the server answers NXDOMAIN).
    async fn change(&self, f: impl FnOnce(&mut BTreeSet<Ipv4Addr>) -> bool) -> Vec<Ipv4Addr> {
        let mut registered = self.registered.lock().await;
        let (set, serial) = &mut *registered;
        if f(set) {
            *serial += 1;
            let key = RrKey::new(LowerName::new(&self.name), RecordType::A);
            let mut records = self.zone.records_mut().await;
            if set.is_empty() {
                records.remove(&key);
            } else {
                let mut rrset = RecordSet::with_ttl(self.name.clone(), RecordType::A, TTL);
                for ip in set.iter() {
                    rrset.insert(Record::from_rdata(self.name.clone(), TTL, RData::A(A(*ip))), *serial);
                }
                records.insert(key, Arc::new(rrset));
            }
        }
        set.iter().copied().collect()
    }
}
