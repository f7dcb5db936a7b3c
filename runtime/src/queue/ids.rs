//! Message and correlation ids: a process-unique prefix and a counter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A process-unique, hard-to-guess prefix for message and correlation ids.
fn id_prefix() -> &'static str {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PREFIX.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos());
        h.write_u32(std::process::id());
        format!("{:016x}", h.finish())
    })
}

/// A fresh message or correlation id: the process's prefix and a counter.
pub(crate) fn next_id() -> String {
    id_of(next_seq())
}

/// A fresh counter value, for an id made with [`id_of`] (as often as needed).
pub(crate) fn next_seq() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// The id of counter value `seq`.
pub(crate) fn id_of(seq: u64) -> String {
    use std::fmt::Write as _;
    let prefix = id_prefix();
    let mut id = String::with_capacity(prefix.len() + 21);
    id.push_str(prefix);
    id.push('-');
    let _ = write!(id, "{seq}");
    id
}
